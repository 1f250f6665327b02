//===- Compute.cpp - Roofline times of kernels on one device --------------===//

#include "compiler/cost/Compute.h"

#include <algorithm>

using namespace colossal::cost;

double colossal::cost::gemmEfficiency(const ClusterSpec &c, double m, double n,
                                      double k) {
  const EfficiencySpec &e = c.efficiency;
  double d = std::min({m, n, k});
  if (d <= 0)
    return e.gemm_peak_fraction;
  return e.gemm_peak_fraction * d / (d + e.gemm_half_saturation_dim);
}

double colossal::cost::gemmTime(const ClusterSpec &c, double m, double n,
                                double k, double batch, DType t) {
  if (m <= 0 || n <= 0 || k <= 0 || batch <= 0)
    return 0;
  double flops = gemmFlops(m, n, k, batch);
  double computeS =
      flops / (c.device.peakFlops(t) * gemmEfficiency(c, m, n, k));
  double bytes = batch * (m * k + k * n + m * n) * dtypeBytes(t);
  double memoryS = bytes / (c.device.memory_bandwidth *
                            c.efficiency.memory_bandwidth_fraction);
  return std::max(computeS, memoryS) + c.efficiency.kernel_launch_overhead_s;
}

double colossal::cost::memoryBoundTime(const ClusterSpec &c, double bytes) {
  if (bytes <= 0)
    return 0;
  return bytes / (c.device.memory_bandwidth *
                  c.efficiency.memory_bandwidth_fraction) +
         c.efficiency.kernel_launch_overhead_s;
}

double colossal::cost::attentionFlops(const AttentionShape &a) {
  // Q K^T and P V, each 2 * s_q * s_kv * d per head.
  return 4.0 * a.batch * a.heads * a.s_q * a.s_kv * a.head_dim;
}

// Unfused, Megatron-style: the fused scale-mask-softmax kernel reads and
// writes the scores once; dropout reads them, writes its output and a 1-byte
// mask. Backward mirrors this: dropout-grad reads grad + mask and writes,
// softmax-grad reads grad + output and writes.
double colossal::cost::attentionScoreBytesForward(const AttentionShape &a,
                                                  DType t) {
  if (a.fused)
    return 0;
  double elems = a.batch * a.heads * a.s_q * a.s_kv;
  double e = dtypeBytes(t);
  double perElem = 2 * e + (a.dropout ? 2 * e + 1 : 0);
  return elems * perElem;
}

double colossal::cost::attentionScoreBytesBackward(const AttentionShape &a,
                                                   DType t) {
  if (a.fused)
    return 0;
  double elems = a.batch * a.heads * a.s_q * a.s_kv;
  double e = dtypeBytes(t);
  double perElem = 3 * e + (a.dropout ? 2 * e + 1 : 0);
  return elems * perElem;
}

double AttentionShape::computedFraction() const {
  if (!fused || !causal || s_q <= 1)
    return 1.0;
  // Queries aligned at the end of the keys: query i sees s_kv - s_q + i + 1.
  double seen = s_q * (s_kv - s_q) + s_q * (s_q + 1) / 2;
  return std::min(1.0, seen / (s_q * s_kv));
}

double colossal::cost::attentionForwardTime(const ClusterSpec &c,
                                            const AttentionShape &a, DType t) {
  double bh = a.batch * a.heads * a.computedFraction();
  double qk = gemmTime(c, a.s_q, a.s_kv, a.head_dim, bh, t);
  double pv = gemmTime(c, a.s_q, a.head_dim, a.s_kv, bh, t);
  if (a.fused)
    return qk + pv; // one kernel; scores stay on chip
  double softmax = memoryBoundTime(c, attentionScoreBytesForward(a, t));
  return qk + pv + softmax;
}

double colossal::cost::attentionBackwardTime(const ClusterSpec &c,
                                             const AttentionShape &a, DType t) {
  double bh = a.batch * a.heads * a.computedFraction();
  // dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q.
  double g = gemmTime(c, a.s_kv, a.head_dim, a.s_q, bh, t) +
             gemmTime(c, a.s_q, a.s_kv, a.head_dim, bh, t) +
             gemmTime(c, a.s_q, a.head_dim, a.s_kv, bh, t) +
             gemmTime(c, a.s_kv, a.head_dim, a.s_q, bh, t);
  if (a.fused) // flash attention recomputes Q K^T in backward
    return g + gemmTime(c, a.s_q, a.s_kv, a.head_dim, bh, t);
  return g + memoryBoundTime(c, attentionScoreBytesBackward(a, t));
}
