//===- AutodiffNN.cpp - Gradient rules of convolutional-network ops -------===//
//
// batch_norm as a per-channel affine map, conv2d and max_pool2d through
// their gradient ops, avg_pool2d as a depthwise transposed convolution.
//
//===----------------------------------------------------------------------===//

#include "passes/Differentiator.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;
using namespace mlir::colossal::autodiff;

/// Sum of `v` (NCHW...) over every dimension but the channels (1).
Value Differentiator::sumExceptChannels(Value v) {
  auto t = typeOf(v);
  SmallVector<int64_t> axes;
  for (int64_t d = 0; d < t.getRank(); ++d)
    if (d != 1)
      axes.push_back(d);
  return b.create<ReduceSumOp>(
      loc, RankedTensorType::get({t.getDimSize(1)}, t.getElementType()), v,
      b.getDenseI64ArrayAttr(axes), UnitAttr());
}

/// A per-channel vector [C] shaped [1, C, 1, ...] to broadcast over `like`.
Value Differentiator::perChannel(Value v, RankedTensorType like) {
  SmallVector<int64_t> shape(like.getRank(), 1);
  shape[1] = like.getDimSize(1);
  return b.create<ReshapeOp>(
      loc, RankedTensorType::get(shape, typeOf(v).getElementType()), v);
}

/// Input gradient of avg_pool2d: g divided by each window's element count
/// (as the forward kernel counts it), spread back over the window by a
/// depthwise transposed convolution with a ones kernel. Fails for a
/// ceil_mode pool whose result is larger than the floor-mode one.
FailureOr<Value> Differentiator::avgPoolGrad(AvgPool2DOp p, Value g) {
  auto x = typeOf(p.getInput());
  auto gt = typeOf(g);
  ArrayRef<int64_t> k = p.getKernel(), s = p.getStrides(), pad = p.getPadding();
  int64_t h = x.getDimSize(2), w = x.getDimSize(3), oh = gt.getDimSize(2),
          ow = gt.getDimSize(3);
  // Ceil mode adds windows past the bottom/right padding: spreading the
  // gradient back treats them as extra padding there.
  int64_t extraH =
      std::max<int64_t>(0, (oh - 1) * s[0] + k[0] - (h + pad[0] + pad[2]));
  int64_t extraW =
      std::max<int64_t>(0, (ow - 1) * s[1] + k[1] - (w + pad[1] + pad[3]));
  if ((h + pad[0] + pad[2] + extraH - k[0]) / s[0] + 1 != oh ||
      (w + pad[1] + pad[3] + extraW - k[1]) / s[1] + 1 != ow)
    return failure();
  bool includePad = p.getCountIncludePad();
  auto extent = [&](int64_t o, int64_t stride, int64_t before, int64_t kernel,
                    int64_t size, int64_t after) {
    int64_t start = o * stride - before;
    int64_t n = includePad ? std::min(start + kernel, size + after) - start
                           : std::min(start + kernel, size) -
                                 std::max<int64_t>(start, 0);
    return std::max<int64_t>(n, 1); // empty windows get no gradient anyway
  };
  SmallVector<float> counts;
  for (int64_t i = 0; i < oh; ++i)
    for (int64_t j = 0; j < ow; ++j)
      counts.push_back(
          static_cast<float>(extent(i, s[0], pad[0], k[0], h, pad[2]) *
                             extent(j, s[1], pad[1], k[1], w, pad[3])));
  Value divisor = b.create<ConstantOp>(
      loc,
      DenseElementsAttr::get(RankedTensorType::get({oh, ow}, b.getF32Type()),
                             ArrayRef<float>(counts)));
  Type f = gt.getElementType();
  if (f != b.getF32Type())
    divisor =
        b.create<CastOp>(loc, RankedTensorType::get({oh, ow}, f), divisor);
  int64_t c = x.getDimSize(1);
  Value ones = b.create<ExpandOp>(
      loc, RankedTensorType::get({c, 1, k[0], k[1]}, f), scalar(1.0, f));
  auto padding = b.getDenseI64ArrayAttr(
      {pad[0], pad[1], pad[2] + extraH, pad[3] + extraW});
  return b
      .create<Conv2DBackwardInputOp>(
          loc, x, binary<DivOp>(g, divisor), ones, p.getStridesAttr(), padding,
          b.getDenseI64ArrayAttr({1, 1}), b.getI64IntegerAttr(c))
      .getResult();
}

LogicalResult Differentiator::nnRule(Operation *op, Value g,
                                     SmallVectorImpl<Value> &d) {
  Type f = typeOf(g).getElementType();
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](BatchNormOp n) {
        // y = (x - mean) * k + bias with k = scale / sqrt(var + eps):
        // an affine map per channel. mean and variance are running
        // statistics (buffers in torch, updated by momentum in ONNX
        // training, never by gradient), so they get no gradient and
        // the optimizer leaves them as they are.
        Value x = n.getInput();
        auto xt = typeOf(x);
        Value inv = b.create<RsqrtOp>(
            loc, typeOf(n.getVariance()),
            binary<AddOp>(n.getVariance(),
                          scalar(n.getEpsilon().convertToDouble(), f)));
        Value k = binary<MulOp>(n.getScale(), inv);
        d[0] = binary<MulOp>(g, perChannel(k, xt));
        Value xhat = binary<MulOp>(
            binary<SubOp>(x, perChannel(n.getMean(), xt)), perChannel(inv, xt));
        d[1] = sumExceptChannels(binary<MulOp>(g, xhat));
        d[2] = sumExceptChannels(g);
        return success();
      })
      .Case([&](Conv2DOp c) {
        d[0] = b.create<Conv2DBackwardInputOp>(
            loc, typeOf(c.getInput()), g, c.getWeight(), c.getStridesAttr(),
            c.getPaddingAttr(), c.getDilationsAttr(), c.getGroupsAttr());
        d[1] = b.create<Conv2DBackwardWeightOp>(
            loc, typeOf(c.getWeight()), c.getInput(), g, c.getStridesAttr(),
            c.getPaddingAttr(), c.getDilationsAttr(), c.getGroupsAttr());
        if (c.getBias())
          d[2] = sumExceptChannels(g);
        return success();
      })
      .Case([&](Conv2DBackwardInputOp t) {
        // y = conv2d_backward_input(x, w) is ONNX's ConvTranspose: linear in
        // x with the adjoint of conv2d, so dx = conv2d(dy, w) and
        // dw = conv2d_backward_weight(dy, x).
        d[0] =
            b.create<Conv2DOp>(loc, typeOf(t.getGrad()), g, t.getWeight(),
                               Value(), t.getStridesAttr(), t.getPaddingAttr(),
                               t.getDilationsAttr(), t.getGroupsAttr());
        d[1] = b.create<Conv2DBackwardWeightOp>(
            loc, typeOf(t.getWeight()), g, t.getGrad(), t.getStridesAttr(),
            t.getPaddingAttr(), t.getDilationsAttr(), t.getGroupsAttr());
        return success();
      })
      .Case([&](MaxPool2DOp m) {
        d[0] = b.create<MaxPool2DBackwardOp>(
            loc, typeOf(m.getInput()), m.getInput(), g, m.getKernelAttr(),
            m.getStridesAttr(), m.getPaddingAttr(), m.getCeilModeAttr());
        return success();
      })
      .Case([&](AvgPool2DOp p) {
        FailureOr<Value> dx = avgPoolGrad(p, g);
        if (failed(dx))
          return failure();
        d[0] = *dx;
        return success();
      })
      .Default([](Operation *) { return failure(); });
}
