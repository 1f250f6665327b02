//===- PipelineTest.cpp - Bubbles and in-flight micro-batches -------------===//

#include "compiler/cost/Pipeline.h"
#include "compiler/cost/Estimator.h"

#include "TestCluster.h"

#include "gtest/gtest.h"

#include <string>

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

TEST(Pipeline, ScheduleOrders) {
  // 1F1B on 2 stages, 3 micro-batches: stage 0 warms up with one forward.
  auto text = [](const std::vector<ScheduleEntry> &order) {
    std::string out;
    for (const ScheduleEntry &e : order)
      out += (e.backward ? "B" : "F") + std::to_string(e.chunk) +
             std::to_string(e.micro) + " ";
    return out;
  };
  EXPECT_EQ(text(scheduleOrder(Schedule::OneFOneB, 2, 1, 3, 0)),
            "F00 F01 B00 F02 B01 B02 ");
  EXPECT_EQ(text(scheduleOrder(Schedule::OneFOneB, 2, 1, 3, 1)),
            "F10 B10 F11 B11 F12 B12 ");
  EXPECT_EQ(text(scheduleOrder(Schedule::GPipe, 2, 1, 2, 0)),
            "F00 F01 B00 B01 ");
  // Interleaved, 2 chunks a stage: chunk 0 of micro-batches 0 and 1, then
  // chunk 1 (chunk k * p + s); inference is the forwards.
  EXPECT_EQ(text(scheduleOrder(Schedule::Interleaved, 2, 2, 2, 0, false)),
            "F00 F01 F20 F21 ");
}

TEST(Pipeline, SimulatedScheduleWithoutHopsIsTheBubbleFormula) {
  // Balanced stages: (m + p - 1) (F + B) for GPipe and 1F1B alike.
  double f[] = {1, 1, 1, 1}, b[] = {2, 2, 2, 2};
  for (Schedule s : {Schedule::GPipe, Schedule::OneFOneB}) {
    ScheduleRun r = simulateSchedule(s, f, b, 8, 1, 0);
    EXPECT_DOUBLE_EQ(r.makespan, (8 + 3) * 3.0);
    EXPECT_DOUBLE_EQ(r.busy[0], 8 * 3.0);
  }
  // Interleaved (v chunks, each 1/v of the stage) shrinks the bubble by v.
  ScheduleRun r = simulateSchedule(Schedule::Interleaved, f, b, 8, 2, 0);
  EXPECT_DOUBLE_EQ(r.makespan - 8 * 3.0, 3 * 3.0 / 2);
  // Unequal stages: the slowest sets the pace; the others' work of one
  // micro-batch fills and drains: sum - max, as pipelineTime says.
  double f2[] = {1, 1.5}, b2[] = {2, 2.5};
  r = simulateSchedule(Schedule::OneFOneB, f2, b2, 4, 1, 0);
  EXPECT_DOUBLE_EQ(r.makespan, 4 * 4.0 + 3.0);
}

TEST(Pipeline, HopsAreHiddenByASlowerStage) {
  // Stage 1 does more (the head and loss). Its inputs arrive a hop after
  // stage 0 makes them; in the steady state stage 0 has 1 s of slack a
  // micro-batch, which hides a round trip of 2 x 0.25 s: only the fill and
  // drain pay their hop.
  double f[] = {1, 1.5}, b[] = {2, 2.5};
  ScheduleRun r = simulateSchedule(Schedule::OneFOneB, f, b, 4, 1, 0.25);
  EXPECT_DOUBLE_EQ(r.makespan, 4 * 4.0 + 3.0 + 2 * 0.25);
  // Balanced stages hide nothing: every round trip shows.
  double g[] = {1, 1}, h[] = {2, 2};
  ScheduleRun balanced = simulateSchedule(Schedule::OneFOneB, g, h, 4, 1, 0.25);
  EXPECT_GT(balanced.makespan, (4 + 1) * 3.0 + 2 * 0.25);
}

TEST(Pipeline, LongSchedulesExtendTheirSteadyState) {
  // Past 3p micro-batches the makespan grows by a fixed period: the
  // extension equals playing the whole schedule out.
  double f[] = {1, 1.5, 1.2}, b[] = {2, 2.5, 2.1};
  for (Schedule s : {Schedule::GPipe, Schedule::OneFOneB})
    for (double hop : {0.0, 0.4, 1.5})
      EXPECT_NEAR(scheduleMakespan(s, f, b, 40, 1, hop),
                  simulateSchedule(s, f, b, 40, 1, hop).makespan, 1e-9)
          << static_cast<int>(s) << " hop " << hop;
  EXPECT_NEAR(
      scheduleMakespan(Schedule::Interleaved, f, b, 36, 2, 0.4),
      simulateSchedule(Schedule::Interleaved, f, b, 36, 2, 0.4).makespan, 1e-9);
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
