//===- Runtime.cpp - The C++ embedding API --------------------------------===//
//
// Plan: the file, checked and validated, with its IO metadata. Session: a
// backend, an executor over the plan's one rank, and the bookkeeping that
// makes IO safe when the compiler lets buffers share memory (inputs are
// consumed by each run; outputs are invalidated by inputs written over them).
//
//===----------------------------------------------------------------------===//

#include "runtime/include/colossal/Runtime.h"

#include "runtime/core/Backend.h"
#include "runtime/core/Communicator.h"
#include "runtime/core/Executor.h"
#include "runtime/core/FileIO.h"
#include "runtime/core/MeshLayout.h"
#include "runtime/core/PlanFile.h"
#include "runtime/core/PlanTypes.h"
#include "runtime/core/PlanValidator.h"
#include "runtime/core/Safetensors.h"
#include "runtime/core/WeightLoader.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <new>
#include <system_error>
#include <unistd.h>
#include <unordered_map>

namespace colossal {

//===----------------------------------------------------------------------===//
// Plan
//===----------------------------------------------------------------------===//

template <typename List>
static void collectInfo(const List &bindings, std::vector<TensorInfo> &infos,
                        std::unordered_map<std::string, int> &index) {
  for (const plan::Binding &b : bindings) {
    TensorInfo info;
    info.name = b.name();
    rt::toDType(b.type().dtype(), info.dtype);
    info.shape = rt::shapeOf(b.type());
    index.emplace(info.name, static_cast<int>(infos.size()));
    infos.push_back(std::move(info));
  }
}

struct Plan::Impl {
  plan::Plan proto;
  std::string baseDir;
  std::string source;
  std::vector<TensorInfo> inputs, outputs;
  std::unordered_map<std::string, int> inputIndex, outputIndex;

  /// Validates `proto` (named `source` in messages) for this runtime and
  /// indexes its inputs and outputs.
  Status validateAndIndex() {
    if (Status s = rt::validatePlan(proto, source); !s)
      return s;
    if (Status s = rt::checkRunnable(proto, source); !s)
      return s;
    collectInfo(proto.inputs(), inputs, inputIndex);
    collectInfo(proto.outputs(), outputs, outputIndex);
    return Status::ok();
  }
};

Plan::Plan() : impl_(std::make_unique<Impl>()) {}
Plan::~Plan() = default;

Status Plan::load(const std::string &path, std::shared_ptr<Plan> &out) {
  try {
    std::shared_ptr<Plan> plan(new Plan());
    Impl &impl = *plan->impl_;
    impl.source = path;
    impl.baseDir = rt::directoryOf(path);
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
      return Status::error("'" + path +
                           "' is a directory, not a plan file; "
                           "give the .cplan file");
    if (Status s = rt::readPlanFile(path, impl.proto); !s)
      return s;
    if (Status s = impl.validateAndIndex(); !s)
      return s;
    out = std::move(plan);
    return Status::ok();
  } catch (const std::bad_alloc &) {
    return Status::error("out of host memory loading plan '" + path + "'");
  }
}

Status Plan::fromProto(const plan::Plan &proto, const std::string &baseDir,
                       std::shared_ptr<Plan> &out) {
  try {
    std::shared_ptr<Plan> plan(new Plan());
    Impl &impl = *plan->impl_;
    impl.proto = proto;
    impl.baseDir = baseDir;
    impl.source = "<in-memory plan>";
    if (Status s = impl.validateAndIndex(); !s)
      return s;
    out = std::move(plan);
    return Status::ok();
  } catch (const std::bad_alloc &) {
    return Status::error("out of host memory loading an in-memory plan");
  }
}

const std::vector<TensorInfo> &Plan::inputs() const { return impl_->inputs; }
const std::vector<TensorInfo> &Plan::outputs() const { return impl_->outputs; }
int Plan::findInput(const std::string &name) const {
  auto it = impl_->inputIndex.find(name);
  return it == impl_->inputIndex.end() ? -1 : it->second;
}
int Plan::findOutput(const std::string &name) const {
  auto it = impl_->outputIndex.find(name);
  return it == impl_->outputIndex.end() ? -1 : it->second;
}
int64_t Plan::arenaBytes(int rank) const {
  int index = rt::programIndexFor(impl_->proto, rank);
  return impl_->proto.ranks(index < 0 ? 0 : index).arena_bytes();
}

int64_t Plan::largestArenaBytes() const {
  int64_t largest = 0;
  for (const plan::RankProgram &p : impl_->proto.ranks())
    largest = std::max(largest, p.arena_bytes());
  return largest;
}
int64_t Plan::numRanks() const {
  return rt::MeshLayout(impl_->proto.mesh()).numRanks();
}
std::string Plan::meshDescription() const {
  return rt::MeshLayout(impl_->proto.mesh()).describe();
}
Status Plan::checkWorld(int64_t ranks, const std::string &launcher) const {
  int64_t want = numRanks();
  if (ranks == want)
    return Status::ok();
  std::string n = std::to_string(want);
  std::string how = want == 1 ? "run it without --ranks, mpirun or torchrun"
                              : "run it with colossal-run --ranks " + n +
                                    " (or mpirun -np " + n +
                                    ", torchrun --nproc-per-node " + n + ")";
  return Status::error(
      "plan '" + impl_->source + "' was compiled for " +
      (want == 1 ? std::string("one device")
                 : n + " ranks (mesh " + meshDescription() + ")") +
      " but this run has " + std::to_string(ranks) +
      (ranks == 1 ? " rank" : " ranks") +
      (launcher.empty() ? "" : " (from " + launcher + ")") + "; " + how +
      ", or compile it for " + std::to_string(ranks) +
      (ranks == 1 ? " device" : " devices (--parallel=...)"));
}

const std::string &Plan::producer() const { return impl_->proto.producer(); }
const std::string &Plan::mode() const { return impl_->proto.mode(); }
const std::string &Plan::source() const { return impl_->source; }
const plan::Plan &Plan::proto() const { return impl_->proto; }

//===----------------------------------------------------------------------===//
// Session
//===----------------------------------------------------------------------===//

namespace {
struct InputSlot {
  const TensorRef *buffer = nullptr;
  // A split input: this rank's piece of the whole starts at `offsets`.
  bool piece = false;
  std::vector<int64_t> offsets;
  bool set = false;     // since the last run
  bool everSet = false; // for a clearer message
  std::vector<int> overlappingOutputs;
};
struct OutputSlot {
  const TensorRef *buffer = nullptr;
  bool valid = false;
};

std::string nameList(const std::vector<TensorInfo> &infos) {
  std::string s;
  for (const TensorInfo &info : infos)
    s += (s.empty() ? "'" : ", '") + info.name + "'";
  return s.empty() ? "none" : s;
}
} // namespace

struct Session::Impl {
  std::shared_ptr<const Plan> plan;
  // Declared before the executor, which releases its arena through it.
  std::unique_ptr<rt::Backend> backend;
  std::unique_ptr<rt::Executor> executor;
  std::vector<InputSlot> inputs;
  std::vector<OutputSlot> outputs;
  std::vector<ParameterInfo> parameters;
  std::vector<const TensorRef *> parameterBuffers;
  // Offloaded parameters live in the executor's host pool, not on the device.
  std::vector<bool> parameterOnHost;
  Status copyOut(size_t index, void *dst, const void *src, size_t bytes) const {
    if (parameterOnHost[index]) {
      std::memcpy(dst, src, bytes);
      return Status::ok();
    }
    return backend->copyToHost(dst, src, bytes);
  }
  Status copyIn(size_t index, void *dst, const void *src, size_t bytes) const {
    if (parameterOnHost[index]) {
      std::memcpy(dst, src, bytes);
      return Status::ok();
    }
    return backend->copyToDevice(dst, src, bytes);
  }
  std::unordered_map<std::string, int> parameterIndex;
  // Split parameters: the sharding and where this rank's piece starts.
  std::vector<const plan::Sharding *> parameterSharding;
  std::vector<std::vector<int64_t>> parameterOffsets;
  int rank = 0;
  std::shared_ptr<rt::Communicator> comm;

