//===- Executor.cpp - Running one rank's program on a backend -------------===//

#include "runtime/core/Executor.h"

#include "runtime/core/MeshLayout.h"
#include "runtime/core/PlanTypes.h"
#include "runtime/core/WeightLoader.h"

#include <algorithm>
#include <cstring>
#include <new>

namespace colossal::rt {

/// The arena's alignment: enough for any element type and for vector loads.
static constexpr size_t kArenaAlignment = 64;

static Attribute toAttribute(const plan::Attribute &a) {
  switch (a.value_case()) {
  case plan::Attribute::kI:
    return a.i();
  case plan::Attribute::kF:
    return a.f();
  case plan::Attribute::kS:
    return a.s();
  case plan::Attribute::kInts:
    return std::vector<int64_t>(a.ints().values().begin(),
                                a.ints().values().end());
  case plan::Attribute::VALUE_NOT_SET:
    break;
  }
  return int64_t(0); // rejected by the validator
}

Status Executor::create(const plan::Plan &plan, int programIndex, int rank,
                        Communicator *comm, const std::string &planDir,
                        const std::string &source, Backend &backend,
                        std::unique_ptr<Executor> &out) {
  std::unique_ptr<Executor> exec(new (std::nothrow) Executor(backend));
  if (!exec)
    return Status::error("out of host memory creating the executor");
  exec->rank_ = rank;
  exec->comm_ = comm;
  try {
    if (Status s = exec->load(plan, plan.ranks(programIndex), planDir, source);
        !s)
      return s;
  } catch (const std::bad_alloc &) {
    return Status::error("plan '" + source +
                         "': out of host memory while loading it");
  }
  out = std::move(exec);
  return Status::ok();
}

Executor::~Executor() { backend_.release(arena_); }

Status Executor::load(const plan::Plan &plan, const plan::RankProgram &program,
                      const std::string &planDir, const std::string &source) {
  // The one device allocation of this rank.
  arenaBytes_ = program.arena_bytes();
  if (Status s = backend_.allocate(static_cast<size_t>(arenaBytes_),
                                   kArenaAlignment, &arena_);
      !s)
    return Status::error("plan '" + source + "': cannot allocate its " +
                         std::to_string(arenaBytes_) + "-byte arena on the " +
                         backend_.name() + " device: " + s.message());

  // The host pool of offloaded buffers.
  hostPool_.assign(static_cast<size_t>(program.host_pool_bytes()), '\0');
  for (const plan::Buffer &b : program.buffers()) {
    TensorRef ref;
    if (b.host()) {
      ref.data = hostPool_.data() + b.offset();
      hostBuffers_[b.id()] = true;
    } else {
      ref.data = static_cast<char *>(arena_) + b.offset();
    }
    toDType(b.type().dtype(), ref.dtype);
    ref.shape = shapeOf(b.type());
    buffers_.emplace(b.id(), std::move(ref));
    ranges_.emplace(b.id(), std::make_pair(b.offset(), b.offset() + b.size()));
  }

  // Parameters, then constants, go through host memory to the device.
  WeightLoader weights(plan, planDir, source);
  MeshLayout mesh(plan.mesh());
  for (const plan::ParamSlice &slice : program.parameters()) {
    const TensorRef &dst = buffers_.at(slice.buffer());
    std::vector<int64_t> offsets(slice.offsets().begin(),
                                 slice.offsets().end());
    if (slice.has_sharding())
      if (Status s =
              mesh.pieceOffsets(rank_, slice.sharding(), dst.shape, offsets);
          !s)
        return Status::error("plan '" + source + "': parameter '" +
                             plan.parameters(slice.parameter()).name() +
                             "': " + s.message());
    std::string bytes;
    if (Status s =
            weights.loadSlice(slice.parameter(), offsets, dst.shape, bytes);
        !s)
      return s;
    if (bytes.size() != dst.bytes())
      return Status::error("plan '" + source + "': parameter '" +
                           plan.parameters(slice.parameter()).name() +
                           "' loaded " + std::to_string(bytes.size()) +
                           " bytes for a " + std::to_string(dst.bytes()) +
                           "-byte buffer; recompile the model");
    if (hostBuffers_.count(slice.buffer())) {
      std::memcpy(dst.data, bytes.data(), bytes.size());
      continue;
    }
    if (Status s = backend_.copyToDevice(dst.data, bytes.data(), bytes.size());
        !s)
      return s;
  }
  for (const plan::Constant &c : program.constants()) {
    const TensorRef &dst = buffers_.at(c.buffer());
    if (hostBuffers_.count(c.buffer())) {
      std::memcpy(dst.data, c.data().data(), c.data().size());
      continue;
    }
    if (Status s =
            backend_.copyToDevice(dst.data, c.data().data(), c.data().size());
        !s)
      return s;
  }

  // Kernel steps with their tensors resolved; frees are no-ops in an arena.
  for (int i = 0; i < program.program_size(); ++i) {
    const plan::Instruction &inst = program.program(i);
    // The instruction's predicted time goes on the (first) step it makes.
    struct Predicted {
      std::vector<Step> &steps;
      size_t before;
      double seconds;
      ~Predicted() {
        if (steps.size() > before)
          steps[before].predicted = seconds;
      }
    } predicted{steps_, steps_.size(), inst.predicted_s()};
    if (inst.kind_case() == plan::Instruction::kAssign) {
      Step step;
      step.inputs.push_back(buffers_.at(inst.assign().source()));
      step.outputs.push_back(buffers_.at(inst.assign().destination()));
      step.where = "instruction #" + std::to_string(i) + " (assign)";
      step.host = hostBuffers_.count(inst.assign().source()) &&
                  hostBuffers_.count(inst.assign().destination());
      steps_.push_back(std::move(step));
      continue;
    }
    if (inst.kind_case() == plan::Instruction::kCollective) {
      if (Status s = addCollective(inst.collective(),
                                   "instruction #" + std::to_string(i), mesh);
          !s)
        return Status::error("plan '" + source + "': " + s.message());
      continue;
    }
    if (inst.kind_case() == plan::Instruction::kSend ||
        inst.kind_case() == plan::Instruction::kRecv) {
      bool sending = inst.kind_case() == plan::Instruction::kSend;
      if (Status s =
              addPointToPoint(sending ? inst.send() : inst.recv(), sending,
                              "instruction #" + std::to_string(i), mesh);
          !s)
        return Status::error("plan '" + source + "': " + s.message());
      continue;
    }
    if (inst.kind_case() == plan::Instruction::kRingAttention) {
      if (Status s = addRingAttention(
              inst.ring_attention(), "instruction #" + std::to_string(i), mesh);
          !s)
        return Status::error("plan '" + source + "': " + s.message());
      continue;
    }
    if (inst.kind_case() == plan::Instruction::kCopy) {
      const plan::Copy &c = inst.copy();
      Step step;
      step.collective =
          c.to_host() ? Collective::CopyToHost : Collective::CopyToDevice;
      step.inputs.push_back(buffers_.at(c.source()));
      step.outputs.push_back(buffers_.at(c.destination()));
      step.where = "instruction #" + std::to_string(i) +
                   (c.to_host() ? " (copy to host)" : " (copy to device)");
      steps_.push_back(std::move(step));
      continue;
    }
    if (inst.kind_case() != plan::Instruction::kKernel)
      continue;
    const plan::Kernel &k = inst.kernel();
    Step step;
    step.op = k.op();
    for (int64_t id : k.inputs())
      step.inputs.push_back(buffers_.at(id));
    for (int64_t id : k.outputs())
      step.outputs.push_back(buffers_.at(id));
    for (const auto &attr : k.attributes())
      step.attributes.set(attr.first, toAttribute(attr.second));
    step.where = "instruction #" + std::to_string(i) +
                 (k.location().empty() ? "" : " at " + k.location());
    step.host = k.host();
    if (step.host) {
      Backend *host = nullptr;
      if (Status s = hostBackend(host); !s)
        return Status::error("plan '" + source + "': " + step.where + ": " +
                             s.message());
      if (!host->supports(step.op))
        return Status::error("plan '" + source + "': " + step.where +
                             ": the host has no kernel for '" + step.op +
                             "'; recompile the model");
    }
    steps_.push_back(std::move(step));
  }
  // Connect the collective groups now, so a missing peer is found before
  // the first step rather than in the middle of one.
  if (comm_) {
    std::vector<RankGroup> groups;
    for (const Step &step : steps_)
      if (step.collective != Collective::None &&
          step.collective != Collective::Send &&
          step.collective != Collective::Recv &&
          step.collective != Collective::CopyToHost &&
          step.collective != Collective::CopyToDevice &&
          step.collective != Collective::RingAttention &&
          std::find(groups.begin(), groups.end(), step.group) == groups.end())
        groups.push_back(step.group);
    if (Status s = comm_->prepareGroups(groups); !s)
      return Status::error("plan '" + source +
                           "': connecting to the other ranks: " + s.message());
  }
  return backend_.synchronize();
}

/// What a step that talks to other ranks says without a communicator.
static Status noCommunicator(const std::string &where) {
  return Status::error(where + " needs other ranks, but this session has no "
                               "communicator; launch with colossal-run --ranks "
                               "N (or mpirun / torchrun)");
}

Status Executor::addCollective(const plan::Collective &c,
                               const std::string &where,
                               const MeshLayout &mesh) {
  Step step;
  step.where = where + " (" + c.kind() + ")";
  step.inputs.push_back(buffers_.at(c.input()));
  step.outputs.push_back(buffers_.at(c.output()));
  std::vector<std::string> axes(c.axes().begin(), c.axes().end());
  int position = 0;
  if (Status s = mesh.group(rank_, axes, step.group, position); !s)
    return Status::error(step.where + ": " + s.message());
  step.dim = c.dim();
  step.concatDim = c.concat_dim();
  // A corrupt plan must not index past a shape.
  const TensorRef &in0 = step.inputs[0], &out0 = step.outputs[0];
  int64_t rank = static_cast<int64_t>(in0.shape.size());
  bool dimmed = c.kind() != "all_reduce";
  if (dimmed && (step.dim < 0 || step.dim >= rank ||
                 out0.shape.size() != in0.shape.size() ||
                 (c.kind() == "all_to_all" &&
                  (step.concatDim < 0 || step.concatDim >= rank))))
    return Status::error(step.where + ": dimension " +
                         std::to_string(step.dim) + " is out of range for " +
                         formatShape(in0.shape) + "; recompile the model");
  if (c.kind() == "all_slice" &&
      in0.shape[step.dim] !=
          out0.shape[step.dim] * static_cast<int64_t>(step.group.size()))
    return Status::error(
        step.where + ": a piece of " + formatShape(out0.shape) +
        " does not split " + formatShape(in0.shape) + " over " +
        std::to_string(step.group.size()) + " ranks; recompile the model");
  if (c.kind() == "all_slice") {
    // This rank's piece along `dim`: a slice kernel with bounds known now.
    const TensorRef &in = step.inputs[0], &out = step.outputs[0];
    std::vector<int64_t> starts(in.shape.size(), 0), limits = in.shape,
                                                     steps(in.shape.size(), 1);
    starts[step.dim] = position * out.shape[step.dim];
    limits[step.dim] = starts[step.dim] + out.shape[step.dim];
    step.op = "slice";
    step.attributes.set("starts", starts);
    step.attributes.set("limits", limits);
    step.attributes.set("steps", steps);
    steps_.push_back(std::move(step));
    return Status::ok();
  }
  if (!comm_)
    return noCommunicator(step.where);
  if (c.kind() == "all_reduce")
    step.collective = Collective::AllReduce;
  else if (c.kind() == "all_gather")
    step.collective = Collective::AllGather;
  else if (c.kind() == "reduce_scatter")
    step.collective = Collective::ReduceScatter;
  else if (c.kind() == "all_to_all")
    step.collective = Collective::AllToAll;
  else
    return Status::error(step.where + ": unknown collective '" + c.kind() +
                         "'; recompile the model with this version");
  const std::string &r = c.reduction();
  step.reduction = r == "max"   ? ReduceOp::Max
                   : r == "min" ? ReduceOp::Min
                   : r == "avg" ? ReduceOp::Avg
                                : ReduceOp::Sum;
  steps_.push_back(std::move(step));
  return Status::ok();
}

Status Executor::addRingAttention(const plan::RingAttention &r,
                                  const std::string &where,
                                  const MeshLayout &mesh) {
  Step step;
  step.where = where + (r.backward() ? " (ring attention backward)"
                                     : " (ring attention)");
  step.collective = Collective::RingAttention;
  step.backward = r.backward();
  for (int64_t id : r.inputs())
    step.inputs.push_back(buffers_.at(id));
  for (int64_t id : r.outputs())
    step.outputs.push_back(buffers_.at(id));
  std::vector<std::string> axes(r.axes().begin(), r.axes().end());
  if (Status s = mesh.group(rank_, axes, step.group, step.position); !s)
    return Status::error(step.where + ": " + s.message());
  // A hop takes one tag of the ring's 65536.
  if (step.group.size() < 2 || step.group.size() > 60000)
    return Status::error(step.where + ": a ring of " +
                         std::to_string(step.group.size()) +
                         " ranks is not supported; recompile the model");
  step.tag = r.tag();
  step.attributes.set("scale", r.scale());
  step.attributes.set("causal", int64_t(r.causal() ? 1 : 0));
  if (!comm_)
    return noCommunicator(step.where);
  steps_.push_back(std::move(step));
  return Status::ok();
}

/// The tensor of `shape` (f32) at `*cursor` in a workspace, which advances.
static TensorRef carve(char *&cursor, const std::vector<int64_t> &shape) {
  TensorRef t;
  t.data = cursor;
  t.dtype = DType::F32;
  t.shape = shape;
  cursor += t.bytes();
  return t;
}

/// The tensors `parts`, adjacent in memory, as one flat f32 tensor: what a
/// ring hop sends as one message.
static TensorRef joined(std::initializer_list<const TensorRef *> parts) {
  TensorRef t;
  t.data = (*parts.begin())->data;
  t.dtype = DType::F32;
  int64_t n = 0;
  for (const TensorRef *p : parts)
    n += p->numel();
  t.shape = {n};
  return t;
}

Status Executor::startRing(const Step &step, char *&cursor, Ring &ring) {
  const TensorRef &q = step.inputs[0], &k = step.inputs[1], &v = step.inputs[2];
  ring.n = static_cast<int>(step.group.size());
  ring.p = step.position;
  ring.next = step.group[(ring.p + 1) % ring.n];
  ring.prev = step.group[(ring.p + ring.n - 1) % ring.n];
  ring.causal = step.attributes.getInt("causal", 0) != 0;
  ring.block = q.shape[q.shape.size() - 2];
  ring.attrs = step.attributes;
  ring.attrs.set("q_offset", int64_t(ring.p) * ring.block);
  ring.attrs.set("kv_length", int64_t(ring.n) * ring.block);
  ring.kb = carve(cursor, k.shape);
  ring.vb = carve(cursor, v.shape);
  if (Status s = backend_.copyOnDevice(ring.kb.data, k.data, k.bytes()); !s)
    return s;
  return backend_.copyOnDevice(ring.vb.data, v.data, v.bytes());
}

/// Ring attention's forward at position p of n: at hop t this rank holds
/// the key/value block of rank p - t, sends it on to rank p + 1 (one
/// message; sends do not wait) and folds it into its output (online
/// softmax; blocks wholly after p skipped when causal), then takes rank
/// p - 1's.
Status Executor::runRingAttention(const Step &step) {
  const TensorRef &out = step.outputs[0], &lse = step.outputs[1];
  char *cursor = static_cast<char *>(step.outputs[2].data);
  Ring ring;
  if (Status s = startRing(step, cursor, ring); !s)
    return s;
  TensorRef m = carve(cursor, lse.shape), l = carve(cursor, lse.shape);
  const TensorRef travelling = joined({&ring.kb, &ring.vb});
  std::vector<TensorRef> in = {step.inputs[0], ring.kb, ring.vb};
  if (step.inputs.size() > 3)
    in.push_back(step.inputs[3]);
  for (int t = 0; t < ring.n; ++t) {
    const int j = (ring.p - t + ring.n) % ring.n;
    const bool more = t + 1 < ring.n;
    if (more) {
      if (Status s = backend_.synchronize(); !s)
        return s;
      if (Status s = comm_->send(travelling, ring.next, step.tag + t); !s)
        return s;
    }
    if (!(ring.causal && j > ring.p)) {
      ring.attrs.set("k_offset", int64_t(j) * ring.block);
      ring.attrs.set("init", int64_t(t == 0 ? 1 : 0));
      if (Status s =
              backend_.launch("attention_block", in, {out, m, l}, ring.attrs);
          !s)
        return s;
    }
    if (more) {
      if (Status s = backend_.synchronize(); !s)
        return s;
      if (Status s = comm_->recv(travelling, ring.prev, step.tag + t); !s)
        return s;
    }
  }
  return backend_.launch("attention_block_finish", {out, m, l}, {out, lse}, {});
}

/// Ring attention's backward: the key/value blocks go around again with
/// their dk/dv accumulators (one message a hop), each rank adding its
/// queries' share, and the accumulators take one more hop home.
Status Executor::runRingAttentionBackward(const Step &step) {
  const TensorRef &k = step.inputs[1], &v = step.inputs[2], &o = step.inputs[3],
                  &lse = step.inputs[4], &g = step.inputs[5];
  const TensorRef &dq = step.outputs[0], &dk = step.outputs[1],
                  &dv = step.outputs[2];
  char *cursor = static_cast<char *>(step.outputs[3].data);
  Ring ring;
  if (Status s = startRing(step, cursor, ring); !s)
    return s;
  TensorRef dkb = carve(cursor, k.shape), dvb = carve(cursor, v.shape),
            delta = carve(cursor, lse.shape);
  const TensorRef travelling = joined({&ring.kb, &ring.vb, &dkb, &dvb}),
                  accumulators = joined({&dkb, &dvb});
  if (Status s = backend_.launch("attention_delta", {o, g}, {delta}, {}); !s)
    return s;
  std::vector<TensorRef> in = {step.inputs[0], ring.kb, ring.vb, g, lse, delta};
  if (step.inputs.size() > 6)
    in.push_back(step.inputs[6]);
  auto hop = [&](const TensorRef &what, int64_t tag) -> Status {
    if (Status s = backend_.synchronize(); !s)
      return s;
    if (Status s = comm_->send(what, ring.next, tag); !s)
      return s;
    return comm_->recv(what, ring.prev, tag);
  };
  for (int t = 0; t < ring.n; ++t) {
    const int j = (ring.p - t + ring.n) % ring.n;
    if (!(ring.causal && j > ring.p)) {
      ring.attrs.set("k_offset", int64_t(j) * ring.block);
      ring.attrs.set("init_q", int64_t(t == 0 ? 1 : 0));
      ring.attrs.set("init_kv", int64_t(t == 0 ? 1 : 0));
      if (Status s = backend_.launch("attention_block_backward", in,
                                     {dq, dkb, dvb}, ring.attrs);
          !s)
        return s;
    }
    if (t + 1 < ring.n)
      if (Status s = hop(travelling, step.tag + t); !s)
        return s;
  }
  // The accumulators held now are rank p + 1's, complete: home they go.
  if (Status s = hop(accumulators, step.tag + ring.n); !s)
    return s;
  if (Status s = backend_.copyOnDevice(dk.data, dkb.data, dk.bytes()); !s)
    return s;
  return backend_.copyOnDevice(dv.data, dvb.data, dv.bytes());
}

Status Executor::addPointToPoint(const plan::SendRecv &sr, bool sending,
                                 const std::string &where,
                                 const MeshLayout &mesh) {
  Step step;
  step.where = where + (sending ? " (send)" : " (recv)");
  step.collective = sending ? Collective::Send : Collective::Recv;
  const TensorRef &t = buffers_.at(sr.buffer());
  (sending ? step.inputs : step.outputs).push_back(t);
  step.peer = sr.axis().empty() ? sr.peer()
                                : mesh.peerAlong(rank_, sr.axis(), sr.peer());
  step.tag = sr.tag();
  if (step.peer < 0 || step.peer == rank_)
    return Status::error(
        step.where + ": peer " + std::to_string(sr.peer()) +
        (sr.axis().empty() ? "" : " along '" + sr.axis() + "'") +
        " is not another rank of the mesh; recompile the "
        "model");
  if (!comm_)
    return noCommunicator(step.where);
  steps_.push_back(std::move(step));
  return Status::ok();
}

Status Executor::runCollective(const Step &step) {
  // Collectives read device memory the backend may still be writing.
  if (Status s = backend_.synchronize(); !s)
    return s;
  if (step.collective == Collective::Send)
    return comm_->send(step.inputs[0], step.peer, step.tag);
  if (step.collective == Collective::Recv)
    return comm_->recv(step.outputs[0], step.peer, step.tag);
  if (step.collective == Collective::CopyToHost)
    return backend_.copyToHost(step.outputs[0].data, step.inputs[0].data,
                               step.inputs[0].bytes());
  if (step.collective == Collective::CopyToDevice)
    return backend_.copyToDevice(step.outputs[0].data, step.inputs[0].data,
                                 step.outputs[0].bytes());
  if (step.collective == Collective::RingAttention)
    return step.backward ? runRingAttentionBackward(step)
                         : runRingAttention(step);
  const TensorRef &in = step.inputs[0], &out = step.outputs[0];
  switch (step.collective) {
  case Collective::AllReduce:
    return comm_->allReduce(in, out, step.reduction, step.group);
  case Collective::AllGather:
    return comm_->allGather(in, out, step.dim, step.group);
  case Collective::ReduceScatter:
    return comm_->reduceScatter(in, out, step.reduction, step.dim, step.group);
  case Collective::AllToAll:
    return comm_->allToAll(in, out, step.dim, step.concatDim, step.group);
  case Collective::Send:
  case Collective::Recv:
  case Collective::CopyToHost:
  case Collective::CopyToDevice:
  case Collective::RingAttention:
    break;
  case Collective::None:
    break;
  }
  return Status::ok();
}

void Executor::describeStep(int i, std::string &name, std::string &category,
                            std::string &where) const {
  const Step &step = steps_[static_cast<size_t>(i)];
  where = step.where;
  switch (step.collective) {
  case Collective::None:
    name = step.op.empty() ? "assign" : step.op;
    category = step.op.empty() ? "copy" : step.host ? "host" : "compute";
    return;
  case Collective::AllReduce:
    name = "all_reduce";
    break;
  case Collective::AllGather:
    name = "all_gather";
    break;
  case Collective::ReduceScatter:
    name = "reduce_scatter";
    break;
  case Collective::AllToAll:
    name = "all_to_all";
    break;
  case Collective::Send:
    name = category = "send";
    return;
  case Collective::CopyToHost:
    name = "copy_to_host";
    category = "copy";
    return;
  case Collective::CopyToDevice:
    name = "copy_to_device";
    category = "copy";
    return;
  case Collective::Recv:
    name = category = "recv";
    return;
  case Collective::RingAttention:
    name = step.backward ? "ring_attention_backward" : "ring_attention";
    break;
  }
  category = "collective";
}

Status Executor::run() {
  auto now = [&] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now() - created_)
        .count();
  };
  int64_t run = runs_++;
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step &step = steps_[i];
    bool record = profiling_ && events_.size() < maxEvents_;
    int64_t start = record ? now() : 0;
    if (Status s = runStep(step); !s)
      return s;
    if (record) {
      // Kernels may still be running on the device: time them whole.
      if (Status s = backend_.synchronize(); !s)
        return s;
      events_.push_back({static_cast<int>(i), run, start, now()});
    }
  }
  if (comm_)
    if (Status s = comm_->waitSends(); !s)
      return Status::error("finishing this run's sends failed: " + s.message());
  return backend_.synchronize();
}

