#!/usr/bin/env bash
# Builds the ONNX importer's libFuzzer target with clang (coverage
# instrumentation) in build-fuzz/, seeds a corpus with real models, and
# fuzzes for a bounded time. Fails on any crash, abort or hang.
# AddressSanitizer is not used: LLVM's headers poison memory that Debian's
# uninstrumented MLIR libraries then touch, which ASan reports falsely.
# Usage: scripts/fuzz.sh [--seconds N]   (default 60)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds=60
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    *) echo "fuzz.sh: unknown argument '$1' (use --seconds N)" >&2; exit 2 ;;
  esac
done
bash scripts/setup.sh
build="$root/build-fuzz"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
# Paths relative to the checkout, so that another clone hits the cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}"
if [ ! -f "$build/build.ninja" ]; then
  # Only our code is instrumented; MLIR and protobuf come prebuilt.
  cmake -G Ninja -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 \
    -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link" \
    -DCOLOSSAL_BUILD_FUZZERS=ON -DCOLOSSAL_BUILD_TESTS=OFF -DCOLOSSAL_BUILD_RUNTIME=OFF \
    -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-19/build/utils/lit/lit.py \
    -DCOLOSSAL_PYTHON="$root/.venv/bin/python" >/dev/null
fi
ninja -C "$build" -j "${COLOSSAL_JOBS:-2}" colossal-fuzz-onnx

corpus="$build/corpus"
if [ ! -d "$corpus" ]; then
  mkdir -p "$corpus"
  py="$root/.venv/bin/python"
  "$py" scripts/models/mlp.py --layers 2 --hidden 8 --in 4 --out 2 -o "$corpus/mlp.onnx" >/dev/null
  "$py" scripts/models/gpt2.py --layers 1 --hidden 16 --heads 2 --vocab 32 --seq 8 -o "$corpus/gpt.onnx" >/dev/null
  "$py" scripts/models/resnet.py --blocks 1 --width 4 --image 16 --classes 3 -o "$corpus/resnet.onnx" >/dev/null
  for t in test/frontends/onnx/*.onnxtext test/frontends/onnx/Inputs/*.onnxtext; do
    "$py" scripts/onnxtext.py --no-check "$t" -o "$corpus/$(basename "$t" .onnxtext).onnx" || true
  done
  cp test/models/torch/encoder_opset17.onnx test/models/torch/gpt_opset13.onnx "$corpus/"
fi
echo "fuzzing the ONNX importer for ${seconds}s (corpus: $(ls "$corpus" | wc -l) inputs)"
"$build/bin/colossal-fuzz-onnx" "$corpus" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=3072 -max_len=262144 \
  -print_final_stats=1 -artifact_prefix="$build/" 2>&1 | tail -n 12
echo "fuzz: no crash in ${seconds}s"
