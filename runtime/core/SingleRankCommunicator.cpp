//===- SingleRankCommunicator.cpp - The communicator of one rank ----------===//
//
// With one rank every collective is the identity: the reduction of one
// tensor is itself, gathering or scattering over one rank keeps the whole
// tensor. Shapes and groups are still checked, so a plan made for more ranks
// fails with a message rather than silently computing something else.
//
//===----------------------------------------------------------------------===//

#include "runtime/core/Backend.h"
#include "runtime/core/Communicator.h"

namespace colossal::rt {
namespace {

class SingleRankCommunicator final : public Communicator {
public:
  explicit SingleRankCommunicator(Backend &backend) : backend_(backend) {}

  int rank() const override { return 0; }
  int size() const override { return 1; }

  Status allReduce(const TensorRef &in, const TensorRef &out, ReduceOp,
                   const RankGroup &group) override {
    return identity("all_reduce", in, out, group);
  }
  Status allGather(const TensorRef &in, const TensorRef &out, int64_t,
                   const RankGroup &group) override {
    return identity("all_gather", in, out, group);
  }
  Status reduceScatter(const TensorRef &in, const TensorRef &out, ReduceOp,
                       int64_t, const RankGroup &group) override {
    return identity("reduce_scatter", in, out, group);
  }
  Status allToAll(const TensorRef &in, const TensorRef &out, int64_t, int64_t,
                  const RankGroup &group) override {
    return identity("all_to_all", in, out, group);
  }
  Status send(const TensorRef &, int peer, int64_t) override {
    return noPeer("send to", peer);
  }
  Status recv(const TensorRef &, int peer, int64_t) override {
    return noPeer("receive from", peer);
  }

private:
  Status identity(const char *what, const TensorRef &in, const TensorRef &out,
                  const RankGroup &group) {
    for (int r : group)
      if (r != 0)
        return Status::error(std::string(what) + " over a group with rank " +
                             std::to_string(r) +
                             " in a single-rank world; the plan was made for "
                             "more devices than this run has");
    if (in.dtype != out.dtype || in.bytes() != out.bytes())
      return Status::error(std::string(what) +
                           " on one rank needs input and output of the same "
                           "type and size");
    return backend_.copyOnDevice(out.data, in.data, in.bytes());
  }
  Status noPeer(const char *what, int peer) {
    return Status::error("cannot " + std::string(what) + " rank " +
                         std::to_string(peer) +
                         ": this is a single-rank world; the plan was made "
                         "for more devices than this run has");
  }

  Backend &backend_;
};

} // namespace

std::unique_ptr<Communicator> createSingleRankCommunicator(Backend &backend) {
  return std::make_unique<SingleRankCommunicator>(backend);
}

} // namespace colossal::rt
