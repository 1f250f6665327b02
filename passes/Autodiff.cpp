//===- Autodiff.cpp - Reverse-mode gradients of a scalar loss -------------===//
//
// Steps: (1) seed d(loss)/d(loss) = 1, (2) walk the ops in reverse, giving
// every operand on the path its share through the op's rule, summing shares
// that meet and undoing broadcasts, (3) return the parameters' gradients.
// Rules are built from graph-dialect ops; all but conv2d's and
// max_pool2d's (which use cg.conv2d_backward_* and cg.max_pool2d_backward)
// need no kernels beyond those of the forward ops.
//
//===----------------------------------------------------------------------===//

#include "passes/Differentiator.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/GlobPattern.h"

#include <cmath>

namespace mlir::colossal {
#define GEN_PASS_DEF_AUTODIFFPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;
using namespace mlir::colossal::autodiff;

FailureOr<SmallVector<Value>> Differentiator::rule(Operation *op,
                                                   ArrayRef<Value> gs) {
  Value g = gs.empty() ? Value() : gs[0];
  SmallVector<Value> d(op->getNumOperands());
  Value y = op->getNumResults() ? op->getResult(0) : Value();
  Type f = g ? typeOf(g).getElementType() : Type();
  LogicalResult ok =
      llvm::TypeSwitch<Operation *, LogicalResult>(op)
          .Case([&](AddOp a) {
            d[0] = unbroadcast(g, typeOf(a.getLhs()));
            d[1] = unbroadcast(g, typeOf(a.getRhs()));
            return success();
          })
          .Case([&](SubOp s) {
            d[0] = unbroadcast(g, typeOf(s.getLhs()));
            d[1] = unbroadcast(b.create<NegOp>(loc, typeOf(g), g),
                               typeOf(s.getRhs()));
            return success();
          })
          .Case([&](MulOp m) {
            d[0] =
                unbroadcast(binary<MulOp>(g, m.getRhs()), typeOf(m.getLhs()));
            d[1] =
                unbroadcast(binary<MulOp>(g, m.getLhs()), typeOf(m.getRhs()));
            return success();
          })
          .Case([&](DivOp q) {
            d[0] =
                unbroadcast(binary<DivOp>(g, q.getRhs()), typeOf(q.getLhs()));
            Value t = binary<DivOp>(binary<MulOp>(g, y), q.getRhs());
            d[1] = unbroadcast(b.create<NegOp>(loc, typeOf(t), t),
                               typeOf(q.getRhs()));
            return success();
          })
          .Case([&](NegOp) {
            d[0] = b.create<NegOp>(loc, typeOf(g), g);
            return success();
          })
          .Case<FloorOp, CeilOp, RoundOp>([&](Operation *) {
            return success(); // piecewise constant: a zero gradient
          })
          .Case([&](ExpOp) {
            d[0] = binary<MulOp>(g, y);
            return success();
          })
          .Case([&](LogOp l) {
            d[0] = binary<DivOp>(g, l.getInput());
            return success();
          })
          .Case([&](SqrtOp) {
            d[0] = binary<DivOp>(binary<MulOp>(g, scalar(0.5, f)), y);
            return success();
          })
          .Case([&](SinOp s) {
            Value c = b.create<CosOp>(loc, typeOf(g), s.getInput());
            d[0] = binary<MulOp>(g, c);
            return success();
          })
          .Case([&](CosOp c) {
            Value s = b.create<SinOp>(loc, typeOf(g), c.getInput());
            d[0] = b.create<NegOp>(loc, typeOf(g), binary<MulOp>(g, s));
            return success();
          })
          .Case([&](TanhOp) {
            Value one = scalar(1.0, f);
            d[0] = binary<MulOp>(g, binary<SubOp>(one, binary<MulOp>(y, y)));
            return success();
          })
          .Case([&](SigmoidOp) {
            Value one = scalar(1.0, f);
            d[0] = binary<MulOp>(g, binary<MulOp>(y, binary<SubOp>(one, y)));
            return success();
          })
          .Case([&](ReluOp r) {
            auto x = r.getInput();
            Value positive = b.create<CmpOp>(
                loc, RankedTensorType::get(typeOf(x).getShape(), b.getI1Type()),
                CmpPredicate::gt, x, scalar(0.0, f));
            d[0] =
                b.create<WhereOp>(loc, typeOf(g), positive, g, scalar(0.0, f));
            return success();
          })
          .Case([&](RsqrtOp) { // d/dx x^-1/2 = -y^3 / 2
            d[0] = binary<MulOp>(binary<MulOp>(g, scalar(-0.5, f)),
                                 binary<MulOp>(y, binary<MulOp>(y, y)));
            return success();
          })
          .Case([&](ReciprocalOp) { // d/dx 1/x = -y^2
            d[0] = b.create<NegOp>(loc, typeOf(g),
                                   binary<MulOp>(g, binary<MulOp>(y, y)));
            return success();
          })
          .Case([&](AbsOp a) {
            if (!isa<FloatType>(f))
              return failure();
            Value x = a.getInput();
            Value neg = b.create<NegOp>(loc, typeOf(g), g);
            d[0] = b.create<WhereOp>(
                loc, typeOf(g), cmp(CmpPredicate::gt, x, scalar(0.0, f)), g,
                select(cmp(CmpPredicate::lt, x, scalar(0.0, f)), neg));
            return success();
          })
          .Case([&](SiluOp si) { // s + x s (1 - s)
            Value x = si.getInput();
            Value sg = b.create<SigmoidOp>(loc, typeOf(x), x);
            Value ds = binary<MulOp>(
                sg, binary<AddOp>(
                        scalar(1.0, f),
                        binary<MulOp>(x, binary<SubOp>(scalar(1.0, f), sg))));
            d[0] = binary<MulOp>(g, ds);
            return success();
          })
          .Case([&](ErfOp e) { // 2/sqrt(pi) exp(-x^2)
            Value x = e.getInput();
            Value ex = b.create<ExpOp>(
                loc, typeOf(x),
                b.create<NegOp>(loc, typeOf(x), binary<MulOp>(x, x)));
            d[0] = binary<MulOp>(
                g, binary<MulOp>(ex, scalar(2.0 / std::sqrt(M_PI), f)));
            return success();
          })
          .Case([&](GeluOp ge) {
            Value x = ge.getInput();
            auto xt = typeOf(x);
            Value half = scalar(0.5, f), one = scalar(1.0, f);
            Value dy;
            if (ge.getApproximate() == GeluApproximation::none) {
              // Phi(x) + x phi(x).
              Value cdf = binary<MulOp>(
                  half, binary<AddOp>(
                            one, b.create<ErfOp>(
                                     loc, xt,
                                     binary<MulOp>(x, scalar(M_SQRT1_2, f)))));
              Value pdf = binary<MulOp>(
                  b.create<ExpOp>(
                      loc, xt,
                      binary<MulOp>(binary<MulOp>(x, x), scalar(-0.5, f))),
                  scalar(0.5 * M_2_SQRTPI * M_SQRT1_2, f));
              dy = binary<AddOp>(cdf, binary<MulOp>(x, pdf));
            } else {
              // u = c (x + k x^3), t = tanh(u):
              // 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 k x^2).
              double c = std::sqrt(2.0 / M_PI), k = 0.044715;
              Value x2 = binary<MulOp>(x, x);
              Value u = binary<MulOp>(
                  binary<AddOp>(
                      x, binary<MulOp>(binary<MulOp>(x2, x), scalar(k, f))),
                  scalar(c, f));
              Value t = b.create<TanhOp>(loc, xt, u);
              Value du = binary<MulOp>(
                  binary<AddOp>(one, binary<MulOp>(x2, scalar(3 * k, f))),
                  scalar(c, f));
              Value sech2 = binary<SubOp>(one, binary<MulOp>(t, t));
              dy = binary<AddOp>(binary<MulOp>(half, binary<AddOp>(one, t)),
                                 binary<MulOp>(binary<MulOp>(half, x),
                                               binary<MulOp>(sech2, du)));
            }
            d[0] = binary<MulOp>(g, dy);
            return success();
          })
          .Case([&](PowOp p) { // b a^(b-1), y ln a
            Value a = p.getLhs(), e = p.getRhs();
            Value am1 = binary<PowOp>(a, binary<SubOp>(e, scalar(1.0, f)));
            Value da = binary<MulOp>(g, binary<MulOp>(e, am1));
            d[0] = unbroadcast(da, typeOf(a));
            Value la = b.create<LogOp>(loc, typeOf(a), a);
            d[1] =
                unbroadcast(binary<MulOp>(g, binary<MulOp>(y, la)), typeOf(e));
            return success();
          })
          .Case([&](MaxOp m) {
            if (!isa<FloatType>(f))
              return failure();
            Value ge = cmp(CmpPredicate::ge, m.getLhs(), m.getRhs());
            Value lt = cmp(CmpPredicate::lt, m.getLhs(), m.getRhs());
            d[0] = unbroadcast(select(ge, g), typeOf(m.getLhs()));
            d[1] = unbroadcast(select(lt, g), typeOf(m.getRhs()));
            return success();
          })
          .Case([&](MinOp m) {
            if (!isa<FloatType>(f))
              return failure();
            Value le = cmp(CmpPredicate::le, m.getLhs(), m.getRhs());
            Value gt = cmp(CmpPredicate::gt, m.getLhs(), m.getRhs());
            d[0] = unbroadcast(select(le, g), typeOf(m.getLhs()));
            d[1] = unbroadcast(select(gt, g), typeOf(m.getRhs()));
            return success();
          })
          .Case([&](WhereOp w) {
            Value c = w.getCondition();
            auto full =
                RankedTensorType::get(typeOf(g).getShape(), b.getI1Type());
            Value cf = b.create<ExpandOp>(loc, full, c);
            Value notc = b.create<NotOp>(loc, full, cf);
            d[1] = unbroadcast(select(cf, g), typeOf(w.getX()));
            d[2] = unbroadcast(select(notc, g), typeOf(w.getY()));
            return success();
          })
          .Case([&](ExpandOp e) {
            d[0] = unbroadcast(g, typeOf(e.getInput()));
            return success();
          })
          .Case([&](CastOp c) {
            if (!isa<FloatType>(typeOf(c.getInput()).getElementType()))
              return failure();
            d[0] = b.create<CastOp>(loc, typeOf(c.getInput()), g);
            return success();
          })
          .Case([&](LayerNormOp n) {
            Value x = n.getInput();
            int64_t axis = n.getAxis();
            if (axis < 0)
              axis += typeOf(x).getRank();
            Value xc = binary<SubOp>(x, meanTrailing(x, axis));
            Value var = meanTrailing(binary<MulOp>(xc, xc), axis);
            Value inv = b.create<RsqrtOp>(
                loc, typeOf(var),
                binary<AddOp>(var,
                              scalar(n.getEpsilon().convertToDouble(), f)));
            Value xhat = binary<MulOp>(xc, inv);
            d[0] = normInputGrad(binary<MulOp>(g, n.getScale()), xhat, inv,
                                 axis, /*centered=*/true);
            d[1] = unbroadcast(binary<MulOp>(g, xhat), typeOf(n.getScale()));
            if (n.getBias())
              d[2] = unbroadcast(g, typeOf(n.getBias()));
            return success();
          })
          .Case([&](RmsNormOp n) {
            Value x = n.getInput();
            int64_t axis = n.getAxis();
            if (axis < 0)
              axis += typeOf(x).getRank();
            Value ms = meanTrailing(binary<MulOp>(x, x), axis);
            Value inv = b.create<RsqrtOp>(
                loc, typeOf(ms),
                binary<AddOp>(ms, scalar(n.getEpsilon().convertToDouble(), f)));
            Value xhat = binary<MulOp>(x, inv);
            d[0] = normInputGrad(binary<MulOp>(g, n.getScale()), xhat, inv,
                                 axis, /*centered=*/false);
            d[1] = unbroadcast(binary<MulOp>(g, xhat), typeOf(n.getScale()));
            return success();
          })
          .Case([&](ReduceMaxOp r) {
            // Ties share the gradient equally (torch.amax's rule).
            Value x = r.getInput();
            auto in = typeOf(x);
            if (!isa<FloatType>(in.getElementType()))
              return failure();
            Value hit =
                cmp(CmpPredicate::eq, x, expandBack(y, in, r.getAxes()));
            Value hits = b.create<CastOp>(
                loc, RankedTensorType::get(in.getShape(), f), hit);
            Value count = b.create<ReduceSumOp>(
                loc, typeOf(y), hits, r.getAxesAttr(), r.getKeepdimsAttr());
            d[0] = select(hit,
                          expandBack(binary<DivOp>(g, count), in, r.getAxes()));
            return success();
          })
          .Case([&](TriluOp t) {
            if (!isa<FloatType>(f))
              return failure();
            d[0] = b.create<TriluOp>(loc, typeOf(g), g, t.getUpperAttr(),
                                     t.getDiagonalAttr());
            return success();
          })
          .Case([&](SliceOp sl) {
            auto in = typeOf(sl.getInput());
            if (!isa<FloatType>(in.getElementType()))
              return failure();
            if (typeOf(g).getNumElements() == 0) {
              d[0] = zeros(in);
              return success();
            }
            // Per dimension, turn the strided pick into a contiguous block
            // (reversed when the step is negative, zeros between picks),
            // then place the blocks.
            Value cur = g;
            SmallVector<int64_t> starts;
            for (int64_t dim = 0; dim < in.getRank(); ++dim) {
              int64_t step = sl.getSteps()[dim], start = sl.getStarts()[dim],
                      m = typeOf(cur).getDimSize(dim);
              if (step < 0) {
                cur = sliceDim(cur, dim, m - 1, -1, -1);
                start += (m - 1) * step;
                step = -step;
              }
              if (step > 1)
                cur = spread(cur, dim, step, in.getDimSize(dim) - start);
              starts.push_back(start);
            }
            d[0] = padInto(cur, in, starts);
            return success();
          })
          .Case([&](ConcatOp c) {
            int64_t axis = static_cast<int64_t>(c.getAxis());
            auto gt = typeOf(g);
            if (axis < 0)
              axis += gt.getRank();
            int64_t offset = 0;
            for (auto [i, in] : llvm::enumerate(c.getInputs())) {
              auto it = typeOf(in);
              SmallVector<int64_t> starts(gt.getRank(), 0),
                  limits(gt.getShape()), steps(gt.getRank(), 1);
              starts[axis] = offset;
              limits[axis] = offset + it.getDimSize(axis);
              offset = limits[axis];
              d[i] =
                  b.create<SliceOp>(loc, it, g, b.getDenseI64ArrayAttr(starts),
                                    b.getDenseI64ArrayAttr(limits),
                                    b.getDenseI64ArrayAttr(steps));
            }
            return success();
          })
          .Case([&](SplitOp sp) {
            auto in = typeOf(sp.getInput());
            if (!isa<FloatType>(in.getElementType()))
              return failure();
            int64_t axis = static_cast<int64_t>(sp.getAxis());
            if (axis < 0)
              axis += in.getRank();
            d[0] = b.create<ConcatOp>(loc, in, gs, b.getI64IntegerAttr(axis));
            return success();
          })
          .Case([&](ScatterAddRowsOp sc) {
            // Each update row went to one result row: its gradient is that
            // row of g (the indices' producers keep them in range).
            d[1] = b.create<GatherOp>(loc, typeOf(sc.getUpdates()), g,
                                      sc.getIndices(), b.getI64IntegerAttr(0));
            return success();
          })
          .Case([&](TopKOp tk) {
            // Each chosen element's gradient goes back to its position:
            // flat position (o * len + index) * inner + i of every value,
            // then one scatter_add_rows of g as rows of one.
            auto in = typeOf(tk.getInput());
            if (!isa<FloatType>(in.getElementType()))
              return failure();
            int64_t axis = static_cast<int64_t>(tk.getAxis());
            const int64_t len = in.getDimSize(axis);
            int64_t outer = 1, inner = 1;
            for (int64_t i = 0; i < in.getRank(); ++i) {
              if (i < axis)
                outer *= in.getDimSize(i);
              else if (i > axis)
                inner *= in.getDimSize(i);
            }
            const int64_t k = static_cast<int64_t>(tk.getK());
            const int64_t n = outer * k * inner;
            Type i64 = b.getI64Type();
            auto baseType = RankedTensorType::get({outer, 1, inner}, i64);
            std::vector<int64_t> base;
            for (int64_t o = 0; o < outer; ++o)
              for (int64_t i = 0; i < inner; ++i)
                base.push_back(o * len * inner + i);
            Value bases = b.create<ConstantOp>(
                loc, DenseElementsAttr::get(baseType, ArrayRef<int64_t>(base)));
            auto idx3 = RankedTensorType::get({outer, k, inner}, i64);
            Value idx = b.create<ReshapeOp>(loc, idx3, tk.getIndices());
            Value flat = b.create<ReshapeOp>(
                loc, RankedTensorType::get({n}, i64),
                binary<AddOp>(binary<MulOp>(idx, scalar(inner, i64)), bases));
            Value rows =
                b.create<ReshapeOp>(loc, RankedTensorType::get({n, 1}, f), g);
            Value dx = b.create<ScatterAddRowsOp>(
                loc, RankedTensorType::get({in.getNumElements(), 1}, f), flat,
                rows);
            d[0] = b.create<ReshapeOp>(loc, in, dx);
            return success();
          })
          .Case([&](GatherOp ga) {
            // g's rows added into the looked-up rows (scatter_add_rows): the
            // embedding gradient, without a one-hot matrix. Along another
            // axis, g's index dimensions move to the front first and the
            // gathered axis goes back in place after.
            auto data = typeOf(ga.getInput());
            auto idx = typeOf(ga.getIndices());
            int64_t axis = static_cast<int64_t>(ga.getAxis());
            if (axis < 0)
              axis += data.getRank();
            if (!isa<FloatType>(data.getElementType()))
              return failure();
            int64_t rows = data.getDimSize(axis);
            int64_t n = idx.getNumElements();
            int64_t width = data.getNumElements() / rows;
            Type it = idx.getElementType();
            Value flat = b.create<ReshapeOp>(
                loc, RankedTensorType::get({n}, it), ga.getIndices());
            // Negative indices count from the end.
            Value wrapped = b.create<WhereOp>(
                loc, typeOf(flat), cmp(CmpPredicate::lt, flat, scalar(0, it)),
                binary<AddOp>(flat, scalar(rows, it)), flat);
            int64_t gRank = typeOf(g).getRank(), k = idx.getRank();
            SmallVector<int64_t> toFront;
            for (int64_t i = axis; i < axis + k; ++i)
              toFront.push_back(i);
            for (int64_t i = 0; i < gRank; ++i)
              if (i < axis || i >= axis + k)
                toFront.push_back(i);
            Value g2 = b.create<ReshapeOp>(
                loc, RankedTensorType::get({n, width}, f), permute(g, toFront));
            Value rowsFirst = b.create<ScatterAddRowsOp>(
                loc, RankedTensorType::get({rows, width}, f), wrapped, g2);
            // [rows, width] -> data's shape with the axis in front, then
            // the axis back in place.
            SmallVector<int64_t> front = {rows}, back;
            for (int64_t i = 0; i < data.getRank(); ++i)
              if (i != axis)
                front.push_back(data.getDimSize(i));
            for (int64_t i = 1; i <= axis; ++i)
              back.push_back(i);
            back.push_back(0);
            for (int64_t i = axis + 1; i < data.getRank(); ++i)
              back.push_back(i);
            d[0] = permute(b.create<ReshapeOp>(
                               loc, RankedTensorType::get(front, f), rowsFirst),
                           back);
            return success();
          })
          .Case([&](AttentionOp at) {
            // Recompute P = softmax(q k^T * scale [+ mask] [causal]),
            // then dV = P^T g, dS = P * (g v^T - rowsum(g v^T * P)),
            // dQ = scale dS k, dK = scale dS^T q.
            Value q = at.getQuery(), k = at.getKey(), v = at.getValue();
            bool floatMask =
                at.getMask() &&
                isa<FloatType>(typeOf(at.getMask()).getElementType());
            if (fusedAttention) {
              auto fused = b.create<AttentionBackwardOp>(
                  loc, TypeRange{q.getType(), k.getType(), v.getType()}, q, k,
                  v, at.getResult(), g, at.getMask(), at.getScaleAttr(),
                  at.getCausalAttr());
              d[0] = fused.getQueryGrad();
              d[1] = fused.getKeyGrad();
              d[2] = fused.getValueGrad();
              // A float mask's gradient is built below as before; the
              // canonicalizer drops it unless a parameter needs it.
              if (!floatMask)
                return success();
            }
            double scale = at.getScale().convertToDouble();
            Value sc = scalar(scale, f);
            Value s = binary<MulOp>(matmul(q, transposeLast2(k)), sc);
            auto st = typeOf(s);
            int64_t sq = st.getDimSize(st.getRank() - 2),
                    skv = st.getDimSize(st.getRank() - 1);
            Value minusInf = scalar(-INFINITY, f);
            if (Value mask = at.getMask()) {
              if (isa<FloatType>(typeOf(mask).getElementType()))
                s = binary<AddOp>(s, mask);
              else
                s = b.create<WhereOp>(loc, st, mask, s, minusInf);
            }
            if (at.getCausal()) {
              SmallVector<bool> keep;
              for (int64_t i = 0; i < sq; ++i)
                for (int64_t j = 0; j < skv; ++j)
                  keep.push_back(j <= i + (skv - sq));
              auto kt = RankedTensorType::get({sq, skv}, b.getI1Type());
              Value keepMask = b.create<ConstantOp>(
                  loc, DenseElementsAttr::get(kt, ArrayRef<bool>(keep)));
              s = b.create<WhereOp>(loc, st, keepMask, s, minusInf);
            }
            int64_t axis = st.getRank() - 1;
            Value pr =
                b.create<SoftmaxOp>(loc, st, s, b.getI64IntegerAttr(axis));
            if (!fusedAttention)
              d[2] = unbroadcast(matmul(transposeLast2(pr), g), typeOf(v));
            Value dp = matmul(g, transposeLast2(v));
            Value rowsum =
                expandBack(b.create<ReduceSumOp>(loc, reducedType(st, axis),
                                                 binary<MulOp>(dp, pr),
                                                 b.getDenseI64ArrayAttr({axis}),
                                                 UnitAttr()),
                           st, {axis});
            Value ds = binary<MulOp>(pr, binary<SubOp>(dp, rowsum));
            if (!fusedAttention) {
              d[0] = unbroadcast(binary<MulOp>(matmul(ds, k), sc), typeOf(q));
              d[1] = unbroadcast(
                  binary<MulOp>(matmul(transposeLast2(ds), q), sc), typeOf(k));
            }
            if (floatMask)
              d[3] = unbroadcast(ds, typeOf(at.getMask()));
            return success();
          })
          .Case([&](MatMulOp m) {
            // Transposed operands appear only after colossal-fold-into-gemm,
            // which runs on programs already differentiated.
            if (typeOf(m.getLhs()).getRank() < 2 ||
                typeOf(m.getRhs()).getRank() < 2 || m.getTransposeLhs() ||
                m.getTransposeRhs())
              return failure();
            d[0] = unbroadcast(matmul(g, transposeLast2(m.getRhs())),
                               typeOf(m.getLhs()));
            d[1] = unbroadcast(matmul(transposeLast2(m.getLhs()), g),
                               typeOf(m.getRhs()));
            return success();
          })
          .Case([&](LinearOp l) {
            auto x = typeOf(l.getInput());
            auto w = typeOf(l.getWeight());
            int64_t in = x.getShape().back(), out = typeOf(g).getShape().back();
            int64_t rows = x.getNumElements() / in;
            Value x2 = b.create<ReshapeOp>(
                loc, RankedTensorType::get({rows, in}, f), l.getInput());
            Value g2 = b.create<ReshapeOp>(
                loc, RankedTensorType::get({rows, out}, f), g);
            bool t = l.getTransposeWeight();
            // dx = g W^T (W: [in, out]) or g W (W: [out, in]).
            Value wIn = t ? l.getWeight() : transposeLast2(l.getWeight());
            d[0] = b.create<ReshapeOp>(loc, x, matmul(g2, wIn));
            Value dw = t ? matmul(transposeLast2(g2), x2)
                         : matmul(transposeLast2(x2), g2);
            d[1] = b.create<ReshapeOp>(loc, w, dw);
            if (l.getBias())
              d[2] = unbroadcast(g, typeOf(l.getBias()));
            return success();
          })
          .Case([&](ReduceSumOp r) {
            d[0] = expandBack(g, typeOf(r.getInput()), r.getAxes());
            return success();
          })
          .Case([&](ReduceMeanOp r) {
            auto in = typeOf(r.getInput());
            double count = 1;
            for (int64_t a : r.getAxes())
              count *= in.getDimSize(a < 0 ? a + in.getRank() : a);
            d[0] =
                binary<DivOp>(expandBack(g, in, r.getAxes()), scalar(count, f));
            return success();
          })
          .Case([&](ReshapeOp r) {
            d[0] = b.create<ReshapeOp>(loc, typeOf(r.getInput()), g);
            return success();
          })
          .Case([&](ShardOp s) {
            // A layout annotation: no arithmetic, the gradient passes (in
            // the layout the annotation asks of it, if any).
            d[0] = g;
            if (auto grad = s.getGradShardingAttr()) {
              auto shard = b.create<ShardOp>(loc, g, grad);
              // Marks such as the weight it belongs to (cg.weight) stay.
              for (NamedAttribute a : s->getDiscardableAttrs())
                if (a.getName() != "cg.regather")
                  shard->setAttr(a.getName(), a.getValue());
              d[0] = shard;
            }
            return success();
          })
          .Case([&](TransposeOp t) {
            ArrayRef<int64_t> perm = t.getPermutation();
            SmallVector<int64_t> inverse(perm.size());
            for (auto [i, p] : llvm::enumerate(perm))
              inverse[p] = i;
            d[0] = b.create<TransposeOp>(loc, typeOf(t.getInput()), g,
                                         b.getDenseI64ArrayAttr(inverse));
            return success();
          })
          .Case([&](SoftmaxOp s) {
            int64_t axis = static_cast<int64_t>(s.getAxis());
            Value gy = binary<MulOp>(g, y);
            Value sum =
                expandBack(b.create<ReduceSumOp>(
                               loc, reducedType(typeOf(y), axis), gy,
                               b.getDenseI64ArrayAttr({axis}), UnitAttr()),
                           typeOf(y), {axis});
            d[0] = binary<MulOp>(y, binary<SubOp>(g, sum));
            return success();
          })
          .Case([&](LogSoftmaxOp s) {
            int64_t axis = static_cast<int64_t>(s.getAxis());
            Value sum =
                expandBack(b.create<ReduceSumOp>(
                               loc, reducedType(typeOf(y), axis), g,
                               b.getDenseI64ArrayAttr({axis}), UnitAttr()),
                           typeOf(y), {axis});
            Value p = b.create<ExpOp>(loc, typeOf(y), y);
            d[0] = binary<SubOp>(g, binary<MulOp>(p, sum));
            return success();
          })
          .Default([&](Operation *other) { return nnRule(other, g, d); });
  if (failed(ok))
    return failure();
  return d;
}

namespace {

struct AutodiffPass : mlir::colossal::impl::AutodiffPassBase<AutodiffPass> {
  using AutodiffPassBase::AutodiffPassBase;

