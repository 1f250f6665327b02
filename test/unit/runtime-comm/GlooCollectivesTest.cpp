//===- GlooCollectivesTest.cpp - Gloo collectives against references ------===//
//
// Ranks are threads of one process, each with its own communicator over
// loopback TCP. Every collective is checked element by element against a
// reference computed from the rank-dependent inputs, for 2, 3 and 4 ranks,
// several dims and dtypes.
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/GlooCommunicator.h"
#include "test/unit/runtime-comm/CommTestUtil.h"

#include <cmath>

using namespace colossal::rt;
using namespace colossal::rt::test;

namespace {

/// The input of rank `r` at flat index `i`: small integers, so sums and
/// products are exact in bfloat16 too.
double value(DType dtype, ReduceOp op, int r, int64_t i) {
  if (dtype == DType::Bool)
    return static_cast<double>((i + r) % 2);
  if (op == ReduceOp::Prod)
    return static_cast<double>(1 + (i + r) % 2);
  return static_cast<double>(1 + i % 5 + r);
}

double valueOf(DType dtype, int r, int64_t i) {
  return value(dtype, ReduceOp::Sum, r, i);
}

bool isInteger(DType dtype) {
  return dtype == DType::I32 || dtype == DType::I64 || dtype == DType::Bool;
}

double reference(DType dtype, ReduceOp op, const std::vector<int> &ranks,
                 int64_t i) {
  double acc = value(dtype, op, ranks[0], i);
  for (size_t k = 1; k < ranks.size(); ++k) {
    double v = value(dtype, op, ranks[k], i);
    switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg:
      acc += v;
      break;
    case ReduceOp::Prod:
      acc *= v;
      break;
    case ReduceOp::Max:
      acc = std::max(acc, v);
      break;
    case ReduceOp::Min:
      acc = std::min(acc, v);
      break;
    }
  }
  if (op == ReduceOp::Avg) {
    acc /= static_cast<double>(ranks.size());
    if (isInteger(dtype))
      acc = std::trunc(acc);
  }
  // Through the dtype, so 16-bit results compare with their own rounding.
  Buffer b(dtype, {1});
  b.put(0, acc);
  return b.get(0);
}

double tolerance(DType dtype, double expected) {
  if (dtype == DType::F16 || dtype == DType::BF16)
    return 1e-2 * std::abs(expected) + 1e-3;
  return dtype == DType::F32 ? 1e-6 * std::abs(expected) : 0;
}

std::vector<int> worldRanks(int n) {
  std::vector<int> ranks(n);
  for (int r = 0; r < n; ++r)
    ranks[r] = r;
  return ranks;
}

int64_t positiveDim(int64_t dim, size_t rank) {
  return dim < 0 ? dim + static_cast<int64_t>(rank) : dim;
}

/// Checks all_gather on `ranks` (this rank at `index`) of `shape` along
/// `dim`.
void checkAllGather(Communicator &c, const std::vector<int> &ranks, int index,
                    DType dtype, std::vector<int64_t> shape, int64_t dim) {
  const int64_t n = static_cast<int64_t>(ranks.size());
  const int64_t d = positiveDim(dim, shape.size());
  Buffer in(dtype, shape);
  in.fill([&](int64_t i) { return valueOf(dtype, ranks[index], i); });
  std::vector<int64_t> outShape = shape;
  outShape[d] *= n;
  Buffer out(dtype, outShape);
  Status s = c.allGather(in.ref(), out.ref(), dim, ranks);
  ASSERT_TRUE(s.isOk()) << s.message();
  for (int64_t o = 0; o < out.numel(); ++o) {
    std::vector<int64_t> idx = unravel(o, outShape);
    int64_t from = idx[d] / shape[d];
    idx[d] %= shape[d];
    ASSERT_EQ(out.get(o), valueOf(dtype, ranks[from], ravel(idx, shape)))
        << dtypeName(dtype) << " dim " << dim << " at " << o;
  }
}

