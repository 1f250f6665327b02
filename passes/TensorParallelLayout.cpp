//===- TensorParallelLayout.cpp - Megatron layouts of the weights ---------===//
//
// Steps: (1) add the mesh (dp major, tp minor), (2) walk the forward graph
// in order, tracking which dimension of each activation is split over tp,
// and (3) split each linear layer's weight the way Megatron-LM does: a
// matmul whose input is whole splits its weight by output columns (and its
// bias with them), one whose input is split along the contraction splits
// its weight by rows (a pending sum, reduced where it meets the residual).
// Attention follows from the column split of q, k and v: the heads are
// split. Only weights are annotated; colossal-propagate-sharding derives
// every activation (and the whole backward) from them.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "passes/Sharding.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::colossal {
#define GEN_PASS_DEF_TENSORPARALLELLAYOUTPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

/// A weight as a matmul sees it: the parameter, and whether the matmul
/// reads its transpose.
struct Weight {
  ParamOp param;
  bool transposed = false;
};

std::optional<Weight> weightOf(Value v) {
  bool transposed = false;
  if (auto t = v.getDefiningOp<TransposeOp>()) {
    ArrayRef<int64_t> perm = t.getPermutation();
    if (perm.size() != 2 || perm[0] != 1)
      return std::nullopt;
    v = t.getInput();
    transposed = true;
  }
  auto param = v.getDefiningOp<ParamOp>();
  if (!param || cast<ShapedType>(param.getType()).getRank() != 2)
    return std::nullopt;
  return Weight{param, transposed};
}

int64_t rankOf(Value v) { return cast<ShapedType>(v.getType()).getRank(); }

