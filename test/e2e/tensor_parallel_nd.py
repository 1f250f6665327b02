#!/usr/bin/env python3
"""2D, 2.5D and 3D tensor parallelism train what one rank trains.

A small GPT-2 (tied embedding and head) trained with AdamW and gradient
clipping for 20 steps on N ranks matches the 1-rank run of the same global
batch within 1e-5 relative loss per step (fp32): tp-mode=2d on 4 ranks
(SUMMA, 2 x 2), 2.5d on 8 ranks (q=2, d=2), 3d on 8 ranks (2 x 2 x 2); 2d
with dp=2 (and ZeRO-2, ZeRO-3) and with pp=2, under mpirun, on a LLaMA
(RMS norm, rotary tables, untied head) and on torch exports whose
initializers are anonymized. Every weight matrix is stored split over both
of its dimensions (each rank holds 1/q^2, 3d: 1/q^3), so each rank's arena
is below the 1-rank arena and below 1D tensor parallelism's on as many
ranks; every layer norm reduces its statistics instead of gathering the
hidden dimension. A checkpoint written on the 2d mesh resumes on 1 rank,
inference on the 3d mesh gives the 1-rank logits, and layouts that do not
fit are refused with a message. Ulysses sequence parallelism combines with
1D tensor parallelism (sp=2 x tp=2, and with dp=2): attention runs on
the heads split over tp and then over sp; so does ring attention (sp=2 x
tp=2: the heads over tp, the sequence's blocks around the sp ring), and
both with Megatron's sequence parallelism (tp-sp=1: outside attention each
sp block of the sequence split over tp); and both beside 2D tensor
parallelism (sp=2 x tp=4 2d on 8 ranks).

Usage: test/e2e/tensor_parallel_nd.py --build BUILD
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from checks import Checks  # noqa: E402
import runs  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
STEPS = 20
TOL = 1e-5


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    opt = os.path.join(args.build, "bin", "colossal-opt")
    run = os.path.join(args.build, "bin", "colossal-run")
    check = Checks()

    def compile_plan(model, out, parallel="", batch=8, micro=1, ranks=1, extra=(),
                     emit="plan"):
        cmd = [opt, model, "--mode=train", "--loss=cross-entropy", "--optimizer=adamw",
               "--lr=3e-3", "--clip-grad-norm=1.0", "--emit=" + emit, "-o", out]
        if batch:
            cmd[2:2] = ["--bind", "batch=%d,seq=16" % batch]
        if parallel:
            cmd += ["--parallel=" + parallel, "--cluster=cpu:gpus_per_node=%d" % ranks]
        if micro > 1:
            cmd.append("--micro-batches=%d" % micro)
        p = subprocess.run(cmd + list(extra), capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(" ".join(cmd) + "\n" + p.stderr)

    def train(plan, data, tmp, tag, ranks=1, mpirun=False, steps=STEPS, extra=()):
        return runs.train(run, plan, data, os.path.join(tmp, tag + ".jsonl"), steps,
                          ranks, mpirun, extra)

    rel = runs.rel

    with tempfile.TemporaryDirectory() as tmp:
        gpt = os.path.join(tmp, "gpt.onnx")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/models/gpt2.py"),
                        "--layers", "2", "--hidden", "32", "--heads", "4", "--vocab", "128",
                        "--seq", "16", "--tied", "--weights", "real", "-o", gpt],
                       check=True, stdout=subprocess.DEVNULL)
        tokens = os.path.join(tmp, "tokens.bin")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/models/tokens.py"),
                        "-o", tokens, "--tokens", "20000"], check=True,
                       stdout=subprocess.DEVNULL)

        base_plan = os.path.join(tmp, "one.cplan")
        compile_plan(gpt, base_plan)
        base, base_peaks, _ = train(base_plan, tokens, tmp, "one")
        base_arena = base_peaks[0][1]
        arenas = {}

        # (name, --parallel, ranks, per-micro-batch batch, micro-batches, mpirun)
        cases = [
            ("tp1d-4", "tp=4", 4, 8, 1, False),
            ("tp2d", "tp=4,tp-mode=2d", 4, 8, 1, False),
            ("tp2.5d", "tp=8,tp-mode=2.5d:2", 8, 8, 1, False),
            ("tp3d", "tp=8,tp-mode=3d", 8, 8, 1, False),
            ("dp2-tp2d-zero2", "dp=2,tp=4,tp-mode=2d,zero=2", 8, 8, 1, False),
            ("dp2-tp2d-zero3", "dp=2,tp=4,tp-mode=2d,zero=3", 8, 8, 1, False),
            ("pp2-tp2d", "pp=2,tp=4,tp-mode=2d", 8, 4, 2, False),
            ("tp2d-mpirun", "tp=4,tp-mode=2d", 4, 8, 1, True),
            # Ulysses beside Megatron's 1D layout: heads split over tp,
            # then over sp by the all-to-all.
            ("sp2-tp2-ulysses", "sp=2,tp=2,sp-mode=ulysses", 4, 8, 1, False),
            ("dp2-sp2-tp2-ulysses", "dp=2,sp=2,tp=2,sp-mode=ulysses", 8, 8, 1, False),
            # Ring attention beside it: heads over tp, the sequence's
            # blocks around the sp ring.
            ("sp2-tp2-ring", "sp=2,tp=2,sp-mode=ring", 4, 8, 1, False),
            # With Megatron's sequence parallelism too: outside attention
            # each sp block of the sequence splits further over tp.
            ("sp2-tp2-tpsp-ring", "sp=2,tp=2,tp-sp=1,sp-mode=ring", 4, 8, 1, False),
            ("sp2-tp2-tpsp-ulysses", "sp=2,tp=2,tp-sp=1,sp-mode=ulysses", 4, 8, 1,
             False),
            # Beside 2D tensor parallelism: the sp axis after dp, every
            # activation's sequence split over it.
            ("sp2-tp2d-ring", "sp=2,tp=4,tp-mode=2d,sp-mode=ring", 8, 8, 1, False),
            ("sp2-tp2d-ulysses", "sp=2,tp=4,tp-mode=2d,sp-mode=ulysses", 8, 8, 1, False),
        ]
        for name, parallel, ranks, batch, micro, mpirun in cases:
            plan = os.path.join(tmp, name + ".cplan")
            try:
                compile_plan(gpt, plan, parallel, batch, micro, ranks)
                losses, peaks, out = train(plan, tokens, tmp, name, ranks, mpirun)
            except RuntimeError as e:
                check(False, "%s: %s" % (name, str(e)[-1500:]))
                continue
            if peaks:
                arenas[name] = peaks[0][1]
            if name == "tp1d-4":
                continue  # the baseline of the memory check below
            err = rel(losses, base)
            check(err <= TOL, "%s on %d ranks (%s%s): %d losses within %.1e of 1 rank "
                  "(tol %.0e)" % (name, ranks, parallel, ", mpirun" if mpirun else "",
                                  len(losses), err, TOL))
            check(bool(peaks) and all(p == a for p, a in peaks),
                  "%s: the peak device bytes equal the arena" % name)

        # Memory: weights split both ways hold less than Megatron's split.
        for name in ("tp2d", "tp2.5d", "tp3d"):
            if name in arenas:
                check(arenas[name] < base_arena,
                      "%s: rank 0's arena %d < the 1-rank arena %d"
                      % (name, arenas[name], base_arena))
        if "tp2d" in arenas and "tp1d-4" in arenas:
            check(arenas["tp2d"] < arenas["tp1d-4"],
                  "tp2d: rank 0's arena %d < 1D tp=4's %d on as many ranks"
                  % (arenas["tp2d"], arenas["tp1d-4"]))

        # The program: weights split over both tp axes, layer norms reduce
        # their statistics ([.., 1] all-reduces) rather than gather.
        mlir = os.path.join(tmp, "tp2d.mlir")
        try:
            compile_plan(gpt, mlir, "tp=4,tp-mode=2d", ranks=4, emit="mlir")
            text = open(mlir).read()
            fc = re.search(r'cg\.param "h\.0\.mlp\.fc\.weight".*cg\.shard_of = \[#cg\.sharding'
                           r'<@mesh, \[\["tpr"\], \["tpc"\]\]>\]\} : tensor<16x64xf32>', text)
            check(fc is not None, "tp2d: h.0.mlp.fc.weight [32, 128] is held as a 16 x 64 "
                  "piece split over tpr and tpc")
            stats = re.findall(r'cgd\.all_reduce %\d+ on @mesh \["tpc"\]\s+sum .*: '
                               r'tensor<4x16x1xf32>', text)
            check(len(stats) >= 5 * 2, "tp2d: the 5 layer norms' statistics are all-reduced "
                  "over tpc in forward and backward (%d [4, 16, 1] all-reduces)" % len(stats))
        except RuntimeError as e:
            check(False, "tp2d program: %s" % str(e)[-1200:])

        # sp x tp: q, k and v reach attention through one all-to-all over sp
        # each, as [batch, heads / (tp sp), whole sequence, head size].
        mlir = os.path.join(tmp, "sptp.mlir")
        try:
            compile_plan(gpt, mlir, "sp=2,tp=2,sp-mode=ulysses", ranks=4, emit="mlir")
            text = open(mlir).read()
            a2a = re.findall(r'cgd\.all_to_all %\d+ on @mesh \["sp"\] .*: '
                             r'\(tensor<8x2x8x8xf32>\) -> tensor<8x1x16x8xf32>', text)
            att = re.findall(r'cg\.attention .*: \(tensor<8x1x16x8xf32>', text)
            check(len(a2a) >= 3 * 2 and len(att) == 2,
                  "sp2 x tp2: each layer's q, k, v go from a sequence split to a head "
                  "split by an all-to-all over sp (%d), attention on 1 of 4 heads with the "
                  "whole sequence (%d layers)" % (len(a2a), len(att)))
        except RuntimeError as e:
            check(False, "sp x tp program: %s" % str(e)[-1200:])

        # Resume: a checkpoint of the 2d mesh (weights in the global layout)
        # continues on 1 rank as if never stopped.
        ckpt = os.path.join(tmp, "ckpt")
        try:
            subprocess.run([run, os.path.join(tmp, "tp2d.cplan"), "--train", "--steps=4",
                            "--data=" + tokens, "--threads=1", "--checkpoint-dir", ckpt,
                            "--ranks", "4"], check=True, capture_output=True, timeout=300)
            resumed, _, _ = train(base_plan, tokens, tmp, "resume", 1, steps=8,
                                  extra=["--checkpoint-dir", ckpt, "--resume"])
            err = rel(resumed, base[4:8])
            check(err <= TOL, "a tp2d checkpoint resumes on 1 rank: steps 5-8 within %.1e "
                  "of the uninterrupted run" % err)
        except (RuntimeError, subprocess.CalledProcessError) as e:
            check(False, "resume tp2d -> 1 rank: %s" % str(e)[-1200:])

        # LLaMA (RMS norm, rotary tables, SwiGLU, untied head) on 2d and 3d.
        llama = os.path.join(tmp, "llama.onnx")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/models/llama.py"),
                        "--layers", "2", "--hidden", "32", "--heads", "4", "--vocab", "128",
                        "--seq", "16", "--weights", "real", "-o", llama],
                       check=True, stdout=subprocess.DEVNULL)
        one = os.path.join(tmp, "llama-one.cplan")
        compile_plan(llama, one)
        lbase, _, _ = train(one, tokens, tmp, "llama-one", steps=6)
        for parallel, ranks in (("tp=4,tp-mode=2d", 4), ("tp=8,tp-mode=3d", 8)):
            plan = os.path.join(tmp, "llama-%d.cplan" % ranks)
            try:
                compile_plan(llama, plan, parallel, ranks=ranks)
                losses, _, _ = train(plan, tokens, tmp, "llama-%d" % ranks, ranks, steps=6)
                err = rel(losses, lbase)
                check(err <= TOL, "llama %s: losses within %.1e of 1 rank" % (parallel, err))
            except RuntimeError as e:
                check(False, "llama %s: %s" % (parallel, str(e)[-1500:]))

        # Torch exports with anonymized, deduplicated initializers and a
        # static batch of 4.
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/models/export_naming.py"),
                        "--out", tmp, "--models", "gpt2,llama"],
                       check=True, capture_output=True)
        for model in ("gpt2_anon", "llama_anon"):
            path = os.path.join(tmp, model + ".onnx")
            a_plan = os.path.join(tmp, model + "-one.cplan")
            b_plan = os.path.join(tmp, model + "-2d.cplan")
            try:
                compile_plan(path, a_plan, batch=0)
                compile_plan(path, b_plan, "tp=4,tp-mode=2d", batch=0, ranks=4)
                a, _, _ = train(a_plan, tokens, tmp, model + "-one", steps=4)
                b, _, _ = train(b_plan, tokens, tmp, model + "-2d", 4, steps=4)
                err = rel(b, a)
                check(err <= TOL, "torch export %s, tp 2d: losses within %.1e of 1 rank"
                      % (model, err))
            except RuntimeError as e:
                check(False, "torch export %s, tp 2d: %s" % (model, str(e)[-1200:]))

        # Inference on the 3d mesh: the logits of one rank.
        ids = os.path.join(tmp, "ids.npy")
        np.save(ids, np.random.default_rng(3).integers(0, 128, (8, 16)).astype(np.int64))

        def infer(plan, ranks, out):
            cmd = [run, plan, "--input", "input_ids=" + ids, "--output-dir", out,
                   "--threads=1"] + (["--ranks", str(ranks)] if ranks > 1 else [])
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                raise RuntimeError(r.stdout + r.stderr)
            return np.load(os.path.join(out, "logits.npy"))
        try:
            plans = {}
            for tag, par in (("one", ""), ("3d", "tp=8,tp-mode=3d")):
                plans[tag] = os.path.join(tmp, "inf-%s.cplan" % tag)
                cmd = [opt, gpt, "--bind", "batch=8,seq=16", "--mode=infer", "--emit=plan",
                       "-o", plans[tag]]
                if par:
                    cmd += ["--parallel=" + par, "--cluster=cpu:gpus_per_node=8"]
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    raise RuntimeError(r.stderr)
            want = infer(plans["one"], 1, os.path.join(tmp, "inf-one"))
            got = infer(plans["3d"], 8, os.path.join(tmp, "inf-3d"))
            err = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
            check(err <= 1e-5, "inference on tp 3d: logits %s equal 1 rank's (max abs "
                  "difference %.1e)" % (got.shape, err))
        except RuntimeError as e:
            check(False, "inference on tp 3d: %s" % str(e)[-1200:])

        # Refusals.
        def refused(what, batch, parallel, needle):
            cmd = [opt, gpt, "--bind", "batch=%d,seq=16" % batch, "--mode=train",
                   "--loss=cross-entropy", "--optimizer=adamw", "--parallel=" + parallel,
                   "--emit=plan", "-o", os.path.join(tmp, "x.cplan")]
            p = subprocess.run(cmd, capture_output=True, text=True)
            check(p.returncode == 1 and needle in p.stderr,
                  "%s is refused with a message (%s)" % (what, p.stderr.strip()[-240:]))

        refused("tp-mode=2d on a tp that is not a square", 8, "tp=8,tp-mode=2d", "square")
        refused("tp-mode=3d on a tp that is not a cube", 8, "tp=4,tp-mode=3d", "cube")
        refused("a batch that does not split over the rows", 2, "tp=8,tp-mode=3d",
                "multiple of 4")
        refused("Megatron sequence parallelism with 2d", 8, "tp=4,tp-mode=2d,tp-sp=1",
                "tp-sp=1 applies to tp-mode=1d")
        p = subprocess.run([run, os.path.join(tmp, "tp3d.cplan"), "--train", "--steps=1",
                            "--data=" + tokens, "--ranks", "4"],
                           capture_output=True, text=True, timeout=120)
        check(p.returncode == 1 and "8 ranks" in p.stdout + p.stderr,
              "a tp 3d plan on 4 ranks is refused (%s)" % (p.stdout + p.stderr).strip()[-200:])

    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
