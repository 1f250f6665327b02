#!/usr/bin/env python3
"""Inference latency: colossal-run vs onnxruntime, same model, same inputs,
same thread count, same machine, one script.

Models: a GPT-2-small-shaped decoder (12 layers, hidden 768, 12 heads,
vocab 50257, seq 128) at batch 1 and 8, and a ResNet-style CNN (ResNet-18
layout, 224x224, batch 1). Prints each median latency and the ratio
onnxruntime / colossal (> 1 means Colossal is faster).

usage: bench/bench_vs_onnxruntime.py [--threads 2] [--runs 10] [--build build]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench_ort(path, feeds, threads, runs, warmup=3):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    for _ in range(warmup):
        sess.run(None, feeds)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def bench_colossal(path, feeds, bind, threads, runs, tmp, opt, run):
    plan = os.path.join(tmp, os.path.basename(path) + f".{bind}.cplan")
    subprocess.run([opt, path, "--bind", bind, "--mode=infer", "--emit=plan", "-o", plan],
                   check=True)
    args = [run, plan, "--threads", str(threads), "--bench", str(runs),
            "--output-dir", os.path.join(tmp, "out")]
    for k, v in feeds.items():
        p = os.path.join(tmp, f"{k}.npy")
        np.save(p, v)
        args += ["--input", f"{k}={p}"]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    m = re.search(r"p50[^0-9]*([0-9.]+)", out)
    if not m:
        raise RuntimeError("colossal-run --bench printed no p50:\n" + out)
    return float(m.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    opt = os.path.join(args.build, "bin", "colossal-opt")
    run = os.path.join(args.build, "bin", "colossal-run")
    py = sys.executable
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        gpt = os.path.join(tmp, "gpt2small.onnx")
        subprocess.run([py, os.path.join(ROOT, "scripts/models/gpt2.py"), "--layers", "12",
                        "--hidden", "768", "--heads", "12", "--vocab", "50257", "--seq", "128",
                        "--weights", "external", "-o", gpt], check=True, stdout=subprocess.DEVNULL)
        for batch in (1, 8):
            feeds = {"input_ids": rng.integers(0, 50257, size=(batch, 128)).astype(np.int64)}
            o = bench_ort(gpt, feeds, args.threads, args.runs)
            c = bench_colossal(gpt, feeds, f"batch={batch},seq=128", args.threads, args.runs,
                               tmp, opt, run)
            rows.append((f"GPT-2 small, seq 128, batch {batch}", c, o))
        resnet = os.path.join(tmp, "resnet18.onnx")
        subprocess.run([py, os.path.join(ROOT, "scripts/models/resnet.py"), "--weights",
                        "external", "-o", resnet], check=True, stdout=subprocess.DEVNULL)
        feeds = {"pixels": rng.standard_normal((1, 3, 224, 224)).astype(np.float32)}
        o = bench_ort(resnet, feeds, args.threads, args.runs)
        c = bench_colossal(resnet, feeds, "batch=1", args.threads, args.runs, tmp, opt, run)
        rows.append(("ResNet-18 layout, 224x224, batch 1", c, o))
    print(f"threads {args.threads}, median of {args.runs} runs after warm-up")
    print(f"{'model':40s} {'colossal ms':>12s} {'onnxruntime ms':>15s} {'ort/colossal':>13s}")
    for name, c, o in rows:
        print(f"{name:40s} {c:12.2f} {o:15.2f} {o / c:13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
