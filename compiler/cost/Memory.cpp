//===- Memory.cpp - Bytes a training step keeps on one device -------------===//

#include "compiler/cost/Memory.h"

using namespace colossal::cost;

double colossal::cost::korthikantiNoParallel(double s, double b, double h,
                                             double a) {
  return s * b * h * (34 + 5 * a * s / h);
}

double colossal::cost::korthikantiTensorParallel(double s, double b, double h,
                                                 double a, double t) {
  return s * b * h * (10 + 24 / t + 5 * a * s / (h * t));
}

double colossal::cost::korthikantiTensorSequenceParallel(double s, double b,
                                                         double h, double a,
                                                         double t) {
  return s * b * h * (34 / t + 5 * a * s / (h * t));
}

double colossal::cost::korthikantiFullRecompute(double s, double b, double h) {
  return 2 * s * b * h;
}

ActivationDivisors colossal::cost::activationDivisors(const ParallelConfig &c) {
  ActivationDivisors d;
  double t = static_cast<double>(c.tp);
  d.split = t;
  // 2D/2.5D/3D split every activation over the whole mesh (Colossal-AI's
  // activation column: 1/q^2, 1/(d q^2), 1/q^3 = 1/tp).
  d.split_with_sp = (c.tp_mode != TpMode::OneD || c.tp_sp) ? t : 1.0;
  d.context = static_cast<double>(c.sp);
  return d;
}

double colossal::cost::shardDivisor(const ParallelConfig &c, TpShard s) {
  ActivationDivisors d = activationDivisors(c);
  switch (s) {
  case TpShard::Split:
    return d.split * d.context;
  case TpShard::SplitWithSp:
    return d.split_with_sp * d.context;
  case TpShard::Replicated:
    return d.context;
  }
  return 1;
}

double colossal::cost::fullActivationBytes(const ActivationBytes &a,
                                           const ParallelConfig &c) {
  ActivationDivisors d = activationDivisors(c);
  double perSample = (a.split + a.attention_core) / d.split +
                     a.split_with_sp / d.split_with_sp + a.replicated;
  return perSample / d.context * static_cast<double>(c.micro_batch);
}

double colossal::cost::storedActivationBytes(const ActivationBytes &a,
                                             const ParallelConfig &c) {
  ActivationDivisors d = activationDivisors(c);
  double perSample = 0;
  switch (c.recompute) {
  case Recompute::None:
    return fullActivationBytes(a, c);
  case Recompute::Selective:
    perSample =
        a.split / d.split + a.split_with_sp / d.split_with_sp + a.replicated;
    break;
  case Recompute::Full:
    perSample = a.checkpoint / d.split_with_sp;
    break;
  }
  return perSample / d.context * static_cast<double>(c.micro_batch);
}

ModelStateBytes colossal::cost::modelStateBytes(double localParams,
                                                const Workload &w, int zero,
                                                int64_t dpGroup,
                                                Offload offload) {
  double dp = static_cast<double>(dpGroup < 1 ? 1 : dpGroup);
  ModelStateBytes m;
  m.params = localParams * w.param_bytes / (zero >= 3 ? dp : 1.0);
  m.grads = localParams * w.grad_bytes / (zero >= 2 ? dp : 1.0);
  m.optimizer = localParams * w.optimizer_bytes / (zero >= 1 ? dp : 1.0);
  if (offload == Offload::Optimizer || offload == Offload::Params) {
    m.host += m.optimizer;
    m.optimizer = 0;
  }
  if (offload == Offload::Params) {
    m.host += m.params;
    m.params = 0; // the estimator adds the per-layer working set back
  }
  return m;
}