Status Executor::runStep(const Step &step) {
  {
    if (step.collective != Collective::None) {
      if (Status s = runCollective(step); !s)
        return Status::error(step.where + " failed: " + s.message());
      return Status::ok();
    }
    if (step.op.empty()) {
      const TensorRef &src = step.inputs[0], &dst = step.outputs[0];
      if (step.host) {
        std::memcpy(dst.data, src.data, dst.bytes());
        return Status::ok();
      }
      if (Status s = backend_.copyOnDevice(dst.data, src.data, dst.bytes()); !s)
        return Status::error(step.where + " failed: " + s.message());
      return Status::ok();
    }
    Backend *on = &backend_;
    if (step.host) {
      // The host reads what the device wrote before it (the copies).
      if (Status s = backend_.synchronize(); !s)
        return s;
      if (Status s = hostBackend(on); !s)
        return s;
    }
    Status s = on->launch(step.op, step.inputs, step.outputs, step.attributes);
    if (!s)
      return Status::error("kernel '" + step.op + "' (" + step.where +
                           ") failed: " + s.message());
  }
  return Status::ok();
}

Status Executor::hostBackend(Backend *&out) {
  if (std::string(backend_.name()) == "cpu") {
    out = &backend_;
    return Status::ok();
  }
  if (!ownHostBackend_)
    ownHostBackend_ = createCpuBackend(0);
  if (!ownHostBackend_)
    return Status::error("cannot make the CPU backend for host kernels");
  out = ownHostBackend_.get();
  return Status::ok();
}

const TensorRef *Executor::buffer(int64_t id) const {
  auto it = buffers_.find(id);
  return it == buffers_.end() ? nullptr : &it->second;
}

std::pair<int64_t, int64_t> Executor::bufferRange(int64_t id) const {
  auto it = ranges_.find(id);
  return it == ranges_.end() ? std::make_pair(int64_t(0), int64_t(0))
                             : it->second;
}

} // namespace colossal::rt
