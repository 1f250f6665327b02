#!/usr/bin/env python3
"""A pipeline's measured bubble next to the cost model's.

A small GPT on 2 pipeline stages (2 ranks, 1 thread each) with GPipe and
1F1B at 4 and 8 micro-batches, profiled by colossal-run --profile (one
Chrome trace per rank). The bubble is measured as the cost model defines
it: the step time beyond the busiest stage's own work (its kernels,
collectives and copies; time in receives is idle), per step, the first
step left out. The prediction is --estimate's pipeline bubble plus its
point-to-point time (what a receive waits for beyond the bubble) with a cpu
cluster spec measured on this machine (bench_dist_step.py's probes), and
for reference the balanced-stage formula (p-1)/(m+p-1) of the step. Every
case runs --reps times, the cases interleaved; the figures are medians over
the repetitions. Besides the absolute bubbles it compares the bubble's share
of the step, measured and predicted, where the compute calibration (the
stage times' error, which the honesty benchmark reports) cancels. Prints
figures; asserts nothing.

Usage: bench/bench_pipeline_bubble.py --build build [--steps 12] [--reps 3]
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_dist_step as dist  # noqa: E402

ROOT = os.path.join(HERE, "..")
LAYERS, HIDDEN, HEADS, VOCAB, SEQ, BATCH = (dist.LAYERS, dist.HIDDEN, dist.HEADS,
                                            dist.VOCAB, dist.SEQ, dist.BATCH)
CASES = [("gpipe", 4), ("1f1b", 4), ("gpipe", 8), ("1f1b", 8)]


def flags(schedule, micro):
    return [f"--bind=batch={BATCH // micro},seq={SEQ}", "--mode=train",
            "--loss=cross-entropy", "--optimizer=adamw", "--lr=1e-3",
            f"--parallel=pp=2,schedule={schedule}", f"--micro-batches={micro}"]


def measured(ctx, plan, steps, tag):
    """(step seconds, bubble seconds, each rank's busy seconds): medians
    over the steps after the first."""
    trace = os.path.join(ctx["tmp"], tag + ".json")
    for r in range(2):  # a repetition's own trace, not an earlier one's
        stale = trace.replace(".json", f".rank{r}.json")
        if os.path.exists(stale):
            os.remove(stale)
    dist.sh([ctx["run"], plan, "--ranks", "2", "--threads", "1", "--train",
             f"--steps={steps}", "--data=" + ctx["tokens"], "--profile=" + trace])
    per_rank = []
    for r in range(2):
        with open(trace.replace(".json", f".rank{r}.json")) as f:
            events = [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X"]
        runs = {}
        for e in events:
            run = e["args"]["run"]
            lo, hi, busy = runs.get(run, (float("inf"), 0.0, 0.0))
            if e["cat"] != "recv":
                busy += e["dur"]
            runs[run] = (min(lo, e["ts"]), max(hi, e["ts"] + e["dur"]), busy)
        per_rank.append({k: v for k, v in runs.items() if k > 0})
    steps_s, bubbles, busy = [], [], [[], []]
    for run in sorted(per_rank[0]):
        if run not in per_rank[1]:
            continue
        span = max(per_rank[r][run][1] - per_rank[r][run][0] for r in range(2))
        work = [per_rank[r][run][2] for r in range(2)]
        steps_s.append(span * 1e-6)
        bubbles.append((span - max(work)) * 1e-6)
        for r in range(2):
            busy[r].append(work[r] * 1e-6)
    return (float(np.median(steps_s)), float(np.median(bubbles)),
            [float(np.median(b)) for b in busy])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--reps", type=int, default=3,
                    help="repetitions of every case, interleaved (A B C D A B ...)")
    args = ap.parse_args()
    ctx = dist.workspace(args.build, "colossal-bench-bubble-")
    print(f"model: GPT {LAYERS} layers, hidden {HIDDEN}, seq {SEQ}, global batch "
          f"{BATCH}, AdamW; pp=2 on 2 ranks, 1 thread each; {args.steps} steps "
          f"profiled (the first left out); machine: {os.cpu_count()} cores")
    spec = dist.measured_spec(ctx)
    print(f"\n{'schedule':9} {'m':>2} {'step':>8} {'bubble':>8} {'share':>6} "
          f"{'pred. bubble':>12} {'share':>6} {'ratio':>6} {'shares':>6} {'spread':>7} "
          f"{'(p-1)/(m+p-1)':>14}  stage work measured / predicted (ms)")
    plans, preds = {}, {}
    for schedule, micro in CASES:
        tag = f"{schedule}-{micro}"
        plans[tag] = os.path.join(ctx["tmp"], tag + ".cplan")
        dist.sh([ctx["opt"], ctx["model"], "--emit=plan", "-o", plans[tag]]
                + flags(schedule, micro))
        preds[tag] = json.loads(dist.sh([ctx["opt"], ctx["model"], "--estimate",
                                         f"--cluster={spec}:gpus_per_node=2",
                                         "--dtype=fp32"]
                                        + flags(schedule, micro)).stdout)
    # Interleaved repetitions, so the VM's slow spells hit every case.
    reps = {tag: [] for tag in plans}
    for rep in range(args.reps):
        for tag, plan in plans.items():
            reps[tag].append(measured(ctx, plan, args.steps, f"{tag}-{rep}"))
    for schedule, micro in CASES:
        tag = f"{schedule}-{micro}"
        runs = reps[tag]
        step = float(np.median([r[0] for r in runs]))
        bubble = float(np.median([r[1] for r in runs]))
        share = float(np.median([r[1] / r[0] for r in runs]))
        spread = (max(r[1] for r in runs) - min(r[1] for r in runs)) / max(bubble, 1e-12)
        busy = [float(np.median([r[2][k] for r in runs])) for k in range(2)]
        e = preds[tag]
        pred = e["time"]["pp_bubble"] + e["time"]["pp_p2p"]
        pstep = e["step_time_s"]
        stages = e.get("stage_times_s", [])
        formula = 1.0 / (micro + 1)
        print(f"{schedule:9} {micro:2d} {step * 1e3:6.2f}ms {bubble * 1e3:6.2f}ms "
              f"{share:5.0%} {pred * 1e3:10.2f}ms {pred / pstep:5.0%} "
              f"{bubble / pred:5.2f}x {share / (pred / pstep):5.2f}x {spread:6.0%} "
              f"{formula:13.0%}  "
              + " ".join(f"{b * 1e3:.2f}/{t * micro * 1e3:.2f}"
                         for b, t in zip(busy, stages)))
    print("bubble: step time minus the busiest rank's work (kernels, "
          "collectives, copies, sends; receives are idle); pred. bubble: "
          "--estimate's pp_bubble + pp_p2p; share: of the (measured, "
          "predicted) step; ratio: measured over predicted bubble; shares: "
          "measured over predicted share of the step (the compute "
          "calibration cancels); spread: of the measured bubble over the "
          "repetitions; medians of the repetitions' medians")


if __name__ == "__main__":
    main()
