#!/usr/bin/env python3
"""Trains a CNN (export_torch.py's TinyResNet: conv2d, batch_norm, relu,
max_pool2d, residual adds, global average pooling, linear) for 10 SGD steps
with colossal-opt --mode=train + colossal-run --train, and compares the
per-step losses with torch's on the same batches, within 1e-4 relative.

Batch norm both ways: by default (--batch-norm=batch) as torch's train
mode, normalizing with batch statistics and updating the running ones, which
the exported ONNX model then carries (its eval-mode logits in onnxruntime
must equal torch's); and with --batch-norm=running as torch's eval mode,
the statistics fixed. The model is exported with TrainingMode.PRESERVE so
that its batch norms are not folded into the convolutions.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts", "models"))
from export_torch import TinyResNet  # noqa: E402

# Batch 8: with 2 images, the last stage's batch norm (1x1 maps) sees two
# values per channel and float32 and float64 runs part ways chaotically
# after a few steps (measured: error x10 per step), right or wrong.
BATCH, SIZE, CLASSES, STEPS = 8, 32, 10, 10
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


def run_case(build, tmp, batches, mode, export_mode="PRESERVE"):
    """Trains with --batch-norm=`mode` a model exported in `export_mode`
    (PRESERVE: an eval model with inference batch norms; TRAINING: a train
    model whose batch norms say training_mode=1); returns (ok, message)."""
    model = make_model()
    onnx_path = os.path.join(tmp, f"cnn-{export_mode}.onnx")
    if not os.path.exists(onnx_path):
        if export_mode == "TRAINING":
            model.train()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.zeros(BATCH, 3, SIZE, SIZE),),
                              onnx_path, opset_version=17,
                              input_names=["pixels"], output_names=["logits"],
                              do_constant_folding=False,
                              # EVAL would fold each batch norm into its conv.
                              training=getattr(torch.onnx.TrainingMode, export_mode))
    data = os.path.join(tmp, "data")
    if not os.path.exists(data):
        for i, (x, y) in enumerate(batches):
            d = os.path.join(data, f"{i:03d}")
            os.makedirs(d)
            np.save(os.path.join(d, "pixels.npy"), x)
            np.save(os.path.join(d, "labels.npy"), y)
    plan = os.path.join(tmp, f"cnn-{mode}-{export_mode}.cplan")
    subprocess.run([os.path.join(build, "bin", "colossal-opt"), onnx_path,
                    "--bind", f"batch={BATCH}", "--mode=train",
                    "--loss=cross-entropy", "--optimizer=sgd", f"--lr={LR}",
                    f"--momentum={MOMENTUM}", f"--batch-norm={mode}",
                    "--emit=plan", "-o", plan], check=True)
    metrics = os.path.join(tmp, f"metrics-{mode}-{export_mode}.jsonl")
    trained = os.path.join(tmp, f"trained-{mode}-{export_mode}.onnx")
    subprocess.run([os.path.join(build, "bin", "colossal-run"), plan,
                    "--train", f"--steps={STEPS}", f"--data={data}",
                    "--data-order=sequential", "--log-every=1",
                    f"--metrics={metrics}", "--threads=2",
                    "--export-onnx", trained],
                   check=True, stdout=subprocess.DEVNULL)
    with open(metrics) as f:
        got = [json.loads(line)["loss"] for line in f if line.strip()]

    # The reference: the same model, train or eval mode, SGD with momentum,
    # from the exported values (tracing in train mode moved the running
    # statistics).
    model = make_model()
    import onnx
    from onnx import numpy_helper
    state = model.state_dict()
    for init in onnx.load(onnx_path).graph.initializer:
        if init.name in state:
            state[init.name].copy_(torch.tensor(numpy_helper.to_array(init)))
    model = model.double()
    model.train(mode == "batch")
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
        return False, f"{len(got)} losses, torch has {len(want)}"
    err = max(abs(g - w) / max(abs(w), 1e-12) for g, w in zip(got, want))
    ok = err <= 1e-4 and want[-1] < want[0]
    message = (f"{len(got)} steps, loss {want[0]:.4f} -> {want[-1]:.4f}, "
               f"max rel err {err:.2e} (tol 1e-4)")
    # The exported model (running statistics included) in eval mode.
    model.eval()
    x = batches[0][0]
    sess = ort.InferenceSession(trained, providers=["CPUExecutionProvider"])
    out = sess.run(None, {"pixels": x})[0]
    with torch.no_grad():
        ref = model(torch.tensor(x, dtype=torch.float64)).numpy()
    eerr = np.abs(out - ref).max() / np.abs(ref).max()
    ok &= eerr < 1e-4
    return ok, message + f"; exported model vs torch eval: {eerr:.2e}"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", required=True, help="build directory (bin/ inside)")
    a = ap.parse_args()
    rng = np.random.default_rng(3)
    batches = [(rng.standard_normal((BATCH, 3, SIZE, SIZE)).astype(np.float32),
                rng.integers(0, CLASSES, size=BATCH).astype(np.int64))
               for _ in range(BATCHES)]
    all_ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for mode, export_mode in (("batch", "PRESERVE"), ("running", "PRESERVE"),
                                  ("batch", "TRAINING")):
            ok, message = run_case(a.build, tmp, batches, mode, export_mode)
            print(f"{'ok  ' if ok else 'FAIL'} cnn-sgd --batch-norm={mode} "
                  f"(exported {export_mode}): {message}")
            all_ok &= ok
    sys.exit(0 if all_ok else 1)


if __name__ == "__main__":
    main()
