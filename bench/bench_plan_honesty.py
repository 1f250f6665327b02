#!/usr/bin/env python3
"""Honesty of the cost model: for 12 plans of one small GPT on 2 ranks (1
thread each) -- dp, ZeRO-3, tp, pipelines with each schedule, recomputation,
optimizer and activation offload, Ulysses and ring sequence parallelism -- the measured training step time next to the one the
cost model predicts for the same plan on a cpu cluster spec measured on this
machine (bench_dist_step.py's probes: SGEMM rate of one thread, memory
bandwidth, Gloo all-reduce latency and bandwidth), the ratio per plan, and
the rank correlation (Spearman) between the predicted and the measured
order. Beside it, the compiled program's own prediction: the slowest rank's
instructions, each at the time colossal-predict-times gives it, summed (from
a short --profile run), which shows what the partitioned program does that
the per-layer model does not charge. Also each plan's arena next to
--estimate's predicted peak (rank 0's program). Prints figures; asserts
nothing.

Usage: bench/bench_plan_honesty.py --build build [--steps 20] [--reps 3]
"""
import argparse
import json
import os
import re
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_dist_step as dist  # noqa: E402

ROOT = os.path.join(HERE, "..")
LAYERS, HIDDEN, HEADS, VOCAB, SEQ, BATCH = (dist.LAYERS, dist.HIDDEN, dist.HEADS,
                                            dist.VOCAB, dist.SEQ, dist.BATCH)
MICRO = 4  # micro-batches of the pipelines
# (label, --parallel, micro-batches)
PLANS = [
    ("dp=2", "dp=2", 1),
    ("dp=2 zero=3", "dp=2,zero=3", 1),
    ("tp=2", "tp=2", 1),
    ("pp=2 gpipe", "pp=2,schedule=gpipe", MICRO),
    ("pp=2 1f1b", "pp=2,schedule=1f1b", MICRO),
    ("pp=2 interleaved:2", "pp=2,schedule=interleaved:2", MICRO),
    ("dp=2 recompute", "dp=2,recompute=full", 1),
    ("dp=2 offload", "dp=2,offload=optimizer", 1),
    ("pp=2 1f1b recompute", "pp=2,schedule=1f1b,recompute=full", MICRO),
    ("sp=2 ulysses", "sp=2,sp-mode=ulysses", 1),
    ("sp=2 ring", "sp=2,sp-mode=ring", 1),
    ("dp=2 offload acts", "dp=2,offload=activations", 1),
]


def flags(parallel, micro):
    f = [f"--bind=batch={BATCH // micro},seq={SEQ}", "--mode=train",
         "--loss=cross-entropy", "--optimizer=adamw", "--lr=1e-3",
         "--parallel=" + parallel]
    if micro > 1:
        f.append(f"--micro-batches={micro}")
    return f


def compile_plan(ctx, spec, label, parallel, micro):
    plan = os.path.join(ctx["tmp"], re.sub(r"[^a-z0-9]+", "_", label) + ".cplan")
    # With the measured spec, so each instruction's predicted time
    # (colossal-predict-times) is this machine's.
    r = subprocess.run([ctx["opt"], ctx["model"], "--emit=plan", "-o", plan,
                        f"--cluster={spec}:gpus_per_node=2"]
                       + flags(parallel, micro), text=True, capture_output=True)
    if r.returncode != 0:
        return None, r.stderr.strip().splitlines()[-1]
    return plan, None


def estimate(ctx, spec, parallel, micro):
    out = dist.sh([ctx["opt"], ctx["model"], "--estimate",
                   f"--cluster={spec}:gpus_per_node=2", "--dtype=fp32"]
                  + flags(parallel, micro)).stdout
    e = json.loads(out)
    return (e["step_time_s"], e["peak_memory_bytes"], e["time"],
            e.get("analytic_peak_memory_bytes", 0))


