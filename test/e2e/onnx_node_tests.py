#!/usr/bin/env python3
"""Runs the ONNX backend node tests (onnx/backend/test/data/node/* from the
installed onnx package) through colossal-opt + colossal-run and compares the
outputs with the reference outputs (floating point: rtol 1e-3, atol 1e-5;
exact otherwise).

Graph inputs the importer needs at compile time (a Reshape's shape, axes,
starts: it says which) are frozen with --const-input from the test's own
data, as onnxsim would, one compile per data set.

Each test is: passed, failed, or unsupported (the importer refuses the model:
an operator, attribute or element type Colossal does not handle, with its
message). Prints the counts. With --check, fails when a test listed in the
expected-pass file (test/e2e/onnx_node_tests.pass) no longer passes; with
--update, rewrites that file.

usage: test/e2e/onnx_node_tests.py [--build build] [--check|--update] [-k FILTER] [-v]
                                   [--report docs/onnx-node-tests.md]
"""
import argparse
import concurrent.futures
import glob
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASS_FILE = os.path.join(ROOT, "test", "e2e", "onnx_node_tests.pass")
UNSUPPORTED = re.compile(r"does not support|not supported|is not supported|supported are|"
                         r"declares no opset|sizes must be positive|cannot cast to|"
                         r"only .* supported|has no runtime representation|"
                         r"is used as a tensor value|must be known at compile time|"
                         r"cannot cast|not a tensor|no shape")


def safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


NEEDS_CONSTANT = re.compile(r"\(input \d+, '([^']+)'\) must be known at compile time")


