//===- MemoryTest.cpp - Activation and model-state bytes ------------------===//

#include "compiler/cost/Memory.h"

#include "gtest/gtest.h"

using namespace colossal::cost;

namespace {
const LayerSpec &block(const Workload &w) {
  for (const LayerSpec &l : w.layers)
    if (l.role == LayerRole::Block)
      return l;
  return w.layers.front();
}

Workload gpt(int64_t seq, int64_t hidden, int64_t heads) {
  GptDims d;
  d.layers = 4;
  d.hidden = hidden;
  d.heads = heads;
  d.seq = seq;
  d.vocab = 51200;
  return makeGptWorkload(d);
}
} // namespace

TEST(Memory, KorthikantiFormulasByHand) {
  // s = 2048, b = 1, h = 1024, a = 16: sbh = 2^21, 5as/h = 160.
  EXPECT_DOUBLE_EQ(korthikantiNoParallel(2048, 1, 1024, 16), 406847488.0);
  // t = 8: 10 + 3 + 20 = 33.
  EXPECT_DOUBLE_EQ(korthikantiTensorParallel(2048, 1, 1024, 16, 8),
                   33.0 * 2097152);
  // 34/8 + 20 = 24.25.
  EXPECT_DOUBLE_EQ(korthikantiTensorSequenceParallel(2048, 1, 1024, 16, 8),
                   24.25 * 2097152);
  EXPECT_DOUBLE_EQ(korthikantiFullRecompute(2048, 1, 1024), 2.0 * 2097152);
}

// The GPT workload's per-layer activations reproduce Table 2 exactly.
TEST(Memory, GptBlockMatchesKorthikantiTable2) {
  const double s = 2048, h = 6144, a = 48;
  Workload w = gpt(2048, 6144, 48);
  const ActivationBytes &act = block(w).activations;
  for (int64_t b : {1, 4}) {
    ParallelConfig cfg;
    cfg.micro_batch = b;
    EXPECT_DOUBLE_EQ(storedActivationBytes(act, cfg),
                     korthikantiNoParallel(s, b, h, a));
    for (int64_t t : {2, 8}) {
      cfg.tp = t;
      cfg.tp_sp = false;
      EXPECT_DOUBLE_EQ(storedActivationBytes(act, cfg),
                       korthikantiTensorParallel(s, b, h, a, t));
      cfg.tp_sp = true;
      EXPECT_DOUBLE_EQ(storedActivationBytes(act, cfg),
                       korthikantiTensorSequenceParallel(s, b, h, a, t));
      // Selective recompute drops the 5as/(ht) term: 34/t with SP.
      cfg.recompute = Recompute::Selective;
      EXPECT_DOUBLE_EQ(storedActivationBytes(act, cfg), s * b * h * 34 / t);
      cfg.recompute = Recompute::None;
    }
    cfg.tp = 8;
    cfg.tp_sp = false;
    cfg.recompute = Recompute::Full;
    EXPECT_DOUBLE_EQ(storedActivationBytes(act, cfg),
                     korthikantiFullRecompute(s, b, h));
    // Recompute's working set is one layer's full activations.
    EXPECT_DOUBLE_EQ(fullActivationBytes(act, cfg),
                     korthikantiTensorParallel(s, b, h, a, 8));
  }
}

TEST(Memory, ContextParallelDividesEverything) {
  Workload w = gpt(8192, 4096, 32);
  ParallelConfig cfg;
  cfg.tp = 4;
  cfg.tp_sp = true;
  cfg.sp = 4;
  EXPECT_DOUBLE_EQ(storedActivationBytes(block(w).activations, cfg),
                   korthikantiTensorSequenceParallel(8192, 1, 4096, 32, 4) / 4);
}

// 1e9 local parameters, mixed-precision Adam (2 + 2 + 12 bytes), dp = 8.
TEST(Memory, ZeroDividesTheRightParts) {
  Workload w;
  auto ms = modelStateBytes(1e9, w, 0, 8, Offload::None);
  EXPECT_DOUBLE_EQ(ms.params, 2e9);
  EXPECT_DOUBLE_EQ(ms.grads, 2e9);
  EXPECT_DOUBLE_EQ(ms.optimizer, 12e9);
  ms = modelStateBytes(1e9, w, 1, 8, Offload::None);
  EXPECT_DOUBLE_EQ(ms.params, 2e9);
  EXPECT_DOUBLE_EQ(ms.grads, 2e9);
  EXPECT_DOUBLE_EQ(ms.optimizer, 1.5e9);
  ms = modelStateBytes(1e9, w, 2, 8, Offload::None);
  EXPECT_DOUBLE_EQ(ms.params, 2e9);
  EXPECT_DOUBLE_EQ(ms.grads, 0.25e9);
  EXPECT_DOUBLE_EQ(ms.optimizer, 1.5e9);
  ms = modelStateBytes(1e9, w, 3, 8, Offload::None);
  EXPECT_DOUBLE_EQ(ms.params, 0.25e9);
  EXPECT_DOUBLE_EQ(ms.grads, 0.25e9);
  EXPECT_DOUBLE_EQ(ms.optimizer, 1.5e9);
  EXPECT_DOUBLE_EQ(ms.params + ms.grads + ms.optimizer, 16e9 / 8);
  ms = modelStateBytes(1e9, w, 2, 8, Offload::Optimizer);
  EXPECT_DOUBLE_EQ(ms.optimizer, 0);
  EXPECT_DOUBLE_EQ(ms.host, 1.5e9);
}

TEST(Memory, GptParameterCountMatchesMegatronFormula) {
  // P = 12 l h^2 (1 + 13/(12h) + (V + s)/(12 l h)); our count adds the final
  // LayerNorm (2h).
  GptDims d;
  d.layers = 128;
  d.hidden = 25600;
  d.heads = 160;
  d.seq = 2048;
  d.vocab = 51200;
  Workload w = makeGptWorkload(d);
  double l = 128, h = 25600, V = 51200, s = 2048;
  double P = 12 * l * h * h * (1 + 13 / (12 * h) + (V + s) / (12 * l * h));
  EXPECT_DOUBLE_EQ(w.parameterCount(), P + 2 * h);
  EXPECT_NEAR(w.parameterCount() / 1e9, 1008.0, 0.5);
}
