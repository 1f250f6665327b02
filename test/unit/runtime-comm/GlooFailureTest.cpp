//===- GlooFailureTest.cpp - Timeouts and dead peers are errors -----------===//
//
// A rank that never calls, a rank that exits, a rank killed mid-collective,
// a rank that never starts: each must turn into an error on the others
// within about the timeout (or at once, when the peer's socket closes), and
// never into a hang or a crash.
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/GlooCommunicator.h"
#include "runtime/comm/TcpStore.h"
#include "test/unit/runtime-comm/CommTestUtil.h"

#include <atomic>
#include <csignal>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

using namespace colossal::rt;
using namespace colossal::rt::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Ranks 0 and 1 all-reduce; rank 2 never does. Both callers fail within the
// timeout plus a second and say it timed out; later calls fail at once.
TEST(GlooFailureTest, MissingRankTimesOut) {
  auto comms = makeWorld(3, 500ms);
  ASSERT_EQ(comms.size(), 3u);
  std::atomic<int> finished{0};
  runRanks(comms, [&](int rank, Communicator &c) {
    if (rank == 2) {
      // Stays alive (sockets open) until the others are done, so they see a
      // silent peer, not a closed one.
      while (finished.load() < 2)
        std::this_thread::sleep_for(5ms);
      return;
    }
    Buffer t(DType::F32, {1000});
    auto start = Clock::now();
    Status s = c.allReduce(t.ref(), t.ref(), ReduceOp::Sum, {});
    double took = secondsSince(start);
    finished++;
    EXPECT_FALSE(s.isOk());
    EXPECT_HAS(s.message(), "rank " + std::to_string(rank) +
                                ": all_reduce over ranks [0, 1, 2] timed out");
    EXPECT_HAS(s.message(), "a peer rank has died, hung or runs a different "
                            "plan (timeout 0.5 s, set with --comm-timeout)");
    EXPECT_LT(took, 3.0) << s.message(); // timeout 0.5 s; slack for a loaded CI
    std::printf("rank %d after %.2f s: %s\n", rank, took, s.message().c_str());

    start = Clock::now();
    s = c.allReduce(t.ref(), t.ref(), ReduceOp::Sum, {});
    EXPECT_HAS(s.message(), "an earlier operation on this group failed");
    EXPECT_LT(secondsSince(start), 1.0); // at once, not after the timeout
  });
}

TEST(GlooFailureTest, UnmatchedSendTimesOut) {
  auto comms = makeWorld(2, 400ms);
  ASSERT_EQ(comms.size(), 2u);
  Buffer t(DType::I64, {8});
  auto start = Clock::now();
  // A send returns at once (the bytes are copied); waiting for it times out.
  Status s = comms[0]->send(t.ref(), 1, 3);
  EXPECT_TRUE(s.isOk()) << s.message();
  s = comms[0]->waitSends();
  EXPECT_HAS(s.message(), "rank 0: send to rank 1 (tag 3) timed out");
  EXPECT_LT(secondsSince(start), 3.0);
}

// Two ranks that send to each other at once, then receive, do not deadlock
// (a pipeline's stages do that every micro-batch).
TEST(GlooPointToPointTest, CrossingSendsComplete) {
  auto comms = makeWorld(2, 5000ms);
  ASSERT_EQ(comms.size(), 2u);
  std::vector<std::thread> threads;
  std::vector<std::string> errors(2);
  std::vector<int64_t> got(2, -1);
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      int64_t mine = 100 + r, theirs = -1;
      TensorRef out{&mine, DType::I64, {}}, in{&theirs, DType::I64, {}};
      Status s = comms[r]->send(out, 1 - r, 7);
      mine = -5; // the send took its bytes already
      if (s)
        s = comms[r]->recv(in, 1 - r, 7);
      if (s)
        s = comms[r]->waitSends();
      errors[r] = s ? "" : s.message();
      got[r] = theirs;
    });
  for (auto &t : threads)
    t.join();
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
  EXPECT_EQ(got[0], 101);
  EXPECT_EQ(got[1], 100);
}

// Rank 0 of two starts alone: the rendezvous gives up after the timeout and
// says how many ranks turned up.
TEST(GlooFailureTest, RendezvousWithoutPeersTimesOut) {
  TcpStoreOptions options;
  options.isServer = true;
  options.worldSize = 2;
  options.timeout = 500ms;
  std::shared_ptr<TcpStore> store;
  Status s = TcpStore::create(options, store);
  ASSERT_TRUE(s.isOk()) << s.message();
  std::unique_ptr<Communicator> comm;
  auto start = Clock::now();
  s = createGlooCommunicator(store, 0, 2, 500ms, "127.0.0.1", comm);
  EXPECT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "rank 0: connecting over ranks [0, 1] timed out");
  EXPECT_HAS(s.message(), "not every rank has started (1 of 2 joined)");
  EXPECT_LT(secondsSince(start), 3.0);
  std::printf("%s\n", s.message().c_str());
}

