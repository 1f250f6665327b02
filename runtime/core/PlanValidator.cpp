//===- PlanValidator.cpp - Checking a plan before running it --------------===//

#include "runtime/core/PlanValidator.h"

#include "runtime/core/MeshLayout.h"

#include "runtime/core/Backend.h"
#include "runtime/core/PlanTypes.h"

#include <map>
#include <set>
#include <unordered_map>

namespace colossal::rt {
namespace {

constexpr const char *kRecompile =
    "; the plan is inconsistent: recompile the model with colossal-opt";

class Validator {
public:
  Validator(const plan::Plan &plan, const std::string &source)
      : plan_(plan), prefix_("plan '" + source + "': ") {}

  Status run() {
    if (plan_.ranks_size() == 0)
      return fail("it has no rank programs, so there is nothing to run" +
                  std::string(kRecompile));
    if (Status s = checkBindings("input", plan_.inputs()); !s)
      return s;
    if (Status s = checkBindings("output", plan_.outputs()); !s)
      return s;
    std::set<std::string> names;
    for (int i = 0; i < plan_.parameters_size(); ++i) {
      if (Status s = checkParameter(i); !s)
        return s;
      // Checkpoints and exports find parameters by name.
      if (!names.insert(plan_.parameters(i).name()).second)
        return fail("two parameters are named '" + plan_.parameters(i).name() +
                    "'" + kRecompile);
    }
    std::set<int> ranks;
    for (const plan::RankProgram &program : plan_.ranks()) {
      if (!ranks.insert(program.rank()).second)
        return fail("rank " + std::to_string(program.rank()) +
                    " has two programs" + kRecompile);
      if (Status s = checkRank(program); !s)
        return s;
    }
    return Status::ok();
  }

private:
  Status fail(const std::string &what) const {
    return Status::error(prefix_ + what);
  }

  // Fills `dtype`/`bytes` from a tensor type; `what` names it in messages.
  Status checkType(const plan::TensorType &type, const std::string &what,
                   DType &dtype, int64_t &bytes) const {
    if (!toDType(type.dtype(), dtype))
      return fail(what + " has no valid element type (dtype " +
                  std::to_string(type.dtype()) + ")" + kRecompile);
    if (!tensorBytes(shapeOf(type), dtype, bytes))
      return fail(what + " has an invalid shape " + formatShape(shapeOf(type)) +
                  " (negative or too large)" + kRecompile);
    return Status::ok();
  }

  template <typename List>
  Status checkBindings(const char *kind, const List &bindings) const {
    std::set<std::string> names;
    for (int i = 0; i < bindings.size(); ++i) {
      const plan::Binding &b = bindings.Get(i);
      std::string what =
          std::string(kind) + " #" + std::to_string(i) + " '" + b.name() + "'";
      if (b.name().empty())
        return fail(std::string(kind) + " #" + std::to_string(i) +
                    " has no name" + kRecompile);
      if (!names.insert(b.name()).second)
        return fail("two " + std::string(kind) + "s are named '" + b.name() +
                    "'" + kRecompile);
      DType dtype;
      int64_t bytes;
      if (Status s = checkType(b.type(), what, dtype, bytes); !s)
        return s;
    }
    return Status::ok();
  }

  Status checkParameter(int index) const {
    const plan::Parameter &p = plan_.parameters(index);
    std::string what =
        "parameter #" + std::to_string(index) + " '" + p.name() + "'";
    DType dtype;
    int64_t bytes;
    if (Status s = checkType(p.type(), what, dtype, bytes); !s)
      return s;
    switch (p.source_case()) {
    case plan::Parameter::kEmbedded:
      if (static_cast<int64_t>(p.embedded().size()) != bytes)
        return fail(what + " embeds " + std::to_string(p.embedded().size()) +
                    " bytes but its type " + dtypeName(dtype) +
                    formatShape(shapeOf(p.type())) + " needs " +
                    std::to_string(bytes) + kRecompile);
      return Status::ok();
    case plan::Parameter::kExternal:
      if (p.external().location().empty() || p.external().offset() < 0)
        return fail(what +
                    " has an external source without a file or with a "
                    "negative offset" +
                    kRecompile);
      if (p.external().length() != bytes)
        return fail(what + " reads " + std::to_string(p.external().length()) +
                    " bytes from '" + p.external().location() +
                    "' but its type needs " + std::to_string(bytes) +
                    kRecompile);
      return Status::ok();
    case plan::Parameter::kFill:
      if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16 &&
          dtype != DType::F64)
        return fail(what + " is filled with a number but is " +
                    dtypeName(dtype) + ", not floating point" + kRecompile);
      return Status::ok();
    case plan::Parameter::kInitializer:
      if (p.initializer().model().empty() || p.initializer().name().empty())
        return fail(what + " names no ONNX model or initializer" + kRecompile);
      return Status::ok();
    case plan::Parameter::SOURCE_NOT_SET:
      break;
    }
    return fail(what +
                " has no source (embedded, fill, external or initializer)" +
                kRecompile);
  }

