//===- FuseAttention.cpp - Form cg.attention from its unfused pattern -----===//
//
// Exporters write attention as matmul, scale, mask, softmax, matmul. Fusing
// it gives later passes one op to shard (by heads, or by sequence with ring
// or all-to-all exchange), to cost, and to run as a fused kernel.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>

namespace mlir::colossal {
#define GEN_PASS_DEF_FUSEATTENTIONPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

/// Masked-out scores must be this negative for a mask to mean "excluded".
constexpr double kMaskedOut = -1.0e4;

/// The value of a scalar (or splat) floating-point constant.
std::optional<double> scalarConstant(Value v) {
  DenseElementsAttr attr;
  if (!matchPattern(v, m_Constant(&attr)) || !attr.isSplat() ||
      !isa<FloatType>(attr.getElementType()))
    return std::nullopt;
  return attr.getSplatValue<APFloat>().convertToDouble();
}

/// Where each (row, column) of the last two dimensions is allowed by a
/// causal mask: column <= row + (columns - rows), aligned at the end.
bool causalAllowed(int64_t row, int64_t col, int64_t rows, int64_t cols) {
  return col <= row + (cols - rows);
}

/// True when `mask` is a constant whose last two dimensions hold a causal
/// pattern over a [rows, cols] score matrix (leading dimensions of size 1).
/// `additive` masks hold 0 / very negative; keep-masks hold true / false.
bool isCausalConstant(Value mask, int64_t rows, int64_t cols, bool additive) {
  DenseElementsAttr attr;
  if (!matchPattern(mask, m_Constant(&attr)))
    return false;
  auto type = cast<ShapedType>(attr.getType());
  int64_t rank = type.getRank();
  if (rank < 2 || type.getDimSize(rank - 2) != rows ||
      type.getDimSize(rank - 1) != cols || type.getNumElements() != rows * cols)
    return false;
  if (attr.isSplat())
    return false;
  int64_t k = 0;
  if (additive) {
    if (!isa<FloatType>(attr.getElementType()))
      return false;
    for (APFloat f : attr.getValues<APFloat>()) {
      int64_t i = k / cols, j = k % cols;
      double v = f.convertToDouble();
      if (causalAllowed(i, j, rows, cols) ? v != 0.0 : v > kMaskedOut)
        return false;
      ++k;
    }
    return true;
  }
  if (!attr.getElementType().isInteger(1))
    return false;
  for (bool keep : attr.getValues<bool>()) {
    int64_t i = k / cols, j = k % cols;
    if (keep != causalAllowed(i, j, rows, cols))
      return false;
    ++k;
  }
  return true;
}

/// True when `mask` is cg.trilu of a splat: lower-triangular "keep" masks
/// (true/1 on and below the diagonal) or upper-triangular additive masks
/// (-inf strictly above the diagonal), as exporters build them at runtime.
bool isCausalTrilu(Value mask, int64_t rows, int64_t cols, bool additive) {
  auto trilu = mask.getDefiningOp<TriluOp>();
  if (!trilu)
    return false;
  auto type = cast<ShapedType>(trilu.getType());
  int64_t rank = type.getRank();
  if (type.getDimSize(rank - 2) != rows || type.getDimSize(rank - 1) != cols ||
      type.getNumElements() != rows * cols)
    return false;
  DenseElementsAttr fill;
  if (!matchPattern(trilu.getInput(), m_Constant(&fill)) || !fill.isSplat())
    return false;
  int64_t offset = cols - rows;
  if (additive) {
    if (!isa<FloatType>(fill.getElementType()))
      return false;
    double v = fill.getSplatValue<APFloat>().convertToDouble();
    return trilu.getUpper() && trilu.getDiagonal() == offset + 1 &&
           v <= kMaskedOut;
  }
  bool nonzero = fill.getElementType().isInteger(1)
                     ? fill.getSplatValue<bool>()
                     : !fill.getSplatValue<APFloat>().isZero();
  return !trilu.getUpper() && trilu.getDiagonal() == offset && nonzero;
}

/// Looks through a cast to i1 of a float/int keep-mask.
Value throughBoolCast(Value v) {
  if (auto cast = v.getDefiningOp<CastOp>())
    return cast.getInput();
  return v;
}

struct FuseAttentionPattern : OpRewritePattern<MatMulOp> {
  FuseAttentionPattern(MLIRContext *context, int64_t &fused, int64_t &causal)
      : OpRewritePattern(context), fused(fused), causal(causal) {}

