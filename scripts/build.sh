#!/usr/bin/env bash
# Configures (once) and builds Colossal into build/ with Ninja and ccache.
# Usage: scripts/build.sh [extra cmake -D options]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh

build="${COLOSSAL_BUILD_DIR:-$root/build}"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
# Paths relative to the checkout, so that another clone hits the cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}"
if [ ! -f "$build/build.ninja" ] || [ $# -gt 0 ]; then
  cmake -G Ninja -S "$root" -B "$build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-19/build/utils/lit/lit.py \
    -DCOLOSSAL_PYTHON="$root/.venv/bin/python" "$@"
fi
# Compiling against MLIR takes ~0.5 GB per job; two jobs fit any machine
# this project targets.
ninja -C "$build" -j "${COLOSSAL_JOBS:-2}"
