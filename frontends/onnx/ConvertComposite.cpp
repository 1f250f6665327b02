//===- ConvertComposite.cpp - ONNX operators composed of graph ops --------===//
//
// Mod, activations and elementwise math that ONNX defines as formulas
// (Softsign, Celu, Mish, ThresholdedRelu, Shrink, Tan, the hyperbolic functions
// and their inverses), Mean, Xor, the rearrangements DepthToSpace and
// SpaceToDepth, EyeLike, and the losses NegativeLogLikelihoodLoss and
// SoftmaxCrossEntropyLoss: each is built from graph ops, so it runs on every
// backend and differentiates through their rules.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/ImportContext.h"

#include "dialects/Graph/IR/GraphOps.h"

namespace mlir::colossal::onnx {
namespace {

/// A float-only composite: `build(chain, x)` gives the output.
template <typename Build>
LogicalResult floatComposite(NodeContext &c, Build build) {
  Type f = c.inputType(0).getElementType();
  if (!isa<FloatType>(f))
    return c.error() << "needs a floating-point input, got " << f;
  Chain e{c, f};
  return e.output(build(e, c.value(0)));
}

/// Mod: with fmod=1 the remainder of truncated division (C's fmod, the
/// dividend's sign); with fmod=0 (integers only) of floored division
/// (Python's %, the divisor's sign): a - b * trunc(a / b), for floats
/// through floor and ceil; integer division truncates, and a remainder
/// whose sign differs from b's gets b added.
LogicalResult convertMod(NodeContext &c) {
  Type t = c.inputType(0).getElementType();
  if (t != c.inputType(1).getElementType())
    return c.error() << "operands have different element types";
  bool fmod = c.intAttr("fmod", 0) != 0;
  bool isFloat = isa<FloatType>(t);
  if (isFloat && !fmod)
    return c.error() << "fmod=0 on floating-point inputs is not allowed by "
                        "ONNX; set fmod=1";
  if (t.isInteger(1))
    return c.error() << "needs numeric inputs";
  Chain e{c, t};
  Value a = c.value(0), b = c.value(1), zero = e.s(0);
  Value whole = e.bin<cg::DivOp>(a, b);
  if (isFloat)
    whole = e.where(e.cmp(cg::CmpPredicate::lt, whole, zero),
                    e.un<cg::CeilOp>(whole), e.un<cg::FloorOp>(whole));
  Value r = e.bin<cg::SubOp>(a, e.bin<cg::MulOp>(b, whole));
  if (fmod || isFloat)
    return e.output(r);
  // Floored: r != 0 with a sign other than b's takes b.
  Value differ =
      e.cmp(cg::CmpPredicate::ne, e.cmp(cg::CmpPredicate::lt, r, zero),
            e.cmp(cg::CmpPredicate::lt, b, zero));
  Value fix = e.bin<cg::AndOp>(differ, e.cmp(cg::CmpPredicate::ne, r, zero));
  return e.output(e.where(fix, e.bin<cg::AddOp>(r, b), r));
}

LogicalResult convertSoftsign(NodeContext &c) {
  return floatComposite(c, [](Chain &e, Value x) {
    return e.bin<cg::DivOp>(
        x, e.bin<cg::AddOp>(e.un<cg::AbsOp>(x), e.s(1.0))); // x / (1 + |x|)
  });
}

LogicalResult convertCelu(NodeContext &c) {
  double alpha = c.floatAttr("alpha", 1.0);
  if (alpha == 0)
    return c.error() << "alpha must not be 0";
  return floatComposite(c, [&](Chain &e, Value x) {
    // max(0, x) + min(0, alpha (exp(x / alpha) - 1))
    Value inner = e.bin<cg::SubOp>(
        e.un<cg::ExpOp>(e.bin<cg::DivOp>(x, e.s(alpha))), e.s(1.0));
    return e.bin<cg::AddOp>(
        e.bin<cg::MaxOp>(x, e.s(0.0)),
        e.bin<cg::MinOp>(e.bin<cg::MulOp>(inner, e.s(alpha)), e.s(0.0)));
  });
}

LogicalResult convertMish(NodeContext &c) {
  return floatComposite(c, [](Chain &e, Value x) {
    return e.bin<cg::MulOp>(x, e.un<cg::TanhOp>(softplus(e, x)));
  });
}

LogicalResult convertThresholdedRelu(NodeContext &c) {
  double alpha = c.floatAttr("alpha", 1.0);
  return floatComposite(c, [&](Chain &e, Value x) {
    return e.where(e.cmp(cg::CmpPredicate::gt, x, e.s(alpha)), x, e.s(0.0));
  });
}

/// Shrink: x + bias below -lambd, x - bias above lambd, 0 between.
LogicalResult convertShrink(NodeContext &c) {
  double bias = c.floatAttr("bias", 0.0), lambd = c.floatAttr("lambd", 0.5);
  Type t = c.inputType(0).getElementType();
  if (t.isInteger(1))
    return c.error() << "needs a numeric input";
  Chain e{c, t};
  Value x = c.value(0);
  Value low = e.where(e.cmp(cg::CmpPredicate::lt, x, e.s(-lambd)),
                      e.bin<cg::AddOp>(x, e.s(bias)), e.s(0.0));
  return e.output(e.where(e.cmp(cg::CmpPredicate::gt, x, e.s(lambd)),
                          e.bin<cg::SubOp>(x, e.s(bias)), low));
}

LogicalResult convertTan(NodeContext &c) {
  return floatComposite(c, [](Chain &e, Value x) {
    return e.bin<cg::DivOp>(e.un<cg::SinOp>(x), e.un<cg::CosOp>(x));
  });
}

/// (exp(x) - exp(-x)) / 2, or with + for cosh.
template <bool Cosh> LogicalResult convertHyperbolic(NodeContext &c) {
  return floatComposite(c, [](Chain &e, Value x) {
    Value up = e.un<cg::ExpOp>(x), down = e.un<cg::ExpOp>(e.un<cg::NegOp>(x));
    Value sum = Cosh ? e.bin<cg::AddOp>(up, down) : e.bin<cg::SubOp>(up, down);
    return e.bin<cg::MulOp>(sum, e.s(0.5));
  });
}

LogicalResult convertAsinh(NodeContext &c) {
  return floatComposite(c, [](Chain &e, Value x) {
    // sign(x) log(|x| + sqrt(x^2 + 1)): exact for negative x too.
    Value a = e.un<cg::AbsOp>(x);
    Value r = e.un<cg::LogOp>(e.bin<cg::AddOp>(
        a,
        e.un<cg::SqrtOp>(e.bin<cg::AddOp>(e.bin<cg::MulOp>(a, a), e.s(1.0)))));
    return e.where(e.cmp(cg::CmpPredicate::lt, x, e.s(0.0)), e.un<cg::NegOp>(r),
                   r);
  });
}

LogicalResult convertAcosh(NodeContext &c) {
  return floatComposite(c, [](Chain &e, Value x) {
    return e.un<cg::LogOp>(e.bin<cg::AddOp>(
        x,
        e.un<cg::SqrtOp>(e.bin<cg::SubOp>(e.bin<cg::MulOp>(x, x), e.s(1.0)))));
  });
}

LogicalResult convertAtanh(NodeContext &c) {
  return floatComposite(c, [](Chain &e, Value x) {
    return e.bin<cg::MulOp>(
        e.un<cg::LogOp>(e.bin<cg::DivOp>(e.bin<cg::AddOp>(e.s(1.0), x),
                                         e.bin<cg::SubOp>(e.s(1.0), x))),
        e.s(0.5));
  });
}

/// Mean: the inputs' sum (broadcast) over their count.
LogicalResult convertMean(NodeContext &c) {
  Type f = c.inputType(0).getElementType();
  if (!isa<FloatType>(f))
    return c.error() << "needs floating-point inputs, got " << f;
  Chain e{c, f};
  Value acc = c.value(0);
  for (unsigned k = 1; k < c.numInputs(); ++k) {
    if (c.inputType(k).getElementType() != f)
      return c.error() << "input " << k << " has another element type";
    acc = e.bin<cg::AddOp>(acc, c.value(k));
  }
  if (c.numInputs() == 1)
    return e.output(acc);
  return e.output(
      e.bin<cg::MulOp>(acc, e.s(1.0 / static_cast<double>(c.numInputs()))));
}

/// Xor of two bool tensors: a != b.
LogicalResult convertXor(NodeContext &c) {
  if (!c.inputType(0).getElementType().isInteger(1) ||
      !c.inputType(1).getElementType().isInteger(1))
    return c.error() << "needs bool inputs";
  Chain e{c, c.inputType(0).getElementType()};
  Value a = c.value(0), b = c.value(1);
  Value notB = e.un<cg::NotOp>(b), notA = e.un<cg::NotOp>(a);
  return e.output(
      e.bin<cg::OrOp>(e.bin<cg::AndOp>(a, notB), e.bin<cg::AndOp>(notA, b)));
}

/// DepthToSpace (DCR or CRD) and SpaceToDepth on NCHW: a reshape to six
/// dims, a transpose, a reshape back.
template <bool ToSpace> LogicalResult convertRearrange(NodeContext &c) {
  RankedTensorType in = c.inputType(0);
  if (in.getRank() != 4)
    return c.error() << "needs a 4-D NCHW input, got rank " << in.getRank();
  int64_t k = c.intAttr("blocksize", 0);
  if (k <= 0)
    return c.error() << "blocksize must be positive, got " << k;
  int64_t n = in.getDimSize(0), ch = in.getDimSize(1), h = in.getDimSize(2),
          w = in.getDimSize(3);
  std::string mode = c.stringAttr("mode", "DCR");
  Shape six, out;
  SmallVector<int64_t> perm;
  if (ToSpace) {
    if (ch % (k * k) != 0)
      return c.error() << "channels (" << ch << ") must be a multiple of "
                       << "blocksize^2 (" << k * k << ")";
    if (mode != "DCR" && mode != "CRD")
      return c.error() << "mode '" << mode << "' is not DCR or CRD";
    int64_t cc = ch / (k * k);
    if (mode == "DCR") {
      six = {n, k, k, cc, h, w};
      perm = {0, 3, 4, 1, 5, 2};
    } else {
      six = {n, cc, k, k, h, w};
      perm = {0, 1, 4, 2, 5, 3};
    }
    out = {n, cc, h * k, w * k};
  } else {
    if (h % k != 0 || w % k != 0)
      return c.error() << "height and width (" << h << ", " << w
                       << ") must be multiples of blocksize " << k;
    six = {n, ch, h / k, k, w / k, k};
    perm = {0, 3, 5, 1, 2, 4};
    out = {n, ch * k * k, h / k, w / k};
  }
  Value x = c.reshape(c.value(0), six);
  auto y = c.create<cg::TransposeOp>(x, ArrayRef<int64_t>(perm));
  if (failed(y))
    return failure();
  c.setOutput(0, c.reshape(*y, out));
  return success();
}

/// EyeLike: ones on the k-th diagonal of a matrix the input's shape, in
/// `dtype` (default: the input's); a compile-time constant.
LogicalResult convertEyeLike(NodeContext &c) {
  RankedTensorType in = c.inputType(0);
  if (in.getRank() != 2)
    return c.error() << "needs a 2-D input, got rank " << in.getRank();
  Type t = in.getElementType();
  if (const auto *a = c.attr("dtype")) {
    t = elementTypeOf(c.context(), static_cast<int32_t>(a->i()));
    if (!t)
      return c.error() << "dtype " << onnxTypeName(static_cast<int32_t>(a->i()))
                       << " is not supported";
  }
  int64_t rows = in.getDimSize(0), cols = in.getDimSize(1);
  int64_t k = c.intAttr("k", 0);
  std::vector<int64_t> ones(static_cast<size_t>(rows * cols), 0);
  for (int64_t i = 0; i < rows; ++i)
    if (i + k >= 0 && i + k < cols)
      ones[static_cast<size_t>(i * cols + i + k)] = 1;
  Shape shape{rows, cols};
  if (isa<FloatType>(t)) {
    std::vector<double> values(ones.begin(), ones.end());
    c.setConstantOutput(0, HostTensor::ofFloats(t, shape, std::move(values)));
  } else {
    c.setConstantOutput(0, HostTensor::ofInts(t, shape, std::move(ones)));
  }
  return success();
}

/// The negative log-likelihood of `logp` ([N, C, d1..dk], log-probabilities
/// or any scores) at the classes `target` ([N, d1..dk], integers) names,
/// weighted by `weight` ([C], or null), skipping `ignore_index` when the
/// node has one, reduced as `reduction` says (none, sum, or mean: over the
/// weights of the targets counted). A class one-hot of the target picks
/// each score, so this is graph ops only and trains.
LogicalResult negativeLogLikelihood(NodeContext &c, Value logp, Value target,
                                    Value weight, unsigned output) {
  auto in = cast<RankedTensorType>(logp.getType());
  auto tt = cast<RankedTensorType>(target.getType());
  Type f = in.getElementType();
  Type ti = tt.getElementType();
  if (!isa<FloatType>(f))
    return c.error() << "needs floating-point scores, got " << f;
  if (!isa<IntegerType>(ti) || ti.isInteger(1))
    return c.error() << "needs integer targets, got " << ti;
  int64_t rank = in.getRank();
  if (rank < 2 || tt.getRank() != rank - 1 ||
      tt.getDimSize(0) != in.getDimSize(0) ||
      tt.getShape().drop_front() != in.getShape().drop_front(2))
    return c.error() << "targets " << tt << " do not match scores " << in
                     << " ([N, C, d1..dk] and [N, d1..dk])";
  std::string reduction = c.stringAttr("reduction", "mean");
  if (reduction != "none" && reduction != "sum" && reduction != "mean")
    return c.error() << "reduction '" << reduction
                     << "' is not none, sum or mean";
  int64_t classes = in.getDimSize(1);
  Chain e{c, f};
  // Targets as [N, 1, d1..dk] against the classes [1, C, 1..1].
  Shape column(in.getShape());
  column[1] = 1;
  Value t = c.reshape(target, column);
  Shape classShape(static_cast<size_t>(rank), 1);
  classShape[1] = classes;
  std::vector<int64_t> ids(static_cast<size_t>(classes));
  for (int64_t k = 0; k < classes; ++k)
    ids[static_cast<size_t>(k)] = k;
  Value classIds = materializeConstant(
      c.builder(), c.loc(), HostTensor::ofInts(ti, classShape, std::move(ids)));
  Value hit = e.cmp(cg::CmpPredicate::eq, t, classIds);
  if (c.attr("ignore_index")) {
    Value ignore =
        c.scalar(static_cast<double>(c.intAttr("ignore_index", 0)), ti);
    hit = e.bin<cg::AndOp>(hit, e.cmp(cg::CmpPredicate::ne, t, ignore));
  }
  if (e.failed)
    return failure();
  Value picked =
      c.createTyped<cg::CastOp>(RankedTensorType::get(in.getShape(), f), hit);
  if (weight) {
    auto wt = cast<RankedTensorType>(weight.getType());
    if (wt.getRank() != 1 || wt.getDimSize(0) != classes ||
        wt.getElementType() != f)
      return c.error() << "weights " << wt << " need one " << f
                       << " per class (" << classes << ")";
    picked = e.bin<cg::MulOp>(picked, c.reshape(weight, classShape));
  }
  auto sum = [&](Value v, ArrayRef<int64_t> axes, bool keep) -> Value {
    if (e.failed)
      return v;
    auto r = c.create<cg::ReduceSumOp>(v, axes, keep);
    if (failed(r)) {
      e.failed = true;
      return v;
    }
    return *r;
  };
  SmallVector<int64_t> classAxis{1}, all;
  for (int64_t d = 0; d < rank; ++d)
    all.push_back(d);
  Value losses =
      e.un<cg::NegOp>(sum(e.bin<cg::MulOp>(logp, picked), classAxis, false));
  Value out = losses;
  if (reduction != "none") {
    SmallVector<int64_t> every;
    for (int64_t d = 0; d + 1 < rank; ++d)
      every.push_back(d);
    out = sum(losses, every, false);
    if (reduction == "mean")
      out = e.bin<cg::DivOp>(out, sum(picked, all, false));
  }
  if (e.failed)
    return failure();
  c.setOutput(output, out);
  return success();
}

LogicalResult convertNegativeLogLikelihood(NodeContext &c) {
  return negativeLogLikelihood(c, c.value(0), c.value(1),
                               c.hasInput(2) ? c.value(2) : Value(), 0);
}

/// SoftmaxCrossEntropyLoss: the negative log-likelihood of the scores'
/// log-softmax over the classes (axis 1), which is the optional second
/// output.
LogicalResult convertSoftmaxCrossEntropy(NodeContext &c) {
  RankedTensorType in = c.inputType(0);
  if (!isa<FloatType>(in.getElementType()))
    return c.error() << "needs floating-point scores, got "
                     << in.getElementType();
  if (in.getRank() < 2)
    return c.error() << "needs scores [N, C, d1..dk], got rank "
                     << in.getRank();
  Value logp = c.createTyped<cg::LogSoftmaxOp>(in, c.value(0), int64_t(1));
  if (failed(negativeLogLikelihood(c, logp, c.value(1),
                                   c.hasInput(2) ? c.value(2) : Value(), 0)))
    return failure();
  if (c.numOutputs() > 1 && c.outputUsed(1))
    c.setOutput(1, logp);
  return success();
}

} // namespace

Value softplus(Chain &e, Value x) {
  Value tail = e.un<cg::LogOp>(e.bin<cg::AddOp>(
      e.un<cg::ExpOp>(e.un<cg::NegOp>(e.un<cg::AbsOp>(x))), e.s(1.0)));
  return e.bin<cg::AddOp>(e.bin<cg::MaxOp>(x, e.s(0.0)), tail);
}

void registerCompositeConverters(ConverterTable &t) {
  t["Mod"] = {convertMod, 2, 2};
  t["NegativeLogLikelihoodLoss"] = {convertNegativeLogLikelihood, 2, 3};
  t["SoftmaxCrossEntropyLoss"] = {convertSoftmaxCrossEntropy, 2, 3};
  t["Softsign"] = {convertSoftsign, 1, 1};
  t["Celu"] = {convertCelu, 1, 1};
  t["Mish"] = {convertMish, 1, 1};
  t["ThresholdedRelu"] = {convertThresholdedRelu, 1, 1};
  t["Shrink"] = {convertShrink, 1, 1};
  t["Tan"] = {convertTan, 1, 1};
  t["Sinh"] = {convertHyperbolic<false>, 1, 1};
  t["Cosh"] = {convertHyperbolic<true>, 1, 1};
  t["Asinh"] = {convertAsinh, 1, 1};
  t["Acosh"] = {convertAcosh, 1, 1};
  t["Atanh"] = {convertAtanh, 1, 1};
  t["Mean"] = {convertMean, 1, -1};
  t["Xor"] = {convertXor, 2, 2};
  t["DepthToSpace"] = {convertRearrange<true>, 1, 1};
  t["SpaceToDepth"] = {convertRearrange<false>, 1, 1};
  t["EyeLike"] = {convertEyeLike, 1, 1};
}

} // namespace mlir::colossal::onnx
