#!/usr/bin/env bash
# The main job, for now: generate a GPT-2-style model, import it with
# colossal-opt, fuse its attention, and print a summary of the graph.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/build.sh >/dev/null
py="$root/.venv/bin/python"
opt="$root/build/bin/colossal-opt"
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
echo "The imported IR is in $work/gpt.mlir; the first lines:"
head -n 12 "$work/gpt.mlir" | cut -c1-160
