//===- ConvertMath.cpp - Elementwise ONNX ops to cg -----------------------===//
//
// Arithmetic, comparisons, logic, activations, softmax and casts. Whenever
// all inputs are compile-time constants the node is folded on the host, which
// is how exporters' shape arithmetic disappears.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/ImportContext.h"

#include <cmath>

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::onnx;

namespace {

using FloatFn = double (*)(ArrayRef<double>);
using IntFn = int64_t (*)(ArrayRef<int64_t>);

/// Folds the node when all its inputs are constants; returns true if it did.
bool tryFold(NodeContext &c, Type resultType, FloatFn f, IntFn i) {
  SmallVector<const HostTensor *> inputs;
  for (unsigned k = 0; k < c.numInputs(); ++k) {
    const HostTensor *t = c.constant(k);
    if (!t)
      return false;
    inputs.push_back(t);
  }
  auto folded = foldElementwise(inputs, resultType, f, i);
  if (!folded)
    return false;
  c.setConstantOutput(0, std::move(*folded));
  return true;
}

LogicalResult requireSameElementType(NodeContext &c, unsigned a, unsigned b) {
  Type ta = c.inputType(a).getElementType(),
       tb = c.inputType(b).getElementType();
  if (ta != tb)
    return c.error() << "inputs " << a << " and " << b
                     << " have different element types (" << ta << " vs " << tb
                     << ")";
  return success();
}

template <typename OpT, FloatFn F, IntFn I>
LogicalResult convertBinary(NodeContext &c) {
  if (failed(requireSameElementType(c, 0, 1)))
    return failure();
  if (tryFold(c, c.inputType(0).getElementType(), F, I))
    return success();
  auto result = c.create<OpT>(c.value(0), c.value(1));
  if (failed(result))
    return failure();
  c.setOutput(0, *result);
  return success();
}

/// Max, Min and Sum take any number of inputs; fold or chain them.
template <typename OpT, FloatFn F, IntFn I>
LogicalResult convertVariadic(NodeContext &c) {
  if (c.numInputs() == 0)
    return c.error() << "needs at least one input";
  for (unsigned k = 1; k < c.numInputs(); ++k)
    if (failed(requireSameElementType(c, 0, k)))
      return failure();
  if (c.numInputs() == 1) {
    c.setOutput(0, c.value(0));
    return success();
  }
  if (c.numInputs() == 2 && tryFold(c, c.inputType(0).getElementType(), F, I))
    return success();
  Value acc = c.value(0);
  for (unsigned k = 1; k < c.numInputs(); ++k) {
    auto next = c.create<OpT>(acc, c.value(k));
    if (failed(next))
      return failure();
    acc = *next;
  }
  c.setOutput(0, acc);
  return success();
}

/// x^e for integers, exactly as repeated multiplication (wrapping like the
/// element type's products): square-and-multiply over the bits of |e|, as
/// many as the element type has unless e is a constant whose largest
/// magnitude needs fewer. A negative exponent gives 1 / x^|e| truncated: 1
/// for x = 1, +-1 for x = -1, 0 otherwise (also for x = 0).
Value integerPower(Chain &e, Value x, Value exponent, int bits) {
  Value zero = e.s(0), one = e.s(1), two = e.s(2), minusOne = e.s(-1);
  Value m = e.un<cg::AbsOp>(exponent);
  // x^0 = 1, over the operands' broadcast shape.
  Value r = e.bin<cg::AddOp>(
      e.bin<cg::AddOp>(e.bin<cg::MulOp>(x, zero), e.bin<cg::MulOp>(m, zero)),
      one);
  Value b = x, odd;
  for (int k = 0; k < bits; ++k) {
    Value half = e.bin<cg::DivOp>(m, two);
    Value bit = e.cmp(cg::CmpPredicate::ne,
                      e.bin<cg::SubOp>(m, e.bin<cg::MulOp>(half, two)), zero);
    if (k == 0)
      odd = bit;
    r = e.where(bit, e.bin<cg::MulOp>(r, b), r);
    if (k + 1 < bits) {
      b = e.bin<cg::MulOp>(b, b);
      m = half;
    }
  }
  Value inverse = e.where(e.cmp(cg::CmpPredicate::eq, x, one), one,
                          e.where(e.cmp(cg::CmpPredicate::eq, x, minusOne),
                                  e.where(odd, minusOne, one), zero));
  return e.where(e.cmp(cg::CmpPredicate::lt, exponent, zero), inverse, r);
}

LogicalResult convertPow(NodeContext &c) {
  Type base = c.inputType(0).getElementType();
  Type expType = c.inputType(1).getElementType();
  if (base.isInteger(1) || expType.isInteger(1))
    return c.error() << "needs numeric operands, got " << base << " and "
                     << expType;
  const int width = base.getIntOrFloatBitWidth();
  if (const HostTensor *tx = c.constant(0))
    if (const HostTensor *te = c.constant(1)) {
      auto folded = foldElementwise(
          {tx, te}, base,
          [](ArrayRef<double> a) { return std::pow(a[0], a[1]); },
          [&](ArrayRef<int64_t> a) -> int64_t {
            int64_t x = a[0], n = a[1];
            if (n < 0)
              return x == 1 ? 1 : x == -1 ? (n % 2 ? -1 : 1) : 0;
            uint64_t r = 1, b = static_cast<uint64_t>(x);
            for (; n; n >>= 1, b *= b)
              if (n & 1)
                r *= b;
            // Wrapped to the element type, as its products wrap.
            if (width < 64) {
              r &= (uint64_t{1} << width) - 1;
              if (r >> (width - 1))
                r |= ~((uint64_t{1} << width) - 1);
            }
            return static_cast<int64_t>(r);
          });
      if (folded) {
        c.setConstantOutput(0, std::move(*folded));
        return success();
      }
    }
  Value exponent = c.value(1);
  auto castTo = [&](Value v, Type t) {
    auto type = cast<RankedTensorType>(v.getType());
    if (type.getElementType() == t)
      return v;
    return c.createTyped<cg::CastOp>(RankedTensorType::get(type.getShape(), t),
                                     v);
  };
  if (isa<FloatType>(base)) {
    auto result = c.create<cg::PowOp>(c.value(0), castTo(exponent, base));
    if (failed(result))
      return failure();
    c.setOutput(0, *result);
    return success();
  }
  // An integer base. The exponent's bits to walk: the element type's, or
  // fewer when the exponent is a constant.
  int bits = width - 1;
  if (const HostTensor *t = c.constant(1)) {
    int64_t most = 0;
    for (int64_t i = 0; i < (t->splat ? 1 : t->size()); ++i)
      most = std::max<int64_t>(most, std::llabs(t->intAt(i)));
    bits = 1;
    while (bits < width - 1 && (int64_t{1} << bits) <= most)
      ++bits;
  }
  Chain e{c, base};
  Value x = c.value(0);
  if (isa<IntegerType>(expType))
    return e.output(integerPower(e, x, castTo(exponent, base), bits));
  // A float exponent: exact integer powers where it is a whole number (as
  // numpy's pow in double gives them), elsewhere pow in the exponent's
  // float type truncated toward zero.
  Value fx = castTo(x, expType);
  Value fp = e.make<cg::PowOp>(fx, fx, exponent);
  Chain fe{c, expType};
  Value whole =
      fe.cmp(cg::CmpPredicate::eq, fe.un<cg::FloorOp>(exponent), exponent);
  Value exact = integerPower(e, x, castTo(exponent, base), width - 1);
  Value truncated =
      castTo(fe.where(fe.cmp(cg::CmpPredicate::lt, fp, fe.s(0)),
                      fe.un<cg::CeilOp>(fp), fe.un<cg::FloorOp>(fp)),
             base);
  if (fe.failed)
    return failure();
  return e.output(e.where(whole, exact, truncated));
}

template <cg::CmpPredicate P, FloatFn F, IntFn I>
LogicalResult convertCompare(NodeContext &c) {
  if (failed(requireSameElementType(c, 0, 1)))
    return failure();
  if (tryFold(c, c.builder().getI1Type(), F, I))
    return success();
  auto result = c.create<cg::CmpOp>(P, c.value(0), c.value(1));
  if (failed(result))
    return failure();
  c.setOutput(0, *result);
  return success();
}

template <typename OpT, FloatFn F, bool FloatOnly>
LogicalResult convertUnary(NodeContext &c) {
  Type element = c.inputType(0).getElementType();
  if (FloatOnly && !isa<FloatType>(element))
    return c.error() << "needs a floating-point input, got " << element;
  if (const HostTensor *t = c.constant(0)) {
    if (t->splat || t->size() <= kMaxFoldElements) {
      auto folded = foldElementwise({t}, element, F, [](ArrayRef<int64_t> a) {
        return static_cast<int64_t>(F({static_cast<double>(a[0])}));
      });
      if (folded) {
        c.setConstantOutput(0, std::move(*folded));
        return success();
      }
    }
  }
  c.setOutput(0, c.createTyped<OpT>(c.inputType(0), c.value(0)));
  return success();
}

LogicalResult convertNot(NodeContext &c) {
  if (!c.inputType(0).getElementType().isInteger(1))
    return c.error() << "needs a bool input";
  if (tryFold(c, c.builder().getI1Type(), nullptr,
              [](ArrayRef<int64_t> a) -> int64_t { return !a[0]; }))
    return success();
  c.setOutput(0, c.createTyped<cg::NotOp>(c.inputType(0), c.value(0)));
  return success();
}

/// Sign: where(x > 0, 1, where(x < 0, -1, 0)), in x's type.
LogicalResult convertSign(NodeContext &c) {
  Type t = c.inputType(0).getElementType();
  if (t.isInteger(1))
    return c.error() << "needs a numeric input";
  Value x = c.value(0);
  Value zero = c.scalar(0, t), one = c.scalar(1, t), minus = c.scalar(-1, t);
  auto pos = c.create<cg::CmpOp>(cg::CmpPredicate::gt, x, zero);
  auto neg = c.create<cg::CmpOp>(cg::CmpPredicate::lt, x, zero);
  if (failed(pos) || failed(neg))
    return failure();
  auto inner = c.create<cg::WhereOp>(*neg, minus, zero);
  if (failed(inner))
    return failure();
  auto y = c.create<cg::WhereOp>(*pos, one, *inner);
  if (failed(y))
    return failure();
  c.setOutput(0, *y); // x's shape: the conditions have it
  return success();
}

/// IsNaN: x != x. IsInf: x == +inf (detect_positive) or x == -inf
/// (detect_negative).
LogicalResult convertIsNaN(NodeContext &c) {
  if (!isa<FloatType>(c.inputType(0).getElementType()))
    return c.error() << "needs a floating-point input";
  auto y = c.create<cg::CmpOp>(cg::CmpPredicate::ne, c.value(0), c.value(0));
  if (failed(y))
    return failure();
  c.setOutput(0, *y);
  return success();
}

LogicalResult convertIsInf(NodeContext &c) {
  Type t = c.inputType(0).getElementType();
  if (!isa<FloatType>(t))
    return c.error() << "needs a floating-point input";
  bool positive = c.intAttr("detect_positive", 1) != 0;
  bool negative = c.intAttr("detect_negative", 1) != 0;
  Value x = c.value(0);
  auto pos =
      c.create<cg::CmpOp>(cg::CmpPredicate::eq, x, c.scalar(INFINITY, t));
  auto neg =
      c.create<cg::CmpOp>(cg::CmpPredicate::eq, x, c.scalar(-INFINITY, t));
  if (failed(pos) || failed(neg))
    return failure();
  FailureOr<Value> y;
  if (positive && negative)
    y = c.create<cg::OrOp>(*pos, *neg);
  else if (positive)
    y = *pos;
  else if (negative)
    y = *neg;
  else // neither: all false (x < x holds for no x, NaN included)
    y = c.create<cg::CmpOp>(cg::CmpPredicate::lt, x, x);
  if (failed(y))
    return failure();
  c.setOutput(0, *y);
  return success();
}

LogicalResult convertWhere(NodeContext &c) {
  if (!c.inputType(0).getElementType().isInteger(1))
    return c.error() << "condition must be bool";
  if (failed(requireSameElementType(c, 1, 2)))
    return failure();
  Type element = c.inputType(1).getElementType();
  if (tryFold(
          c, element,
          [](ArrayRef<double> a) { return a[0] != 0 ? a[1] : a[2]; },
          [](ArrayRef<int64_t> a) { return a[0] ? a[1] : a[2]; }))
    return success();
  auto result = c.create<cg::WhereOp>(c.value(0), c.value(1), c.value(2));
  if (failed(result))
    return failure();
  c.setOutput(0, *result);
  return success();
}

/// Cast to `element` (called `name` in messages).
LogicalResult castTo(NodeContext &c, Type element, const std::string &name) {
  if (const HostTensor *t = c.constant(0)) {
    c.setConstantOutput(0, castHostTensor(*t, element));
    return success();
  }
  RankedTensorType in = c.inputType(0);
  if (in.getElementType() == element) {
    c.setOutput(0, c.value(0));
    return success();
  }
  if (!(element.isF32() || element.isF16() || element.isBF16() ||
        element.isF64() || element.isInteger(64) || element.isInteger(32) ||
        element.isInteger(1)))
    return c.error() << "casting a runtime tensor to " << name
                     << " is not supported";
  c.setOutput(0,
              c.createTyped<cg::CastOp>(
                  RankedTensorType::get(in.getShape(), element), c.value(0)));
  return success();
}

LogicalResult convertCast(NodeContext &c) {
  int64_t to = c.intAttr("to", 0);
  Type element = elementTypeOf(c.context(), static_cast<int32_t>(to));
  if (!element)
    return c.error() << "cannot cast to " << onnxTypeName(to);
  return castTo(c, element, onnxTypeName(static_cast<int32_t>(to)));
}

/// CastLike: to the element type of the second input.
LogicalResult convertCastLike(NodeContext &c) {
  Type element = c.inputType(1).getElementType();
  std::string name;
  llvm::raw_string_ostream os(name);
  os << element;
  return castTo(c, element, name);
}

LogicalResult convertIdentity(NodeContext &c) {
  ImportedValue &in = c.input(0);
  if (in.constant && !in.value) {
    c.setConstantOutput(0, *in.constant);
    return success();
  }
  Value v = c.value(0);
  auto param = v.getDefiningOp<cg::ParamOp>();
  StringRef name = c.node().output(0);
  if (c.options().untieIdentityWeights && param && !name.empty() &&
      name != param.getName()) {
    // A parameter of its own that starts from the same bytes.
    v = c.builder().create<cg::ParamOp>(c.loc(), param.getType(),
                                        c.builder().getStringAttr(name),
                                        param.getSourceAttr());
  }
  c.setOutput(0, v);
  return success();
}

LogicalResult convertDropout(NodeContext &c) {
  // Dropout is the identity in inference. In training mode (torch's
  // TRAINING export) it is random, which a training step supports.
  bool training = false;
  if (c.hasInput(2)) {
    const HostTensor *mode = c.constant(2);
    if (!mode)
      return c.error() << "a training_mode input known only at run time is "
                          "not supported; make it a constant";
    training = mode->intAt(0) != 0;
  }
  if (c.outputUsed(1))
    return c.error() << "the dropout mask output is not supported";
  if (!training)
    return convertIdentity(c);
  if (!c.options().dropoutTrainingMode)
    return c.error() << "dropout in training mode (training_mode input) is "
                        "supported only when compiling a training step "
                        "(--mode=train --loss=...); for inference export the "
                        "model in eval mode";
  double ratio = 0.5;
  if (c.hasInput(1)) {
    const HostTensor *r = c.constant(1);
    if (!r)
      return c.error() << "a ratio input known only at run time is not "
                          "supported; make it a constant";
    ratio = r->floatAt(0);
  }
  if (!(ratio >= 0 && ratio < 1))
    return c.error() << "ratio must lie in [0, 1), got " << ratio;
  if (!isa<FloatType>(c.inputType(0).getElementType()))
    return c.error() << "needs a floating-point input";
  if (ratio == 0)
    return convertIdentity(c);
  c.setOutput(0,
              c.createTyped<cg::DropoutOp>(c.inputType(0), c.value(0),
                                           c.builder().getF64FloatAttr(ratio)));
  return success();
}

template <typename OpT> LogicalResult convertSoftmax(NodeContext &c) {
  if (!isa<FloatType>(c.inputType(0).getElementType()))
    return c.error() << "needs a floating-point input";
  auto axis = c.axisAttr("axis", -1, c.inputType(0).getRank());
  if (failed(axis))
    return failure();
  c.setOutput(0, c.createTyped<OpT>(c.inputType(0), c.value(0), *axis));
  return success();
}

LogicalResult convertGelu(NodeContext &c) {
  std::string approximate = c.stringAttr("approximate", "none");
  cg::GeluApproximation kind;
  if (approximate == "none")
    kind = cg::GeluApproximation::none;
  else if (approximate == "tanh")
    kind = cg::GeluApproximation::tanh;
  else
    return c.error() << "unknown approximation '" << approximate << "'";
  if (!isa<FloatType>(c.inputType(0).getElementType()))
    return c.error() << "needs a floating-point input";
  c.setOutput(0, c.builder().create<cg::GeluOp>(c.loc(), c.inputType(0),
                                                c.value(0), kind));
  return success();
}

//===----------------------------------------------------------------------===//
// Activations composed of graph ops (their gradients follow from the ops')
//===----------------------------------------------------------------------===//

/// Builds `x`-shaped elementwise expressions for one node.
struct Expr {
  NodeContext &c;
  Type f;

