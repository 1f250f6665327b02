//===- TensorParallel.cpp - Costs of 1D/2D/2.5D/3D tensor parallelism -----===//

#include "compiler/cost/TensorParallel.h"

#include <algorithm>

using namespace colossal::cost;

static int64_t meshSide(TpMode mode, int64_t tp, int64_t depth) {
  ParallelConfig cfg;
  cfg.tp = tp;
  cfg.tp_mode = mode;
  cfg.tp_depth = depth;
  return cfg.tpMeshSide();
}

TpLinearCost colossal::cost::tpLinearCost(TpMode mode, int64_t tp,
                                          int64_t depth) {
  TpLinearCost c;
  double P = static_cast<double>(tp);
  double q = static_cast<double>(meshSide(mode, tp, depth));
  double d = static_cast<double>(depth);
  switch (mode) {
  case TpMode::OneD:
    c = {1 / P, 1 / P, 1, 2 * (P - 1) / P, 2 * (P - 1)};
    break;
  case TpMode::TwoD:
    c = {1 / (q * q), 1 / (q * q), 1 / (q * q), 6 * (q - 1) / q, 6 * (q - 1)};
    break;
  case TpMode::TwoPointFiveD:
    c = {1 / (d * q * q), 1 / (q * q), 1 / (d * q * q),
         3 * (q - 1) * (d + 1) / (d * q), 6 * (q - 1)};
    break;
  case TpMode::ThreeD:
    c = {1 / (q * q * q), 1 / (q * q * q), 1 / (q * q * q),
         6 * (q - 1) / (q * q * q), 6 * (q - 1)};
    break;
  }
  return c;
}

double colossal::cost::tpBandwidthUnitBytes(TpMode mode, int64_t q,
                                            double activationBytes) {
  switch (mode) {
  case TpMode::OneD:
  case TpMode::ThreeD:
    return activationBytes;
  case TpMode::TwoD:
  case TpMode::TwoPointFiveD:
    return activationBytes / static_cast<double>(std::max<int64_t>(q, 1));
  }
  return activationBytes;
}

double colossal::cost::tpLinearCommTime(const ClusterSpec &c, TpMode mode,
                                        int64_t tp, int64_t depth,
                                        double activationBytes) {
  if (tp <= 1 || activationBytes <= 0)
    return 0;
  int64_t q = meshSide(mode, tp, depth);
  TpLinearCost cost = tpLinearCost(mode, tp, depth);
  double volume =
      cost.bandwidth * tpBandwidthUnitBytes(mode, q, activationBytes);

  // Mesh axes, innermost first: (size, stride).
  struct Axis {
    int64_t size, stride;
  };
  Axis axes[3];
  int n = 0;
  switch (mode) {
  case TpMode::OneD:
    axes[n++] = {tp, 1};
    break;
  case TpMode::TwoD:
    axes[n++] = {q, 1};
    axes[n++] = {q, q};
    break;
  case TpMode::TwoPointFiveD:
    axes[n++] = {q, 1};
    axes[n++] = {q, q};
    if (depth > 1)
      axes[n++] = {depth, q * q};
    break;
  case TpMode::ThreeD:
    axes[n++] = {q, 1};
    axes[n++] = {q, q};
    axes[n++] = {q, q * q};
    break;
  }
  double t = 0, alpha = 0;
  for (int i = 0; i < n; ++i) {
    CommGroup g = CommGroup::strided(c, axes[i].size, axes[i].stride);
    t += volume / n / ringBandwidth(c, g);
    alpha = std::max(alpha, ringLatency(c, g));
  }
  return t + cost.latency * alpha;
}