void checkReduceScatter(Communicator &c, const std::vector<int> &ranks,
                        int index, DType dtype, ReduceOp op,
                        std::vector<int64_t> shape, int64_t dim) {
  const int64_t n = static_cast<int64_t>(ranks.size());
  const int64_t d = positiveDim(dim, shape.size());
  Buffer in(dtype, shape);
  in.fill([&](int64_t i) { return value(dtype, op, ranks[index], i); });
  std::vector<int64_t> outShape = shape;
  outShape[d] /= n;
  Buffer out(dtype, outShape);
  Status s = c.reduceScatter(in.ref(), out.ref(), op, dim, ranks);
  ASSERT_TRUE(s.isOk()) << s.message();
  for (int64_t o = 0; o < out.numel(); ++o) {
    std::vector<int64_t> idx = unravel(o, outShape);
    idx[d] += index * outShape[d];
    double expected = reference(dtype, op, ranks, ravel(idx, shape));
    ASSERT_NEAR(out.get(o), expected, tolerance(dtype, expected))
        << dtypeName(dtype) << " dim " << dim << " at " << o;
  }
}

void checkAllToAll(Communicator &c, const std::vector<int> &ranks, int index,
                   DType dtype, std::vector<int64_t> shape, int64_t splitDim,
                   int64_t concatDim) {
  const int64_t n = static_cast<int64_t>(ranks.size());
  const int64_t sd = positiveDim(splitDim, shape.size());
  const int64_t cd = positiveDim(concatDim, shape.size());
  Buffer in(dtype, shape);
  in.fill([&](int64_t i) { return valueOf(dtype, ranks[index], i); });
  std::vector<int64_t> chunk = shape;
  chunk[sd] /= n;
  std::vector<int64_t> outShape = chunk;
  outShape[cd] *= n;
  Buffer out(dtype, outShape);
  Status s = c.allToAll(in.ref(), out.ref(), splitDim, concatDim, ranks);
  ASSERT_TRUE(s.isOk()) << s.message();
  for (int64_t o = 0; o < out.numel(); ++o) {
    std::vector<int64_t> idx = unravel(o, outShape);
    int64_t from = idx[cd] / chunk[cd];
    idx[cd] %= chunk[cd];
    // Rank `from` sent this rank its chunk number `index` along splitDim.
    idx[sd] += index * chunk[sd];
    ASSERT_EQ(out.get(o), valueOf(dtype, ranks[from], ravel(idx, shape)))
        << dtypeName(dtype) << " split " << splitDim << " concat " << concatDim
        << " at " << o;
  }
}

class GlooCollectivesTest : public ::testing::TestWithParam<int> {};

TEST_P(GlooCollectivesTest, AllReduceEveryOpAndDtype) {
  const int n = GetParam();
  auto comms = makeWorld(n);
  ASSERT_EQ(comms.size(), static_cast<size_t>(n));
  const std::vector<int> ranks = worldRanks(n);
  runRanks(comms, [&](int rank, Communicator &c) {
    for (DType dtype :
         {DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32})
      for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Max,
                          ReduceOp::Min, ReduceOp::Avg}) {
        Buffer in(dtype, {3, 5}), out(dtype, {3, 5});
        in.fill([&](int64_t i) { return value(dtype, op, rank, i); });
        Status s = c.allReduce(in.ref(), out.ref(), op, {});
        ASSERT_TRUE(s.isOk()) << s.message();
        for (int64_t i = 0; i < out.numel(); ++i) {
          double expected = reference(dtype, op, ranks, i);
          ASSERT_NEAR(out.get(i), expected, tolerance(dtype, expected))
              << dtypeName(dtype) << " op " << static_cast<int>(op) << " at "
              << i;
        }
        // The input is left alone.
        for (int64_t i = 0; i < in.numel(); ++i)
          ASSERT_EQ(in.get(i), value(dtype, op, rank, i));
      }
  });
}

