#!/usr/bin/env python3
"""Training-mode dropout (ONNX Dropout with training_mode, from torch's
TRAINING exports) against torch.

The masks come from different generators, so the check is statistical: with
the weights held still (lr 1e-12), the mean loss over 400 runs on one batch
must equal the mean of torch's train-mode losses over 400 masks of its own,
within 4 standard errors; and the gradient norm likewise. Masks must change
from run to run, and a run killed and resumed must repeat an uninterrupted
run's losses bit for bit (the mask counter is checkpointed).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

RATIO, RUNS = 0.3, 400


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 64)
        self.drop = nn.Dropout(RATIO)
        self.b = nn.Linear(64, 4)

    def forward(self, x):
        return self.b(self.drop(torch.relu(self.a(x))))


def tool(build, name):
    return os.path.join(build, "bin", name)


def losses(metrics):
    with open(metrics) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r["loss"] for r in rows], [r["grad_norm"] for r in rows]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", required=True, help="build directory (bin/ inside)")
    a = ap.parse_args()
    torch.manual_seed(0)
    model = Net().train()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 16)).astype(np.float32)
    y = rng.integers(0, 4, 8).astype(np.int64)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = os.path.join(tmp, "net.onnx")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.tensor(x),), onnx_path, opset_version=17,
                              input_names=["x"], output_names=["logits"],
                              training=torch.onnx.TrainingMode.TRAINING,
                              do_constant_folding=False)
        data = os.path.join(tmp, "data", "000")
        os.makedirs(data)
        np.save(os.path.join(data, "x.npy"), x)
        np.save(os.path.join(data, "labels.npy"), y)
        data = os.path.dirname(data)
        plan = os.path.join(tmp, "net.cplan")
        subprocess.run([tool(a.build, "colossal-opt"), onnx_path, "--mode=train",
                        "--loss=cross-entropy", "--optimizer=sgd", "--lr=1e-12",
                        "--emit=plan", "-o", plan], check=True)

        def train(steps, metrics, extra=()):
            subprocess.run([tool(a.build, "colossal-run"), plan, "--train",
                            f"--steps={steps}", f"--data={data}", "--log-every=1",
                            f"--metrics={metrics}", "--threads=2", *extra],
                           check=True, stdout=subprocess.DEVNULL)

        metrics = os.path.join(tmp, "m.jsonl")
        train(RUNS, metrics)
        got, got_norm = losses(metrics)

        want, want_norm = [], []
        xt, yt = torch.tensor(x), torch.tensor(y)
        for _ in range(RUNS):
            model.zero_grad()
            loss = F.cross_entropy(model(xt), yt)
            loss.backward()
            want.append(loss.item())
            want_norm.append(torch.sqrt(sum((p.grad ** 2).sum()
                                            for p in model.parameters())).item())
        for name, g, w in (("loss", got, want), ("gradient norm", got_norm, want_norm)):
            g, w = np.array(g), np.array(w)
            se = np.sqrt(g.var() / len(g) + w.var() / len(w))
            z = abs(g.mean() - w.mean()) / se
            good = z < 4 and g.std() > 0
            print(f"{'ok  ' if good else 'FAIL'} mean {name} over {RUNS} masks: "
                  f"{g.mean():.4f} (torch {w.mean():.4f}, {z:.1f} standard errors); "
                  f"spread {g.std():.4f} (torch {w.std():.4f})")
            ok &= bool(good)

        # Resume repeats the masks an uninterrupted run draws.
        straight = os.path.join(tmp, "straight.jsonl")
        train(10, straight)
        ckpt, resumed = os.path.join(tmp, "ckpt"), os.path.join(tmp, "resumed.jsonl")
        train(5, resumed, ("--checkpoint-dir", ckpt))
        train(10, resumed, ("--checkpoint-dir", ckpt, "--resume"))
        same = losses(straight)[0] == losses(resumed)[0]
        print(f"{'ok  ' if same else 'FAIL'} 5 steps + resume 5 with dropout: "
              f"losses bitwise equal to 10 straight: {same}")
        ok &= same
    print("PASS" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