  Status findParameter(const std::string &name, size_t bytes,
                       const TensorRef *&buffer) const {
    auto it = parameterIndex.find(name);
    if (it == parameterIndex.end())
      return Status::error("the plan has no parameter '" + name + "'");
    buffer = parameterBuffers[it->second];
    if (!buffer)
      return Status::error("parameter '" + name +
                           "' is not held by this session's device");
    const ParameterInfo &info = parameters[it->second];
    if (bytes != info.bytes())
      return Status::error(
          "parameter '" + name + "' is " + std::to_string(info.bytes()) +
          " bytes (" + rt::dtypeName(info.dtype) + rt::formatShape(info.shape) +
          "), not " + std::to_string(bytes));
    return Status::ok();
  }

  Status findInput(const std::string &name, int &index) const {
    index = plan->findInput(name);
    if (index >= 0)
      return Status::ok();
    return Status::error("the plan has no input '" + name +
                         "'; its inputs are " + nameList(plan->inputs()));
  }
  Status findOutput(const std::string &name, int &index) const {
    index = plan->findOutput(name);
    if (index < 0)
      return Status::error("the plan has no output '" + name +
                           "'; its outputs are " + nameList(plan->outputs()));
    if (!outputs[index].valid)
      return Status::error("output '" + name +
                           "' is not available: run() has not succeeded since "
                           "the session was created, since an input that "
                           "shares its memory was set, or since a parameter "
                           "was written");
    return Status::ok();
  }
};

Session::Session() : impl_(std::make_unique<Impl>()) {}
Session::~Session() = default;

Status Session::create(std::shared_ptr<const Plan> plan,
                       const SessionOptions &options,
                       std::unique_ptr<Session> &out) {
  if (!plan)
    return Status::error("Session::create: no plan given (load one first)");
  try {
    std::unique_ptr<Session> session(new Session());
    Impl &impl = *session->impl_;
    impl.plan = plan;
    const Plan::Impl &p = *plan->impl_;
    int commSize = options.communicator ? options.communicator->size() : 1;
    if (Status s = plan->checkWorld(commSize); !s)
      return s;
    if (options.communicator && options.communicator->rank() != options.rank)
      return Status::error("SessionOptions::rank (" +
                           std::to_string(options.rank) +
                           ") is not the communicator's rank (" +
                           std::to_string(options.communicator->rank()) + ")");
    int programIndex = rt::programIndexFor(p.proto, options.rank);
    if (programIndex < 0)
      return Status::error("plan '" + p.source + "' has no program for rank " +
                           std::to_string(options.rank));
    const plan::RankProgram &program = p.proto.ranks(programIndex);
    impl.rank = options.rank;
    impl.comm = options.communicator;

    rt::BackendOptions backendOptions;
    backendOptions.threads = options.threads;
    backendOptions.device = options.device;
    if (options.backend == "cpu" && options.device != 0)
      return Status::error("device " + std::to_string(options.device) +
                           " was asked for on the cpu backend, which has "
                           "only device 0; drop --device or run with "
                           "--backend=cuda");
    if (Status s =
            rt::createBackend(options.backend, backendOptions, impl.backend);
        !s)
      return s;
    // Gloo and MPI move host memory; device buffers need NCCL.
    if (!impl.backend->hostAccessible() && p.proto.ranks_size() > 1 &&
        impl.comm && impl.comm->size() > 1)
      return Status::error(
          "plan '" + p.source + "' runs on " +
          std::to_string(impl.comm->size()) + " ranks, and the " +
          impl.backend->name() +
          " backend has no communicator for device memory yet (the NCCL "
          "communicator is not built); run it with --backend=cpu, or "
          "compile a 1-rank plan for the GPU");
    if (Status s = rt::checkBackendSupport(program, *impl.backend, p.source);
        !s)
      return s;
    if (Status s = rt::Executor::create(p.proto, programIndex, options.rank,
                                        impl.comm.get(), p.baseDir, p.source,
                                        *impl.backend, impl.executor);
        !s)
      return s;
    impl.executor->setProfiling(options.profile);
    rt::MeshLayout mesh(p.proto.mesh());

    // Every input and output must live in a buffer of the rank.
    impl.inputs.resize(p.inputs.size());
    impl.outputs.resize(p.outputs.size());
    for (const plan::IOBinding &b : program.inputs()) {
      InputSlot &slot = impl.inputs[b.index()];
      slot.buffer = impl.executor->buffer(b.buffer());
      if (b.has_sharding() && slot.buffer) {
        slot.piece = true;
        if (Status s = mesh.pieceOffsets(options.rank, b.sharding(),
                                         slot.buffer->shape, slot.offsets);
            !s)
          return s;
      }
    }
    for (const plan::IOBinding &b : program.outputs())
      impl.outputs[b.index()].buffer = impl.executor->buffer(b.buffer());
    std::vector<std::pair<int64_t, int64_t>> outRanges(p.outputs.size());
    for (const plan::IOBinding &b : program.outputs())
      outRanges[b.index()] = impl.executor->bufferRange(b.buffer());
    for (size_t i = 0; i < p.inputs.size(); ++i)
      if (!impl.inputs[i].buffer)
        return Status::error("plan '" + p.source + "': input '" +
                             p.inputs[i].name +
                             "' is not bound to a buffer; recompile the model");
    for (size_t i = 0; i < p.outputs.size(); ++i)
      if (!impl.outputs[i].buffer)
        return Status::error("plan '" + p.source + "': output '" +
                             p.outputs[i].name +
                             "' is not bound to a buffer; recompile the model");
    // Parameters, by name.
    for (const plan::Parameter &param : p.proto.parameters()) {
      ParameterInfo info;
      info.name = param.name();
      rt::toDType(param.type().dtype(), info.dtype);
      info.shape = rt::shapeOf(param.type());
      info.optimizerState = param.role() == "optimizer";
      impl.parameterIndex.emplace(info.name,
                                  static_cast<int>(impl.parameters.size()));
      impl.parameters.push_back(std::move(info));
    }
    impl.parameterBuffers.assign(impl.parameters.size(), nullptr);
    impl.parameterOnHost.assign(impl.parameters.size(), false);
    impl.parameterSharding.assign(impl.parameters.size(), nullptr);
    impl.parameterOffsets.resize(impl.parameters.size());
    // What this session holds of each: the slice its buffer has.
    for (const plan::ParamSlice &slice : program.parameters()) {
      const TensorRef *buffer = impl.executor->buffer(slice.buffer());
      impl.parameterBuffers[slice.parameter()] = buffer;
      impl.parameterOnHost[slice.parameter()] =
          impl.executor->isHostBuffer(slice.buffer());
      ParameterInfo &info = impl.parameters[slice.parameter()];
      if (!buffer)
        continue;
      info.pieceShape = buffer->shape;
      if (slice.has_sharding() && buffer->shape != info.shape) {
        impl.parameterSharding[slice.parameter()] = &slice.sharding();
        if (Status s =
                mesh.pieceOffsets(options.rank, slice.sharding(), buffer->shape,
                                  impl.parameterOffsets[slice.parameter()]);
            !s)
          return s;
      } else {
        // A single-device plan may load a slice; then it holds the slice.
        info.shape = buffer->shape;
      }
    }
    // Which outputs an input's bytes would overwrite.
    for (const plan::IOBinding &b : program.inputs()) {
      auto in = impl.executor->bufferRange(b.buffer());
      for (size_t o = 0; o < outRanges.size(); ++o)
        if (in.first < outRanges[o].second && outRanges[o].first < in.second)
          impl.inputs[b.index()].overlappingOutputs.push_back(
              static_cast<int>(o));
    }
    out = std::move(session);
    return Status::ok();
  } catch (const std::bad_alloc &) {
    return Status::error("out of host memory creating a session for plan '" +
                         plan->source() + "'");
  }
}

const Plan &Session::plan() const { return *impl_->plan; }
const char *Session::backendName() const { return impl_->backend->name(); }

Status Session::setInput(const std::string &name, const TensorRef &tensor) {
  int index;
  if (Status s = impl_->findInput(name, index); !s)
    return s;
  const TensorInfo &info = impl_->plan->inputs()[index];
  if (tensor.dtype != info.dtype)
    return Status::error("input '" + name + "' has dtype " +
                         rt::dtypeName(tensor.dtype) +
                         " but the plan expects " + rt::dtypeName(info.dtype));
  if (tensor.shape != info.shape)
    return Status::error(
        "input '" + name + "' has shape " + rt::formatShape(tensor.shape) +
        " but the plan expects " + rt::formatShape(info.shape));
  InputSlot &slot = impl_->inputs[index];
  size_t bytes = slot.buffer->bytes();
  if (bytes != 0 && !tensor.data)
    return Status::error("input '" + name + "' has no data (null pointer)");
  for (int o : slot.overlappingOutputs)
    impl_->outputs[o].valid = false;
  const void *src = tensor.data;
  std::string piece;
  if (slot.piece) {
    // This rank's part of the whole input.
    piece.resize(bytes);
    rt::copyBox(static_cast<const char *>(tensor.data), info.shape,
                slot.offsets, slot.buffer->shape, rt::dtypeSize(info.dtype),
                piece.data());
    src = piece.data();
  }
  if (Status s = impl_->backend->copyToDevice(slot.buffer->data, src, bytes);
      !s)
    return Status::error("cannot copy input '" + name +
                         "' to the device: " + s.message());
  slot.set = true;
  slot.everSet = true;
  return Status::ok();
}

Status Session::run() {
  const std::vector<TensorInfo> &infos = impl_->plan->inputs();
  for (size_t i = 0; i < impl_->inputs.size(); ++i) {
    const InputSlot &slot = impl_->inputs[i];
    if (slot.set)
      continue;
    if (slot.everSet)
      return Status::error("input '" + infos[i].name +
                           "' was not set since the last run: set every input "
                           "before each run(), because the plan may reuse its "
                           "memory");
    return Status::error("input '" + infos[i].name +
                         "' was not set: call setInput for every input before "
                         "run() (the plan's inputs are " +
                         nameList(infos) + ")");
  }
  for (OutputSlot &o : impl_->outputs)
    o.valid = false;
  for (InputSlot &slot : impl_->inputs)
    slot.set = false;
  if (Status s = impl_->executor->run(); !s)
    return s;
  for (OutputSlot &o : impl_->outputs)
    o.valid = true;
  return Status::ok();
}

Status Session::output(const std::string &name, TensorRef &out) const {
  int index;
  if (Status s = impl_->findOutput(name, index); !s)
    return s;
  out = *impl_->outputs[index].buffer;
  return Status::ok();
}

Status Session::copyOutput(const std::string &name, void *dst,
                           size_t bytes) const {
  int index;
  if (Status s = impl_->findOutput(name, index); !s)
    return s;
  const TensorRef &src = *impl_->outputs[index].buffer;
  if (bytes != src.bytes())
    return Status::error("output '" + name + "' is " +
                         std::to_string(src.bytes()) + " bytes (" +
                         rt::dtypeName(src.dtype) + rt::formatShape(src.shape) +
                         "), not " + std::to_string(bytes));
  if (bytes != 0 && !dst)
    return Status::error("copyOutput('" + name + "'): null destination");
  return impl_->backend->copyToHost(dst, src.data, bytes);
}

const std::vector<ParameterInfo> &Session::parameters() const {
  return impl_->parameters;
}

Status Session::readParameter(const std::string &name, void *dst,
                              size_t bytes) const {
  const TensorRef *buffer = nullptr;
  if (Status s = impl_->findParameter(name, bytes, buffer); !s)
    return s;
  if (bytes != 0 && !dst)
    return Status::error("readParameter('" + name + "'): null destination");
  int index = impl_->parameterIndex.at(name);
  const plan::Sharding *sharding = impl_->parameterSharding[index];
  if (!sharding)
    return impl_->copyOut(index, dst, buffer->data, bytes);
  // A split parameter: gather the pieces, one split dimension at a time.
  try {
    rt::MeshLayout mesh(impl_->plan->proto().mesh());
    std::vector<int64_t> shape = buffer->shape;
    std::string cur(buffer->bytes(), '\0');
    if (Status s = impl_->copyOut(index, cur.data(), buffer->data, cur.size());
        !s)
      return s;
    for (int d = 0; d < sharding->dims_size(); ++d) {
      std::vector<std::string> axes(sharding->dims(d).axes().begin(),
                                    sharding->dims(d).axes().end());
      if (axes.empty())
        continue;
      std::vector<int> group;
      int position;
      if (Status s = mesh.group(impl_->rank, axes, group, position); !s)
        return s;
      std::vector<int64_t> grown = shape;
      grown[d] *= static_cast<int64_t>(group.size());
      std::string next(static_cast<size_t>(rt::numElements(grown)) *
                           rt::dtypeSize(buffer->dtype),
                       '\0');
      TensorRef in{cur.data(), buffer->dtype, shape};
      TensorRef out{next.data(), buffer->dtype, grown};
      if (Status s = impl_->comm->allGather(in, out, d, group); !s)
        return Status::error("reading parameter '" + name +
                             "' from its ranks: " + s.message());
      cur.swap(next);
      shape = grown;
    }
    std::memcpy(dst, cur.data(), bytes);
    return Status::ok();
  } catch (const std::bad_alloc &) {
    return Status::error("out of host memory reading parameter '" + name + "'");
  }
}

Status Session::writeParameter(const std::string &name, const void *src,
                               size_t bytes) {
  const TensorRef *buffer = nullptr;
  if (Status s = impl_->findParameter(name, bytes, buffer); !s)
    return s;
  if (bytes != 0 && !src)
    return Status::error("writeParameter('" + name + "'): null source");
  // Outputs may have been computed from the old values.
  for (OutputSlot &o : impl_->outputs)
    o.valid = false;
  int index = impl_->parameterIndex.at(name);
  if (!impl_->parameterSharding[index])
    return impl_->copyIn(index, buffer->data, src, bytes);
  // A split parameter keeps this rank's piece of the whole.
  const ParameterInfo &info = impl_->parameters[index];
  std::string piece(buffer->bytes(), '\0');
  rt::copyBox(static_cast<const char *>(src), info.shape,
              impl_->parameterOffsets[index], buffer->shape,
              rt::dtypeSize(info.dtype), piece.data());
  return impl_->copyIn(index, buffer->data, piece.data(), piece.size());
}

namespace {

/// Writes the box of a row-major tensor of shape `whole` (element size
/// `elem`) that starts at `offsets` and has shape `box`, from `src` (the
/// box's own row-major bytes), into file `fd` where the whole tensor starts
/// at `base`: one pwrite per contiguous run.
bool writeBox(int fd, uint64_t base, const std::vector<int64_t> &whole,
              const std::vector<int64_t> &offsets,
              const std::vector<int64_t> &box, size_t elem, const char *src) {
  size_t rank = whole.size();
  // The run: the innermost dimensions the box covers whole, plus one.
  size_t c = rank;
  while (c > 0 && (c == rank || box[c] == whole[c]))
    --c;
  if (rank == 0)
    c = 0;
  int64_t run = 1;
  for (size_t d = c; d < rank; ++d)
    run *= box[d];
  std::vector<int64_t> index(c, 0); // over the box's outer dimensions
  int64_t runs = 1;
  for (size_t d = 0; d < c; ++d)
    runs *= box[d];
  for (int64_t k = 0; k < runs; ++k) {
    int64_t at = 0; // element index in the whole tensor
    for (size_t d = 0; d < rank; ++d)
      at = at * whole[d] + offsets[d] + (d < c ? index[d] : 0);
    const char *from = src + static_cast<size_t>(k * run) * elem;
    size_t left = static_cast<size_t>(run) * elem;
    off_t where = static_cast<off_t>(base + static_cast<uint64_t>(at) * elem);
    while (left > 0) {
      ssize_t n = ::pwrite(fd, from, left, where);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return false;
      from += n;
      where += n;
      left -= static_cast<size_t>(n);
    }
    for (size_t d = c; d-- > 0;) {
      if (++index[d] < box[d])
        break;
      index[d] = 0;
    }
  }
  return true;
}

} // namespace

Status Session::saveParameters(
    const std::string &path,
    const std::map<std::string, std::string> &metadata) const {
  if (impl_->comm && impl_->comm->size() > 1)
    return saveParametersTogether(path, metadata);
  try {
    std::vector<rt::HostTensor> tensors(impl_->parameters.size());
    std::vector<const rt::HostTensor *> refs;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const ParameterInfo &p = impl_->parameters[i];
      rt::HostTensor &t = tensors[i];
      t.name = p.name;
      t.dtype = p.dtype;
      t.shape = p.shape;
      t.data.assign(p.bytes(), '\0');
      if (Status s = readParameter(p.name, t.data.data(), t.data.size()); !s)
        return s;
      refs.push_back(&t);
    }
    return rt::writeSafetensors(path, refs, metadata);
  } catch (const std::bad_alloc &) {
    return Status::error("out of host memory saving parameters to '" + path +
                         "'");
  }
}

