//===- GlooCommunicator.h - Collectives between CPU processes ---*- C++ -*-===//
//
// The communicator of a multi-process CPU run: Gloo's collectives over its
// TCP transport, one Gloo context for the world and one per rank group, every
// operation bounded by a timeout so a dead or stuck peer is an error, never a
// hang.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_COMM_GLOOCOMMUNICATOR_H
#define COLOSSAL_RUNTIME_COMM_GLOOCOMMUNICATOR_H

#include "runtime/core/Communicator.h"

#include <chrono>
#include <map>

#include <gloo/transport/unbound_buffer.h>
#include <memory>
#include <string>
#include <vector>

namespace gloo {
class Context;
namespace rendezvous {
class Store;
} // namespace rendezvous
namespace transport {
class Device;
} // namespace transport
} // namespace gloo

namespace colossal::rt {

/// Collectives between processes (or threads) over Gloo. Rank groups get
/// their own Gloo contexts, connected by prepareGroups() or on first use.
/// After a failure the group it happened on stays failed (Gloo closes its
/// connections), and later calls on it say so.
class GlooCommunicator final : public Communicator {
public:
  ~GlooCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  Status prepareGroups(const std::vector<RankGroup> &groups) override;

  Status allReduce(const TensorRef &in, const TensorRef &out, ReduceOp op,
                   const RankGroup &group) override;
  Status allGather(const TensorRef &in, const TensorRef &out, int64_t dim,
                   const RankGroup &group) override;
  Status reduceScatter(const TensorRef &in, const TensorRef &out, ReduceOp op,
                       int64_t dim, const RankGroup &group) override;
  Status allToAll(const TensorRef &in, const TensorRef &out, int64_t splitDim,
                  int64_t concatDim, const RankGroup &group) override;
  Status send(const TensorRef &tensor, int peer, int64_t tag) override;
  Status recv(const TensorRef &tensor, int peer, int64_t tag) override;
  Status waitSends() override;

  /// The timeout of every collective and of rendezvous.
  std::chrono::milliseconds timeout() const { return timeout_; }

  /// Keeps `resource` alive as long as this communicator, and destroys it
  /// after the communicator's connections are closed (an MPI session, a
  /// rendezvous directory to clean up).
  void keepAlive(std::shared_ptr<void> resource);

private:
  /// Which peers have left, for a failure message: from the rendezvous
  /// server when it is a TcpStore (`timedOut`: no closed connection to wait
  /// for the server to notice).
  std::string whoLeft(bool timedOut);
  /// send (sending) or recv over the world group, matched by tag.
  Status pointToPoint(bool sending, const TensorRef &tensor, int peer,
                      int64_t tag);
  friend Status
  createGlooCommunicator(std::shared_ptr<gloo::rendezvous::Store> store,
                         int rank, int size, std::chrono::milliseconds timeout,
                         const std::string &hostname,
                         std::unique_ptr<Communicator> &out);

  struct Group;

  GlooCommunicator(std::shared_ptr<gloo::rendezvous::Store> store, int rank,
                   int size, std::chrono::milliseconds timeout);
  Status connectWorld(const std::string &hostname);
  Status normalize(const char *what, const RankGroup &group,
                   std::vector<int> &ranks) const;
  Status findGroup(const char *what, const RankGroup &group, Group *&out);
  Status connectGroup(const std::vector<int> &ranks, Group *&out);
  Status reduceInto(const char *what, Group &g, const void *in, void *out,
                    DType dtype, int64_t count, ReduceOp op);
  template <typename Fn>
  Status guarded(Group &g, const std::string &what, Fn &&fn);
  std::string describe(const char *what, const Group &g) const;

  // Destroyed last: what was attached may have to outlive the connections.
  std::vector<std::shared_ptr<void>> keepAlive_;
  int rank_;
  int size_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<gloo::rendezvous::Store> store_;
  std::shared_ptr<gloo::transport::Device> device_;
  // Keyed by the group's ranks in group order; the world is 0..size-1.
  std::map<std::vector<int>, std::unique_ptr<Group>> groups_;
  // Sends on their way: a copy of the bytes, so the sender's buffer may be
  // reused at once, and the transfer, waited for by waitSends().
  struct PendingSend {
    std::vector<char> bytes;
    std::unique_ptr<gloo::transport::UnboundBuffer> buffer;
    std::string what;
  };
  std::vector<PendingSend> pendingSends_;
};

/// Connects rank `rank` of `size` to the others through `store` (which every
/// rank shares: a TcpStore, or a gloo HashStore/FileStore), listening for
/// peers on `hostname` (an address of this host the peers can reach).
/// Blocks until every rank has connected, at most `timeout`, which also
/// bounds every later operation.
Status createGlooCommunicator(std::shared_ptr<gloo::rendezvous::Store> store,
                              int rank, int size,
                              std::chrono::milliseconds timeout,
                              const std::string &hostname,
                              std::unique_ptr<Communicator> &out);

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_COMM_GLOOCOMMUNICATOR_H
