#!/usr/bin/env python3
"""Imports a GPT-3-sized model (96 layers, hidden 12288, 96 heads, seq 2048,
vocab 51200, ~175B parameters) whose weights are absent external data, and
prints colossal-opt's wall time and peak memory. The goal (issue 2): under
10 s and under 2 GB.

Baseline, measured in the same run: onnx's own shape inference over the same
model (onnx.shape_inference.infer_shapes with the dimensions bound), the
closest thing the ONNX toolchain has to an import with static shapes.

usage: bench/import_gpt175b.py [--build build] [--repeat 3]
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(cmd, repeat):
    wrapper = [sys.executable, "-c",
               "import resource,subprocess,sys,time;"
               "t=time.perf_counter();"
               "subprocess.run(sys.argv[1:],check=True,stdout=subprocess.DEVNULL);"
               "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"]
    times, rss = [], []
    for _ in range(repeat):
        out = subprocess.run(wrapper + cmd, check=True, capture_output=True, text=True).stdout
        t, r = out.split()
        times.append(float(t))
        rss.append(int(r) / 1024.0)
    return statistics.median(times), max(rss)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    opt = os.path.join(args.build, "bin", "colossal-opt")
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "gpt175b.onnx")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/models/gpt2.py"),
                        "--layers", "96", "--hidden", "12288", "--heads", "96",
                        "--seq", "2048", "--vocab", "51200", "--tied",
                        "--weights", "none", "-o", model],
                       check=True, stdout=subprocess.DEVNULL)
        size_kib = os.path.getsize(model) / 1024
        ours_t, ours_rss = measure(
            [opt, model, "--bind", "batch=1,seq=2048", "-o", os.devnull], args.repeat)
        fused_t, fused_rss = measure(
            [opt, model, "--bind", "batch=1,seq=2048", "--colossal-fuse-attention",
             "--canonicalize", "-o", os.devnull], args.repeat)
        baseline = ("import onnx,sys;"
                    "m=onnx.load(sys.argv[1],load_external_data=False);"
                    "[d.dim.__getitem__(i).__setattr__('dim_value',[1,2048][i]) "
                    " for v in m.graph.input for d in [v.type.tensor_type.shape] for i in range(len(d.dim))];"
                    "onnx.shape_inference.infer_shapes(m)")
        base_t, base_rss = measure([sys.executable, "-c", baseline, model], args.repeat)

    print("GPT 175B (96 layers, hidden 12288, 96 heads, seq 2048, vocab 51200),")
    print(f"weights absent (external data), model file {size_kib:.0f} KiB; median of {args.repeat}")
    print(f"{'what':48s} {'wall s':>8s} {'peak MiB':>9s}")
    print(f"{'colossal-opt import':48s} {ours_t:8.2f} {ours_rss:9.0f}")
    print(f"{'colossal-opt import + fuse-attention + canonicalize':48s} {fused_t:8.2f} {fused_rss:9.0f}")
    print(f"{'baseline: onnx shape inference (python)':48s} {base_t:8.2f} {base_rss:9.0f}")
    print(f"import time / baseline time: {ours_t / base_t:.2f}x")
    goal = ours_t < 10 and ours_rss < 2048
    print(f"goal (< 10 s, < 2 GiB): {'met' if goal else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