TEST_P(GlooCollectivesTest, AllReduceInPlace) {
  const int n = GetParam();
  auto comms = makeWorld(n);
  ASSERT_EQ(comms.size(), static_cast<size_t>(n));
  const std::vector<int> ranks = worldRanks(n);
  runRanks(comms, [&](int rank, Communicator &c) {
    // A scalar (fewer elements than ranks), and more than Gloo's 1 MiB
    // segment.
    for (DType dtype : {DType::F32, DType::BF16, DType::I64})
      for (std::vector<int64_t> shape :
           {std::vector<int64_t>{}, {4, 3}, {300001}}) {
        Buffer t(dtype, shape);
        t.fill([&](int64_t i) { return valueOf(dtype, rank, i); });
        Status s = c.allReduce(t.ref(), t.ref(), ReduceOp::Sum, {});
        ASSERT_TRUE(s.isOk()) << s.message();
        for (int64_t i = 0; i < t.numel(); ++i)
          ASSERT_EQ(t.get(i), reference(dtype, ReduceOp::Sum, ranks, i));
      }
  });
}

TEST_P(GlooCollectivesTest, AllGatherAlongEveryDim) {
  const int n = GetParam();
  auto comms = makeWorld(n);
  ASSERT_EQ(comms.size(), static_cast<size_t>(n));
  const std::vector<int> ranks = worldRanks(n);
  runRanks(comms, [&](int rank, Communicator &c) {
    for (DType dtype : {DType::F32, DType::BF16, DType::I64, DType::Bool}) {
      checkAllGather(c, ranks, rank, dtype, {2, 3}, 0);
      checkAllGather(c, ranks, rank, dtype, {2, 3}, 1);
      checkAllGather(c, ranks, rank, dtype, {2, 3, 2}, 1);
      checkAllGather(c, ranks, rank, dtype, {2, 3, 2}, -1);
      checkAllGather(c, ranks, rank, dtype, {5}, 0);
      checkAllGather(c, ranks, rank, dtype, {1, 4}, 0);
    }
  });
}

TEST_P(GlooCollectivesTest, ReduceScatterAlongEveryDim) {
  const int n = GetParam();
  auto comms = makeWorld(n);
  ASSERT_EQ(comms.size(), static_cast<size_t>(n));
  const std::vector<int> ranks = worldRanks(n);
  runRanks(comms, [&](int rank, Communicator &c) {
    for (DType dtype : {DType::F32, DType::BF16, DType::I64})
      for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Avg}) {
        checkReduceScatter(c, ranks, rank, dtype, op, {2 * n, 3}, 0);
        checkReduceScatter(c, ranks, rank, dtype, op, {2, 3 * n}, 1);
        checkReduceScatter(c, ranks, rank, dtype, op, {2, n, 2}, 1);
        checkReduceScatter(c, ranks, rank, dtype, op, {3, 2 * n}, -1);
      }
  });
}

TEST_P(GlooCollectivesTest, AllToAllBetweenEveryPairOfDims) {
  const int n = GetParam();
  auto comms = makeWorld(n);
  ASSERT_EQ(comms.size(), static_cast<size_t>(n));
  const std::vector<int> ranks = worldRanks(n);
  const std::vector<std::pair<int64_t, int64_t>> dims = {
      {0, 0}, {0, 1}, {1, 0}, {1, 2}, {2, 1}, {2, 2}, {-1, 0}};
  runRanks(comms, [&](int rank, Communicator &c) {
    for (DType dtype : {DType::F32, DType::BF16, DType::I64, DType::Bool})
      for (auto [split, concat] : dims)
        checkAllToAll(c, ranks, rank, dtype, {2 * n, n, 3 * n}, split, concat);
  });
}

INSTANTIATE_TEST_SUITE_P(Ranks, GlooCollectivesTest, ::testing::Values(2, 3, 4),
                         [](const ::testing::TestParamInfo<int> &info) {
                           return std::to_string(info.param) + "ranks";
                         });

