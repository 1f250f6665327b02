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

#include <vector>

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

/// One micro-batch's forward or backward of one model chunk (chunk
/// `k * p + s` is stage s's k-th), in a stage's order.
struct ScheduleEntry {
  bool backward = false;
  int64_t chunk = 0;
  int64_t micro = 0;
};

/// The order in which stage `stage` of `p` runs its micro-batches' phases
/// (what colossal-pipeline emits and the estimator simulates): GPipe every
/// forward then every backward; 1F1B p - stage - 1 forwards, then one
/// forward and one backward in turn, then the remaining backwards;
/// interleaved (v > 1) Megatron-LM's order, groups of p micro-batches
/// through chunk 0, then chunk 1, ..., the backward in reverse, with
/// 2(p - stage - 1) + (v - 1)p forwards of warm-up. Inference: forwards.
std::vector<ScheduleEntry> scheduleOrder(Schedule s, int64_t p, int64_t v,
                                         int64_t m, int64_t stage,
                                         bool training = true);

/// A step of a pipeline played out: stage i's forward of one micro-batch
/// (all its chunks) takes `fwd[i]`, its backward `bwd[i]`; an activation or
/// gradient reaches the neighbouring stage `hop` seconds after it is made
/// (a send does not hold its stage). Each stage runs scheduleOrder's
/// entries in turn, each as soon as its input has arrived.
struct ScheduleRun {
  double makespan = 0;      ///< first forward to last backward
  std::vector<double> busy; ///< per stage, its own work
};
ScheduleRun simulateSchedule(Schedule s, llvm::ArrayRef<double> fwd,
                             llvm::ArrayRef<double> bwd, int64_t m, int64_t v,
                             double hop);

/// simulateSchedule's makespan, for the search's many candidates: past 2p
/// micro-batches the schedule is periodic (warm-up and cool-down are fixed,
/// the steady state repeats with a period that divides 2p), so it plays out
/// m2 in [4p, 6p) and m2 - 2p micro-batches and adds whole 2p blocks.
double scheduleMakespan(Schedule s, llvm::ArrayRef<double> fwd,
                        llvm::ArrayRef<double> bwd, int64_t m, int64_t v,
                        double hop);

} // namespace cost
} // namespace colossal

#endif // COLOSSAL_COMPILER_COST_PIPELINE_H
