#!/usr/bin/env bash
# The CUDA backend's checks on a GPU (issue #12), in one script.
#
#   scripts/gpu_check.sh --prepare
#       Here, on a machine with the compiler (build/ from scripts/build.sh):
#       writes build-gpu-check/ with the plans the checks run (compiled by
#       this checkout's colossal-opt), the small GPT and its token stream,
#       and the Debian packages the runtime builds against (protobuf, ONNX,
#       Gloo, OpenBLAS, GoogleTest), which the GPU machine lacks and cannot
#       download. Carry build-gpu-check to the GPU machine.
#
#   scripts/gpu_check.sh OUT
#       On the GPU machine (no LLVM/MLIR): unpacks the packages under
#       /tmp/colossal-deps, builds the runtime with -DCOLOSSAL_BUILD_COMPILER=OFF
#       and the CUDA backend, then runs, each logged under OUT:
#         1. kernels     every CUDA kernel against the CPU kernel on random
#                        inputs (ColossalCudaTests --gpu; fp32 within 1e-5)
#         2. train-fp32  the small GPT trained 50 steps on the GPU and on the
#                        CPU: losses within 1e-4 relative, peak device memory
#                        (the backend's count and cudaMemGetInfo's) = arena
#         3. train-bf16  the same in bf16: the GPU run tracks the CPU run
#         4. bench       GPT-2 124M (seq 1024, bf16, AdamW) training tokens/s
#                        and MFU beside PyTorch eager and torch.compile, and
#                        inference latency (batch 1 and 8, prompt 128)
#       OUT/summary.txt holds one line per check; the exit status is 0 only
#       when every check passed. Within 8 minutes on an H100.
#
# With the device tool: run(command="bash scripts/gpu_check.sh $OUT",
# carry=["build-gpu-check"], timeout_s=600).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
prep="$root/build-gpu-check"

# The small GPT of the parity checks and GPT-2 124M of the benchmark.
small=(--layers 2 --hidden 128 --heads 4 --vocab 256 --seq 64)
gpt2=(--layers 12 --hidden 768 --heads 12 --vocab 50257 --seq 1024)
bench_batch=8
train_flags=(--mode=train --loss=cross-entropy --optimizer=adamw --lr=1e-3)

