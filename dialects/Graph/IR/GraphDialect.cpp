//===- GraphDialect.cpp - The cg dialect ----------------------------------===//
//
// Registration, constant materialization, and verification of the
// discardable attributes the dialect owns: `cg.sharding` on op results and
// function arguments/results, and `cg.name` on function arguments/results.
//
//===----------------------------------------------------------------------===//

#include "dialects/Graph/IR/GraphOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"

using namespace mlir;
using namespace mlir::colossal::cg;

#include "dialects/Graph/IR/GraphDialect.cpp.inc"
#include "dialects/Graph/IR/GraphEnums.cpp.inc"

void CGDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/Graph/IR/GraphOps.cpp.inc"
      >();
  registerAttributes();
}

Operation *CGDialect::materializeConstant(OpBuilder &builder, Attribute value,
                                          Type type, Location loc) {
  auto elements = dyn_cast<ElementsAttr>(value);
  if (!elements || elements.getType() != type)
    return nullptr;
  return builder.create<ConstantOp>(loc, elements);
}

/// Verifies `sharding` for a value of `type`, resolving its mesh from the
/// symbol table around `scope`.
static LogicalResult
verifySharding(Operation *scope, ShardingAttr sharding, Type type,
               function_ref<InFlightDiagnostic()> emitError) {
  auto shaped = dyn_cast<ShapedType>(type);
  if (!shaped || !shaped.hasStaticShape())
    return emitError() << "sharding applies to statically shaped tensors, not "
                       << type;
  auto mesh =
      SymbolTable::lookupNearestSymbolFrom<MeshOp>(scope, sharding.getMesh());
  if (!mesh)
    return emitError() << "sharding refers to " << sharding.getMesh()
                       << ", which is not a cg.mesh";
  return sharding.verifyFor(emitError, mesh.getMesh(), shaped);
}

