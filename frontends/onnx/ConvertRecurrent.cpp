//===- ConvertRecurrent.cpp - ONNX RNN, GRU and LSTM, unrolled ------------===//
//
// The recurrent layers are unrolled over the input's static sequence length
// into graph ops: the input projection of every step is one matmul over the
// whole sequence, then each step adds the recurrent projection of the state,
// applies the gate activations and updates the state. Every direction
// (forward, reverse, bidirectional), both layouts, initial states, biases,
// LSTM peepholes and coupled input/forget gates, GRU's linear_before_reset,
// clipping and every activation ONNX lists are supported. With
// `sequence_lens` a step past a sequence's end keeps the state and writes
// zeros to Y, so the reverse direction starts at each sequence's own end.
// Built from differentiable graph ops, the layers train.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/ImportContext.h"

#include "dialects/Graph/IR/GraphOps.h"

namespace mlir::colossal::onnx {
namespace {

enum class Cell { Rnn, Gru, Lstm };

/// One activation of the `activations` attribute with its alpha/beta.
struct Activation {
  std::string name;
  double alpha = 0, beta = 0;
};

/// Applies `a` to `x` (the names and formulas of the ONNX RNN operators).
Value activate(Chain &e, const Activation &a, Value x) {
  const std::string &n = a.name;
  if (n == "sigmoid")
    return e.un<cg::SigmoidOp>(x);
  if (n == "tanh")
    return e.un<cg::TanhOp>(x);
  if (n == "relu")
    return e.un<cg::ReluOp>(x);
  if (n == "affine")
    return e.bin<cg::AddOp>(e.bin<cg::MulOp>(x, e.s(a.alpha)), e.s(a.beta));
  if (n == "leakyrelu")
    return e.where(e.cmp(cg::CmpPredicate::lt, x, e.s(0)),
                   e.bin<cg::MulOp>(x, e.s(a.alpha)), x);
  if (n == "thresholdedrelu")
    return e.where(e.cmp(cg::CmpPredicate::gt, x, e.s(a.alpha)), x, e.s(0));
  if (n == "scaledtanh")
    return e.bin<cg::MulOp>(e.un<cg::TanhOp>(e.bin<cg::MulOp>(x, e.s(a.beta))),
                            e.s(a.alpha));
  if (n == "hardsigmoid")
    return e.bin<cg::MaxOp>(
        e.bin<cg::MinOp>(
            e.bin<cg::AddOp>(e.bin<cg::MulOp>(x, e.s(a.alpha)), e.s(a.beta)),
            e.s(1)),
        e.s(0));
  if (n == "elu")
    return e.where(
        e.cmp(cg::CmpPredicate::lt, x, e.s(0)),
        e.bin<cg::MulOp>(e.bin<cg::SubOp>(e.un<cg::ExpOp>(x), e.s(1)),
                         e.s(a.alpha)),
        x);
  if (n == "softsign")
    return e.bin<cg::DivOp>(x, e.bin<cg::AddOp>(e.un<cg::AbsOp>(x), e.s(1)));
  return softplus(e, x);
}

/// Reads `activations`, `activation_alpha` and `activation_beta`: `perDir`
/// activations for each direction, the defaults when the attribute is
/// absent. Alphas and betas are consumed in order by the activations that
/// take them; one not given takes the default of the ONNX operator of that
/// name.
FailureOr<std::vector<Activation>>
readActivations(NodeContext &c, ArrayRef<StringRef> defaults, int dirs) {
  std::vector<std::string> names;
  if (const auto *a = c.attr("activations")) {
    for (const std::string &s : a->strings())
      names.push_back(StringRef(s).lower());
  } else {
    for (int d = 0; d < dirs; ++d)
      for (StringRef n : defaults)
        names.push_back(n.lower());
  }
  size_t want = defaults.size() * dirs;
  if (names.size() != want)
    return c.error() << "activations lists " << names.size() << " functions; "
                     << want << " are needed (" << defaults.size()
                     << " per direction)",
           failure();
  std::vector<float> alphas, betas;
  if (const auto *a = c.attr("activation_alpha"))
    alphas.assign(a->floats().begin(), a->floats().end());
  if (const auto *a = c.attr("activation_beta"))
    betas.assign(a->floats().begin(), a->floats().end());
  size_t ai = 0, bi = 0;
  std::vector<Activation> out;
  for (const std::string &n : names) {
    Activation act{n};
    // (alpha default, beta default); NaN: the activation takes no beta.
    double da = 0, db = 0;
    bool takesAlpha = true, takesBeta = false;
    if (n == "affine") {
      da = 1, db = 0, takesBeta = true;
    } else if (n == "leakyrelu") {
      da = 0.01;
    } else if (n == "thresholdedrelu" || n == "elu") {
      da = 1.0;
    } else if (n == "scaledtanh") {
      da = 1, db = 1, takesBeta = true;
    } else if (n == "hardsigmoid") {
      da = 0.2, db = 0.5, takesBeta = true;
    } else if (n == "sigmoid" || n == "tanh" || n == "relu" ||
               n == "softsign" || n == "softplus") {
      takesAlpha = false;
    } else {
      return c.error() << "activation '" << n
                       << "' is not one of Relu, Tanh, Sigmoid, Affine, "
                          "LeakyRelu, ThresholdedRelu, ScaledTanh, "
                          "HardSigmoid, Elu, Softsign, Softplus",
             failure();
    }
    if (takesAlpha)
      act.alpha = ai < alphas.size() ? alphas[ai++] : da;
    if (takesBeta)
      act.beta = bi < betas.size() ? betas[bi++] : db;
    out.push_back(act);
  }
  return out;
}

/// `v[..., lo:hi]` along `axis` (all other dimensions whole).
Value sliceAxis(NodeContext &c, Chain &e, Value v, int64_t axis, int64_t lo,
                int64_t hi) {
  auto t = cast<RankedTensorType>(v.getType());
  SmallVector<int64_t> starts(t.getRank(), 0), limits(t.getShape()),
      steps(t.getRank(), 1);
  starts[axis] = lo;
  limits[axis] = hi;
  return e.make<cg::SliceOp>(v, v, ArrayRef<int64_t>(starts),
                             ArrayRef<int64_t>(limits),
                             ArrayRef<int64_t>(steps));
}

/// `v[d]` of a [dirs, ...] tensor, without the leading dimension.
Value direction(NodeContext &c, Chain &e, Value v, int64_t d) {
  auto t = cast<RankedTensorType>(v.getType());
  Value s = sliceAxis(c, e, v, 0, d, d + 1);
  return c.reshape(s, t.getShape().drop_front());
}

Value transpose2(NodeContext &c, Chain &e, Value v) {
  return e.make<cg::TransposeOp>(v, v, ArrayRef<int64_t>{1, 0});
}

LogicalResult convertRecurrent(NodeContext &c, Cell cell) {
  RankedTensorType xType = c.inputType(0);
  Type f = xType.getElementType();
  if (!isa<FloatType>(f))
    return c.error() << "needs a floating-point X, got " << f;
  if (xType.getRank() != 3)
    return c.error() << "X must have rank 3, got " << xType;
  const int64_t layout = c.intAttr("layout", 0);
  if (layout != 0 && layout != 1)
    return c.error() << "layout must be 0 or 1, got " << layout;
  // hidden_size may be left out: R is [dirs, gates * hidden, hidden].
  RankedTensorType rType = c.inputType(2);
  const int64_t hidden =
      c.intAttr("hidden_size", rType.getRank() == 3 ? rType.getDimSize(2) : 0);
  const int gates = cell == Cell::Rnn ? 1 : cell == Cell::Gru ? 3 : 4;
  const int64_t seq = xType.getDimSize(layout ? 1 : 0);
  const int64_t batch = xType.getDimSize(layout ? 0 : 1);
  const int64_t inputSize = xType.getDimSize(2);
  std::string dir = c.stringAttr("direction", "forward");
  if (dir != "forward" && dir != "reverse" && dir != "bidirectional")
    return c.error() << "direction must be forward, reverse or bidirectional, "
                        "got '"
                     << dir << "'";
  const int dirs = dir == "bidirectional" ? 2 : 1;
  if (hidden <= 0)
    return c.error() << "hidden_size must be a positive integer, got "
                     << hidden;
  auto expect = [&](unsigned i, StringRef name,
                    ArrayRef<int64_t> shape) -> LogicalResult {
    RankedTensorType t = c.inputType(i);
    if (t.getShape() != shape || t.getElementType() != f) {
      auto d = c.error() << name << " must be tensor<";
      for (int64_t s : shape)
        d << s << "x";
      return d << f << ">, got " << t;
    }
    return success();
  };
  if (failed(expect(1, "W", {dirs, gates * hidden, inputSize})) ||
      failed(expect(2, "R", {dirs, gates * hidden, hidden})))
    return failure();
  if (c.hasInput(3) && failed(expect(3, "B", {dirs, 2 * gates * hidden})))
    return failure();
  const unsigned hIndex = 5;
  SmallVector<int64_t> stateShape =
      layout ? SmallVector<int64_t>{batch, dirs, hidden}
             : SmallVector<int64_t>{dirs, batch, hidden};
  if (c.hasInput(hIndex) && failed(expect(hIndex, "initial_h", stateShape)))
    return failure();
  if (cell == Cell::Lstm) {
    if (c.hasInput(6) && failed(expect(6, "initial_c", stateShape)))
      return failure();
    if (c.hasInput(7) && failed(expect(7, "P", {dirs, 3 * hidden})))
      return failure();
  }
  const bool hasLens = c.hasInput(4);
  if (hasLens) {
    RankedTensorType l = c.inputType(4);
    if (l.getRank() != 1 || l.getDimSize(0) != batch ||
        !isa<IntegerType>(l.getElementType()) ||
        l.getElementType().isInteger(1))
      return c.error() << "sequence_lens must be tensor<" << batch
                       << "xi32>, got " << l;
  }
  const bool linearBeforeReset = c.intAttr("linear_before_reset", 0) != 0;
  const bool inputForget = c.intAttr("input_forget", 0) != 0;
  const auto *clipAttr = c.attr("clip");
  const double clip = clipAttr ? clipAttr->f() : 0;
  if (clipAttr && !(clip > 0))
    return c.error() << "clip must be positive, got " << clip;

  SmallVector<StringRef, 3> defaults;
  if (cell == Cell::Rnn)
    defaults = {"Tanh"};
  else if (cell == Cell::Gru)
    defaults = {"Sigmoid", "Tanh"};
  else
    defaults = {"Sigmoid", "Tanh", "Tanh"};
  auto acts = readActivations(c, defaults, dirs);
  if (failed(acts))
    return failure();

  Chain e{c, f};
  // X as [seq, batch, input].
  Value x = c.value(0);
  if (layout)
    x = e.make<cg::TransposeOp>(x, x, ArrayRef<int64_t>{1, 0, 2});
  // The steps each batch entry takes: a mask per step (t < len).
  Value lens;
  if (hasLens) {
    lens = c.value(4);
    lens = c.createTyped<cg::CastOp>(RankedTensorType::get({batch, 1}, f),
                                     c.reshape(lens, {batch, 1}));
  }
  auto clipped = [&](Value v) {
    if (!clipAttr)
      return v;
    return e.bin<cg::MaxOp>(e.bin<cg::MinOp>(v, e.s(clip)), e.s(-clip));
  };

  SmallVector<Value> ysPerDir, lastH, lastC;
  for (int d = 0; d < dirs; ++d) {
    const bool reverse = dir == "reverse" || d == 1;
    ArrayRef<Activation> act =
        ArrayRef<Activation>(*acts).slice(d * defaults.size(), defaults.size());
    Value w = direction(c, e, c.value(1), d); // [G*H, I]
    Value r = direction(c, e, c.value(2), d); // [G*H, H]
    Value rT = transpose2(c, e, r);           // [H, G*H]
    // Input projections of all steps at once: [seq, batch, G*H].
    Value xw = e.make<cg::MatMulOp>(x, x, transpose2(c, e, w));
    Value wb, rb;
    if (c.hasInput(3)) {
      Value b = direction(c, e, c.value(3), d); // [2*G*H]
      wb = sliceAxis(c, e, b, 0, 0, gates * hidden);
      rb = sliceAxis(c, e, b, 0, gates * hidden, 2 * gates * hidden);
      // GRU's hidden gate adds Rbh apart when linear_before_reset is set.
      if (cell != Cell::Gru || !linearBeforeReset)
        xw = e.bin<cg::AddOp>(xw, e.bin<cg::AddOp>(wb, rb));
      else
        xw = e.bin<cg::AddOp>(xw, wb);
    }
    // With linear_before_reset, Rb's z and r parts join the recurrent
    // projection of z and r, and Rbh the hidden one (inside r's gating).
    Value rbzr, rbh;
    if (cell == Cell::Gru && linearBeforeReset && rb) {
      rbzr = sliceAxis(c, e, rb, 0, 0, 2 * hidden);
      rbh = sliceAxis(c, e, rb, 0, 2 * hidden, 3 * hidden);
    }
    auto state = [&](unsigned i) -> Value {
      if (!c.hasInput(i)) {
        Value zero = e.s(0);
        return c.createTyped<cg::ExpandOp>(
            RankedTensorType::get({batch, hidden}, f), c.reshape(zero, {1, 1}));
      }
      Value s = c.value(i);
      if (layout)
        s = e.make<cg::TransposeOp>(s, s, ArrayRef<int64_t>{1, 0, 2});
      return direction(c, e, s, d);
    };
    Value h = state(hIndex);
    Value cs = cell == Cell::Lstm ? state(6) : Value();
    Value pi, po, pf;
    if (cell == Cell::Lstm && c.hasInput(7)) {
      Value p = direction(c, e, c.value(7), d);
      pi = sliceAxis(c, e, p, 0, 0, hidden);
      po = sliceAxis(c, e, p, 0, hidden, 2 * hidden);
      pf = sliceAxis(c, e, p, 0, 2 * hidden, 3 * hidden);
    }

    SmallVector<Value> ys(seq);
    for (int64_t k = 0; k < seq; ++k) {
      const int64_t t = reverse ? seq - 1 - k : k;
      Value xt =
          c.reshape(sliceAxis(c, e, xw, 0, t, t + 1), {batch, gates * hidden});
      auto gate = [&](Value v, int g) {
        return sliceAxis(c, e, v, 1, g * hidden, (g + 1) * hidden);
      };
      Value hNew, cNew;
      if (cell == Cell::Rnn) {
        Value pre = e.bin<cg::AddOp>(xt, e.make<cg::MatMulOp>(h, h, rT));
        hNew = activate(e, act[0], clipped(pre));
      } else if (cell == Cell::Gru) {
        // Gates z, r, h; the recurrent projection of z and r at once.
        Value rzr = sliceAxis(c, e, rT, 1, 0, 2 * hidden);
        Value hzr = e.make<cg::MatMulOp>(h, h, rzr);
        if (rbzr)
          hzr = e.bin<cg::AddOp>(hzr, rbzr);
        Value z = activate(
            e, act[0], clipped(e.bin<cg::AddOp>(gate(xt, 0), gate(hzr, 0))));
        Value rg = activate(
            e, act[0], clipped(e.bin<cg::AddOp>(gate(xt, 1), gate(hzr, 1))));
        Value rh = sliceAxis(c, e, rT, 1, 2 * hidden, 3 * hidden);
        Value rec;
        if (linearBeforeReset) {
          Value hr = e.make<cg::MatMulOp>(h, h, rh);
          if (rbh)
            hr = e.bin<cg::AddOp>(hr, rbh);
          rec = e.bin<cg::MulOp>(rg, hr);
        } else {
          Value gated = e.bin<cg::MulOp>(rg, h);
          rec = e.make<cg::MatMulOp>(gated, gated, rh);
        }
        Value cand =
            activate(e, act[1], clipped(e.bin<cg::AddOp>(gate(xt, 2), rec)));
        // (1 - z) * cand + z * h = cand + z * (h - cand).
        hNew = e.bin<cg::AddOp>(cand,
                                e.bin<cg::MulOp>(z, e.bin<cg::SubOp>(h, cand)));
      } else {
        // Gates i, o, f, c.
        Value pre = e.bin<cg::AddOp>(xt, e.make<cg::MatMulOp>(h, h, rT));
        Value preI = gate(pre, 0), preO = gate(pre, 1), preF = gate(pre, 2);
        if (pi) {
          preI = e.bin<cg::AddOp>(preI, e.bin<cg::MulOp>(pi, cs));
          preF = e.bin<cg::AddOp>(preF, e.bin<cg::MulOp>(pf, cs));
        }
        Value ig = activate(e, act[0], clipped(preI));
        Value fg = inputForget ? e.bin<cg::SubOp>(e.s(1), ig)
                               : activate(e, act[0], clipped(preF));
        Value cand = activate(e, act[1], clipped(gate(pre, 3)));
        cNew = e.bin<cg::AddOp>(e.bin<cg::MulOp>(fg, cs),
                                e.bin<cg::MulOp>(ig, cand));
        if (po)
          preO = e.bin<cg::AddOp>(preO, e.bin<cg::MulOp>(po, cNew));
        Value og = activate(e, act[0], clipped(preO));
        hNew = e.bin<cg::MulOp>(og, activate(e, act[2], cNew));
      }
      if (hasLens) {
        Value live = e.cmp(cg::CmpPredicate::gt, lens, e.s(t)); // [batch, 1]
        ys[t] = e.where(live, hNew, e.s(0));
        h = e.where(live, hNew, h);
        if (cNew)
          cs = e.where(live, cNew, cs);
      } else {
        ys[t] = hNew;
        h = hNew;
        if (cNew)
          cs = cNew;
      }
      if (e.failed)
        return failure();
    }
    // Y of this direction: [seq, 1, batch, hidden].
    SmallVector<Value> steps;
    for (Value y : ys)
      steps.push_back(c.reshape(y, {1, 1, batch, hidden}));
    Value y =
        steps.size() == 1
            ? steps[0]
            : e.make<cg::ConcatOp>(steps[0], ValueRange(steps), int64_t{0});
    ysPerDir.push_back(y);
    lastH.push_back(c.reshape(h, {1, batch, hidden}));
    if (cs)
      lastC.push_back(c.reshape(cs, {1, batch, hidden}));
  }
  auto join = [&](ArrayRef<Value> parts, int64_t axis) {
    return parts.size() == 1
               ? parts[0]
               : e.make<cg::ConcatOp>(parts[0], ValueRange(parts), axis);
  };
  Value y = join(ysPerDir, 1); // [seq, dirs, batch, hidden]
  Value yh = join(lastH, 0);   // [dirs, batch, hidden]
  Value yc = lastC.empty() ? Value() : join(lastC, 0);
  if (layout) {
    y = e.make<cg::TransposeOp>(y, y, ArrayRef<int64_t>{2, 0, 1, 3});
    yh = e.make<cg::TransposeOp>(yh, yh, ArrayRef<int64_t>{1, 0, 2});
    if (yc)
      yc = e.make<cg::TransposeOp>(yc, yc, ArrayRef<int64_t>{1, 0, 2});
  }
  if (e.failed)
    return failure();
  if (c.outputUsed(0))
    c.setOutput(0, y);
  if (c.outputUsed(1))
    c.setOutput(1, yh);
  if (yc && c.outputUsed(2))
    c.setOutput(2, yc);
  return success();
}

LogicalResult convertRnn(NodeContext &c) {
  return convertRecurrent(c, Cell::Rnn);
}
LogicalResult convertGru(NodeContext &c) {
  return convertRecurrent(c, Cell::Gru);
}
LogicalResult convertLstm(NodeContext &c) {
  return convertRecurrent(c, Cell::Lstm);
}

} // namespace

void registerRecurrentConverters(ConverterTable &t) {
  t["RNN"] = {convertRnn, 3, 6};
  t["GRU"] = {convertGru, 3, 6};
  t["LSTM"] = {convertLstm, 3, 8};
}

} // namespace mlir::colossal::onnx