  Value s(double v) {
    auto type = RankedTensorType::get({}, f);
    return c.builder().create<cg::ConstantOp>(
        c.loc(), DenseElementsAttr::get(type, c.builder().getFloatAttr(f, v)));
  }
  template <typename OpT> FailureOr<Value> bin(Value a, Value b) {
    return c.create<OpT>(a, b);
  }
  FailureOr<Value> cmp(cg::CmpPredicate p, Value a, Value b) {
    return c.create<cg::CmpOp>(p, a, b);
  }
};

/// `where(x >= 0 (or > 0), x, negative(x))`.
template <typename Negative>
FailureOr<Value> piecewise(NodeContext &c, bool strict, Negative negative) {
  if (!isa<FloatType>(c.inputType(0).getElementType()))
    return static_cast<LogicalResult>(c.error()
                                      << "needs a floating-point input");
  Expr e{c, c.inputType(0).getElementType()};
  Value x = c.value(0);
  auto keep =
      e.cmp(strict ? cg::CmpPredicate::gt : cg::CmpPredicate::ge, x, e.s(0.0));
  FailureOr<Value> neg = negative(e, x);
  if (failed(keep) || failed(neg))
    return failure();
  return c.create<cg::WhereOp>(*keep, x, *neg);
}

template <typename Negative>
LogicalResult convertPiecewise(NodeContext &c, bool strict, Negative negative) {
  FailureOr<Value> y = piecewise(c, strict, negative);
  if (failed(y))
    return failure();
  c.setOutput(0, *y);
  return success();
}

LogicalResult convertLeakyRelu(NodeContext &c) {
  double alpha = c.floatAttr("alpha", 0.01);
  return convertPiecewise(c, false, [&](Expr &e, Value x) {
    return e.bin<cg::MulOp>(x, e.s(alpha));
  });
}

LogicalResult convertPRelu(NodeContext &c) {
  return convertPiecewise(c, false, [&](Expr &e, Value x) {
    return e.bin<cg::MulOp>(x, c.value(1));
  });
}

/// alpha * (exp(x) - 1), times gamma for Selu.
LogicalResult convertElu(NodeContext &c, double alpha, double gamma) {
  FailureOr<Value> y =
      piecewise(c, true, [&](Expr &e, Value x) -> FailureOr<Value> {
        auto ex = c.create<cg::ExpOp>(x);
        if (failed(ex))
          return failure();
        auto em1 = e.bin<cg::SubOp>(*ex, e.s(1.0));
        if (failed(em1))
          return failure();
        return e.bin<cg::MulOp>(*em1, e.s(alpha));
      });
  if (failed(y))
    return failure();
  if (gamma != 1.0) {
    Expr e{c, c.inputType(0).getElementType()};
    y = e.bin<cg::MulOp>(*y, e.s(gamma));
    if (failed(y))
      return failure();
  }
  c.setOutput(0, *y);
  return success();
}

LogicalResult convertEluNode(NodeContext &c) {
  return convertElu(c, c.floatAttr("alpha", 1.0), 1.0);
}

LogicalResult convertSelu(NodeContext &c) {
  return convertElu(c, c.floatAttr("alpha", 1.67326319217681884765625),
                    c.floatAttr("gamma", 1.05070102214813232421875));
}

LogicalResult convertSoftplus(NodeContext &c) {
  Type f = c.inputType(0).getElementType();
  if (!isa<FloatType>(f))
    return c.error() << "needs a floating-point input";
  Chain e{c, f};
  return e.output(softplus(e, c.value(0)));
}

/// min(max(alpha x + beta, 0), 1), times x for HardSwish.
LogicalResult convertHard(NodeContext &c, double alpha, double beta,
                          bool swish) {
  if (!isa<FloatType>(c.inputType(0).getElementType()))
    return c.error() << "needs a floating-point input";
  Expr e{c, c.inputType(0).getElementType()};
  Value x = c.value(0);
  auto ax = e.bin<cg::MulOp>(x, e.s(alpha));
  if (failed(ax))
    return failure();
  auto axb = e.bin<cg::AddOp>(*ax, e.s(beta));
  if (failed(axb))
    return failure();
  auto lo = e.bin<cg::MaxOp>(*axb, e.s(0.0));
  if (failed(lo))
    return failure();
  auto y = e.bin<cg::MinOp>(*lo, e.s(1.0));
  if (failed(y))
    return failure();
  if (swish) {
    y = e.bin<cg::MulOp>(x, *y);
    if (failed(y))
      return failure();
  }
  c.setOutput(0, *y);
  return success();
}

LogicalResult convertHardSigmoid(NodeContext &c) {
  return convertHard(c, c.floatAttr("alpha", 0.2), c.floatAttr("beta", 0.5),
                     false);
}

LogicalResult convertHardSwish(NodeContext &c) {
  return convertHard(c, 1.0 / 6.0, 0.5, true);
}

/// min(max(x, lo), hi) with absent bounds skipped (opset 11+ inputs).
LogicalResult convertClip(NodeContext &c) {
  Value y = c.value(0);
  if (c.hasInput(1)) {
    auto lo = c.create<cg::MaxOp>(y, c.value(1));
    if (failed(lo))
      return failure();
    y = *lo;
  }
  if (c.hasInput(2)) {
    auto hi = c.create<cg::MinOp>(y, c.value(2));
    if (failed(hi))
      return failure();
    y = *hi;
  }
  c.setOutput(0, y);
  return success();
}

// Scalar kernels shared by folding.
double fAdd(ArrayRef<double> a) { return a[0] + a[1]; }
double fSub(ArrayRef<double> a) { return a[0] - a[1]; }
double fMul(ArrayRef<double> a) { return a[0] * a[1]; }
double fDiv(ArrayRef<double> a) { return a[0] / a[1]; }
double fMax(ArrayRef<double> a) { return std::max(a[0], a[1]); }
double fMin(ArrayRef<double> a) { return std::min(a[0], a[1]); }
double fEq(ArrayRef<double> a) { return a[0] == a[1]; }
double fLt(ArrayRef<double> a) { return a[0] < a[1]; }
double fLe(ArrayRef<double> a) { return a[0] <= a[1]; }
double fGt(ArrayRef<double> a) { return a[0] > a[1]; }
double fGe(ArrayRef<double> a) { return a[0] >= a[1]; }
int64_t iAdd(ArrayRef<int64_t> a) { return a[0] + a[1]; }
int64_t iSub(ArrayRef<int64_t> a) { return a[0] - a[1]; }
int64_t iMul(ArrayRef<int64_t> a) { return a[0] * a[1]; }
int64_t iDiv(ArrayRef<int64_t> a) {
  // Division by zero is undefined in ONNX; fold it to 0 rather than trap.
  // INT64_MIN / -1 overflows: wrap as two's complement negation does.
  if (a[1] == 0)
    return 0;
  if (a[1] == -1)
    return static_cast<int64_t>(0 - static_cast<uint64_t>(a[0]));
  return a[0] / a[1];
}
int64_t iMax(ArrayRef<int64_t> a) { return std::max(a[0], a[1]); }
int64_t iMin(ArrayRef<int64_t> a) { return std::min(a[0], a[1]); }
int64_t iEq(ArrayRef<int64_t> a) { return a[0] == a[1]; }
int64_t iLt(ArrayRef<int64_t> a) { return a[0] < a[1]; }
int64_t iLe(ArrayRef<int64_t> a) { return a[0] <= a[1]; }
int64_t iGt(ArrayRef<int64_t> a) { return a[0] > a[1]; }
int64_t iGe(ArrayRef<int64_t> a) { return a[0] >= a[1]; }
int64_t iAnd(ArrayRef<int64_t> a) { return a[0] && a[1]; }
int64_t iOr(ArrayRef<int64_t> a) { return a[0] || a[1]; }

double fNeg(ArrayRef<double> a) { return -a[0]; }
double fAbs(ArrayRef<double> a) { return std::fabs(a[0]); }
double fSqrt(ArrayRef<double> a) { return std::sqrt(a[0]); }
double fExp(ArrayRef<double> a) { return std::exp(a[0]); }
double fLog(ArrayRef<double> a) { return std::log(a[0]); }
double fTanh(ArrayRef<double> a) { return std::tanh(a[0]); }
double fSin(ArrayRef<double> a) { return std::sin(a[0]); }
double fFloor(ArrayRef<double> a) { return std::floor(a[0]); }
double fCeil(ArrayRef<double> a) { return std::ceil(a[0]); }
double fRound(ArrayRef<double> a) { return std::nearbyint(a[0]); }
double fCos(ArrayRef<double> a) { return std::cos(a[0]); }
double fErf(ArrayRef<double> a) { return std::erf(a[0]); }
double fRecip(ArrayRef<double> a) { return 1.0 / a[0]; }
double fRelu(ArrayRef<double> a) { return a[0] > 0 ? a[0] : 0.0; }
double fSigmoid(ArrayRef<double> a) { return 1.0 / (1.0 + std::exp(-a[0])); }

} // namespace