  /// The seed gradient of the loss: 1, a fixed loss scale, or the dynamic
  /// scale kept in the parameter `optimizer.loss_scale`.
  FailureOr<Value> seed(OpBuilder &b, Location loc, RankedTensorType lossType,
                        Differentiator &diff) {
    StringRef text = lossScale;
    Type f = lossType.getElementType();
    if (text == "none")
      return diff.scalar(1.0, f);
    double init = 65536.0;
    if (text.consume_front("dynamic")) {
      // The scale must stay finite in float32, even doubled.
      if (!text.empty() &&
          (!text.consume_front(":") || text.getAsDouble(init) || !(init > 0) ||
           !(init < 1e38)))
        return failure();
      auto st = RankedTensorType::get({}, f);
      auto p = b.create<ParamOp>(
          loc, st, b.getStringAttr("optimizer.loss_scale"),
          DenseElementsAttr::get(st, b.getFloatAttr(f, init)));
      p->setAttr("cg.role", b.getStringAttr("optimizer"));
      return p.getResult();
    }
    double scale;
    if (text.getAsDouble(scale) || !(scale > 0) || !(scale < 1e38))
      return failure();
    // colossal-optimizer divides the gradients by it.
    func::FuncOp func =
        b.getBlock()->getParent()->getParentOfType<func::FuncOp>();
    func->getParentOfType<ModuleOp>()->setAttr("cg.loss_scale",
                                               b.getF64FloatAttr(scale));
    return diff.scalar(scale, f);
  }