struct TensorParallelLayoutPass
    : mlir::colossal::impl::TensorParallelLayoutPassBase<
          TensorParallelLayoutPass> {
  using TensorParallelLayoutPassBase::TensorParallelLayoutPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    int64_t dp = this->dp, tp = this->tp;
    if (dp < 1 || tp < 1) {
      module.emitError(
          "colossal-tensor-parallel-layout: dp and tp must be >= 1");
      return signalPassFailure();
    }
    if (tp == 1)
      return markAllAnalysesPreserved();
    if (findMesh(module)) {
      module.emitError("the module already has a cg.mesh; "
                       "colossal-tensor-parallel-layout adds its own");
      return signalPassFailure();
    }
    // Step 1: the mesh; tp is the minor axis (inside a node).
    MLIRContext *ctx = &getContext();
    OpBuilder b(ctx);
    b.setInsertionPointToStart(module.getBody());
    SmallVector<StringAttr> names;
    SmallVector<int64_t> sizes;
    if (dp > 1) {
      names.push_back(b.getStringAttr("dp"));
      sizes.push_back(dp);
    }
    names.push_back(b.getStringAttr("tp"));
    sizes.push_back(tp);
    b.create<MeshOp>(module.getLoc(), "mesh", MeshAttr::get(ctx, names, sizes));
    meshRef = FlatSymbolRefAttr::get(ctx, "mesh");

    for (auto func : module.getOps<func::FuncOp>())
      if (!func.isExternal())
        layout(func);
  }

  /// Step 2 and 3.
  void layout(func::FuncOp func) {
    DenseMap<Value, int64_t> split; // dimension split over tp
    auto splitOf = [&](Value v) {
      auto it = split.find(v);
      return it == split.end() ? int64_t(-1) : it->second;
    };
    for (Operation &op : func.getBody().front()) {
      // A vocab-parallel embedding: the table split by rows (a tied output
      // head then follows it as a column-parallel layer).
      if (auto g = dyn_cast<GatherOp>(op)) {
        auto table = g.getInput().getDefiningOp<ParamOp>();
        if (table && g.getAxis() == 0 && rankOf(table) == 2 &&
            !annotated.contains(table) &&
            cast<ShapedType>(table.getType()).getDimSize(0) % tp == 0)
          annotate(table, 0);
        continue;
      }
      if (auto mm = dyn_cast<MatMulOp>(op)) {
        auto w = weightOf(mm.getRhs());
        int64_t r = rankOf(mm.getLhs());
        if (!w || r < 2 || annotated.contains(w->param))
          continue;
        auto shape = cast<ShapedType>(w->param.getType()).getShape();
        // Dimensions of the parameter that are the matmul's K and N.
        int64_t kDim = w->transposed ? 1 : 0, nDim = 1 - kDim;
        if (splitOf(mm.getLhs()) == r - 1 && shape[kDim] % tp == 0) {
          annotate(w->param, kDim); // row-parallel: a pending sum
          if (sequence)
            splitSequence(mm);
        } else if (splitOf(mm.getLhs()) < 0 && shape[nDim] % tp == 0) {
          annotate(w->param, nDim); // column-parallel
          split[mm.getResult()] = rankOf(mm.getResult()) - 1;
        }
        continue;
      }
      if (auto add = dyn_cast<AddOp>(op)) {
        // The bias of a column-parallel layer is split with its columns.
        int64_t s = splitOf(add.getLhs());
        auto bias = add.getRhs().getDefiningOp<ParamOp>();
        if (s >= 0 && s == rankOf(add.getLhs()) - 1 && bias &&
            rankOf(bias) == 1 && !annotated.contains(bias) &&
            cast<ShapedType>(bias.getType()).getDimSize(0) % tp == 0) {
          annotate(bias, 0);
          split[add.getResult()] = s;
          continue;
        }
      }
      if (auto reshape = dyn_cast<ReshapeOp>(op)) {
        // [.., H] <-> [.., heads, head_dim]: the heads carry the split.
        auto in = cast<ShapedType>(reshape.getInput().getType()).getShape();
        auto out = cast<ShapedType>(reshape.getType()).getShape();
        int64_t s = splitOf(reshape.getInput());
        if (s == (int64_t)in.size() - 1 && out.size() == in.size() + 1 &&
            out[out.size() - 2] % tp == 0)
          split[reshape.getResult()] = out.size() - 2;
        else if (s == (int64_t)in.size() - 2 && out.size() + 1 == in.size())
          split[reshape.getResult()] = out.size() - 1;
        continue;
      }
      if (auto t = dyn_cast<TransposeOp>(op)) {
        int64_t s = splitOf(t.getInput());
        for (auto [k, p] : llvm::enumerate(t.getPermutation()))
          if (s >= 0 && p == s)
            split[t.getResult()] = k;
        continue;
      }
      if (auto attn = dyn_cast<AttentionOp>(op)) {
        int64_t s = splitOf(attn.getQuery());
        if (s >= 0 && s < rankOf(attn.getQuery()) - 2)
          split[attn.getResult()] = s;
        continue;
      }
      // Pointwise ops on same-shaped values keep the split (a GELU chain).
      if (op.getNumResults() == 1 && op.hasTrait<OpTrait::Elementwise>()) {
        for (Value v : op.getOperands())
          if (splitOf(v) >= 0 && v.getType() == op.getResult(0).getType()) {
            split[op.getResult(0)] = splitOf(v);
            break;
          }
        continue;
      }
      if (isa<DivOp, MulOp, AddOp, SubOp>(op)) {
        Value v = op.getOperand(0);
        if (splitOf(v) >= 0 && v.getType() == op.getResult(0).getType())
          split[op.getResult(0)] = splitOf(v);
      }
    }
  }

  /// Megatron sequence parallelism: the row-parallel output [batch, seq,
  /// ...] reduce-scattered along the sequence (and split over dp along the
  /// batch, as the inputs are).
  void splitSequence(MatMulOp mm) {
    auto type = cast<ShapedType>(mm.getType());
    if (type.getRank() < 3 || type.getDimSize(1) % tp != 0)
      return;
    Spec s = Spec::replicated(type.getRank());
    if (dp > 1 && type.getDimSize(0) % dp == 0)
      s.dims[0] = {"dp"};
    s.dims[1] = {"tp"};
    OpBuilder b(mm->getContext());
    b.setInsertionPointAfter(mm);
    auto shard = b.create<ShardOp>(mm.getLoc(), mm.getResult(),
                                   s.toAttr(&getContext(), meshRef));
    mm.getResult().replaceAllUsesExcept(shard.getResult(), shard);
  }

  void annotate(ParamOp param, int64_t dim) {
    Spec s = Spec::replicated(rankOf(param));
    s.dims[dim] = {"tp"};
    param->setAttr("cg.sharding",
                   Builder(&getContext())
                       .getArrayAttr({s.toAttr(&getContext(), meshRef)}));
    annotated.insert(param);
  }

  FlatSymbolRefAttr meshRef;
  DenseSet<Operation *> annotated;
};

} // namespace
