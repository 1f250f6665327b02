//===- ConvertEinsum.cpp - ONNX Einsum as transposes, sums and matmuls ----===//
//
// An Einsum equation is imported as graph ops, left to right: each
// operand's repeated labels become its diagonal (a product with an
// identity mask, summed), labels that nothing later needs are summed out,
// and each pair of operands is one batched matmul over [shared kept
// labels, left-only, contracted] x [shared kept labels, contracted,
// right-only]; the result is transposed to the output's order. Ellipses
// broadcast as in numpy (size-1 dimensions expanded), and without "->"
// the output is the ellipsis then the labels used once, in alphabetical
// order. Differentiable through the ops' rules.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/ImportContext.h"

#include "dialects/Graph/IR/GraphOps.h"

#include <algorithm>
#include <map>

namespace mlir::colossal::onnx {
namespace {

/// A label: a letter's code, or kEllipsis + k for the ellipsis's k-th
/// dimension counted from the left of the widest ellipsis.
using Label = int;
constexpr Label kEllipsis = 256;

/// One term of the equation: its letters, and where its ellipsis is
/// (-1: none).
struct Term {
  std::vector<Label> letters;
  int ellipsisAt = -1;
};

FailureOr<Term> parseTerm(NodeContext &c, StringRef text) {
  Term t;
  for (size_t i = 0; i < text.size(); ++i) {
    char ch = text[i];
    if (ch == '.') {
      if (t.ellipsisAt >= 0 || !text.substr(i).starts_with("..."))
        return c.error() << "equation term '" << text
                         << "' has a '.' that is not one ellipsis '...'",
               failure();
      t.ellipsisAt = static_cast<int>(t.letters.size());
      i += 2;
    } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
      t.letters.push_back(ch);
    } else {
      return c.error() << "equation term '" << text << "' has '" << ch
                       << "'; terms are letters and at most one '...'",
             failure();
    }
  }
  return t;
}

/// A value with a label per dimension.
struct Labeled {
  Value value;
  std::vector<Label> labels;
};

ArrayRef<int64_t> shapeOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape();
}

/// Sums out the dimensions of `x` whose labels `keep` rejects.
Labeled sumOut(Chain &e, Labeled x, function_ref<bool(Label)> keep) {
  SmallVector<int64_t> axes;
  std::vector<Label> rest;
  for (size_t d = 0; d < x.labels.size(); ++d) {
    if (keep(x.labels[d]))
      rest.push_back(x.labels[d]);
    else
      axes.push_back(static_cast<int64_t>(d));
  }
  if (axes.empty())
    return x;
  Value v =
      e.make<cg::ReduceSumOp>(x.value, x.value, ArrayRef<int64_t>(axes), false);
  return {v, rest};
}

/// Transposes `x` so its labels come in `order`.
Value permute(Chain &e, const Labeled &x, ArrayRef<Label> order) {
  SmallVector<int64_t> perm;
  for (Label l : order)
    perm.push_back(std::find(x.labels.begin(), x.labels.end(), l) -
                   x.labels.begin());
  bool identity = true;
  for (size_t i = 0; i < perm.size(); ++i)
    identity &= perm[i] == static_cast<int64_t>(i);
  if (identity)
    return x.value;
  return e.make<cg::TransposeOp>(x.value, x.value, ArrayRef<int64_t>(perm));
}

