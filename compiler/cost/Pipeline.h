//===- Pipeline.h - Pipeline bubbles and in-flight work ---------*- C++ -*-===//
//
// What a pipeline schedule costs apart from the work itself: the idle bubble
// while the pipe fills and drains, and how many micro-batches' activations
// each stage holds at its peak.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_COMPILER_COST_PIPELINE_H
#define COLOSSAL_COMPILER_COST_PIPELINE_H

#include "compiler/cost/ParallelConfig.h"

#include "llvm/ADT/ArrayRef.h"

namespace colossal {
namespace cost {

/// Bubble time over ideal time: (p-1)/m for GPipe and 1F1B,
/// (1/v)(p-1)/m for interleaved 1F1B with v chunks per stage.
double bubbleFraction(Schedule s, int64_t p, int64_t m, int64_t v = 1);

/// Micro-batches whose activations stage `stage` (0-based) holds at its
/// peak, in units of the whole stage's activations for one micro-batch:
///   GPipe: m;  1F1B: min(p - stage, m);
///   interleaved (Narayanan et al. 2021; Megatron's warm-up count):
///     min(m v, 2(p - stage - 1) + (v - 1) p + 1) / v  chunk-micro-batches,
///   so the first stage holds p + (p-1)/v.
double inFlightMicroBatches(Schedule s, int64_t p, int64_t m, int64_t v,
                            int64_t stage);

/// Steady-state + bubble split of one step for stages whose per-micro-batch
/// time (forward + backward, one stage) is `stageTimes`: the slowest stage
/// sets the pace, m * t_max; filling and draining the pipe adds
/// (sum(t) - t_max) / v, which is (p-1) t / v for balanced stages.
struct PipelineTime {
  double steady = 0;
  double bubble = 0;
};
PipelineTime pipelineTime(llvm::ArrayRef<double> stageTimes, int64_t m,
                          int64_t v);

} // namespace cost
} // namespace colossal

#endif // COLOSSAL_COMPILER_COST_PIPELINE_H
