//===- MarkRecomputePass.cpp - colossal-mark-recompute --------------------===//
//
// Marks what a recomputation plan recomputes, per layer of the structure
// the cost model sees (LayerStructure.h), for colossal-recompute to carry
// out once the backward exists.
//
//===----------------------------------------------------------------------===//

#include "compiler/estimate/LayerStructure.h"
#include "passes/Passes.h"

#include "dialects/Graph/IR/GraphOps.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseSet.h"

namespace mlir::colossal {
#define GEN_PASS_DEF_MARKRECOMPUTEPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

bool fromWeights(Value v) {
  Operation *def = stripViews(v).getDefiningOp();
  return def && isa<ParamOp, ConstantOp>(def);
}

/// An unfused attention core starting at `qk` (a product of two
/// activations): the ops from it through the score softmax up to, not
/// including, the product with V. Empty when no softmax is on the way.
SmallVector<Operation *> attentionCore(MatMulOp qk) {
  SmallVector<Operation *> core{qk}, work{qk};
  llvm::DenseSet<Operation *> seen{qk};
  bool softmax = false;
  while (!work.empty()) {
    Operation *op = work.pop_back_val();
    for (Operation *user : op->getUsers()) {
      if (isa<MatMulOp, LinearOp, func::ReturnOp>(user) ||
          !seen.insert(user).second)
        continue;
      softmax |= isa<SoftmaxOp>(user);
      core.push_back(user);
      work.push_back(user);
    }
  }
  if (!softmax)
    return {};
  return core;
}

struct MarkRecomputePass
    : mlir::colossal::impl::MarkRecomputePassBase<MarkRecomputePass> {
  using MarkRecomputePassBase::MarkRecomputePassBase;

  void runOnOperation() override {
    if (mode != "none" && mode != "selective" && mode != "full") {
      getOperation().emitError("colossal-mark-recompute: mode='")
          << mode << "' is not one of none, selective, full";
      return signalPassFailure();
    }
    if (layers < 0) {
      getOperation().emitError("colossal-mark-recompute: layers=")
          << static_cast<int64_t>(layers) << " must be >= 0 (0: every block)";
      return signalPassFailure();
    }
    if (mode == "none")
      return;
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (!func.isExternal() && failed(mark(func)))
        return signalPassFailure();
  }

  LogicalResult mark(func::FuncOp func) {
    LayerStructure structure = findLayerStructure(func);
    if (structure.numBlocks == 0)
      return func.emitError("recompute=")
             << mode << " needs repeated layers to recompute, but "
             << structure.summary
             << "; use recompute=none (or a smaller micro-batch) for this "
                "model";
    OpBuilder b(func.getContext());
    auto inBlock = [&](Operation *op, int &layer) {
      auto it = structure.layerOf.find(op);
      if (it == structure.layerOf.end())
        return false;
      layer = it->second;
      return layer >= 0 && layer < structure.numBlocks;
    };
    int marked = 0;
    func.walk([&](Operation *op) {
      int layer;
      if (!inBlock(op, layer))
        return;
      if (mode == "full") {
        if (layers == 0 || layer < layers) {
          op->setAttr("cg.remat", b.getI64IntegerAttr(layer));
          ++marked;
        }
        return;
      }
      // selective: the attention core.
      if (isa<AttentionOp>(op)) {
        op->setAttr("cg.remat", b.getI64IntegerAttr(layer));
        ++marked;
        return;
      }
      auto mm = dyn_cast<MatMulOp>(op);
      if (!mm || fromWeights(mm.getLhs()) || fromWeights(mm.getRhs()))
        return;
      for (Operation *core : attentionCore(mm)) {
        core->setAttr("cg.remat", b.getI64IntegerAttr(layer));
        ++marked;
      }
    });
    if (marked == 0)
      return func.emitError("recompute=")
             << mode
             << ": no attention in the model's blocks to recompute (selective "
                "recomputation recomputes the attention core); use "
                "recompute=full or none";
    return success();
  }
};

} // namespace
