//===- TensorParallel.h - 1D/2D/2.5D/3D tensor parallel costs ---*- C++ -*-===//
//
// Per-linear-layer costs of the tensor-parallel matmul algorithms (Megatron
// 1D, SUMMA 2D, Tesseract 2.5D, 3D), as tabulated in Colossal-AI's docs, and
// their communication time on a cluster.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_COMPILER_COST_TENSORPARALLEL_H
#define COLOSSAL_COMPILER_COST_TENSORPARALLEL_H

#include "compiler/cost/Collectives.h"
#include "compiler/cost/ParallelConfig.h"

namespace colossal {
namespace cost {

/// Relative costs of one linear layer, forward + backward, on P = tp ranks.
/// compute/params/activations are fractions of the unsplit layer's; bandwidth
/// is in units of tpBandwidthUnitBytes(), latency in message steps:
///   1D   (P):       1/P,       1/P,   1,         2(P-1)/P,         2(P-1)
///   2D   (P=q^2):   1/q^2,     1/q^2, 1/q^2,     6(q-1)/q,         6(q-1)
///   2.5D (P=dq^2):  1/(dq^2),  1/q^2, 1/(dq^2),  3(q-1)(d+1)/(dq), 6(q-1)
///   3D   (P=q^3):   1/q^3,     1/q^3, 1/q^3,     6(q-1)/q^3,       6(q-1)
struct TpLinearCost {
  double compute = 1;
  double params = 1;
  double activations = 1;
  double bandwidth = 0;
  double latency = 0;
};
TpLinearCost tpLinearCost(TpMode mode, int64_t tp, int64_t depth = 1);

/// Bytes the bandwidth coefficient multiplies, given the layer's input
/// activation X (bytes, unsplit). 1D all-reduces X itself; 2D/2.5D broadcast
/// q-1 blocks of X/q^2 per op (6 ops), i.e. (q-1)/q of X/q each; 3D
/// all-gathers q-1 blocks of X/q^3 per op, i.e. (q-1)/q^3 of X.
double tpBandwidthUnitBytes(TpMode mode, int64_t q, double activationBytes);

/// Seconds of communication for one linear layer (forward + backward) whose
/// input activation is `activationBytes`. TP is the innermost axis of the
/// device mesh (consecutive ranks); the volume is spread evenly over the
/// mode's mesh axes, each priced at its own ring bandwidth and latency.
double tpLinearCommTime(const ClusterSpec &c, TpMode mode, int64_t tp,
                        int64_t depth, double activationBytes);

/// Share of a linear layer's TP communication that happens in forward (and
/// so is repeated by recomputation) for 2D/2.5D/3D: 2 of the 6 ops.
constexpr double kTpForwardShare = 1.0 / 3.0;

} // namespace cost
} // namespace colossal

#endif // COLOSSAL_COMPILER_COST_TENSORPARALLEL_H