def instruction_sums(ctx, plan, steps=6):
    """--profile of a short run: per rank, the sum over its instructions of
    the compiler's predicted time and of the measured time, per run; the
    slowest rank's (by measured) pair."""
    trace = os.path.join(ctx["tmp"], os.path.basename(plan) + ".trace.json")
    dist.sh([ctx["run"], plan, "--ranks", "2", "--threads", "1", "--train",
             f"--steps={steps}", "--data=" + ctx["tokens"], "--profile=" + trace])
    pairs = []
    for r in range(2):
        with open(trace.replace(".json", f".rank{r}.summary.json")) as f:
            s = json.load(f)
        pairs.append((s["measured_s_per_run"], s["predicted_s_per_run"]))
    return max(pairs)


def spearman(a, b):
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    ctx = dist.workspace(args.build, "colossal-bench-honesty-")
    print(f"model: GPT {LAYERS} layers, hidden {HIDDEN}, seq {SEQ}, global batch "
          f"{BATCH}, AdamW; pipelines: {MICRO} micro-batches; {args.steps} steps x "
          f"{args.reps} interleaved repetitions, 2 ranks, 1 thread each; machine: "
          f"{os.cpu_count()} cores")
    spec = dist.measured_spec(ctx)

    plans = {label: compile_plan(ctx, spec, label, p, m) for label, p, m in PLANS}
    times = {label: [] for label, (plan, _) in plans.items() if plan}
    arenas = {}
    for _ in range(args.reps):
        for label, (plan, _) in plans.items():
            if plan:
                t, arenas[label] = dist.step_time(ctx, plan, 2, args.steps)
                times[label].append(t)

    sums = {label: instruction_sums(ctx, plan) for label, (plan, _) in plans.items()
            if plan}

    rows = []
    print(f"\n{'plan':22} {'measured':>9} {'predicted':>10} {'ratio':>6} "
          f"{'instr. sum':>10} {'ratio':>6} "
          f"{'arena':>9} {'pred. mem':>10} {'mem ratio':>9} {'layer model':>11} "
          f"{'ratio':>6}  predicted breakdown (ms)")
    for label, p, m in PLANS:
        plan, why = plans[label]
        if not plan:
            print(f"{label:22} not executable: {why[:90]}")
            continue
        med = float(np.median(times[label]))
        pred, mem, parts, analytic = estimate(ctx, spec, p, m)
        inst = sums[label][1]
        rows.append((label, med, pred, inst))
        top = ", ".join(f"{k} {v * 1e3:.2f}" for k, v in sorted(
            parts.items(), key=lambda kv: -kv[1]) if v > 0)[:80]
        print(f"{label:22} {med * 1e3:7.2f}ms {pred * 1e3:8.2f}ms {med / pred:5.2f}x "
              f"{inst * 1e3:8.2f}ms {med / inst:5.2f}x "
              f"{arenas[label]:9d} {mem:10d} {mem / arenas[label]:8.3f}x "
              f"{int(analytic):11d} {analytic / arenas[label]:5.2f}x  {top}")
    if len(rows) >= 3:
        for what, col, goal in (
                ("the cost model's step estimate (--estimate)", 2, " (goal >= 0.8)"),
                ("the compiled programs' instructions, each at its predicted time "
                 "(colossal-predict-times), summed on the slowest rank", 3, "")):
            ratios = [r[1] / r[col] for r in rows]
            print(f"{what}, over {len(rows)} plans: rank correlation (Spearman) "
                  f"with the measured step times "
                  f"{spearman([r[1] for r in rows], [r[col] for r in rows]):.2f}"
                  f"{goal}; measured / predicted: median {np.median(ratios):.2f}x, "
                  f"range {min(ratios):.2f}x..{max(ratios):.2f}x")
    print("instr. sum: the slowest rank's instructions at their predicted "
          "times, summed (a receive counts its transfer, not its wait: a "
          "pipeline's bubble is not in it); ")
    print("ratio: measured step time over predicted; mem ratio: --estimate's "
          "peak (the worst stage for pipelines) over rank 0's arena; layer "
          "model: the per-layer cost model's peak (what the search compares), "
          "over the arena")


if __name__ == "__main__":
    main()
