#!/usr/bin/env python3
"""Converts an ONNX model written in onnx.parser's text syntax to a binary
.onnx file. Lines starting with '//' or '#' are dropped first, so a lit test
can hold RUN/CHECK lines and the model text in one file.

usage: onnxtext.py INPUT.onnxtext -o OUTPUT.onnx [--no-check]
"""
import argparse
import sys

import onnx
import onnx.parser


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--no-check", action="store_true",
                    help="skip onnx.checker (to write deliberately broken models)")
    args = ap.parse_args()
    with open(args.input) as f:
        text = "\n".join(l for l in f.read().splitlines()
                         if not l.lstrip().startswith(("//", "#")))
    model = onnx.parser.parse_model(text)
    if not args.no_check:
        onnx.checker.check_model(model)
    onnx.save(model, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
