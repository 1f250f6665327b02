//===- Memory.h - Bytes a training step keeps on one device -----*- C++ -*-===//
//
// Model state (parameters, gradients, optimizer state, divided by ZeRO) and
// saved activations per layer (Korthikanti et al. 2022, generalised to the
// shard classes of a Workload), the pieces of a device's peak memory.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_COMPILER_COST_MEMORY_H
#define COLOSSAL_COMPILER_COST_MEMORY_H

#include "compiler/cost/ParallelConfig.h"
#include "compiler/cost/Workload.h"

namespace colossal {
namespace cost {

/// Korthikanti et al. 2022, Table 2: activation bytes per transformer layer
/// (16-bit activations, 1-byte dropout masks). s: sequence, b: micro-batch,
/// h: hidden, a: heads, t: tensor-parallel size.
double korthikantiNoParallel(double s, double b, double h, double a);
double korthikantiTensorParallel(double s, double b, double h, double a,
                                 double t);
double korthikantiTensorSequenceParallel(double s, double b, double h, double a,
                                         double t);
double korthikantiFullRecompute(double s, double b, double h);

/// Divisors the parallel config applies to each activation shard class.
struct ActivationDivisors {
  double split = 1;         ///< Split and attention_core
  double split_with_sp = 1; ///< SplitWithSp and the checkpoint
  double context = 1;       ///< sequence (context) parallel degree
};
ActivationDivisors activationDivisors(const ParallelConfig &cfg);
/// Divisor for a per-sample quantity of shard class `s` (bytes moved).
double shardDivisor(const ParallelConfig &cfg, TpShard s);

/// Bytes one layer keeps for backward for one micro-batch on one device,
/// under cfg.recompute: none keeps everything, selective drops the attention
/// core (recomputed), full keeps only the layer input (checkpoint).
double storedActivationBytes(const ActivationBytes &a,
                             const ParallelConfig &cfg);
/// Bytes of the layer's full activations for one micro-batch: what the
/// backward of a recomputed layer materialises again (its working set).
double fullActivationBytes(const ActivationBytes &a, const ParallelConfig &cfg);

/// Model state on one device for `localParams` parameters (already divided
/// by TP and pipeline), mixed-precision Adam by default (2 + 2 + 12 bytes).
/// ZeRO-1 divides the optimizer state by the data-parallel group, ZeRO-2
/// also the gradients, ZeRO-3 also the parameters. Offloaded state lives in
/// host memory and is reported separately.
struct ModelStateBytes {
  double params = 0;
  double grads = 0;
  double optimizer = 0;
  double host = 0; ///< bytes moved to host memory by offload
};
ModelStateBytes modelStateBytes(double localParams, const Workload &w, int zero,
                                int64_t dpGroup, Offload offload);

} // namespace cost
} // namespace colossal

#endif // COLOSSAL_COMPILER_COST_MEMORY_H