  struct BufferInfo {
    DType dtype;
    std::vector<int64_t> shape;
    int64_t size;
    bool host = false; // in the host pool
  };

  Status checkRank(const plan::RankProgram &program) {
    std::string rank = "rank " + std::to_string(program.rank()) + ": ";
    int64_t arena = program.arena_bytes();
    if (arena < 0)
      return fail(rank + "negative arena size " + std::to_string(arena) +
                  kRecompile);

    // Buffers: views into the arena.
    std::unordered_map<int64_t, BufferInfo> buffers;
    for (const plan::Buffer &b : program.buffers()) {
      std::string what = rank + "buffer " + std::to_string(b.id());
      BufferInfo info;
      int64_t bytes;
      if (Status s = checkType(b.type(), what, info.dtype, bytes); !s)
        return s;
      if (!buffers.emplace(b.id(), BufferInfo()).second)
        return fail(what + " is defined twice (buffer ids must be unique)" +
                    kRecompile);
      if (b.offset() < 0 || b.size() < 0)
        return fail(what + " has a negative offset or size" + kRecompile);
      int64_t pool = b.host() ? program.host_pool_bytes() : arena;
      if (b.offset() > pool || b.size() > pool - b.offset())
        return fail(what + " (offset " + std::to_string(b.offset()) +
                    ", size " + std::to_string(b.size()) +
                    ") ends past the end of the " + std::to_string(pool) +
                    (b.host() ? "-byte host pool" : "-byte arena") +
                    kRecompile);
      info.host = b.host();
      if (b.size() != bytes)
        return fail(what + " has size " + std::to_string(b.size()) +
                    " bytes but its type " + dtypeName(info.dtype) +
                    formatShape(shapeOf(b.type())) + " needs " +
                    std::to_string(bytes) + kRecompile);
      info.shape = shapeOf(b.type());
      info.size = bytes;
      if (program.host_pool_bytes() < 0)
        return fail(rank + "negative host pool size" + kRecompile);
      buffers[b.id()] = info;
    }
    // A buffer of either pool.
    auto known = [&](int64_t id, const std::string &user) -> Status {
      if (!buffers.count(id))
        return fail(rank + user + " uses buffer " + std::to_string(id) +
                    ", which the rank does not define" + kRecompile);
      return Status::ok();
    };
    // A buffer of the arena.
    auto need = [&](int64_t id, const std::string &user) -> Status {
      if (Status s = known(id, user); !s)
        return s;
      if (buffers[id].host)
        return fail(rank + user + " uses buffer " + std::to_string(id) +
                    ", which lives in the host pool: only copies and host "
                    "kernels reach it" +
                    kRecompile);
      return Status::ok();
    };
    // A copy's host side must be a host buffer of the same size.
    auto needHost = [&](int64_t id, int64_t bytes,
                        const std::string &user) -> Status {
      auto it = buffers.find(id);
      if (it == buffers.end() || !it->second.host)
        return fail(rank + user + " copies to or from buffer " +
                    std::to_string(id) + ", which is not a host buffer" +
                    kRecompile);
      if (it->second.size != bytes)
        return fail(rank + user + " copies " + std::to_string(bytes) +
                    " bytes to or from the " + std::to_string(it->second.size) +
                    "-byte host buffer " + std::to_string(id) + kRecompile);
      return Status::ok();
    };

    // Parameter slices.
    for (int i = 0; i < program.parameters_size(); ++i) {
      const plan::ParamSlice &slice = program.parameters(i);
      std::string what = "parameter slice #" + std::to_string(i);
      if (slice.parameter() < 0 || slice.parameter() >= plan_.parameters_size())
        return fail(rank + what + " refers to parameter " +
                    std::to_string(slice.parameter()) + " but the plan has " +
                    std::to_string(plan_.parameters_size()) + kRecompile);
      if (!buffers.count(slice.buffer()))
        return fail(rank + what + " uses buffer " +
                    std::to_string(slice.buffer()) +
                    ", which the rank does not define" + kRecompile);
      const plan::Parameter &p = plan_.parameters(slice.parameter());
      what += " (of '" + p.name() + "')";
      const BufferInfo &buf = buffers[slice.buffer()];
      std::vector<int64_t> global = shapeOf(p.type());
      if (static_cast<int>(buf.dtype) != p.type().dtype())
        return fail(rank + what + ": buffer " + std::to_string(slice.buffer()) +
                    " holds " + dtypeName(buf.dtype) +
                    " but the parameter is of another type" + kRecompile);
      if (buf.shape.size() != global.size())
        return fail(rank + what + ": buffer shape " + formatShape(buf.shape) +
                    " and parameter shape " + formatShape(global) +
                    " differ in rank" + kRecompile);
      std::vector<int64_t> offsets(slice.offsets().begin(),
                                   slice.offsets().end());
      if (offsets.empty())
        offsets.assign(global.size(), 0);
      if (offsets.size() != global.size())
        return fail(rank + what + " has " + std::to_string(offsets.size()) +
                    " offsets for a rank-" + std::to_string(global.size()) +
                    " parameter" + kRecompile);
      for (size_t d = 0; d < global.size(); ++d)
        if (offsets[d] < 0 || offsets[d] > global[d] ||
            buf.shape[d] > global[d] - offsets[d])
          return fail(rank + what + ": the slice at " + formatShape(offsets) +
                      " of shape " + formatShape(buf.shape) +
                      " is outside the parameter's shape " +
                      formatShape(global) + kRecompile);
    }

    std::set<int64_t> parameterBuffers;
    for (const plan::ParamSlice &slice : program.parameters())
      parameterBuffers.insert(slice.buffer());

    // Constants.
    for (int i = 0; i < program.constants_size(); ++i) {
      const plan::Constant &c = program.constants(i);
      std::string what = "constant #" + std::to_string(i);
      // (Either pool: the host's optimizer step has constants too.)
      if (Status s = known(c.buffer(), what); !s)
        return s;
      if (static_cast<int64_t>(c.data().size()) != buffers[c.buffer()].size)
        return fail(rank + what + " has " + std::to_string(c.data().size()) +
                    " bytes for buffer " + std::to_string(c.buffer()) + " of " +
                    std::to_string(buffers[c.buffer()].size) + kRecompile);
    }

    // IO bindings.
    if (Status s =
            checkIO(rank, "input", program.inputs(), plan_.inputs(), buffers);
        !s)
      return s;
    if (Status s = checkIO(rank, "output", program.outputs(), plan_.outputs(),
                           buffers);
        !s)
      return s;

    // Instructions.
    for (int i = 0; i < program.program_size(); ++i) {
      const plan::Instruction &inst = program.program(i);
      std::string what = "instruction #" + std::to_string(i);
      switch (inst.kind_case()) {
      case plan::Instruction::kKernel: {
        const plan::Kernel &k = inst.kernel();
        what += " (kernel '" + k.op() + "'" +
                (k.location().empty() ? "" : " at " + k.location()) + ")";
        if (k.op().empty())
          return fail(rank + what + " has no op name" + kRecompile);
        // A host kernel (an offloaded optimizer step) reads and writes the
        // host pool only; a device kernel the arena only.
        auto place = [&](int64_t id) -> Status {
          if (!k.host())
            return need(id, what);
          if (Status s = known(id, what); !s)
            return s;
          if (!buffers[id].host)
            return fail(rank + what + " runs on the host but uses buffer " +
                        std::to_string(id) + ", which is not in the host pool" +
                        kRecompile);
          return Status::ok();
        };
        for (int64_t id : k.inputs())
          if (Status s = place(id); !s)
            return s;
        for (int64_t id : k.outputs())
          if (Status s = place(id); !s)
            return s;
        for (const auto &attr : k.attributes())
          if (attr.second.value_case() == plan::Attribute::VALUE_NOT_SET)
            return fail(rank + what + ": attribute '" + attr.first +
                        "' has no value" + kRecompile);
        break;
      }
      case plan::Instruction::kCollective:
        if (Status s = need(inst.collective().input(), what); !s)
          return s;
        if (Status s = need(inst.collective().output(), what); !s)
          return s;
        break;
      case plan::Instruction::kSend:
        if (Status s = need(inst.send().buffer(), what); !s)
          return s;
        break;
      case plan::Instruction::kRecv:
        if (Status s = need(inst.recv().buffer(), what); !s)
          return s;
        break;
      case plan::Instruction::kCopy: {
        const plan::Copy &c = inst.copy();
        int64_t device = c.to_host() ? c.source() : c.destination();
        int64_t host = c.to_host() ? c.destination() : c.source();
        what += c.to_host() ? " (copy to host)" : " (copy to device)";
        if (Status s = need(device, what); !s)
          return s;
        if (Status s = needHost(host, buffers[device].size, what); !s)
          return s;
        break;
      }
      case plan::Instruction::kFree:
        // Of either pool.
        if (Status s = known(inst.free().buffer(), what); !s)
          return s;
        break;
      case plan::Instruction::kAssign: {
        const plan::Assign &a = inst.assign();
        what += " (assign)";
        // Within the arena, or within the host pool (state the host's
        // optimizer step wrote).
        bool inPool = buffers.count(a.source()) &&
                      buffers.count(a.destination()) &&
                      buffers[a.source()].host && buffers[a.destination()].host;
        if (!inPool) {
          if (Status s = need(a.source(), what); !s)
            return s;
          if (Status s = need(a.destination(), what); !s)
            return s;
        }
        const BufferInfo &src = buffers[a.source()];
        const BufferInfo &dst = buffers[a.destination()];
        if (src.dtype != dst.dtype || src.shape != dst.shape)
          return fail(rank + what + " copies " + dtypeName(src.dtype) +
                      formatShape(src.shape) + " into " + dtypeName(dst.dtype) +
                      formatShape(dst.shape) + kRecompile);
        if (!parameterBuffers.count(a.destination()))
          return fail(rank + what + " writes buffer " +
                      std::to_string(a.destination()) +
                      ", which holds no parameter; only parameters keep "
                      "state between runs" +
                      kRecompile);
        break;
      }
      case plan::Instruction::kRingAttention: {
        const plan::RingAttention &r = inst.ring_attention();
        what +=
            r.backward() ? " (ring attention backward)" : " (ring attention)";
        for (int64_t id : r.inputs())
          if (Status s = need(id, what); !s)
            return s;
        for (int64_t id : r.outputs())
          if (Status s = need(id, what); !s)
            return s;
        int minIn = r.backward() ? 6 : 3, outs = r.backward() ? 4 : 3;
        if (r.inputs_size() < minIn || r.inputs_size() > minIn + 1 ||
            r.outputs_size() != outs)
          return fail(rank + what + " has " + std::to_string(r.inputs_size()) +
                      " inputs and " + std::to_string(r.outputs_size()) +
                      " outputs" + kRecompile);
        if (Status s = checkRing(rank + what, r, buffers); !s)
          return s;
        break;
      }
      case plan::Instruction::KIND_NOT_SET:
        return fail(rank + what + " is empty (written by a newer compiler?)" +
                    kRecompile);
      }
    }
    return Status::ok();
  }

