//===- CommWorldCheck.cpp - One rank of a real multi-process run ----------===//
//
// Run under a launcher (mpirun, torchrun-style environment, srun): detects
// the world, connects it, checks one all-reduce and one all-gather, and
// exits non-zero with the error otherwise. ctest runs it under mpirun.
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/Launch.h"

#include <chrono>
#include <cstdio>
#include <vector>

using namespace colossal::rt;

int main() {
  WorldInfo world;
  Status s = detectWorld(world);
  std::unique_ptr<Communicator> comm;
  if (s)
    s = createWorldCommunicator(world, std::chrono::seconds(20), comm);
  if (s && !comm) {
    std::printf("single rank (launcher %s)\n", world.launcher.c_str());
    return 0;
  }
  std::vector<int64_t> sum(3, world.rank + 1), gathered(2 * world.size);
  std::vector<int64_t> mine = {world.rank, 10 * world.rank};
  if (s)
    s = comm->allReduce({sum.data(), DType::I64, {3}},
                        {sum.data(), DType::I64, {3}}, ReduceOp::Sum, {});
  if (s)
    s = comm->allGather({mine.data(), DType::I64, {1, 2}},
                        {gathered.data(), DType::I64, {world.size, 2}}, 0, {});
  if (!s) {
    std::fprintf(stderr, "error: %s\n", s.message().c_str());
    return 1;
  }
  const int64_t expected = int64_t(world.size) * (world.size + 1) / 2;
  for (int64_t v : sum)
    if (v != expected) {
      std::fprintf(stderr, "rank %d: all_reduce gave %lld, not %lld\n",
                   world.rank, static_cast<long long>(v),
                   static_cast<long long>(expected));
      return 1;
    }
  for (int r = 0; r < world.size; ++r)
    if (gathered[2 * r] != r || gathered[2 * r + 1] != 10 * r) {
      std::fprintf(stderr, "rank %d: all_gather is wrong at %d\n", world.rank,
                   r);
      return 1;
    }
  std::printf("rank %d of %d (%s): ok\n", world.rank, world.size,
              world.launcher.c_str());
  return 0;
}
