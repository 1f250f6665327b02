//===- TcpStore.h - A key-value store over TCP for rendezvous ---*- C++ -*-===//
//
// The rendezvous store of a multi-process run: rank 0 serves a small
// key-value table on MASTER_ADDR:MASTER_PORT and every rank (rank 0 too)
// reaches it as a client. Gloo exchanges its pair addresses through it. This
// gloo build has no TCP store of its own, hence this one.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_COMM_TCPSTORE_H
#define COLOSSAL_RUNTIME_COMM_TCPSTORE_H

#include "runtime/core/Types.h"

#include <gloo/rendezvous/store.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace colossal::rt {

/// Where the store is and who this rank is.
struct TcpStoreOptions {
  /// The server's address (a hostname or IPv4 address) as clients reach it.
  std::string host = "127.0.0.1";
  /// The server's port; with `isServer`, 0 binds an ephemeral port.
  int port = 0;
  /// Whether this process runs the server (rank 0 of a run).
  bool isServer = false;
  /// This rank and the number of ranks, for "K of N joined" in errors.
  int rank = 0;
  int worldSize = 1;
  /// How long to keep trying to connect, and the default for get and wait.
  std::chrono::milliseconds timeout = std::chrono::seconds(60);
};

class TcpStoreServer;

/// A gloo rendezvous store backed by a server in rank 0's process. Methods
/// throw gloo::IoException on timeouts and lost connections, which is how
/// gloo's rendezvous expects a store to fail. Thread-safe.
class TcpStore : public gloo::rendezvous::Store {
public:
  /// Starts the server (with `isServer`) and connects to it, retrying until
  /// the timeout; errors say which address could not be reached.
  static Status create(const TcpStoreOptions &options,
                       std::shared_ptr<TcpStore> &out);
  ~TcpStore() override;

  TcpStore(const TcpStore &) = delete;
  TcpStore &operator=(const TcpStore &) = delete;

  /// Stores `data` under `key`, replacing what was there.
  void set(const std::string &key, const std::vector<char> &data) override;
  /// The value of `key`, waiting for it up to the store's timeout.
  std::vector<char> get(const std::string &key) override;
  /// Waits until every key exists, up to the store's timeout.
  void wait(const std::vector<std::string> &keys) override;
  void wait(const std::vector<std::string> &keys,
            const std::chrono::milliseconds &timeout) override;

  /// The port the server listens on (the bound one when 0 was asked for), or
  /// the one this client connected to.
  int port() const { return port_; }
  /// "host:port" as clients reach the server.
  std::string address() const;
  /// How many distinct ranks have connected to the server so far.
  int joinedRanks();
  /// The ranks whose connection to the server has closed (they finished or
  /// died); false when the server itself cannot be reached (rank 0 is gone).
  bool departedRanks(std::vector<int> &out);

private:
  explicit TcpStore(const TcpStoreOptions &options);
  Status connectToServer();
  std::vector<char> request(const std::vector<char> &payload,
                            std::chrono::steady_clock::time_point deadline);
  bool allPresent(const std::vector<std::string> &keys,
                  std::chrono::steady_clock::time_point deadline);
  [[noreturn]] void failWait(const std::vector<std::string> &keys,
                             std::chrono::milliseconds timeout);

  TcpStoreOptions options_;
  int port_ = 0;
  std::unique_ptr<TcpStoreServer> server_;
  int fd_ = -1;
  std::mutex mutex_;
};

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_COMM_TCPSTORE_H