Status Session::saveParametersTogether(
    const std::string &path,
    const std::map<std::string, std::string> &metadata) const {
  rt::Communicator &comm = *impl_->comm;
  int rank = impl_->rank;
  auto fail = [&](const std::string &what) {
    return Status::error("cannot write checkpoint '" + path + "': " + what);
  };
  // Every rank's verdict, so all of them go on or stop together.
  auto agree = [&](bool ok, const char *stage) -> Status {
    int32_t bad = ok ? 0 : 1;
    TensorRef t{&bad, DType::I32, {}};
    if (Status s = comm.allReduce(t, t, rt::ReduceOp::Max, {}); !s)
      return fail(std::string(stage) + ": " + s.message());
    return bad ? fail(std::string(stage) +
                      " failed on a rank (its own message names it); the "
                      "previous checkpoint, if any, is unchanged")
               : Status::ok();
  };
  // The layout, the same on every rank.
  std::vector<rt::HostTensor> layout(impl_->parameters.size());
  std::vector<const rt::HostTensor *> refs;
  for (size_t i = 0; i < layout.size(); ++i) {
    layout[i].name = impl_->parameters[i].name;
    layout[i].dtype = impl_->parameters[i].dtype;
    layout[i].shape = impl_->parameters[i].shape;
    refs.push_back(&layout[i]);
  }
  std::string prefix;
  std::vector<uint64_t> offsets;
  uint64_t fileBytes = 0;
  if (Status s =
          rt::planSafetensors(refs, metadata, prefix, offsets, fileBytes);
      !s)
    return fail(s.message());
  // One temporary, named after rank 0's process.
  int64_t pid = rank == 0 ? static_cast<int64_t>(::getpid()) : 0;
  TensorRef pidRef{&pid, DType::I64, {}};
  if (Status s = comm.allReduce(pidRef, pidRef, rt::ReduceOp::Max, {}); !s)
    return fail(s.message());
  std::string tmp = path + ".tmp-" + std::to_string(pid);

  // 1. Rank 0 creates it at its full size, with the header.
  std::string error;
  if (rank == 0) {
    int fd =
        ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    bool ok = fd >= 0 && ::ftruncate(fd, static_cast<off_t>(fileBytes)) == 0 &&
              ::pwrite(fd, prefix.data(), prefix.size(), 0) ==
                  static_cast<ssize_t>(prefix.size());
    if (!ok)
      error = std::string("creating '") + tmp + "': " + std::strerror(errno);
    if (fd >= 0)
      ::close(fd);
  }
  if (Status s = agree(error.empty(), "creating the temporary file"); !s) {
    if (rank == 0)
      ::unlink(tmp.c_str());
    return error.empty() ? s : fail(error);
  }
  // 2. Every rank writes the pieces it owns, straight from its device.
  rt::MeshLayout mesh(impl_->plan->proto().mesh());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CLOEXEC);
  bool ok = fd >= 0;
  try {
    for (size_t i = 0; ok && i < layout.size(); ++i) {
      const plan::Sharding *sharding = impl_->parameterSharding[i];
      const TensorRef *buffer = impl_->parameterBuffers[i];
      if (!buffer ||
          !mesh.ownsPiece(rank, sharding,
                          impl_->plan->proto().has_pipeline() ? "pp" : ""))
        continue;
      std::string piece(buffer->bytes(), '\0');
      if (Status s =
              impl_->copyOut(i, piece.data(), buffer->data, piece.size());
          !s) {
        error = s.message();
        ok = false;
        break;
      }
      std::vector<int64_t> at = impl_->parameterOffsets[i];
      if (at.empty())
        at.assign(layout[i].shape.size(), 0);
      ok = writeBox(fd, offsets[i], layout[i].shape, at, buffer->shape,
                    rt::dtypeSize(layout[i].dtype), piece.data());
    }
  } catch (const std::bad_alloc &) {
    ok = false;
    error = "out of host memory";
  }
  if (ok && ::fsync(fd) != 0)
    ok = false;
  if (!ok && error.empty())
    error = std::string("writing '") + tmp + "': " + std::strerror(errno) +
            " (disk full or over quota?)";
  if (fd >= 0)
    ::close(fd);
  if (Status s = agree(ok, "writing the pieces"); !s) {
    if (rank == 0)
      ::unlink(tmp.c_str());
    return error.empty() ? s : fail(error);
  }
  // 3. Rank 0 puts it in place; the rename is atomic, the directory synced.
  if (rank == 0) {
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      error = std::string("renaming '") + tmp + "': " + std::strerror(errno);
      ::unlink(tmp.c_str());
    } else {
      int dir = ::open(rt::directoryOf(path).c_str(),
                       O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
      }
    }
  }
  if (Status s = agree(error.empty(), "putting the checkpoint in place"); !s)
    return error.empty() ? s : fail(error);
  return Status::ok();
}

