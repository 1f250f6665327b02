#!/usr/bin/env bash
# The main job: generate a small GPT and a token stream, compile a training
# step, train it on the CPU runtime for a few hundred steps (the loss falls),
# export the trained weights to ONNX, train again on 2 ranks with searched
# data-parallel and pipeline plans (matching 1 rank, with a trace of each
# rank's pipeline), run the trained model (checked against onnxruntime),
# then let the search plan training a 175B GPT on a cluster.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/build.sh >/dev/null
py="$root/.venv/bin/python"
opt="$root/build/bin/colossal-opt"
run="$root/build/bin/colossal-run"
work="${COLOSSAL_DEMO_DIR:-$root/build/demo}"
mkdir -p "$work"

echo "== 1. Generate a small GPT (2 layers, hidden 128, byte vocabulary) and a token stream"
"$py" scripts/models/gpt2.py --layers 2 --hidden 128 --heads 4 --vocab 256 \
  --seq 64 -o "$work/gpt.onnx"
"$py" scripts/models/tokens.py --tokens 200000 -o "$work/tokens.bin"

echo
echo "== 2. Compile one training step: cross-entropy, AdamW, warmup + cosine lr, clipping"
"$opt" "$work/gpt.onnx" --bind batch=8,seq=64 --mode=train --loss=cross-entropy \
  --optimizer=adamw --lr=3e-3 --lr-schedule=warmup-cosine:20,300,0.1 \
  --clip-grad-norm=1 --emit=plan -o "$work/train.cplan"

echo
echo "== 3. Train it for 300 steps on the CPU runtime (checkpoints, metrics, ONNX export)"
rm -rf "$work/checkpoints"
"$run" "$work/train.cplan" --train --steps 300 --data "$work/tokens.bin" \
  --log-every 25 --metrics "$work/metrics.jsonl" \
  --checkpoint-dir "$work/checkpoints" --checkpoint-every 100 \
  --export-onnx "$work/trained.onnx"
"$py" - "$work" <<'PY'
import json, sys
losses = [json.loads(l)["loss"] for l in open(f"{sys.argv[1]}/metrics.jsonl")]
print(f"loss fell from {losses[0]:.3f} to {losses[-1]:.3f}")
assert losses[-1] < 0.5 * losses[0], "the loss did not fall"
PY

echo
echo "== 3b. The same training on 2 ranks, with a plan the search chose, against the 1-rank run"
"$opt" "$work/gpt.onnx" --bind seq=64 --batch=8 --cluster=cpu:gpus_per_node=2 \
  --auto-parallel --mode=train --loss=cross-entropy --optimizer=adamw --lr=3e-3 \
  --lr-schedule=warmup-cosine:20,300,0.1 --clip-grad-norm=1 \
  --emit=plan -o "$work/train-2ranks.cplan"
"$run" "$work/train-2ranks.cplan" --ranks 2 --threads 1 --train --steps 50 \
  --data "$work/tokens.bin" --log-every 25 --metrics "$work/metrics-2ranks.jsonl"
"$py" - "$work" <<'PY'
import json, sys
steps = {json.loads(l)["step"]: json.loads(l)["loss"] for l in open(f"{sys.argv[1]}/metrics.jsonl")}
pairs = [(json.loads(l)["step"], json.loads(l)["loss"]) for l in open(f"{sys.argv[1]}/metrics-2ranks.jsonl")]
err = max(abs(l - steps[s]) / abs(steps[s]) for s, l in pairs if s in steps)
for s, l in pairs:
    if s in steps:
        print(f"step {s:3d}: 2 ranks {l:.6f}  1 rank {steps[s]:.6f}")
print(f"2 ranks match 1 rank: max relative difference {err:.1e} over {len(pairs)} logged steps")
assert err < 1e-5, "the 2-rank run does not match the 1-rank run"
PY

echo
echo "== 3c. A pipeline: the search's best plan with two stages (pp=2), on 2 ranks, against the 1-rank run"
"$opt" "$work/gpt.onnx" --bind seq=64 --batch=8 --cluster=cpu:gpus_per_node=2 \
  --auto-parallel --constrain=pp=2 --mode=train --loss=cross-entropy --optimizer=adamw \
  --lr=3e-3 --lr-schedule=warmup-cosine:20,300,0.1 --clip-grad-norm=1 \
  --emit=plan -o "$work/train-pp2.cplan"
"$run" "$work/train-pp2.cplan" --ranks 2 --threads 1 --train --steps 50 \
  --data "$work/tokens.bin" --log-every 25 --metrics "$work/metrics-pp2.jsonl" \
  --profile "$work/trace-pp2.json"
"$py" - "$work" <<'PY'
import json, sys
steps = {json.loads(l)["step"]: json.loads(l)["loss"] for l in open(f"{sys.argv[1]}/metrics.jsonl")}
pairs = [(json.loads(l)["step"], json.loads(l)["loss"]) for l in open(f"{sys.argv[1]}/metrics-pp2.jsonl")]
err = max(abs(l - steps[s]) / abs(steps[s]) for s, l in pairs if s in steps)
print(f"the pipeline matches 1 rank: max relative difference {err:.1e} over {len(pairs)} logged steps")
assert err < 1e-5, "the pipeline run does not match the 1-rank run"
PY
echo
echo "== 4. Use the trained model: compile it for inference, check against onnxruntime, generate"
"$opt" "$work/trained.onnx" --bind batch=1,seq=64 --mode=infer --emit=plan -o "$work/trained.cplan"
"$py" - "$work" <<'PY'
import sys, numpy as np, onnxruntime as ort
work = sys.argv[1]
prompt = b"a small bird " * 5
ids = np.frombuffer(prompt[:64], dtype=np.uint8).astype(np.int64)[None]
np.save(f"{work}/ids.npy", ids)
PY
"$run" "$work/trained.cplan" --input "input_ids=$work/ids.npy" --output-dir "$work/out" >/dev/null
"$py" - "$work" <<'PY'
import sys, numpy as np, onnxruntime as ort
work = sys.argv[1]
sess = ort.InferenceSession(f"{work}/trained.onnx", providers=["CPUExecutionProvider"])
ids = np.load(f"{work}/ids.npy")
want = sess.run(None, {"input_ids": ids})[0]
got = np.load(f"{work}/out/logits.npy")
print(f"colossal-run logits match onnxruntime: {np.allclose(got, want, rtol=1e-4, atol=1e-4)} "
      f"(max abs difference {np.abs(got - want).max():.2e})")
text = "the teacher "
for _ in range(48):
    x = np.frombuffer(text[-64:].encode(), dtype=np.uint8).astype(np.int64)[None]
    text += chr(int(sess.run(None, {"input_ids": x})[0][0, -1].argmax()))
print(f"greedy sample from the trained model: {text!r}")
PY

echo
echo "== 5. Plan training a 175B GPT (96 layers, hidden 12288) on 64 DGX A100 nodes"
"$py" scripts/models/gpt2.py --layers 96 --hidden 12288 --heads 96 --vocab 51200 \
  --seq 2048 --tied --weights none -o "$work/gpt175b.onnx" >/dev/null
"$opt" "$work/gpt175b.onnx" --bind seq=2048 --mode=train --auto-parallel \
  --cluster=dgx-a100-80g:nodes=64 --batch=1536 --report-text \
  --report="$work/gpt175b-plan.json" -o "$work/gpt175b-plan.mlir"
echo "(report: $work/gpt175b-plan.json; the annotated IR: $work/gpt175b-plan.mlir)"
