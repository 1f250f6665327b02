//===- Runtime.h - The C++ embedding API of the runtime --------*- C++ -*-===//
//
// Load a compiled plan (.cplan), create a session on a backend, set inputs,
// run, read outputs. A Plan is immutable and may be shared by sessions on
// several threads; a Session is used from one thread at a time. No call
// throws: each returns a Status whose message says what went wrong and what
// to do. The C API (colossal.h) wraps this one.
//
//   std::shared_ptr<colossal::Plan> plan;
//   if (auto s = colossal::Plan::load("model.cplan", plan); !s) fail(s);
//   std::unique_ptr<colossal::Session> session;
//   colossal::Session::create(plan, {/*threads=*/4}, session);
//   session->setInput("x", {xData, colossal::DType::F32, {4, 3}});
//   session->run();
//   colossal::TensorRef y;
//   session->output("y", y); // a view, valid until the next setInput/run
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_INCLUDE_COLOSSAL_RUNTIME_H
#define COLOSSAL_RUNTIME_INCLUDE_COLOSSAL_RUNTIME_H

#include "runtime/core/HostTensor.h"
#include "runtime/core/Types.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace colossal {

using rt::DType;
using rt::Status;
using rt::TensorRef;

namespace plan {
class Plan;
} // namespace plan
namespace rt {
class Communicator;
} // namespace rt

/// A model input or output as the plan declares it.
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;

  size_t bytes() const {
    return static_cast<size_t>(rt::numElements(shape)) * rt::dtypeSize(dtype);
  }
};

/// A loaded and validated plan.
class Plan {
public:
  /// Reads, checks (header, checksum, version) and validates the plan file at
  /// `path`. Weights are read later, by Session::create, relative to the
  /// plan's directory.
  static Status load(const std::string &path, std::shared_ptr<Plan> &out);
  /// Validates an in-memory plan; relative weight paths resolve against
  /// `baseDir`.
  static Status fromProto(const plan::Plan &proto, const std::string &baseDir,
                          std::shared_ptr<Plan> &out);
  ~Plan();
  Plan(const Plan &) = delete;
  Plan &operator=(const Plan &) = delete;

  const std::vector<TensorInfo> &inputs() const;
  const std::vector<TensorInfo> &outputs() const;
  /// Index of the input/output `name`, or -1.
  int findInput(const std::string &name) const;
  int findOutput(const std::string &name) const;
  /// Bytes of the one device allocation a session of rank `rank` makes
  /// (the ranks of a pipeline's stages run different programs).
  int64_t arenaBytes(int rank = 0) const;
  /// The largest of them.
  int64_t largestArenaBytes() const;
  /// Ranks the plan runs on (the product of its mesh) and its mesh as text
  /// ("dp=4").
  int64_t numRanks() const;
  std::string meshDescription() const;
  /// Whether a run of `ranks` ranks can execute the plan; the error says how
  /// to launch it (`launcher` names where the world came from, for it).
  Status checkWorld(int64_t ranks, const std::string &launcher = "") const;
  /// Who wrote the plan ("colossal-opt 0.1.0"), "infer" or "train", and
  /// where it was loaded from.
  const std::string &producer() const;
  const std::string &mode() const;
  const std::string &source() const;

  /// The underlying protobuf message, for tools.
  const plan::Plan &proto() const;

private:
  Plan();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  friend class Session;
};

/// A parameter of the plan: a model weight, or (in a train plan) state the
/// optimizer keeps. `shape` is the whole parameter; `pieceShape` the part
/// this rank holds (equal unless the plan splits it over ranks).
struct ParameterInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<int64_t> pieceShape;
  bool optimizerState = false;

  size_t bytes() const {
    return static_cast<size_t>(rt::numElements(shape)) * rt::dtypeSize(dtype);
  }
};

/// Where Session::writeProfile puts the per-instruction summary of the
/// trace at `tracePath`: "trace.rank0.json" -> "trace.rank0.summary.json".
std::string profileSummaryPath(const std::string &tracePath);

struct SessionOptions {
  /// Kernel threads; <= 0 keeps the backend's default.
  int threads = 0;
  /// Registered backend name: "cpu", or "cuda" in builds that have it
  /// (rt::defaultBackendName() picks cuda when a GPU is present).
  std::string backend = "cpu";
  /// Which device of the backend (a CUDA ordinal); must be 0 on the CPU.
  int device = 0;
  /// This session's global rank, and how it talks to the others: required
  /// when the plan has more than one rank (its size must be the plan's).
  int rank = 0;
  std::shared_ptr<rt::Communicator> communicator;
  /// Record when each instruction of every run starts and ends (for
  /// writeProfile).
  bool profile = false;
};

