#!/usr/bin/env python3
"""float64 on the CPU runtime: a model with float64 inputs and initializers
(MatMul with weights, Add, Exp, ReduceSum, Max, CumSum, TopK, Gather,
Concat, Cast to float32) runs equal to onnxruntime to double precision
(1e-12 relative, which float32 arithmetic would miss by 1e5x); an op
without a float64 kernel (Softmax) ends with a message that says what runs
in float64 and to cast; a training step over float64 weights is refused at
compile time.

usage: test/e2e/float64_ops.py --build BUILD
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


def model(nodes, inputs, outputs, inits):
    g = helper.make_graph(nodes, "f64", inputs, outputs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    opt = os.path.join(args.build, "bin", "colossal-opt")
    run = os.path.join(args.build, "bin", "colossal-run")
    check = Checks()
    rng = np.random.default_rng(0)
    D = TensorProto.DOUBLE
    x = rng.standard_normal((4, 5))
    inits = [numpy_helper.from_array(rng.standard_normal((5, 3)), "w"),
             numpy_helper.from_array(rng.standard_normal(3), "b"),
             numpy_helper.from_array(np.array([1], np.int64), "axes"),
             numpy_helper.from_array(np.array([2], np.int64), "k"),
             numpy_helper.from_array(np.array(1, np.int64), "axis0"),
             numpy_helper.from_array(np.array([2, 0], np.int64), "rows")]
    n = helper.make_node
    nodes = [n("MatMul", ["x", "w"], ["m"]), n("Add", ["m", "b"], ["a"]),
             n("Exp", ["a"], ["e"]), n("ReduceSum", ["e", "axes"], ["s"], keepdims=0),
             n("Max", ["a", "m"], ["mx"]), n("CumSum", ["mx", "axis0"], ["cs"]),
             n("TopK", ["cs", "k"], ["tv", "ti"], axis=1),
             n("Gather", ["cs", "rows"], ["g"], axis=1),
             n("Concat", ["g", "tv"], ["cat"], axis=1),
             n("Cast", ["s"], ["s32"], to=TensorProto.FLOAT)]
    m = model(nodes, [helper.make_tensor_value_info("x", D, [4, 5])],
              [helper.make_tensor_value_info(o, t, None)
               for o, t in (("s", D), ("cat", D), ("ti", TensorProto.INT64),
                            ("s32", TensorProto.FLOAT))], inits)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "f64.onnx")
        onnx.save(m, path)
        want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(
            None, {"x": x})
        plan = os.path.join(tmp, "f64.cplan")
        r = subprocess.run([opt, path, "--mode=infer", "--emit=plan", "-o", plan],
                           capture_output=True, text=True)
        check(r.returncode == 0, "float64 model compiles" + ("" if r.returncode == 0
                                                              else ": " + r.stderr[-300:]))
        np.save(os.path.join(tmp, "x.npy"), x)
        out = os.path.join(tmp, "out")
        r = subprocess.run([run, plan, "--input", "x=" + os.path.join(tmp, "x.npy"),
                            "--output-dir", out], capture_output=True, text=True)
        check(r.returncode == 0, "float64 model runs" + ("" if r.returncode == 0
                                                          else ": " + r.stderr[-300:]))
        if r.returncode == 0:
            for name, w in zip(("s", "cat", "ti", "s32"), want):
                got = np.load(os.path.join(out, name + ".npy"))
                tol = 1e-12 if got.dtype == np.float64 else 1e-6
                ok = got.dtype == w.dtype and got.shape == w.shape and np.allclose(
                    got, w, rtol=tol, atol=0)
                err = np.abs(got.astype(np.float64) - w).max() if got.shape == w.shape else -1
                check(ok, f"output {name} ({got.dtype}) equals onnxruntime's ({w.dtype}) "
                          f"within {tol:g} relative (max abs diff {err:.3g})")

        # An op without a float64 kernel: a message, not a wrong answer.
        sm = model([n("Softmax", ["x"], ["y"], axis=1)],
                   [helper.make_tensor_value_info("x", D, [4, 5])],
                   [helper.make_tensor_value_info("y", D, None)], [])
        path = os.path.join(tmp, "softmax.onnx")
        onnx.save(sm, path)
        plan = os.path.join(tmp, "softmax.cplan")
        subprocess.run([opt, path, "--mode=infer", "--emit=plan", "-o", plan], check=True)
        r = subprocess.run([run, plan, "--input", "x=" + os.path.join(tmp, "x.npy")],
                           capture_output=True, text=True)
        line = next((ln for ln in (r.stderr + r.stdout).splitlines()
                     if "float64" in ln), "(no message)")
        check(r.returncode != 0 and "softmax: float64 is not supported" in line
              and "cast" in line, "softmax over float64 ends with a message: " + line[:240])

        # Training float64 weights: refused at compile time.
        path = os.path.join(tmp, "train.onnx")
        onnx.save(model([n("MatMul", ["x", "w"], ["y"])],
                        [helper.make_tensor_value_info("x", D, [4, 5])],
                        [helper.make_tensor_value_info("y", D, None)], inits[:1]), path)
        r = subprocess.run([opt, path, "--mode=train", "--loss=mse", "--optimizer=sgd",
                            "--emit=plan", "-o", os.path.join(tmp, "train.cplan")],
                           capture_output=True, text=True)
        check(r.returncode != 0 and "float64" in r.stderr,
              "training float64 weights is refused: " + r.stderr.strip()[-200:])
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
