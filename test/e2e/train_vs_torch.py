#!/usr/bin/env python3
"""Whole training runs (colossal-opt --optimizer + colossal-run --train)
against PyTorch on an exported nanoGPT-style model.

The same initial weights and the same token windows (a fixed uint16 token
file read as sequential windows) go to both sides; each case compares the
per-step losses (from colossal-run's --metrics JSONL) with torch's:

* adamw: torch.optim.AdamW, 50 steps, within 1e-4 relative;
* adamw-sched: AdamW with global-norm clipping and warmup-cosine
  (torch.nn.utils.clip_grad_norm_ and a LambdaLR of the same formula);
* sgd: torch.optim.SGD with momentum and weight decay;
* lamb / lars: references written below from the papers (LAMB: You et al.
  2019, Algorithm 2; LARS: You et al. 2017, Algorithm 1);
* accumulation: 4 micro-batches of 1 (--micro-batches=4) against one batch
  of 4;
* resume: 40 steps straight vs. runs SIGKILLed at random moments and
  resumed, losses bitwise equal; the killed runs' checkpoints always load;
* export: the trained weights exported into the ONNX model give, in
  onnxruntime, the logits of torch's trained model;
* mixed precision: --precision=bf16 and fp16 (dynamic loss scaling) track
  torch's float32 losses within bfloat16/float16 rounding; an absurd initial
  loss scale makes the first steps overflow, which are skipped (grad_norm
  null in the metrics) until the scale has come down.
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts", "models"))
from export_torch import GPT, diversify  # noqa: E402

VOCAB, SEQ, D, LAYERS = 48, 8, 32, 2
STEPS = 50


def make_model():
    torch.manual_seed(0)
    return diversify(GPT(vocab=VOCAB, d=D, n_head=4, n_layer=LAYERS, block_size=SEQ))


def export(model, path, batch):
    ids = torch.zeros(batch, SEQ, dtype=torch.long)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (ids,), path, opset_version=17,
                          input_names=["input_ids"], output_names=["logits"],
                          do_constant_folding=True)


def windows(tokens, start_sample, rows):
    """Sequential windows, as colossal-run --data-order=sequential cuts them."""
    n_windows = (len(tokens) - 1) // SEQ
    xs, ys = [], []
    for r in range(rows):
        s = ((start_sample + r) % n_windows) * SEQ
        xs.append(tokens[s:s + SEQ])
        ys.append(tokens[s + 1:s + SEQ + 1])
    return (torch.tensor(np.array(xs, dtype=np.int64)),
            torch.tensor(np.array(ys, dtype=np.int64)))


class Lamb(torch.optim.Optimizer):
    """LAMB as in You et al. 2019, Algorithm 2 (phi = identity), with Adam's
    bias correction; trust ratio 1 when a norm is zero."""

    def __init__(self, params, lr, betas, eps, weight_decay):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, wd=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                st = self.state[p]
                if not st:
                    st["t"] = 0
                    st["m"] = torch.zeros_like(p)
                    st["v"] = torch.zeros_like(p)
                st["t"] += 1
                g = p.grad
                st["m"].mul_(b1).add_(g, alpha=1 - b1)
                st["v"].mul_(b2).add_(g * g, alpha=1 - b2)
                mh = st["m"] / (1 - b1 ** st["t"])
                vh = st["v"] / (1 - b2 ** st["t"])
                r = mh / (vh.sqrt() + group["eps"])
                u = r + group["wd"] * p
                wn, un = p.norm(), u.norm()
                trust = wn / un if wn > 0 and un > 0 else 1.0
                p.sub_(group["lr"] * trust * u)


class Lars(torch.optim.Optimizer):
    """LARS as in You et al. 2017, Algorithm 1: local lr = eta ||w|| /
    (||g|| + wd ||w||); v = m v + lr * local_lr * (g + wd w); w -= v."""

    def __init__(self, params, lr, momentum, weight_decay, eta):
        super().__init__(params, dict(lr=lr, m=momentum, wd=weight_decay, eta=eta))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state[p]
                if not st:
                    st["v"] = torch.zeros_like(p)
                g = p.grad
                wn, gn = p.norm(), g.norm()
                denom = gn + group["wd"] * wn
                local = group["eta"] * wn / denom if wn * denom > 0 else 1.0
                st["v"].mul_(group["m"]).add_(group["lr"] * local * (g + group["wd"] * p))
                p.sub_(st["v"])


def cosine_lambda(warmup, total, floor):
    import math

    def f(step):  # step = number of updates taken so far
        if step < warmup:
            return (step + 1) / warmup
        progress = min(max((step - warmup) / max(1, total - warmup), 0.0), 1.0)
        return floor + 0.5 * (1 - floor) * (1 + math.cos(math.pi * progress))
    return f


def torch_losses(case, tokens, steps, batch, micro=1):
    model = make_model()
    params = list(model.parameters())
    opt_name = case["optimizer"]
    if opt_name == "adamw":
        opt = torch.optim.AdamW(params, lr=case["lr"], betas=case.get("betas", (0.9, 0.999)),
                                weight_decay=case.get("wd", 0.01), eps=1e-8)
    elif opt_name == "sgd":
        opt = torch.optim.SGD(params, lr=case["lr"], momentum=case["momentum"],
                              weight_decay=case["wd"])
    elif opt_name == "lamb":
        opt = Lamb(params, lr=case["lr"], betas=(0.9, 0.999), eps=1e-6,
                   weight_decay=case["wd"])
    else:
        opt = Lars(params, lr=case["lr"], momentum=0.9, weight_decay=case["wd"], eta=0.001)
    sched = None
    if "schedule" in case:
        w, t = case["schedule"]
        sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_lambda(w, t, 0.0))
    losses = []
    for s in range(steps):
        opt.zero_grad()
        total = 0.0
        for j in range(micro):
            x, y = windows(tokens, (s * micro + j) * batch, batch)
            loss = F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1))
            (loss / micro).backward()
            total += loss.item()
        if case.get("clip"):
            torch.nn.utils.clip_grad_norm_(params, case["clip"])
        opt.step()
        if sched:
            sched.step()
        losses.append(total / micro)
    return model, losses


def colossal_flags(case):
    f = [f"--optimizer={case['optimizer']}", f"--lr={case['lr']}"]
    if "wd" in case:
        f.append(f"--weight-decay={case['wd']}")
    if "betas" in case:
        f.append("--betas=%g,%g" % case["betas"])
    if "momentum" in case:
        f.append(f"--momentum={case['momentum']}")
    if "clip" in case:
        f.append(f"--clip-grad-norm={case['clip']}")
    if "schedule" in case:
        f.append("--lr-schedule=warmup-cosine:%d,%d" % case["schedule"])
    return f


def compile_plan(build, model_path, plan, flags):
    subprocess.run([os.path.join(build, "bin", "colossal-opt"), model_path,
                    "--mode=train", "--loss=cross-entropy", *flags,
                    "--emit=plan", "-o", plan], check=True)


def train_cmd(build, plan, data, steps, metrics, extra=()):
    return [os.path.join(build, "bin", "colossal-run"), plan, "--train",
            f"--steps={steps}", f"--data={data}", "--data-order=sequential",
            "--log-every=1", f"--metrics={metrics}", "--threads=2", *extra]


def read_losses(metrics):
    with open(metrics) as f:
        return [json.loads(line)["loss"] for line in f if line.strip()]


def compare(name, got, want, rtol):
    if len(got) != len(want):
        print(f"FAIL {name}: {len(got)} losses, torch has {len(want)}")
        return False
    err = max(abs(g - w) / max(abs(w), 1e-12) for g, w in zip(got, want))
    ok = err <= rtol and want[-1] < want[0]
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {len(got)} steps, loss "
          f"{want[0]:.4f} -> {want[-1]:.4f}, max rel err {err:.2e} (tol {rtol:g})")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", required=True, help="build directory (bin/ inside)")
    a = ap.parse_args()
    torch.set_num_threads(2)
    rng = np.random.default_rng(7)
    # A stream with structure to learn: shifted copies of a short motif.
    motif = rng.integers(0, VOCAB, size=24)
    tokens = np.concatenate([np.roll(motif, rng.integers(0, 24)) for _ in range(60)])
    tokens = tokens.astype(np.uint16)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "tokens.bin")
        tokens.tofile(data)
        model4 = os.path.join(tmp, "gpt4.onnx")
        model1 = os.path.join(tmp, "gpt1.onnx")
        export(make_model(), model4, 4)
        export(make_model(), model1, 1)

        cases = {
            "adamw": dict(optimizer="adamw", lr=3e-3, betas=(0.9, 0.95), wd=0.1),
            "adamw-sched": dict(optimizer="adamw", lr=3e-3, wd=0.01, clip=0.5,
                                schedule=(5, 40)),
            "sgd": dict(optimizer="sgd", lr=0.1, momentum=0.9, wd=1e-4),
            "lamb": dict(optimizer="lamb", lr=2e-2, wd=0.01),
            "lars": dict(optimizer="lars", lr=2.0, wd=1e-4),
        }
        trained = {}
        for name, case in cases.items():
            plan = os.path.join(tmp, f"{name}.cplan")
            compile_plan(a.build, model4, plan, colossal_flags(case))
            metrics = os.path.join(tmp, f"{name}.jsonl")
            extra = ()
            if name == "adamw":
                extra = ("--export-onnx", os.path.join(tmp, "trained.onnx"))
            subprocess.run(train_cmd(a.build, plan, data, STEPS, metrics, extra),
                           check=True, stdout=subprocess.DEVNULL)
            model, want = torch_losses(case, tokens, STEPS, 4)
            trained[name] = model
            ok &= compare(name, read_losses(metrics), want, 1e-4)

        # Exported weights == torch's trained weights (through onnxruntime).
        x, _ = windows(tokens, 3, 4)
        sess = ort.InferenceSession(os.path.join(tmp, "trained.onnx"),
                                    providers=["CPUExecutionProvider"])
        got = sess.run(None, {"input_ids": x.numpy()})[0]
        with torch.no_grad():
            want = trained["adamw"](x).numpy()
        err = np.abs(got - want).max() / np.abs(want).max()
        export_ok = err < 1e-3
        print(f"{'ok  ' if export_ok else 'FAIL'} export: onnxruntime on the "
              f"exported model vs torch's trained model, max rel err {err:.2e}")
        ok &= export_ok

        # Accumulation: 4 micro-batches of 1 == one batch of 4.
        case = cases["adamw"]
        plan_k = os.path.join(tmp, "accum.cplan")
        compile_plan(a.build, model1, plan_k, colossal_flags(case) + ["--micro-batches=4"])
        metrics = os.path.join(tmp, "accum.jsonl")
        subprocess.run(train_cmd(a.build, plan_k, data, 30, metrics),
                       check=True, stdout=subprocess.DEVNULL)
        big = read_losses(os.path.join(tmp, "adamw.jsonl"))[:30]
        ok &= compare("accumulation (4 x 1 vs 1 x 4)", read_losses(metrics), big, 1e-4)
        _, want = torch_losses(case, tokens, 30, 1, micro=4)
        ok &= compare("accumulation vs torch", read_losses(metrics), want, 1e-4)

        # Mixed precision: 16-bit compute, float32 master weights.
        want = read_losses(os.path.join(tmp, "adamw.jsonl"))[:30]
        for prec, extra in (("bf16", []), ("fp16", []),
                            ("fp16", ["--loss-scale=dynamic:1e8"])):
            name = f"{prec}{' ' + extra[0] if extra else ''}"
            plan_p = os.path.join(tmp, f"{prec}{len(extra)}.cplan")
            compile_plan(a.build, model4, plan_p,
                         colossal_flags(cases["adamw"]) + [f"--precision={prec}"] + extra)
            metrics = os.path.join(tmp, f"{prec}{len(extra)}.jsonl")
            subprocess.run(train_cmd(a.build, plan_p, data, 30, metrics),
                           check=True, stdout=subprocess.DEVNULL)
            rows = [json.loads(l) for l in open(metrics)]
            if not extra:
                ok &= compare(f"{name} vs torch float32", [r["loss"] for r in rows],
                              want, 3e-2)
                continue
            skipped = [r["step"] for r in rows if r["grad_norm"] is None]
            # The scale halves on each overflow, so the first steps are
            # skipped; later it may overflow again now and then.
            good = (skipped[:3] == [1, 2, 3] and len(skipped) < 20
                    and rows[-1]["loss"] < 0.8 * rows[0]["loss"])
            print(f"{'ok  ' if good else 'FAIL'} {name}: overflowing steps skipped: "
                  f"{skipped}; loss {rows[0]['loss']:.3f} -> {rows[-1]['loss']:.3f}")
            ok &= bool(good)

        # Resume: bitwise equal losses after SIGKILLs at random moments.
        plan = os.path.join(tmp, "adamw.cplan")
        straight = os.path.join(tmp, "straight.jsonl")
        subprocess.run(train_cmd(a.build, plan, data, 40, straight),
                       check=True, stdout=subprocess.DEVNULL)
        ref = [json.loads(l)["loss"] for l in open(straight)]
        ref_text = [l.split('"lr"')[0] for l in open(straight)]
        random.seed(3)
        for trial in range(4):
            ckpt = os.path.join(tmp, f"ckpt{trial}")
            metrics = os.path.join(tmp, f"resumed{trial}.jsonl")
            cmd = train_cmd(a.build, plan, data, 40, metrics,
                            ("--checkpoint-dir", ckpt, "--checkpoint-every=3"))
            kills = 0
            for attempt in range(6):
                p = subprocess.Popen(cmd + (["--resume"] if attempt else []),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                time.sleep(random.uniform(0.0, 0.15))
                if p.poll() is None:
                    p.send_signal(signal.SIGKILL)
                    kills += 1
                p.wait()
                if p.returncode == 0:
                    break
                if p.returncode != -signal.SIGKILL:
                    print(f"FAIL resume trial {trial}: exit {p.returncode}: "
                          f"{p.stderr.read().decode()}")
                    ok = False
                    break
            else:
                subprocess.run(cmd + ["--resume"], check=True, stdout=subprocess.DEVNULL)
            got_text = [l.split('"lr"')[0] for l in open(metrics)]
            same = got_text == ref_text
            print(f"{'ok  ' if same else 'FAIL'} resume trial {trial}: {kills} "
                  f"SIGKILL(s), 40 losses bitwise equal to the straight run: {same}")
            ok &= same
        # N/2 then resume to N.
        ckpt = os.path.join(tmp, "half")
        metrics = os.path.join(tmp, "half.jsonl")
        cmd = train_cmd(a.build, plan, data, 20, metrics, ("--checkpoint-dir", ckpt))
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        cmd = train_cmd(a.build, plan, data, 40, metrics,
                        ("--checkpoint-dir", ckpt, "--resume"))
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        got = read_losses(metrics)
        same = got == ref
        print(f"{'ok  ' if same else 'FAIL'} 20 steps + resume 20: bitwise equal: {same}")
        ok &= same
    print("PASS" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