Status Session::loadParameters(const std::string &path,
                               std::map<std::string, std::string> *metadata) {
  std::vector<rt::HostTensor> tensors;
  std::map<std::string, std::string> meta;
  if (Status s = rt::readSafetensors(path, tensors, meta); !s)
    return s;
  if (Status s = restoreParameters(tensors, "'" + path + "'"); !s)
    return s;
  if (metadata)
    *metadata = std::move(meta);
  return Status::ok();
}

Status Session::restoreParameters(const std::vector<rt::HostTensor> &tensors,
                                  const std::string &source) {
  std::map<std::string, const rt::HostTensor *> byName;
  for (const rt::HostTensor &t : tensors)
    byName[t.name] = &t;
  const std::string what = source + " does not match this plan: ";
  const char *hint = "; load it into the plan that wrote it";
  for (const ParameterInfo &p : impl_->parameters) {
    auto it = byName.find(p.name);
    if (it == byName.end())
      return Status::error(what + "it has no '" + p.name + "'" + hint);
    const rt::HostTensor &t = *it->second;
    if (t.dtype != p.dtype || t.shape != p.shape)
      return Status::error(what + "'" + p.name + "' is " +
                           rt::dtypeName(t.dtype) + rt::formatShape(t.shape) +
                           " there but " + rt::dtypeName(p.dtype) +
                           rt::formatShape(p.shape) + " in the plan" + hint);
    byName.erase(it);
  }
  if (!byName.empty())
    return Status::error(what + "it has '" + byName.begin()->first +
                         "', which the plan does not" + hint);
  for (const rt::HostTensor &t : tensors) {
    // A pipeline stage holds only its own layers' tensors.
    if (!impl_->parameterBuffers[impl_->parameterIndex.at(t.name)])
      continue;
    if (Status s = writeParameter(t.name, t.data.data(), t.data.size()); !s)
      return s;
  }
  return Status::ok();
}

