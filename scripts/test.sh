#!/usr/bin/env bash
# Builds everything and runs the whole test suite:
#  1. the runtime alone (-DCOLOSSAL_BUILD_COMPILER=OFF, no LLVM/MLIR) and its
#     unit tests, in build-runtime/;
#  2. a short bounded fuzz run of the ONNX importer (build-fuzz/);
#  3. the full build and its ctest suite: lit/FileCheck tests of the
#     compiler, GoogleTest unit tests, model-generator checks, end-to-end
#     runs against onnxruntime, and the ONNX backend node tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
jobs="${COLOSSAL_JOBS:-2}"
bash scripts/build.sh

echo "== runtime-only build (no LLVM/MLIR)"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}" CCACHE_BASEDIR="$root"
if [ ! -f build-runtime/build.ninja ]; then
  cmake -G Ninja -S "$root" -B build-runtime -DCMAKE_BUILD_TYPE=Release \
    -DCOLOSSAL_BUILD_COMPILER=OFF >/dev/null
fi
ninja -C build-runtime -j "$jobs"
if ldd build-runtime/bin/colossal-run | grep -qi -E 'libLLVM|libMLIR'; then
  echo "colossal-run links LLVM/MLIR in the runtime-only build" >&2
  exit 1
fi
# The CUDA backend loads the driver, cuBLASLt and NCCL itself: colossal-run
# must start where none of them is installed.
if ldd build-runtime/bin/colossal-run | grep -qi -E 'libcuda|libcublas|libnccl|libcudnn'; then
  echo "colossal-run needs CUDA libraries at load time" >&2
  exit 1
fi
(cd build-runtime && ctest --output-on-failure -j "$jobs")

echo "== fuzzing the ONNX importer"
bash scripts/fuzz.sh --seconds "${COLOSSAL_FUZZ_SECONDS:-30}"

echo "== full test suite"
cd "${COLOSSAL_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j "$jobs"
