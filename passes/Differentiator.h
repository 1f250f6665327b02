//===- Differentiator.h - Gradient rules of colossal-autodiff ---*- C++ -*-===//
//
// Builds, with cg ops, the operand gradients of one op from its result
// gradients. Autodiff.cpp holds the pass and the rules of the general ops,
// AutodiffNN.cpp those of the convolutional-network ops.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_PASSES_DIFFERENTIATOR_H
#define COLOSSAL_PASSES_DIFFERENTIATOR_H

#include "passes/GraphBuild.h"

#include "mlir/IR/Builders.h"

namespace mlir::colossal::autodiff {
using namespace cg;

/// Builds gradient code at the builder's insertion point.
class Differentiator {
public:
  Differentiator(OpBuilder &b, Location loc) : b(b), loc(loc) {}

  Value scalar(double v, Type element) {
    return scalarConstant(b, loc, element, v);
  }

  /// Broadcasting binary op with the result type inferred.
  template <typename OpT> Value binary(Value x, Value y) {
    auto shape = broadcastShapes(typeOf(x).getShape(), typeOf(y).getShape());
    auto type = RankedTensorType::get(*shape, typeOf(x).getElementType());
    return b.create<OpT>(loc, type, x, y);
  }

  /// Sums `g` over the dimensions broadcasting added to reach `shape`.
  Value unbroadcast(Value g, RankedTensorType target) {
    auto gt = typeOf(g);
    if (gt.getShape() == target.getShape())
      return g;
    int64_t lead = gt.getRank() - target.getRank();
    SmallVector<int64_t> axes;
    for (int64_t d = 0; d < gt.getRank(); ++d)
      if (d < lead ||
          (target.getDimSize(d - lead) == 1 && gt.getDimSize(d) != 1))
        axes.push_back(d);
    Value summed = g;
    if (!axes.empty()) {
      SmallVector<int64_t> kept;
      for (int64_t d = 0; d < gt.getRank(); ++d)
        if (!llvm::is_contained(axes, d))
          kept.push_back(gt.getDimSize(d));
      summed = b.create<ReduceSumOp>(
          loc, RankedTensorType::get(kept, gt.getElementType()), g,
          b.getDenseI64ArrayAttr(axes), UnitAttr());
    }
    return b.create<ReshapeOp>(loc, target, summed);
  }

  Value transposeLast2(Value v) {
    auto t = typeOf(v);
    SmallVector<int64_t> perm, shape;
    for (int64_t d = 0; d < t.getRank(); ++d)
      perm.push_back(d);
    std::swap(perm[t.getRank() - 1], perm[t.getRank() - 2]);
    for (int64_t p : perm)
      shape.push_back(t.getDimSize(p));
    return b.create<TransposeOp>(
        loc, RankedTensorType::get(shape, t.getElementType()), v,
        b.getDenseI64ArrayAttr(perm));
  }

  /// `v` transposed by `perm`; `v` itself when `perm` is the identity.
  Value permute(Value v, ArrayRef<int64_t> perm) {
    auto t = typeOf(v);
    SmallVector<int64_t> shape;
    bool identity = true;
    for (auto [i, p] : llvm::enumerate(perm)) {
      shape.push_back(t.getDimSize(p));
      identity &= static_cast<int64_t>(i) == p;
    }
    if (identity)
      return v;
    return b.create<TransposeOp>(
        loc, RankedTensorType::get(shape, t.getElementType()), v,
        b.getDenseI64ArrayAttr(perm));
  }

  Value matmul(Value x, Value y) {
    auto shape = matmulShape(typeOf(x).getShape(), typeOf(y).getShape());
    return b.create<MatMulOp>(
        loc, RankedTensorType::get(*shape, typeOf(x).getElementType()), x, y);
  }

  /// `g` (shaped like the reduction's result) broadcast back over `input`.
  Value expandBack(Value g, RankedTensorType input, ArrayRef<int64_t> axes) {
    SmallVector<int64_t> kept(input.getShape());
    for (int64_t a : axes)
      kept[a < 0 ? a + input.getRank() : a] = 1;
    Value r = b.create<ReshapeOp>(
        loc, RankedTensorType::get(kept, input.getElementType()), g);
    return b.create<ExpandOp>(loc, input, r);
  }

  Value cmp(CmpPredicate pred, Value x, Value y) {
    auto shape = broadcastShapes(typeOf(x).getShape(), typeOf(y).getShape());
    return b.create<CmpOp>(loc, RankedTensorType::get(*shape, b.getI1Type()),
                           pred, x, y);
  }

  /// `g` where `mask` holds, zero elsewhere (shaped like `g`).
  Value select(Value mask, Value g) {
    return b.create<WhereOp>(loc, typeOf(g), mask, g,
                             scalar(0.0, typeOf(g).getElementType()));
  }

  /// Mean of `v` over dimensions [axis, rank), kept as size-1 dimensions.
  Value meanTrailing(Value v, int64_t axis) {
    auto t = typeOf(v);
    SmallVector<int64_t> axes, kept(t.getShape());
    double count = 1;
    for (int64_t d = axis; d < t.getRank(); ++d) {
      axes.push_back(d);
      kept[d] = 1;
      count *= t.getDimSize(d);
    }
    Value sum = b.create<ReduceSumOp>(
        loc, RankedTensorType::get(kept, t.getElementType()), v,
        b.getDenseI64ArrayAttr(axes), b.getUnitAttr());
    return binary<DivOp>(sum, scalar(count, t.getElementType()));
  }

