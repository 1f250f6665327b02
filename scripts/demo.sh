#!/usr/bin/env bash
# The main job: generate a GPT-2-style model, import it, compile it for
# inference and run it on the CPU runtime (checking the result against
# onnxruntime), then let the cost model plan training a 175B GPT on a cluster.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/build.sh >/dev/null
py="$root/.venv/bin/python"
opt="$root/build/bin/colossal-opt"
run="$root/build/bin/colossal-run"
work="${COLOSSAL_DEMO_DIR:-$root/build/demo}"
mkdir -p "$work"

echo "== 1. Generate a GPT-2-style decoder (4 layers, hidden 256, 8 heads) as ONNX"
"$py" scripts/models/gpt2.py --layers 4 --hidden 256 --heads 8 --vocab 1024 \
  --seq 128 -o "$work/gpt.onnx"

echo
echo "== 2. Import it for batch 8 x sequence 128, fuse attention, summarize"
"$opt" "$work/gpt.onnx" --bind batch=8,seq=128 \
  --colossal-fuse-attention --canonicalize --colossal-graph-summary \
  -o "$work/gpt.mlir"

echo
echo "== 3. Compile it to a plan and run it on the CPU runtime"
"$opt" "$work/gpt.onnx" --bind batch=8,seq=128 --mode=infer --emit=plan -o "$work/gpt.cplan"
"$py" -c "import numpy as np; np.save('$work/ids.npy', np.random.default_rng(0).integers(0, 1024, (8, 128)))"
"$run" "$work/gpt.cplan" --input "input_ids=$work/ids.npy" --output-dir "$work/out"
"$py" - "$work" <<'PY'
import sys, numpy as np, onnxruntime as ort
work = sys.argv[1]
ids = np.load(f"{work}/ids.npy")
want = ort.InferenceSession(f"{work}/gpt.onnx", providers=["CPUExecutionProvider"]).run(None, {"input_ids": ids})[0]
got = np.load(f"{work}/out/logits.npy")
print(f"logits match onnxruntime: {np.allclose(got, want, rtol=1e-4, atol=1e-5)} "
      f"(max abs difference {np.abs(got - want).max():.2e})")
PY
"$run" "$work/gpt.cplan" --input "input_ids=$work/ids.npy" --bench 10 | grep -E "p50|throughput" || true

echo
echo "== 4. Plan training a 175B GPT (96 layers, hidden 12288) on 64 DGX A100 nodes"
"$py" scripts/models/gpt2.py --layers 96 --hidden 12288 --heads 96 --vocab 51200 \
  --seq 2048 --tied --weights none -o "$work/gpt175b.onnx" >/dev/null
"$opt" "$work/gpt175b.onnx" --bind seq=2048 --mode=train --auto-parallel \
  --cluster=dgx-a100-80g:nodes=64 --batch=1536 --report-text \
  --report="$work/gpt175b-plan.json" -o "$work/gpt175b-plan.mlir"
echo "(report: $work/gpt175b-plan.json; the annotated IR: $work/gpt175b-plan.mlir)"