#===----------------------------------------------------------------------===#
# --prepare: here
#===----------------------------------------------------------------------===#
if [ "${1:-}" = "--prepare" ]; then
  set -e
  py="$root/.venv/bin/python"
  opt="$root/build/bin/colossal-opt"
  [ -x "$opt" ] || { echo "gpu_check: build the compiler first (bash scripts/build.sh)" >&2; exit 1; }
  rm -rf "$prep"
  mkdir -p "$prep/plans" "$prep/debs"
  echo "== the small GPT (real weights) and its tokens"
  "$py" scripts/models/gpt2.py "${small[@]}" -o "$prep/small.onnx"
  "$py" scripts/models/tokens.py --tokens 100000 -o "$prep/tokens.bin"
  for precision in fp32 bf16; do
    "$opt" "$prep/small.onnx" --bind batch=8,seq=64 "${train_flags[@]}" \
      --precision=$precision --emit=plan -o "$prep/plans/small-train-$precision.cplan"
  done
  echo "== GPT-2 124M: the graph only (the GPU machine writes its weights)"
  "$py" scripts/models/gpt2.py "${gpt2[@]}" --weights none -o "$prep/gpt2.onnx"
  "$opt" "$prep/gpt2.onnx" --bind batch=$bench_batch,seq=1024 "${train_flags[@]}" \
    --precision=bf16 --emit=plan -o "$prep/plans/gpt2-train-bf16.cplan"
  for b in 1 8; do
    "$opt" "$prep/gpt2.onnx" --bind batch=$b,seq=128 --mode=infer \
      --precision=bf16 --emit=plan -o "$prep/plans/gpt2-infer-b$b.cplan"
  done
  echo "== the runtime's build dependencies, as Debian packages"
  (cd "$prep/debs" && apt-get download -q \
    libprotobuf-dev libprotobuf32 protobuf-compiler libprotoc32 \
    libonnx-dev libonnx1 libonnxifi libgloo-dev libgloo0 libhiredis0.14 \
    libibverbs1 libnl-3-200 libnl-route-3-200 libopenblas0-pthread \
    libopenblas-pthread-dev libopenblas-dev libopenblas0 libgfortran5 \
    libgtest-dev 2>&1 | grep -v "^W: Download is performed unsandboxed" || true)
  ls "$prep/debs"/*.deb >/dev/null
  du -sh "$prep"
  echo "prepared $prep; carry it to the GPU machine and run: bash scripts/gpu_check.sh OUT"
  exit 0
fi

#===----------------------------------------------------------------------===#
# The checks: on the GPU machine
#===----------------------------------------------------------------------===#
out="${1:?usage: scripts/gpu_check.sh --prepare | scripts/gpu_check.sh OUT}"
mkdir -p "$out"
summary="$out/summary.txt"
: >"$summary"
status=0
note() { echo "$*" | tee -a "$summary"; }
fail() { note "FAIL $*"; status=1; }
[ -d "$prep/plans" ] || { note "FAIL build-gpu-check/ is missing: run scripts/gpu_check.sh --prepare here and carry it"; exit 1; }
start=$(date +%s)
elapsed() { echo $(($(date +%s) - start)); }

nvidia-smi -L >"$out/gpu.txt" 2>&1 || true
note "gpu: $(head -1 "$out/gpu.txt")"

echo "== dependencies"
deps=/tmp/colossal-deps
rm -rf "$deps" && mkdir -p "$deps"
for deb in "$prep"/debs/*.deb; do dpkg -x "$deb" "$deps"; done
multi="$deps/usr/lib/x86_64-linux-gnu"
# What update-alternatives would have linked.
ln -sf openblas-pthread/libopenblas.so.0 "$multi/libopenblas.so.0"
ln -sf openblas-pthread/libopenblas.so "$multi/libopenblas.so"
export PATH="$deps/usr/bin:$PATH"
export LD_LIBRARY_PATH="$multi:$multi/openblas-pthread:$deps/usr/lib:$deps/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

echo "== build (runtime only, CUDA on)"
build="$root/build-gpu"
cuda_root="${CUDA_HOME:-/usr/local/cuda}"
if ! cmake -G Ninja -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DCOLOSSAL_BUILD_COMPILER=OFF -DCOLOSSAL_ENABLE_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$cuda_root/bin/nvcc" -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DCMAKE_PREFIX_PATH="$deps/usr;$multi/cmake;$deps/usr/share/cmake" \
    -DCMAKE_LIBRARY_PATH="$multi/openblas-pthread;$multi;$deps/usr/lib" \
    -DCMAKE_INCLUDE_PATH="$deps/usr/include;$deps/usr/include/x86_64-linux-gnu/openblas-pthread" \
    -DCMAKE_CXX_FLAGS="-isystem $deps/usr/include -isystem $deps/usr/include/x86_64-linux-gnu/openblas-pthread" \
    -DProtobuf_PROTOC_EXECUTABLE="$deps/usr/bin/protoc" \
    >"$out/build.log" 2>&1 ||
  ! ninja -C "$build" colossal-run ColossalCudaTests >>"$out/build.log" 2>&1; then
  fail "build: see build.log"
  tail -30 "$out/build.log"
  exit 1
fi
note "build: ok ($(elapsed) s)"
run="$build/bin/colossal-run"

echo "== 1. kernels against the CPU"
"$build/bin/ColossalCudaTests" --gpu >"$out/kernels.log" 2>&1
case $? in
0) note "kernels: $(grep -E '^[0-9]+ cases' "$out/kernels.log" | head -1) (ok)" ;;
77) fail "kernels: skipped, $(head -1 "$out/kernels.log")" ;;
*) fail "kernels: $(grep -E '^[0-9]+ cases' "$out/kernels.log" | head -1); see kernels.log" ;;
esac

echo "== 2/3. the small GPT on the GPU against the CPU"
compare() { # metrics-gpu metrics-cpu tolerance label
  python3 - "$@" <<'PY'
import json, sys
gpu, cpu, tol, label = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
def losses(path):
    try:
        return {json.loads(l)["step"]: json.loads(l)["loss"] for l in open(path)}
    except OSError:
        return {}
g, c = losses(gpu), losses(cpu)
steps = sorted(set(g) & set(c))
if not steps:
    print(f"{label}: no steps to compare (cuda {len(g)}, cpu {len(c)} logged)")
    sys.exit(1)
err = max(abs(g[s] - c[s]) / abs(c[s]) for s in steps)
print(f"{label}: {len(steps)} steps, max relative loss difference {err:.2e} "
      f"(tolerance {tol:g}); step {steps[-1]}: cuda {g[steps[-1]]:.6f} cpu {c[steps[-1]]:.6f}")
sys.exit(0 if err <= tol else 1)
PY
}
for precision in fp32 bf16; do
  plan="$prep/plans/small-train-$precision.cplan"
  for backend in cuda cpu; do
    rm -f "$out/metrics-$precision-$backend.jsonl"
    "$run" "$plan" --backend=$backend --train --steps 50 --log-every 1 \
      --data "$prep/tokens.bin" --data-order sequential \
      --metrics "$out/metrics-$precision-$backend.jsonl" \
      >"$out/train-$precision-$backend.log" 2>&1 ||
      fail "train-$precision on $backend: see train-$precision-$backend.log"
  done
  tol=1e-4
  [ $precision = bf16 ] && tol=5e-2
  if line=$(compare "$out/metrics-$precision-cuda.jsonl" "$out/metrics-$precision-cpu.jsonl" $tol "train-$precision"); then
    note "$line"
  else
    fail "$line"
  fi
  grep -E "peak device bytes|as the device reports" "$out/train-$precision-cuda.log" | sed "s/^/  $precision: /" | tee -a "$summary"
done

echo "== 4. bench: GPT-2 124M"
if python3 -c "import onnx, numpy" 2>/dev/null; then
  python3 scripts/models/gpt2.py "${gpt2[@]}" --weights external -o "$prep/gpt2.onnx" >"$out/bench.log" 2>&1
  PYTHONUNBUFFERED=1 timeout $((470 - $(elapsed))) python3 bench/bench_gpu_gpt2.py \
    --run "$run" --plans "$prep/plans" --tokens "$prep/tokens.bin" \
    --batch $bench_batch "${gpt2[@]}" >>"$out/bench.log" 2>&1 ||
    fail "bench: see bench.log"
  grep -E "^(train|infer)" "$out/bench.log" | tee -a "$summary"
else
  fail "bench: python3 here has no onnx/numpy to write GPT-2's weights"
fi

note "done in $(elapsed) s; status $status"
exit $status