// Ranks launched with different world sizes: the odd one says so, rank 0
// times out rather than connecting to half a world.
TEST(GlooFailureTest, WorldSizeMismatchIsNamed) {
  TcpStoreOptions options;
  options.isServer = true;
  options.worldSize = 2;
  options.timeout = 700ms;
  std::shared_ptr<TcpStore> server, client;
  Status s = TcpStore::create(options, server);
  ASSERT_TRUE(s.isOk()) << s.message();
  options.isServer = false;
  options.port = server->port();
  options.rank = 1;
  s = TcpStore::create(options, client);
  ASSERT_TRUE(s.isOk()) << s.message();
  Status first, second;
  std::unique_ptr<Communicator> a, b;
  std::thread rank0([&] {
    first = createGlooCommunicator(server, 0, 2, 700ms, "127.0.0.1", a);
  });
  second = createGlooCommunicator(client, 1, 3, 700ms, "127.0.0.1", b);
  rank0.join();
  EXPECT_HAS(second.message(), "rank 1: this rank was started for a world of "
                               "3 ranks, rank 0 for 2");
  EXPECT_HAS(first.message(), "rank 0: connecting over ranks [0, 1] timed "
                              "out");
}

//===----------------------------------------------------------------------===//
// A peer in another process
//===----------------------------------------------------------------------===//

enum class ChildFate { Exits, Killed };

/// Rank 1 in a forked child: joins through rank 0's TcpStore, takes part in
/// one all-reduce, then exits or waits to be killed. Never returns.
[[noreturn]] void runChild(int portFd, ChildFate fate) {
  int port = 0;
  if (::read(portFd, &port, sizeof(port)) != sizeof(port))
    ::_exit(2);
  TcpStoreOptions options;
  options.port = port;
  options.rank = 1;
  options.worldSize = 2;
  options.timeout = 10s;
  std::shared_ptr<TcpStore> store;
  std::unique_ptr<Communicator> comm;
  if (!TcpStore::create(options, store) ||
      !createGlooCommunicator(store, 1, 2, 10s, "127.0.0.1", comm))
    ::_exit(3);
  Buffer t(DType::F32, {16});
  if (!comm->allReduce(t.ref(), t.ref(), ReduceOp::Sum, {}))
    ::_exit(4);
  if (fate == ChildFate::Exits)
    ::_exit(0);
  while (true)
    ::pause();
}

/// Rank 0 here, rank 1 in a child; returns the error of the all-reduce after
/// the child has gone, and how long it took.
std::pair<Status, double> collectiveAfterPeerDies(ChildFate fate) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  // Forked before any thread of this process starts, so the child inherits
  // no lock some other thread holds.
  pid_t child = ::fork();
  if (child == 0) {
    ::close(fds[1]);
    runChild(fds[0], fate);
  }
  ::close(fds[0]);
  TcpStoreOptions options;
  options.isServer = true;
  options.worldSize = 2;
  options.timeout = 10s;
  std::shared_ptr<TcpStore> store;
  std::unique_ptr<Communicator> comm;
  Status s = TcpStore::create(options, store);
  int port = store ? store->port() : 0;
  EXPECT_EQ(::write(fds[1], &port, sizeof(port)),
            static_cast<ssize_t>(sizeof(port)));
  ::close(fds[1]);
  if (s)
    s = createGlooCommunicator(store, 0, 2, 10s, "127.0.0.1", comm);
  Buffer t(DType::F32, {16});
  if (s)
    s = comm->allReduce(t.ref(), t.ref(), ReduceOp::Sum, {});
  EXPECT_TRUE(s.isOk()) << s.message();
  if (!s) {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    return {s, 0};
  }
  int status = 0;
  std::thread killer;
  if (fate == ChildFate::Exits) {
    ::waitpid(child, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  } else {
    // Killed while rank 0 is inside the collective, waiting for it.
    killer = std::thread([child] {
      std::this_thread::sleep_for(300ms);
      ::kill(child, SIGKILL);
    });
  }
  auto start = Clock::now();
  Status failed = comm->allReduce(t.ref(), t.ref(), ReduceOp::Sum, {});
  double took = secondsSince(start);
  if (killer.joinable()) {
    killer.join();
    ::waitpid(child, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  }
  return {failed, took};
}

TEST(GlooFailureTest, PeerThatExitedIsAnErrorAtOnce) {
  auto [s, took] = collectiveAfterPeerDies(ChildFate::Exits);
  EXPECT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "rank 0: all_reduce over ranks [0, 1] failed: ");
  // The rendezvous server saw the child's connection close: it is named.
  EXPECT_HAS(s.message(), "rank 1 has left the run (died or exited: the "
                          "connection to the rendezvous closed) (timeout 10 s, "
                          "set with --comm-timeout)");
  EXPECT_LT(took, 5.0); // well inside the 10 s timeout
  std::printf("after %.2f s: %s\n", took, s.message().c_str());
}

TEST(GlooFailureTest, PeerKilledMidCollectiveIsAnError) {
  auto [s, took] = collectiveAfterPeerDies(ChildFate::Killed);
  EXPECT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "rank 0: all_reduce over ranks [0, 1] failed: ");
  // Well before the 10 s timeout: the kernel closes a killed process's
  // sockets, and the survivor sees that.
  EXPECT_LT(took, 5.0);
  std::printf("after %.2f s: %s\n", took, s.message().c_str());
}

} // namespace
