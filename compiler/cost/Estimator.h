//===- Estimator.h - Step time and peak memory of a plan --------*- C++ -*-===//
//
// Whole-plan estimate for training: one optimizer step's time (compute,
// recomputation, exposed communication, pipeline bubble, offload) and the
// peak memory per device, for a Workload under a ParallelConfig on a
// ClusterSpec. Cheap enough (microseconds) to sit inside a search loop.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_COMPILER_COST_ESTIMATOR_H
#define COLOSSAL_COMPILER_COST_ESTIMATOR_H

#include "compiler/cost/ClusterSpec.h"
#include "compiler/cost/Collectives.h"
#include "compiler/cost/ParallelConfig.h"
#include "compiler/cost/Workload.h"

#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <string>

namespace colossal {
namespace cost {

/// Knobs of the runtime being modelled, not of the plan.
struct EstimateOptions {
  /// Gradient bucket size of the data-parallel reduction, bytes. Buckets
  /// are reduced while backward runs; the last one cannot be hidden.
  double dp_bucket_bytes = 40e6;
  /// Overlap data-parallel gradient reduction with the last micro-batch's
  /// backward. Off: the whole reduction follows backward.
  bool overlap_dp_comm = true;
  /// Megatron's scatter/gather optimization of pipeline sends under 1D TP:
  /// each TP rank sends 1/tp of the activation, then all-gathers in the node.
  bool pp_scatter_gather = true;
  CollectiveAlgo collective_algo = CollectiveAlgo::Auto;
};

/// Seconds of one step, by cause. They add up to Estimate::step_time_s.
/// Per-micro-batch parts (compute .. sp_comm) are those of the slowest
/// pipeline stage times the number of micro-batches.
struct TimeBreakdown {
  double compute = 0;         ///< forward + backward kernels
  double recompute = 0;       ///< forward kernels re-run for backward
  double tp_comm = 0;         ///< tensor-parallel collectives (critical path)
  double sp_comm = 0;         ///< context-parallel exchange not hidden
  double dp_comm_exposed = 0; ///< gradient / ZeRO traffic not hidden
  double pp_bubble = 0;       ///< pipeline fill and drain
  double pp_p2p = 0;          ///< activation sends between stages
  double offload = 0;         ///< host<->device transfers + CPU step, exposed
  double optimizer = 0;       ///< optimizer step on the device
};

/// Bytes on the device with the highest peak (the `peak_stage`).
struct MemoryBreakdown {
  double params = 0;
  double grads = 0;
  double optimizer = 0;
  double activations = 0; ///< in-flight micro-batches + recompute working set
  double comm_buffers = 0;
  double total() const {
    return params + grads + optimizer + activations + comm_buffers;
  }
};

struct Estimate {
  std::string config; ///< toString(ParallelConfig)
  double step_time_s = 0;
  double tflops_per_gpu = 0;          ///< model FLOPs (3x forward) per second
  double hardware_tflops_per_gpu = 0; ///< including recomputation
  double mfu = 0;                     ///< model FLOPs / peak of the dtype
  double peak_memory_bytes = 0;       ///< max over pipeline stages
  double usable_memory_bytes = 0;     ///< device memory minus reserved
  bool fits_in_memory = false;
  double host_memory_bytes_per_node = 0; ///< offloaded state
  /// The node's host memory (the cluster spec's host.memory_bytes), and
  /// whether the offloaded state fits in it (true when the spec gives no
  /// host memory and nothing is offloaded).
  double usable_host_memory_bytes_per_node = 0;
  bool fits_in_host_memory = true;
  /// Offload traffic of the busiest stage's device per step: bytes over
  /// PCIe, how long the copies take at the bandwidth the device gets when
  /// every device copies at once (the least of its link, its share of its
  /// PCIe switch's uplink and of its socket's memory bandwidth), and the
  /// compute they hide under. Explains an offload plan's offload time.
  double offload_bytes_per_device = 0;
  double offload_copy_s = 0;
  double offload_compute_s = 0;
  double offload_bandwidth_per_device = 0;
  double model_flops = 0; ///< per step, all devices
  double hardware_flops = 0;
  int64_t micro_batches = 0; ///< per pipeline, per step
  int64_t critical_stage = 0;
  std::vector<double> stage_times_s; ///< per micro-batch, per stage
  int64_t peak_memory_stage = 0;
  TimeBreakdown time;
  MemoryBreakdown memory;

  llvm::json::Value toJSON() const;
};

/// Estimates one training step. Fails (with the config error) when `cfg`
/// does not fit `w` on `c` (see validateParallelConfig); a plan that is valid
/// but does not fit in memory succeeds with fits_in_memory = false (or,
/// for host memory, fits_in_host_memory = false).
llvm::Expected<Estimate> estimate(const Workload &w, const ParallelConfig &cfg,
                                  const ClusterSpec &c,
                                  const EstimateOptions &opts = {});

} // namespace cost
} // namespace colossal

#endif // COLOSSAL_COMPILER_COST_ESTIMATOR_H
