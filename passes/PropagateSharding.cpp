//===- PropagateSharding.cpp - A sharding for every value -----------------===//
//
// Steps: (1) seed from function arguments, parameters and cg.shard ops,
// (2) walk the program in order asking each op's rule (a replicated
// weight's update runs whole), (3) record result and
// operand shardings on the ops. Programs are single blocks in dataflow
// order, so one forward walk sees every operand before its users.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "passes/Sharding.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::colossal {
#define GEN_PASS_DEF_PROPAGATESHARDINGPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

int64_t rankOf(Value v) { return cast<ShapedType>(v.getType()).getRank(); }

/// The sharding given to a value by hand or by an earlier pass.
FailureOr<Spec> annotated(Operation *op, ArrayAttr list, unsigned index,
                          Value v, MeshAttr mesh) {
  if (!list)
    return Spec::replicated(rankOf(v));
  if (index >= list.size())
    return op->emitError("cg.sharding lists ")
           << list.size() << " shardings for " << op->getNumResults()
           << " results";
  auto attr = dyn_cast<ShardingAttr>(list[index]);
  if (!attr)
    return op->emitError("cg.sharding must hold #cg.sharding attributes");
  if (failed(attr.verifyFor([&] { return op->emitError(); }, mesh,
                            cast<ShapedType>(v.getType()))))
    return failure();
  return Spec::fromAttr(attr, rankOf(v));
}

/// The values that reach, through pointwise ops of their own shape only,
/// assigns to whole (replicated) parameters and no assign to a split one:
/// the update of a replicated weight whose optimizer state is replicated
/// too. Users come after definitions, so one reverse walk sees every
/// value's readers before the value.
llvm::DenseSet<Value> updatesOfWholeParams(func::FuncOp func) {
  enum : unsigned { kWhole = 1, kSplit = 2 };
  DenseMap<Value, unsigned> reaches;
  SmallVector<Operation *> ops;
  for (Operation &op : func.getBody().front())
    ops.push_back(&op);
  for (Operation *op : llvm::reverse(ops)) {
    if (auto assign = dyn_cast<AssignOp>(op)) {
      auto param = assign.getParam().getDefiningOp<ParamOp>();
      auto list =
          param ? param->getAttrOfType<ArrayAttr>("cg.sharding") : ArrayAttr();
      bool whole =
          param && (!list || llvm::all_of(list, [&](Attribute a) {
            auto attr = dyn_cast<ShardingAttr>(a);
            return attr && Spec::fromAttr(attr, rankOf(param)).isReplicated();
          }));
      reaches[assign.getValue()] |= whole ? kWhole : kSplit;
      continue;
    }
    if (!isPointwise(op) || op->getNumResults() != 1)
      continue;
    unsigned r = reaches.lookup(op->getResult(0));
    if (!r)
      continue;
    for (Value v : op->getOperands())
      if (v.getType() == op->getResult(0).getType())
        reaches[v] |= r;
  }
  llvm::DenseSet<Value> out;
  for (auto [v, r] : reaches)
    if (r == kWhole)
      out.insert(v);
  return out;
}