  /// The shapes a ring attention's kernels rely on: f32 blocks [batch...,
  /// n, d] of one length, lse [batch..., n] and the workspace's size.
  Status checkRing(const std::string &what, const plan::RingAttention &r,
                   std::unordered_map<int64_t, BufferInfo> &buffers) const {
    const BufferInfo &q = buffers[r.inputs(0)], &k = buffers[r.inputs(1)],
                     &v = buffers[r.inputs(2)];
    const BufferInfo &ws = buffers[r.outputs(r.outputs_size() - 1)];
    const BufferInfo &lse = buffers[r.backward() ? r.inputs(4) : r.outputs(1)];
    size_t rank = q.shape.size();
    bool ok = rank >= 2 && k.shape.size() == rank && v.shape.size() == rank &&
              q.dtype == DType::F32 && k.dtype == DType::F32 &&
              v.dtype == DType::F32 && ws.dtype == DType::F32 &&
              lse.dtype == DType::F32 && ws.shape.size() == 1;
    if (ok) {
      std::vector<int64_t> rows(q.shape.begin(), q.shape.end() - 1),
          kRows(k.shape.begin(), k.shape.end() - 1),
          vRows(v.shape.begin(), v.shape.end() - 1);
      int64_t nrows = numElements(rows);
      int64_t kv = numElements(k.shape) + numElements(v.shape);
      int64_t need = r.backward() ? 2 * kv + nrows : kv + 2 * nrows;
      ok = rows == kRows && rows == vRows && lse.shape == rows &&
           q.shape.back() == k.shape.back() && ws.shape[0] == need;
    }
    if (!ok)
      return fail(what + ": query " + formatShape(q.shape) + ", key " +
                  formatShape(k.shape) + ", value " + formatShape(v.shape) +
                  ", lse " + formatShape(lse.shape) + " and workspace " +
                  formatShape(ws.shape) + " do not fit a ring of f32 blocks" +
                  kRecompile);
    return Status::ok();
  }

