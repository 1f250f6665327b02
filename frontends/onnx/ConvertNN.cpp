//===- ConvertNN.cpp - Contractions, normalization, convolution -----------===//
//
// MatMul, Gemm, LayerNormalization, BatchNormalization,
// InstanceNormalization, Conv, ConvTranspose, pooling, reductions, Flatten
// and Trilu.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/ImportContext.h"

#include <type_traits>

#include "mlir/IR/Verifier.h"

#include <cmath>

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::onnx;

namespace {

LogicalResult requireFloat(NodeContext &c, unsigned i) {
  if (!isa<FloatType>(c.inputType(i).getElementType()))
    return c.error() << "input " << i << " must be floating-point, got "
                     << c.inputType(i).getElementType();
  return success();
}

LogicalResult refuseExtraOutputs(NodeContext &c, StringRef what) {
  for (unsigned o = 1; o < c.numOutputs(); ++o)
    if (c.outputUsed(o))
      return c.error() << "output " << o << " (" << what
                       << ") is not supported; only the first output is";
  return success();
}

LogicalResult convertMatMul(NodeContext &c) {
  if (c.inputType(0).getElementType() != c.inputType(1).getElementType())
    return c.error() << "operands have different element types";
  auto result = c.create<cg::MatMulOp>(c.value(0), c.value(1));
  if (failed(result))
    return failure();
  c.setOutput(0, *result);
  return success();
}

LogicalResult convertGemm(NodeContext &c) {
  if (failed(requireFloat(c, 0)) || failed(requireFloat(c, 1)))
    return failure();
  if (c.inputType(0).getRank() != 2 || c.inputType(1).getRank() != 2)
    return c.error() << "A and B must be matrices";
  double alpha = c.floatAttr("alpha", 1.0), beta = c.floatAttr("beta", 1.0);
  bool transA = c.intAttr("transA", 0), transB = c.intAttr("transB", 0);
  Type element = c.inputType(0).getElementType();
  Value a = c.value(0);
  if (transA) {
    auto t = c.create<cg::TransposeOp>(a, ArrayRef<int64_t>{1, 0});
    if (failed(t))
      return failure();
    a = *t;
  }
  int64_t n = c.inputType(1).getDimSize(transB ? 0 : 1);
  // A bias that is a row vector folds into linear; anything else is added.
  Value bias;
  bool biasAfter = false;
  if (c.hasInput(2)) {
    auto cType = c.inputType(2);
    bool rowVector = cType.getRank() <= 1 ||
                     (cType.getRank() == 2 && cType.getDimSize(0) == 1);
    if (rowVector && alpha == 1.0 && beta == 1.0) {
      int64_t len = cg::numElements(cType.getShape());
      if (len != n && len != 1)
        return c.error() << "bias C " << cType << " does not match N = " << n;
      bias = c.reshape(c.value(2), {len});
    } else {
      biasAfter = true;
    }
  }
  auto y = c.create<cg::LinearOp>(a, c.value(1), bias, transB);
  if (failed(y))
    return failure();
  Value out = *y;
  if (alpha != 1.0) {
    auto scaled = c.create<cg::MulOp>(out, c.scalar(alpha, element));
    if (failed(scaled))
      return failure();
    out = *scaled;
  }
  if (biasAfter) {
    Value cv = c.value(2);
    if (beta != 1.0) {
      auto s = c.create<cg::MulOp>(cv, c.scalar(beta, element));
      if (failed(s))
        return failure();
      cv = *s;
    }
    auto sum = c.create<cg::AddOp>(out, cv);
    if (failed(sum))
      return failure();
    out = *sum;
  }
  c.setOutput(0, out);
  return success();
}

/// Statistics over `axes` (kept as size-1 dims, `statShape`): the mean, x
/// minus it, and the inverse standard deviation 1/sqrt(var + epsilon), the
/// pieces of every normalization composed of graph ops.
struct Moments {
  Value mean, centered, invStd;
};
FailureOr<Moments> moments(NodeContext &c, Value x, ArrayRef<int64_t> axes,
                           ArrayRef<int64_t> statShape) {
  OpBuilder &b = c.builder();
  Type f = cast<RankedTensorType>(x.getType()).getElementType();
  auto statType = RankedTensorType::get(statShape, f);
  auto mean = [&](Value v) -> Value {
    return b.create<cg::ReduceMeanOp>(
        c.loc(), statType, v, b.getDenseI64ArrayAttr(axes), b.getUnitAttr());
  };
  Moments m;
  m.mean = mean(x);
  auto centered = c.create<cg::SubOp>(x, m.mean);
  if (failed(centered))
    return failure();
  m.centered = *centered;
  auto sq = c.create<cg::MulOp>(*centered, *centered);
  if (failed(sq))
    return failure();
  auto shifted =
      c.create<cg::AddOp>(mean(*sq), c.scalar(c.floatAttr("epsilon", 1e-5), f));
  if (failed(shifted))
    return failure();
  m.invStd = b.create<cg::RsqrtOp>(c.loc(), statType, *shifted);
  return m;
}

/// LayerNormalization's optional outputs: the mean and the inverse standard
/// deviation over the normalized axes, kept as size-1 dims, in float32 with
/// stash_type 1 (the default) or the input's type with stash_type 0.
LogicalResult layerNormStatistics(NodeContext &c, int64_t axis) {
  RankedTensorType in = c.inputType(0);
  int64_t stash = c.intAttr("stash_type", 1);
  if (stash != 1 && stash != 0)
    return c.error() << "stash_type " << stash
                     << " is not supported; use 1 (float32) or 0 (the "
                        "input's type)";
  OpBuilder &b = c.builder();
  Type f = stash == 1 ? b.getF32Type() : in.getElementType();
  Value x = c.value(0);
  if (f != in.getElementType())
    x = b.create<cg::CastOp>(c.loc(), RankedTensorType::get(in.getShape(), f),
                             x);
  SmallVector<int64_t> axes, statShape(in.getShape());
  for (int64_t d = axis; d < in.getRank(); ++d) {
    axes.push_back(d);
    statShape[d] = 1;
  }
  auto m = moments(c, x, axes, statShape);
  if (failed(m))
    return failure();
  if (c.outputUsed(1))
    c.setOutput(1, m->mean);
  if (c.outputUsed(2))
    c.setOutput(2, m->invStd);
  return success();
}

LogicalResult convertLayerNorm(NodeContext &c) {
  if (failed(requireFloat(c, 0)))
    return failure();
  int64_t rank = c.inputType(0).getRank();
  auto axis = c.axisAttr("axis", -1, rank);
  if (failed(axis))
    return failure();
  if ((c.outputUsed(1) || c.outputUsed(2)) &&
      failed(layerNormStatistics(c, *axis)))
    return failure();
  ArrayRef<int64_t> normShape = c.inputType(0).getShape().drop_front(*axis);
  // ONNX lets scale and bias broadcast; the op wants the exact shape.
  auto fit = [&](unsigned i) -> FailureOr<Value> {
    auto type = c.inputType(i);
    if (type.getShape() == normShape)
      return c.value(i);
    if (!cg::isBroadcastableTo(type.getShape(), normShape))
      return static_cast<LogicalResult>(
          c.error() << "input " << i << " " << type
                    << " does not broadcast to the normalized shape");
    if (cg::numElements(type.getShape()) == cg::numElements(normShape))
      return c.reshape(c.value(i), normShape);
    return c.createTyped<cg::ExpandOp>(
        RankedTensorType::get(normShape, type.getElementType()), c.value(i));
  };
  auto scale = fit(1);
  if (failed(scale))
    return failure();
  Value bias;
  if (c.hasInput(2)) {
    auto b = fit(2);
    if (failed(b))
      return failure();
    bias = *b;
  }
  c.setOutput(0, c.createTyped<cg::LayerNormOp>(
                     c.inputType(0), c.value(0), *scale, bias, *axis,
                     llvm::APFloat(c.floatAttr("epsilon", 1e-5))));
  return success();
}

LogicalResult convertBatchNorm(NodeContext &c) {
  if (failed(requireFloat(c, 0)) ||
      failed(refuseExtraOutputs(c, "running statistics")))
    return failure();
  if (c.intAttr("training_mode", 0) != 0 && !c.options().batchNormTrainingMode)
    return c.error()
           << "training_mode=1 (batch statistics) is supported only when "
              "compiling a training step (--mode=train, where "
              "--batch-norm=batch normalizes with batch statistics); for "
              "inference export the model in eval mode";
  if (c.inputType(0).getRank() < 2)
    return c.error() << "input needs a channel dimension";
  c.setOutput(0,
              c.createTyped<cg::BatchNormOp>(
                  c.inputType(0), c.value(0), c.value(1), c.value(2),
                  c.value(3), c.value(4),
                  c.builder().getF64FloatAttr(c.floatAttr("epsilon", 1e-5))));
  return success();
}

/// InstanceNormalization: statistics per (image, channel) over the spatial
/// dims, then a per-channel affine map; composed of graph ops, so it trains
/// (torch also exports GroupNorm this way).
LogicalResult convertInstanceNorm(NodeContext &c) {
  if (failed(requireFloat(c, 0)))
    return failure();
  RankedTensorType in = c.inputType(0);
  int64_t rank = in.getRank();
  if (rank < 3)
    return c.error() << "input needs a channel and a spatial dimension";
  Type f = in.getElementType();
  SmallVector<int64_t> axes, statShape(in.getShape().take_front(2)),
      channelShape(rank, 1);
  for (int64_t d = 2; d < rank; ++d) {
    axes.push_back(d);
    statShape.push_back(1);
  }
  channelShape[1] = in.getDimSize(1);
  OpBuilder &b = c.builder();
  auto m = moments(c, c.value(0), axes, statShape);
  if (failed(m))
    return failure();
  auto normed = c.create<cg::MulOp>(m->centered, m->invStd);
  if (failed(normed))
    return failure();
  auto perChannel = [&](unsigned i) -> Value {
    return b.create<cg::ReshapeOp>(
        c.loc(), RankedTensorType::get(channelShape, f), c.value(i));
  };
  if (c.inputType(1).getNumElements() != in.getDimSize(1) ||
      c.inputType(2).getNumElements() != in.getDimSize(1))
    return c.error() << "scale and B need one value per channel ("
                     << in.getDimSize(1) << ")";
  auto scaled = c.create<cg::MulOp>(*normed, perChannel(1));
  if (failed(scaled))
    return failure();
  auto y = c.create<cg::AddOp>(*scaled, perChannel(2));
  if (failed(y))
    return failure();
  c.setOutput(0, *y);
  return success();
}

/// Checks that every value of a window attribute is at least `least`.
LogicalResult requireAtLeast(NodeContext &c, StringRef what,
                             ArrayRef<int64_t> values, int64_t least) {
  for (int64_t v : values)
    if (v < least)
      return c.error() << what << " must be >= " << least << ", got " << v;
  return success();
}

/// Resolves ONNX's auto_pad/pads for a 2-D window into [top, left, bottom,
/// right].
FailureOr<SmallVector<int64_t>>
windowPadding(NodeContext &c, ArrayRef<int64_t> input, ArrayRef<int64_t> kernel,
              ArrayRef<int64_t> strides, ArrayRef<int64_t> dilations) {
  std::string autoPad = c.stringAttr("auto_pad", "NOTSET");
  if (autoPad == "NOTSET") {
    std::vector<int64_t> pads = c.intsAttr("pads");
    if (pads.empty())
      return SmallVector<int64_t>{0, 0, 0, 0};
    if (pads.size() != 4)
      return static_cast<LogicalResult>(c.error()
                                        << "pads must have 4 values for 2-D");
    if (failed(requireAtLeast(c, "pads", pads, 0)))
      return failure();
    return SmallVector<int64_t>(pads.begin(), pads.end());
  }
  if (autoPad == "VALID")
    return SmallVector<int64_t>{0, 0, 0, 0};
  if (autoPad != "SAME_UPPER" && autoPad != "SAME_LOWER")
    return static_cast<LogicalResult>(c.error() << "unknown auto_pad '"
                                                << autoPad << "'");
  SmallVector<int64_t> pads(4, 0);
  for (int d = 0; d < 2; ++d) {
    int64_t out = (input[d] + strides[d] - 1) / strides[d];
    int64_t span = dilations[d] * (kernel[d] - 1) + 1;
    int64_t total =
        std::max<int64_t>((out - 1) * strides[d] + span - input[d], 0);
    int64_t small = total / 2, large = total - small;
    pads[d] = autoPad == "SAME_UPPER" ? small : large;
    pads[d + 2] = autoPad == "SAME_UPPER" ? large : small;
  }
  return pads;
}

std::vector<int64_t> orDefault(std::vector<int64_t> v, size_t n, int64_t d) {
  if (v.empty())
    v.assign(n, d);
  return v;
}

LogicalResult convertConv(NodeContext &c) {
  if (failed(requireFloat(c, 0)) || failed(requireFloat(c, 1)))
    return failure();
  auto x = c.inputType(0), w = c.inputType(1);
  if (x.getRank() != 4 || w.getRank() != 4)
    return c.error() << "only 2-D convolution (NCHW input, OIHW weight) is "
                        "supported, got input "
                     << x << " and weight " << w;
  auto strides = orDefault(c.intsAttr("strides"), 2, 1);
  auto dilations = orDefault(c.intsAttr("dilations"), 2, 1);
  if (strides.size() != 2 || dilations.size() != 2)
    return c.error() << "strides and dilations need 2 values";
  if (failed(requireAtLeast(c, "strides", strides, 1)) ||
      failed(requireAtLeast(c, "dilations", dilations, 1)) ||
      failed(requireAtLeast(c, "group", {c.intAttr("group", 1)}, 1)))
    return failure();
  std::vector<int64_t> kernel = {w.getDimSize(2), w.getDimSize(3)};
  auto pads =
      windowPadding(c, x.getShape().drop_front(2), kernel, strides, dilations);
  if (failed(pads))
    return failure();
  Value bias = c.hasInput(2) ? c.value(2) : Value();
  auto result = c.create<cg::Conv2DOp>(
      c.value(0), c.value(1), bias, ArrayRef<int64_t>(strides),
      ArrayRef<int64_t>(*pads), ArrayRef<int64_t>(dilations),
      c.intAttr("group", 1));
  if (failed(result))
    return failure();
  c.setOutput(0, *result);
  return success();
}

/// ConvTranspose: the input gradient of a conv2d whose output is `x`
/// (cg.conv2d_backward_input), plus the bias per channel.
LogicalResult convertConvTranspose(NodeContext &c) {
  if (failed(requireFloat(c, 0)) || failed(requireFloat(c, 1)))
    return failure();
  auto x = c.inputType(0), w = c.inputType(1);
  if (x.getRank() != 4 || w.getRank() != 4)
    return c.error() << "only 2-D transposed convolution (NCHW input, "
                        "[C_in, C_out/group, kH, kW] weight) is supported";
  std::string autoPad = c.stringAttr("auto_pad", "NOTSET");
  if (autoPad != "NOTSET" && autoPad != "VALID")
    return c.error() << "auto_pad=" << autoPad
                     << " is not supported; give explicit pads";
  if (!c.intsAttr("output_shape").empty())
    return c.error() << "output_shape is not supported; give pads and "
                        "output_padding";
  auto strides = orDefault(c.intsAttr("strides"), 2, 1);
  auto dilations = orDefault(c.intsAttr("dilations"), 2, 1);
  auto outPad = orDefault(c.intsAttr("output_padding"), 2, 0);
  auto pads = orDefault(c.intsAttr("pads"), 4, 0);
  int64_t group = c.intAttr("group", 1);
  if (strides.size() != 2 || dilations.size() != 2 || outPad.size() != 2 ||
      pads.size() != 4)
    return c.error() << "strides, dilations and output_padding need 2 "
                        "values, pads 4";
  if (failed(requireAtLeast(c, "strides", strides, 1)) ||
      failed(requireAtLeast(c, "dilations", dilations, 1)) ||
      failed(requireAtLeast(c, "group", {group}, 1)))
    return failure();
  for (int i = 0; i < 2; ++i)
    if (outPad[i] < 0 || outPad[i] >= std::max(strides[i], dilations[i]))
      return c.error() << "output_padding must lie in [0, max(stride, "
                          "dilation))";
  if (x.getDimSize(1) != w.getDimSize(0))
    return c.error() << "input has " << x.getDimSize(1)
                     << " channels but the weight expects " << w.getDimSize(0);
  // ONNX pads are [top, left, bottom, right] (begins, then ends).
  SmallVector<int64_t> padding = {pads[0], pads[1], pads[2], pads[3]};
  SmallVector<int64_t> shape = {x.getDimSize(0), w.getDimSize(1) * group};
  for (int i = 0; i < 2; ++i)
    shape.push_back((x.getDimSize(2 + i) - 1) * strides[i] - pads[i] -
                    pads[i + 2] + dilations[i] * (w.getDimSize(2 + i) - 1) +
                    outPad[i] + 1);
  if (shape[2] < 1 || shape[3] < 1)
    return c.error() << "pads leave no output";
  OpBuilder &b = c.builder();
  auto type = RankedTensorType::get(shape, x.getElementType());
  Value y = b.create<cg::Conv2DBackwardInputOp>(
      c.loc(), type, c.value(0), c.value(1), b.getDenseI64ArrayAttr(strides),
      b.getDenseI64ArrayAttr(padding), b.getDenseI64ArrayAttr(dilations),
      b.getI64IntegerAttr(group));
  if (failed(mlir::verify(y.getDefiningOp())))
    return failure();
  if (c.hasInput(2)) {
    Value bias = b.create<cg::ReshapeOp>(
        c.loc(), RankedTensorType::get({1, shape[1], 1, 1}, x.getElementType()),
        c.value(2));
    auto sum = c.create<cg::AddOp>(y, bias);
    if (failed(sum))
      return failure();
    y = *sum;
  }
  c.setOutput(0, y);
  return success();
}

template <typename OpT> LogicalResult convertPool(NodeContext &c) {
  if (failed(requireFloat(c, 0)) || failed(refuseExtraOutputs(c, "indices")))
    return failure();
  auto x = c.inputType(0);
  if (x.getRank() != 4)
    return c.error() << "only 2-D pooling over NCHW is supported, got " << x;
  auto kernel = c.intsAttr("kernel_shape");
  if (kernel.size() != 2)
    return c.error() << "kernel_shape must have 2 values";
  auto strides = orDefault(c.intsAttr("strides"), 2, 1);
  auto dilations = orDefault(c.intsAttr("dilations"), 2, 1);
  if (dilations != std::vector<int64_t>{1, 1})
    return c.error() << "dilated pooling is not supported";
  if (strides.size() != 2)
    return c.error() << "strides must have 2 values";
  if (failed(requireAtLeast(c, "kernel_shape", kernel, 1)) ||
      failed(requireAtLeast(c, "strides", strides, 1)))
    return failure();
  auto pads =
      windowPadding(c, x.getShape().drop_front(2), kernel, strides, dilations);
  if (failed(pads))
    return failure();
  auto result = c.create<OpT>(
      c.value(0), ArrayRef<int64_t>(kernel), ArrayRef<int64_t>(strides),
      ArrayRef<int64_t>(*pads), c.intAttr("ceil_mode", 0) != 0,
      c.intAttr("count_include_pad", 0) != 0);
  if (failed(result))
    return failure();
  c.setOutput(0, *result);
  return success();
}

template <typename OpT> LogicalResult convertGlobalPool(NodeContext &c) {
  if (failed(requireFloat(c, 0)))
    return failure();
  int64_t rank = c.inputType(0).getRank();
  if (rank < 3)
    return c.error() << "needs spatial dimensions (rank >= 3)";
  SmallVector<int64_t> axes;
  for (int64_t d = 2; d < rank; ++d)
    axes.push_back(d);
  auto result = c.create<OpT>(c.value(0), axes, /*keepdims=*/true);
  if (failed(result))
    return failure();
  c.setOutput(0, *result);
  return success();
}

/// A reduction's axes and keepdims: the `axes` attribute before
/// `axesInputSince`, the constant input 1 from then on; no axes means all
/// of them, or none (`noop`) with noop_with_empty_axes.
struct ReductionAxes {
  std::vector<int64_t> axes;
  bool keepdims = true;
  bool noop = false;
};

FailureOr<ReductionAxes> reductionAxes(NodeContext &c, int64_t axesInputSince) {
  ReductionAxes r;
  if (c.opset() >= axesInputSince) {
    if (c.hasInput(1)) {
      auto v = c.constantInts(1, "axes");
      if (failed(v))
        return failure();
      r.axes = *v;
    }
  } else {
    r.axes = c.intsAttr("axes");
  }
  r.keepdims = c.intAttr("keepdims", 1) != 0;
  if (r.axes.empty()) {
    r.noop = c.intAttr("noop_with_empty_axes", 0) != 0;
    if (!r.noop)
      for (int64_t d = 0; d < c.inputType(0).getRank(); ++d)
        r.axes.push_back(d);
  }
  return r;
}

/// ReduceSum takes axes as an input from opset 13, the others from 18.
template <typename OpT, int AxesInputSince>
LogicalResult convertReduce(NodeContext &c) {
  auto reduction = reductionAxes(c, AxesInputSince);
  if (failed(reduction))
    return failure();
  if (reduction->noop) {
    c.setOutput(0, c.value(0));
    return success();
  }
  const std::vector<int64_t> &axes = reduction->axes;
  bool keepdims = reduction->keepdims;
  Value x = c.value(0);
  bool isBool = c.inputType(0).getElementType().isInteger(1);
  if (isBool && !std::is_same_v<OpT, cg::ReduceMaxOp>)
    return c.error() << "reducing a bool tensor is not supported (only "
                        "ReduceMax and ReduceMin, as any / all)";
  if (isBool) // any: the max of 0/1
    x = c.createTyped<cg::CastOp>(
        RankedTensorType::get(c.inputType(0).getShape(),
                              c.builder().getI32Type()),
        x);
  auto result = c.create<OpT>(x, ArrayRef<int64_t>(axes), keepdims);
  if (failed(result))
    return failure();
  Value r = *result;
  if (isBool)
    r = c.createTyped<cg::CastOp>(
        RankedTensorType::get(cast<ShapedType>(r.getType()).getShape(),
                              c.builder().getI1Type()),
        r);
  c.setOutput(0, r);
  return success();
}

/// The reductions ONNX defines on top of sum and max, composed of graph
/// ops (so they run and differentiate with no kernels of their own):
/// ReduceMin = -max(-x), ReduceL1 = sum |x|, ReduceL2 = sqrt(sum x^2),
/// ReduceSumSquare = sum x^2, ReduceLogSum = log(sum x), ReduceLogSumExp =
/// log(sum exp(x - m)) + m with m = max x (stable), ReduceProd =
/// sign * exp(sum log |x|) with the sign from the parity of the negative
/// elements (a zero makes the product 0; an empty set gives 1). Axes come
/// as an input from opset 18.
enum class Composite { Min, L1, L2, SumSquare, LogSum, LogSumExp, Prod };

/// Where the largest value along `axis` is: its first index (with `last`,
/// its last), found from the positions equal to the maximum, the smallest
/// (or largest) of their indices taken with a max reduction over indices
/// encoded as -i (or i). Returns the encoded indices along the axis (a
/// constant broadcast over the other dims) and the encoded extreme (kept
/// as a size-1 dim with `keepdims`).
struct ExtremeIndex {
  Value encoded, best;
};
FailureOr<ExtremeIndex> maxIndex(NodeContext &c, Value x, int64_t axis,
                                 bool last, bool keepdims) {
  auto in = cast<RankedTensorType>(x.getType());
  int64_t rank = in.getRank(), size = in.getDimSize(axis);
  OpBuilder &b = c.builder();
  SmallVector<int64_t> axes{axis};
  auto m = c.create<cg::ReduceMaxOp>(x, ArrayRef<int64_t>(axes), true);
  if (failed(m))
    return failure();
  auto at = c.create<cg::CmpOp>(cg::CmpPredicate::eq, x, *m);
  if (failed(at))
    return failure();
  Shape iotaShape(rank, 1);
  iotaShape[axis] = size;
  std::vector<int64_t> iota(static_cast<size_t>(size));
  for (size_t i = 0; i < iota.size(); ++i)
    iota[i] = last ? static_cast<int64_t>(i) : -static_cast<int64_t>(i);
  Type i64 = b.getI64Type();
  ExtremeIndex r;
  r.encoded =
      materializeConstant(b, c.loc(), HostTensor::ofInts(i64, iotaShape, iota));
  // Not at the maximum: below every candidate.
  Value none = c.scalar(last ? -1.0 : -static_cast<double>(size), i64);
  auto candidates = c.create<cg::WhereOp>(*at, r.encoded, none);
  if (failed(candidates))
    return failure();
  auto best =
      c.create<cg::ReduceMaxOp>(*candidates, ArrayRef<int64_t>(axes), keepdims);
  if (failed(best))
    return failure();
  r.best = *best;
  return r;
}

/// ArgMax / ArgMin: int64 indices along `axis` (ArgMin as ArgMax of -x),
/// composed of graph ops (maxIndex).
template <bool Max> LogicalResult convertArgExtreme(NodeContext &c) {
  RankedTensorType in = c.inputType(0);
  int64_t rank = in.getRank();
  auto axis = c.axisAttr("axis", 0, rank);
  if (failed(axis))
    return failure();
  if (in.getElementType().isInteger(1))
    return c.error() << "needs a numeric input";
  bool last = c.intAttr("select_last_index", 0) != 0;
  auto neg = [&](Value v) -> Value {
    return c.createTyped<cg::NegOp>(v.getType(), v);
  };
  auto r = maxIndex(c, Max ? c.value(0) : neg(c.value(0)), *axis, last,
                    c.intAttr("keepdims", 1) != 0);
  if (failed(r))
    return failure();
  c.setOutput(0, last ? r->best : neg(r->best));
  return success();
}

/// TopK: values and int64 indices of the k largest (smallest) along `axis`,
/// always sorted (also with sorted=0, which allows any order). K comes from
/// the attribute before opset 10, else from a compile-time input.
LogicalResult convertTopK(NodeContext &c) {
  RankedTensorType in = c.inputType(0);
  if (in.getElementType().isInteger(1))
    return c.error() << "needs a numeric input";
  auto axis = c.axisAttr("axis", -1, in.getRank());
  if (failed(axis))
    return failure();
  int64_t k = c.intAttr("k", -1);
  if (c.opset() >= 10 || c.hasInput(1)) {
    if (!c.hasInput(1))
      return c.error() << "needs the K input";
    auto ks = c.constantInts(1, "K");
    if (failed(ks))
      return failure();
    if (ks->size() != 1)
      return c.error() << "K must hold one value, got " << ks->size();
    k = (*ks)[0];
  }
  const int64_t len = in.getDimSize(*axis);
  if (k < 0 || k > len)
    return c.error() << "K = " << k << " is not between 0 and the size " << len
                     << " of axis " << *axis;
  SmallVector<int64_t> shape(in.getShape());
  shape[*axis] = k;
  auto values = RankedTensorType::get(shape, in.getElementType());
  auto indices = RankedTensorType::get(shape, c.builder().getI64Type());
  auto op = c.builder().create<cg::TopKOp>(c.loc(), TypeRange{values, indices},
                                           c.value(0), k, *axis,
                                           c.intAttr("largest", 1) == 0);
  c.setOutput(0, op.getValues());
  c.setOutput(1, op.getIndices());
  return success();
}

/// Hardmax: 1 at the first maximum along `axis` (default -1), 0 elsewhere.
LogicalResult convertHardmax(NodeContext &c) {
  RankedTensorType in = c.inputType(0);
  if (!isa<FloatType>(in.getElementType()))
    return c.error() << "needs a floating-point input";
  auto axis = c.axisAttr("axis", -1, in.getRank());
  if (failed(axis))
    return failure();
  auto r = maxIndex(c, c.value(0), *axis, /*last=*/false, /*keepdims=*/true);
  if (failed(r))
    return failure();
  auto hit = c.create<cg::CmpOp>(cg::CmpPredicate::eq, r->encoded, r->best);
  if (failed(hit))
    return failure();
  c.setOutput(0, c.createTyped<cg::CastOp>(in, *hit));
  return success();
}

template <Composite K> LogicalResult convertCompositeReduce(NodeContext &c) {
  auto reduction = reductionAxes(c, 18);
  if (failed(reduction))
    return failure();
  Value x = c.value(0);
  if (reduction->noop) {
    c.setOutput(0, x);
    return success();
  }
  const std::vector<int64_t> &axes = reduction->axes;
  bool keepdims = reduction->keepdims;
  auto type = cast<RankedTensorType>(x.getType());
  if (!isa<FloatType>(type.getElementType()) &&
      (K == Composite::L2 || K == Composite::LogSum ||
       K == Composite::LogSumExp || K == Composite::Prod))
    return c.error() << "is supported on floating-point tensors only";
  bool isBool = type.getElementType().isInteger(1);
  if (isBool && K != Composite::Min)
    return c.error() << "reducing a bool tensor is not supported (only "
                        "ReduceMax and ReduceMin, as any / all)";
  if (isBool) { // all: the min of 0/1
    type = RankedTensorType::get(type.getShape(), c.builder().getI32Type());
    x = c.createTyped<cg::CastOp>(type, x);
  }
  auto unary = [&](auto tag, Value v) -> Value {
    using OpT = decltype(tag);
    return c.createTyped<OpT>(v.getType(), v);
  };
  auto sum = [&](Value v, bool keep) {
    return c.create<cg::ReduceSumOp>(v, ArrayRef<int64_t>(axes), keep);
  };
  FailureOr<Value> r;
  switch (K) {
  case Composite::Min: {
    auto m = c.create<cg::ReduceMaxOp>(unary(cg::NegOp(), x),
                                       ArrayRef<int64_t>(axes), keepdims);
    if (failed(m))
      return failure();
    r = unary(cg::NegOp(), *m);
    break;
  }
  case Composite::L1:
    r = sum(unary(cg::AbsOp(), x), keepdims);
    break;
  case Composite::L2:
  case Composite::SumSquare: {
    auto sq = c.create<cg::MulOp>(x, x);
    if (failed(sq))
      return failure();
    r = sum(*sq, keepdims);
    if (succeeded(r) && K == Composite::L2)
      r = unary(cg::SqrtOp(), *r);
    break;
  }
  case Composite::LogSum:
    r = sum(x, keepdims);
    if (succeeded(r))
      r = unary(cg::LogOp(), *r);
    break;
  case Composite::LogSumExp: {
    auto m = c.create<cg::ReduceMaxOp>(x, ArrayRef<int64_t>(axes), true);
    if (failed(m))
      return failure();
    auto shifted = c.create<cg::SubOp>(x, *m);
    if (failed(shifted))
      return failure();
    auto s = sum(unary(cg::ExpOp(), *shifted), true);
    if (failed(s))
      return failure();
    auto lse = c.create<cg::AddOp>(unary(cg::LogOp(), *s), *m);
    if (failed(lse))
      return failure();
    SmallVector<int64_t> reduced;
    for (int64_t d = 0; d < type.getRank(); ++d)
      if (!llvm::is_contained(axes, d) &&
          !llvm::is_contained(axes, d - type.getRank()))
        reduced.push_back(type.getDimSize(d));
    r = keepdims ? *lse : c.reshape(*lse, reduced);
    break;
  }
  case Composite::Prod: {
    Type f = type.getElementType();
    Chain e{c, f};
    auto magnitude = sum(unary(cg::LogOp(), unary(cg::AbsOp(), x)), keepdims);
    Value negative =
        c.createTyped<cg::CastOp>(type, e.cmp(cg::CmpPredicate::lt, x, e.s(0)));
    auto negatives = sum(negative, keepdims);
    if (failed(magnitude) || failed(negatives) || e.failed)
      return failure();
    // (-1)^n = 1 - 2 (n - 2 floor(n / 2)).
    Value n = *negatives;
    Value parity = e.bin<cg::SubOp>(
        n, e.bin<cg::MulOp>(
               e.s(2), unary(cg::FloorOp(), e.bin<cg::MulOp>(n, e.s(0.5)))));
    Value sign = e.bin<cg::SubOp>(e.s(1), e.bin<cg::MulOp>(e.s(2), parity));
    Value product = e.bin<cg::MulOp>(sign, unary(cg::ExpOp(), *magnitude));
    if (e.failed)
      return failure();
    r = product;
    break;
  }
  }
  if (failed(r))
    return failure();
  Value out = *r;
  if (isBool)
    out = c.createTyped<cg::CastOp>(
        RankedTensorType::get(cast<ShapedType>(out.getType()).getShape(),
                              c.builder().getI1Type()),
        out);
  c.setOutput(0, out);
  return success();
}

LogicalResult convertFlatten(NodeContext &c) {
  auto type = c.inputType(0);
  int64_t rank = type.getRank();
  int64_t axis = c.intAttr("axis", 1);
  if (axis < -rank || axis > rank)
    return c.error() << "axis " << axis << " is out of range for rank " << rank;
  if (axis < 0)
    axis += rank;
  int64_t outer = cg::numElements(type.getShape().take_front(axis));
  int64_t inner = cg::numElements(type.getShape().drop_front(axis));
  if (const HostTensor *t = c.constant(0)) {
    HostTensor r = *t;
    r.shape = {outer, inner};
    c.setConstantOutput(0, std::move(r));
    return success();
  }
  c.setOutput(0, c.reshape(c.value(0), {outer, inner}));
  return success();
}

LogicalResult convertTrilu(NodeContext &c) {
  auto type = c.inputType(0);
  if (type.getRank() < 2)
    return c.error() << "needs a tensor of rank >= 2";
  int64_t k = 0;
  if (c.hasInput(1)) {
    auto v = c.constantInts(1, "k");
    if (failed(v))
      return failure();
    if (v->size() != 1)
      return c.error() << "k must be a scalar";
    k = (*v)[0];
  }
  bool upper = c.intAttr("upper", 1) != 0;
  const HostTensor *t = c.constant(0);
  if (t && t->size() <= kMaxFoldElements) {
    HostTensor r = t->expanded();
    int64_t rows = type.getDimSize(type.getRank() - 2);
    int64_t cols = type.getDimSize(type.getRank() - 1);
    for (int64_t idx = 0; idx < r.size(); ++idx) {
      int64_t j = idx % cols, i = (idx / cols) % rows;
      bool keep = upper ? j - i >= k : j - i <= k;
      if (!keep) {
        if (r.isFloat())
          r.floats[idx] = 0;
        else
          r.ints[idx] = 0;
      }
    }
    c.setConstantOutput(0, std::move(r));
    return success();
  }
  c.setOutput(
      0, c.builder().create<cg::TriluOp>(c.loc(), type, c.value(0), upper, k));
  return success();
}

} // namespace

