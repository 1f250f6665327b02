#!/usr/bin/env python3
"""Training models exactly as torch.onnx.export writes them from a fresh
initialization, against torch:

* a regressor whose output layer is Linear(8, 1) (a one-element bias) times
  a scalar nn.Parameter: every parameter must train (MSE, SGD);
* a small transformer block whose LayerNorms start at ones/zeros, which the
  exporter deduplicates into one initializer plus Identity nodes: each
  parameter must still train on its own (AdamW), and the exported model
  must equal torch's trained one in onnxruntime;
* a per-pixel classifier (NCHW logits) with --class-axis=1, as torch's
  CrossEntropyLoss takes them;
* an MLP through LeakyReLU, PReLU, ELU, SELU, Softplus, Mish, Hardsigmoid,
  Hardswish and ReLU6 (imported as compositions of graph ops);
* a CNN with explicit padding (ONNX Pad: positive, negative (cropping) and
  a non-zero constant);
* a CNN with GroupNorm and affine InstanceNorm2d (both exported as ONNX
  InstanceNormalization);
* an upsampling decoder with ConvTranspose2d (stride 2, output_padding,
  groups, with and without bias);
* a language model whose head is tied to its embedding, exported with
  torch's default constant folding (which stores the head's transpose as a
  separate initializer): it must train as one weight, and the export must
  carry the trained transpose;
* a sequence classifier through a 2-layer bidirectional, batch-first
  nn.LSTM and an nn.GRU (torch's GRU is ONNX's linear_before_reset=1),
  exported as ONNX LSTM and GRU nodes and unrolled on import; the trained
  export must equal torch's trained model in onnxruntime;
* a bilinear scorer written with torch.einsum (exported as ONNX Einsum).

Per-step losses within 1e-4 relative of torch's.
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
import torch.nn as nn
import torch.nn.functional as F

STEPS = 12


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(4, 8)
        self.out = nn.Linear(8, 1)
        self.scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x))) * self.scale


class Activations(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(8, 8) for _ in range(9))
        self.acts = nn.ModuleList([nn.LeakyReLU(0.1), nn.PReLU(8), nn.ELU(0.7),
                                   nn.SELU(), nn.Softplus(), nn.Mish(),
                                   nn.Hardsigmoid(), nn.Hardswish(), nn.ReLU6()])
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        for layer, act in zip(self.layers, self.acts):
            x = act(layer(x)) * 2.0
        return self.out(x)


class Padded(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 9 * 11, 3)

    def forward(self, x):
        x = F.pad(x, (1, 2, 0, -1), value=0.5)  # W: +1/+2, H: +0/-1
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


class Normed(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.gn = nn.GroupNorm(2, 8)
        self.c2 = nn.Conv2d(8, 6, 3, padding=1)
        self.inorm = nn.InstanceNorm2d(6, affine=True)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        x = torch.relu(self.gn(self.c1(x)))
        x = torch.relu(self.inorm(self.c2(x)))
        return self.fc(x.mean(dim=(2, 3)))


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.up1 = nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1)
        self.up2 = nn.ConvTranspose2d(6, 4, 4, stride=2, padding=1, groups=2,
                                      bias=False)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = torch.relu(self.up1(torch.relu(self.down(x))))
        return self.fc(self.up2(x).mean(dim=(2, 3)))


class TiedLM(nn.Module):
    def __init__(self, vocab=32, d=16):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.mix = nn.Linear(d, d)

    def forward(self, ids):
        return torch.tanh(self.mix(self.emb(ids))) @ self.emb.weight.T


class Recurrent(nn.Module):
    def __init__(self, features=3, hidden=5, classes=4):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, num_layers=2, bidirectional=True,
                            batch_first=True)
        self.gru = nn.GRU(2 * hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        y, _ = self.lstm(x)
        y, h = self.gru(y)
        return self.head(y[:, -1] + h[0])


class Bilinear(nn.Module):
    def __init__(self, d=6, classes=3):
        super().__init__()
        self.w = nn.Parameter(torch.randn(classes, d, d) * 0.3)
        self.v = nn.Parameter(torch.randn(d, d) * 0.3)

    def forward(self, x):
        h = torch.tanh(torch.einsum("bsd,de->bse", x, self.v))
        return torch.einsum("bsd,cde,bse->bc", h, self.w, x)


class Block(nn.Module):
    def __init__(self, vocab=32, d=16):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.n1 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.proj = nn.Linear(4 * d, d)
        self.n2 = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, ids):
        x = self.emb(ids)
        x = x + self.proj(F.gelu(self.fc(self.n1(x))))
        return self.head(self.n2(x))


def export(model, example, path, input_name, fold=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), path, opset_version=17,
                          input_names=[input_name], output_names=["out"],
                          do_constant_folding=fold)


def train_both(build, tmp, name, model, x, input_name, target, target_name,
               flags, make_opt, loss_fn, fold=False):
    """Exports `model` at input `x`, trains it STEPS steps with colossal
    (`flags`) on the batch (x, target) and with torch (`make_opt`,
    `loss_fn(out, target)`); returns (colossal losses, torch losses, the
    exported trained model)."""
    path = os.path.join(tmp, name + ".onnx")
    export(model, torch.tensor(x), path, input_name, fold)
    data = os.path.join(tmp, name, "000")
    os.makedirs(data)
    np.save(os.path.join(data, input_name + ".npy"), x)
    np.save(os.path.join(data, target_name + ".npy"), target)
    plan = os.path.join(tmp, name + ".cplan")
    subprocess.run([os.path.join(build, "bin", "colossal-opt"), path,
                    "--mode=train", *flags, "--emit=plan", "-o", plan], check=True)
    metrics = os.path.join(tmp, name + ".jsonl")
    trained = os.path.join(tmp, name + "-trained.onnx")
    subprocess.run([os.path.join(build, "bin", "colossal-run"), plan, "--train",
                    f"--steps={STEPS}", f"--data={os.path.dirname(data)}",
                    "--log-every=1", f"--metrics={metrics}", "--threads=2",
                    "--export-onnx", trained], check=True, stdout=subprocess.DEVNULL)
    with open(metrics) as f:
        got = [json.loads(line)["loss"] for line in f if line.strip()]
    opt = make_opt(model.parameters())
    want = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = loss_fn(model(torch.tensor(x)), torch.tensor(target))
        loss.backward()
        opt.step()
        want.append(loss.item())
    return got, want, trained


def compare(name, got, want):
    err = max(abs(g - w) / max(abs(w), 1e-12) for g, w in zip(got, want))
    ok = len(got) == len(want) and err <= 1e-4
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {len(got)} steps, loss {want[0]:.4f} -> "
          f"{want[-1]:.4f}, max rel err {err:.2e} (tol 1e-4)")
    return ok


def sgd(lr, momentum=0.0):
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum)


def xent_flags(*extra):
    return ["--loss=cross-entropy", *extra]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", required=True, help="build directory (bin/ inside)")
    a = ap.parse_args()
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        def case(title, name, model, x, input_name, target, target_name, flags,
                 make_opt, loss_fn, fold=False):
            nonlocal ok
            got, want, trained = train_both(a.build, tmp, name, model, x, input_name,
                                            target, target_name, flags, make_opt,
                                            loss_fn, fold)
            ok &= compare(title, got, want)
            return trained

        # The regressor: scalars train.
        torch.manual_seed(0)
        model = Regressor()
        x = rng.standard_normal((16, 4)).astype(np.float32)
        t = (x.sum(1, keepdims=True) + 5).astype(np.float32)
        trained = case("regressor with a Linear(8, 1) bias and a scalar scale", "reg",
                       model, x, "x", t, "targets",
                       ["--loss=mse", "--optimizer=sgd", "--lr=0.05"], sgd(0.05),
                       F.mse_loss)
        from onnx import load, numpy_helper
        values = {i.name: numpy_helper.to_array(i) for i in load(trained).graph.initializer}
        scalars_ok = (abs(float(values["scale"]) - model.scale.item()) < 1e-4 and
                      abs(float(values["out.bias"][0]) - model.out.bias.item()) < 1e-4)
        print(f"{'ok  ' if scalars_ok else 'FAIL'} exported scale and out.bias equal torch's")
        ok &= scalars_ok

        # The block: deduplicated LayerNorm initializers train apart.
        torch.manual_seed(0)
        model = Block()
        ids = rng.integers(0, 32, size=(4, 8)).astype(np.int64)
        labels = rng.integers(0, 32, size=(4, 8)).astype(np.int64)
        trained = case("block with Identity-shared initializers", "block", model, ids,
                       "ids", labels, "labels",
                       xent_flags("--optimizer=adamw", "--lr=1e-2"),
                       lambda p: torch.optim.AdamW(p, lr=1e-2),
                       lambda out, y: F.cross_entropy(out.reshape(-1, 32), y.reshape(-1)))
        identities = sum(n.op_type == "Identity"
                         for n in load(os.path.join(tmp, "block.onnx")).graph.node)
        out = ort.InferenceSession(trained, providers=["CPUExecutionProvider"]).run(
            None, {"ids": ids})[0]
        with torch.no_grad():
            ref = model(torch.tensor(ids)).numpy()
        err = np.abs(out - ref).max() / np.abs(ref).max()
        good = err < 1e-4 and identities > 0
        print(f"{'ok  ' if good else 'FAIL'} exported block ({identities} Identity "
              f"nodes in the export) vs torch's trained one: {err:.2e}")
        ok &= good

        # Per-pixel classes on axis 1.
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                              nn.Conv2d(8, 5, 3, padding=1))
        case("per-pixel classifier, --class-axis=1", "seg", model,
             rng.standard_normal((2, 3, 12, 12)).astype(np.float32), "pixels",
             rng.integers(0, 5, size=(2, 12, 12)).astype(np.int64), "labels",
             xent_flags("--class-axis=1", "--optimizer=sgd", "--lr=0.1"), sgd(0.1),
             F.cross_entropy)

        # Activations composed at import.
        torch.manual_seed(0)
        case("MLP through nine activations", "acts", Activations(),
             rng.standard_normal((16, 8)).astype(np.float32) * 2, "x",
             rng.integers(0, 3, size=16).astype(np.int64), "labels",
             xent_flags("--optimizer=sgd", "--lr=0.05", "--momentum=0.9"),
             sgd(0.05, 0.9), F.cross_entropy)

        # Explicit padding.
        torch.manual_seed(0)
        case("CNN with explicit padding (ONNX Pad)", "pad", Padded(),
             rng.standard_normal((4, 3, 12, 10)).astype(np.float32), "x",
             rng.integers(0, 3, size=4).astype(np.int64), "labels",
             xent_flags("--optimizer=sgd", "--lr=0.05"), sgd(0.05), F.cross_entropy)

        # GroupNorm and InstanceNorm (with distinct affine values, which the
        # exporter would otherwise share).
        torch.manual_seed(0)
        model = Normed()
        with torch.no_grad():
            for m in (model.gn, model.inorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        case("CNN with GroupNorm and InstanceNorm2d", "norm", model,
             rng.standard_normal((4, 3, 8, 8)).astype(np.float32), "x",
             rng.integers(0, 3, size=4).astype(np.int64), "labels",
             xent_flags("--optimizer=adamw", "--lr=1e-2"),
             lambda p: torch.optim.AdamW(p, lr=1e-2), F.cross_entropy)

        # Transposed convolutions.
        torch.manual_seed(0)
        case("decoder with ConvTranspose2d", "dec", Decoder(),
             rng.standard_normal((2, 3, 8, 8)).astype(np.float32), "x",
             rng.integers(0, 3, size=2).astype(np.int64), "labels",
             xent_flags("--optimizer=sgd", "--lr=0.1"), sgd(0.1), F.cross_entropy)

        # A head tied to the embedding, folded by the exporter.
        torch.manual_seed(0)
        model = TiedLM()
        ids = rng.integers(0, 32, size=(4, 8)).astype(np.int64)
        trained = case("tied embedding and head (constant-folded export)", "tied",
                       model, ids, "ids", rng.integers(0, 32, size=(4, 8)).astype(np.int64),
                       "labels", xent_flags("--optimizer=adamw", "--lr=1e-2"),
                       lambda p: torch.optim.AdamW(p, lr=1e-2),
                       lambda out, y: F.cross_entropy(out.reshape(-1, 32), y.reshape(-1)),
                       fold=True)
        out = ort.InferenceSession(trained, providers=["CPUExecutionProvider"]).run(
            None, {"ids": ids})[0]
        with torch.no_grad():
            ref = model(torch.tensor(ids)).numpy()
        err = np.abs(out - ref).max() / np.abs(ref).max()
        print(f"{'ok  ' if err < 1e-4 else 'FAIL'} exported tied model vs torch's "
              f"trained one: {err:.2e}")
        ok &= err < 1e-4

        # Recurrent layers exported as ONNX LSTM / GRU nodes.
        torch.manual_seed(0)
        model = Recurrent()
        seqs = rng.standard_normal((4, 6, 3)).astype(np.float32)
        trained = case("bidirectional 2-layer LSTM and a GRU (ONNX LSTM/GRU nodes)",
                       "rnn", model, seqs, "x",
                       rng.integers(0, 4, size=4).astype(np.int64), "labels",
                       xent_flags("--optimizer=adamw", "--lr=1e-2"),
                       lambda p: torch.optim.AdamW(p, lr=1e-2), F.cross_entropy)
        kinds = {n.op_type for n in load(os.path.join(tmp, "rnn.onnx")).graph.node}
        out = ort.InferenceSession(trained, providers=["CPUExecutionProvider"]).run(
            None, {"x": seqs})[0]
        with torch.no_grad():
            ref = model(torch.tensor(seqs)).numpy()
        err = np.abs(out - ref).max() / np.abs(ref).max()
        good = err < 1e-4 and {"LSTM", "GRU"} <= kinds
        print(f"{'ok  ' if good else 'FAIL'} exported recurrent model (LSTM and GRU "
              f"nodes: {sorted(kinds & {'LSTM', 'GRU'})}) vs torch's trained one: {err:.2e}")
        ok &= good

        torch.manual_seed(0)
        case("bilinear scorer through torch.einsum (ONNX Einsum)", "einsum", Bilinear(),
             rng.standard_normal((4, 5, 6)).astype(np.float32), "x",
             rng.integers(0, 3, size=4).astype(np.int64), "labels",
             xent_flags("--optimizer=sgd", "--lr=0.05"), sgd(0.05), F.cross_entropy)
    print("PASS" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
