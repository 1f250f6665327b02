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

using Axes = SmallVector<std::string, 2>;

/// An activation's layout under 2D/2.5D/3D tensor parallelism: the axes
/// splitting its leading (batch) dimension and its last (hidden) one.
struct NdLayout {
  Axes batch, hidden;
};

/// One linear layer's algorithm, from the layout of its input.
struct NdLinear {
  NdLayout xs;         // the lhs as the local matmul reads it (hidden: K)
  Axes wK, wN;         // the weight as the local matmul reads it
  Axes storeK, storeN; // the weight as every rank stores it
  NdLayout y;          // the product, before it is handed on
  int out = 0;         // the layout handed on (an index into layouts)
};

Axes concat(const Axes &a, const Axes &b) {
  Axes r = a;
  r.append(b.begin(), b.end());
  return r;
}

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
    if (mode != "1d" && mode != "2d" && mode != "2.5d" && mode != "3d") {
      module.emitError("colossal-tensor-parallel-layout: mode=")
          << mode << " is not known; use 1d, 2d, 2.5d or 3d";
      return signalPassFailure();
    }
    if (tp == 1)
      return markAllAnalysesPreserved();
    if (findMesh(module)) {
      module.emitError("the module already has a cg.mesh; "
                       "colossal-tensor-parallel-layout adds its own");
      return signalPassFailure();
    }
    if (mode != "1d") {
      if (sequence) {
        module.emitError("colossal-tensor-parallel-layout: sequence applies "
                         "to mode=1d only (2d, 2.5d and 3d split every "
                         "activation already)");
        return signalPassFailure();
      }
      if (failed(makeNdMesh(module)))
        return signalPassFailure();
      for (auto func : module.getOps<func::FuncOp>())
        if (!func.isExternal() && failed(layoutNd(func)))
          return signalPassFailure();
      return;
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
    // Sequence (context) parallelism between them: its all-to-alls over
    // heads run inside a tensor-parallel group's replicas.
    if (sp > 1) {
      names.push_back(b.getStringAttr("sp"));
      sizes.push_back(sp);
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

  //===--------------------------------------------------------------------===//
  // 2D / 2.5D / 3D
  //===--------------------------------------------------------------------===//

  /// The mesh (dp major, then the tp axes) and the activation layouts.
  LogicalResult makeNdMesh(ModuleOp module) {
    auto root = [&](int64_t n, int power) -> int64_t {
      for (int64_t q = 1;; ++q) {
        int64_t p = 1;
        for (int i = 0; i < power; ++i)
          p *= q;
        if (p == n)
          return q;
        if (p > n)
          return 0;
      }
    };
    SmallVector<std::pair<std::string, int64_t>> axes;
    Axes prefix;
    if (dp > 1) {
      axes.push_back({"dp", dp});
      prefix.push_back("dp");
    }
    // Sequence parallelism: its own axis after dp; every [batch, seq, ...]
    // activation keeps its sequence split over it (specFor).
    if (sp > 1)
      axes.push_back({"sp", sp});
    if (mode == "2d" || mode == "2.5d") {
      int64_t d = mode == "2d" ? 1 : int64_t(depth);
      int64_t q = d >= 1 && tp % d == 0 ? root(tp / d, 2) : 0;
      if (q < 2 || (mode == "2.5d" && d < 2)) {
        module.emitError("colossal-tensor-parallel-layout: mode=")
            << mode << " needs tp = " << (mode == "2d" ? "q^2" : "depth x q^2")
            << " with q >= 2" << (mode == "2.5d" ? " and depth >= 2" : "")
            << "; got tp=" << static_cast<int64_t>(tp)
            << (mode == "2.5d" ? " depth=" + std::to_string(depth) : "");
        return failure();
      }
      rowAxes = {"tpr"};
      if (mode == "2.5d")
        axes.push_back({"tpd", d});
      axes.push_back({"tpr", q});
      axes.push_back({"tpc", q});
      Axes batch = prefix;
      if (mode == "2.5d")
        batch.push_back("tpd");
      batch.push_back("tpr");
      layouts = {NdLayout{batch, {"tpc"}}};
    } else {
      int64_t q = root(tp, 3);
      if (q < 2) {
        module.emitError("colossal-tensor-parallel-layout: mode=3d needs tp = "
                         "q^3 with q >= 2; got tp=")
            << static_cast<int64_t>(tp);
        return failure();
      }
      for (const char *a : {"tpx", "tpy", "tpz"})
        axes.push_back({a, q});
      rowAxes = {"tpx", "tpy"};
      layouts = {NdLayout{concat(prefix, {"tpx", "tpy"}), {"tpz"}},
                 NdLayout{concat(prefix, {"tpx", "tpz"}), {"tpy"}}};
    }
    MLIRContext *ctx = &getContext();
    OpBuilder b(ctx);
    b.setInsertionPointToStart(module.getBody());
    SmallVector<StringAttr> names;
    SmallVector<int64_t> sizes;
    for (auto &[name, size] : axes) {
      names.push_back(b.getStringAttr(name));
      sizes.push_back(size);
      meshSizes[name] = size;
    }
    b.create<MeshOp>(module.getLoc(), "mesh", MeshAttr::get(ctx, names, sizes));
    meshRef = FlatSymbolRefAttr::get(ctx, "mesh");
    prefixAxes = prefix;
    return success();
  }

  /// The algorithm of a linear layer whose input is laid out as
  /// `layouts[in]`.
  NdLinear linearFrom(int in) const {
    const NdLayout &l = layouts[in];
    NdLinear a;
    if (mode != "3d") {
      // SUMMA: rank (i, j) needs row block i of X (gathered over the
      // columns) and column block j of W (gathered over the rows); its
      // product is block (i, j) of Y, laid out as X was.
      a.xs = {l.batch, {}};
      a.wK = {};
      a.wN = l.hidden;
      a.storeK = {"tpr"};
      a.storeN = l.hidden;
      a.y = l;
      a.out = in;
      return a;
    }
    // 3D: X gathered over the batch's minor axis j, W over i; the product
    // is a pending sum over the hidden axis l, reduce-scattered onto the
    // batch: the next layer's input has j and l swapped.
    std::string i = "tpx", j = l.batch.back(), k = l.hidden.front();
    a.xs = {concat(prefixAxes, {i}), {k}};
    a.wK = {k};
    a.wN = {j};
    a.storeK = {k, i};
    a.storeN = {j};
    a.y = {concat(prefixAxes, {i}), {j}};
    a.out = 1 - in;
    return a;
  }

  int64_t sizeOf(const Axes &axes) const {
    int64_t n = 1;
    for (const std::string &a : axes)
      n *= meshSizes.lookup(a);
    return n;
  }

  /// The spec of a [batch, ..., hidden] value of `shape` laid out as `l`
  /// (no split where a dimension does not divide).
  std::optional<Spec> specFor(ArrayRef<int64_t> shape, const NdLayout &l) {
    if (shape.size() < 2 || shape[0] % sizeOf(l.batch) != 0 ||
        shape.back() % sizeOf(l.hidden) != 0)
      return std::nullopt;
    Spec s = Spec::replicated(shape.size());
    s.dims[0] = l.batch;
    s.dims[shape.size() - 1] = l.hidden;
    if (sp > 1 && shape.size() >= 3 && shape[1] % sp == 0)
      s.dims[1] = {"sp"};
    return s;
  }

  ShardOp shardOf(OpBuilder &b, Location loc, Value v, const Spec &spec,
                  const std::optional<Spec> &grad) {
    auto op = b.create<ShardOp>(loc, v, spec.toAttr(&getContext(), meshRef));
    if (grad)
      op.setGradShardingAttr(grad->toAttr(&getContext(), meshRef));
    return op;
  }

  void annotateSpec(ParamOp param, const Spec &s) {
    param->setAttr("cg.sharding",
                   Builder(&getContext())
                       .getArrayAttr({s.toAttr(&getContext(), meshRef)}));
    annotated.insert(param);
  }

  /// Walks the forward graph in order, tracking each activation's layout,
  /// and lays out every linear layer, embedding, bias and norm.
  LogicalResult layoutNd(func::FuncOp func) {
    DenseMap<Value, int> state;
    auto stateOf = [&](Operation *op) {
      for (Value v : op->getOperands())
        if (auto it = state.find(v); it != state.end())
          return it->second;
      return -1;
    };
    SmallVector<Operation *> ops;
    for (Operation &op : func.getBody().front())
      ops.push_back(&op);
    for (Operation *op : ops) {
      if (auto g = dyn_cast<GatherOp>(op)) {
        // An embedding table split along both dimensions: the lookup is
        // vocab-parallel over the row axes (a pending sum), reduce-
        // scattered onto the batch of the first layout.
        auto table = g.getInput().getDefiningOp<ParamOp>();
        auto out = cast<ShapedType>(g.getType()).getShape();
        auto spec = specFor(out, layouts[0]);
        if (!table || g.getAxis() != 0 || rankOf(table) != 2 || !spec ||
            out.size() < 3)
          continue;
        auto shape = cast<ShapedType>(table.getType()).getShape();
        if (!annotated.contains(table) && shape[0] % sizeOf(rowAxes) == 0 &&
            shape[1] % sizeOf(layouts[0].hidden) == 0) {
          Spec t = Spec::replicated(2);
          t.dims[0] = rowAxes;
          t.dims[1] = layouts[0].hidden;
          annotateSpec(table, t);
        }
        OpBuilder b(g->getContext());
        b.setInsertionPointAfter(g);
        auto shard = shardOf(b, g.getLoc(), g.getResult(), *spec, spec);
        g.getResult().replaceAllUsesExcept(shard.getResult(), shard);
        state[shard.getResult()] = 0;
        continue;
      }
      if (auto mm = dyn_cast<MatMulOp>(op)) {
        auto w = weightOf(mm.getRhs());
        if (w) {
          if (failed(layoutLinear(mm, *w, std::max(stateOf(op), 0), state)))
            return failure();
          continue;
        }
      }
      int s = stateOf(op);
      if (s < 0)
        continue;
      // Biases and norm parameters split with the hidden dimension.
      const Axes &hidden = layouts[s].hidden;
      auto splitVector = [&](Value v, int64_t size) {
        auto p = v.getDefiningOp<ParamOp>();
        if (!p || rankOf(p) != 1 || annotated.contains(p) ||
            cast<ShapedType>(p.getType()).getDimSize(0) != size ||
            size % sizeOf(hidden) != 0)
          return;
        Spec v1 = Spec::replicated(1);
        v1.dims[0] = hidden;
        annotateSpec(p, v1);
      };
      if (op->getNumResults() == 1) {
        auto shape = cast<ShapedType>(op->getResult(0).getType()).getShape();
        if (!shape.empty() &&
            (isa<LayerNormOp, RmsNormOp>(op) ||
             (isa<AddOp>(op) && state.count(op->getOperand(0)))))
          for (Value v : op->getOperands().drop_front())
            splitVector(v, shape.back());
      }
      for (Value r : op->getResults())
        state[r] = s;
    }
    return success();
  }

  /// One linear layer: its input pinned to its layout (and the gradient
  /// with it), the operands re-laid for the local matmul, the weight
  /// stored split, the product handed on in the next layout.
  LogicalResult layoutLinear(MatMulOp mm, Weight w, int in,
                             DenseMap<Value, int> &state) {
    NdLinear a = linearFrom(in);
    auto lhsShape = cast<ShapedType>(mm.getLhs().getType()).getShape();
    auto outShape = cast<ShapedType>(mm.getType()).getShape();
    auto wShape = cast<ShapedType>(w.param.getType()).getShape();
    int64_t kDim = w.transposed ? 1 : 0, nDim = 1 - kDim;
    if (lhsShape.size() < 2)
      return success();
    int64_t rows = sizeOf(layouts[in].batch);
    if (lhsShape[0] % rows != 0 ||
        outShape[0] % sizeOf(layouts[a.out].batch) != 0)
      return mm.emitError("tp-mode=")
             << mode << " splits the leading (batch) dimension of every "
             << "linear layer's input over " << rows
             << " devices (dp and the tensor-parallel row axes), but this "
             << "matmul's input is " << mm.getLhs().getType()
             << "; bind a batch that is a multiple of " << rows;
    auto inSpec = specFor(lhsShape, layouts[in]);
    auto xsSpec = specFor(lhsShape, a.xs);
    auto ySpec = specFor(outShape, a.y);
    auto outSpec = specFor(outShape, layouts[a.out]);
    bool fits = inSpec && xsSpec && ySpec && outSpec &&
                wShape[kDim] % sizeOf(a.storeK) == 0 &&
                wShape[nDim] % sizeOf(a.storeN) == 0;
    if (!fits)
      return success(); // a layer that does not divide stays whole
    if (!annotated.contains(w.param)) {
      Spec store = Spec::replicated(2);
      store.dims[kDim] = a.storeK;
      store.dims[nDim] = a.storeN;
      annotateSpec(w.param, store);
    }
    Spec ws = Spec::replicated(2);
    ws.dims[0] = a.wK;
    ws.dims[1] = a.wN;
    // The weight's gradient is reduce-scattered onto the weight's own
    // layout where it is made (before the gradient norm reads it).
    Spec stored = Spec::fromAttr(
        cast<ShardingAttr>(
            w.param->getAttrOfType<ArrayAttr>("cg.sharding").getValue()[0]),
        2);
    if (w.transposed)
      std::swap(stored.dims[0], stored.dims[1]);
    OpBuilder b(mm);
    Location loc = mm.getLoc();
    Value x = shardOf(b, loc, mm.getLhs(), *inSpec, inSpec).getResult();
    // The gathered operands are gathered again in the backward (SUMMA
    // keeps only its own blocks between the two).
    auto xShard = shardOf(b, loc, x, *xsSpec, std::nullopt);
    xShard->setAttr("cg.regather", b.getUnitAttr());
    x = xShard.getResult();
    auto wShard = shardOf(b, loc, mm.getRhs(), ws, stored);
    wShard->setAttr("cg.regather", b.getUnitAttr());
    // colossal-shard-for-parallel moves the gradient onto the weight's
    // ZeRO layout when it has one.
    wShard->setAttr("cg.weight", b.getStringAttr(w.param.getName()));
    if (w.transposed)
      wShard->setAttr("cg.weight_transposed", b.getUnitAttr());
    Value rhs = wShard.getResult();
    mm.getLhsMutable().assign(x);
    mm.getRhsMutable().assign(rhs);
    b.setInsertionPointAfter(mm);
    auto out = shardOf(b, loc, mm.getResult(), *outSpec, ySpec);
    mm.getResult().replaceAllUsesExcept(out.getResult(), out);
    state[out.getResult()] = a.out;
    return success();
  }

  SmallVector<NdLayout> layouts;
  Axes rowAxes, prefixAxes;
  llvm::StringMap<int64_t> meshSizes;

  /// Megatron sequence parallelism: the row-parallel output [batch, seq,
  /// ...] reduce-scattered along the sequence (and split over dp along the
  /// batch, as the inputs are). With sp, the sequence is split over sp
  /// already: tp splits each sp block further.
  void splitSequence(MatMulOp mm) {
    auto type = cast<ShapedType>(mm.getType());
    if (type.getRank() < 3 || type.getDimSize(1) % (tp * sp) != 0)
      return;
    Spec s = Spec::replicated(type.getRank());
    if (dp > 1 && type.getDimSize(0) % dp == 0)
      s.dims[0] = {"dp"};
    if (sp > 1)
      s.dims[1].push_back("sp");
    s.dims[1].push_back("tp");
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
