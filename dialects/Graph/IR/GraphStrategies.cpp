//===- GraphStrategies.cpp - Tensor-parallel strategies of cg ops ---------===//
//
// Each op's TensorParallelOpInterface implementation: the ways it can run
// over `tp` devices. Contractions split their weight by output (column) or
// by the contracted dimension (row, leaving a pending sum) or split rows;
// attention splits heads or batch; normalizations and softmax split the
// dimensions they do not reduce; data movement maps split dimensions
// through the permutation or reshape.
//
//===----------------------------------------------------------------------===//

#include "dialects/Graph/IR/GraphOps.h"

using namespace mlir;
using namespace mlir::colossal::cg;

#include "dialects/Graph/IR/GraphInterfaces.cpp.inc"

static ShapedType typeOf(Value v) { return cast<ShapedType>(v.getType()); }

static bool isParamLike(Value v) {
  Operation *def = v.getDefiningOp();
  return def && isa<ParamOp, ConstantOp>(def);
}

bool mlir::colossal::cg::isSplittable(Value v, int d, int64_t tp) {
  auto t = typeOf(v);
  return d >= 0 && d < t.getRank() && t.getDimSize(d) >= tp &&
         t.getDimSize(d) % tp == 0;
}

TpStrategy mlir::colossal::cg::replicatedStrategy(Operation *op) {
  TpStrategy s;
  s.name = "replicated";
  s.operands.assign(op->getNumOperands(), TensorLayout());
  return s;
}

/// The layout of operand `v` when a broadcasting op splits result dim `d`.
static TensorLayout aligned(Value v, ShapedType result, int d) {
  auto t = typeOf(v);
  int di = d - static_cast<int>(result.getRank() - t.getRank());
  if (di >= 0 && t.getDimSize(di) == result.getDimSize(d))
    return {di, false};
  return {};
}

void mlir::colossal::cg::broadcastingStrategies(
    Operation *op, int64_t tp, SmallVectorImpl<TpStrategy> &out) {
  if (tp <= 1 || op->getNumResults() == 0)
    return;
  auto result = typeOf(op->getResult(0));
  for (int d = 0; d < result.getRank(); ++d) {
    if (!isSplittable(op->getResult(0), d, tp))
      continue;
    TpStrategy s;
    s.name = "split" + std::to_string(d);
    s.split = true;
    for (Value v : op->getOperands())
      s.operands.push_back(aligned(v, result, d));
    s.result = {d, false};
    out.push_back(s);
  }
}

void mlir::colossal::cg::sameDimStrategies(Operation *op, ArrayRef<int> dims,
                                           int64_t tp,
                                           SmallVectorImpl<TpStrategy> &out) {
  for (int d : dims) {
    if (!isSplittable(op->getResult(0), d, tp))
      continue;
    TpStrategy s;
    s.name = "split" + std::to_string(d);
    s.split = true;
    s.operands.assign(op->getNumOperands(), TensorLayout());
    s.operands[0] = {d, false};
    s.result = {d, false};
    out.push_back(s);
  }
}

/// x @ W with W [in, out] (or [out, in] when transposed): column, row, or
/// rows of x split with W whole.
static void weightGemm(Operation *op, unsigned xi, unsigned wi, int bi,
                       bool transposed, int64_t tp,
                       SmallVectorImpl<TpStrategy> &out) {
  Value x = op->getOperand(xi), w = op->getOperand(wi);
  auto wt = typeOf(w);
  int outDim = transposed ? 0 : 1, inDim = transposed ? 1 : 0;
  int last = static_cast<int>(typeOf(x).getRank()) - 1;
  if (wt.getDimSize(outDim) % tp == 0) {
    TpStrategy s = replicatedStrategy(op);
    s.name = "column";
    s.split = true;
    s.operands[wi] = {outDim, false};
    if (bi >= 0)
      s.operands[bi] = {0, false};
    s.result = {static_cast<int>(typeOf(op->getResult(0)).getRank()) - 1,
                false};
    out.push_back(s);
  }
  if (wt.getDimSize(inDim) % tp == 0) {
    TpStrategy s = replicatedStrategy(op);
    s.name = "row";
    s.split = true;
    s.operands[xi] = {last, false};
    s.operands[wi] = {inDim, false};
    s.result = {-1, true};
    out.push_back(s);
  }
  for (int d = 0; d < last; ++d)
    if (isSplittable(x, d, tp) && isSplittable(op->getResult(0), d, tp)) {
      TpStrategy s = replicatedStrategy(op);
      s.name = "batch" + std::to_string(d);
      s.split = true;
      s.operands[xi] = {d, false};
      s.result = {d, false};
      out.push_back(s);
    }
}

#define CG_STRATEGIES(OP)                                                      \
  void OP::getTensorParallelStrategies(int64_t tp,                             \
                                       SmallVectorImpl<TpStrategy> &out)

CG_STRATEGIES(LinearOp) {
  out.push_back(replicatedStrategy(*this));
  if (tp > 1)
    weightGemm(*this, 0, 1, getBias() ? 2 : -1, getTransposeWeight(), tp, out);
}

