//===- PlanEmitter.cpp - Graph dialect to a .cplan file -------------------===//
//
// Every value gets a buffer at the offset the memory plan chose; parameters
// keep referencing their bytes (external data or the ONNX file) with paths
// made relative to the plan, so plan and weights move together; constants
// are embedded; each op becomes a kernel instruction carrying its
// attributes, followed by frees of the buffers whose last use it was.
//
//===----------------------------------------------------------------------===//

#include "compiler/plan/PlanEmitter.h"

#include "dialects/Dist/IR/DistOps.h"
#include "dialects/Graph/IR/GraphOps.h"
#include "runtime/core/PlanFile.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <map>

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;
namespace pb = ::colossal::plan;

namespace {

FailureOr<pb::DType> dtypeOf(Type t, Location loc) {
  if (t.isF32())
    return pb::F32;
  if (t.isF16())
    return pb::F16;
  if (t.isBF16())
    return pb::BF16;
  if (t.isF64())
    return pb::F64;
  if (t.isInteger(64))
    return pb::I64;
  if (t.isInteger(32))
    return pb::I32;
  if (t.isInteger(1))
    return pb::BOOL;
  return static_cast<LogicalResult>(emitError(loc)
                                    << "element type " << t
                                    << " has no runtime representation");
}

int64_t bufferBytes(ShapedType type) {
  int64_t bits = std::max<int64_t>(8, type.getElementTypeBitWidth());
  return type.getNumElements() * (bits / 8);
}

/// Little-endian bytes of a dense attribute, one byte per bool.
std::string rawBytes(DenseElementsAttr attr) {
  std::string out;
  auto type = attr.getType();
  int64_t n = type.getNumElements();
  Type element = type.getElementType();
  if (element.isInteger(1)) {
    for (bool b : attr.getValues<bool>())
      out.push_back(b ? 1 : 0);
    if (attr.isSplat())
      out.assign(n, attr.getSplatValue<bool>() ? 1 : 0);
    return out;
  }
  int64_t width = element.getIntOrFloatBitWidth() / 8;
  auto append = [&](const llvm::APInt &bits) {
    for (int64_t i = 0; i < width; ++i)
      out.push_back(static_cast<char>(bits.extractBitsAsZExtValue(8, 8 * i)));
  };
  if (isa<FloatType>(element)) {
    if (attr.isSplat()) {
      llvm::APInt bits = attr.getSplatValue<APFloat>().bitcastToAPInt();
      for (int64_t k = 0; k < n; ++k)
        append(bits);
    } else {
      for (const APFloat &f : attr.getValues<APFloat>())
        append(f.bitcastToAPInt());
    }
  } else {
    if (attr.isSplat()) {
      llvm::APInt bits = attr.getSplatValue<APInt>();
      for (int64_t k = 0; k < n; ++k)
        append(bits);
    } else {
      for (const APInt &v : attr.getValues<APInt>())
        append(v);
    }
  }
  return out;
}

/// `target` relative to `base` when it lies below it or a few levels up;
/// absolute otherwise.
std::string relativePath(StringRef target, StringRef base) {
  SmallVector<StringRef> t, b;
  for (auto it = llvm::sys::path::begin(target);
       it != llvm::sys::path::end(target); ++it)
    t.push_back(*it);
  for (auto it = llvm::sys::path::begin(base); it != llvm::sys::path::end(base);
       ++it)
    b.push_back(*it);
  size_t common = 0;
  while (common < t.size() && common < b.size() && t[common] == b[common])
    ++common;
  if (common == 0)
    return target.str();
  SmallString<256> out;
  for (size_t i = common; i < b.size(); ++i)
    llvm::sys::path::append(out, "..");
  for (size_t i = common; i < t.size(); ++i)
    llvm::sys::path::append(out, t[i]);
  return out.empty() ? std::string(".") : std::string(out);
}

std::string absolute(StringRef path) {
  SmallString<256> p(path);
  llvm::sys::fs::make_absolute(p);
  llvm::sys::path::remove_dots(p, /*remove_dot_dot=*/true);
  return std::string(p);
}

/// Copies an op's attributes into a kernel, with enums as strings and unit
/// attributes as 1.
LogicalResult copyAttributes(Operation *op, pb::Kernel &kernel) {
  for (NamedAttribute named : op->getAttrs()) {
    StringRef name = named.getName().getValue();
    if (name.starts_with("cg."))
      continue;
    pb::Attribute value;
    Attribute a = named.getValue();
    if (auto i = dyn_cast<IntegerAttr>(a))
      value.set_i(i.getValue().getSExtValue());
    else if (auto f = dyn_cast<FloatAttr>(a))
      value.set_f(f.getValueAsDouble());
    else if (isa<UnitAttr>(a))
      value.set_i(1);
    else if (auto str = dyn_cast<StringAttr>(a))
      value.set_s(str.str());
    else if (auto arr = dyn_cast<DenseI64ArrayAttr>(a))
      for (int64_t v : arr.asArrayRef())
        value.mutable_ints()->add_values(v);
    else if (auto p = dyn_cast<CmpPredicateAttr>(a))
      value.set_s(stringifyCmpPredicate(p.getValue()).str());
    else if (auto g = dyn_cast<GeluApproximationAttr>(a))
      value.set_s(stringifyGeluApproximation(g.getValue()).str());
    else
      return op->emitError("cannot encode attribute '")
             << name << "' (" << a << ") in a plan";
    (*kernel.mutable_attributes())[name.str()] = value;
  }
  // Defaulted attributes the printer omits must still reach the kernel.
  if (auto gelu = dyn_cast<GeluOp>(op))
    (*kernel.mutable_attributes())["approximate"].set_s(
        stringifyGeluApproximation(gelu.getApproximate()).str());
  return success();
}

std::string locationString(Location loc) {
  std::string s;
  llvm::raw_string_ostream os(s);
  if (auto name = dyn_cast<NameLoc>(loc))
    os << name.getName().getValue();
  else
    os << loc;
  return os.str();
}

/// The sharding of a partitioned value (null: whole on every device).
ShardingAttr shardingOf(Operation *op) {
  auto list = op->getAttrOfType<ArrayAttr>("cg.shard_of");
  return list && list.size() == 1 ? dyn_cast<ShardingAttr>(list[0])
                                  : ShardingAttr();
}

/// Writes `sharding` into the plan's form; false when it has pending sums
/// (a stored value is never one).
bool fillSharding(ShardingAttr sharding, int64_t rank, pb::Sharding &out) {
  if (!sharding)
    return true;
  if (!sharding.getPartialAxes().empty())
    return false;
  for (int64_t d = 0; d < rank; ++d) {
    pb::AxisList &axes = *out.add_dims();
    for (StringRef a : sharding.getDimAxes(d))
      axes.add_axes(a.str());
  }
  return true;
}

/// The whole shape of a value whose per-device shape is `local`.
SmallVector<int64_t> globalShape(ArrayRef<int64_t> local, ShardingAttr sharding,
                                 MeshAttr mesh) {
  SmallVector<int64_t> shape(local.begin(), local.end());
  if (!sharding || !mesh)
    return shape;
  for (int64_t d = 0; d < (int64_t)shape.size(); ++d)
    for (StringRef a : sharding.getDimAxes(d))
      shape[d] *= mesh.getAxisSize(a);
  return shape;
}

/// A collective of the cgd dialect as a plan instruction.
LogicalResult emitCollective(Operation &op, pb::Collective &c,
                             const DenseMap<Value, int64_t> &bufferOf) {
  auto axes = op.getAttrOfType<ArrayAttr>("axes");
  if (!axes || op.getNumOperands() != 1 || op.getNumResults() != 1)
    return op.emitError("has no plan instruction yet");
  for (Attribute a : axes)
    c.add_axes(cast<StringAttr>(a).str());
  c.set_input(bufferOf.lookup(op.getOperand(0)));
  c.set_output(bufferOf.lookup(op.getResult(0)));
  if (auto r = dyn_cast<cgd::AllReduceOp>(op)) {
    c.set_kind("all_reduce");
    c.set_reduction(cgd::stringifyReductionKind(r.getReduction()).str());
  } else if (auto g = dyn_cast<cgd::AllGatherOp>(op)) {
    c.set_kind("all_gather");
    c.set_dim(g.getDim());
  } else if (auto rs = dyn_cast<cgd::ReduceScatterOp>(op)) {
    c.set_kind("reduce_scatter");
    c.set_dim(rs.getDim());
    c.set_reduction(cgd::stringifyReductionKind(rs.getReduction()).str());
  } else if (auto s = dyn_cast<cgd::AllSliceOp>(op)) {
    c.set_kind("all_slice");
    c.set_dim(s.getDim());
  } else if (auto t = dyn_cast<cgd::AllToAllOp>(op)) {
    c.set_kind("all_to_all");
    c.set_dim(t.getSplitDim());
    c.set_concat_dim(t.getConcatDim());
  } else {
    return op.emitError("has no plan instruction yet");
  }
  return success();
}

} // namespace

