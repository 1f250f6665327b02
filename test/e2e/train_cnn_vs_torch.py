#!/usr/bin/env python3
"""Trains a CNN (export_torch.py's TinyResNet: conv2d, batch_norm, relu,
max_pool2d, residual adds, global average pooling, linear) for 10 SGD steps
with colossal-opt --mode=train + colossal-run --train, and compares the
per-step losses with torch's on the same batches, within 1e-4 relative.

Batch norm is in eval mode on both sides: the model is exported with its
running statistics (colossal's batch_norm is the inference form), and torch
trains it in eval mode too, so the statistics stay fixed and only scale and
bias learn.
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
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts", "models"))
from export_torch import TinyResNet  # noqa: E402

BATCH, SIZE, CLASSES, STEPS = 2, 32, 10, 10
BATCHES = 2  # colossal-run cycles through them; the loss must fall
LR, MOMENTUM = 0.01, 0.9


def make_model():
    torch.manual_seed(0)
    model = TinyResNet(num_classes=CLASSES)
    gen = torch.Generator().manual_seed(1)
    # Non-trivial running statistics and affine parameters, so that a wrong
    # batch_norm gradient cannot hide behind mean 0, variance 1, scale 1.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.1)
    return model.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", required=True, help="build directory (bin/ inside)")
    a = ap.parse_args()
    rng = np.random.default_rng(3)
    batches = [(rng.standard_normal((BATCH, 3, SIZE, SIZE)).astype(np.float32),
                rng.integers(0, CLASSES, size=BATCH).astype(np.int64))
               for _ in range(BATCHES)]
    with tempfile.TemporaryDirectory() as tmp:
        model = make_model()
        onnx_path = os.path.join(tmp, "cnn.onnx")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.zeros(BATCH, 3, SIZE, SIZE),),
                              onnx_path, opset_version=17,
                              input_names=["pixels"], output_names=["logits"],
                              do_constant_folding=False,
                              # EVAL would fold each batch norm into its conv.
                              training=torch.onnx.TrainingMode.PRESERVE)
        data = os.path.join(tmp, "data")
        for i, (x, y) in enumerate(batches):
            d = os.path.join(data, f"{i:03d}")
            os.makedirs(d)
            np.save(os.path.join(d, "pixels.npy"), x)
            np.save(os.path.join(d, "labels.npy"), y)
        plan = os.path.join(tmp, "cnn.cplan")
        subprocess.run([os.path.join(a.build, "bin", "colossal-opt"), onnx_path,
                        "--bind", f"batch={BATCH}", "--mode=train",
                        "--loss=cross-entropy", "--optimizer=sgd", f"--lr={LR}",
                        f"--momentum={MOMENTUM}", "--emit=plan", "-o", plan],
                       check=True)
        metrics = os.path.join(tmp, "metrics.jsonl")
        subprocess.run([os.path.join(a.build, "bin", "colossal-run"), plan,
                        "--train", f"--steps={STEPS}", f"--data={data}",
                        "--data-order=sequential", "--log-every=1",
                        f"--metrics={metrics}", "--threads=2"],
                       check=True, stdout=subprocess.DEVNULL)
        with open(metrics) as f:
            got = [json.loads(line)["loss"] for line in f if line.strip()]

    # The reference: the same model, eval mode, SGD with momentum.
    model = make_model().double()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    want = []
    for step in range(STEPS):
        x, y = batches[step % BATCHES]
        opt.zero_grad()
        loss = F.cross_entropy(model(torch.tensor(x, dtype=torch.float64)),
                               torch.tensor(y))
        loss.backward()
        opt.step()
        want.append(loss.item())
    if len(got) != len(want):
        print(f"FAIL cnn-sgd: {len(got)} losses, torch has {len(want)}")
        sys.exit(1)
    err = max(abs(g - w) / max(abs(w), 1e-12) for g, w in zip(got, want))
    ok = err <= 1e-4 and want[-1] < want[0]
    print(f"{'ok  ' if ok else 'FAIL'} cnn-sgd: {len(got)} steps, loss "
          f"{want[0]:.4f} -> {want[-1]:.4f}, max rel err {err:.2e} (tol 1e-4)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
