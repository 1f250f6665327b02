#!/usr/bin/env python3
"""GPT-2 124M on one GPU: colossal-run's CUDA backend beside PyTorch eager and
torch.compile, in one script (run by scripts/gpu_check.sh on the GPU machine).

Training: seq 1024, bf16 compute (Colossal's --precision=bf16 plan; torch
autocast to bf16 with fp32 master weights), AdamW, the same global batch.
Tokens/s is the median over the steps after the warm-up; MFU counts
6 * parameters + 12 * layers * hidden * seq FLOPs per token (the usual
convention, attention included) against the GPU's dense bf16 peak.
Inference: the forward of a 128-token prompt at batch 1 and 8, median
latency (colossal-run --bench; torch under inference_mode with bf16 autocast).

Prints one line per measurement, starting with "train" or "infer", that
gpu_check.sh copies to its summary.

usage: bench/bench_gpu_gpt2.py --run build-gpu/bin/colossal-run
       --plans build-gpu-check/plans --tokens build-gpu-check/tokens.bin
       [--batch 8] [--layers 12 --hidden 768 --heads 12 --vocab 50257 --seq 1024]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# Dense bf16 peaks (TFLOP/s) of the GPUs this runs on.
PEAKS = {"H100": 989.4, "H200": 989.4, "A100": 312.0}


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln_1(x)).split(d, dim=2)
        q, k, v = (y.view(b, t, self.heads, d // self.heads).transpose(1, 2) for y in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.out(F.gelu(self.fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self, vocab, d, heads, layers, seq):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(seq, d)
        self.h = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1], device=ids.device))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def peak_tflops():
    name = torch.cuda.get_device_name()
    for key, value in PEAKS.items():
        if key in name:
            return name, value
    return name, None


def torch_train(a, compiled, steps):
    torch.manual_seed(0)
    model = GPT(a.vocab, a.hidden, a.heads, a.layers, a.seq).cuda()
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    step_fn = torch.compile(model) if compiled else model
    ids = torch.randint(0, a.vocab, (a.batch, a.seq + 1), device="cuda")
    times = []
    for i in range(steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = step_fn(ids[:, :-1])
            loss = F.cross_entropy(logits.float().view(-1, a.vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    del model, opt
    torch.cuda.empty_cache()
    warm = 3 if compiled else 2
    return statistics.median(times[warm:]), params


def torch_infer(a, batch, prompt, reps=20):
    torch.manual_seed(0)
    model = GPT(a.vocab, a.hidden, a.heads, a.layers, a.seq).cuda().eval()
    ids = torch.randint(0, a.vocab, (batch, prompt), device="cuda")
    times = []
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        for i in range(reps + 3):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(ids)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    del model
    torch.cuda.empty_cache()
    return statistics.median(times[3:])


def colossal_train(a, steps):
    plan = os.path.join(a.plans, "gpt2-train-bf16.cplan")
    with tempfile.TemporaryDirectory() as tmp:
        metrics = os.path.join(tmp, "m.jsonl")
        r = subprocess.run([a.run, plan, "--backend=cuda", "--train", "--steps", str(steps),
                            "--data", a.tokens, "--log-every", "1", "--metrics", metrics],
                           capture_output=True, text=True)
        print(r.stdout[-3000:], r.stderr[-3000:], sep="\n", file=sys.stderr)
        if r.returncode != 0:
            raise RuntimeError("colossal-run --train failed")
        rows = [json.loads(l) for l in open(metrics)]
    # Per-step wall time from the metrics' elapsed_s, after the first two.
    elapsed = [r["elapsed_s"] for r in rows if "elapsed_s" in r]
    per_step = [b - c for b, c in zip(elapsed[1:], elapsed[:-1])]
    return statistics.median(per_step[2:]) if len(per_step) > 2 else float("nan")


def colossal_infer(a, batch, prompt, reps=20):
    plan = os.path.join(a.plans, f"gpt2-infer-b{batch}.cplan")
    with tempfile.TemporaryDirectory() as tmp:
        ids = os.path.join(tmp, "input_ids.npy")
        np.save(ids, np.random.default_rng(0).integers(0, a.vocab, (batch, prompt), dtype=np.int64))
        r = subprocess.run([a.run, plan, "--backend=cuda", "--input", f"input_ids={ids}",
                            "--bench", str(reps), "--warmup", "3"], capture_output=True, text=True)
        print(r.stdout[-2000:], r.stderr[-2000:], sep="\n", file=sys.stderr)
        if r.returncode != 0:
            raise RuntimeError("colossal-run --bench failed")
    m = re.search(r"p50[^0-9]*([0-9.]+)\s*(ms|s|us)", r.stdout)
    if not m:
        raise RuntimeError("no p50 in colossal-run's output")
    scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6}[m.group(2)]
    return float(m.group(1)) * scale


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True)
    ap.add_argument("--plans", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=12)
    a = ap.parse_args()
    name, peak = peak_tflops()
    tokens = a.batch * a.seq
    flops_per_token = None

    results = {}
    for label, fn in [("colossal", lambda: (colossal_train(a, a.steps), None)),
                      ("torch eager", lambda: torch_train(a, False, a.steps)),
                      ("torch.compile", lambda: torch_train(a, True, a.steps))]:
        try:
            step, params = fn()
        except Exception as e:  # report and go on: the other rows still count
            print(f"train {label}: failed ({e})")
            continue
        if params is not None and flops_per_token is None:
            flops_per_token = 6 * params + 12 * a.layers * a.hidden * a.seq
        results[label] = step
    for label, step in results.items():
        tps = tokens / step
        mfu = (f", MFU {100 * tps * flops_per_token / (peak * 1e12):.1f}%"
               if peak and flops_per_token else "")
        print(f"train {label}: {step * 1e3:.1f} ms/step, {tps:,.0f} tokens/s{mfu} "
              f"(GPT-2 124M, batch {a.batch} x {a.seq}, bf16, AdamW, {name})")
    if "colossal" in results and "torch.compile" in results:
        print(f"train colossal vs torch.compile: {results['torch.compile'] / results['colossal']:.2f}x "
              f"(> 1: colossal faster; goal > 1)")

    for batch in (1, 8):
        row = {}
        for label, fn in [("colossal", lambda: colossal_infer(a, batch, 128)),
                          ("torch eager", lambda: torch_infer(a, batch, 128))]:
            try:
                row[label] = fn()
            except Exception as e:
                print(f"infer batch {batch} {label}: failed ({e})")
        for label, t in row.items():
            print(f"infer batch {batch} {label}: {t * 1e3:.2f} ms (prompt 128, bf16, {name})")
        if len(row) == 2:
            print(f"infer batch {batch}: colossal latency is {100 * (1 - row['colossal'] / row['torch eager']):.0f}% "
                  f"lower than torch eager (goal: 30%)")


if __name__ == "__main__":
    main()
