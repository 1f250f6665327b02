#!/usr/bin/env python3
"""Pipelines, offload and Ulysses sequence parallelism train what one rank
trains.

A small GPT-2 (scripts/models/gpt2.py, tied embedding and head) trained with
AdamW for 20 steps on N ranks with pipeline parallelism matches the
1-rank run of the same global batch within 1e-5 relative loss per step
(fp32): pp=2 and pp=4 with GPipe, 1F1B and interleaved 1F1B (2 model chunks
per stage), uneven stages, pp=2 x dp=2 (and ZeRO-3) and pp=2 x tp=2, with
recomputation, with the optimizer state offloaded to host memory (whose
arena is then smaller), with the activations offloaded (alone, with dp and
recomputation, with ZeRO-3, with pp=2), under --ranks and mpirun; sp=2 and sp=4 in
Ulysses mode (the sequence split, attention on a split of the heads, causal)
and in ring mode (each rank its block of the sequence, key/value blocks
passed around the ring: cgd.ring_attention forward and backward), dp x sp
and pp x sp, ring with recomputation and with activation offload. A LLaMA (untied, rotary tables shared by every
layer) on pp=2 too. Each stage's peak device bytes equal its arena, and the
arenas of the stages are smaller than the 1-rank arena. A checkpoint written
by the pipeline resumes on 1 rank with the loss the pipeline would have had.
Asking for what pipelines cannot do is refused with a message.

Usage: test/e2e/pipeline_parity.py --build BUILD [--quick]
"""
import argparse
import json
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
    ap.add_argument("--quick", action="store_true", help="pp=2 1f1b only")
    ap.add_argument("--cases", default="",
                    help="comma-separated case names to run (default: all)")
    args = ap.parse_args()
    opt = os.path.join(args.build, "bin", "colossal-opt")
    run = os.path.join(args.build, "bin", "colossal-run")
    check = Checks()

    def compile_plan(model, batch, parallel, out, micro=1, extra=()):
        cmd = [opt, model, "--bind", "batch=%d,seq=16" % batch, "--mode=train",
               "--loss=cross-entropy", "--optimizer=adamw", "--lr=3e-3",
               "--lr-schedule=warmup-cosine:1,8,0.1",
               "--clip-grad-norm=1.0", "--emit=plan", "-o", out]
        if parallel:
            cmd.append("--parallel=" + parallel)
        if micro > 1:
            cmd.append("--micro-batches=%d" % micro)
        p = subprocess.run(cmd + list(extra), capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(" ".join(cmd) + "\n" + p.stderr)

    def train(plan, data, tmp, tag, ranks=1, mpirun=False, extra=()):
        return runs.train(run, plan, data, os.path.join(tmp, tag + ".jsonl"), STEPS,
                          ranks, mpirun, extra)

    rel = runs.rel

    with tempfile.TemporaryDirectory() as tmp:
        gpt = os.path.join(tmp, "gpt.onnx")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/models/gpt2.py"),
                        "--layers", "4", "--hidden", "32", "--heads", "2", "--vocab", "128",
                        "--seq", "16", "--tied", "--weights", "real", "-o", gpt],
                       check=True, stdout=subprocess.DEVNULL)
        tokens = os.path.join(tmp, "tokens.bin")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/models/tokens.py"),
                        "-o", tokens, "--tokens", "20000"], check=True,
                       stdout=subprocess.DEVNULL)

        # The 1-rank run of the global batch: 8 sequences per step.
        base_plan = os.path.join(tmp, "one.cplan")
        compile_plan(gpt, 8, "", base_plan)
        base, base_peaks, _ = train(base_plan, tokens, tmp, "one")
        base_arena = base_peaks[0][1]

        # (name, per-micro-batch batch, micro-batches, --parallel, ranks, mpirun)
        cases = [("pp2-1f1b", 2, 4, "pp=2,schedule=1f1b", 2, False)]
        if not args.quick:
            cases += [
                ("pp2-gpipe", 2, 4, "pp=2,schedule=gpipe", 2, False),
                ("pp4-1f1b", 2, 4, "pp=4,schedule=1f1b", 4, False),
                ("pp4-gpipe", 1, 8, "pp=4,schedule=gpipe", 4, False),
                ("pp2-interleaved", 2, 4, "pp=2,schedule=interleaved:2", 2, False),
                ("pp2-uneven", 2, 4, "pp=2,stage-layers=1:3", 2, False),
                ("pp2-dp2", 4, 2, "dp=2,pp=2", 4, False),
                ("pp2-dp2-zero3", 4, 2, "dp=2,pp=2,zero=3", 4, False),
                ("pp2-tp2", 2, 4, "tp=2,pp=2", 4, False),
                ("pp2-recompute", 2, 4, "pp=2,recompute=full", 2, False),
                ("pp2-offload", 2, 4, "pp=2,offload=optimizer", 2, False),
                ("offload", 8, 1, "dp=1,offload=optimizer", 1, False),
                ("dp2-zero3-offload-params", 8, 1, "dp=2,zero=3,offload=params", 2, False),
                ("pp2-dp2-zero3-offload-params", 4, 2, "dp=2,pp=2,zero=3,offload=params", 4, False),
                ("offload-activations", 8, 1, "dp=1,offload=activations", 1, False),
                ("dp2-selective-offload-activations", 8, 1,
                 "dp=2,recompute=selective,offload=activations", 2, False),
                ("dp2-zero3-full-offload-activations", 8, 1,
                 "dp=2,zero=3,recompute=full,offload=activations", 2, False),
                ("pp2-offload-activations", 2, 4, "pp=2,offload=activations", 2, False),
                ("pp2-mpirun", 2, 4, "pp=2,schedule=1f1b", 2, True),
                ("sp2-ulysses", 8, 1, "sp=2,sp-mode=ulysses", 2, False),
                ("sp4-ulysses", 8, 1, "sp=4,sp-mode=ulysses", 4, False),
                ("dp2-sp2-ulysses", 8, 1, "dp=2,sp=2,sp-mode=ulysses", 4, False),
                ("pp2-sp2-ulysses", 4, 2, "pp=2,sp=2,sp-mode=ulysses", 4, False),
                ("sp2-ring", 8, 1, "sp=2,sp-mode=ring", 2, False),
                ("sp4-ring", 8, 1, "sp=4,sp-mode=ring", 4, False),
                ("dp2-sp2-ring", 8, 1, "dp=2,sp=2,sp-mode=ring", 4, False),
                ("pp2-sp2-ring", 4, 2, "pp=2,sp=2,sp-mode=ring", 4, False),
                ("sp2-ring-mpirun", 8, 1, "sp=2,sp-mode=ring", 2, True),
                ("sp2-ring-recompute", 8, 1, "sp=2,sp-mode=ring,recompute=full", 2, False),
                ("sp2-ring-offload-activations", 8, 1,
                 "sp=2,sp-mode=ring,offload=activations", 2, False),
            ]
        if args.cases:
            wanted = args.cases.split(",")
            unknown = set(wanted) - {c[0] for c in cases}
            if unknown:
                sys.exit("pipeline_parity: no case named %s" % ", ".join(sorted(unknown)))
            # pp2-1f1b also serves the checks after the cases.
            cases = [c for c in cases if c[0] in wanted or c[0] == "pp2-1f1b"]
        for name, batch, micro, parallel, ranks, mpirun in cases:
            plan = os.path.join(tmp, name + ".cplan")
            try:
                compile_plan(gpt, batch, parallel, plan, micro,
                             ["--cluster=cpu:gpus_per_node=%d" % ranks])
                losses, peaks, out = train(plan, tokens, tmp, name, ranks, mpirun)
            except RuntimeError as e:
                check(False, "%s: %s" % (name, str(e)[-1500:]))
                continue
            err = rel(losses, base)
            check(err <= TOL, "%s on %d ranks (%s%s): %d losses within %.1e of 1 rank (tol %.0e)"
                  % (name, ranks, parallel, ", mpirun" if mpirun else "", len(losses), err, TOL))
            if peaks:
                check(all(p == a for p, a in peaks),
                      "%s: every rank's peak device bytes equal its arena" % name)
            if name == "offload":
                # The optimizer state left the device for the host pool.
                check(peaks and peaks[0][1] < base_arena,
                      "offload=optimizer: the arena %d < the arena without offload %d"
                      % (peaks[0][1] if peaks else -1, base_arena))
                check("host pool (offloaded state)" in out,
                      "offload=optimizer: colossal-run reports the host pool")
            if name == "offload-activations":
                # The kept activations of all but the last layer left the
                # device; the host pool holds them between the passes.
                host = re.search(r"host pool[^\n]*: (\d+) bytes", out)
                check(peaks and peaks[0][1] < base_arena,
                      "offload=activations: the arena %d < the arena without offload %d"
                      % (peaks[0][1] if peaks else -1, base_arena))
                check(host is not None and int(host.group(1)) > 0,
                      "offload=activations: colossal-run reports a host pool (%s)"
                      % (host.group(0) if host else out[-300:]))
            if name == "pp2-1f1b":
                # Only rank 0 prints; its stage holds half the layers.
                check(peaks and peaks[0][1] < base_arena,
                      "%s: stage 0's arena %d < the 1-rank arena %d"
                      % (name, peaks[0][1] if peaks else -1, base_arena))

        # Resume: a pipeline's checkpoint (2 steps) continues on 1 rank,
        # and a 1-rank checkpoint on the pipeline, as if never stopped.
        plan = os.path.join(tmp, "pp2-1f1b.cplan")
        for first, first_ranks, then, then_ranks, tag in (
                (plan, 2, base_plan, 1, "pp=2 -> 1 rank"),
                (base_plan, 1, plan, 2, "1 rank -> pp=2")):
            ckpt = os.path.join(tmp, "ckpt-" + tag.replace(" ", "").replace(">", ""))
            try:
                subprocess.run([run, first, "--train", "--steps=2", "--data=" + tokens,
                                "--threads=1", "--checkpoint-dir", ckpt]
                               + (["--ranks", str(first_ranks)] if first_ranks > 1 else []),
                               check=True, capture_output=True, timeout=300)
                resumed, _, _ = train(then, tokens, tmp, "resume", then_ranks,
                                      extra=["--checkpoint-dir", ckpt, "--resume"])
                err = rel(resumed, base[2:])
                check(err <= TOL, "resume %s: steps 3-4 within %.1e of the uninterrupted run"
                      % (tag, err))
            except (RuntimeError, subprocess.CalledProcessError) as e:
                check(False, "resume %s: %s" % (tag, str(e)[-1200:]))

        # --profile: a Chrome trace per rank, and beside each a summary of
        # every instruction's measured time next to the compiler's
        # prediction (colossal-predict-times), summed per op kind too.
        try:
            trace = os.path.join(tmp, "trace.json")
            _, _, out = train(os.path.join(tmp, "pp2-1f1b.cplan"), tokens, tmp,
                              "profile", 2, extra=["--profile", trace])
            for r in range(2):
                with open(os.path.join(tmp, "trace.rank%d.json" % r)) as f:
                    events = [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X"]
                with open(os.path.join(tmp, "trace.rank%d.summary.json" % r)) as f:
                    summary = json.load(f)
                ops = {o["op"]: o for o in summary["by_op"]}
                insts = summary["instructions"]
                check(events and all("predicted_us" in e["args"] for e in events),
                      "--profile rank %d: %d trace events, each with its predicted time"
                      % (r, len(events)))
                check(summary["predicted_s_per_run"] > 0 and summary["measured_s_per_run"] > 0
                      and "matmul" in ops and ("send" in ops or "recv" in ops)
                      and ops["matmul"]["predicted_s"] > 0
                      and abs(sum(i["measured_s"] for i in insts)
                              - summary["measured_s_per_run"]) < 1e-6 * len(insts)
                      and insts == sorted(insts, key=lambda i: -i["measured_s"]),
                      "--profile rank %d: summary of %d instructions (measured %.2f ms, "
                      "predicted %.2f ms a run; %d op kinds, slowest first)"
                      % (r, len(insts), summary["measured_s_per_run"] * 1e3,
                         summary["predicted_s_per_run"] * 1e3, len(ops)))
            check("measured vs predicted (rank 0, per run)" in out,
                  "--profile prints measured vs predicted per op kind")
        except (RuntimeError, OSError, KeyError, ValueError) as e:
            check(False, "--profile: %s" % str(e)[-1200:])

        # --export-onnx from a pipeline: rank 0 gathers the other stage's
        # weights; the exported model equals the 1-rank run's.
        try:
            import onnx
            from onnx import numpy_helper
            exports = {}
            for tag, plan, ranks in (("one", base_plan, 1),
                                     ("pp", os.path.join(tmp, "pp2-1f1b.cplan"), 2)):
                exports[tag] = os.path.join(tmp, "export-%s.onnx" % tag)
                train(plan, tokens, tmp, "export-" + tag, ranks,
                      extra=["--export-onnx", exports[tag]])
            a = {t.name: numpy_helper.to_array(t)
                 for t in onnx.load(exports["one"]).graph.initializer}
            b = {t.name: numpy_helper.to_array(t)
                 for t in onnx.load(exports["pp"]).graph.initializer}
            worst = max(float(np.max(np.abs(a[k] - b[k]))) for k in a) if a.keys() == b.keys() else float("inf")
            check(worst < 1e-5, "pp=2 --export-onnx writes the 1-rank run's weights "
                  "(max abs difference %.1e over %d initializers)" % (worst, len(a)))
        except RuntimeError as e:
            check(False, "pp=2 --export-onnx: %s" % str(e)[-1200:])

        # LLaMA: rotary tables and masks every layer reads; untied head.
        llama = os.path.join(tmp, "llama.onnx")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/models/llama.py"),
                        "--layers", "2", "--hidden", "32", "--heads", "2", "--vocab", "128",
                        "--seq", "16", "--weights", "real", "-o", llama],
                       check=True, stdout=subprocess.DEVNULL)
        one = os.path.join(tmp, "llama-one.cplan")
        compile_plan(llama, 8, "", one)
        lbase, _, _ = train(one, tokens, tmp, "llama-one")
        pp = os.path.join(tmp, "llama-pp2.cplan")
        try:
            compile_plan(llama, 2, "pp=2", pp, 4, ["--cluster=cpu:gpus_per_node=2"])
            losses, _, _ = train(pp, tokens, tmp, "llama-pp2", 2)
            err = rel(losses, lbase)
            check(err <= TOL, "llama pp=2: losses within %.1e of 1 rank" % err)
            sp = os.path.join(tmp, "llama-sp2.cplan")
            compile_plan(llama, 8, "sp=2,sp-mode=ulysses", sp, 1,
                         ["--cluster=cpu:gpus_per_node=2"])
            losses, _, _ = train(sp, tokens, tmp, "llama-sp2", 2)
            err = rel(losses, lbase)
            check(err <= TOL, "llama sp=2 (Ulysses, rotary tables split with the "
                  "sequence): losses within %.1e of 1 rank" % err)
            ring = os.path.join(tmp, "llama-ring2.cplan")
            compile_plan(llama, 8, "sp=2,sp-mode=ring", ring, 1,
                         ["--cluster=cpu:gpus_per_node=2"])
            losses, _, _ = train(ring, tokens, tmp, "llama-ring2", 2)
            err = rel(losses, lbase)
            check(err <= TOL, "llama sp=2 (ring attention, rotary tables split with "
                  "the sequence): losses within %.1e of 1 rank" % err)
        except RuntimeError as e:
            check(False, "llama pp=2: %s" % str(e)[-1500:])

        # Torch exports with anonymized, deduplicated initializers (one
        # norm weight shared by every layer, so by both stages) and a
        # static batch: pp=2 against 1 rank accumulating the same 4
        # micro-batches.
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/models/export_naming.py"),
                        "--out", tmp, "--models", "gpt2,llama"],
                       check=True, capture_output=True)
        for model in ("gpt2_anon", "llama_anon"):
            path = os.path.join(tmp, model + ".onnx")
            acc = os.path.join(tmp, model + "-acc.cplan")
            pp = os.path.join(tmp, model + "-pp2.cplan")
            try:
                for out, extra in ((acc, []), (pp, ["--parallel=pp=2",
                                                    "--cluster=cpu:gpus_per_node=2"])):
                    r = subprocess.run([opt, path, "--mode=train", "--loss=cross-entropy",
                                        "--optimizer=adamw", "--micro-batches=4",
                                        "--emit=plan", "-o", out] + extra,
                                       capture_output=True, text=True)
                    if r.returncode != 0:
                        raise RuntimeError(r.stderr)
                a, _, _ = train(acc, tokens, tmp, model + "-acc")
                b, _, _ = train(pp, tokens, tmp, model + "-pp2", 2)
                err = rel(b, a)
                check(err <= TOL, "torch export %s, pp=2: losses within %.1e of 1 rank "
                      "accumulating 4 micro-batches" % (model, err))
            except RuntimeError as e:
                check(False, "torch export %s, pp=2: %s" % (model, str(e)[-1200:]))

        # A memory budget that forces a pipeline, recomputation and offload:
        # the searched plan for 8 CPU ranks compiles, runs and matches 1 rank.
        g8 = os.path.join(tmp, "gpt8.onnx")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/models/gpt2.py"),
                        "--layers", "8", "--hidden", "64", "--heads", "4", "--vocab", "128",
                        "--seq", "64", "--weights", "real", "-o", g8],
                       check=True, stdout=subprocess.DEVNULL)
        searched = os.path.join(tmp, "searched8.cplan")
        p = subprocess.run([opt, g8, "--bind", "seq=64", "--batch=2",
                            "--cluster=cpu:gpus_per_node=8", "--auto-parallel",
                            "--memory-budget=800KiB", "--mode=train", "--loss=cross-entropy",
                            "--optimizer=adamw", "--emit=plan", "-o", searched],
                           capture_output=True, text=True)
        chose = re.search(r"auto-parallel chose (\S+);", p.stderr)
        cfg = dict(kv.split("=", 1) for kv in chose.group(1).split(",")) if chose else {}
        check(p.returncode == 0 and int(cfg.get("pp", 1)) > 1 and
              cfg.get("recompute", "none") != "none" and cfg.get("offload", "none") != "none",
              "an 800 KiB budget on 8 cpu ranks makes the search choose a pipeline with "
              "recomputation and offload (%s)" % (chose.group(1) if chose else p.stderr[-300:]))
        if p.returncode == 0:
            one8 = os.path.join(tmp, "one8.cplan")
            subprocess.run([opt, g8, "--bind", "batch=2,seq=64", "--mode=train",
                            "--loss=cross-entropy", "--optimizer=adamw", "--emit=plan",
                            "-o", one8], check=True, capture_output=True)
            global STEPS
            saved, STEPS = STEPS, 2
            try:
                b8, _, _ = train(one8, tokens, tmp, "one8")
                l8, _, _ = train(searched, tokens, tmp, "searched8", 8)
                err = rel(l8, b8)
                check(err <= TOL, "the searched 8-rank plan matches 1 rank within %.1e" % err)
            except RuntimeError as e:
                check(False, "the searched 8-rank plan: %s" % str(e)[-1200:])
            finally:
                STEPS = saved

        # Inference pipelines: 4 micro-batches through 2 stages (and with
        # dp=2) give the logits of one rank, rows in input order.
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
            one_inf = os.path.join(tmp, "inf1.cplan")
            subprocess.run([opt, gpt, "--bind", "batch=8,seq=16", "--mode=infer",
                            "--emit=plan", "-o", one_inf], check=True, capture_output=True)
            want = infer(one_inf, 1, os.path.join(tmp, "inf1"))
            for par, batch, ranks in (("pp=2", 2, 2), ("dp=2,pp=2", 2, 4)):
                plan = os.path.join(tmp, "inf-%s.cplan" % par.replace(",", "_"))
                r = subprocess.run([opt, gpt, "--bind", "batch=%d,seq=16" % batch,
                                    "--mode=infer", "--parallel=" + par,
                                    "--micro-batches=4", "--emit=plan", "-o", plan,
                                    "--cluster=cpu:gpus_per_node=%d" % ranks],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    raise RuntimeError(r.stderr)
                got = infer(plan, ranks, os.path.join(tmp, "inf-" + par))
                err = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
                check(err <= 1e-5, "inference %s, 4 micro-batches: logits %s equal 1 "
                      "rank's (max abs difference %.1e)" % (par, got.shape, err))
        except (RuntimeError, subprocess.CalledProcessError) as e:
            check(False, "inference pipelines: %s" % str(e)[-1200:])

        # Ring attention without causality, over a padding mask (a BERT
        # encoder: each rank its block of the sequence, the mask's key
        # columns whole): the same hidden states as 1 rank.
        try:
            bert = os.path.join(tmp, "bert.onnx")
            subprocess.run([sys.executable, os.path.join(ROOT, "scripts/models/bert.py"),
                            "--layers", "2", "--hidden", "32", "--heads", "2", "--vocab",
                            "64", "--seq", "16", "--weights", "real", "-o", bert],
                           check=True, stdout=subprocess.DEVNULL)
            rng = np.random.default_rng(3)
            bids, bmask = os.path.join(tmp, "bert-ids.npy"), os.path.join(tmp, "bert-mask.npy")
            np.save(bids, rng.integers(0, 64, (2, 16)).astype(np.int64))
            m = np.ones((2, 16), np.int64)
            m[0, 11:] = 0
            m[1, 5:] = 0
            np.save(bmask, m)
            hidden = []
            for par, ranks in (("", 1), ("sp=2,sp-mode=ring", 2), ("sp=4,sp-mode=ring", 4)):
                plan = os.path.join(tmp, "bert%d.cplan" % ranks)
                subprocess.run([opt, bert, "--bind", "batch=2,seq=16", "--mode=infer",
                                "--emit=plan", "-o", plan] +
                               (["--parallel=" + par] if par else []),
                               check=True, capture_output=True)
                out = os.path.join(tmp, "bert-out%d" % ranks)
                r = subprocess.run([run, plan, "--input", "input_ids=" + bids, "--input",
                                    "attention_mask=" + bmask, "--output-dir", out,
                                    "--threads=1"] +
                                   (["--ranks", str(ranks)] if ranks > 1 else []),
                                   capture_output=True, text=True, timeout=300)
                if r.returncode != 0:
                    raise RuntimeError(r.stdout + r.stderr)
                hidden.append(np.load(os.path.join(out, "last_hidden_state.npy")))
            for h, ranks in zip(hidden[1:], (2, 4)):
                err = float(np.max(np.abs(h - hidden[0])))
                check(err <= 1e-5, "bert ring attention over a padding mask, sp=%d: hidden "
                      "states equal 1 rank's (max abs difference %.1e)" % (ranks, err))
        except (RuntimeError, subprocess.CalledProcessError) as e:
            check(False, "bert ring attention: %s" % str(e)[-1200:])

        # Refusals.
        def refused(what, batch, parallel, needle, micro=0, mode="train", extra=()):
            cmd = [opt, gpt, "--bind", "batch=%d,seq=16" % batch, "--mode=" + mode,
                   "--parallel=" + parallel, "--emit=plan", "-o",
                   os.path.join(tmp, "x.cplan")] + list(extra)
            if mode == "train":
                cmd += ["--loss=cross-entropy", "--optimizer=adamw"]
            if micro:
                cmd.append("--micro-batches=%d" % micro)
            p = subprocess.run(cmd, capture_output=True, text=True)
            check(p.returncode == 1 and needle in p.stderr,
                  "%s is refused with a message (%s)" % (what, p.stderr.strip()[-200:]))

        refused("pp > layers", 2, "pp=8", "at least one layer", micro=8)
        refused("interleaved with micro-batches not a multiple of pp", 2,
                "pp=2,schedule=interleaved:2", "multiple of the stages", micro=3)
        refused("ring attention in bf16", 8, "sp=2,sp-mode=ring", "runs in fp32",
                extra=["--precision=bf16"])
        refused("ring attention with the decomposed backward", 8, "sp=2,sp-mode=ring",
                "fused one", extra=["--attention-backward=decomposed"])
        refused("offload=params without ZeRO-3", 8, "dp=2,offload=params", "add zero=3")
        refused("interleaved inference pipelines", 2, "pp=2,schedule=interleaved:2",
                "without schedule=interleaved", mode="infer")
        refused("stage-layers that do not add up", 2, "pp=2,stage-layers=1:2", "add up to 4",
                micro=2)
        # A pipeline plan on the wrong number of ranks.
        p = subprocess.run([run, os.path.join(tmp, "pp2-1f1b.cplan"), "--train", "--steps=1",
                            "--data=" + tokens], capture_output=True, text=True, timeout=120)
        check(p.returncode == 1 and "2 ranks" in p.stdout + p.stderr,
              "a pp=2 plan on 1 rank is refused (%s)" % (p.stdout + p.stderr).strip()[-200:])

    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