  template <typename IOList, typename BindingList>
  Status checkIO(const std::string &rank, const char *kind, const IOList &io,
                 const BindingList &bindings,
                 std::unordered_map<int64_t, BufferInfo> &buffers) const {
    std::set<int> seen;
    for (const plan::IOBinding &b : io) {
      std::string what =
          std::string(kind) + " binding " + std::to_string(b.index());
      if (b.index() < 0 || b.index() >= bindings.size())
        return fail(rank + what + " refers to " + kind + " " +
                    std::to_string(b.index()) + " but the plan has " +
                    std::to_string(bindings.size()) + kRecompile);
      const plan::Binding &binding = bindings.Get(b.index());
      what = std::string(kind) + " '" + binding.name() + "'";
      if (!seen.insert(b.index()).second)
        return fail(rank + what + " is bound twice" + kRecompile);
      auto it = buffers.find(b.buffer());
      if (it == buffers.end())
        return fail(rank + what + " uses buffer " + std::to_string(b.buffer()) +
                    ", which the rank does not define" + kRecompile);
      // A split input's buffer holds a piece (checkRunnable checks that the
      // pieces make up the whole).
      bool piece = b.has_sharding() &&
                   it->second.shape.size() == shapeOf(binding.type()).size();
      if (static_cast<int>(it->second.dtype) != binding.type().dtype() ||
          (it->second.shape != shapeOf(binding.type()) && !piece)) {
        DType expected = DType::F32;
        toDType(binding.type().dtype(), expected);
        return fail(rank + what + " is " + dtypeName(expected) +
                    formatShape(shapeOf(binding.type())) + " but its buffer " +
                    std::to_string(b.buffer()) + " is " +
                    dtypeName(it->second.dtype) +
                    formatShape(it->second.shape) + kRecompile);
      }
    }
    return Status::ok();
  }

