#!/usr/bin/env python3
"""ONNX operators Colossal composes of graph ops (no kernels of their own)
run equal to onnxruntime in float32, in every attribute combination: CumSum
(exclusive, reverse, any axis), ReduceMin/L1/L2/SumSquare/LogSum/LogSumExp
(keepdims or not), Sign, IsNaN, IsInf (detect_positive/negative), Tile.
(The ONNX node tests of CumSum use float64, which Colossal does not have.)

usage: test/e2e/composite_ops.py --build BUILD
"""
import argparse
import os
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


def single(op, x, inits=(), out_type=TensorProto.FLOAT, **attrs):
    names = ["x"] + [n for n, _ in inits]
    node = helper.make_node(op, names, ["y"], **attrs)
    graph = helper.make_graph(
        [node], op, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", out_type, None)],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    opt = os.path.join(args.build, "bin", "colossal-opt")
    run = os.path.join(args.build, "bin", "colossal-run")
    check = Checks()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 4)).astype(np.float32)
    pos = np.abs(x) + 0.1
    special = x.copy()
    special[0, 0, 0], special[1, 2, 3], special[2, 4, 1] = np.inf, -np.inf, np.nan
    cases = []
    for axis in (0, 1, -1):
        for exclusive in (0, 1):
            for reverse in (0, 1):
                cases.append(("cumsum_a%d_e%d_r%d" % (axis, exclusive, reverse), x,
                              single("CumSum", x, [("axis", np.array(axis, np.int64))],
                                     exclusive=exclusive, reverse=reverse)))
    for op in ("ReduceMin", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum",
               "ReduceLogSumExp"):
        for keep in (0, 1):
            data = pos if op == "ReduceLogSum" else x
            cases.append(("%s_k%d" % (op.lower(), keep), data,
                          single(op, data, [("axes", np.array([1, -1], np.int64))],
                                 keepdims=keep)))
    cases.append(("sign", x, single("Sign", x)))
    cases.append(("isnan", special, single("IsNaN", special, out_type=TensorProto.BOOL)))
    for p, n in ((1, 1), (1, 0), (0, 1)):
        cases.append(("isinf_p%d_n%d" % (p, n), special,
                      single("IsInf", special, out_type=TensorProto.BOOL,
                             detect_positive=p, detect_negative=n)))
    cases.append(("tile", x, single("Tile", x, [("repeats", np.array([2, 1, 3], np.int64))])))
    with tempfile.TemporaryDirectory() as tmp:
        for name, data, model in cases:
            path = os.path.join(tmp, name + ".onnx")
            onnx.save(model, path)
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            want = sess.run(None, {"x": data})[0]
            err = run_case(name, path, {"x": data}, {"y": want}, {}, opt, run, tmp)
            check(err is None, name + ("" if err is None else ": " + err))
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