LogicalResult CGDialect::verifyOperationAttribute(Operation *op,
                                                  NamedAttribute attr) {
  // Provenance recorded by the importer on the module.
  StringRef name = attr.getName().getValue();
  if (isa<ModuleOp>(op) &&
      (name == "cg.source" || name == "cg.opset" || name == "cg.arena_bytes" ||
       name == "cg.plan" || name == "cg.predicted_step_time_s" ||
       name == "cg.loss_scale" || name == "cg.predicted_peak_memory_bytes")) {
    bool ok = name == "cg.source" || name == "cg.plan"
                  ? isa<StringAttr>(attr.getValue())
              : name == "cg.predicted_step_time_s" || name == "cg.loss_scale"
                  ? isa<FloatAttr>(attr.getValue())
                  : isa<IntegerAttr>(attr.getValue());
    if (!ok)
      return op->emitError() << "'" << name << "' has the wrong kind of value";
    return success();
  }
  // How a training step is driven (colossal-optimizer).
  if (isa<ModuleOp>(op) &&
      (name == "cg.training" || name == "cg.loss" ||
       name == "cg.derived_weights" || name == "cg.memory_estimate" ||
       name == "cg.program_memory")) {
    if (!isa<DictionaryAttr>(attr.getValue()))
      return op->emitError() << "'" << name << "' must be a dictionary";
    return success();
  }
  // Training state the optimizer keeps, as opposed to a model weight.
  if (name == "cg.role") {
    if (!isa<ParamOp>(op))
      return op->emitError() << "'cg.role' belongs on a cg.param";
    auto role = dyn_cast<StringAttr>(attr.getValue());
    if (!role ||
        (role.getValue() != "optimizer" && role.getValue() != "weight"))
      return op->emitError() << "'cg.role' must be \"weight\" or \"optimizer\"";
    return success();
  }
  // The auto-parallel plan: pipeline stage and recomputation of an op.
  if (name == "cg.stage" || name == "cg.remat") {
    // cg.remat: the recompute group (the layer); a unit is group 0.
    if (name == "cg.stage" ? !isa<IntegerAttr>(attr.getValue())
                           : !isa<UnitAttr, IntegerAttr>(attr.getValue()))
      return op->emitError() << "'" << name << "' has the wrong kind of value";
    return success();
  }
  // Pipelines: the model chunk on a stage (colossal-mark-stages), the
  // backward and update ops (colossal-autodiff, colossal-optimizer), and a
  // stage's program and its arena (colossal-pipeline, colossal-plan-memory).
  // The repeated layer an op belongs to (colossal-mark-layers).
  if (name == "cg.layer") {
    if (!isa<IntegerAttr>(attr.getValue()))
      return op->emitError() << "'cg.layer' must be an integer";
    return success();
  }
  if (name == "cg.virtual" || name == "cg.pipeline_stage" ||
      name == "cg.arena_bytes" || name == "cg.host_pool_bytes") {
    if (!isa<IntegerAttr>(attr.getValue()))
      return op->emitError() << "'" << name << "' must be an integer";
    return success();
  }
  if (name == "cg.host") {
    // An offloaded parameter, the host copy of a value (an offloaded
    // activation, a gradient for the host's update), or an op of the
    // optimizer step that runs on the host.
    bool onHost = isa<CGDialect>(op->getDialect()) && op->getNumResults() > 0 &&
                  !isa<AssignOp, ShardOp>(op);
    if (!(onHost || op->getName().getStringRef() == "cgd.copy_to_host") ||
        !isa<UnitAttr>(attr.getValue()))
      return op->emitError() << "'cg.host' is a unit attribute of a cg.param, "
                                "a cgd.copy_to_host or a cg op with results "
                                "(one that runs on the host)";
    return success();
  }
  // Attention that keeps a sequence split over sp (sp-mode=ring).
  if (name == "cg.ring_attention") {
    if (!isa<AttentionOp, AttentionBackwardOp>(op) ||
        !isa<UnitAttr>(attr.getValue()))
      return op->emitError() << "'cg.ring_attention' is a unit attribute of "
                                "cg.attention or cg.attention_backward";
    return success();
  }
  if (name == "cg.backward" || name == "cg.update") {
    if (!isa<UnitAttr>(attr.getValue()))
      return op->emitError() << "'" << name << "' is a unit attribute";
    return success();
  }
  // The weight a 2D/2.5D/3D layout's cg.shard re-lays (or whose gradient
  // it lays out), read as its transpose or not; and a shard whose later
  // readers (the backward) re-lay its input again (cg.regather).
  if (name == "cg.weight" || name == "cg.weight_transposed" ||
      name == "cg.regather") {
    if (!isa<ShardOp>(op) ||
        (name == "cg.weight" ? !isa<StringAttr>(attr.getValue())
                             : !isa<UnitAttr>(attr.getValue())))
      return op->emitError()
             << "'" << name << "' belongs on a cg.shard ("
             << (name == "cg.weight" ? "a string" : "a unit") << ")";
    return success();
  }
  if (name == "cg.pipeline") {
    if (!isa<DictionaryAttr>(attr.getValue()))
      return op->emitError() << "'cg.pipeline' must be a dictionary";
    return success();
  }
  // A collective that serves a bucket of several (colossal-bucket-collectives).
  if (name == "cg.bucket") {
    if (!isa<IntegerAttr>(attr.getValue()))
      return op->emitError() << "'cg.bucket' must be an integer (members)";
    return success();
  }
  // The cost model's time for the op on one device
  // (colossal-predict-times).
  if (name == "cg.predicted_s") {
    auto t = dyn_cast<FloatAttr>(attr.getValue());
    if (!t || !(t.getValueAsDouble() >= 0))
      return op->emitError() << "'cg.predicted_s' must be a float >= 0 "
                                "(seconds)";
    return success();
  }
  // The memory plan: one arena offset per result.
  if (name == "cg.offsets") {
    auto offsets = dyn_cast<DenseI64ArrayAttr>(attr.getValue());
    if (!offsets || offsets.size() != static_cast<int64_t>(op->getNumResults()))
      return op->emitError() << "'cg.offsets' must list one offset per result ("
                             << op->getNumResults() << ")";
    return success();
  }
  // Partitioning: the layout each operand must arrive in
  // (colossal-propagate-sharding), and, on a per-device value, the split of
  // the whole tensor it is a piece of (colossal-partition).
  if (name == "cg.operand_sharding" || name == "cg.shard_of") {
    auto list = dyn_cast<ArrayAttr>(attr.getValue());
    unsigned expected =
        name == "cg.shard_of" ? op->getNumResults() : op->getNumOperands();
    if (!list || list.size() != expected ||
        !llvm::all_of(list, [](Attribute a) { return isa<ShardingAttr>(a); }))
      return op->emitError()
             << "'" << name << "' must list one #cg.sharding "
             << "per " << (name == "cg.shard_of" ? "result" : "operand") << " ("
             << expected << ")";
    if (name == "cg.operand_sharding")
      for (auto [sharding, operand] : llvm::zip(list, op->getOperands())) {
        auto emitError = [&] { return op->emitError(); };
        if (failed(verifySharding(op, cast<ShardingAttr>(sharding),
                                  operand.getType(), emitError)))
          return failure();
      }
    return success();
  }
  if (attr.getName() != getShardingAttrName())
    return op->emitError() << "unknown attribute '" << attr.getName().getValue()
                           << "' of the cg dialect";
  auto shardings = dyn_cast<ArrayAttr>(attr.getValue());
  if (!shardings || shardings.size() != op->getNumResults())
    return op->emitError() << "'" << getShardingAttrName()
                           << "' must list one #cg.sharding per result ("
                           << op->getNumResults() << ")";
  for (auto [sharding, result] : llvm::zip(shardings, op->getResults())) {
    auto attrSharding = dyn_cast<ShardingAttr>(sharding);
    if (!attrSharding)
      return op->emitError() << "'" << getShardingAttrName() << "' holds "
                             << sharding << ", which is not a #cg.sharding";
    auto emitError = [&] { return op->emitError(); };
    if (failed(verifySharding(op, attrSharding, result.getType(), emitError)))
      return failure();
  }
  return success();
}