  const plan::Plan &plan_;
  std::string prefix_;
};

const char *instructionKind(const plan::Instruction &inst) {
  switch (inst.kind_case()) {
  case plan::Instruction::kCollective:
    return "collective";
  case plan::Instruction::kSend:
    return "send";
  case plan::Instruction::kRecv:
    return "recv";
  case plan::Instruction::kCopy:
    return "host copy";
  default:
    return "instruction";
  }
}

} // namespace

Status validatePlan(const plan::Plan &plan, const std::string &source) {
  return Validator(plan, source).run();
}

/// Checks that `sharding` names mesh axes and splits `whole` evenly into
/// pieces of `piece`.
static Status checkSharding(const plan::Sharding &sharding,
                            const MeshLayout &mesh,
                            const std::vector<int64_t> &whole,
                            const std::vector<int64_t> &piece) {
  if (whole.size() != piece.size())
    return Status::error("its piece has rank " + std::to_string(piece.size()) +
                         " but the whole tensor rank " +
                         std::to_string(whole.size()));
  if (sharding.dims_size() > static_cast<int>(whole.size()))
    return Status::error("its sharding lists more dimensions than it has");
  for (size_t d = 0; d < whole.size(); ++d) {
    int64_t split = 1;
    if (static_cast<int>(d) < sharding.dims_size())
      for (const std::string &a : sharding.dims(d).axes()) {
        int i = mesh.axisIndex(a);
        if (i < 0)
          return Status::error("its sharding names axis '" + a +
                               "', which the mesh (" + mesh.describe() +
                               ") does not have");
        std::vector<int> members;
        int position;
        (void)mesh.group(0, {a}, members, position);
        split *= static_cast<int64_t>(members.size());
      }
    if (piece[d] * split != whole[d])
      return Status::error("its piece " + formatShape(piece) +
                           " split as the plan says does not make its whole "
                           "shape " +
                           formatShape(whole));
  }
  return Status::ok();
}

