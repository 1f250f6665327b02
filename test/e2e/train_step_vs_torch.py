#!/usr/bin/env python3
"""`colossal-opt --mode=train --loss=...` against torch on an exported GPT.

A small nanoGPT-style model (scripts/models/export_torch.py's GPT) is
exported to ONNX; colossal-opt compiles it with a cross-entropy loss (some
labels set to the ignore index) into a plan returning the loss and one
gradient per parameter; colossal-run executes it; the loss and every
gradient must match torch's (F.cross_entropy, autograd) on the same weights.
Also checks an MSE loss on the logits.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts", "models"))
from export_torch import GPT, diversify  # noqa: E402

BATCH, SEQ, VOCAB = 2, 8, 48


def export(model, path):
    ids = torch.zeros(BATCH, SEQ, dtype=torch.long)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (ids,), path, opset_version=17,
                          input_names=["input_ids"], output_names=["logits"],
                          do_constant_folding=True)


def match_params(model_path, model):
    """ONNX initializer name -> (torch parameter name, transposed?)."""
    params = dict(model.named_parameters())
    out = {}
    for init in onnx.load(model_path).graph.initializer:
        value = numpy_helper.to_array(init)
        if init.name in params:
            out[init.name] = (init.name, False)
            continue
        for name, p in params.items():
            w = p.detach().numpy()
            if w.ndim == 2 and w.T.shape == value.shape and np.array_equal(w.T, value):
                out[init.name] = (name, True)
                break
            if w.shape == value.shape and np.array_equal(w, value):
                out[init.name] = (name, False)
                break
    return out


def run(build, tmp, model_path, loss, inputs):
    plan = os.path.join(tmp, f"{loss}.cplan")
    subprocess.run([os.path.join(build, "bin", "colossal-opt"), model_path,
                    "--mode=train", f"--loss={loss}", "--emit=plan", "-o", plan],
                   check=True)
    out = os.path.join(tmp, f"out-{loss}")
    cmd = [os.path.join(build, "bin", "colossal-run"), plan, "--output-dir", out]
    for name, value in inputs.items():
        path = os.path.join(tmp, f"{loss}-{name}.npy")
        np.save(path, value)
        cmd += ["--input", f"{name}={path}"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out


def compare(out, model, names, want_loss):
    ok = True
    got_loss = float(np.load(os.path.join(out, "loss.npy")))
    if not np.isclose(got_loss, want_loss.item(), rtol=1e-4):
        print(f"FAIL loss {got_loss} != torch {want_loss.item()}")
        ok = False
    params = dict(model.named_parameters())
    seen = set()
    for onnx_name, (torch_name, transposed) in names.items():
        path = os.path.join(out, "grad_" + "".join(
            c if c.isalnum() or c in "._-" else "_" for c in onnx_name) + ".npy")
        if not os.path.exists(path):
            print(f"FAIL no gradient output for {onnx_name}")
            ok = False
            continue
        got = np.load(path)
        want = params[torch_name].grad.numpy()
        if transposed:
            want = want.T
        seen.add(torch_name)
        scale = max(np.abs(want).max(), 1e-3)
        if got.shape != want.shape or np.abs(got - want).max() > 2e-4 * scale + 1e-6:
            print(f"FAIL grad:{onnx_name} ({torch_name}) max err "
                  f"{np.abs(got - want).max() if got.shape == want.shape else 'shape'}")
            ok = False
    missing = set(params) - seen
    if missing:
        print(f"FAIL no gradient for torch parameters {sorted(missing)}")
        ok = False
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", required=True, help="build directory (bin/ inside)")
    a = ap.parse_args()
    torch.manual_seed(0)
    # Distinct values everywhere, so the exporter shares no initializers.
    model = diversify(GPT(vocab=VOCAB, d=32, n_head=4, n_layer=2, block_size=SEQ))
    gen = np.random.default_rng(1)
    ids = gen.integers(0, VOCAB, size=(BATCH, SEQ)).astype(np.int64)
    labels = gen.integers(0, VOCAB, size=(BATCH, SEQ)).astype(np.int64)
    labels[0, :3] = -100
    targets = gen.standard_normal((BATCH, SEQ, VOCAB)).astype(np.float32)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        model_path = os.path.join(tmp, "gpt.onnx")
        export(model, model_path)
        names = match_params(model_path, model)
        ref = GPT(vocab=VOCAB, d=32, n_head=4, n_layer=2, block_size=SEQ)
        ref.load_state_dict(model.state_dict())
        ref.double()
        for loss in ("cross-entropy", "mse"):
            ref.zero_grad()
            logits = ref(torch.tensor(ids))
            if loss == "cross-entropy":
                want = F.cross_entropy(logits.reshape(-1, VOCAB),
                                       torch.tensor(labels).reshape(-1),
                                       ignore_index=-100)
                inputs = {"input_ids": ids, "labels": labels}
            else:
                want = F.mse_loss(logits, torch.tensor(targets, dtype=torch.float64))
                inputs = {"input_ids": ids, "targets": targets}
            want.backward()
            out = run(a.build, tmp, model_path, loss, inputs)
            case_ok = compare(out, ref, names, want)
            print(("ok   " if case_ok else "FAIL ") + loss)
            ok = ok and case_ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
