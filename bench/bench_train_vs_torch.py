#!/usr/bin/env python3
"""Training step time: colossal-run --train vs PyTorch eager, same model,
same batch, same optimizer (AdamW), same thread count, one script.

Model: a GPT-2-small-shaped decoder (12 layers, hidden 768, 12 heads, vocab
50257, untied lm_head; scripts/models/export_torch.py's GPT) at sequence
128, exported to ONNX with torch's initial weights. Colossal's step time is
the median of the per-step wall times after the first step (from its
--metrics elapsed_s); torch's is the median of timed steps after a warm-up
(zero_grad, forward, cross-entropy, backward, AdamW step). Prints both and
the ratio torch / colossal (> 1 means Colossal is faster).

usage: bench/bench_train_vs_torch.py [--threads 2] [--batch 4] [--steps 5]
       [--layers 12] [--build build]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts", "models"))
from export_torch import GPT  # noqa: E402

VOCAB, D, HEADS, SEQ = 50257, 768, 12, 128


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5, help="timed steps + 1 warm-up")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = GPT(vocab=VOCAB, d=D, n_head=HEADS, n_layer=a.layers, block_size=SEQ)
    n_params = sum(p.numel() for p in model.parameters())
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, VOCAB, size=200_000).astype(np.uint16)

    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = os.path.join(tmp, "gpt2s.onnx")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.zeros(a.batch, SEQ, dtype=torch.long),),
                              onnx_path, opset_version=17, input_names=["input_ids"],
                              output_names=["logits"], do_constant_folding=True)
        data = os.path.join(tmp, "tokens.bin")
        tokens.tofile(data)
        plan = os.path.join(tmp, "train.cplan")
        t0 = time.perf_counter()
        subprocess.run([os.path.join(a.build, "bin", "colossal-opt"), onnx_path,
                        "--mode=train", "--loss=cross-entropy", "--optimizer=adamw",
                        "--lr=1e-4", "--emit=plan", "-o", plan], check=True)
        compile_s = time.perf_counter() - t0
        metrics = os.path.join(tmp, "m.jsonl")
        out = subprocess.run([os.path.join(a.build, "bin", "colossal-run"), plan, "--train",
                              f"--steps={a.steps}", f"--data={data}", "--log-every=1",
                              f"--metrics={metrics}", f"--threads={a.threads}",
                              "--data-order=sequential"],
                             check=True, capture_output=True, text=True).stdout
        arena = [l for l in out.splitlines() if l.startswith("arena:")][0]
        elapsed = [json.loads(l)["elapsed_s"] for l in open(metrics)]
        ours = statistics.median(np.diff(elapsed)) * 1e3

        # Torch eager on the same windows.
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        times = []
        for s in range(a.steps):
            x = np.stack([tokens[(s * a.batch + r) * SEQ:(s * a.batch + r) * SEQ + SEQ]
                          for r in range(a.batch)]).astype(np.int64)
            y = np.stack([tokens[(s * a.batch + r) * SEQ + 1:(s * a.batch + r) * SEQ + SEQ + 1]
                          for r in range(a.batch)]).astype(np.int64)
            x, y = torch.tensor(x), torch.tensor(y)
            t0 = time.perf_counter()
            opt.zero_grad()
            loss = F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1))
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
        theirs = statistics.median(times[1:]) * 1e3

    tokens_per_step = a.batch * SEQ
    print(f"GPT-2-small-shaped training step ({a.layers} layers, hidden {D}, vocab "
          f"{VOCAB}, {n_params / 1e6:.1f}M parameters), batch {a.batch} x seq {SEQ}, "
          f"AdamW, {a.threads} threads")
    print(f"  colossal-opt compile: {compile_s:.2f} s; {arena}")
    print(f"  colossal-run --train: {ours:9.1f} ms/step ({tokens_per_step / ours * 1e3:.0f} tok/s)")
    print(f"  torch eager:          {theirs:9.1f} ms/step ({tokens_per_step / theirs * 1e3:.0f} tok/s)")
    print(f"  ratio torch / colossal: {theirs / ours:.2f} (> 1: Colossal faster)")


if __name__ == "__main__":
    main()
