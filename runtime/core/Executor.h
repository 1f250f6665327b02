//===- Executor.h - Running one rank's program on a backend -----*- C++ -*-===//
//
// Turns a validated rank program into something cheap to run many times: the
// one arena is allocated on the backend, every buffer becomes a tensor view
// into it, parameters and constants are loaded, and each kernel instruction
// has its tensors and attributes resolved up front. run() then only walks
// the instruction list.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_CORE_EXECUTOR_H
#define COLOSSAL_RUNTIME_CORE_EXECUTOR_H

#include "runtime/core/Backend.h"
#include "runtime/core/Communicator.h"
#include "runtime/core/Types.h"
#include "runtime/proto/plan.pb.h"

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace colossal::rt {

class MeshLayout;

class Executor {
public:
  /// Prepares rank program `programIndex` of `plan` (checked by
  /// validatePlan, checkRunnable and checkBackendSupport) on `backend`, for
  /// global rank `rank` of the plan's mesh (its coordinates pick its pieces
  /// of sharded parameters and its collective groups). `comm` (may be null
  /// for one rank) and `backend` must outlive the executor. `planDir`
  /// resolves relative weight paths; `source` names the plan in messages.
  static Status create(const plan::Plan &plan, int programIndex, int rank,
                       Communicator *comm, const std::string &planDir,
                       const std::string &source, Backend &backend,
                       std::unique_ptr<Executor> &out);
  ~Executor();
  Executor(const Executor &) = delete;
  Executor &operator=(const Executor &) = delete;

  /// Runs the program once and waits for it to finish.
  Status run();

  /// The view of buffer `id` into the arena; null if there is none.
  const TensorRef *buffer(int64_t id) const;
  /// Byte range [offset, offset + size) of buffer `id` in the arena.
  std::pair<int64_t, int64_t> bufferRange(int64_t id) const;
  int64_t arenaBytes() const { return arenaBytes_; }
  /// Bytes of the host pool of offloaded buffers (0: none).
  int64_t hostPoolBytes() const {
    return static_cast<int64_t>(hostPool_.size());
  }
  /// Whether buffer `id` lives in the host pool rather than the arena.
  bool isHostBuffer(int64_t id) const { return hostBuffers_.count(id) != 0; }
  Backend &backend() { return backend_; }

  /// With profiling on, every run() records when each instruction started
  /// and ended (at most `maxEvents` in all, the first ones).
  struct Event {
    int step;               // index into the instruction steps
    int64_t run;            // which run()
    int64_t startNs, endNs; // since the executor was made
  };
  void setProfiling(bool on, size_t maxEvents = 2000000) {
    profiling_ = on;
    maxEvents_ = maxEvents;
  }
  const std::vector<Event> &events() const { return events_; }
  /// What step `i` is: its name ("matmul", "all_reduce", "send"), category
  /// ("compute", "collective", "send", "recv", "copy") and where it came from.
  void describeStep(int i, std::string &name, std::string &category,
                    std::string &where) const;
  /// The compiler's predicted seconds for step `i` (the plan's
  /// Instruction.predicted_s), or 0 when the plan records none.
  double predictedSeconds(int i) const {
    return steps_[static_cast<size_t>(i)].predicted;
  }

private:
  Executor(Backend &backend) : backend_(backend) {}
  Status load(const plan::Plan &plan, const plan::RankProgram &program,
              const std::string &planDir, const std::string &source);

  /// A kernel launch, a collective (`collective` set), or (op empty) a
  /// device copy of inputs[0] to outputs[0]: an assignment of training state.
  enum class Collective {
    None,
    AllReduce,
    AllGather,
    ReduceScatter,
    AllToAll,
    Send,
    Recv,
    CopyToHost,   // device buffer -> host pool (offloaded state written back)
    CopyToDevice, // host pool -> device buffer
    RingAttention // attention over a split sequence, blocks passed around
  };
  struct Step {
    std::string op;
    Collective collective = Collective::None;
    ReduceOp reduction = ReduceOp::Sum;
    int64_t dim = 0, concatDim = 0;
    RankGroup group;
    int peer = -1; // Send, Recv
    int64_t tag = 0;
    int position = 0;      // RingAttention: this rank's place in `group`
    bool backward = false; // RingAttention
    bool host = false;     // a kernel or assign over host-pool buffers
    std::vector<TensorRef> inputs;
    std::vector<TensorRef> outputs;
    AttributeMap attributes;
    std::string where;    // "instruction #3 at <location>", for messages
    double predicted = 0; // the plan's predicted seconds, 0: none
  };

  Status addCollective(const plan::Collective &c, const std::string &where,
                       const MeshLayout &mesh);
  Status runCollective(const Step &step);
  Status addRingAttention(const plan::RingAttention &r,
                          const std::string &where, const MeshLayout &mesh);
  Status runRingAttention(const Step &step);
  Status runRingAttentionBackward(const Step &step);
  /// A ring attention step's place in its group and what its block kernels
  /// share; the travelling key/value blocks are the workspace's first.
  struct Ring {
    int n = 0, p = 0, next = 0, prev = 0;
    bool causal = false;
    int64_t block = 0;
    AttributeMap attrs;
    TensorRef kb, vb;
  };
  /// Fills `ring` for `step` (workspace at `cursor`, which advances past
  /// the key/value blocks) and copies this rank's blocks into it.
  Status startRing(const Step &step, char *&cursor, Ring &ring);
  Status runStep(const Step &step);
  Status addPointToPoint(const plan::SendRecv &sr, bool sending,
                         const std::string &where, const MeshLayout &mesh);

  /// Where host kernels run: the device backend when it is the CPU's,
  /// else a CPU backend made on first use.
  Status hostBackend(Backend *&out);

  Backend &backend_;
  std::unique_ptr<Backend> ownHostBackend_;
  Communicator *comm_ = nullptr;
  int rank_ = 0;
  void *arena_ = nullptr;
  int64_t arenaBytes_ = 0;
  std::unordered_map<int64_t, TensorRef> buffers_;
  std::unordered_map<int64_t, std::pair<int64_t, int64_t>> ranges_;
  std::vector<Step> steps_;
  // Offloaded buffers: one host allocation, planned like the arena.
  std::vector<char> hostPool_;
  std::unordered_map<int64_t, bool> hostBuffers_;
  bool profiling_ = false;
  size_t maxEvents_ = 0;
  int64_t runs_ = 0;
  std::vector<Event> events_;
  std::chrono::steady_clock::time_point created_ =
      std::chrono::steady_clock::now();
};

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_CORE_EXECUTOR_H
