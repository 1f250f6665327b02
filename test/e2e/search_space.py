#!/usr/bin/env python3
"""Every strategy kind the planner can emit either runs or is refused.

For each kind of decision the search makes (compiler/cost/ParallelConfig.h:
data parallelism, ZeRO 1-3, tensor parallelism 1D with and without its
sequence parallelism, 2D, 2.5D, 3D, pipelines with 1F1B and interleaved
schedules, sequence parallelism by Ulysses and by ring, recomputation
selective and full, offload of the optimizer state, of the weights and of
the activations), a small GPT is compiled with a layout that uses it; the
ones that execute train 2 steps on their ranks and match the 1-rank run
of the same global batch, the others are refused by --emit=plan with a
message that names the kind and says what executes. The set of kinds that
execute is checked against the expected one, so a kind that starts (or
stops) executing must be recorded here.

Usage: test/e2e/search_space.py --build BUILD
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from checks import Checks  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))

# (kind, --parallel, ranks, micro-batches, executes)
KINDS = [
    ("dp", "dp=2", 2, 1, True),
    ("zero=1", "dp=2,zero=1", 2, 1, True),
    ("zero=2", "dp=2,zero=2", 2, 1, True),
    ("zero=3", "dp=2,zero=3", 2, 1, True),
    ("tp 1d", "tp=2", 2, 1, True),
    ("tp 1d + tp-sp", "tp=2,tp-sp=1", 2, 1, True),
    ("tp 2d", "tp=4,tp-mode=2d", 4, 1, True),
    ("tp 2.5d", "tp=8,tp-mode=2.5d:2", 8, 1, True),
    ("tp 3d", "tp=8,tp-mode=3d", 8, 1, True),
    ("pp 1f1b", "pp=2,schedule=1f1b", 2, 2, True),
    ("pp interleaved", "pp=2,schedule=interleaved:2", 2, 2, True),
    ("sp ulysses", "sp=2,sp-mode=ulysses", 2, 1, True),
    ("sp ring", "sp=2,sp-mode=ring", 2, 1, True),
    ("sp ulysses + tp 1d", "sp=2,tp=2,sp-mode=ulysses", 4, 1, True),
    ("sp ring + tp 1d", "sp=2,tp=2,sp-mode=ring", 4, 1, True),
    ("sp ulysses + tp 2d", "sp=2,tp=4,tp-mode=2d,sp-mode=ulysses", 8, 1, True),
    ("sp ring + tp-sp", "sp=2,tp=2,tp-sp=1,sp-mode=ring", 4, 1, True),
    ("recompute selective", "dp=2,recompute=selective", 2, 1, True),
    ("recompute full", "dp=2,recompute=full", 2, 1, True),
    ("offload optimizer", "dp=2,offload=optimizer", 2, 1, True),
    ("offload params", "dp=2,zero=3,offload=params", 2, 1, True),
    ("offload activations", "dp=2,offload=activations", 2, 1, True),
]
GLOBAL_BATCH = 8
# (kind, --constrain, ranks, what the chosen plan must say): kinds the
# unconstrained search rarely picks for a tiny model on a cpu cluster.
SEARCHED = [
    ("tp 2d", "tp=4,tp-mode=2d", 4, {"tp": "4", "tp-mode": "2d"}),
    ("sp ulysses", "sp=2,sp-mode=ulysses", 2, {"sp": "2", "sp-mode": "ulysses"}),
    ("sp ring", "sp=2,sp-mode=ring", 2, {"sp": "2", "sp-mode": "ring"}),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    opt = os.path.join(args.build, "bin", "colossal-opt")
    run = os.path.join(args.build, "bin", "colossal-run")
    check = Checks()
    flags = ["--mode=train", "--loss=cross-entropy", "--optimizer=adamw", "--lr=3e-3"]

    def train(plan, data, tmp, tag, ranks):
        metrics = os.path.join(tmp, tag + ".jsonl")
        cmd = [run, plan, "--train", "--steps=2", "--data=" + data, "--log-every=1",
               "--metrics=" + metrics, "--threads=1"]
        if ranks > 1:
            cmd += ["--ranks", str(ranks)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError(p.stdout[-600:] + p.stderr[-900:])
        with open(metrics) as f:
            return [json.loads(l)["loss"] for l in f if l.strip()]

    with tempfile.TemporaryDirectory() as tmp:
        gpt = os.path.join(tmp, "gpt.onnx")
        # 8 heads and hidden 64 so every tp mode's mesh divides them.
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/models/gpt2.py"),
                        "--layers", "4", "--hidden", "64", "--heads", "8", "--vocab", "128",
                        "--seq", "16", "--weights", "real", "-o", gpt],
                       check=True, stdout=subprocess.DEVNULL)
        tokens = os.path.join(tmp, "tokens.bin")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/models/tokens.py"),
                        "-o", tokens, "--tokens", "20000"], check=True,
                       stdout=subprocess.DEVNULL)
        one = os.path.join(tmp, "one.cplan")
        subprocess.run([opt, gpt, "--bind", "batch=%d,seq=16" % GLOBAL_BATCH] + flags
                       + ["--emit=plan", "-o", one], check=True, capture_output=True)
        base = train(one, tokens, tmp, "one", 1)

        executed = set()
        for kind, parallel, ranks, micro, executes in KINDS:
            plan = os.path.join(tmp, kind.replace(" ", "_") + ".cplan")
            cmd = [opt, gpt, "--bind", "batch=%d,seq=16" % (GLOBAL_BATCH // micro)] + flags + [
                "--parallel=" + parallel, "--cluster=cpu:gpus_per_node=%d" % ranks,
                "--emit=plan", "-o", plan]
            if micro > 1:
                cmd.append("--micro-batches=%d" % micro)
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                said = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
                check(not executes and "cannot be executed yet" in said and
                      "compiled plans run" in said,
                      "%s (%s) is refused with what executes: %s"
                      % (kind, parallel, said[:160]))
                continue
            try:
                losses = train(plan, tokens, tmp, kind.replace(" ", "_"), ranks)
            except RuntimeError as e:
                check(False, "%s (%s) on %d ranks: %s" % (kind, parallel, ranks, e))
                continue
            err = max(abs(a - b) / abs(b) for a, b in zip(losses, base)) \
                if len(losses) == len(base) else float("inf")
            check(err <= 1e-5, "%s (%s) on %d ranks: 2 losses within %.1e of 1 rank"
                  % (kind, parallel, ranks, err))
            executed.add(kind)
        # The executable search (--auto-parallel --emit=plan) emits these
        # kinds too: constrained to one, it compiles a plan that runs.
        for kind, constrain, ranks, expect in SEARCHED:
            plan = os.path.join(tmp, "searched_" + kind.replace(" ", "_") + ".cplan")
            p = subprocess.run([opt, gpt, "--bind", "seq=16", "--batch=%d" % GLOBAL_BATCH,
                                "--cluster=cpu:gpus_per_node=%d" % ranks, "--auto-parallel",
                                "--constrain=" + constrain, "--emit=plan", "-o", plan]
                               + flags, capture_output=True, text=True)
            chose = re.search(r"auto-parallel chose (\S+);", p.stderr)
            cfg = dict(kv.split("=", 1) for kv in chose.group(1).split(",")) if chose else {}
            ok = p.returncode == 0 and all(cfg.get(k) == v for k, v in expect.items())
            check(ok, "the executable search constrained to %s chooses %s (%s)"
                  % (constrain, kind, chose.group(1) if chose else p.stderr[-300:]))
            if not ok:
                continue
            micro = GLOBAL_BATCH // (int(cfg["dp"]) * int(cfg["micro-batch"]))
            try:
                losses = train(plan, tokens, tmp, "searched_" + kind.replace(" ", "_"),
                               ranks)
            except RuntimeError as e:
                check(False, "searched %s on %d ranks: %s" % (kind, ranks, e))
                continue
            err = max(abs(a - b) / abs(b) for a, b in zip(losses, base)) \
                if len(losses) == len(base) else float("inf")
            check(err <= 1e-5, "searched %s (%s, %d micro-batch(es)) on %d ranks: 2 "
                  "losses within %.1e of 1 rank" % (kind, chose.group(1), micro, ranks, err))
        want = {k for k, _, _, _, e in KINDS if e}
        check(executed == want, "the kinds that execute are the expected %d of %d "
              "(missing: %s; unexpected: %s)" % (len(want), len(KINDS),
                                                  sorted(want - executed) or "none",
                                                  sorted(executed - want) or "none"))
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