int64_t Session::measuredDeviceBytes() const {
  return impl_->backend->measuredDeviceBytes();
}

size_t Session::peakDeviceBytes() const {
  return impl_->backend->peakAllocatedBytes();
}

namespace {
std::string jsonEscape(const std::string &text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\')
      out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      continue;
    }
    out += c;
  }
  return out;
}
} // namespace

std::string profileSummaryPath(const std::string &tracePath) {
  std::string stem = tracePath;
  if (stem.size() > 5 && stem.compare(stem.size() - 5, 5, ".json") == 0)
    stem.resize(stem.size() - 5);
  return stem + ".summary.json";
}

namespace {
/// Flushes and closes `f`, written to `path`: an error naming `what` (a
/// full disk, say) when either fails.
Status closeWritten(std::FILE *f, const std::string &what,
                    const std::string &path) {
  bool ok = std::fflush(f) == 0;
  ok = std::fclose(f) == 0 && ok;
  if (!ok)
    return Status::error("cannot write the " + what + " '" + path +
                         "': " + std::strerror(errno));
  return Status::ok();
}

/// Measured against predicted: one row per instruction or op kind.
struct ProfileRow {
  std::string name, category, where;
  int64_t count = 0;
  double measured = 0, predicted = 0; // seconds per run
};

void printRow(std::FILE *f, const ProfileRow &r, bool instruction) {
  std::fprintf(f, "{\"%s\": \"%s\", \"category\": \"%s\", ",
               instruction ? "name" : "op", jsonEscape(r.name).c_str(),
               r.category.c_str());
  if (instruction)
    std::fprintf(f, "\"at\": \"%s\", ", jsonEscape(r.where).c_str());
  else
    std::fprintf(f, "\"instructions\": %lld, ",
                 static_cast<long long>(r.count));
  std::fprintf(f, "\"measured_s\": %.9g, \"predicted_s\": %.9g", r.measured,
               r.predicted);
  if (r.predicted > 0)
    std::fprintf(f, ", \"measured_over_predicted\": %.4g",
                 r.measured / r.predicted);
  std::fprintf(f, "}");
}
} // namespace

