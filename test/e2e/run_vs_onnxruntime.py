#!/usr/bin/env python3
"""End-to-end check: every generator model (small, real weights) and every
torch-exported model kept with real weights is compiled by colossal-opt
(--mode=infer --emit=plan), run by colossal-run, and compared with
onnxruntime on the same inputs (fp32: rtol 1e-4, atol 1e-5). Also checks
that the runtime's peak of allocated device bytes equals the arena size the
compiler planned.

usage: test/e2e/run_vs_onnxruntime.py [--build build] [-k FILTER]
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.path.join(ROOT, "scripts", "models")
RTOL, ATOL = 1e-4, 1e-5

# name, generator, generator args, bindings
GENERATED = [
    ("mlp", "mlp.py", ["--layers", "3", "--hidden", "32", "--in", "16", "--out", "5"], {"batch": 4}),
    ("mlp_matmul", "mlp.py", ["--layers", "2", "--linear", "matmul"], {"batch": 3}),
    ("gpt2", "gpt2.py", ["--layers", "2", "--hidden", "64", "--heads", "4", "--vocab", "128", "--seq", "32"], {"batch": 2, "seq": 16}),
    ("gpt2_tied_where_op13", "gpt2.py", ["--layers", "1", "--tied", "--mask", "where", "--opset", "13"], {"batch": 1, "seq": 8}),
    ("gpt2_div_op21", "gpt2.py", ["--layers", "1", "--scale-op", "div", "--opset", "21"], {"batch": 2, "seq": 32}),
    ("llama_gqa", "llama.py", ["--layers", "2", "--hidden", "64", "--heads", "4", "--kv-heads", "2", "--vocab", "128", "--seq", "32"], {"batch": 2, "seq": 12}),
    ("bert_pooler", "bert.py", ["--layers", "2", "--hidden", "64", "--heads", "4", "--vocab", "128", "--seq", "32", "--pooler"], {"batch": 3, "seq": 10}),
    ("resnet", "resnet.py", ["--blocks", "1,1", "--width", "8", "--image", "32", "--classes", "10"], {"batch": 2}),
    ("resnet_op13", "resnet.py", ["--blocks", "2", "--width", "8", "--image", "16", "--classes", "4", "--opset", "13"], {"batch": 1}),
]

NP_DTYPES = {1: np.float32, 7: np.int64, 6: np.int32, 9: np.bool_, 10: np.float16}


def random_inputs(model: onnx.ModelProto, bindings: dict, rng) -> dict:
    inits = {i.name for i in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        t = vi.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else bindings[d.dim_param]
                 for d in t.shape.dim]
        dtype = NP_DTYPES[t.elem_type]
        if dtype == np.int64 or dtype == np.int32:
            if "mask" in vi.name:
                v = (rng.random(shape) > 0.2).astype(dtype)
                if v.ndim == 2:
                    v[:, 0] = 1
            else:
                v = rng.integers(0, 100, size=shape).astype(dtype)
        elif dtype == np.bool_:
            v = rng.random(shape) > 0.5
        else:
            v = rng.standard_normal(shape).astype(dtype)
        feeds[vi.name] = v
    return feeds


def run_case(name, model_path, feeds, expected, bindings, opt, run, tmp):
    plan = os.path.join(tmp, name + ".cplan")
    bind = ",".join(f"{k}={v}" for k, v in bindings.items())
    cmd = [opt, model_path, "--mode=infer", "--emit=plan", "-o", plan]
    if bind:
        cmd += ["--bind", bind]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return f"colossal-opt failed: {r.stderr.strip()[:500]}"
    args = [run, plan, "--output-dir", os.path.join(tmp, name + "_out")]
    for k, v in feeds.items():
        p = os.path.join(tmp, f"{name}.{re.sub(r'[^A-Za-z0-9_.-]', '_', k)}.npy")
        np.save(p, v)
        args += ["--input", f"{k}={p}"]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        return f"colossal-run failed: {(r.stderr or r.stdout).strip()[:500]}"
    arena = re.search(r"arena: (\d+) bytes", r.stdout)
    peak = re.search(r"peak device bytes: (\d+)", r.stdout)
    if not arena or not peak:
        return f"colossal-run did not report arena/peak bytes:\n{r.stdout}"
    if arena.group(1) != peak.group(1):
        return f"peak device bytes {peak.group(1)} != planned arena {arena.group(1)}"
    for out_name, want in expected.items():
        fname = re.sub(r"[^A-Za-z0-9_.-]", "_", out_name) + ".npy"
        got = np.load(os.path.join(tmp, name + "_out", fname))
        if got.shape != want.shape:
            return f"output '{out_name}': shape {got.shape} != {want.shape}"
        if not np.allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True):
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
            return (f"output '{out_name}': max abs diff {diff.max():.3g} "
                    f"(rtol {RTOL}, atol {ATOL})")
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("-k", default="")
    args = ap.parse_args()
    opt = os.path.join(args.build, "bin", "colossal-opt")
    run = os.path.join(args.build, "bin", "colossal-run")
    rng = np.random.default_rng(0)
    failures = passed = 0
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    with tempfile.TemporaryDirectory() as tmp:
        cases = []
        for name, gen, gargs, bindings in GENERATED:
            path = os.path.join(tmp, name + ".onnx")
            subprocess.run([sys.executable, os.path.join(MODELS, gen), *gargs, "-o", path],
                           check=True, stdout=subprocess.DEVNULL)
            cases.append((name, path, bindings, None))
        for path in sorted(glob.glob(os.path.join(ROOT, "test", "models", "torch", "*_real.onnx"))):
            name = os.path.basename(path)[:-5]
            data = path[:-5]
            for ds in sorted(glob.glob(os.path.join(data, "test_data_set_*"))):
                cases.append((f"{name}/{os.path.basename(ds)}", path, None, ds))
        for name, path, bindings, dataset in cases:
            if args.k and args.k not in name:
                continue
            model = onnx.load(path)
            if dataset:
                inits = {i.name for i in model.graph.initializer}
                names = [i.name for i in model.graph.input if i.name not in inits]
                feeds = {}
                for i, n in enumerate(names):
                    t = onnx.TensorProto()
                    with open(os.path.join(dataset, f"input_{i}.pb"), "rb") as f:
                        t.ParseFromString(f.read())
                    feeds[n] = numpy_helper.to_array(t)
                # Bind symbolic dims from the data.
                bindings = {}
                for vi in model.graph.input:
                    if vi.name in feeds:
                        for d, size in zip(vi.type.tensor_type.shape.dim, feeds[vi.name].shape):
                            if d.dim_param:
                                bindings[d.dim_param] = size
            else:
                feeds = random_inputs(model, bindings, rng)
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            outs = sess.run(None, feeds)
            expected = {o.name: v for o, v in zip(sess.get_outputs(), outs)}
            safe = name.replace("/", "_")
            err = run_case(safe, path, feeds, expected, bindings, opt, run, tmp)
            status = "PASS" if err is None else "FAIL"
            print(f"{status} {name}" + ("" if err is None else f"\n     {err}"))
            if err is None:
                passed += 1
            else:
                failures += 1
    print(f"{passed} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
