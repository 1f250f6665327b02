//===- LaunchTest.cpp - Worlds from launcher environments -----------------===//

#include "runtime/comm/Launch.h"
#include "test/unit/runtime-comm/CommTestUtil.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace colossal::rt;
using namespace colossal::rt::test;
using namespace std::chrono_literals;

namespace {

const char *const kVariables[] = {"RANK",
                                  "WORLD_SIZE",
                                  "LOCAL_RANK",
                                  "MASTER_ADDR",
                                  "MASTER_PORT",
                                  "COLOSSAL_LAUNCHER",
                                  "SLURM_PROCID",
                                  "SLURM_NTASKS",
                                  "SLURM_NPROCS",
                                  "SLURM_LOCALID",
                                  "OMPI_COMM_WORLD_RANK",
                                  "OMPI_COMM_WORLD_SIZE",
                                  "OMPI_COMM_WORLD_LOCAL_RANK",
                                  "OMPI_COMM_WORLD_LOCAL_SIZE",
                                  "PMIX_NAMESPACE",
                                  "OMPI_MCA_ess_base_jobid",
                                  "COLOSSAL_COMM_HOST"};

/// Starts every test from an environment without launcher variables (ctest
/// may itself run under one) and puts the original back afterwards.
class LaunchTest : public ::testing::Test {
protected:
  void SetUp() override {
    for (const char *name : kVariables) {
      if (const char *v = std::getenv(name))
        saved_[name] = v;
      ::unsetenv(name);
    }
  }
  void TearDown() override {
    for (const char *name : kVariables) {
      auto it = saved_.find(name);
      if (it != saved_.end())
        ::setenv(name, it->second.c_str(), 1);
      else
        ::unsetenv(name);
    }
  }
  static void set(const char *name, const char *value) {
    ::setenv(name, value, 1);
  }
  static Status detect(WorldInfo &w) { return detectWorld(w); }
  static std::string detectError() {
    WorldInfo w;
    Status s = detectWorld(w);
    EXPECT_FALSE(s.isOk());
    return s.message();
  }

private:
  std::map<std::string, std::string> saved_;
};

TEST_F(LaunchTest, NoLauncherIsOneRank) {
  WorldInfo w;
  w.rank = 5;
  ASSERT_TRUE(detect(w).isOk());
  EXPECT_EQ(w.rank, 0);
  EXPECT_EQ(w.size, 1);
  EXPECT_EQ(w.launcher, "single");
}

TEST_F(LaunchTest, Torchrun) {
  set("RANK", "3");
  set("WORLD_SIZE", "4");
  set("LOCAL_RANK", "1");
  set("MASTER_ADDR", "node0");
  set("MASTER_PORT", "29500");
  WorldInfo w;
  Status s = detect(w);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(w.rank, 3);
  EXPECT_EQ(w.size, 4);
  EXPECT_EQ(w.localRank, 1);
  EXPECT_EQ(w.masterAddr, "node0");
  EXPECT_EQ(w.masterPort, 29500);
  EXPECT_EQ(w.launcher, "torchrun");

  set("COLOSSAL_LAUNCHER", "colossal-run");
  ASSERT_TRUE(detect(w).isOk());
  EXPECT_EQ(w.launcher, "colossal-run");
}

TEST_F(LaunchTest, TorchrunBadValuesNameTheVariable) {
  set("RANK", "abc");
  set("WORLD_SIZE", "2");
  set("MASTER_ADDR", "127.0.0.1");
  set("MASTER_PORT", "29500");
  EXPECT_HAS(detectError(), "environment variable RANK='abc' is not an "
                            "integer");
  set("RANK", "2");
  EXPECT_HAS(detectError(), "RANK=2 is not in [0, WORLD_SIZE=2)");
  set("RANK", "0");
  set("WORLD_SIZE", "0");
  EXPECT_HAS(detectError(), "WORLD_SIZE=0 must be at least 1");
  set("WORLD_SIZE", "2x");
  EXPECT_HAS(detectError(), "WORLD_SIZE='2x' is not an integer");
  set("WORLD_SIZE", "99999999999");
  EXPECT_HAS(detectError(), "is not an integer");
  set("WORLD_SIZE", "2");
  set("LOCAL_RANK", "-1");
  EXPECT_HAS(detectError(), "LOCAL_RANK=-1 is not in [0, WORLD_SIZE=2)");
  ::unsetenv("LOCAL_RANK");
  set("MASTER_PORT", "70000");
  EXPECT_HAS(detectError(), "MASTER_PORT=70000 is not a TCP port");
  ::unsetenv("MASTER_PORT");
  EXPECT_HAS(detectError(), "MASTER_PORT is not set, but MASTER_ADDR is");
  ::unsetenv("MASTER_ADDR");
  EXPECT_HAS(detectError(), "MASTER_ADDR is not set");
  ::unsetenv("WORLD_SIZE");
  EXPECT_HAS(detectError(), "WORLD_SIZE is not set, but RANK is");
}

TEST_F(LaunchTest, Slurm) {
  set("SLURM_PROCID", "2");
  set("SLURM_NTASKS", "4");
  set("SLURM_LOCALID", "0");
  EXPECT_HAS(detectError(), "scontrol show hostnames");
  set("MASTER_ADDR", "node0");
  set("MASTER_PORT", "29500");
  WorldInfo w;
  Status s = detect(w);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(w.rank, 2);
  EXPECT_EQ(w.size, 4);
  EXPECT_EQ(w.launcher, "slurm");
  set("SLURM_LOCALID", "x");
  EXPECT_HAS(detectError(), "SLURM_LOCALID='x' is not an integer");

  // One task needs no rendezvous address.
  ::unsetenv("MASTER_ADDR");
  ::unsetenv("MASTER_PORT");
  set("SLURM_LOCALID", "0");
  set("SLURM_PROCID", "0");
  set("SLURM_NTASKS", "1");
  ASSERT_TRUE(detect(w).isOk());
  EXPECT_EQ(w.size, 1);
}

TEST_F(LaunchTest, OpenMpi) {
  set("OMPI_COMM_WORLD_RANK", "1");
  set("OMPI_COMM_WORLD_SIZE", "2");
  set("OMPI_COMM_WORLD_LOCAL_RANK", "1");
  WorldInfo w;
  Status s = detect(w);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(w.rank, 1);
  EXPECT_EQ(w.size, 2);
  EXPECT_EQ(w.localRank, 1);
  EXPECT_EQ(w.launcher, "mpi");
  EXPECT_TRUE(w.masterAddr.empty());

  // mpirun inside a Slurm allocation: OpenMPI's numbering is the one.
  set("SLURM_PROCID", "0");
  set("SLURM_NTASKS", "1");
  ASSERT_TRUE(detect(w).isOk());
  EXPECT_EQ(w.launcher, "mpi");
  EXPECT_EQ(w.rank, 1);

  set("OMPI_COMM_WORLD_RANK", "7");
  EXPECT_HAS(detectError(),
             "OMPI_COMM_WORLD_RANK=7 is not in [0, OMPI_COMM_WORLD_SIZE=2)");
}

TEST_F(LaunchTest, OneRankNeedsNoCommunicator) {
  WorldInfo w;
  std::unique_ptr<Communicator> comm;
  Status s = createWorldCommunicator(w, 1s, comm);
  EXPECT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(comm, nullptr);
}

/// Two ranks (as threads) connect through createWorldCommunicator and
/// all-reduce once.
void connectAndReduce(std::vector<WorldInfo> worlds) {
  std::vector<std::unique_ptr<Communicator>> comms(worlds.size());
  std::vector<Status> statuses(worlds.size());
  std::vector<std::thread> threads;
  for (size_t r = 0; r < worlds.size(); ++r)
    threads.emplace_back([&, r] {
      statuses[r] = createWorldCommunicator(worlds[r], 5s, comms[r]);
    });
  for (std::thread &t : threads)
    t.join();
  for (const Status &s : statuses)
    ASSERT_TRUE(s.isOk()) << s.message();
  runRanks(comms, [&](int rank, Communicator &c) {
    EXPECT_EQ(c.rank(), rank);
    EXPECT_EQ(c.size(), static_cast<int>(worlds.size()));
    Buffer t(DType::I32, {4});
    t.fill([&](int64_t) { return rank + 1; });
    Status s = c.allReduce(t.ref(), t.ref(), ReduceOp::Sum, {});
    ASSERT_TRUE(s.isOk()) << s.message();
    EXPECT_EQ(t.get(0), 3);
  });
}

TEST_F(LaunchTest, WorldThroughMasterAddr) {
  std::vector<WorldInfo> worlds(2);
  int port = unusedPort();
  for (int r = 0; r < 2; ++r) {
    worlds[r].rank = r;
    worlds[r].size = 2;
    worlds[r].masterAddr = r == 0 ? "127.0.0.1" : "localhost";
    worlds[r].masterPort = port;
    worlds[r].launcher = "torchrun";
  }
  connectAndReduce(worlds);
}

TEST_F(LaunchTest, WithoutMasterAddrIsAnError) {
  WorldInfo w;
  w.size = 2;
  w.launcher = "torchrun";
  std::unique_ptr<Communicator> comm;
  Status s = createWorldCommunicator(w, 1s, comm);
  EXPECT_HAS(s.message(), "rank 0 of 2: no rendezvous address; export "
                          "MASTER_ADDR");
}

#ifndef COLOSSAL_HAVE_MPI
// mpirun on one node without MASTER_ADDR: the ranks meet in a directory
// named after the job, removed once all are done.
TEST_F(LaunchTest, OneNodeMpiMeetsThroughFiles) {
  std::string job = "colossal-test-" + std::to_string(::getpid());
  set("PMIX_NAMESPACE", job.c_str());
  set("OMPI_COMM_WORLD_LOCAL_SIZE", "2");
  std::vector<WorldInfo> worlds(2);
  for (int r = 0; r < 2; ++r) {
    worlds[r].rank = r;
    worlds[r].size = 2;
    worlds[r].launcher = "mpi";
  }
  connectAndReduce(worlds);
  EXPECT_FALSE(std::filesystem::exists("/tmp/colossal-rdzv-" + job));
}

TEST_F(LaunchTest, MultiNodeMpiWithoutMasterAddrIsAnError) {
  set("OMPI_COMM_WORLD_LOCAL_SIZE", "1");
  WorldInfo w;
  w.rank = 1;
  w.size = 2;
  w.launcher = "mpi";
  std::unique_ptr<Communicator> comm;
  Status s = createWorldCommunicator(w, 1s, comm);
  EXPECT_HAS(s.message(), "span several nodes");
  EXPECT_HAS(s.message(), "-DCOLOSSAL_ENABLE_MPI=ON");
}
#endif

} // namespace
