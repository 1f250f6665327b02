#!/usr/bin/env python3
"""--estimate of a compiled training step predicts each rank's peak memory:
for GPT-2, LLaMA (GQA, RMSNorm, SwiGLU) and ResNet-style models under every
executable layout (1 rank, dp, ZeRO-1/2/3, tp, tp-sp, dp x tp, ZeRO-3 x tp),
the estimate's peak_memory_bytes (the per-rank program's buffers added up op
by op) is within 10% of, and never above, the arena the memory plan gives
the same program (the runtime's peak device bytes, which the parity tests
check equal the arena). The cost model's per-layer figure is printed beside
it. Compiles only; runs nothing.

Usage: test/e2e/estimate_memory.py --build BUILD
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
TRAIN = ["--mode=train", "--loss=cross-entropy", "--optimizer=adamw"]
TRANSFORMER = ["", "dp=2", "dp=2,zero=1", "dp=2,zero=2", "dp=2,zero=3", "tp=2",
               "tp=2,tp-sp=1", "dp=2,tp=2", "dp=2,zero=3,tp=2", "tp=4"]
CNN = ["", "dp=2", "dp=2,zero=2", "dp=4,zero=3"]


def devices(parallel):
    n = 1
    for key in ("dp", "tp"):
        m = re.search(key + r"=(\d+)", parallel)
        n *= int(m.group(1)) if m else 1
    return n


def check(opt, model, bind, parallel, failures):
    flags = [model, bind] + TRAIN + (["--parallel=" + parallel] if parallel else [])
    mlir = subprocess.run([opt] + flags + ["--emit=mlir"], check=True,
                          capture_output=True, text=True).stdout
    arena = int(re.search(r"cg.arena_bytes = (\d+)", mlir).group(1))
    out = subprocess.run([opt] + flags + [
        "--estimate", "--dtype=fp32",
        f"--cluster=cpu:gpus_per_node={devices(parallel)}"],
        check=True, capture_output=True, text=True).stdout
    est = json.loads(out)
    peak = est["peak_memory_bytes"]
    ratio = peak / arena
    name = f"{os.path.basename(model)} {parallel or '1 rank'}"
    print(f"{name:32} arena {arena:10d}  estimate {peak:10d} ({ratio:.3f})  "
          f"analytic {est['analytic_peak_memory_bytes'] / arena:.2f}  "
          f"peak at {est['program_memory']['peak_at'][:40]}")
    if est["memory_source"] != "program" or not (0.9 <= ratio <= 1.0):
        failures.append(f"{name}: estimate {peak} vs arena {arena}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    opt = os.path.join(args.build, "bin", "colossal-opt")
    py = sys.executable
    models = os.path.join(ROOT, "scripts", "models")
    failures = []
    with tempfile.TemporaryDirectory(prefix="colossal-estimate-memory-") as tmp:
        gpt = os.path.join(tmp, "gpt.onnx")
        subprocess.run([py, os.path.join(models, "gpt2.py"), "--layers", "2",
                        "--hidden", "64", "--heads", "4", "--vocab", "128",
                        "--seq", "32", "-o", gpt], check=True, capture_output=True)
        llama = os.path.join(tmp, "llama.onnx")
        subprocess.run([py, os.path.join(models, "llama.py"), "--layers", "2",
                        "--hidden", "64", "--heads", "4", "--kv-heads", "2",
                        "--ffn", "128", "--vocab", "96", "--seq", "32", "-o",
                        llama], check=True, capture_output=True)
        cnn = os.path.join(tmp, "cnn.onnx")
        subprocess.run([py, os.path.join(models, "resnet.py"), "--blocks", "2",
                        "--width", "8", "--image", "16", "--classes", "10",
                        "-o", cnn], check=True, capture_output=True)
        for parallel in TRANSFORMER:
            check(opt, gpt, "--bind=batch=8,seq=32", parallel, failures)
            check(opt, llama, "--bind=batch=8,seq=32", parallel, failures)
        for parallel in CNN:
            check(opt, cnn, "--bind=batch=8", parallel, failures)
    if failures:
        print("FAIL: the predicted peak is not within 10% below the arena:\n  " +
              "\n  ".join(failures))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
