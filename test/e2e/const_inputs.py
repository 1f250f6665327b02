#!/usr/bin/env python3
"""--const-input makes graph inputs compile-time constants.

A model whose Reshape shape, Slice starts/ends and ReduceSum axes arrive as
graph inputs (as TF converters and some torch exports leave them) is
refused without the flag, with a message that names it; with the values
given (as a list or as a .npy file) it compiles, and runs equal to
onnxruntime fed the same values. Mistakes (an input that does not exist,
values that do not fit the input, a .npy of another type) are refused with
a message.

usage: test/e2e/const_inputs.py --build BUILD
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from checks import Checks  # noqa: E402
from run_vs_onnxruntime import run_case  # noqa: E402


def model():
    w = np.random.default_rng(0).standard_normal((12, 6)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Reshape", ["h", "shape"], ["r"]),
        helper.make_node("Slice", ["r", "starts", "ends", "axes"], ["s"]),
        helper.make_node("ReduceSum", ["s", "raxes"], ["y"], keepdims=0),
    ]
    i64 = TensorProto.INT64
    graph = helper.make_graph(
        nodes, "dyn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 12]),
         helper.make_tensor_value_info("shape", i64, [3]),
         helper.make_tensor_value_info("starts", i64, [1]),
         helper.make_tensor_value_info("ends", i64, [1]),
         helper.make_tensor_value_info("axes", i64, [1]),
         helper.make_tensor_value_info("raxes", i64, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    opt = os.path.join(args.build, "bin", "colossal-opt")
    run = os.path.join(args.build, "bin", "colossal-run")
    check = Checks()

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dyn.onnx")
        onnx.save(model(), path)
        values = {"shape": np.array([4, 3, 2], np.int64), "starts": np.array([1], np.int64),
                  "ends": np.array([3], np.int64), "axes": np.array([1], np.int64),
                  "raxes": np.array([2], np.int64)}
        np.save(os.path.join(tmp, "shape.npy"), values["shape"])
        x = np.random.default_rng(1).standard_normal((4, 12)).astype(np.float32)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        want = sess.run(None, dict(values, x=x))[0]

        p = subprocess.run([opt, path, "--mode=infer", "--emit=plan", "-o",
                            os.path.join(tmp, "x.cplan")], capture_output=True, text=True)
        check(p.returncode != 0 and "--const-input" in p.stderr,
              "without --const-input: refused naming the flag")

        flags = ["--const-input", "shape=" + os.path.join(tmp, "shape.npy"),
                 "--const-input", "starts=1", "--const-input", "ends=3",
                 "--const-input", "axes=1", "--const-input", "raxes=2"]
        plan = os.path.join(tmp, "dyn.cplan")
        p = subprocess.run([opt, path, "--mode=infer", "--emit=plan", "-o", plan] + flags,
                           capture_output=True, text=True)
        check(p.returncode == 0, "with --const-input (a .npy and lists): compiles "
              + p.stderr.strip()[:200])
        if p.returncode == 0:
            # run_case compiles again with the same flags through its own
            # colossal-opt call: give it a wrapper that adds them.
            wrapper = os.path.join(tmp, "opt.sh")
            with open(wrapper, "w") as f:
                f.write("#!/bin/sh\nexec %s \"$@\" %s\n" % (opt, " ".join(flags)))
            os.chmod(wrapper, 0o755)
            err = run_case("dyn", path, {"x": x}, {"y": want}, {}, wrapper, run, tmp)
            check(err is None, "runs equal to onnxruntime fed the same values"
                  + ("" if err is None else ": " + err))

        for bad, expect in (
                (["--const-input", "nosuch=1"], "the model has no input of that name"),
                (["--const-input", "shape=1,2"], "does not match the input's declared shape"),
                (["--const-input", "shape=a,b,c"], "is not an integer"),
                (["--const-input", "shape"], "expected NAME=FILE.npy or NAME=v1,v2,..."),
                (["--const-input", "x=" + os.path.join(tmp, "shape.npy")],
                 "holds INT64 values, but the input is FLOAT")):
            p = subprocess.run([opt, path, "--mode=infer", "--emit=plan", "-o",
                                os.path.join(tmp, "y.cplan")] + bad,
                               capture_output=True, text=True)
            check(p.returncode != 0 and expect in p.stderr,
                  "%s refused: %s" % (" ".join(bad)[-40:], p.stderr.strip()[:150]))

    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
