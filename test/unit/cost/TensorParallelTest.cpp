//===- TensorParallelTest.cpp - Colossal-AI's tensor-parallel cost table --===//

#include "compiler/cost/TensorParallel.h"

#include "TestCluster.h"

#include "gtest/gtest.h"

using namespace colossal::cost;
using colossal::cost::testing::handCluster;

static void expectCost(const TpLinearCost &c, double compute, double params,
                       double act, double bw, double lat) {
  EXPECT_DOUBLE_EQ(c.compute, compute);
  EXPECT_DOUBLE_EQ(c.params, params);
  EXPECT_DOUBLE_EQ(c.activations, act);
  EXPECT_DOUBLE_EQ(c.bandwidth, bw);
  EXPECT_DOUBLE_EQ(c.latency, lat);
}

TEST(TensorParallel, OneD) {
  // P = 8: 1/P, 1/P, 1, 2(P-1)/P, 2(P-1).
  expectCost(tpLinearCost(TpMode::OneD, 8), 0.125, 0.125, 1, 1.75, 14);
}

TEST(TensorParallel, TwoD) {
  // P = 16, q = 4: 1/16, 1/16, 1/16, 6 * 3/4, 6 * 3.
  expectCost(tpLinearCost(TpMode::TwoD, 16), 1.0 / 16, 1.0 / 16, 1.0 / 16, 4.5,
             18);
}

TEST(TensorParallel, TwoPointFiveD) {
  // P = 8 = d q^2 with d = 2, q = 2: 1/8, 1/4, 1/8, 3*1*3/(2*2), 6.
  expectCost(tpLinearCost(TpMode::TwoPointFiveD, 8, 2), 0.125, 0.25, 0.125,
             2.25, 6);
  // P = 32, d = 2, q = 4: 3*3*3/(2*4) = 3.375, 18.
  expectCost(tpLinearCost(TpMode::TwoPointFiveD, 32, 2), 1.0 / 32, 1.0 / 16,
             1.0 / 32, 3.375, 18);
  // d = 1 is 2D.
  TpLinearCost a = tpLinearCost(TpMode::TwoPointFiveD, 16, 1);
  TpLinearCost b = tpLinearCost(TpMode::TwoD, 16);
  EXPECT_DOUBLE_EQ(a.bandwidth, b.bandwidth);
  EXPECT_DOUBLE_EQ(a.latency, b.latency);
}

TEST(TensorParallel, ThreeD) {
  // P = 8, q = 2: 1/8 each, 6 * 1/8, 6.
  expectCost(tpLinearCost(TpMode::ThreeD, 8), 0.125, 0.125, 0.125, 0.75, 6);
  // P = 64, q = 4: 6 * 3 / 64, 18.
  expectCost(tpLinearCost(TpMode::ThreeD, 64), 1.0 / 64, 1.0 / 64, 1.0 / 64,
             0.28125, 18);
}

TEST(TensorParallel, OneDTimeIsOneRingAllReduce) {
  ClusterSpec c = handCluster();
  double x = 256e6;
  EXPECT_NEAR(tpLinearCommTime(c, TpMode::OneD, 8, 1, x),
              collectiveTime(c, CollectiveKind::AllReduce, x, {8, 8},
                             CollectiveAlgo::Ring),
              1e-12);
  // 1.75 * x / 225e9 + 14 * 1 us.
  EXPECT_NEAR(tpLinearCommTime(c, TpMode::OneD, 8, 1, x),
              1.75 * x / 225e9 + 14e-6, 1e-12);
}

TEST(TensorParallel, TwoDTimeInOneNode) {
  ClusterSpec c = handCluster();
  double x = 256e6;
  // q = 2 (P = 4, in one node): 6 * 1/2 * (x / 2) / 225e9 + 6 * 1 us.
  EXPECT_NEAR(tpLinearCommTime(c, TpMode::TwoD, 4, 1, x),
              3.0 * (x / 2) / 225e9 + 6e-6, 1e-12);
}

// On a flat network (one GPU per node) 2D and 3D move less than 1D at P = 64.
// Inside DGX nodes the answer can flip: a 1D ring spans all 8 NICs of a node,
// while a 2D column group strided across nodes gets one NIC per rank.
TEST(TensorParallel, HigherDimensionsMoveLessAtScale) {
  ClusterSpec c = handCluster(64);
  c.gpus_per_node = 1;
  double x = 256e6;
  double oneD = tpLinearCommTime(c, TpMode::OneD, 64, 1, x);
  double twoD = tpLinearCommTime(c, TpMode::TwoD, 64, 1, x);
  double threeD = tpLinearCommTime(c, TpMode::ThreeD, 64, 1, x);
  EXPECT_LT(twoD, oneD);
  EXPECT_LT(threeD, twoD);
  // 1D: 2 * 63/64 * x / 20e9 + 126 * 5 us.
  EXPECT_NEAR(oneD, 2 * 63.0 / 64 * x / 20e9 + 126 * 5e-6, 1e-12);
  // 2D, q = 8: 6 * 7/8 * (x / 8) / 20e9 + 42 * 5 us.
  EXPECT_NEAR(twoD, 6 * 7.0 / 8 * (x / 8) / 20e9 + 42 * 5e-6, 1e-12);

  ClusterSpec dgx = handCluster(8);
  EXPECT_GT(tpLinearCommTime(dgx, TpMode::TwoD, 64, 1, x),
            tpLinearCommTime(dgx, TpMode::OneD, 64, 1, x));
}
