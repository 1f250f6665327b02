//===- CollectivesTest.cpp - Alpha-beta collective times ------------------===//

#include "compiler/cost/Collectives.h"

#include "TestCluster.h"

#include "gtest/gtest.h"

using namespace colossal::cost;
using colossal::cost::testing::handCluster;

// NVLink achieves 300e9 * 0.75 = 225 GB/s, alpha 1 us.
// 2 (p-1)/p * 1e9 / 225e9 + 2 (p-1) * 1e-6 with p = 8.
TEST(Collectives, RingAllReduceOneNode) {
  ClusterSpec c = handCluster(2);
  EXPECT_NEAR(collectiveTime(c, CollectiveKind::AllReduce, 1e9, {8, 8},
                             CollectiveAlgo::Ring),
              0.007791777777777778, 1e-12);
}

// 16 ranks over 2 nodes, 8 per node: one ring per NIC, so the node boundary
// carries 8 * 20 GB/s = 160 GB/s (< NVLink's 225); every step pays IB's 5 us.
// 2 * 15/16 * 1e9 / 160e9 + 30 * 5e-6.
TEST(Collectives, RingAllReduceAcrossTwoNodes) {
  ClusterSpec c = handCluster(2);
  EXPECT_NEAR(collectiveTime(c, CollectiveKind::AllReduce, 1e9, {16, 8},
                             CollectiveAlgo::Ring),
              0.01186875, 1e-12);
  // One rank per node (a strided data-parallel group): a single NIC.
  EXPECT_NEAR(collectiveTime(c, CollectiveKind::AllReduce, 1e9, {16, 1},
                             CollectiveAlgo::Ring),
              0.0939, 1e-12);
}

TEST(Collectives, TreeAndHierarchicalAllReduce) {
  ClusterSpec c = handCluster(2);
  // Tree: 2 * 1e9 / 160e9 + 2 (log2(2) * 5us + 7 * 1us).
  EXPECT_NEAR(collectiveTime(c, CollectiveKind::AllReduce, 1e9, {16, 8},
                             CollectiveAlgo::Tree),
              0.012524, 1e-12);
  // Reduce-scatter in the node (7/8 * 1e9 / 225e9 + 7 us), all-reduce of
  // 1e9 / 8 across 2 nodes on one NIC (1/2 * 2 * 1.25e8 / 20e9 + 2 * 5 us),
  // all-gather in the node.
  EXPECT_NEAR(collectiveTime(c, CollectiveKind::AllReduce, 1e9, {16, 8},
                             CollectiveAlgo::Hierarchical),
              0.014051777777777778, 1e-12);
  // Auto picks the fastest (the ring, for 1 GB).
  EXPECT_NEAR(collectiveTime(c, CollectiveKind::AllReduce, 1e9, {16, 8}),
              0.01186875, 1e-12);
  // For a tiny message the tree's log-depth latency wins over the ring.
  double ring = collectiveTime(c, CollectiveKind::AllReduce, 1024, {16, 8},
                               CollectiveAlgo::Ring);
  double tree = collectiveTime(c, CollectiveKind::AllReduce, 1024, {16, 8},
                               CollectiveAlgo::Tree);
  EXPECT_LT(tree, ring);
}

TEST(Collectives, GatherScatterAllToAllBroadcastP2P) {
  ClusterSpec c = handCluster(2);
  double ag = 7.0 / 8 * 1e9 / 225e9 + 7e-6;
  EXPECT_NEAR(collectiveTime(c, CollectiveKind::AllGather, 1e9, {8, 8},
                             CollectiveAlgo::Ring),
              ag, 1e-12);
  EXPECT_NEAR(collectiveTime(c, CollectiveKind::ReduceScatter, 1e9, {8, 8},
                             CollectiveAlgo::Ring),
              ag, 1e-12);
  // All-to-all over 16 ranks on 2 nodes: 8/16 of the buffer leaves the node
  // through the rank's NIC; 15 steps of the IB latency.
  EXPECT_NEAR(collectiveTime(c, CollectiveKind::AllToAll, 1e9, {16, 8}),
              8.0 / 16 * 1e9 / 20e9 + 15 * 5e-6, 1e-12);
  EXPECT_NEAR(collectiveTime(c, CollectiveKind::Broadcast, 1e9, {8, 8},
                             CollectiveAlgo::Ring),
              1e9 / 225e9 + 7e-6, 1e-12);
  EXPECT_NEAR(p2pTime(c, 1e8, /*crossNode=*/true), 1e8 / 20e9 + 5e-6, 1e-12);
  EXPECT_NEAR(p2pTime(c, 1e8, /*crossNode=*/false), 1e8 / 225e9 + 1e-6, 1e-12);
  EXPECT_EQ(collectiveTime(c, CollectiveKind::AllReduce, 1e9, {1, 1}), 0);
}

TEST(Collectives, StridedGroupsFollowNodeLayout) {
  ClusterSpec c = handCluster(4);
  CommGroup tp = CommGroup::strided(c, 8, 1);
  EXPECT_EQ(tp.ranks_per_node, 8);
  EXPECT_EQ(tp.nodes(), 1);
  CommGroup dp = CommGroup::strided(c, 4, 8);
  EXPECT_EQ(dp.ranks_per_node, 1);
  EXPECT_EQ(dp.nodes(), 4);
  CommGroup half = CommGroup::strided(c, 8, 2); // tp = 2 inside, dp = 8
  EXPECT_EQ(half.ranks_per_node, 4);
  EXPECT_EQ(half.nodes(), 2);
}