Status checkRunnable(const plan::Plan &plan, const std::string &source) {
  std::string prefix = "plan '" + source + "': ";
  const plan::Mesh &m = plan.mesh();
  if (m.axis_names_size() != m.axis_sizes_size())
    return Status::error(
        prefix + "its mesh has " + std::to_string(m.axis_names_size()) +
        " axis names but " + std::to_string(m.axis_sizes_size()) + " sizes" +
        kRecompile);
  for (int64_t size : m.axis_sizes())
    if (size < 1 || size > 65536)
      return Status::error(prefix + "its mesh has an axis of size " +
                           std::to_string(size) + kRecompile);
  MeshLayout mesh(m);
  int64_t world = mesh.numRanks();
  std::vector<int> owner(static_cast<size_t>(world), -1);
  for (int p = 0; p < plan.ranks_size(); ++p) {
    const plan::RankProgram &program = plan.ranks(p);
    std::vector<int> members(program.members().begin(),
                             program.members().end());
    if (members.empty())
      members.push_back(program.rank());
    for (int r : members) {
      if (r < 0 || r >= world)
        return Status::error(prefix + "a program is for rank " +
                             std::to_string(r) + ", outside its mesh (" +
                             mesh.describe() + ")" + kRecompile);
      if (owner[r] >= 0)
        return Status::error(prefix + "rank " + std::to_string(r) +
                             " has two programs" + kRecompile);
      owner[r] = p;
    }
    for (int i = 0; i < program.program_size(); ++i) {
      const plan::Instruction &inst = program.program(i);
      std::string what = "instruction #" + std::to_string(i);
      switch (inst.kind_case()) {
      case plan::Instruction::kKernel:
      case plan::Instruction::kFree:
      case plan::Instruction::kAssign:
      case plan::Instruction::kCopy:
        break;
      case plan::Instruction::kRingAttention:
        if (world == 1)
          return Status::error(prefix + what +
                               " is a ring attention, but the plan runs on "
                               "one rank" +
                               kRecompile);
        for (const std::string &a : inst.ring_attention().axes())
          if (mesh.axisIndex(a) < 0)
            return Status::error(prefix + what + " names mesh axis '" + a +
                                 "', which the mesh (" + mesh.describe() +
                                 ") does not have" + kRecompile);
        break;
      case plan::Instruction::kCollective: {
        const plan::Collective &c = inst.collective();
        static const char *kinds[] = {"all_reduce", "all_gather",
                                      "reduce_scatter", "all_to_all",
                                      "all_slice"};
        if (std::find(std::begin(kinds), std::end(kinds), c.kind()) ==
            std::end(kinds))
          return Status::error(prefix + what + " is an unknown collective '" +
                               c.kind() + "'" + kRecompile);
        if (!c.reduction().empty() && c.reduction() != "sum" &&
            c.reduction() != "max" && c.reduction() != "min" &&
            c.reduction() != "avg")
          return Status::error(prefix + what + " has unknown reduction '" +
                               c.reduction() + "'" + kRecompile);
        for (const std::string &a : c.axes())
          if (mesh.axisIndex(a) < 0)
            return Status::error(prefix + what + " names mesh axis '" + a +
                                 "', which the mesh (" + mesh.describe() +
                                 ") does not have" + kRecompile);
        break;
      }
      case plan::Instruction::kSend:
      case plan::Instruction::kRecv: {
        const plan::SendRecv &sr = inst.has_send() ? inst.send() : inst.recv();
        if (world == 1)
          return Status::error(prefix + what + " is a " +
                               instructionKind(inst) +
                               ", but the plan runs on one rank: it has no "
                               "peer" +
                               kRecompile);
        int64_t limit = world;
        if (!sr.axis().empty()) {
          int axis = mesh.axisIndex(sr.axis());
          if (axis < 0)
            return Status::error(prefix + what + " (" + instructionKind(inst) +
                                 ") names mesh axis '" + sr.axis() +
                                 "', which the mesh (" + mesh.describe() +
                                 ") does not have" + kRecompile);
          limit = m.axis_sizes(axis);
        }
        if (sr.peer() < 0 || sr.peer() >= limit)
          return Status::error(prefix + what + " (" + instructionKind(inst) +
                               ") names peer " + std::to_string(sr.peer()) +
                               ", outside " + std::to_string(limit) +
                               kRecompile);
        break;
      }
      default:
        return Status::error(prefix + what + " is a " + instructionKind(inst) +
                             ", which this runtime does not know" + kRecompile);
      }
    }
    std::map<int64_t, const plan::Buffer *> buffers;
    for (const plan::Buffer &b : program.buffers())
      buffers[b.id()] = &b;
    for (const plan::ParamSlice &slice : program.parameters()) {
      if (!slice.has_sharding())
        continue;
      const plan::Parameter &param = plan.parameters(slice.parameter());
      if (Status s =
              checkSharding(slice.sharding(), mesh, shapeOf(param.type()),
                            shapeOf(buffers.at(slice.buffer())->type()));
          !s)
        return Status::error(prefix + "parameter '" + param.name() +
                             "': " + s.message() + kRecompile);
    }
    for (const plan::IOBinding &io : program.inputs()) {
      if (!io.has_sharding())
        continue;
      const plan::Binding &in = plan.inputs(io.index());
      if (Status s = checkSharding(io.sharding(), mesh, shapeOf(in.type()),
                                   shapeOf(buffers.at(io.buffer())->type()));
          !s)
        return Status::error(prefix + "input '" + in.name() +
                             "': " + s.message() + kRecompile);
    }
    for (const plan::IOBinding &io : program.outputs())
      if (io.has_sharding() && io.sharding().dims_size())
        for (const plan::AxisList &axes : io.sharding().dims())
          if (axes.axes_size())
            return Status::error(
                prefix + "output '" + plan.outputs(io.index()).name() +
                "' is split; outputs must be whole" + kRecompile);
  }
  for (int64_t r = 0; r < world; ++r)
    if (owner[r] < 0)
      return Status::error(prefix + "rank " + std::to_string(r) +
                           " of its mesh (" + mesh.describe() +
                           ") has no program" + kRecompile);
  return Status::ok();
}