def compile_for(model_path, ds, inputs, opt, plan):
    """Compiles the model for dataset `ds`, freezing (--const-input) each
    graph input the importer says must be known at compile time (a shape,
    axes or starts input) from the dataset's own values, as a user who
    knows them would. Returns (returncode, stderr, frozen input names)."""
    frozen = {}
    while True:
        cmd = [opt, model_path, "--mode=infer", "--emit=plan", "-o", plan]
        for n, p in frozen.items():
            cmd += ["--const-input", f"{n}={p}"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        m = NEEDS_CONSTANT.search(r.stderr) if r.returncode > 0 else None
        if not m or m.group(1) not in inputs or m.group(1) in frozen or ds is None:
            return r.returncode, r.stderr, set(frozen)
        i = inputs.index(m.group(1))
        npy = plan + f".{i}.npy"
        np.save(npy, load_pb(os.path.join(ds, f"input_{i}.pb")))
        frozen[m.group(1)] = npy


def run_test(test_dir, opt, run, tmp):
    name = os.path.basename(test_dir)
    model_path = os.path.join(test_dir, "model.onnx")
    work = os.path.join(tmp, name)
    os.makedirs(work, exist_ok=True)
    try:
        model = onnx.load(model_path, load_external_data=False)
    except Exception as e:  # noqa: BLE001 - any load error is a test failure
        return name, "fail", f"cannot load: {e}"
    inits = {i.name for i in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in inits]
    outputs = [o.name for o in model.graph.output]
    datasets = sorted(glob.glob(os.path.join(test_dir, "test_data_set_*")))
    for ds in datasets or [None]:
        plan = os.path.join(work, "model-%s.cplan" % os.path.basename(ds or "none"))
        code, err, frozen = compile_for(model_path, ds, inputs, opt, plan)
        if code != 0:
            text = " ".join(err.strip().splitlines())[:300]
            if code < 0:
                return name, "fail", f"colossal-opt crashed: {text}"
            return name, ("unsupported" if UNSUPPORTED.search(err) else "fail"), text
        if ds is None:
            continue
        args = [run, plan, "--output-dir", os.path.join(work, "out")]
        for i, n in enumerate(inputs):
            if n in frozen:
                continue
            p = os.path.join(ds, f"input_{i}.pb")
            if not os.path.exists(p):
                return name, "fail", f"missing {p}"
            args += ["--input", f"{n}={p}"]
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            status = "fail"
            if r.returncode < 0:
                return name, status, f"colossal-run crashed (signal {-r.returncode})"
            return name, status, (r.stderr or r.stdout).strip()[:300]
        out_types = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
        for i, n in enumerate(outputs):
            want = load_pb(os.path.join(ds, f"output_{i}.pb"))
            if out_types.get(n) == onnx.TensorProto.BFLOAT16 and want.dtype == np.uint16:
                # bfloat16 references hold bit patterns; colossal-run writes
                # bfloat16 outputs as float32.
                want = (want.astype(np.uint32) << 16).view(np.float32)
            got_path = os.path.join(work, "out", safe(n) + ".npy")
            if not os.path.exists(got_path):
                return name, "fail", f"no output file for '{n}'"
            got = np.load(got_path)
            if got.shape != want.shape:
                return name, "fail", f"output '{n}' shape {got.shape} != {want.shape}"
            if out_types.get(n) == onnx.TensorProto.BFLOAT16:
                # One bfloat16 ulp: the reference rounds toward zero, the
                # kernels round to nearest even (as PyTorch does).
                ok = np.allclose(got, want, rtol=2.0**-7, atol=1e-5, equal_nan=True)
            elif want.dtype.kind == "f":
                ok = np.allclose(got, want, rtol=1e-3, atol=1e-5, equal_nan=True)
            else:
                ok = np.array_equal(got, want)
            if not ok:
                diff = np.abs(got.astype(np.float64) - want.astype(np.float64)).max()
                return name, "fail", f"output '{n}' differs (max abs diff {diff:.3g})"
    return name, "pass", ""


def reason(detail):
    """The refusal's message without the model path."""
    text = re.sub(r"^\S*model\.onnx:\d+:\d+: error: ", "", detail)
    return text.replace("|", "\\|").strip()


def write_report(path, results, counts):
    """Markdown: the totals, then each test that does not pass and why."""
    import onnx as _onnx
    lines = ["# ONNX backend node tests that do not pass", "",
             "Written by `test/e2e/onnx_node_tests.py --report` from the node tests "
             "of the installed onnx package (%s): %d passed, %d failed, %d refused "
             "of %d. Each refused test, with the importer's message:"
             % (_onnx.__version__, counts["pass"], counts["fail"],
                counts["unsupported"], len(results)), "",
             "| test | status | reason |", "|---|---|---|"]
    for name in sorted(results):
        status, detail = results[name]
        if status != "pass":
            lines.append("| %s | %s | %s |" % (name, "refused" if status == "unsupported"
                                               else status, reason(detail)[:240]))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--update", action="store_true")
    ap.add_argument("-k", default="")
    ap.add_argument("-v", action="store_true")
    ap.add_argument("-j", type=int, default=2)
    ap.add_argument("--report", default="",
                    help="write a markdown list of every test that does not pass, "
                         "with its reason (docs/onnx-node-tests.md)")
    args = ap.parse_args()
    opt = os.path.join(args.build, "bin", "colossal-opt")
    run = os.path.join(args.build, "bin", "colossal-run")
    node_dir = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")
    tests = sorted(d for d in glob.glob(os.path.join(node_dir, "test_*"))
                   if args.k in os.path.basename(d))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.j) as pool:
            futures = [pool.submit(run_test, t, opt, run, tmp) for t in tests]
            for f in concurrent.futures.as_completed(futures):
                try:
                    name, status, detail = f.result()
                except subprocess.TimeoutExpired as e:
                    name, status, detail = str(e.cmd), "fail", "timeout"
                results[name] = (status, detail)
    counts = {s: sum(1 for v in results.values() if v[0] == s)
              for s in ("pass", "fail", "unsupported")}
    if args.v:
        for name in sorted(results):
            status, detail = results[name]
            if status != "pass":
                print(f"{status:11s} {name}: {detail}")
    print(f"ONNX node tests: {counts['pass']} passed, {counts['fail']} failed, "
          f"{counts['unsupported']} unsupported (of {len(results)})")
    if args.report:
        write_report(args.report, results, counts)
    rc = 0
    if args.update:
        with open(PASS_FILE, "w") as f:
            f.write("# ONNX backend node tests that pass (test/e2e/onnx_node_tests.py --update)\n")
            for name in sorted(n for n, v in results.items() if v[0] == "pass"):
                f.write(name + "\n")
        print(f"wrote {PASS_FILE}")
    if args.check:
        with open(PASS_FILE) as f:
            expected = [l.strip() for l in f if l.strip() and not l.startswith("#")]
        regressed = [n for n in expected
                     if (not args.k or args.k in n) and results.get(n, ("missing",))[0] != "pass"]
        for n in regressed:
            print(f"REGRESSION {n}: {results.get(n, ('missing', 'not run'))}")
        if regressed:
            rc = 1
        print(f"{len(expected) - len(regressed)} passed, {len(regressed)} failed")
    return rc


if __name__ == "__main__":
    sys.exit(main())
