//===- ComputeTest.cpp - Roofline GEMM / memory-bound / attention times ---===//

#include "compiler/cost/Compute.h"

#include "TestCluster.h"

#include "gtest/gtest.h"

using namespace colossal::cost;
using colossal::cost::testing::handCluster;

// 8192^3 bf16 GEMM: 1.0995e12 FLOPs at 312 TFLOP/s * 0.8 * 8192/(8192+64).
TEST(Compute, LargeSquareGemmIsFlopsOverAchievablePeak) {
  ClusterSpec c = handCluster();
  EXPECT_NEAR(gemmTime(c, 8192, 8192, 8192, 1, DType::BF16),
              0.004439509464615385, 1e-12);
}

TEST(Compute, LargeGemmOnA100PresetMatchesFittedEfficiency) {
  auto c = getPresetCluster("dgx-a100-80g");
  ASSERT_TRUE(static_cast<bool>(c)) << llvm::toString(c.takeError());
  double flops = 2.0 * 16384 * 16384 * 16384;
  double eff = c->efficiency.gemm_peak_fraction * 16384 /
               (16384 + c->efficiency.gemm_half_saturation_dim);
  EXPECT_NEAR(gemmTime(*c, 16384, 16384, 16384, 1, DType::BF16),
              flops / (312e12 * eff) + c->efficiency.kernel_launch_overhead_s,
              1e-9);
  // The fitted fraction stays physical: below the best measured A100 GEMM
  // (271 TFLOP/s = 87%) and above half of peak.
  EXPECT_LT(c->efficiency.gemm_peak_fraction, 0.87);
  EXPECT_GT(c->efficiency.gemm_peak_fraction, 0.5);
}

TEST(Compute, EfficiencyRisesWithSmallestDimAndSaturates) {
  ClusterSpec c = handCluster();
  EXPECT_DOUBLE_EQ(gemmEfficiency(c, 4096, 4096, 64), 0.4); // d = d_half
  EXPECT_LT(gemmEfficiency(c, 4096, 4096, 32),
            gemmEfficiency(c, 4096, 4096, 128));
  EXPECT_NEAR(gemmEfficiency(c, 1e6, 1e6, 1e6), 0.8, 1e-4);
  // Only the smallest dimension matters.
  EXPECT_DOUBLE_EQ(gemmEfficiency(c, 128, 8192, 8192),
                   gemmEfficiency(c, 8192, 128, 4096));
}

// A matrix-vector product is memory bound: bytes of A over achieved bandwidth.
TEST(Compute, ThinGemmIsMemoryBound) {
  ClusterSpec c = handCluster();
  double bytes = (8192.0 * 8192 + 8192 + 8192) * 2;
  EXPECT_DOUBLE_EQ(gemmTime(c, 8192, 1, 8192, 1, DType::BF16),
                   bytes / (2e12 * 0.8));
}

TEST(Compute, MemoryBoundTime) {
  ClusterSpec c = handCluster();
  EXPECT_DOUBLE_EQ(memoryBoundTime(c, 1e9), 1e9 / 1.6e12);
  EXPECT_EQ(memoryBoundTime(c, 0), 0);
}

TEST(Compute, FP32UsesFP32Peak) {
  ClusterSpec c = handCluster();
  double t16 = gemmTime(c, 8192, 8192, 8192, 1, DType::BF16);
  double t32 = gemmTime(c, 8192, 8192, 8192, 1, DType::FP32);
  EXPECT_NEAR(t32 / t16, 312.0 / 19.5, 1e-9);
}

TEST(Compute, AttentionFlopsAndScoreTraffic) {
  ClusterSpec c = handCluster();
  AttentionShape a;
  a.batch = 2;
  a.heads = 16;
  a.s_q = a.s_kv = 2048;
  a.head_dim = 128;
  EXPECT_DOUBLE_EQ(attentionFlops(a), 4.0 * 2 * 16 * 2048 * 2048 * 128);
  double elems = 2.0 * 16 * 2048 * 2048;
  // softmax read + write (4 B), dropout read + write + mask (5 B).
  EXPECT_DOUBLE_EQ(attentionScoreBytesForward(a, DType::BF16), 9 * elems);
  double gemms = gemmTime(c, 2048, 2048, 128, 32, DType::BF16) +
                 gemmTime(c, 2048, 128, 2048, 32, DType::BF16);
  EXPECT_DOUBLE_EQ(attentionForwardTime(c, a, DType::BF16),
                   gemms + 9 * elems / 1.6e12);
  a.fused = true;
  EXPECT_DOUBLE_EQ(attentionForwardTime(c, a, DType::BF16), gemms);
  EXPECT_GT(attentionBackwardTime(c, a, DType::BF16), 2 * gemms);
}