void mlir::colossal::onnx::registerNNConverters(ConverterTable &t) {
  t["MatMul"] = {convertMatMul, 2, 2};
  t["Gemm"] = {convertGemm, 2, 3};
  t["LayerNormalization"] = {convertLayerNorm, 2, 3};
  t["BatchNormalization"] = {convertBatchNorm, 5, 5};
  t["InstanceNormalization"] = {convertInstanceNorm, 3, 3};
  t["ConvTranspose"] = {convertConvTranspose, 2, 3};
  t["Conv"] = {convertConv, 2, 3};
  t["MaxPool"] = {convertPool<cg::MaxPool2DOp>, 1, 1};
  t["AveragePool"] = {convertPool<cg::AvgPool2DOp>, 1, 1};
  t["GlobalAveragePool"] = {convertGlobalPool<cg::ReduceMeanOp>, 1, 1};
  t["GlobalMaxPool"] = {convertGlobalPool<cg::ReduceMaxOp>, 1, 1};
  t["ReduceSum"] = {convertReduce<cg::ReduceSumOp, 13>, 1, 2};
  t["ReduceMean"] = {convertReduce<cg::ReduceMeanOp, 18>, 1, 2};
  t["ReduceMax"] = {convertReduce<cg::ReduceMaxOp, 18>, 1, 2};
  t["ReduceMin"] = {convertCompositeReduce<Composite::Min>, 1, 2};
  t["ArgMax"] = {convertArgExtreme<true>, 1, 1};
  t["ArgMin"] = {convertArgExtreme<false>, 1, 1};
  t["Hardmax"] = {convertHardmax, 1, 1};
  t["TopK"] = {convertTopK, 1, 2};
  t["ReduceL1"] = {convertCompositeReduce<Composite::L1>, 1, 2};
  t["ReduceL2"] = {convertCompositeReduce<Composite::L2>, 1, 2};
  t["ReduceSumSquare"] = {convertCompositeReduce<Composite::SumSquare>, 1, 2};
  t["ReduceLogSum"] = {convertCompositeReduce<Composite::LogSum>, 1, 2};
  t["ReduceLogSumExp"] = {convertCompositeReduce<Composite::LogSumExp>, 1, 2};
  t["ReduceProd"] = {convertCompositeReduce<Composite::Prod>, 1, 2};
  t["Flatten"] = {convertFlatten, 1, 1};
  t["Trilu"] = {convertTrilu, 1, 2};
}
