//===- PipelineTest.cpp - Bubbles and in-flight micro-batches -------------===//

#include "compiler/cost/Pipeline.h"
#include "compiler/cost/Estimator.h"

#include "TestCluster.h"

#include "gtest/gtest.h"

using namespace colossal::cost;
using colossal::cost::testing::handCluster;

TEST(Pipeline, BubbleFractions) {
  EXPECT_DOUBLE_EQ(bubbleFraction(Schedule::OneFOneB, 8, 32), 7.0 / 32);
  EXPECT_DOUBLE_EQ(bubbleFraction(Schedule::GPipe, 4, 16), 3.0 / 16);
  EXPECT_DOUBLE_EQ(bubbleFraction(Schedule::Interleaved, 8, 32, 4),
                   7.0 / 32 / 4);
  EXPECT_DOUBLE_EQ(bubbleFraction(Schedule::OneFOneB, 1, 32), 0);
}

TEST(Pipeline, BalancedStagesGiveTheTextbookBubble) {
  double t[] = {1, 1, 1, 1};
  PipelineTime pt = pipelineTime(t, 8, 1);
  EXPECT_DOUBLE_EQ(pt.steady, 8);
  EXPECT_DOUBLE_EQ(pt.bubble / pt.steady, 3.0 / 8);
  pt = pipelineTime(t, 8, 2);
  EXPECT_DOUBLE_EQ(pt.bubble / pt.steady, 3.0 / 16);
  // The slowest stage sets the pace.
  double u[] = {1, 2, 1, 1};
  pt = pipelineTime(u, 8, 1);
  EXPECT_DOUBLE_EQ(pt.steady, 16);
  EXPECT_DOUBLE_EQ(pt.bubble, 3);
}

TEST(Pipeline, InFlightMicroBatches) {
  // 1F1B: stage i holds p - i; never more than m.
  EXPECT_DOUBLE_EQ(inFlightMicroBatches(Schedule::OneFOneB, 4, 16, 1, 0), 4);
  EXPECT_DOUBLE_EQ(inFlightMicroBatches(Schedule::OneFOneB, 4, 16, 1, 3), 1);
  EXPECT_DOUBLE_EQ(inFlightMicroBatches(Schedule::OneFOneB, 4, 2, 1, 0), 2);
  EXPECT_DOUBLE_EQ(inFlightMicroBatches(Schedule::GPipe, 4, 16, 1, 3), 16);
  // Interleaved, first stage: p + (p-1)/v = 4 + 3/2.
  EXPECT_DOUBLE_EQ(inFlightMicroBatches(Schedule::Interleaved, 4, 8, 2, 0),
                   5.5);
  // Last stage: ((v-1) p + 1) / v = 5/2.
  EXPECT_DOUBLE_EQ(inFlightMicroBatches(Schedule::Interleaved, 4, 8, 2, 3),
                   2.5);
}

// A workload of identical Block layers only: the estimator's bubble over its
// per-micro-batch work is exactly (p-1)/m.
TEST(Pipeline, EstimatorBubbleIsPMinusOneOverM) {
  Workload w;
  w.global_batch = 32;
  w.seq_len = 1024;
  w.stage_boundary_bytes = 0;
  LayerSpec l;
  l.count = 8;
  l.ops.push_back(OpSpec::gemm("mm", 1024, 4096, 4096, TpRole::Replicated));
  l.params_replicated = 4096.0 * 4096;
  w.layers.push_back(l);
  ClusterSpec c = handCluster(1);
  auto cfg = parseParallelConfig("dp=2,pp=4,micro-batch=1,schedule=1f1b");
  ASSERT_TRUE(static_cast<bool>(cfg)) << llvm::toString(cfg.takeError());
  auto e = estimate(w, *cfg, c);
  ASSERT_TRUE(static_cast<bool>(e)) << llvm::toString(e.takeError());
  EXPECT_EQ(e->micro_batches, 16);
  EXPECT_NEAR(e->time.pp_bubble / e->time.compute, 3.0 / 16, 1e-12);

  cfg = parseParallelConfig("dp=2,pp=4,micro-batch=1,schedule=interleaved:2");
  ASSERT_TRUE(static_cast<bool>(cfg));
  e = estimate(w, *cfg, c);
  ASSERT_TRUE(static_cast<bool>(e)) << llvm::toString(e.takeError());
  EXPECT_NEAR(e->time.pp_bubble / e->time.compute, 3.0 / 16 / 2, 1e-12);
}