/// Verifies a `cg.*` attribute on a function argument or result.
static LogicalResult verifyValueAttribute(Operation *op, Type type,
                                          NamedAttribute attr, StringRef what) {
  StringRef name = attr.getName().getValue();
  if (name == CGDialect::getShardingAttrName()) {
    auto sharding = dyn_cast<ShardingAttr>(attr.getValue());
    if (!sharding)
      return op->emitError()
             << what << " attribute '" << name << "' must be a #cg.sharding";
    auto emitError = [&] { return op->emitError() << what << ": "; };
    return verifySharding(op, sharding, type, emitError);
  }
  if (name == "cg.shard_of") {
    if (!isa<ShardingAttr>(attr.getValue()))
      return op->emitError()
             << what << " attribute 'cg.shard_of' must be a #cg.sharding";
    return success();
  }
  if (name == "cg.name") {
    if (!isa<StringAttr>(attr.getValue()))
      return op->emitError() << what << " attribute 'cg.name' must be a string";
    return success();
  }
  if (name == "cg.offset") {
    if (!isa<IntegerAttr>(attr.getValue()))
      return op->emitError()
             << what << " attribute 'cg.offset' must be an integer";
    return success();
  }
  return op->emitError() << "unknown " << what << " attribute '" << name
                         << "' of the cg dialect";
}

static Type getRegionValueType(Operation *op, unsigned region, unsigned index,
                               bool result) {
  if (auto func = dyn_cast<FunctionOpInterface>(op))
    return result ? func.getResultTypes()[index]
                  : func.getArgumentTypes()[index];
  return op->getRegion(region).getArgument(index).getType();
}

LogicalResult CGDialect::verifyRegionArgAttribute(Operation *op,
                                                  unsigned regionIndex,
                                                  unsigned argIndex,
                                                  NamedAttribute attr) {
  return verifyValueAttribute(
      op, getRegionValueType(op, regionIndex, argIndex, false), attr,
      "argument " + std::to_string(argIndex));
}

LogicalResult CGDialect::verifyRegionResultAttribute(Operation *op,
                                                     unsigned regionIndex,
                                                     unsigned resultIndex,
                                                     NamedAttribute attr) {
  if (!isa<FunctionOpInterface>(op))
    return op->emitError() << "result attributes need a function";
  return verifyValueAttribute(
      op, getRegionValueType(op, regionIndex, resultIndex, true), attr,
      "result " + std::to_string(resultIndex));
}