// Two disjoint groups of a 4-rank world run at the same time, one of them in
// reverse rank order (which is the order of gathered chunks), then a group
// only three ranks use (connected on first use, no prepareGroups) and the
// world again.
TEST(GlooGroupsTest, DisjointGroupsConcurrently) {
  auto comms = makeWorld(4);
  ASSERT_EQ(comms.size(), 4u);
  const std::vector<int> even = {0, 2}, odd = {3, 1}, last = {1, 2, 3};
  runRanks(comms, [&](int rank, Communicator &c) {
    Status s = c.prepareGroups({even, odd, {}});
    ASSERT_TRUE(s.isOk()) << s.message();
    const std::vector<int> &mine = rank % 2 == 0 ? even : odd;
    const int index = rank % 2 == 0 ? rank / 2 : (rank == 3 ? 0 : 1);

    Buffer in(DType::F32, {2, 3}), out(DType::F32, {2, 3});
    in.fill([&](int64_t i) { return valueOf(DType::F32, rank, i); });
    s = c.allReduce(in.ref(), out.ref(), ReduceOp::Sum, mine);
    ASSERT_TRUE(s.isOk()) << s.message();
    for (int64_t i = 0; i < out.numel(); ++i)
      ASSERT_EQ(out.get(i), reference(DType::F32, ReduceOp::Sum, mine, i));

    checkAllGather(c, mine, index, DType::BF16, {2, 3}, 1);
    checkReduceScatter(c, mine, index, DType::I64, ReduceOp::Sum, {2, 4}, 1);
    checkAllToAll(c, mine, index, DType::F32, {4, 2}, 0, 1);

    if (rank != 0) {
      checkAllGather(c, last, rank - 1, DType::F32, {3}, 0);
      checkReduceScatter(c, last, rank - 1, DType::F32, ReduceOp::Max, {6, 2},
                         0);
    }
    checkAllGather(c, {0, 1, 2, 3}, rank, DType::I64, {2, 2}, 0);
  });
}

// A group of one is a local copy for every collective.
TEST(GlooGroupsTest, GroupOfOneCopies) {
  auto comms = makeWorld(2);
  ASSERT_EQ(comms.size(), 2u);
  runRanks(comms, [&](int rank, Communicator &c) {
    checkAllGather(c, {rank}, 0, DType::F32, {2, 3}, 1);
    checkReduceScatter(c, {rank}, 0, DType::BF16, ReduceOp::Sum, {2, 3}, 0);
    checkAllToAll(c, {rank}, 0, DType::I64, {2, 3}, 0, 1);
    Buffer t(DType::F16, {3});
    t.fill([&](int64_t i) { return valueOf(DType::F16, rank, i); });
    Status s = c.allReduce(t.ref(), t.ref(), ReduceOp::Avg, {rank});
    ASSERT_TRUE(s.isOk()) << s.message();
    for (int64_t i = 0; i < t.numel(); ++i)
      ASSERT_EQ(t.get(i), valueOf(DType::F16, rank, i));
  });
}

// Pairs exchange tensors both ways (the receiver posts first on one side,
// the sender on the other), with several dtypes and tags.
TEST(GlooSendRecvTest, PairsExchange) {
  auto comms = makeWorld(4);
  ASSERT_EQ(comms.size(), 4u);
  runRanks(comms, [&](int rank, Communicator &c) {
    const int peer = rank ^ 1;
    for (DType dtype : {DType::F32, DType::BF16, DType::I64, DType::Bool}) {
      Buffer mine(dtype, {3, 4}), theirs(dtype, {3, 4});
      mine.fill([&](int64_t i) { return valueOf(dtype, rank, i); });
      Status s;
      if (rank % 2 == 0) {
        s = c.send(mine.ref(), peer, 7);
        ASSERT_TRUE(s.isOk()) << s.message();
        s = c.recv(theirs.ref(), peer, 8);
      } else {
        s = c.recv(theirs.ref(), peer, 7);
        ASSERT_TRUE(s.isOk()) << s.message();
        s = c.send(mine.ref(), peer, 8);
      }
      ASSERT_TRUE(s.isOk()) << s.message();
      for (int64_t i = 0; i < theirs.numel(); ++i)
        ASSERT_EQ(theirs.get(i), valueOf(dtype, peer, i));
    }
    // Across the pairs too: 0 -> 3, with a tag beyond 32 bits.
    Buffer t(DType::I64, {5});
    if (rank == 0) {
      t.fill([](int64_t i) { return 100.0 + i; });
      Status s = c.send(t.ref(), 3, int64_t(1) << 40);
      ASSERT_TRUE(s.isOk()) << s.message();
    } else if (rank == 3) {
      Status s = c.recv(t.ref(), 0, int64_t(1) << 40);
      ASSERT_TRUE(s.isOk()) << s.message();
      for (int64_t i = 0; i < t.numel(); ++i)
        ASSERT_EQ(t.get(i), 100.0 + i);
    }
  });
}

