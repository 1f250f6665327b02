//===- Compute.h - Roofline times of kernels on one device ------*- C++ -*-===//
//
// Time of one kernel on one device: GEMMs by roofline with an efficiency that
// falls for small or thin shapes, memory-bound kernels by bytes over achieved
// bandwidth, and attention as its two batched GEMMs plus the score traffic.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_COMPILER_COST_COMPUTE_H
#define COLOSSAL_COMPILER_COST_COMPUTE_H

#include "compiler/cost/ClusterSpec.h"

namespace colossal {
namespace cost {

/// Fraction of peak reached by an (m x k) * (k x n) GEMM:
///   gemm_peak_fraction * d / (d + gemm_half_saturation_dim),  d = min(m,n,k).
/// Thin shapes lose to tile quantization and short K loops; the roofline
/// bound in gemmTime() takes care of low arithmetic intensity separately.
double gemmEfficiency(const ClusterSpec &c, double m, double n, double k);

/// FLOPs of `batch` GEMMs of shape (m x k) * (k x n).
inline double gemmFlops(double m, double n, double k, double batch = 1) {
  return 2.0 * m * n * k * batch;
}

/// Seconds for `batch` independent (m x k) * (k x n) GEMMs in `t`:
///   max(FLOPs / (peak * eff), bytes(A + B + C) / memory_bandwidth)
/// plus one kernel launch.
double gemmTime(const ClusterSpec &c, double m, double n, double k,
                double batch, DType t);

/// Seconds for a memory-bound kernel moving `bytes` (reads + writes).
double memoryBoundTime(const ClusterSpec &c, double bytes);

/// Attention core without parallelism, for `batch` sequences: scores
/// Q K^T (s_q x d)(d x s_kv) per head, softmax (+ dropout) over the scores,
/// and P V. Unfused (`fused == false`) it writes and reads the s_q x s_kv
/// score matrix through memory; fused (flash) only the GEMM FLOPs remain.
struct AttentionShape {
  double batch = 1; ///< sequences
  double heads = 1; ///< heads on this device
  double s_q = 1;   ///< query positions on this device
  double s_kv = 1;  ///< key/value positions attended
  double head_dim = 1;
  bool fused = false;
  bool dropout = true; ///< attention-probability dropout (unfused only)
  /// Causal: a fused kernel computes only the blocks on and below the
  /// diagonal (FlashAttention-2), the fraction (s_q + 1) / (2 s_q) of the
  /// score matrix when s_q == s_kv. An unfused one computes all of it.
  bool causal = false;
  double computedFraction() const;
};
double attentionFlops(const AttentionShape &a);
/// Bytes of score-matrix traffic (softmax, dropout) forward / backward.
double attentionScoreBytesForward(const AttentionShape &a, DType t);
double attentionScoreBytesBackward(const AttentionShape &a, DType t);
double attentionForwardTime(const ClusterSpec &c, const AttentionShape &a,
                            DType t);
/// Backward: four GEMMs (dQ, dK, dV, dP) plus score traffic.
double attentionBackwardTime(const ClusterSpec &c, const AttentionShape &a,
                             DType t);

} // namespace cost
} // namespace colossal

#endif // COLOSSAL_COMPILER_COST_COMPUTE_H