static Status writeProfileSummary(const rt::Executor &exec,
                                  const std::string &tracePath,
                                  const std::vector<double> &measured,
                                  double runs, double runSeconds,
                                  std::map<std::string, double> *summary) {
  std::vector<ProfileRow> rows;
  std::map<std::string, ProfileRow> byOp;
  double predictedTotal = 0, measuredTotal = 0;
  for (size_t i = 0; i < measured.size(); ++i) {
    ProfileRow r;
    exec.describeStep(static_cast<int>(i), r.name, r.category, r.where);
    r.measured = measured[i] / runs;
    r.predicted = exec.predictedSeconds(static_cast<int>(i));
    r.count = 1;
    measuredTotal += r.measured;
    predictedTotal += r.predicted;
    ProfileRow &op = byOp[r.name];
    op.name = r.name;
    op.category = r.category;
    op.count += 1;
    op.measured += r.measured;
    op.predicted += r.predicted;
    rows.push_back(std::move(r));
  }
  auto slowest = [](const ProfileRow &a, const ProfileRow &b) {
    return a.measured > b.measured;
  };
  std::sort(rows.begin(), rows.end(), slowest);
  std::vector<ProfileRow> ops;
  for (auto &[name, row] : byOp)
    ops.push_back(row);
  std::sort(ops.begin(), ops.end(), slowest);

  std::string path = profileSummaryPath(tracePath);
  std::FILE *f = std::fopen(path.c_str(), "w");
  if (!f)
    return Status::error("cannot write the profile summary '" + path +
                         "': " + std::strerror(errno));
  std::fprintf(f,
               "{\"runs\": %lld, \"run_s\": %.9g, "
               "\"measured_s_per_run\": %.9g, \"predicted_s_per_run\": "
               "%.9g,\n \"note\": \"seconds per run, the first run left out "
               "when there are more; a receive's measured time includes "
               "waiting for its sender, its prediction only the transfer\",\n"
               " \"by_op\": [",
               static_cast<long long>(runs), runSeconds, measuredTotal,
               predictedTotal);
  for (size_t i = 0; i < ops.size(); ++i) {
    std::fprintf(f, "%s\n  ", i ? "," : "");
    printRow(f, ops[i], false);
  }
  std::fprintf(f, "],\n \"instructions\": [");
  for (size_t i = 0; i < rows.size(); ++i) {
    std::fprintf(f, "%s\n  ", i ? "," : "");
    printRow(f, rows[i], true);
  }
  std::fprintf(f, "]}\n");
  if (Status st = closeWritten(f, "profile summary", path); !st)
    return st;
  if (summary) {
    summary->clear();
    (*summary)["predicted_s_per_run"] = predictedTotal;
    (*summary)["measured_instructions_s_per_run"] = measuredTotal;
    for (const ProfileRow &op : ops) {
      (*summary)["op.measured_s." + op.name] = op.measured;
      (*summary)["op.predicted_s." + op.name] = op.predicted;
    }
  }
  return Status::ok();
}

