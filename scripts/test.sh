#!/usr/bin/env bash
# Builds everything and runs the whole test suite: lit/FileCheck tests of the
# compiler, GoogleTest unit tests, the model-generator checks, and a short
# bounded fuzz run of the ONNX importer.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/build.sh
bash scripts/fuzz.sh --seconds "${COLOSSAL_FUZZ_SECONDS:-30}"
cd "${COLOSSAL_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j "${COLOSSAL_JOBS:-2}"
