//===- TcpStoreTest.cpp - The TCP rendezvous store ------------------------===//

#include "runtime/comm/TcpStore.h"
#include "test/unit/runtime-comm/CommTestUtil.h"

#include <gloo/common/error.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace colossal::rt;
using namespace colossal::rt::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

std::vector<char> bytes(const std::string &s) {
  return std::vector<char>(s.begin(), s.end());
}

std::string text(const std::vector<char> &v) {
  return std::string(v.begin(), v.end());
}

std::shared_ptr<TcpStore> makeStore(bool server, int port, int rank,
                                    std::chrono::milliseconds timeout = 2s,
                                    int worldSize = 2) {
  TcpStoreOptions options;
  options.isServer = server;
  options.port = port;
  options.rank = rank;
  options.worldSize = worldSize;
  options.timeout = timeout;
  std::shared_ptr<TcpStore> store;
  Status s = TcpStore::create(options, store);
  EXPECT_TRUE(s.isOk()) << s.message();
  return store;
}

TEST(TcpStoreTest, SetGetWaitAcrossClients) {
  auto server = makeStore(true, 0, 0);
  ASSERT_TRUE(server);
  EXPECT_GT(server->port(), 0);
  auto client = makeStore(false, server->port(), 1);
  ASSERT_TRUE(client);
  EXPECT_EQ(client->address(), "127.0.0.1:" + std::to_string(server->port()));

  client->set("a", bytes("hello"));
  EXPECT_EQ(text(server->get("a")), "hello");
  server->set("a", bytes("again"));
  EXPECT_EQ(text(client->get("a")), "again");
  // Empty and large values survive the trip.
  server->set("empty", {});
  EXPECT_TRUE(client->get("empty").empty());
  std::vector<char> big(3 << 20);
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>(i * 7);
  client->set("big", big);
  EXPECT_EQ(server->get("big"), big);
  EXPECT_EQ(server->joinedRanks(), 2);

  // get and wait block until another client sets the key.
  std::thread late([&] {
    std::this_thread::sleep_for(100ms);
    client->set("late", bytes("x"));
    client->set("later", bytes("y"));
  });
  auto start = Clock::now();
  EXPECT_EQ(text(server->get("late")), "x");
  server->wait({"late", "later"}, 1s);
  EXPECT_GE(Clock::now() - start, 90ms);
  late.join();
}

TEST(TcpStoreTest, WaitTimesOutWithWhoJoined) {
  auto server = makeStore(true, 0, 0, 2s, 3);
  ASSERT_TRUE(server);
  auto start = Clock::now();
  try {
    server->wait({"never", "nor-this"}, 300ms);
    ADD_FAILURE() << "wait returned";
  } catch (const gloo::IoException &e) {
    EXPECT_HAS(e.what(),
               "rendezvous with 127.0.0.1:" + std::to_string(server->port()) +
                   " timed out after 0.3 s waiting for key(s) "
                   "'never', 'nor-this': not every rank has "
                   "started (1 of 3 joined)");
  }
  auto took = Clock::now() - start;
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 3s);

  // get waits the store's own timeout.
  auto quick = makeStore(false, server->port(), 1, 200ms, 3);
  ASSERT_TRUE(quick);
  EXPECT_THROW(quick->get("never"), gloo::IoException);
}

TEST(TcpStoreTest, ConnectGivesUpAfterTheTimeout) {
  int port = unusedPort();
  TcpStoreOptions options;
  options.port = port;
  options.rank = 3;
  options.timeout = 300ms;
  std::shared_ptr<TcpStore> store;
  auto start = Clock::now();
  Status s = TcpStore::create(options, store);
  EXPECT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "rank 3: cannot reach the rendezvous server at "
                          "127.0.0.1:" +
                              std::to_string(port));
  EXPECT_HAS(s.message(), "MASTER_ADDR and MASTER_PORT");
  EXPECT_LT(Clock::now() - start, 3s);

  options.port = 0;
  s = TcpStore::create(options, store);
  EXPECT_HAS(s.message(), "is not a TCP port");
}

// A client that starts before the server keeps trying until it is up.
TEST(TcpStoreTest, ClientRetriesUntilTheServerStarts) {
  int port = unusedPort();
  std::shared_ptr<TcpStore> client;
  std::thread early([&] { client = makeStore(false, port, 1, 3s); });
  std::this_thread::sleep_for(200ms);
  auto server = makeStore(true, port, 0);
  early.join();
  ASSERT_TRUE(server && client);
  client->set("k", bytes("v"));
  EXPECT_EQ(text(server->get("k")), "v");
}

TEST(TcpStoreTest, PortInUseIsAnError) {
  auto server = makeStore(true, 0, 0);
  ASSERT_TRUE(server);
  TcpStoreOptions options;
  options.isServer = true;
  options.port = server->port();
  std::shared_ptr<TcpStore> second;
  Status s = TcpStore::create(options, second);
  EXPECT_HAS(s.message(), "cannot serve the rendezvous store on port " +
                              std::to_string(server->port()));
  EXPECT_HAS(s.message(), "pick another");
}

// When rank 0 (and its server) goes away, clients get an error, quickly.
TEST(TcpStoreTest, LostServerIsAnError) {
  auto server = makeStore(true, 0, 0, 5s);
  ASSERT_TRUE(server);
  auto client = makeStore(false, server->port(), 1, 5s);
  ASSERT_TRUE(client);
  server.reset();
  auto start = Clock::now();
  try {
    client->get("missing");
    ADD_FAILURE() << "get returned";
  } catch (const gloo::IoException &e) {
    EXPECT_HAS(e.what(), "has rank 0 exited or failed?");
  }
  EXPECT_LT(Clock::now() - start, 3s);
  EXPECT_THROW(client->set("k", bytes("v")), gloo::IoException);
}

} // namespace