Status Session::writeProfile(const std::string &path,
                             std::map<std::string, double> *summary) const {
  const rt::Executor &exec = *impl_->executor;
  const auto &events = exec.events();
  std::FILE *f = std::fopen(path.c_str(), "w");
  if (!f)
    return Status::error("cannot write the profile '" + path +
                         "': " + std::strerror(errno));
  std::fprintf(f, "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n");
  std::fprintf(f,
               "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %d, "
               "\"args\": {\"name\": \"rank %d\"}}",
               impl_->rank, impl_->rank);
  std::map<std::string, double> seconds;
  std::vector<double> measured; // per step, over the runs counted
  int64_t lastRun = events.empty() ? 0 : events.back().run;
  int64_t counted = 0;
  double runSeconds = 0;
  int64_t runStart = -1, runEnd = 0, currentRun = -1;
  auto closeRun = [&] {
    if (currentRun > 0 && runStart >= 0) {
      runSeconds += (runEnd - runStart) * 1e-9;
      ++counted;
    }
  };
  for (const rt::Executor::Event &e : events) {
    std::string name, category, where;
    exec.describeStep(e.step, name, category, where);
    double predicted = exec.predictedSeconds(e.step);
    std::fprintf(f,
                 ",\n{\"name\": \"%s\", \"cat\": \"%s\", \"ph\": \"X\", "
                 "\"ts\": %.3f, \"dur\": %.3f, \"pid\": %d, \"tid\": 0, "
                 "\"args\": {\"run\": %lld, \"at\": \"%s\", "
                 "\"predicted_us\": %.3f}}",
                 jsonEscape(name).c_str(), category.c_str(), e.startNs * 1e-3,
                 (e.endNs - e.startNs) * 1e-3, impl_->rank,
                 static_cast<long long>(e.run), jsonEscape(where).c_str(),
                 predicted * 1e6);
    if (e.run != currentRun) {
      closeRun();
      currentRun = e.run;
      runStart = e.startNs;
    }
    runEnd = e.endNs;
    if (e.run > 0 || lastRun == 0) {
      seconds[category] += (e.endNs - e.startNs) * 1e-9;
      if (measured.size() <= static_cast<size_t>(e.step))
        measured.resize(static_cast<size_t>(e.step) + 1, 0.0);
      measured[static_cast<size_t>(e.step)] += (e.endNs - e.startNs) * 1e-9;
    }
  }
  closeRun();
  std::fprintf(f, "\n]}\n");
  if (Status st = closeWritten(f, "profile", path); !st)
    return st;
  double runs = counted > 0 ? static_cast<double>(counted) : 1.0;
  if (Status st =
          writeProfileSummary(exec, path, measured, runs,
                              counted > 0 ? runSeconds / counted : 0, summary);
      !st)
    return st;
  if (summary) {
    for (auto &[category, s] : seconds)
      (*summary)[category + "_s_per_run"] = s / runs;
    (*summary)["runs"] = static_cast<double>(counted > 0 ? counted : 1);
    double perRun = counted > 0 ? runSeconds / counted : 0;
    (*summary)["run_s"] = perRun;
    (*summary)["recv_wait_fraction"] =
        perRun > 0 ? seconds["recv"] / runs / perRun : 0;
  }
  return Status::ok();
}

} // namespace colossal