void mlir::colossal::onnx::registerMathConverters(ConverterTable &t) {
  t["Add"] = {convertBinary<cg::AddOp, fAdd, iAdd>, 2, 2};
  t["Sub"] = {convertBinary<cg::SubOp, fSub, iSub>, 2, 2};
  t["Mul"] = {convertBinary<cg::MulOp, fMul, iMul>, 2, 2};
  t["Div"] = {convertBinary<cg::DivOp, fDiv, iDiv>, 2, 2};
  t["Pow"] = {convertPow, 2, 2};
  t["Max"] = {convertVariadic<cg::MaxOp, fMax, iMax>, 1, -1};
  t["Min"] = {convertVariadic<cg::MinOp, fMin, iMin>, 1, -1};
  t["Sum"] = {convertVariadic<cg::AddOp, fAdd, iAdd>, 1, -1};
  t["And"] = {convertBinary<cg::AndOp, nullptr, iAnd>, 2, 2};
  t["Or"] = {convertBinary<cg::OrOp, nullptr, iOr>, 2, 2};
  t["Not"] = {convertNot, 1, 1};
  t["Equal"] = {convertCompare<cg::CmpPredicate::eq, fEq, iEq>, 2, 2};
  t["Less"] = {convertCompare<cg::CmpPredicate::lt, fLt, iLt>, 2, 2};
  t["LessOrEqual"] = {convertCompare<cg::CmpPredicate::le, fLe, iLe>, 2, 2};
  t["Greater"] = {convertCompare<cg::CmpPredicate::gt, fGt, iGt>, 2, 2};
  t["GreaterOrEqual"] = {convertCompare<cg::CmpPredicate::ge, fGe, iGe>, 2, 2};
  t["Where"] = {convertWhere, 3, 3};
  t["Sign"] = {convertSign, 1, 1};
  t["IsNaN"] = {convertIsNaN, 1, 1};
  t["IsInf"] = {convertIsInf, 1, 1};
  t["Neg"] = {convertUnary<cg::NegOp, fNeg, false>, 1, 1};
  t["Abs"] = {convertUnary<cg::AbsOp, fAbs, false>, 1, 1};
  t["Relu"] = {convertUnary<cg::ReluOp, fRelu, false>, 1, 1};
  t["Sqrt"] = {convertUnary<cg::SqrtOp, fSqrt, true>, 1, 1};
  t["Exp"] = {convertUnary<cg::ExpOp, fExp, true>, 1, 1};
  t["Log"] = {convertUnary<cg::LogOp, fLog, true>, 1, 1};
  t["Tanh"] = {convertUnary<cg::TanhOp, fTanh, true>, 1, 1};
  t["Erf"] = {convertUnary<cg::ErfOp, fErf, true>, 1, 1};
  t["Sin"] = {convertUnary<cg::SinOp, fSin, true>, 1, 1};
  t["Floor"] = {convertUnary<cg::FloorOp, fFloor, true>, 1, 1};
  t["Ceil"] = {convertUnary<cg::CeilOp, fCeil, true>, 1, 1};
  t["Round"] = {convertUnary<cg::RoundOp, fRound, true>, 1, 1};
  t["CastLike"] = {convertCastLike, 2, 2};
  t["Cos"] = {convertUnary<cg::CosOp, fCos, true>, 1, 1};
  t["Reciprocal"] = {convertUnary<cg::ReciprocalOp, fRecip, true>, 1, 1};
  t["Sigmoid"] = {convertUnary<cg::SigmoidOp, fSigmoid, true>, 1, 1};
  t["Gelu"] = {convertGelu, 1, 1};
  t["LeakyRelu"] = {convertLeakyRelu, 1, 1};
  t["PRelu"] = {convertPRelu, 2, 2};
  t["Elu"] = {convertEluNode, 1, 1};
  t["Selu"] = {convertSelu, 1, 1};
  t["Softplus"] = {convertSoftplus, 1, 1};
  t["HardSigmoid"] = {convertHardSigmoid, 1, 1};
  t["HardSwish"] = {convertHardSwish, 1, 1};
  t["Clip"] = {convertClip, 1, 3};
  t["Softmax"] = {convertSoftmax<cg::SoftmaxOp>, 1, 1};
  t["LogSoftmax"] = {convertSoftmax<cg::LogSoftmaxOp>, 1, 1};
  t["Cast"] = {convertCast, 1, 1};
  t["Identity"] = {convertIdentity, 1, 1};
  t["Dropout"] = {convertDropout, 1, 3};
}