  void runOnOperation() override {
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (!func.isExternal() && failed(differentiate(func)))
        return signalPassFailure();
  }

  LogicalResult differentiate(func::FuncOp func) {
    Block &body = func.getBody().front();
    auto ret = cast<func::ReturnOp>(body.getTerminator());
    if (ret.getNumOperands() == 0)
      return func.emitError("nothing to differentiate: the function returns "
                            "no loss");
    Value loss = ret.getOperand(0);
    auto lossType = typeOf(loss);
    if (lossType.getNumElements() != 1 ||
        !isa<FloatType>(lossType.getElementType()))
      return func.emitError("the first result must be a scalar floating-point "
                            "loss, got ")
             << lossType;

    OpBuilder b(ret);
    Differentiator diff(b, func.getLoc());
    if (attention != "decomposed" && attention != "fused")
      return func.emitError("attention=")
             << attention << " is not known; use decomposed or fused";
    diff.fusedAttention = attention == "fused";
    DenseMap<Value, Value> grad;
    FailureOr<Value> seedValue = seed(b, func.getLoc(), lossType, diff);
    if (failed(seedValue))
      return func.emitError("loss-scale must be none, a positive number "
                            "below 1e38 or dynamic[:INIT], got '")
             << lossScale << "'";
    // In a pipelined step (colossal-mark-stages), each backward op runs on
    // the stage of the forward op it differentiates; with layers marked
    // (colossal-mark-layers) it belongs to that op's layer.
    auto markBackward = [&](Operation *after, Operation *source) {
      if (!source ||
          !(source->hasAttr("cg.stage") || source->hasAttr("cg.layer")))
        return;
      for (Operation *op = after ? after->getNextNode() : &body.front();
           op && op != ret.getOperation(); op = op->getNextNode()) {
        for (StringRef mark : {"cg.stage", "cg.virtual", "cg.layer"})
          if (Attribute v = source->getAttr(mark))
            op->setAttr(mark, v);
        op->setAttr("cg.backward", b.getUnitAttr());
      }
    };
    Operation *beforeSeed = ret->getPrevNode();
    grad[loss] = b.create<ReshapeOp>(func.getLoc(), lossType, *seedValue);
    markBackward(beforeSeed, loss.getDefiningOp());

    SmallVector<Operation *> ops;
    for (Operation &op : body.without_terminator())
      ops.push_back(&op);
    for (Operation *op : llvm::reverse(ops)) {
      if (isa<ParamOp, ConstantOp>(op))
        continue;
      if (llvm::none_of(op->getResults(),
                        [&](Value r) { return grad.count(r); }))
        continue; // not on a path to the loss
      if (llvm::none_of(op->getOperands(), [](Value v) {
            return isa<FloatType>(typeOf(v).getElementType());
          }))
        continue; // a function of integers or booleans only: constant
      diff.loc = op->getLoc();
      Operation *beforeRule = ret->getPrevNode();
      // Results off the path to the loss get zero gradients.
      SmallVector<Value> gs;
      for (Value r : op->getResults()) {
        Value g = grad.lookup(r);
        if (!g && isa<FloatType>(typeOf(r).getElementType()))
          g = diff.zeros(typeOf(r));
        gs.push_back(g);
      }
      auto shares = diff.rule(op, gs);
      if (failed(shares))
        return op->emitOpError("has no gradient rule yet; the training step "
                               "cannot differentiate through it");
      for (auto [operand, share] : llvm::zip(op->getOperands(), *shares)) {
        if (!share || !isa<FloatType>(typeOf(operand).getElementType()))
          continue;
        Value &acc = grad[operand];
        acc = acc ? diff.binary<AddOp>(acc, share) : share;
      }
      markBackward(beforeRule, op);
    }

    // Results: the loss, then each parameter's gradient.
    SmallVector<Value> results(ret.getOperands());
    SmallVector<Type> types(func.getResultTypes());
    SmallVector<std::string> names;
    bool anyPath = false;
    SmallVector<llvm::GlobPattern> frozen;
    SmallVector<StringRef> patterns;
    StringRef(freeze).split(patterns, ',', -1, /*KeepEmpty=*/false);
    for (StringRef text : patterns) {
      auto pattern = llvm::GlobPattern::create(text.trim());
      if (!pattern) {
        llvm::consumeError(pattern.takeError());
        return func.emitError("--freeze pattern '") << text << "' is malformed";
      }
      frozen.push_back(std::move(*pattern));
    }
    for (Operation &op : body)
      if (auto param = dyn_cast<ParamOp>(op)) {
        if (!isa<FloatType>(typeOf(param.getResult()).getElementType()) ||
            param->hasAttr("cg.role")) // optimizer state, not a weight
          continue;
        if (llvm::any_of(frozen, [&](const llvm::GlobPattern &g) {
              return g.match(param.getName());
            }))
          continue;
        Value g = grad.lookup(param.getResult());
        anyPath |= static_cast<bool>(g);
        if (!g) // no path to the loss: a zero gradient
          g = diff.zeros(typeOf(param.getResult()));
        results.push_back(g);
        types.push_back(g.getType());
        names.push_back("grad:" + param.getName().str());
      }
    if (!anyPath)
      return func.emitError("no trainable parameter has a differentiable "
                            "path to the loss (")
             << names.size()
             << " floating-point parameter(s); the loss depends only on "
                "inputs, constants or integer computations): nothing to "
                "train";
    // Existing results keep their attributes; the gradients get names.
    SmallVector<DictionaryAttr> resultAttrs;
    for (unsigned i = 0; i < func.getNumResults(); ++i) {
      DictionaryAttr attrs = func.getResultAttrDict(i);
      resultAttrs.push_back(attrs ? attrs : b.getDictionaryAttr({}));
    }
    for (const std::string &name : names)
      resultAttrs.push_back(b.getDictionaryAttr(
          b.getNamedAttr("cg.name", b.getStringAttr(name))));
    b.create<func::ReturnOp>(ret.getLoc(), results);
    ret.erase();
    func.setFunctionType(
        FunctionType::get(func.getContext(), func.getArgumentTypes(), types));
    func.setAllResultAttrs(resultAttrs);
    return success();
  }
};

} // namespace