/// One instance of a plan on a device: its arena, parameters and IO.
class Session {
public:
  /// Creates the backend, checks it implements every op, allocates the arena
  /// (the only device allocation) and loads parameters and constants.
  static Status create(std::shared_ptr<const Plan> plan,
                       const SessionOptions &options,
                       std::unique_ptr<Session> &out);
  ~Session();
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  const Plan &plan() const;
  const char *backendName() const;

  /// Copies `tensor` (host memory) into the input's arena buffer. Its dtype
  /// and shape must match the plan's (the whole input: a rank of a split
  /// plan keeps its piece). Inputs must be set before every run():
  /// the plan may reuse their memory once they are consumed.
  Status setInput(const std::string &name, const TensorRef &tensor);
  /// Runs the program; fails naming any input not set since the last run.
  Status run();
  /// A view of output `name` in the arena (device memory; host memory on the
  /// CPU backend), valid until the next setInput or run.
  Status output(const std::string &name, TensorRef &out) const;
  /// Copies output `name` to host memory; `bytes` must be its exact size.
  Status copyOutput(const std::string &name, void *dst, size_t bytes) const;

  /// The plan's parameters, in plan order. A train plan updates them in
  /// place on every optimizer step; reading and writing them is how a
  /// training loop checkpoints and resumes. Reads and writes take whole
  /// tensors; in a session of several ranks, reading a parameter split over
  /// ranks gathers it (collective: every rank reads the same parameters in
  /// the same order), and writing keeps this rank's piece.
  const std::vector<ParameterInfo> &parameters() const;
  /// Copies parameter `name` to host memory; `bytes` must be its exact size.
  Status readParameter(const std::string &name, void *dst, size_t bytes) const;
  /// Overwrites parameter `name` from host memory (exact size).
  Status writeParameter(const std::string &name, const void *src, size_t bytes);

  /// Writes every parameter (weights and optimizer state) and `metadata` to
  /// a safetensors file at `path`, atomically: a crash leaves the old file
  /// or the new one, never a torn one. Tensors are whole whatever the mesh.
  /// In a session of several ranks this is collective (every rank calls it
  /// with the same path; `path`'s directory must be shared by the ranks):
  /// each rank writes the pieces it owns, without gathering them.
  Status
  saveParameters(const std::string &path,
                 const std::map<std::string, std::string> &metadata = {}) const;
  /// Reads a safetensors file written by saveParameters (or any with
  /// exactly the plan's parameters, types and shapes) into the session;
  /// `metadata` (may be null) receives its string metadata. On a mismatch
  /// nothing is written and the message names the parameter.
  Status loadParameters(const std::string &path,
                        std::map<std::string, std::string> *metadata = nullptr);
  /// Sets every parameter from `tensors` (named, typed host tensors), after
  /// checking that they are exactly the plan's; `source` names them in
  /// messages.
  Status restoreParameters(const std::vector<rt::HostTensor> &tensors,
                           const std::string &source);

  /// The most device memory this session's backend has held at once; equals
  /// the plan's arena size.
  size_t peakDeviceBytes() const;
  /// Device memory in use as the device reports it (CUDA: cudaMemGetInfo),
  /// -1 on backends whose device reports nothing more (the CPU).
  int64_t measuredDeviceBytes() const;

  /// With SessionOptions::profile: writes this rank's runs as a Chrome trace
  /// (chrome://tracing, Perfetto) to `path`, one event per instruction
  /// (compute, collective, send, recv, copy), and fills `summary` with the
  /// seconds each category took over the runs after the first (the first
  /// warms up), per run, and the share of a run spent waiting in receives
  /// (a pipeline's bubble).
  /// Beside the trace it writes a per-instruction summary
  /// (profileSummaryPath): each instruction's measured seconds per run next
  /// to the compiler's prediction (Instruction.predicted_s), also summed per
  /// op kind, slowest first; `summary` gets the totals and per-op sums
  /// ("predicted_s_per_run", "op.measured_s.<op>", "op.predicted_s.<op>").
  Status writeProfile(const std::string &path,
                      std::map<std::string, double> *summary = nullptr) const;

private:
  /// saveParameters of a session of several ranks: each rank writes the
  /// pieces it owns into one temporary file, which rank 0 then renames.
  Status saveParametersTogether(
      const std::string &path,
      const std::map<std::string, std::string> &metadata) const;

  Session();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace colossal

#endif // COLOSSAL_RUNTIME_INCLUDE_COLOSSAL_RUNTIME_H
