//===- MarkLayersPass.cpp - colossal-mark-layers --------------------------===//
//
// Marks every forward op of a repeated block with `cg.layer = <block>`, by
// the layers of the structure the cost model sees (LayerStructure.h); what
// precedes and follows the blocks (embeddings, the head, the loss) is not
// marked. colossal-autodiff copies the marks onto the backward, so later
// passes know which layer an op of either pass belongs to:
// colossal-offload{what=activations} moves each layer's kept activations
// to the host and prefetches them a layer ahead by them.
//
//===----------------------------------------------------------------------===//

#include "compiler/estimate/LayerStructure.h"
#include "passes/Passes.h"

#include "dialects/Graph/IR/GraphOps.h"

#include "mlir/IR/Builders.h"

namespace mlir::colossal {
#define GEN_PASS_DEF_MARKLAYERSPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

struct MarkLayersPass
    : mlir::colossal::impl::MarkLayersPassBase<MarkLayersPass> {
  using MarkLayersPassBase::MarkLayersPassBase;

  void runOnOperation() override {
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (!func.isExternal() && failed(mark(func)))
        return signalPassFailure();
  }

  LogicalResult mark(func::FuncOp func) {
    LayerStructure structure = findLayerStructure(func);
    if (structure.numBlocks == 0 && !required)
      return success();
    if (structure.numBlocks == 0)
      return func.emitError("offloading activations moves each repeated "
                            "layer's kept activations to the host, but ")
             << structure.summary
             << "; use offload=optimizer (or none) for this model";
    OpBuilder b(func.getContext());
    for (Operation &op : func.getBody().front()) {
      auto it = structure.layerOf.find(&op);
      if (it == structure.layerOf.end() || it->second < 0 ||
          it->second >= structure.numBlocks)
        continue;
      op.setAttr("cg.layer", b.getI64IntegerAttr(it->second));
    }
    return success();
  }
};

} // namespace
