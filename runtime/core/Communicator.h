//===- Communicator.h - Collectives and point-to-point ops -----*- C++ -*-===//
//
// The one interface the executor uses to talk to other ranks: collectives over
// a group of ranks (the ranks along some mesh axes) and tagged send/recv.
// Implementations: a single-rank one here (every collective is a copy);
// in-process threads, MPI and NCCL come later behind the same interface.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_CORE_COMMUNICATOR_H
#define COLOSSAL_RUNTIME_CORE_COMMUNICATOR_H

#include "runtime/core/Types.h"

#include <memory>
#include <vector>

namespace colossal::rt {

class Backend;

enum class ReduceOp { Sum, Prod, Max, Min, Avg };

/// Ranks taking part in a collective, as global ranks in group order; the
/// calling rank is one of them. Empty means all ranks.
using RankGroup = std::vector<int>;

/// Collectives over device tensors. Calls are collective: every rank of the
/// group makes the same call, in the same order. Not thread-safe.
class Communicator {
public:
  virtual ~Communicator() = default;

  /// This process's global rank and the number of ranks.
  virtual int rank() const = 0;
  virtual int size() const = 0;

  /// out = reduction of `in` over the group (in == out allowed).
  virtual Status allReduce(const TensorRef &in, const TensorRef &out,
                           ReduceOp op, const RankGroup &group) = 0;
  /// out = the group's `in` tensors concatenated along `dim`, in group order.
  virtual Status allGather(const TensorRef &in, const TensorRef &out,
                           int64_t dim, const RankGroup &group) = 0;
  /// out = this rank's slice along `dim` of the reduction of `in`.
  virtual Status reduceScatter(const TensorRef &in, const TensorRef &out,
                               ReduceOp op, int64_t dim,
                               const RankGroup &group) = 0;
  /// Splits `in` along `splitDim` into one chunk per rank, exchanges them,
  /// and concatenates what arrives along `concatDim`.
  virtual Status allToAll(const TensorRef &in, const TensorRef &out,
                          int64_t splitDim, int64_t concatDim,
                          const RankGroup &group) = 0;
  /// Point-to-point; matched by (peer, tag). A send may return before the
  /// peer receives (the bytes are taken at once: the tensor may be reused);
  /// waitSends() waits for every send made so far. A recv waits.
  virtual Status send(const TensorRef &tensor, int peer, int64_t tag) = 0;
  virtual Status recv(const TensorRef &tensor, int peer, int64_t tag) = 0;
  virtual Status waitSends() { return Status::ok(); }

  /// Sets up the groups this rank belongs to before their first collective,
  /// so connection failures surface at startup rather than mid-step. Every
  /// rank passes the same list in the same order (groups it is not in are
  /// skipped). Optional: collectives set up an unprepared group on first use.
  virtual Status prepareGroups(const std::vector<RankGroup> &groups) {
    (void)groups;
    return Status::ok();
  }
};

/// The communicator of a one-rank world: collectives copy `in` to `out` on
/// `backend` (which must outlive it); send/recv have no peer and fail.
std::unique_ptr<Communicator> createSingleRankCommunicator(Backend &backend);

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_CORE_COMMUNICATOR_H