/// The diagonal over every label that `x` repeats: the dimensions multiplied
/// by an identity mask, then the second summed out.
Labeled diagonal(NodeContext &c, Chain &e, Labeled x) {
  for (;;) {
    int first = -1, second = -1;
    for (size_t i = 0; i < x.labels.size() && second < 0; ++i)
      for (size_t j = i + 1; j < x.labels.size(); ++j)
        if (x.labels[i] == x.labels[j]) {
          first = static_cast<int>(i);
          second = static_cast<int>(j);
          break;
        }
    if (second < 0)
      return x;
    ArrayRef<int64_t> shape = shapeOf(x.value);
    const int64_t n = shape[first];
    SmallVector<int64_t> maskShape(shape.size(), 1);
    maskShape[first] = n;
    maskShape[second] = n;
    std::vector<double> eye(static_cast<size_t>(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i)
      eye[static_cast<size_t>(i * n + i)] = 1.0;
    Type f = cast<RankedTensorType>(x.value.getType()).getElementType();
    Value mask = materializeConstant(
        c.builder(), c.loc(),
        HostTensor::ofFloats(f, Shape(maskShape.begin(), maskShape.end()),
                             eye));
    Value masked = e.bin<cg::MulOp>(x.value, mask);
    x.labels.erase(x.labels.begin() + second);
    x.value = e.make<cg::ReduceSumOp>(
        masked, masked, ArrayRef<int64_t>{static_cast<int64_t>(second)}, false);
  }
}

/// Expands `x`'s size-1 dimensions to the sizes `sizes` gives their labels.
Value broadcastTo(NodeContext &c, const Labeled &x,
                  const std::map<Label, int64_t> &sizes) {
  ArrayRef<int64_t> shape = shapeOf(x.value);
  SmallVector<int64_t> want;
  bool differs = false;
  for (size_t d = 0; d < x.labels.size(); ++d) {
    want.push_back(sizes.at(x.labels[d]));
    differs |= want.back() != shape[d];
  }
  if (!differs)
    return x.value;
  Type f = cast<RankedTensorType>(x.value.getType()).getElementType();
  return c.createTyped<cg::ExpandOp>(RankedTensorType::get(want, f), x.value);
}

LogicalResult convertEinsum(NodeContext &c) {
  std::string equation = c.stringAttr("equation", "");
  equation.erase(std::remove(equation.begin(), equation.end(), ' '),
                 equation.end());
  if (equation.empty())
    return c.error() << "needs an 'equation' attribute";
  Type f = c.inputType(0).getElementType();
  for (unsigned i = 0; i < c.numInputs(); ++i) {
    if (c.inputType(i).getElementType() != f)
      return c.error() << "operands have different element types";
  }
  if (!isa<FloatType>(f))
    return c.error() << "needs floating-point operands, got " << f;
  StringRef eq(equation);
  auto [lhs, rhs] = eq.split("->");
  const bool explicitOutput = eq.contains("->");
  SmallVector<StringRef> termTexts;
  lhs.split(termTexts, ',');
  if (termTexts.size() != c.numInputs())
    return c.error() << "equation '" << equation << "' has " << termTexts.size()
                     << " input term(s) for " << c.numInputs() << " input(s)";

  // Labels per operand, the ellipsis expanded right-aligned.
  std::vector<Term> terms;
  int widest = 0;
  for (unsigned i = 0; i < c.numInputs(); ++i) {
    auto t = parseTerm(c, termTexts[i]);
    if (failed(t))
      return failure();
    const int64_t rank = c.inputType(i).getRank();
    const int64_t named = static_cast<int64_t>(t->letters.size());
    if (t->ellipsisAt < 0 ? rank != named : rank < named)
      return c.error() << "term '" << termTexts[i] << "' names " << named
                       << " dimension(s) of input " << i << ", which has rank "
                       << rank;
    if (t->ellipsisAt >= 0)
      widest = std::max<int>(widest, static_cast<int>(rank - named));
    terms.push_back(*t);
  }
  std::vector<Labeled> operands;
  std::map<Label, int64_t> sizes;
  for (unsigned i = 0; i < c.numInputs(); ++i) {
    const Term &t = terms[i];
    const int64_t rank = c.inputType(i).getRank();
    const int span = static_cast<int>(rank - t.letters.size());
    std::vector<Label> labels(t.letters.begin(), t.letters.end());
    if (t.ellipsisAt >= 0) {
      std::vector<Label> dots;
      for (int k = 0; k < span; ++k)
        dots.push_back(kEllipsis + widest - span + k);
      labels.insert(labels.begin() + t.ellipsisAt, dots.begin(), dots.end());
    }
    ArrayRef<int64_t> shape = c.inputType(i).getShape();
    for (size_t d = 0; d < labels.size(); ++d) {
      auto [it, fresh] = sizes.emplace(labels[d], shape[d]);
      if (!fresh && it->second != shape[d]) {
        if (it->second == 1)
          it->second = shape[d];
        else if (shape[d] != 1)
          return c.error() << "label '"
                           << (labels[d] < kEllipsis ? std::string(1, labels[d])
                                                     : std::string("..."))
                           << "' has sizes " << it->second << " and "
                           << shape[d];
      }
    }
    operands.push_back({c.value(i), labels});
  }

  // The output's labels.
  std::vector<Label> out;
  if (explicitOutput) {
    auto t = parseTerm(c, rhs);
    if (failed(t))
      return failure();
    std::vector<Label> dots;
    for (int k = 0; k < widest; ++k)
      dots.push_back(kEllipsis + k);
    out = t->letters;
    if (t->ellipsisAt >= 0)
      out.insert(out.begin() + t->ellipsisAt, dots.begin(), dots.end());
    else if (widest > 0)
      return c.error() << "the output term '" << rhs
                       << "' has no '...' though the inputs do";
    for (Label l : t->letters) {
      if (!sizes.count(l))
        return c.error() << "output label '" << static_cast<char>(l)
                         << "' is in no input";
      if (std::count(t->letters.begin(), t->letters.end(), l) > 1)
        return c.error() << "output label '" << static_cast<char>(l)
                         << "' appears twice";
    }
  } else {
    for (int k = 0; k < widest; ++k)
      out.push_back(kEllipsis + k);
    // std::map: the letters in ASCII order (upper case first, as numpy).
    for (auto &[l, size] : sizes) {
      if (l >= kEllipsis)
        continue;
      int inTerms = 0;
      for (const Term &t : terms)
        inTerms += std::count(t.letters.begin(), t.letters.end(), l);
      if (inTerms == 1)
        out.push_back(l);
    }
  }
  auto inOut = [&](Label l) {
    return std::find(out.begin(), out.end(), l) != out.end();
  };

  Chain e{c, f};
  for (Labeled &x : operands)
    x = diagonal(c, e, x);
  // Labels operands after `k` still read.
  auto neededAfter = [&](size_t k, Label l) {
    if (inOut(l))
      return true;
    for (size_t j = k + 1; j < operands.size(); ++j)
      if (std::count(operands[j].labels.begin(), operands[j].labels.end(), l))
        return true;
    return false;
  };
  auto has = [](const Labeled &x, Label l) {
    return std::count(x.labels.begin(), x.labels.end(), l) != 0;
  };
  Labeled cur =
      sumOut(e, operands[0], [&](Label l) { return neededAfter(0, l); });
  for (size_t k = 1; k < operands.size(); ++k) {
    Labeled b = operands[k];
    // What neither the other side nor anything later reads is summed first.
    cur =
        sumOut(e, cur, [&](Label l) { return has(b, l) || neededAfter(k, l); });
    b = sumOut(e, b, [&](Label l) { return has(cur, l) || neededAfter(k, l); });
    std::vector<Label> batch, left, contracted, right;
    for (Label l : cur.labels)
      (has(b, l) ? (neededAfter(k, l) ? batch : contracted) : left)
          .push_back(l);
    for (Label l : b.labels)
      if (!has(cur, l))
        right.push_back(l);
    cur.value = broadcastTo(c, cur, sizes);
    b.value = broadcastTo(c, b, sizes);
    auto product = [&](ArrayRef<Label> ls) {
      int64_t p = 1;
      for (Label l : ls)
        p *= sizes.at(l);
      return p;
    };
    std::vector<Label> aOrder = batch, bOrder = batch;
    aOrder.insert(aOrder.end(), left.begin(), left.end());
    aOrder.insert(aOrder.end(), contracted.begin(), contracted.end());
    bOrder.insert(bOrder.end(), contracted.begin(), contracted.end());
    bOrder.insert(bOrder.end(), right.begin(), right.end());
    const int64_t pb = product(batch), pl = product(left),
                  pc = product(contracted), pr = product(right);
    Value a = c.reshape(permute(e, cur, aOrder), {pb, pl, pc});
    Value bb = c.reshape(permute(e, b, bOrder), {pb, pc, pr});
    if (e.failed)
      return failure();
    Value m = e.make<cg::MatMulOp>(a, a, bb);
    std::vector<Label> labels = batch;
    labels.insert(labels.end(), left.begin(), left.end());
    labels.insert(labels.end(), right.begin(), right.end());
    SmallVector<int64_t> shape;
    for (Label l : labels)
      shape.push_back(sizes.at(l));
    if (e.failed)
      return failure();
    cur = {c.reshape(m, shape), labels};
  }
  cur = sumOut(e, cur, inOut);
  if (e.failed)
    return failure();
  Value result = permute(e, cur, out);
  return e.output(result);
}

} // namespace

void registerEinsumConverters(ConverterTable &t) {
  t["Einsum"] = {convertEinsum, 1, -1};
}

} // namespace mlir::colossal::onnx
