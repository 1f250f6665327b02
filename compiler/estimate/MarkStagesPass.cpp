//===- MarkStagesPass.cpp - colossal-mark-stages --------------------------===//
//
// Assigns every op of a training step's forward (loss included) to a
// pipeline stage, by the layers of the structure the cost model sees
// (LayerStructure.h): what precedes the blocks goes with the first model
// chunk, what follows them (the head and the loss) with the last, and the
// blocks are split over the chunks as `stage-layers` says, or evenly. The
// marks are `cg.stage` (the rank's stage) and, with virtual stages,
// `cg.virtual` (the chunk on that stage): chunk v * stages + s holds the
// layers of model chunk number v * stages + s, as Megatron-LM's
// interleaved schedule places them. colossal-autodiff copies the marks onto
// the backward and colossal-pipeline splits the program by them.
//
//===----------------------------------------------------------------------===//

#include "compiler/estimate/LayerStructure.h"
#include "passes/Passes.h"

#include "dialects/Graph/IR/GraphOps.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringExtras.h"

namespace mlir::colossal {
#define GEN_PASS_DEF_MARKSTAGESPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

struct MarkStagesPass
    : mlir::colossal::impl::MarkStagesPassBase<MarkStagesPass> {
  using MarkStagesPassBase::MarkStagesPassBase;

  void runOnOperation() override {
    if (stages < 1 || virtualStages < 1) {
      getOperation().emitError("colossal-mark-stages: stages=")
          << static_cast<int64_t>(stages)
          << " and virtual=" << static_cast<int64_t>(virtualStages)
          << " must be >= 1";
      return signalPassFailure();
    }
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (!func.isExternal() && failed(mark(func)))
        return signalPassFailure();
  }

  /// Blocks per model chunk: `stage-layers` or an even split whose
  /// remainder goes to the middle chunks (the first holds the embedding,
  /// the last the head and the loss).
  FailureOr<SmallVector<int64_t>> chunkLayers(func::FuncOp func,
                                              const LayerStructure &s) {
    int64_t chunks = stages * virtualStages;
    SmallVector<int64_t> sizes;
    if (!stageLayers.empty()) {
      for (StringRef part : llvm::split(StringRef(stageLayers), ':')) {
        int64_t n;
        if (part.trim().getAsInteger(10, n) || n < 1) {
          func.emitError("stage-layers='")
              << stageLayers
              << "' must list layers per model chunk separated by ':', "
                 "each >= 1 (e.g. 3:5)";
          return failure();
        }
        sizes.push_back(n);
      }
      int64_t total = 0;
      for (int64_t n : sizes)
        total += n;
      if (static_cast<int64_t>(sizes.size()) != chunks ||
          total != s.numBlocks) {
        func.emitError("stage-layers=")
            << stageLayers << " gives " << sizes.size() << " chunk(s) and "
            << total << " layer(s), but the pipeline has " << chunks
            << " model chunk(s) (pp x virtual stages) and the model "
            << s.numBlocks << " layers; list " << chunks
            << " counts that add up to " << s.numBlocks;
        return failure();
      }
      return sizes;
    }
    if (s.numBlocks < chunks) {
      func.emitError("a pipeline of ")
          << chunks << " model chunk(s) needs at least one layer per chunk, "
          << "but " << s.summary << "; use fewer stages (pp) or virtual "
          << "stages";
      return failure();
    }
    sizes.assign(chunks, s.numBlocks / chunks);
    int64_t extra = s.numBlocks % chunks;
    for (int64_t c = 0; extra > 0; c = (c + 1) % chunks)
      if (chunks == 1 || (c != 0 && c != chunks - 1) || chunks <= 2) {
        ++sizes[c];
        --extra;
      }
    return sizes;
  }

  LogicalResult mark(func::FuncOp func) {
    LayerStructure structure = findLayerStructure(func);
    if (stages > 1 && structure.numBlocks == 0)
      return func.emitError("pp=")
             << static_cast<int64_t>(stages)
             << " splits the model's repeated layers into stages, but "
             << structure.summary
             << "; compile it without pipeline parallelism";
    FailureOr<SmallVector<int64_t>> sizes = chunkLayers(func, structure);
    if (failed(sizes))
      return failure();
    SmallVector<int64_t> chunkOfLayer;
    for (auto [c, n] : llvm::enumerate(*sizes))
      for (int64_t i = 0; i < n; ++i)
        chunkOfLayer.push_back(static_cast<int64_t>(c));
    int64_t lastChunk = stages * virtualStages - 1;
    OpBuilder b(func.getContext());
    // Ops with no layer (the loss, added after the structure was cut) go
    // with what precedes them.
    int64_t current = 0;
    for (Operation &op : func.getBody().front()) {
      if (isa<ParamOp, ConstantOp, func::ReturnOp>(op))
        continue;
      auto it = structure.layerOf.find(&op);
      if (it != structure.layerOf.end()) {
        int layer = it->second;
        current = layer < 0                      ? 0
                  : layer >= structure.numBlocks ? lastChunk
                                                 : chunkOfLayer[layer];
      }
      op.setAttr("cg.stage", b.getI64IntegerAttr(current % stages));
      if (virtualStages > 1)
        op.setAttr("cg.virtual", b.getI64IntegerAttr(current / stages));
    }
    return success();
  }
};

} // namespace
