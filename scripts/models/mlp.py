#!/usr/bin/env python3
"""Multi-layer perceptron -> ONNX.

input  x <dtype> [batch, in]
output y <dtype> [batch, out]

--layers N linear layers: in->hidden, (N-2) x hidden->hidden, hidden->out (N=1: in->out),
Relu between layers (not after the last).  Each layer is Gemm(x, W[in,out], b) (--linear gemm)
or MatMul(x, W[in,out]) + Add(b) (--linear matmul).  Names: layers.<i>(.weight/.bias).
"""

from __future__ import annotations

import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import GraphBuilder, linear  # noqa: E402


def get_parser():
    p = common.make_parser(__doc__, lm=False)
    m = p.add_argument_group("model")
    m.add_argument("--layers", type=common.positive_int, default=3, help="number of linear layers")
    m.add_argument("--hidden", type=common.positive_int, default=64, help="hidden width")
    m.add_argument("--in", dest="d_in", type=common.positive_int, default=32, help="input features")
    m.add_argument("--out", dest="d_out", type=common.positive_int, default=10, help="output features")
    m.add_argument("--linear", choices=("gemm", "matmul"), default="gemm",
                   help="Gemm or MatMul+Add for each layer")
    return p


def build(args) -> "onnx.ModelProto":  # noqa: F821
    g = GraphBuilder(args, "mlp")
    B = g.dim(args.batch, "batch")
    x = g.input("x", g.dtype, [B, args.d_in])
    dims = [args.d_in] + [args.hidden] * (args.layers - 1) + [args.d_out]
    for i in range(args.layers):
        x = linear(g, x, f"layers.{i}", dims[i], dims[i + 1], bias=True,
                   std=1.0 / math.sqrt(dims[i]), gemm=args.linear == "gemm")
        if i + 1 < args.layers:
            x = g.op("Relu", [x], f"layers.{i}.relu")
    g.output(x, g.dtype, [B, args.d_out], name="y")
    return g.model(doc=f"MLP dims={dims} linear={args.linear}", metadata={"colossal.model": "mlp"})


def main(argv=None) -> int:
    return common.run_main(build, get_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
