#!/usr/bin/env python3
"""Activation recomputation computes the same training step with less memory.

For a GPT-2 (scripts/models/gpt2.py) and a torch-exported residual MLP with
dropout in training mode (masks drawn again in the backward must equal the
forward's), plans compiled with --parallel=...,recompute=none|selective|
full|full:K train with per-step losses equal to recompute=none (exactly:
the same kernels on the same values), and the arena of full recomputation is
smaller than without (full:K in between). A data-parallel plan with
recompute=full on 2 ranks matches the 1-rank run. Asking for recomputation
of an inference plan, or of a model without repeated layers, is refused
with a message.

Usage: test/e2e/recompute_parity.py --build BUILD
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from checks import Checks  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
STEPS = 6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    opt = os.path.join(args.build, "bin", "colossal-opt")
    run = os.path.join(args.build, "bin", "colossal-run")
    check = Checks()

    def compile_plan(model, bind, parallel, out, extra=()):
        p = subprocess.run([opt, model] + bind + ["--mode=train", "--loss=cross-entropy",
                            "--optimizer=adamw", "--parallel=" + parallel,
                            "--emit=plan", "-o", out] + list(extra),
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(p.stderr)

    def train(plan, data, tmp, tag, extra=()):
        metrics = os.path.join(tmp, tag + ".jsonl")
        p = subprocess.run([run, plan, "--train", "--steps=%d" % STEPS, "--data=" + data,
                            "--log-every=1", "--metrics=" + metrics, "--threads=1"]
                           + list(extra), capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(p.stdout + p.stderr)
        with open(metrics) as f:
            losses = [json.loads(l)["loss"] for l in f if l.strip()]
        m = re.search(r"peak device bytes: (\d+) .*arena: (\d+)", p.stdout + p.stderr)
        return losses, int(m.group(1)), int(m.group(2))

    with tempfile.TemporaryDirectory() as tmp:
        # GPT-2: every recompute mode against none.
        gpt = os.path.join(tmp, "gpt.onnx")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/models/gpt2.py"),
                        "--layers", "4", "--hidden", "64", "--heads", "4", "--vocab", "128",
                        "--seq", "32", "--weights", "real", "-o", gpt],
                       check=True, stdout=subprocess.DEVNULL)
        tokens = os.path.join(tmp, "tokens.bin")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/models/tokens.py"),
                        "-o", tokens, "--tokens", "20000"], check=True,
                       stdout=subprocess.DEVNULL)
        bind = ["--bind", "batch=8,seq=32"]
        results = {}
        for mode in ("none", "selective", "full", "full:2"):
            plan = os.path.join(tmp, "gpt-%s.cplan" % mode.replace(":", "-"))
            compile_plan(gpt, bind, "dp=1,recompute=" + mode, plan)
            results[mode] = train(plan, tokens, tmp, "gpt-" + mode.replace(":", "-"))
        base, _, arena = results["none"]
        for mode, (losses, peak, a) in results.items():
            check(peak == a, "gpt recompute=%s: peak device bytes equal the arena (%d)" % (mode, a))
            if mode != "none":
                check(losses == base, "gpt recompute=%s: %d losses equal recompute=none's"
                      % (mode, len(losses)))
        check(results["full"][2] < results["full:2"][2] < arena,
              "gpt arenas: full %d < full:2 %d < none %d bytes"
              % (results["full"][2], results["full:2"][2], arena))

        # Data parallel with recomputation on 2 ranks against 1 rank.
        plan = os.path.join(tmp, "gpt-dp2-full.cplan")
        compile_plan(gpt, bind, "dp=2,recompute=full", plan, ["--cluster=cpu:gpus_per_node=2"])
        losses, _, _ = train(plan, tokens, tmp, "gpt-dp2-full", ["--ranks", "2"])
        err = max(abs(a - b) / abs(b) for a, b in zip(losses, base))
        check(len(losses) == len(base) and err <= 1e-5,
              "gpt dp=2,recompute=full on 2 ranks: losses within %.1e of 1 rank (tol 1e-5)" % err)

        # Dropout in training mode: the recomputed masks are the forward's.
        import torch
        import torch.nn as nn

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.ln = nn.LayerNorm(32)
                self.fc1, self.fc2 = nn.Linear(32, 64), nn.Linear(64, 32)
                self.drop = nn.Dropout(0.2)

            def forward(self, x):
                return x + self.fc2(self.drop(torch.nn.functional.gelu(self.fc1(self.ln(x)))))

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.inp = nn.Linear(16, 32)
                self.blocks = nn.Sequential(Block(), Block(), Block())
                self.out = nn.Linear(32, 4)

            def forward(self, x):
                return self.out(self.blocks(self.inp(x)))

        torch.manual_seed(0)
        net = Net().train()
        rng = np.random.default_rng(0)
        x = rng.standard_normal((8, 12, 16)).astype(np.float32)
        y = rng.integers(0, 4, (8, 12)).astype(np.int64)
        mlp = os.path.join(tmp, "mlp.onnx")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (torch.tensor(x),), mlp, opset_version=17,
                              input_names=["x"], output_names=["logits"],
                              training=torch.onnx.TrainingMode.TRAINING,
                              do_constant_folding=False)
        data = os.path.join(tmp, "data")
        os.makedirs(os.path.join(data, "000"))
        np.save(os.path.join(data, "000", "x.npy"), x)
        np.save(os.path.join(data, "000", "labels.npy"), y)
        drop = {}
        for mode in ("none", "full"):
            plan = os.path.join(tmp, "mlp-%s.cplan" % mode)
            compile_plan(mlp, [], "dp=1,recompute=" + mode, plan)
            drop[mode] = train(plan, data, tmp, "mlp-" + mode)
        check(drop["full"][0] == drop["none"][0] and len(set(drop["none"][0])) > 1,
              "dropout MLP recompute=full: %d losses equal recompute=none's" % len(drop["none"][0]))
        check(drop["full"][2] < drop["none"][2],
              "dropout MLP arenas: full %d < none %d bytes" % (drop["full"][2], drop["none"][2]))

        # Refusals.
        p = subprocess.run([opt, gpt] + bind + ["--mode=infer", "--parallel=dp=1,recompute=full",
                            "--emit=plan", "-o", os.path.join(tmp, "x.cplan")],
                           capture_output=True, text=True)
        check(p.returncode != 0 and "recomputes activations in the backward of a training step"
              in p.stderr, "recompute on an inference plan is refused: " + p.stderr.strip()[:100])
        one = os.path.join(tmp, "one.onnx")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/models/mlp.py"),
                        "--layers", "1", "-o", one], check=True, stdout=subprocess.DEVNULL)
        p = subprocess.run([opt, one, "--bind", "batch=8", "--mode=train", "--loss=mse", "--optimizer=sgd",
                            "--parallel=dp=1,recompute=full", "--emit=plan",
                            "-o", os.path.join(tmp, "y.cplan")], capture_output=True, text=True)
        check(p.returncode != 0 and "no repeated structure" in p.stderr,
              "recompute on a model without layers is refused: " + p.stderr.strip()[:120])

    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