  /// Input gradient of a normalization: with xhat = x * inv (inv =
  /// 1/sqrt(var + eps)) and gs the gradient reaching xhat,
  ///   dx = inv * (gs - [centered] mean(gs) - xhat * mean(gs * xhat)).
  Value normInputGrad(Value gs, Value xhat, Value inv, int64_t axis,
                      bool centered) {
    Value t = binary<SubOp>(
        gs, binary<MulOp>(xhat, meanTrailing(binary<MulOp>(gs, xhat), axis)));
    if (centered)
      t = binary<SubOp>(t, meanTrailing(gs, axis));
    return binary<MulOp>(t, inv);
  }

  Value zeros(RankedTensorType type) {
    return b.create<ExpandOp>(loc, type, scalar(0.0, type.getElementType()));
  }

  /// `g` placed at `starts` (step 1) inside zeros of type `full`: the
  /// inverse of a slice, built from concatenations with zero blocks.
  Value padInto(Value g, RankedTensorType full, ArrayRef<int64_t> starts) {
    Value cur = g;
    for (int64_t d = 0; d < full.getRank(); ++d) {
      auto ct = typeOf(cur);
      int64_t before = starts[d],
              after = full.getDimSize(d) - starts[d] - ct.getDimSize(d);
      if (before == 0 && after == 0)
        continue;
      SmallVector<Value> parts;
      auto block = [&](int64_t n) {
        SmallVector<int64_t> shape(ct.getShape());
        shape[d] = n;
        return zeros(RankedTensorType::get(shape, ct.getElementType()));
      };
      if (before > 0)
        parts.push_back(block(before));
      parts.push_back(cur);
      if (after > 0)
        parts.push_back(block(after));
      SmallVector<int64_t> shape(ct.getShape());
      shape[d] = full.getDimSize(d);
      cur = b.create<ConcatOp>(
          loc, RankedTensorType::get(shape, ct.getElementType()), parts,
          b.getI64IntegerAttr(d));
    }
    return cur;
  }

  /// `v[start:limit:step]` along `dim`, everything along the others.
  Value sliceDim(Value v, int64_t dim, int64_t start, int64_t limit,
                 int64_t step) {
    auto t = typeOf(v);
    SmallVector<int64_t> starts(t.getRank(), 0), limits(t.getShape()),
        steps(t.getRank(), 1), shape(t.getShape());
    starts[dim] = start;
    limits[dim] = limit;
    steps[dim] = step;
    shape[dim] = step > 0 ? (limit - start + step - 1) / step
                          : (start - limit - step - 1) / -step;
    return b.create<SliceOp>(
        loc, RankedTensorType::get(shape, t.getElementType()), v,
        b.getDenseI64ArrayAttr(starts), b.getDenseI64ArrayAttr(limits),
        b.getDenseI64ArrayAttr(steps));
  }

  /// `v`'s elements along `dim` moved to every `step`-th position with
  /// zeros between, cut to at most `avail` positions: the inverse of a
  /// positive-step slice, up to placement.
  Value spread(Value v, int64_t dim, int64_t step, int64_t avail) {
    auto t = typeOf(v);
    Type e = t.getElementType();
    int64_t m = t.getDimSize(dim);
    SmallVector<int64_t> one(t.getShape());
    one.insert(one.begin() + dim + 1, 1);
    SmallVector<int64_t> gap(one), both(one), flat(t.getShape());
    gap[dim + 1] = step - 1;
    both[dim + 1] = step;
    flat[dim] = m * step;
    Value parts[] = {b.create<ReshapeOp>(loc, RankedTensorType::get(one, e), v),
                     zeros(RankedTensorType::get(gap, e))};
    Value joined = b.create<ConcatOp>(loc, RankedTensorType::get(both, e),
                                      parts, b.getI64IntegerAttr(dim + 1));
    Value r = b.create<ReshapeOp>(loc, RankedTensorType::get(flat, e), joined);
    return m * step > avail ? sliceDim(r, dim, 0, avail, 1) : r;
  }

  /// Operand gradients of `op` given its result gradient `g`; null entries
  /// for operands that get none (or have no float type).
  FailureOr<SmallVector<Value>> rule(Operation *op, ArrayRef<Value> gs);

  /// The rules of batch_norm, conv2d and the pools (AutodiffNN.cpp):
  /// fills `d` from the result gradient `g`; failure for other ops and for
  /// forms without a rule.
  LogicalResult nnRule(Operation *op, Value g, SmallVectorImpl<Value> &d);

  /// Sum of `v` (NCHW...) over every dimension but the channels (1).
  Value sumExceptChannels(Value v);
  /// A per-channel vector [C] shaped [1, C, 1, ...] to broadcast over `like`.
  Value perChannel(Value v, RankedTensorType like);
  /// Input gradient of avg_pool2d; fails for a ceil_mode pool whose result
  /// is larger than the floor-mode one.
  FailureOr<Value> avgPoolGrad(AvgPool2DOp p, Value g);

  static RankedTensorType reducedType(RankedTensorType t, int64_t axis) {
    SmallVector<int64_t> shape;
    for (int64_t d = 0; d < t.getRank(); ++d)
      if (d != (axis < 0 ? axis + t.getRank() : axis))
        shape.push_back(t.getDimSize(d));
    return RankedTensorType::get(shape, t.getElementType());
  }

  OpBuilder &b;
  Location loc;
  /// Attention's q/k/v gradients as one cg.attention_backward (flash
  /// attention's form) instead of recomputed probabilities and matmuls.
  bool fusedAttention = false;
};

} // namespace mlir::colossal::autodiff

#endif // COLOSSAL_PASSES_DIFFERENTIATOR_H