CG_STRATEGIES(MatMulOp) {
  out.push_back(replicatedStrategy(*this));
  if (tp <= 1)
    return;
  auto rhs = typeOf(getRhs());
  Operation *def = getRhs().getDefiningOp();
  bool weight = rhs.getRank() == 2 && def &&
                (isa<ParamOp>(def) ||
                 (isa<TransposeOp>(def) && isParamLike(def->getOperand(0))));
  if (weight) {
    weightGemm(*this, 0, 1, -1, false, tp, out);
    return;
  }
  // A product of activations: split a batch dimension they share.
  auto result = typeOf(getResult());
  for (int d = 0; d + 2 < result.getRank(); ++d) {
    if (!isSplittable(getResult(), d, tp))
      continue;
    TpStrategy s;
    s.name = "split" + std::to_string(d);
    s.split = true;
    for (Value v : getOperation()->getOperands())
      s.operands.push_back(aligned(v, result, d));
    s.result = {d, false};
    out.push_back(s);
  }
}

CG_STRATEGIES(AttentionOp) {
  out.push_back(replicatedStrategy(*this));
  auto q = typeOf(getQuery());
  auto result = typeOf(getResult());
  for (int d = 0; tp > 1 && d + 2 < q.getRank(); ++d) {
    if (!isSplittable(getQuery(), d, tp) || !isSplittable(getKey(), d, tp) ||
        !isSplittable(getValue(), d, tp))
      continue;
    TpStrategy s;
    s.name = d == q.getRank() - 3 ? "heads" : "split" + std::to_string(d);
    s.split = true;
    s.operands = {{d, false}, {d, false}, {d, false}};
    if (getMask())
      s.operands.push_back(aligned(getMask(), result, d));
    s.result = {d, false};
    out.push_back(s);
  }
}

CG_STRATEGIES(GatherOp) {
  out.push_back(replicatedStrategy(*this));
  if (tp <= 1 || getAxis() != 0)
    return;
  // Vocabulary-parallel lookup: each rank holds rows of the table, looks up
  // what it has, and the partial results are summed.
  if (isParamLike(getInput()) && typeOf(getInput()).getDimSize(0) % tp == 0) {
    TpStrategy s = replicatedStrategy(*this);
    s.name = "vocab";
    s.split = true;
    s.operands[0] = {0, false};
    s.result = {-1, true};
    out.push_back(s);
  }
  for (int d = 0; d < typeOf(getIndices()).getRank(); ++d)
    if (isSplittable(getIndices(), d, tp)) {
      TpStrategy s = replicatedStrategy(*this);
      s.name = "split" + std::to_string(d);
      s.split = true;
      s.operands[1] = {d, false};
      s.result = {d, false};
      out.push_back(s);
    }
}

/// Softmax-like: every dimension but the normalized one.
static void allBut(Operation *op, int64_t axis, int64_t tp,
                   SmallVectorImpl<TpStrategy> &out) {
  out.push_back(replicatedStrategy(op));
  int rank = typeOf(op->getResult(0)).getRank();
  if (axis < 0)
    axis += rank;
  SmallVector<int> dims;
  for (int d = 0; d < rank; ++d)
    if (d != axis)
      dims.push_back(d);
  if (tp > 1)
    sameDimStrategies(op, dims, tp, out);
}

CG_STRATEGIES(SoftmaxOp) {
  allBut(*this, static_cast<int64_t>(getAxis()), tp, out);
}
CG_STRATEGIES(LogSoftmaxOp) {
  allBut(*this, static_cast<int64_t>(getAxis()), tp, out);
}

/// Normalizations over [axis, rank): the leading dimensions split.
static void leading(Operation *op, int64_t axis, int64_t tp,
                    SmallVectorImpl<TpStrategy> &out) {
  out.push_back(replicatedStrategy(op));
  SmallVector<int> dims;
  for (int d = 0; d < axis; ++d)
    dims.push_back(d);
  if (tp > 1)
    sameDimStrategies(op, dims, tp, out);
}

CG_STRATEGIES(LayerNormOp) { leading(*this, getAxis(), tp, out); }
CG_STRATEGIES(RmsNormOp) { leading(*this, getAxis(), tp, out); }
CG_STRATEGIES(BatchNormOp) { leading(*this, 1, tp, out); }
CG_STRATEGIES(Conv2DOp) { leading(*this, 1, tp, out); }
CG_STRATEGIES(MaxPool2DOp) { leading(*this, 2, tp, out); }
CG_STRATEGIES(AvgPool2DOp) { leading(*this, 2, tp, out); }
// Gradient ops only appear in training steps, which are not split by tensor
// parallelism: replicated only.
CG_STRATEGIES(Conv2DBackwardInputOp) {
  out.push_back(replicatedStrategy(*this));
}
CG_STRATEGIES(Conv2DBackwardWeightOp) {
  out.push_back(replicatedStrategy(*this));
}
CG_STRATEGIES(MaxPool2DBackwardOp) { out.push_back(replicatedStrategy(*this)); }
CG_STRATEGIES(ScatterAddRowsOp) { out.push_back(replicatedStrategy(*this)); }

