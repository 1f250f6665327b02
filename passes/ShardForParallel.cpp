//===- ShardForParallel.cpp - Data-parallel and ZeRO layouts --------------===//
//
// Steps: (1) refuse what cannot run yet, (2) add the mesh, (3) split every
// batched function argument over dp, (4) split optimizer state (ZeRO-1/2)
// and weights (ZeRO-3) along their first dimension that divides.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "passes/Sharding.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::colossal {
#define GEN_PASS_DEF_SHARDFORPARALLELPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

struct ShardForParallelPass
    : mlir::colossal::impl::ShardForParallelPassBase<ShardForParallelPass> {
  using ShardForParallelPassBase::ShardForParallelPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    // Plain values: pass options do not print as numbers in diagnostics.
    int64_t dp = this->dp, tp = this->tp, zero = this->zero;
    // Step 1: what this pass can lay out.
    if (dp < 1 || tp < 1) {
      module.emitError("colossal-shard-for-parallel: dp and tp must be >= 1");
      return signalPassFailure();
    }
    if (tp > 1) {
      module.emitError("tensor parallelism (tp=")
          << tp
          << ") cannot be executed yet: plans run data parallelism and "
             "ZeRO (dp=N, zero=0..3); use --parallel=dp=N[,zero=K], or "
             "--estimate to see what tp would cost";
      return signalPassFailure();
    }
    if (zero < 0 || zero > 3) {
      module.emitError("zero=") << zero << " is not a ZeRO stage; use 0 to 3";
      return signalPassFailure();
    }
    if (zero > 0 && dp == 1) {
      module.emitError("zero=")
          << zero << " shards over the data-parallel axis; it needs dp > 1";
      return signalPassFailure();
    }
    if (dp == 1)
      return markAllAnalysesPreserved();
    if (findMesh(module)) {
      module.emitError("the module already has a cg.mesh; "
                       "colossal-shard-for-parallel adds its own");
      return signalPassFailure();
    }
    SmallVector<func::FuncOp> funcs;
    for (auto f : module.getOps<func::FuncOp>())
      if (!f.isExternal())
        funcs.push_back(f);
    if (funcs.size() != 1) {
      module.emitError("partitioning needs exactly one function with a body");
      return signalPassFailure();
    }
    func::FuncOp func = funcs.front();

    // Step 2: the mesh.
    MLIRContext *ctx = &getContext();
    OpBuilder b(ctx);
    b.setInsertionPointToStart(module.getBody());
    auto meshAttr = MeshAttr::get(ctx, {b.getStringAttr("dp")}, {dp});
    b.create<MeshOp>(module.getLoc(), "mesh", meshAttr);
    auto meshRef = FlatSymbolRefAttr::get(ctx, "mesh");

    // Step 3: the global batch, split over dp.
    for (BlockArgument arg : func.getArguments()) {
      auto type = cast<ShapedType>(arg.getType());
      if (type.getRank() == 0)
        continue;
      auto name = func.getArgAttrOfType<StringAttr>(arg.getArgNumber(),
                                                    "cg.name");
      if (type.getDimSize(0) % dp != 0) {
        func.emitError("input '")
            << (name ? name.getValue() : StringRef("?")) << "' has batch "
            << type.getDimSize(0) << ", which does not split over dp=" << dp
            << "; compile with a global batch that is a multiple of " << dp
            << " (--bind batch=...)";
        return signalPassFailure();
      }
      Spec s = Spec::replicated(type.getRank());
      s.dims[0] = {"dp"};
      func.setArgAttr(arg.getArgNumber(), "cg.sharding",
                      s.toAttr(ctx, meshRef));
    }

    // Step 4: ZeRO.
    if (zero == 0)
      return;
    func.walk([&](ParamOp param) {
      auto role = param->getAttrOfType<StringAttr>("cg.role");
      bool state = role && role.getValue() == "optimizer";
      if (!state && zero < 3)
        return;
      auto type = cast<ShapedType>(param.getType());
      for (int64_t d = 0; d < type.getRank(); ++d) {
        if (type.getDimSize(d) % dp != 0)
          continue;
        Spec s = Spec::replicated(type.getRank());
        s.dims[d] = {"dp"};
        param->setAttr("cg.sharding",
                       b.getArrayAttr({s.toAttr(ctx, meshRef)}));
        return;
      }
    });
  }
};

} // namespace
