//===- ShardForParallel.cpp - Data-parallel and ZeRO layouts --------------===//
//
// Steps: (1) check the options and the mesh (colossal-tensor-parallel-layout
// makes it when tp > 1), (2) add the mesh, (3) split every batched function
// argument over dp, (4) give optimizer state its weight's tensor-parallel
// split, and split optimizer state (ZeRO-1/2) and weights (ZeRO-3) along
// their first other dimension that divides by dp; with sp-mode=ring, mark
// attention to keep its sequence split.
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
    int64_t dp = this->dp, tp = this->tp, zero = this->zero, sp = this->sp;
    // Step 1: what this pass can lay out.
    if (dp < 1 || tp < 1 || sp < 1) {
      module.emitError(
          "colossal-shard-for-parallel: dp, tp and sp must be >= 1");
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
    if (spMode != "ulysses" && spMode != "ring") {
      module.emitError("sp-mode=")
          << spMode << " is not known; use ulysses or ring";
      return signalPassFailure();
    }
    if (dp == 1 && tp == 1 && sp == 1)
      return markAllAnalysesPreserved();
    MeshOp existing = findMesh(module);
    if (tp > 1) {
      // The tensor-parallel layout came first and made the mesh.
      // Its tensor-parallel axes (1D: "tp"; 2D/2.5D/3D: several) multiply
      // to tp, and dp is the major axis when there is one.
      bool ok = existing;
      if (ok) {
        MeshAttr m = existing.getMesh();
        int64_t tpDevices = 1;
        bool hasDp = false, hasSp = false;
        for (auto [name, size] :
             llvm::zip(m.getAxisNames(), m.getAxisSizes())) {
          if (name.getValue() == "dp")
            hasDp = size == dp;
          else if (name.getValue() == "sp")
            hasSp = size == sp;
          else
            tpDevices *= size;
        }
        ok = tpDevices == tp && (dp == 1 || hasDp) && (sp == 1 || hasSp) &&
             (!sequence || m.getAxisIndex("tp"));
      }
      if (!ok) {
        module.emitError("tp=")
            << tp << " needs the mesh and weight splits of "
            << "colossal-tensor-parallel-layout{dp=" << dp << " tp=" << tp
            << (sp > 1 ? " sp=" + std::to_string(sp) : std::string())
            << "}, run on the forward graph first";
        return signalPassFailure();
      }
    } else if (existing) {
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
    if (!existing) {
      SmallVector<StringAttr> names{b.getStringAttr("dp")};
      SmallVector<int64_t> sizes{dp};
      if (sp > 1) {
        names.push_back(b.getStringAttr("sp"));
        sizes.push_back(sp);
      }
      b.create<MeshOp>(module.getLoc(), "mesh",
                       MeshAttr::get(ctx, names, sizes));
    }
    auto meshRef = FlatSymbolRefAttr::get(ctx, "mesh");

    // Step 3: the global batch, split over dp (and with sequence
    // parallelism the sequence of token inputs over tp).
    for (BlockArgument arg : func.getArguments()) {
      auto type = cast<ShapedType>(arg.getType());
      if (type.getRank() == 0)
        continue;
      auto name =
          func.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "cg.name");
      if (dp > 1 && type.getDimSize(0) % dp != 0) {
        func.emitError("input '")
            << (name ? name.getValue() : StringRef("?")) << "' has batch "
            << type.getDimSize(0) << ", which does not split over dp=" << dp
            << "; compile with a global batch that is a multiple of " << dp
            << " (--bind batch=...)";
        return signalPassFailure();
      }
      Spec s = Spec::replicated(type.getRank());
      if (dp > 1)
        s.dims[0] = {"dp"};
      // Sequence parallelism: token ids and labels split their sequence.
      if (sequence && tp > 1 && type.getRank() >= 2 &&
          isa<IntegerType>(type.getElementType()) &&
          type.getDimSize(1) % tp == 0)
        s.dims[1] = {"tp"};
      // Context parallelism: the same, over sp (and with Megatron's
      // sequence parallelism each sp block over tp).
      if (sp > 1 && type.getRank() >= 2 &&
          isa<IntegerType>(type.getElementType())) {
        if (type.getDimSize(1) % sp != 0) {
          func.emitError("input '")
              << (name ? name.getValue() : StringRef("?")) << "' has sequence "
              << type.getDimSize(1) << ", which does not split over sp=" << sp
              << "; bind a sequence that is a multiple of " << sp;
          return signalPassFailure();
        }
        bool alsoTp = sequence && tp > 1 && type.getDimSize(1) % (sp * tp) == 0;
        s.dims[1] = {"sp"};
        if (alsoTp)
          s.dims[1].push_back("tp");
      }
      if (!s.isReplicated())
        func.setArgAttr(arg.getArgNumber(), "cg.sharding",
                        s.toAttr(ctx, meshRef));
    }

    // Ring attention: attention and its fused backward keep the sequence
    // split (colossal-propagate-sharding's rule reads the mark).
    if (sp > 1 && spMode == "ring")
      func.walk([&](Operation *op) {
        if (isa<AttentionOp, AttentionBackwardOp>(op))
          op->setAttr(ringAttentionAttrName(), b.getUnitAttr());
      });

    // Step 4: optimizer state follows its weight's tensor-parallel split;
    // ZeRO then splits another dimension over dp.
    llvm::StringMap<Spec> weightSpec;
    func.walk([&](ParamOp param) {
      auto list = param->getAttrOfType<ArrayAttr>("cg.sharding");
      if (list && list.size() == 1)
        if (auto attr = dyn_cast<ShardingAttr>(list[0]))
          weightSpec[param.getName()] =
              Spec::fromAttr(attr, cast<ShapedType>(param.getType()).getRank());
    });
    func.walk([&](ParamOp param) {
      auto role = param->getAttrOfType<StringAttr>("cg.role");
      bool state = role && role.getValue() == "optimizer";
      auto type = cast<ShapedType>(param.getType());
      Spec s = Spec::replicated(type.getRank());
      if (auto it = weightSpec.find(param.getName()); it != weightSpec.end())
        s = it->second;
      // colossal-optimizer names state "<optimizer>.<state>:<weight>".
      StringRef weight = param.getName().split(':').second;
      if (state && !weight.empty())
        if (auto it = weightSpec.find(weight);
            it != weightSpec.end() && it->second.rank() == type.getRank())
          s = it->second;
      if (zero > 0 && (state || zero == 3)) {
        bool placed = false;
        for (int64_t d = 0; d < type.getRank() && !placed; ++d)
          if (s.dims[d].empty() && type.getDimSize(d) % dp == 0) {
            s.dims[d] = {"dp"};
            placed = true;
          }
        // Every dimension split already (2D/3D tensor parallelism): dp
        // splits a piece further, as the minor axis of its dimension.
        MeshInfo info = MeshInfo::fromAttr(findMesh(module).getMesh());
        for (int64_t d = 0; d < type.getRank() && !placed; ++d)
          if ((type.getDimSize(d) / s.splitOf(d, info)) % dp == 0 &&
              type.getDimSize(d) % s.splitOf(d, info) == 0) {
            s.dims[d].push_back("dp");
            placed = true;
          }
      }
      if (!s.isReplicated())
        param->setAttr("cg.sharding", b.getArrayAttr({s.toAttr(ctx, meshRef)}));
      finalSpec[param.getName()] = s;
    });

    // Step 5: with ZeRO-2/3, a weight gradient that the 2D/2.5D/3D layout
    // pinned to its weight's tensor-parallel layout (a cg.shard marked
    // cg.weight, made by colossal-autodiff) is reduce-scattered onto the
    // weight's ZeRO layout instead.
    if (zero >= 2)
      func.walk([&](ShardOp shard) {
        auto weight = shard->getAttrOfType<StringAttr>("cg.weight");
        if (!weight || shard.getGradShardingAttr())
          return;
        auto it = finalSpec.find(weight.getValue());
        if (it == finalSpec.end() || it->second.rank() != 2)
          return;
        Spec s = it->second;
        if (shard->hasAttr("cg.weight_transposed"))
          std::swap(s.dims[0], s.dims[1]);
        shard.setShardingAttr(s.toAttr(ctx, meshRef));
      });
  }

  llvm::StringMap<Spec> finalSpec;
};

} // namespace