int programIndexFor(const plan::Plan &plan, int rank) {
  for (int p = 0; p < plan.ranks_size(); ++p) {
    const plan::RankProgram &program = plan.ranks(p);
    if (program.members_size() == 0
            ? program.rank() == rank
            : std::find(program.members().begin(), program.members().end(),
                        rank) != program.members().end())
      return p;
  }
  return -1;
}

Status checkBackendSupport(const plan::RankProgram &program,
                           const Backend &backend, const std::string &source) {
  // First location of each missing op, in program order.
  std::vector<std::pair<std::string, std::string>> missing;
  std::set<std::string> seen;
  for (int i = 0; i < program.program_size(); ++i) {
    const plan::Instruction &inst = program.program(i);
    if (inst.kind_case() != plan::Instruction::kKernel)
      continue;
    const plan::Kernel &k = inst.kernel();
    if (backend.supports(k.op()) || !seen.insert(k.op()).second)
      continue;
    missing.emplace_back(k.op(), k.location().empty()
                                     ? "instruction #" + std::to_string(i)
                                     : k.location());
  }
  if (missing.empty())
    return Status::ok();
  std::string list;
  for (size_t i = 0; i < missing.size() && i < 8; ++i)
    list += (i ? ", " : "") +
            ("'" + missing[i].first + "' (at " + missing[i].second + ")");
  if (missing.size() > 8)
    list += " and " + std::to_string(missing.size() - 8) + " more";
  return Status::error(
      "plan '" + source + "': the " + backend.name() +
      " backend has no kernel for " + (missing.size() == 1 ? "op " : "ops ") +
      list + "; use a backend that implements " +
      (missing.size() == 1 ? "it" : "them") + " or a newer runtime");
}

} // namespace colossal::rt
