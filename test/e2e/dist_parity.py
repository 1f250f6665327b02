#!/usr/bin/env python3
"""N ranks against 1 rank: the same model, data and seed, trained (AdamW,
20 steps) or run for inference by plans compiled with --parallel, must give
the 1-rank results within 1e-5 relative, step by step.

Cases (one line each in CASES): data parallelism and ZeRO-1/2/3 over dp,
Megatron tensor parallelism (tp=2, tp=4, with sequence parallelism) and meshes combining them
(dp=2 x tp=2, ZeRO-3 x tp=2), on a small GPT and (dp/zero) a ResNet-style
CNN with batch norms, launched with `colossal-run --ranks N` and, for a
subset, `mpirun -np N`. Also: each
rank's peak device bytes equal its plan's arena; weights exported from N
ranks equal the 1-rank ones; a run resumed on a different mesh continues
the same run (dp=4 on 4 ranks -> zero=2 on 2 -> 1 rank == 30 steps on 1
rank); a plan launched on the wrong number of ranks is refused before any
step; a rank killed mid-step makes the others exit with the dead rank named.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "scripts", "models"))

TOL = 1e-5
STEPS = 20
GPT_BATCH, CNN_BATCH = 8, 8
LR = {"gpt": "3e-3", "cnn": "1e-3"}

# (name, model, parallel, ranks); each runs under `colossal-run --ranks N`
# and under `mpirun -np N`.
LAYOUTS = [
    ("gpt dp=4", "gpt", "dp=4", 4),
    ("gpt dp=4 zero=1", "gpt", "dp=4,zero=1", 4),
    ("gpt dp=4 zero=2", "gpt", "dp=4,zero=2", 4),
    ("gpt dp=4 zero=3", "gpt", "dp=4,zero=3", 4),
    ("gpt tp=2", "gpt", "tp=2", 2),
    ("gpt tp=4", "gpt", "tp=4", 4),
    ("gpt tp=2 tp-sp=1", "gpt", "tp=2,tp-sp=1", 2),
    ("gpt dp=2 x tp=2", "gpt", "dp=2,tp=2", 4),
    ("gpt zero=3 x tp=2", "gpt", "dp=2,tp=2,zero=3", 4),
    ("cnn dp=4", "cnn", "dp=4", 4),
    ("cnn dp=4 zero=1", "cnn", "dp=4,zero=1", 4),
    ("cnn dp=4 zero=2", "cnn", "dp=4,zero=2", 4),
    ("cnn dp=4 zero=3", "cnn", "dp=4,zero=3", 4),
]
CASES = [(f"{name} ({launcher})", model, parallel, ranks, launcher)
         for name, model, parallel, ranks in LAYOUTS
         for launcher in ("ranks", "mpirun")]


class Ctx:
    def __init__(self, build, tmp):
        self.opt = os.path.join(build, "bin", "colossal-opt")
        self.run = os.path.join(build, "bin", "colossal-run")
        self.tmp = tmp
        self.failures = []

    def check(self, ok, what):
        print(("ok   " if ok else "FAIL ") + what, flush=True)
        if not ok:
            self.failures.append(what)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True,
                          **kw)


def make_models(ctx):
    gpt = os.path.join(ctx.tmp, "gpt.onnx")
    sh([sys.executable, os.path.join(ROOT, "scripts", "models", "gpt2.py"),
        "--layers", "2", "--hidden", "32", "--heads", "4", "--vocab", "64",
        "--seq", "16", "-o", gpt])
    tokens = os.path.join(ctx.tmp, "tokens.bin")
    rng = np.random.default_rng(0)
    # A learnable stream (a repeating pattern with some noise), so the loss falls.
    stream = np.tile(np.arange(64, dtype=np.uint16), 64)
    noise = rng.random(stream.size) < 0.1
    stream[noise] = rng.integers(0, 64, int(noise.sum()), dtype=np.uint16)
    stream.tofile(tokens)

    import torch
    from export_torch import TinyResNet
    torch.manual_seed(0)
    cnn = os.path.join(ctx.tmp, "cnn.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(TinyResNet(num_classes=10).eval(),
                          (torch.zeros(CNN_BATCH, 3, 32, 32),), cnn,
                          opset_version=17, input_names=["pixels"],
                          output_names=["logits"], do_constant_folding=False,
                          training=torch.onnx.TrainingMode.PRESERVE)
    data = os.path.join(ctx.tmp, "cnn-data")
    for i in range(4):
        d = os.path.join(data, f"{i:03d}")
        os.makedirs(d)
        np.save(os.path.join(d, "pixels.npy"),
                rng.standard_normal((CNN_BATCH, 3, 32, 32)).astype(np.float32))
        np.save(os.path.join(d, "labels.npy"),
                rng.integers(0, 10, CNN_BATCH).astype(np.int64))
    return {"gpt": (gpt, GPT_BATCH, tokens, "--bind=batch=%d,seq=16" % GPT_BATCH),
            "cnn": (cnn, CNN_BATCH, data, "--bind=batch=%d" % CNN_BATCH)}


def compile_train(ctx, models, model, parallel, name):
    path, _, _, bind = models[model]
    plan = os.path.join(ctx.tmp, name + ".cplan")
    cmd = [ctx.opt, path, bind, "--mode=train", "--loss=cross-entropy",
           "--optimizer=adamw", "--lr=" + LR[model], "--clip-grad-norm=1",
           "--emit=plan", "-o", plan]
    if parallel:
        cmd.append("--parallel=" + parallel)
    sh(cmd)
    return plan


def launch(ctx, plan, ranks, launcher, args):
    base = [ctx.run, plan, "--threads=1", "--comm-timeout=30"] + args
    if ranks == 1:
        cmd = base
    elif launcher == "mpirun":
        cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np",
               str(ranks)] + base
    else:
        cmd = base[:2] + ["--ranks", str(ranks)] + base[2:]
    return subprocess.run(cmd, text=True, capture_output=True, timeout=600)


def train(ctx, models, model, plan, ranks, launcher, steps, tag, extra=()):
    _, _, data, _ = models[model]
    metrics = os.path.join(ctx.tmp, tag + ".jsonl")
    args = ["--train", f"--steps={steps}", f"--data={data}",
            "--data-order=sequential", "--log-every=1", f"--metrics={metrics}"]
    args += list(extra)
    r = launch(ctx, plan, ranks, launcher, args)
    if r.returncode != 0:
        raise RuntimeError(f"{tag}: colossal-run failed:\n{r.stdout}\n{r.stderr}")
    with open(metrics) as f:
        losses = [json.loads(line)["loss"] for line in f if line.strip()]
    return losses, r.stdout


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-6)))


def tensor_err(a, b):
    """||a - b|| / ||b||: elementwise relative error is meaningless for
    values that pass through zero."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def weights_close(a, b):
    """How far `a` is from numpy.allclose(a, b, rtol=TOL, atol=TOL): the
    largest |a - b| / (TOL + TOL |b|), 1.0 at the limit. Trained weights of
    small magnitude (biases near 0) drift by rounding in absolute terms."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b) / (TOL + TOL * np.abs(b)), initial=0.0))


# The attention key bias has no gradient in exact arithmetic (softmax does
# not change when every score of a row moves by q.b): both runs move it by
# AdamW-normalized rounding noise, which no summation order reproduces.
NO_GRADIENT = ("k_proj.bias",)


def peak_equals_arena(stdout):
    for line in stdout.splitlines():
        if line.startswith("peak device bytes:") and "arena:" in line:
            peak = int(line.split(":")[1].split()[0])
            arena = int(line.rsplit("arena:", 1)[1].strip(" )"))
            return peak == arena, f"peak {peak} arena {arena}"
    return False, "no peak line"


def onnx_weights(path):
    import onnx
    from onnx import numpy_helper
    return {i.name: numpy_helper.to_array(i)
            for i in onnx.load(path).graph.initializer}


def parity(ctx, models, only):
    cases = [c for c in CASES if only in c[0]]
    refs = {}
    for model in sorted({c[1] for c in cases}):
        plan = compile_train(ctx, models, model, "", f"{model}-1")
        export = os.path.join(ctx.tmp, f"{model}-1.onnx")
        losses, out = train(ctx, models, model, plan, 1, "ranks", STEPS,
                            f"{model}-1", ["--export-onnx", export])
        refs[model] = (losses, onnx_weights(export))
        ctx.check(losses[-1] < losses[0],
                  f"{model} 1 rank: loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    for name, model, parallel, ranks, launcher in cases:
        tag = name.replace(" ", "_").replace("=", "").replace("(", "").replace(")", "")
        plan = compile_train(ctx, models, model, parallel, tag)
        export = os.path.join(ctx.tmp, tag + ".onnx")
        losses, out = train(ctx, models, model, plan, ranks, launcher, STEPS,
                            tag, ["--export-onnx", export])
        ref, ref_w = refs[model]
        err = rel_err(losses, ref)
        ctx.check(err <= TOL, f"{name}: {len(losses)} losses, max rel err "
                              f"{err:.2e} vs 1 rank (tol {TOL})")
        ok, what = peak_equals_arena(out)
        ctx.check(ok, f"{name}: rank 0's peak device bytes equal its arena ({what})")
        got_w = onnx_weights(export)
        werr, worst = max((weights_close(got_w[k], ref_w[k]) if k in got_w
                           else float("inf"), k)
                          for k in ref_w if not k.endswith(NO_GRADIENT))
        ctx.check(werr <= 1.0, f"{name}: exported weights allclose(rtol=atol="
                               f"{TOL}): worst at {werr:.2f} of the limit ({worst})")


def inference(ctx, models):
    gpt, batch, _, bind = models["gpt"]
    ids = os.path.join(ctx.tmp, "ids.npy")
    np.save(ids, np.random.default_rng(1).integers(0, 64, (batch, 16)))
    outs = {}
    layouts = (("", 1), ("dp=2", 2), ("dp=4", 4), ("tp=2", 2),
               ("dp=2,tp=2", 4), ("tp=2,tp-sp=1", 2))
    for parallel, ranks in layouts:
        plan = os.path.join(ctx.tmp, f"infer-{parallel or 1}.cplan".replace(",", "_"))
        cmd = [ctx.opt, gpt, bind, "--mode=infer", "--emit=plan", "-o", plan]
        if parallel:
            cmd.append("--parallel=" + parallel)
        sh(cmd)
        out = plan + ".out"
        r = launch(ctx, plan, ranks, "ranks",
                   ["--input", f"input_ids={ids}", "--output-dir", out])
        if r.returncode != 0:
            raise RuntimeError(f"inference with {parallel}: {r.stderr}")
        outs[parallel] = np.load(os.path.join(out, "logits.npy"))
    for parallel, _ in layouts[1:]:
        err = tensor_err(outs[parallel], outs[""])
        ctx.check(err <= TOL, f"inference {parallel}: logits ||a-b||/||b|| {err:.2e}")


def resharding_resume(ctx, models):
    plan1 = compile_train(ctx, models, "gpt", "", "resume-1")
    ref, _ = train(ctx, models, "gpt", plan1, 1, "ranks", 30, "resume-ref")
    ckpt = os.path.join(ctx.tmp, "resume-ckpt")
    plan4 = compile_train(ctx, models, "gpt", "dp=2,tp=2", "resume-4")
    plan2 = compile_train(ctx, models, "gpt", "dp=2,zero=2", "resume-2")
    got = []
    for plan, ranks, steps, resume in ((plan4, 4, 10, False),
                                       (plan2, 2, 20, True),
                                       (plan1, 1, 30, True)):
        extra = ["--checkpoint-dir", ckpt] + (["--resume"] if resume else [])
        losses, _ = train(ctx, models, "gpt", plan, ranks, "ranks", steps,
                          f"resume-{ranks}", extra)
        got += losses
    err = rel_err(got, ref)
    ctx.check(err <= TOL, f"resume dp=2 x tp=2 (4 ranks) -> zero=2 (2) -> 1 rank: "
                          f"{len(got)} losses, max rel err {err:.2e} vs 30 steps on 1 rank")
    # Pieces split over two axes (ZeRO-3 x tp), written by their owners.
    ckpt = os.path.join(ctx.tmp, "resume-ckpt-z3tp")
    plan = compile_train(ctx, models, "gpt", "dp=2,tp=2,zero=3", "resume-z3tp")
    first, _ = train(ctx, models, "gpt", plan, 4, "ranks", 10, "resume-z3tp-a",
                     ["--checkpoint-dir", ckpt])
    rest, _ = train(ctx, models, "gpt", plan1, 1, "ranks", 30, "resume-z3tp-b",
                    ["--checkpoint-dir", ckpt, "--resume"])
    err = rel_err(first + rest, ref)
    ctx.check(err <= TOL, f"resume zero=3 x tp=2 (4 ranks) -> 1 rank: max rel err "
                          f"{err:.2e} vs 30 steps on 1 rank")


def wrong_world(ctx, models):
    plan = compile_train(ctx, models, "gpt", "dp=4", "world-4")
    _, _, data, _ = models["gpt"]
    metrics = os.path.join(ctx.tmp, "world-3.jsonl")
    r = launch(ctx, plan, 3, "ranks", ["--train", "--steps=2", f"--data={data}",
                                        f"--metrics={metrics}"])
    ok = (r.returncode != 0 and "compiled for 4 ranks" in r.stderr and
          "this run has 3 ranks" in r.stderr and not os.path.exists(metrics))
    ctx.check(ok, "a 4-rank plan on 3 ranks is refused before any step: " +
              (r.stderr.strip().splitlines() or ["(no message)"])[-1][:160])
    r = launch(ctx, plan, 1, "ranks", ["--train", "--steps=2", f"--data={data}"])
    ctx.check(r.returncode != 0 and "--ranks 4" in r.stderr,
              "a 4-rank plan on 1 rank says to use --ranks 4")


def torchrun_env(ctx, models):
    """Ranks started as torchrun starts them (RANK, WORLD_SIZE, MASTER_ADDR,
    MASTER_PORT): one plan trains like --ranks; two different plans are
    refused before any step."""
    import socket
    _, _, data, _ = models["gpt"]
    plan_a = compile_train(ctx, models, "gpt", "dp=2", "env-a")
    saved = dict(LR)
    LR["gpt"] = "1e-3"  # another plan: another learning rate
    try:
        plan_b = compile_train(ctx, models, "gpt", "dp=2", "env-b")
    finally:
        LR.update(saved)

    def run(plans, tag):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        procs = []
        for rank, plan in enumerate(plans):
            env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2",
                       LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                       MASTER_PORT=str(port))
            procs.append(subprocess.Popen(
                [ctx.run, plan, "--threads=1", "--comm-timeout=30", "--train",
                 "--steps=3", f"--data={data}", "--data-order=sequential",
                 "--log-every=1", f"--metrics={ctx.tmp}/{tag}.jsonl"],
                env=env, text=True, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE))
        return [(p.wait(timeout=120), p.stderr.read()) for p in procs]

    same = run([plan_a, plan_a], "env-same")
    ok = all(rc == 0 for rc, _ in same)
    ctx.check(ok, "torchrun-style environment: 2 ranks train" +
              ("" if ok else ": " + same[0][1][-200:]))
    diff = run([plan_a, plan_b], "env-diff")
    ok = all(rc != 0 and "given different plans" in err for rc, err in diff)
    ctx.check(ok, "ranks given different plans are refused before any step")


def dead_rank(ctx, models):
    """SIGKILL one of 4 ranks mid-run: the others must exit non-zero within
    the timeout plus a few seconds, and the launcher must name the rank."""
    plan = compile_train(ctx, models, "gpt", "dp=4", "dead-4")
    _, _, data, _ = models["gpt"]
    cmd = [ctx.run, plan, "--ranks", "4", "--threads=1", "--train",
           "--steps=100000", f"--data={data}", "--log-every=1"]
    p = subprocess.Popen(cmd, text=True, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    # Wait until training is under way, then kill rank 2.
    line = ""
    while "step 3/" not in line:
        line = p.stdout.readline()
        if not line and p.poll() is not None:
            break
    children = subprocess.run(["pgrep", "-P", str(p.pid)], text=True,
                              capture_output=True).stdout.split()
    victim = None
    for pid in children:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
            if env.get(b"RANK") == b"2":
                victim = int(pid)
        except OSError:
            pass
    if victim is None:
        p.kill()
        ctx.check(False, "dead rank: could not find rank 2's process")
        return
    t0 = time.time()
    os.kill(victim, signal.SIGKILL)
    try:
        _, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        ctx.check(False, "dead rank: the run hung after rank 2 was killed")
        return
    took = time.time() - t0
    ok = p.returncode != 0 and "rank 2 of 4 was killed by signal 9" in err and took < 70
    ctx.check(ok, f"rank 2 killed: the run exits {p.returncode} in {took:.1f} s "
                  f"naming it: {err.strip().splitlines()[-1][:160] if err.strip() else ''}")
    others = [l for l in err.splitlines() if l.startswith("colossal-run: rank ")]
    # "rank 2 has left the run", or, when a survivor that saw the error
    # first has exited too by the time another looks, "ranks 2, 3 have left".
    left = re.compile(r"ranks? ((?:\d+, )*\d+) ha(?:s|ve) left the run")
    named = [l for l in others
             if any("2" in m.group(1).split(", ") for m in left.finditer(l))]
    ctx.check(len(others) == 3 and len(named) == 3,
              f"the 3 surviving ranks report their error with their rank and "
              f"name rank 2 ({len(named)} of {len(others)}"
              + "".join("; not named: " + l[-200:] for l in others
                        if l not in named) + ")")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--only", default="",
                    help="run only the parity cases whose name contains this")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="colossal-dist-")
    ctx = Ctx(os.path.abspath(args.build), tmp)
    try:
        models = make_models(ctx)
        parity(ctx, models, args.only)
        if not args.only:
            wrong_world(ctx, models)
            torchrun_env(ctx, models)
            inference(ctx, models)
            resharding_resume(ctx, models)
            dead_rank(ctx, models)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(ctx.failures)} failed" if ctx.failures else "all passed")
    return 1 if ctx.failures else 0


if __name__ == "__main__":
    sys.exit(main())