struct PropagateShardingPass
    : mlir::colossal::impl::PropagateShardingPassBase<PropagateShardingPass> {
  using PropagateShardingPassBase::PropagateShardingPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MeshOp meshOp = findMesh(module);
    if (!meshOp)
      return markAllAnalysesPreserved(); // nothing is sharded
    PartialResolution resolution;
    if (resolvePartial == "all-reduce")
      resolution = PartialResolution::AllReduce;
    else if (resolvePartial == "reduce-scatter")
      resolution = PartialResolution::ReduceScatter;
    else {
      module.emitError("resolve-partial=")
          << resolvePartial
          << " is not known; use all-reduce or reduce-scatter";
      return signalPassFailure();
    }
    MeshAttr meshAttr = meshOp.getMesh();
    MeshInfo mesh = MeshInfo::fromAttr(meshAttr);
    auto meshRef = FlatSymbolRefAttr::get(meshOp.getSymNameAttr());
    MLIRContext *ctx = &getContext();
    Builder b(ctx);
    auto toArray = [&](ArrayRef<Spec> specs) {
      SmallVector<Attribute> attrs;
      for (const Spec &s : specs)
        attrs.push_back(s.toAttr(ctx, meshRef));
      return b.getArrayAttr(attrs);
    };

    WalkResult walk = module.walk([&](func::FuncOp func) {
      if (func.isExternal())
        return WalkResult::advance();
      DenseMap<Value, Spec> specOf;
      // Step 1: arguments.
      for (BlockArgument arg : func.getArguments()) {
        auto attr = func.getArgAttrOfType<ShardingAttr>(arg.getArgNumber(),
                                                        "cg.sharding");
        if (attr &&
            failed(attr.verifyFor([&] { return func.emitError(); }, meshAttr,
                                  cast<ShapedType>(arg.getType()))))
          return WalkResult::interrupt();
        specOf[arg] = Spec::fromAttr(attr, rankOf(arg));
      }
      // Step 2: every op in order.
      llvm::DenseSet<Value> wholeUpdates = updatesOfWholeParams(func);
      for (Operation &op : func.getBody().front()) {
        SmallVector<Spec> in;
        for (Value v : op.getOperands())
          in.push_back(specOf.lookup(v));
        OpShardings s;
        if (auto param = dyn_cast<ParamOp>(op)) {
          auto spec = annotated(&op, op.getAttrOfType<ArrayAttr>("cg.sharding"),
                                0, param.getResult(), meshAttr);
          if (failed(spec))
            return WalkResult::interrupt();
          s.results.push_back(*spec);
        } else if (auto shard = dyn_cast<ShardOp>(op)) {
          Spec want = Spec::fromAttr(shard.getSharding(), rankOf(shard));
          s.operands.push_back(want);
          s.results.push_back(want);
        } else if (auto assign = dyn_cast<AssignOp>(op)) {
          Spec target = specOf.lookup(assign.getParam());
          s.operands = {target, target};
        } else if (isa<func::ReturnOp>(op)) {
          for (Value v : op.getOperands())
            s.operands.push_back(Spec::replicated(rankOf(v)));
        } else {
          s = inferOpShardings(&op, in, mesh, resolution);
          // A replicated weight's update that would run on pieces (of a
          // gradient split by its producer: a bias's gradient summed from
          // head-split activations under Ulysses) runs whole instead: its
          // gradient is gathered once, rather than the new weight and each
          // piece of its state after the update.
          if (auto sum = dyn_cast<ReduceSumOp>(op);
              sum && wholeUpdates.contains(sum.getResult()))
            sumOverSplit(sum, in, s, mesh);
          if (isPointwise(&op) && op.getNumResults() == 1 &&
              wholeUpdates.contains(op.getResult(0)) &&
              llvm::any_of(s.results[0].dims,
                           [](const auto &axes) { return !axes.empty(); })) {
            s.results = {Spec::replicated(rankOf(op.getResult(0)))};
            s.operands.clear();
            for (Value v : op.getOperands())
              s.operands.push_back(Spec::replicated(rankOf(v)));
          }
        }
        // A pending sum resolved for one consumer stays resolved for the
        // later ones (the partitioner reuses the one collective).
        for (auto [v, want] : llvm::zip(op.getOperands(), s.operands))
          if (specOf.lookup(v).hasPartial() && !want.hasPartial())
            specOf[v] = want;
        // Step 3: record.
        for (auto [r, spec] : llvm::zip(op.getResults(), s.results)) {
          if (failed(spec.localShape(cast<ShapedType>(r.getType()).getShape(),
                                     mesh))) {
            op.emitError("result sharding ")
                << spec.str() << " does not divide " << r.getType();
            return WalkResult::interrupt();
          }
          specOf[r] = spec;
        }
        if (op.getNumResults())
          op.setAttr("cg.sharding", toArray(s.results));
        if (op.getNumOperands())
          op.setAttr(operandShardingAttrName(), toArray(s.operands));
      }
      sinkSlices(func, mesh, toArray);
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      signalPassFailure();
  }

  /// A gradient of a replicated weight summed from an activation split
  /// along a dimension it keeps (a bias's gradient from head-split
  /// activations under Ulysses) would come out split, and the update after
  /// it would need gathers: the split moves onto the last summed dimension
  /// instead (the sequence, as the layer's input gradient wants it: the
  /// partitioner makes that reshard once for both readers), and the sum is
  /// left pending, to be reduced with the other gradients.
  static void sumOverSplit(ReduceSumOp sum, ArrayRef<Spec> in, OpShardings &s,
                           const MeshInfo &mesh) {
    const Spec &x = in[0];
    int64_t rank = x.rank();
    auto shape = cast<ShapedType>(sum.getInput().getType()).getShape();
    llvm::SmallDenseSet<int64_t> reduced;
    for (int64_t a : sum.getAxes())
      reduced.insert(a < 0 ? a + rank : a);
    int64_t target = -1;
    for (int64_t d = rank - 1; d >= 0 && target < 0; --d)
      if (reduced.contains(d))
        target = d;
    if (x.hasPartial() || target < 0 || !x.dims[target].empty())
      return;
    Spec moved = x;
    SmallVector<std::string, 2> axes;
    for (int64_t d = 0; d < rank; ++d)
      if (!reduced.contains(d) && !x.dims[d].empty()) {
        axes.append(x.dims[d].begin(), x.dims[d].end());
        moved.dims[d].clear();
      }
    if (axes.empty())
      return;
    moved.dims[target] = axes;
    if (failed(moved.localShape(shape, mesh)))
      return;
    // Every split of a summed dimension leaves a pending sum over its axes.
    Spec result;
    for (int64_t d = 0; d < rank; ++d) {
      if (!reduced.contains(d)) {
        result.dims.push_back(moved.dims[d]);
        continue;
      }
      result.partial.append(moved.dims[d].begin(), moved.dims[d].end());
      if (sum.getKeepdims())
        result.dims.push_back({});
    }
    s.operands = {moved};
    s.results = {result};
  }

  /// Step 4: an elementwise op (or expand) whose every user wants a finer
  /// split of its whole result computes just that piece instead, from
  /// pieces of its operands that need no communication (a one-hot matrix
  /// of the labels against a vocabulary split over tp, the broadcast loss
  /// gradient over a split batch). Users come first in reverse order, so
  /// slices sink through chains of such ops.
  template <typename ToArray>
  void sinkSlices(func::FuncOp func, const MeshInfo &mesh, ToArray toArray) {
    auto specAt = [](Operation *op, StringRef name, unsigned i,
                     Value v) -> std::optional<Spec> {
      auto list = op->getAttrOfType<ArrayAttr>(name);
      if (!list || i >= list.size())
        return std::nullopt;
      auto attr = dyn_cast<ShardingAttr>(list[i]);
      if (!attr)
        return std::nullopt;
      return Spec::fromAttr(attr, rankOf(v));
    };
    SmallVector<Operation *> ops;
    for (Operation &op : func.getBody().front())
      ops.push_back(&op);
    for (Operation *op : llvm::reverse(ops)) {
      if (op->getNumResults() != 1 || !(isPointwise(op) || isa<ExpandOp>(op)))
        continue;
      Value result = op->getResult(0);
      auto have = specAt(op, "cg.sharding", 0, result);
      if (!have || result.use_empty())
        continue;
      std::optional<Spec> want;
      bool agree = true;
      for (OpOperand &use : result.getUses()) {
        auto w = specAt(use.getOwner(), operandShardingAttrName(),
                        use.getOperandNumber(), result);
        if (!w || (want && *w != *want))
          agree = false;
        else
          want = w;
      }
      if (!agree || !want || *want == *have || !want->refines(*have))
        continue;
      // The operands' pieces, aligned at the right; broadcast dims whole.
      auto shape = cast<ShapedType>(result.getType()).getShape();
      SmallVector<Spec> operands;
      bool ok = true;
      for (auto [i, v] : llvm::enumerate(op->getOperands())) {
        auto vShape = cast<ShapedType>(v.getType()).getShape();
        Spec s = Spec::replicated(vShape.size());
        int64_t shift = shape.size() - vShape.size();
        for (size_t d = 0; d < vShape.size(); ++d)
          if (vShape[d] == shape[d + shift])
            s.dims[d] = want->dims[d + shift];
        auto current = specAt(op, operandShardingAttrName(), i, v);
        ok = ok && current && s.refines(*current) &&
             succeeded(s.localShape(vShape, mesh));
        operands.push_back(s);
      }
      if (!ok)
        continue;
      op->setAttr("cg.sharding", toArray({*want}));
      op->setAttr(operandShardingAttrName(), toArray(operands));
    }
  }
};

} // namespace
