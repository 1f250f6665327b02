//===- FuseElementwise.cpp - Chains of elementwise ops as one kernel ------===//
//
// Steps, per function, in program order: (1) grow regions of float32
// elementwise ops over one shape: an op joins the open regions of its
// operands of its type (merged into one; scalars are inputs) that ended at
// most `max-span` ops before it, and a region
// closes once anything outside it reads one of its values, so every
// outside reader comes after its last op; (2) rewrite each region of at least
// `min-steps` ops as one cg.fused_elementwise at its last op, yielding the
// values read outside.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/SetVector.h"

#include <memory>

namespace mlir::colossal {
#define GEN_PASS_DEF_FUSEELEMENTWISEPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

/// The step name of a fusible op (one cg.fused_elementwise can run), or "".
StringRef stepName(Operation *op) {
  if (!isa<CGDialect>(op->getDialect()))
    return "";
  StringRef name = op->getName().stripDialect();
  bool binary = llvm::is_contained(FusedElementwiseOp::binarySteps(), name);
  if ((binary && op->getNumOperands() == 2) ||
      (op->getNumOperands() == 1 &&
       llvm::is_contained(FusedElementwiseOp::unarySteps(), name)))
    return name;
  return "";
}

/// Whether `op` can be a step of a region of its result's type: float32,
/// every operand of that shape or a single element.
bool fusible(Operation *op) {
  if (stepName(op).empty() || op->getNumResults() != 1)
    return false;
  auto type = dyn_cast<RankedTensorType>(op->getResult(0).getType());
  if (!type || !type.getElementType().isF32() || !type.hasStaticShape())
    return false;
  return llvm::all_of(op->getOperands(), [&](Value v) {
    auto t = dyn_cast<RankedTensorType>(v.getType());
    return t && t.getElementType().isF32() && t.hasStaticShape() &&
           (t.getShape() == type.getShape() || t.getNumElements() == 1);
  });
}

struct Region {
  SmallVector<Operation *> ops;
  Type type;
  bool host = false;
  bool closed = false;
};

struct FuseElementwisePass
    : mlir::colossal::impl::FuseElementwisePassBase<FuseElementwisePass> {
  using FuseElementwisePassBase::FuseElementwisePassBase;

  void runOnOperation() override {
    if (minSteps < 2 || maxSpan < 0) {
      getOperation().emitError("colossal-fuse-elementwise: min-steps must be "
                               ">= 2 (a region of one op is that op) and "
                               "max-span >= 0");
      return signalPassFailure();
    }
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (!func.isExternal())
        fuse(func);
  }

  void fuse(func::FuncOp func) {
    // Step 1: regions, in program order.
    std::vector<std::unique_ptr<Region>> regions;
    DenseMap<Operation *, Region *> regionOf;
    auto owner = [&](Value v) -> Region * {
      Operation *def = v.getDefiningOp();
      return def ? regionOf.lookup(def) : nullptr;
    };
    DenseMap<Operation *, int64_t> position;
    for (Operation &op : func.getBody().front()) {
      int64_t here = static_cast<int64_t>(position.size());
      position[&op] = here;
      Region *target = nullptr;
      if (fusible(&op)) {
        bool host = op.hasAttr("cg.host");
        // The open regions of its type it reads join into one (the first),
        // which it joins.
        for (Value v : op.getOperands()) {
          Region *r = owner(v);
          if (!r || r == target || r->closed ||
              r->type != op.getResult(0).getType() || r->host != host ||
              here - position.lookup(r->ops.back()) - 1 > maxSpan)
            continue;
          if (!target) {
            target = r;
            continue;
          }
          for (Operation *moved : r->ops) {
            target->ops.push_back(moved);
            regionOf[moved] = target;
          }
          r->ops.clear();
          r->closed = true;
        }
        if (target)
          llvm::sort(target->ops, [&](Operation *a, Operation *b) {
            return position.lookup(a) < position.lookup(b);
          });
        if (!target) {
          regions.push_back(std::make_unique<Region>());
          target = regions.back().get();
          target->type = op.getResult(0).getType();
          target->host = host;
        }
        target->ops.push_back(&op);
        regionOf[&op] = target;
      }
      // Another region's value read here: that region is done.
      for (Value v : op.getOperands())
        if (Region *r = owner(v); r && r != target)
          r->closed = true;
    }
    // Step 2: the rewrite.
    for (auto &region : regions)
      if (static_cast<int64_t>(region->ops.size()) >= minSteps)
        rewrite(*region);
  }

  void rewrite(Region &region) {
    llvm::SmallPtrSet<Operation *, 16> members(region.ops.begin(),
                                               region.ops.end());
    llvm::SetVector<Value> inputs;
    for (Operation *op : region.ops)
      for (Value v : op->getOperands())
        if (!v.getDefiningOp() || !members.contains(v.getDefiningOp()))
          inputs.insert(v);
    int64_t numInputs = static_cast<int64_t>(inputs.size());
    DenseMap<Value, int64_t> index;
    for (auto [i, v] : llvm::enumerate(inputs))
      index[v] = static_cast<int64_t>(i);
    std::string steps;
    SmallVector<int64_t> args, yields;
    SmallVector<Value> yielded;
    for (auto [i, op] : llvm::enumerate(region.ops)) {
      if (i)
        steps += ",";
      steps += stepName(op).str();
      args.push_back(index.lookup(op->getOperand(0)));
      args.push_back(op->getNumOperands() > 1 ? index.lookup(op->getOperand(1))
                                              : int64_t(-1));
      index[op->getResult(0)] = numInputs + static_cast<int64_t>(i);
      bool readOutside = llvm::any_of(op->getUsers(), [&](Operation *user) {
        return !members.contains(user);
      });
      if (readOutside) {
        yields.push_back(static_cast<int64_t>(i));
        yielded.push_back(op->getResult(0));
      }
    }
    Operation *last = region.ops.back();
    OpBuilder b(last);
    SmallVector<Type> types(yielded.size(), region.type);
    auto fused = b.create<FusedElementwiseOp>(
        region.ops.front()->getLoc(), types, inputs.getArrayRef(),
        b.getStringAttr(steps), b.getDenseI64ArrayAttr(args),
        b.getDenseI64ArrayAttr(yields));
    if (region.host)
      fused->setAttr("cg.host", b.getUnitAttr());
    for (auto [old, now] : llvm::zip(yielded, fused.getValues()))
      old.replaceAllUsesWith(now);
    for (Operation *op : llvm::reverse(region.ops))
      op->erase();
  }
};

} // namespace