  LogicalResult matchAndRewrite(MatMulOp out,
                                PatternRewriter &rewriter) const override {
    // Match the softmax feeding the output matmul.
    auto softmax = out.getLhs().getDefiningOp<SoftmaxOp>();
    if (!softmax || !softmax->hasOneUse())
      return failure();
    auto probs = cast<ShapedType>(softmax.getType());
    int64_t rank = probs.getRank();
    if (rank < 2 || static_cast<int64_t>(softmax.getAxis()) != rank - 1)
      return failure();
    int64_t rows = probs.getDimSize(rank - 2),
            cols = probs.getDimSize(rank - 1);

    // Peel the optional mask.
    Value scores = softmax.getInput();
    Value mask;
    bool isCausal = false;
    if (auto add = scores.getDefiningOp<AddOp>()) {
      Value s = add.getLhs(), m = add.getRhs();
      if (!s.getDefiningOp<MulOp>() && !s.getDefiningOp<DivOp>() &&
          !s.getDefiningOp<MatMulOp>())
        std::swap(s, m);
      if (cast<ShapedType>(s.getType()) != probs)
        return failure();
      isCausal = isCausalConstant(m, rows, cols, /*additive=*/true) ||
                 isCausalTrilu(m, rows, cols, /*additive=*/true);
      mask = isCausal ? Value() : m;
      scores = s;
    } else if (auto where = scores.getDefiningOp<WhereOp>()) {
      // where(keep, s, fill) or masked_fill's where(drop, fill, s).
      Value keep = where.getCondition();
      Value s = where.getX(), fill = where.getY();
      bool inverted = false;
      auto fillValue = scalarConstant(fill);
      if (!fillValue || *fillValue > kMaskedOut) {
        std::swap(s, fill);
        inverted = true;
        fillValue = scalarConstant(fill);
      }
      if (!fillValue || *fillValue > kMaskedOut ||
          cast<ShapedType>(s.getType()) != probs)
        return failure();
      if (!inverted) {
        Value raw = throughBoolCast(keep);
        isCausal = isCausalConstant(keep, rows, cols, false) ||
                   isCausalTrilu(raw, rows, cols, false);
      }
      if (!isCausal) {
        mask = keep;
        if (inverted) {
          rewriter.setInsertionPoint(out);
          mask = rewriter.create<NotOp>(where.getLoc(), keep.getType(), keep);
        }
      }
      scores = s;
    }

    // Peel the optional scale.
    double scale = 1.0;
    if (auto mul = scores.getDefiningOp<MulOp>()) {
      auto c = scalarConstant(mul.getRhs());
      Value s = mul.getLhs();
      if (!c) {
        c = scalarConstant(mul.getLhs());
        s = mul.getRhs();
      }
      if (!c)
        return failure();
      scale = *c;
      scores = s;
    } else if (auto div = scores.getDefiningOp<DivOp>()) {
      auto c = scalarConstant(div.getRhs());
      if (!c || *c == 0.0)
        return failure();
      scale = 1.0 / *c;
      scores = div.getLhs();
    }

    // The score matmul q @ k^T, with operands of one rank and batch shape.
    auto qk = scores.getDefiningOp<MatMulOp>();
    if (!qk)
      return failure();
    Value q = qk.getLhs(), kT = qk.getRhs(), v = out.getRhs();
    auto qType = cast<ShapedType>(q.getType());
    auto kTType = cast<ShapedType>(kT.getType());
    auto vType = cast<ShapedType>(v.getType());
    if (qType.getRank() != rank || kTType.getRank() != rank ||
        vType.getRank() != rank ||
        qType.getShape().drop_back(2) != kTType.getShape().drop_back(2) ||
        qType.getShape().drop_back(2) != vType.getShape().drop_back(2))
      return failure();

    // key = transpose(kT) over the last two dimensions, composed with the
    // transpose that produced kT when there is one.
    SmallVector<int64_t> swap;
    for (int64_t d = 0; d < rank; ++d)
      swap.push_back(d);
    std::swap(swap[rank - 1], swap[rank - 2]);
    rewriter.setInsertionPoint(out);
    Value source = kT;
    SmallVector<int64_t> perm = swap;
    if (auto t = kT.getDefiningOp<TransposeOp>()) {
      source = t.getInput();
      ArrayRef<int64_t> inner = t.getPermutation();
      for (int64_t d = 0; d < rank; ++d)
        perm[d] = inner[swap[d]];
    }
    bool identity = llvm::all_of(llvm::enumerate(perm), [](auto p) {
      return static_cast<int64_t>(p.index()) == p.value();
    });
    Value key = source;
    if (!identity) {
      SmallVector<int64_t> shape;
      auto sType = cast<ShapedType>(source.getType());
      for (int64_t p : perm)
        shape.push_back(sType.getDimSize(p));
      key = rewriter.create<TransposeOp>(
          out.getLoc(), RankedTensorType::get(shape, sType.getElementType()),
          source, perm);
    }

    auto attention = rewriter.create<AttentionOp>(
        out.getLoc(), out.getType(), q, key, v, mask,
        rewriter.getF64FloatAttr(scale),
        isCausal ? rewriter.getUnitAttr() : UnitAttr());
    rewriter.replaceOp(out, attention.getResult());
    ++fused;
    if (isCausal)
      ++causal;
    return success();
  }

  int64_t &fused, &causal;
};

struct FuseAttentionPass
    : mlir::colossal::impl::FuseAttentionPassBase<FuseAttentionPass> {
  void runOnOperation() override {
    int64_t fused = 0, causal = 0;
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseAttentionPattern>(&getContext(), fused, causal);
    if (failed(
            applyPatternsAndFoldGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
    numFused += fused;
    numCausal += causal;
  }
};

} // namespace
