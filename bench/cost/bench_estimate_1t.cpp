//===- bench_estimate_1t.cpp - Time one estimate of a 1T-parameter GPT ----===//
//
// How long one call of estimate() takes for Megatron's 1T GPT (128 layers,
// h = 25600, 3072 A100s, tp 8, pp 64, interleaved) -- the unit of work of a
// plan search. Reports the mean over many calls; asserts nothing.
//
//===----------------------------------------------------------------------===//

#include "compiler/cost/ClusterSpec.h"
#include "compiler/cost/Estimator.h"
#include "compiler/cost/Workload.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>

using namespace colossal::cost;

int main() {
  GptDims d;
  d.layers = 128;
  d.hidden = 25600;
  d.heads = 160;
  d.seq = 2048;
  d.vocab = 51200;
  d.global_batch = 3072;
  Workload w = makeGptWorkload(d);
  auto cluster = parseClusterArg("dgx-a100-80g:nodes=384");
  if (!cluster) {
    llvm::errs() << "error: " << llvm::toString(cluster.takeError()) << "\n";
    return 1;
  }
  auto cfg = parseParallelConfig("dp=6,tp=8,pp=64,micro-batch=1,"
                                 "schedule=interleaved:2,recompute=full");
  if (!cfg) {
    llvm::errs() << "error: " << llvm::toString(cfg.takeError()) << "\n";
    return 1;
  }

  using Clock = std::chrono::steady_clock;
  auto once = [&]() {
    auto e = estimate(w, *cfg, *cluster);
    if (!e) {
      llvm::errs() << "error: " << llvm::toString(e.takeError()) << "\n";
      return 0.0;
    }
    return e->step_time_s;
  };
  auto t0 = Clock::now();
  double first = once();
  double firstUs =
      std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  if (first == 0)
    return 1;

  const int iters = 20000;
  double sink = 0;
  t0 = Clock::now();
  for (int i = 0; i < iters; ++i)
    sink += once();
  double us =
      std::chrono::duration<double, std::micro>(Clock::now() - t0).count() /
      iters;

  auto e = estimate(w, *cfg, *cluster);
  llvm::outs() << llvm::format(
      "1T GPT (%.0fB params) on %lld GPUs, %s\n", w.parameterCount() / 1e9,
      (long long)cluster->numDevices(), e->config.c_str());
  llvm::outs() << llvm::format("predicted step %.2f s, %.1f hardware TFLOP/s "
                               "per GPU, peak memory %.1f GiB\n",
                               e->step_time_s, e->hardware_tflops_per_gpu,
                               e->peak_memory_bytes / double(1ull << 30));
  llvm::outs() << llvm::format("estimate(): first call %.1f us, mean of %d "
                               "calls %.2f us (checksum %.3f)\n",
                               firstUs, iters, us, sink / iters);
  return 0;
}