LogicalResult mlir::colossal::buildPlan(ModuleOp module, StringRef planDir,
                                        StringRef producer, pb::Plan &plan) {
  SmallVector<func::FuncOp> funcs;
  for (auto f : module.getOps<func::FuncOp>())
    if (!f.isExternal())
      funcs.push_back(f);
  // One program, or one per pipeline stage (colossal-pipeline).
  bool pipelined = llvm::any_of(
      funcs, [](func::FuncOp f) { return f->hasAttr("cg.pipeline_stage"); });
  if (funcs.empty() || (funcs.size() != 1 && !pipelined))
    return module.emitError("a plan needs exactly one function with a body "
                            "(or one per pipeline stage)");
  if (!module->getAttrOfType<IntegerAttr>("cg.arena_bytes"))
    return module.emitError("the module has no memory plan; run "
                            "--colossal-plan-memory first");

  plan.set_producer(producer.str());
  plan.set_mode("infer");
  if (auto training = module->getAttrOfType<DictionaryAttr>("cg.training")) {
    plan.set_mode("train");
    pb::Training &t = *plan.mutable_training();
    auto str = [&](StringRef key) {
      auto v = training.getAs<StringAttr>(key);
      return v ? v.str() : std::string();
    };
    t.set_optimizer(str("optimizer"));
    t.set_lr_schedule(str("lr_schedule"));
    t.set_options(str("options"));
    t.set_labels_input(str("labels_input"));
    t.set_tokens_input(str("tokens_input"));
    t.set_loss(str("loss"));
    if (auto lr = training.getAs<FloatAttr>("lr"))
      t.set_lr(lr.getValueAsDouble());
    if (auto k = training.getAs<IntegerAttr>("micro_batches"))
      t.set_micro_batches(k.getInt());
    if (auto n = training.getAs<IntegerAttr>("classes"))
      t.set_num_classes(n.getInt());
    if (auto i = training.getAs<IntegerAttr>("ignore_index"))
      t.set_ignore_index(i.getInt());
    t.set_loss_output("loss");
    t.set_lr_output("lr");
    t.set_grad_norm_output("grad_norm");
  }
  // The mesh: the module's, or one device. Partitioned programs are SPMD:
  // one program that every rank runs.
  MeshAttr mesh;
  for (auto m : module.getOps<MeshOp>())
    mesh = m.getMesh();
  if (mesh) {
    for (auto [name, size] :
         llvm::zip(mesh.getAxisNames(), mesh.getAxisSizes())) {
      plan.mutable_mesh()->add_axis_names(name.str());
      plan.mutable_mesh()->add_axis_sizes(size);
    }
  } else {
    plan.mutable_mesh()->add_axis_names("device");
    plan.mutable_mesh()->add_axis_sizes(1);
  }
  if (auto pipeline = module->getAttrOfType<DictionaryAttr>("cg.pipeline")) {
    pb::Pipeline &p = *plan.mutable_pipeline();
    if (auto v = pipeline.getAs<IntegerAttr>("stages"))
      p.set_stages(v.getInt());
    if (auto v = pipeline.getAs<IntegerAttr>("micro_batches"))
      p.set_micro_batches(v.getInt());
    if (auto v = pipeline.getAs<IntegerAttr>("virtual_stages"))
      p.set_virtual_stages(v.getInt());
    if (auto v = pipeline.getAs<StringAttr>("schedule"))
      p.set_schedule(v.str());
  }

  std::string modelDir;
  if (auto source = module->getAttrOfType<StringAttr>("cg.source"))
    modelDir = llvm::sys::path::parent_path(absolute(source.getValue())).str();
  std::string planDirAbs = absolute(planDir.empty() ? "." : planDir);
  auto weightPath = [&](StringRef location) {
    SmallString<256> p;
    if (llvm::sys::path::is_absolute(location))
      p = location;
    else {
      p = modelDir.empty() ? StringRef(".") : StringRef(modelDir);
      llvm::sys::path::append(p, location);
    }
    return relativePath(absolute(p), planDirAbs);
  };

  if (auto source = module->getAttrOfType<StringAttr>("cg.source"))
    if (source.getValue().ends_with(".onnx"))
      plan.set_source_model(
          relativePath(absolute(source.getValue()), planDirAbs));

  if (auto derived =
          module->getAttrOfType<DictionaryAttr>("cg.derived_weights"))
    for (NamedAttribute d : derived)
      if (auto how = dyn_cast<StringAttr>(d.getValue()))
        (*plan.mutable_derived_weights())[d.getName().str()] = how.str();

  std::map<std::string, int> parameterIndex;
  auto emitProgram = [&](func::FuncOp func, pb::RankProgram &rank,
                         bool first) -> LogicalResult {
    DenseMap<Value, int64_t> bufferOf;
    auto addBuffer = [&](Value v, int64_t offset) -> FailureOr<int64_t> {
      auto type = cast<ShapedType>(v.getType());
      auto dtype = dtypeOf(type.getElementType(), v.getLoc());
      if (failed(dtype))
        return failure();
      int64_t id = rank.buffers_size();
      pb::Buffer &b = *rank.add_buffers();
      b.set_id(id);
      b.set_offset(offset);
      b.set_size(bufferBytes(type));
      b.mutable_type()->set_dtype(*dtype);
      for (int64_t d : type.getShape())
        b.mutable_type()->add_shape(d);
      bufferOf[v] = id;
      return id;
    };
    // Plans declare whole (global) types; `sharding` says how `v` was split.
    auto fillType = [&](pb::TensorType &t, Value v,
                        ShardingAttr sharding = {}) -> LogicalResult {
      auto type = cast<ShapedType>(v.getType());
      auto dtype = dtypeOf(type.getElementType(), v.getLoc());
      if (failed(dtype))
        return failure();
      t.set_dtype(*dtype);
      for (int64_t d : globalShape(type.getShape(), sharding, mesh))
        t.add_shape(d);
      return success();
    };

    // The plan's declaration of a parameter: its global type and where its
    // bytes come from.
    auto declareParameter = [&](ParamOp param,
                                ShardingAttr sharding) -> LogicalResult {
      pb::Parameter &p = *plan.add_parameters();
      p.set_name(param.getName().str());
      if (failed(fillType(*p.mutable_type(), param.getResult(), sharding)))
        return failure();
      Attribute source = param.getSourceAttr();
      if (auto ext = dyn_cast_or_null<ExternalDataAttr>(source)) {
        p.mutable_external()->set_location(weightPath(ext.getLocation()));
        p.mutable_external()->set_offset(ext.getOffset());
        p.mutable_external()->set_length(ext.getLength());
      } else if (auto init = dyn_cast_or_null<InitializerAttr>(source)) {
        p.mutable_initializer()->set_model(weightPath(init.getModel()));
        p.mutable_initializer()->set_name(init.getName().str());
      } else if (auto dense = dyn_cast_or_null<DenseElementsAttr>(source)) {
        if (dense.isSplat() && isa<FloatType>(dense.getElementType()) &&
            dense.getNumElements() > 1)
          p.set_fill(dense.getSplatValue<APFloat>().convertToDouble());
        else
          p.set_embedded(rawBytes(dense));
      } else {
        return param.emitError("parameter '")
               << param.getName()
               << "' says nowhere where its bytes are; a plan needs them";
      }
      if (auto role = param->getAttrOfType<StringAttr>("cg.role"))
        p.set_role(role.str());
      return success();
    };

    // Inputs (declared by the first program; every stage binds them all).
    for (BlockArgument arg : func.getArguments()) {
      auto offset =
          func.getArgAttrOfType<IntegerAttr>(arg.getArgNumber(), "cg.offset");
      if (!offset)
        return func.emitError("argument ")
               << arg.getArgNumber() << " has no memory plan";
      auto id = addBuffer(arg, offset.getInt());
      if (failed(id))
        return failure();
      pb::Binding scratch;
      pb::Binding &in = first ? *plan.add_inputs() : scratch;
      auto name =
          func.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "cg.name");
      in.set_name(name ? name.str()
                       : "input" + std::to_string(arg.getArgNumber()));
      auto sharding = func.getArgAttrOfType<ShardingAttr>(arg.getArgNumber(),
                                                          "cg.shard_of");
      if (failed(fillType(*in.mutable_type(), arg, sharding)))
        return failure();
      pb::IOBinding &io = *rank.add_inputs();
      io.set_index(arg.getArgNumber());
      io.set_buffer(*id);
      if (!fillSharding(sharding, arg.getType().cast<ShapedType>().getRank(),
                        *io.mutable_sharding()))
        return func.emitError("argument ")
               << arg.getArgNumber() << " cannot be a pending sum";
    }

    // Ring attentions of this program, numbered for their tags.
    int64_t ringCount = 0;
    // Last uses, for frees.
    DenseMap<Value, Operation *> lastUser;
    for (Operation &op : func.getBody().front())
      for (Value operand : op.getOperands())
        lastUser[operand] = &op;

    // A host <-> device copy (offload).
    auto addCopy = [&](Value from, Value to, bool toHost) {
      pb::Copy &c = *rank.add_program()->mutable_copy();
      c.set_source(bufferOf[from]);
      c.set_destination(bufferOf[to]);
      c.set_to_host(toHost);
    };

    // Buffers whose last use was `op`, unless a result of it took the bytes.
    auto freeDead = [&](Operation &op, ArrayRef<int64_t> resultOffsets) {
      for (Value operand : op.getOperands()) {
        Operation *def = operand.getDefiningOp();
        int64_t offset = rank.buffers(bufferOf[operand]).offset();
        if (lastUser.lookup(operand) == &op && def &&
            !isa<ParamOp, ConstantOp>(def) &&
            !llvm::is_contained(resultOffsets, offset))
          rank.add_program()->mutable_free()->set_buffer(bufferOf[operand]);
      }
    };

    // Each op's predicted time (colossal-predict-times) on the first
    // instruction it became.
    Operation *previous = nullptr;
    int previousStart = 0;
    auto stamp = [&] {
      auto t = previous ? previous->getAttrOfType<FloatAttr>("cg.predicted_s")
                        : nullptr;
      for (int i = previousStart; t && i < rank.program_size(); ++i)
        if (!rank.program(i).has_free()) {
          rank.mutable_program(i)->set_predicted_s(t.getValueAsDouble());
          break;
        }
    };
    for (Operation &op : func.getBody().front()) {
      stamp();
      previous = &op;
      previousStart = rank.program_size();
      if (isa<func::ReturnOp>(op))
        break;
      if (auto assign = dyn_cast<AssignOp>(op)) {
        Operation *param = assign.getParam().getDefiningOp();
        Operation *value = assign.getValue().getDefiningOp();
        bool hostValue = value && value->hasAttr("cg.host");
        if (param && param->hasAttr("cg.host") && !hostValue) {
          // Offloaded state: the new value goes back to the host pool.
          addCopy(assign.getValue(), assign.getParam(), /*toHost=*/true);
          freeDead(op, {});
          continue;
        }
        pb::Assign &a = *rank.add_program()->mutable_assign();
        a.set_source(bufferOf[assign.getValue()]);
        a.set_destination(bufferOf[assign.getParam()]);
        freeDead(op, {});
        continue;
      }
      if (auto send = dyn_cast<cgd::SendOp>(op)) {
        pb::SendRecv &sr = *rank.add_program()->mutable_send();
        sr.set_buffer(bufferOf[send.getInput()]);
        sr.set_peer(static_cast<int32_t>(send.getPeer()));
        sr.set_tag(static_cast<int64_t>(send.getTag()));
        sr.set_axis(send.getAxis().str());
        freeDead(op, {});
        continue;
      }
      auto offsets = op.getAttrOfType<DenseI64ArrayAttr>("cg.offsets");
      if (!offsets)
        return op.emitError("has no memory plan; run --colossal-plan-memory");
      for (auto [result, offset] :
           llvm::zip(op.getResults(), offsets.asArrayRef()))
        if (failed(addBuffer(result, offset)))
          return failure();
      if (op.hasAttr("cg.host"))
        for (Value result : op.getResults())
          rank.mutable_buffers(bufferOf[result])->set_host(true);
      if (auto copy = dyn_cast<cgd::CopyToHostOp>(op)) {
        // An offloaded activation: into its host buffer.
        if (!op.hasAttr("cg.host"))
          return op.emitError("copies to the host without a host buffer "
                              "(colossal-offload marks it cg.host)");
        addCopy(copy.getInput(), copy.getResult(), /*toHost=*/true);
        freeDead(op, {});
        continue;
      }
      if (auto copy = dyn_cast<cgd::CopyToDeviceOp>(op)) {
        Operation *from = copy.getInput().getDefiningOp();
        if (!from || !from->hasAttr("cg.host"))
          return op.emitError("copies to the device what is not offloaded");
        addCopy(copy.getInput(), copy.getResult(), /*toHost=*/false);
        continue;
      }

      if (auto param = dyn_cast<ParamOp>(op)) {
        // A weight two stages hold (a tied embedding) is declared once.
        ShardingAttr sharding = shardingOf(param);
        auto [known, isNew] = parameterIndex.try_emplace(
            param.getName().str(), plan.parameters_size());
        if (isNew && failed(declareParameter(param, sharding)))
          return failure();
        pb::ParamSlice &slice = *rank.add_parameters();
        slice.set_parameter(known->second);
        slice.set_buffer(bufferOf[param.getResult()]);
        if (!fillSharding(sharding, param.getType().getRank(),
                          *slice.mutable_sharding()))
          return param.emitError("a parameter cannot be a pending sum");
        continue;
      }
      if (auto constant = dyn_cast<ConstantOp>(op)) {
        auto dense = dyn_cast<DenseElementsAttr>(constant.getValue());
        if (!dense)
          return constant.emitError("only dense constants can go into a plan");
        pb::Constant &c = *rank.add_constants();
        c.set_buffer(bufferOf[constant.getResult()]);
        c.set_data(rawBytes(dense));
        continue;
      }
      // Aliases share their input's bytes; nothing to run.
      if (isa<ReshapeOp, ShardOp>(op) &&
          offsets[0] == rank.buffers(bufferOf[op.getOperand(0)]).offset())
        continue;
      if (auto recv = dyn_cast<cgd::RecvOp>(op)) {
        pb::SendRecv &sr = *rank.add_program()->mutable_recv();
        sr.set_buffer(bufferOf[recv.getResult()]);
        sr.set_peer(static_cast<int32_t>(recv.getPeer()));
        sr.set_tag(static_cast<int64_t>(recv.getTag()));
        sr.set_axis(recv.getAxis().str());
        continue;
      }
      if (isa<cgd::RingAttentionOp, cgd::RingAttentionBackwardOp>(op)) {
        pb::RingAttention &r = *rank.add_program()->mutable_ring_attention();
        r.set_backward(isa<cgd::RingAttentionBackwardOp>(op));
        for (Attribute a : op.getAttrOfType<ArrayAttr>("axes"))
          r.add_axes(cast<StringAttr>(a).str());
        for (Value operand : op.getOperands())
          r.add_inputs(bufferOf[operand]);
        for (Value result : op.getResults())
          r.add_outputs(bufferOf[result]);
        r.set_scale(op.getAttrOfType<FloatAttr>("scale").getValueAsDouble());
        r.set_causal(op.hasAttr("causal"));
        // Point-to-point tags of their own, above the pipeline's.
        r.set_tag((int64_t(1) << 44) + (ringCount++ << 16));
        freeDead(op, offsets.asArrayRef());
        continue;
      }
      if (op.getDialect() && op.getDialect()->getNamespace() ==
                                 cgd::CGDDialect::getDialectNamespace()) {
        if (failed(emitCollective(op, *rank.add_program()->mutable_collective(),
                                  bufferOf)))
          return failure();
        freeDead(op, offsets.asArrayRef());
        continue;
      }
      if (op.getDialect() == nullptr ||
          op.getDialect()->getNamespace() != CGDialect::getDialectNamespace())
        return op.emitError("has no kernel: plans are emitted from the graph "
                            "dialect only");
      pb::Kernel &kernel = *rank.add_program()->mutable_kernel();
      kernel.set_op(op.getName().stripDialect().str());
      kernel.set_host(op.hasAttr("cg.host"));
      for (Value operand : op.getOperands())
        kernel.add_inputs(bufferOf[operand]);
      for (Value result : op.getResults())
        kernel.add_outputs(bufferOf[result]);
      kernel.set_location(locationString(op.getLoc()));
      if (failed(copyAttributes(&op, kernel)))
        return failure();
      freeDead(op, offsets.asArrayRef());
    }

    // Outputs.
    auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
    for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
      pb::Binding scratch;
      pb::Binding &out = first ? *plan.add_outputs() : scratch;
      auto name = func.getResultAttrOfType<StringAttr>(i, "cg.name");
      out.set_name(name ? name.str() : "output" + std::to_string(i));
      if (failed(fillType(*out.mutable_type(), v)))
        return failure();
      pb::IOBinding &io = *rank.add_outputs();
      io.set_index(i);
      io.set_buffer(bufferOf[v]);
    }
    return success();
  };
  int64_t perStage = mesh ? mesh.getNumDevices() : 1;
  if (pipelined)
    perStage /= static_cast<int64_t>(funcs.size());
  for (auto [index, func] : llvm::enumerate(funcs)) {
    bool first = index == 0;
    pb::RankProgram &rank = *plan.add_ranks();
    // Stage s runs on the ranks whose (major) pp coordinate is s.
    int64_t stage = 0;
    if (auto s = func->getAttrOfType<IntegerAttr>("cg.pipeline_stage"))
      stage = s.getInt();
    rank.set_rank(static_cast<int32_t>(stage * perStage));
    auto arena = func->getAttrOfType<IntegerAttr>("cg.arena_bytes");
    if (!arena)
      arena = module->getAttrOfType<IntegerAttr>("cg.arena_bytes");
    rank.set_arena_bytes(arena.getInt());
    if (auto host = func->getAttrOfType<IntegerAttr>("cg.host_pool_bytes"))
      rank.set_host_pool_bytes(host.getInt());
    if (mesh)
      for (int64_t r = stage * perStage; r < (stage + 1) * perStage; ++r)
        rank.add_members(static_cast<int32_t>(r));
    if (failed(emitProgram(func, rank, first)))
      return failure();
  }
  return success();
}

LogicalResult mlir::colossal::emitPlanFile(ModuleOp module, StringRef path,
                                           StringRef producer) {
  pb::Plan plan;
  StringRef dir = llvm::sys::path::parent_path(path);
  if (failed(buildPlan(module, dir, producer, plan)))
    return failure();
  ::colossal::rt::Status status =
      ::colossal::rt::writePlanFile(plan, path.str());
  if (!status.isOk())
    return module.emitError(status.message());
  return success();
}