/// Reductions: kept dimensions split; a reduced dimension split leaves a
/// pending sum (not for max).
static void reduction(Operation *op, ArrayRef<int64_t> axes, bool keep,
                      bool sums, int64_t tp, SmallVectorImpl<TpStrategy> &out) {
  out.push_back(replicatedStrategy(op));
  if (tp <= 1)
    return;
  int rank = typeOf(op->getOperand(0)).getRank();
  SmallVector<bool> reduced(rank, false);
  for (int64_t a : axes)
    reduced[a < 0 ? a + rank : a] = true;
  int outDim = 0;
  for (int d = 0; d < rank; ++d) {
    bool can = isSplittable(op->getOperand(0), d, tp);
    TpStrategy s = replicatedStrategy(op);
    s.split = true;
    s.operands[0] = {d, false};
    if (reduced[d]) {
      if (can && sums) {
        s.name = "reduce" + std::to_string(d);
        s.result = {-1, true};
        out.push_back(s);
      }
      outDim += keep;
      continue;
    }
    if (can) {
      s.name = "split" + std::to_string(d);
      s.result = {outDim, false};
      out.push_back(s);
    }
    ++outDim;
  }
}

CG_STRATEGIES(ReduceSumOp) {
  reduction(*this, getAxes(), getKeepdims(), true, tp, out);
}
CG_STRATEGIES(ReduceMeanOp) {
  reduction(*this, getAxes(), getKeepdims(), true, tp, out);
}
CG_STRATEGIES(ReduceMaxOp) {
  reduction(*this, getAxes(), getKeepdims(), false, tp, out);
}

CG_STRATEGIES(ReshapeOp) {
  out.push_back(replicatedStrategy(*this));
  if (tp <= 1)
    return;
  // A split maps through a reshape when everything before the two
  // dimensions has the same size.
  auto in = typeOf(getInput()), res = typeOf(getResult());
  int64_t pin = 1;
  for (int j = 0; j < in.getRank(); ++j) {
    int64_t pout = 1;
    for (int k = 0; k < res.getRank(); ++k) {
      if (pout == pin && isSplittable(getInput(), j, tp) &&
          isSplittable(getResult(), k, tp)) {
        TpStrategy s = replicatedStrategy(*this);
        s.name = "split" + std::to_string(k);
        s.split = true;
        s.operands[0] = {j, false};
        s.result = {k, false};
        out.push_back(s);
      }
      pout *= res.getDimSize(k);
    }
    pin *= in.getDimSize(j);
  }
}

CG_STRATEGIES(TransposeOp) {
  out.push_back(replicatedStrategy(*this));
  ArrayRef<int64_t> perm = getPermutation();
  for (int k = 0; tp > 1 && k < static_cast<int>(perm.size()); ++k)
    if (isSplittable(getResult(), k, tp)) {
      TpStrategy s = replicatedStrategy(*this);
      s.name = "split" + std::to_string(k);
      s.split = true;
      s.operands[0] = {static_cast<int>(perm[k]), false};
      s.result = {k, false};
      out.push_back(s);
    }
}

CG_STRATEGIES(SliceOp) {
  out.push_back(replicatedStrategy(*this));
  auto in = typeOf(getInput());
  SmallVector<int> dims;
  for (int d = 0; d < in.getRank(); ++d)
    if (getStarts()[d] == 0 && getLimits()[d] == in.getDimSize(d) &&
        getSteps()[d] == 1)
      dims.push_back(d);
  if (tp > 1)
    sameDimStrategies(*this, dims, tp, out);
}

/// Concat and split: any dimension but the axis, for all operands alike.
static void notAxis(Operation *op, int64_t axis, int64_t tp,
                    SmallVectorImpl<TpStrategy> &out) {
  out.push_back(replicatedStrategy(op));
  int rank = typeOf(op->getResult(0)).getRank();
  for (int d = 0; tp > 1 && d < rank; ++d) {
    if (d == axis || !llvm::all_of(op->getResults(), [&](Value v) {
          return isSplittable(v, d, tp);
        }))
      continue;
    TpStrategy s;
    s.name = "split" + std::to_string(d);
    s.split = true;
    s.operands.assign(op->getNumOperands(), TensorLayout{d, false});
    s.result = {d, false};
    out.push_back(s);
  }
}

CG_STRATEGIES(ConcatOp) { notAxis(*this, getAxis(), tp, out); }
CG_STRATEGIES(SplitOp) { notAxis(*this, getAxis(), tp, out); }
CG_STRATEGIES(TopKOp) { notAxis(*this, getAxis(), tp, out); }

CG_STRATEGIES(TriluOp) {
  out.push_back(replicatedStrategy(*this));
  SmallVector<int> dims;
  for (int d = 0; d + 2 < typeOf(getResult()).getRank(); ++d)
    dims.push_back(d);
  if (tp > 1)
    sameDimStrategies(*this, dims, tp, out);
}