// Misuse is reported on the calling rank before anything is sent, so these
// need no partner and cannot hang.
TEST(GlooErrorsTest, BadArgumentsAreErrorsNotCrashes) {
  auto comms = makeWorld(2);
  ASSERT_EQ(comms.size(), 2u);
  Communicator &c = *comms[0];
  Buffer a(DType::F32, {2, 3}), b(DType::F32, {2, 3}), i64(DType::I64, {2, 3});
  Buffer wide(DType::F32, {2, 6}), bools(DType::Bool, {2, 3});

  Status s = c.allReduce(a.ref(), i64.ref(), ReduceOp::Sum, {});
  EXPECT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "must have the input's type and size");
  s = c.allReduce(bools.ref(), bools.ref(), ReduceOp::Max, {});
  EXPECT_HAS(s.message(), "bool tensors cannot be reduced");
  s = c.allGather(a.ref(), b.ref(), 0, {});
  EXPECT_HAS(s.message(), "rank 0: all_gather over ranks [0, 1]: gathering "
                          "float32 [2, 3] along dim 0 from 2 ranks makes "
                          "float32 [4, 3], but the output is float32 [2, 3]");
  s = c.allGather(a.ref(), wide.ref(), 2, {});
  EXPECT_HAS(s.message(), "dim 2 is out of range");
  s = c.reduceScatter(b.ref(), a.ref(), ReduceOp::Sum, 1, {});
  EXPECT_HAS(s.message(), "dim 1 of [2, 3] (3) does not split evenly over 2 "
                          "ranks");
  s = c.reduceScatter(a.ref(), b.ref(), ReduceOp::Sum, 0, {});
  EXPECT_HAS(s.message(), "leaves float32 [1, 3] on each, but the output is "
                          "float32 [2, 3]");
  s = c.allToAll(a.ref(), b.ref(), 0, 1, {});
  EXPECT_HAS(s.message(), "makes float32 [1, 6], but the output is float32 "
                          "[2, 3]");
  s = c.allToAll(a.ref(), b.ref(), 1, 0, {});
  EXPECT_HAS(s.message(), "split dim 1 of [2, 3] (3) does not split evenly");
  s = c.allReduce(a.ref(), b.ref(), ReduceOp::Sum, {0, 5});
  EXPECT_HAS(s.message(), "rank 5 is not in this run of 2 ranks");
  s = c.allReduce(a.ref(), b.ref(), ReduceOp::Sum, {0, 0});
  EXPECT_HAS(s.message(), "appears twice");
  s = c.allReduce(a.ref(), b.ref(), ReduceOp::Sum, {1});
  EXPECT_HAS(s.message(), "outside the group");
  s = c.send(a.ref(), 0, 1);
  EXPECT_HAS(s.message(), "the peer must be another rank");
  s = c.recv(a.ref(), 2, 1);
  EXPECT_HAS(s.message(), "the peer must be another rank");
  s = c.prepareGroups({{0, 3}});
  EXPECT_HAS(s.message(), "rank 3 is not in this run");
}

TEST(GlooErrorsTest, CreateRejectsBadArguments) {
  std::unique_ptr<Communicator> comm;
  Status s = createGlooCommunicator(nullptr, 0, 2, std::chrono::seconds(1),
                                    "127.0.0.1", comm);
  EXPECT_HAS(s.message(), "without a rendezvous store");
  std::vector<std::unique_ptr<Communicator>> comms;
  s = createInProcessCommunicators(0, std::chrono::seconds(1), comms);
  EXPECT_HAS(s.message(), "at least one rank");
}

} // namespace
