//===- ConvertTensor.cpp - Data movement and shape arithmetic -------------===//
//
// Reshape, Transpose, Slice, Concat, Split, Gather, (Un)Squeeze, Expand, and
// the ops exporters use to compute shapes: Shape, Size, Constant,
// ConstantOfShape, Range. Shape-valued inputs must fold to constants; with
// all dimensions bound they always do for exporter-generated graphs.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/ImportContext.h"

#include <cmath>

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::onnx;

namespace {

/// Builds a host tensor of `shape` whose element at each multi-index is the
/// element of `in` at the flat index `source(index)`.
HostTensor rearrange(const HostTensor &input, Shape shape,
                     function_ref<int64_t(ArrayRef<int64_t>)> source) {
  HostTensor in = input.expanded();
  HostTensor out;
  out.elementType = in.elementType;
  out.shape = shape;
  int64_t n = cg::numElements(shape);
  SmallVector<int64_t> index(shape.size(), 0);
  for (int64_t k = 0; k < n; ++k) {
    int64_t src = source(index);
    if (in.isFloat())
      out.floats.push_back(in.floats[src]);
    else
      out.ints.push_back(in.ints[src]);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++index[d] < shape[d])
        break;
      index[d] = 0;
    }
  }
  return out;
}

SmallVector<int64_t> stridesOf(ArrayRef<int64_t> shape) {
  SmallVector<int64_t> strides(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;)
    strides[d - 1] = strides[d] * shape[d];
  return strides;
}

bool foldable(const HostTensor *t) {
  return t && (t->splat || t->size() <= kMaxFoldElements);
}

/// Sets output 0 to `input` reshaped, folding constants.
LogicalResult setReshaped(NodeContext &c, unsigned input, Shape shape) {
  if (cg::numElements(shape) != cg::numElements(c.inputType(input).getShape()))
    return c.error() << "cannot reshape " << c.inputType(input) << " to ["
                     << llvm::make_range(shape.begin(), shape.end()) << "]";
  if (const HostTensor *t = c.constant(input)) {
    HostTensor r = *t;
    r.shape = shape;
    c.setConstantOutput(0, std::move(r));
    return success();
  }
  c.setOutput(0, c.reshape(c.value(input), shape));
  return success();
}

LogicalResult convertReshape(NodeContext &c) {
  auto target = c.constantInts(1, "the target shape");
  if (failed(target))
    return failure();
  auto in = c.inputType(0);
  bool allowZero = c.intAttr("allowzero", 0) != 0;
  Shape shape;
  int inferred = -1;
  for (auto [i, d] : llvm::enumerate(*target)) {
    if (d == 0 && !allowZero) {
      if (static_cast<int64_t>(i) >= in.getRank())
        return c.error() << "target dimension " << i
                         << " is 0 (copy) but the input has rank "
                         << in.getRank();
      shape.push_back(in.getDimSize(i));
    } else if (d == -1) {
      if (inferred >= 0)
        return c.error() << "the target shape has more than one -1";
      inferred = i;
      shape.push_back(1);
    } else if (d < 0) {
      return c.error() << "target dimension " << i << " is " << d;
    } else {
      shape.push_back(d);
    }
  }
  int64_t total = cg::numElements(in.getShape());
  if (inferred >= 0) {
    int64_t known = cg::numElements(shape);
    if (known == 0 || total % known != 0)
      return c.error() << "cannot infer the -1 dimension: " << total
                       << " elements do not divide by " << known;
    shape[inferred] = total / known;
  }
  return setReshaped(c, 0, shape);
}

LogicalResult convertTranspose(NodeContext &c) {
  auto in = c.inputType(0);
  std::vector<int64_t> perm = c.intsAttr("perm");
  if (perm.empty())
    for (int64_t d = in.getRank(); d-- > 0;)
      perm.push_back(d);
  const HostTensor *t = c.constant(0);
  if (foldable(t) && static_cast<int64_t>(perm.size()) == in.getRank()) {
    Shape shape;
    for (int64_t p : perm) {
      if (p < 0 || p >= in.getRank())
        return c.error() << "perm is not a permutation";
      shape.push_back(in.getDimSize(p));
    }
    auto strides = stridesOf(in.getShape());
    c.setConstantOutput(0, rearrange(*t, shape, [&](ArrayRef<int64_t> idx) {
                          int64_t src = 0;
                          for (size_t d = 0; d < idx.size(); ++d)
                            src += idx[d] * strides[perm[d]];
                          return src;
                        }));
    return success();
  }
  auto result = c.create<cg::TransposeOp>(c.value(0), ArrayRef<int64_t>(perm));
  if (failed(result))
    return failure();
  c.setOutput(0, *result);
  return success();
}

LogicalResult convertSlice(NodeContext &c) {
  auto in = c.inputType(0);
  int64_t rank = in.getRank();
  auto starts = c.constantInts(1, "starts");
  if (failed(starts))
    return failure();
  auto ends = c.constantInts(2, "ends");
  if (failed(ends))
    return failure();
  std::vector<int64_t> axes, steps;
  if (c.hasInput(3)) {
    auto v = c.constantInts(3, "axes");
    if (failed(v))
      return failure();
    axes = *v;
  } else {
    for (size_t i = 0; i < starts->size(); ++i)
      axes.push_back(i);
  }
  if (c.hasInput(4)) {
    auto v = c.constantInts(4, "steps");
    if (failed(v))
      return failure();
    steps = *v;
  } else {
    steps.assign(starts->size(), 1);
  }
  if (ends->size() != starts->size() || axes.size() != starts->size() ||
      steps.size() != starts->size())
    return c.error() << "starts, ends, axes and steps differ in length";
  SmallVector<int64_t> lo(rank, 0), hi(in.getShape()), st(rank, 1);
  SmallVector<bool> seen(rank, false);
  for (size_t i = 0; i < axes.size(); ++i) {
    auto axis = cg::normalizeAxis(axes[i], rank);
    if (!axis || seen[*axis])
      return c.error() << "axis " << axes[i] << " is out of range or repeated";
    seen[*axis] = true;
    int64_t dim = in.getDimSize(*axis), step = steps[i];
    if (step == 0)
      return c.error() << "steps must not be 0";
    // ONNX semantics: negative indices count from the end, then clamp.
    auto norm = [&](int64_t v) {
      return v < 0
                 ? (v < -dim ? (v == INT64_MIN ? -dim - 1 : v + dim) : v + dim)
                 : v;
    };
    int64_t s = norm((*starts)[i]), e = norm((*ends)[i]);
    if (step > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
    } else {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
    }
    lo[*axis] = s;
    hi[*axis] = e;
    st[*axis] = step;
  }
  const HostTensor *t = c.constant(0);
  if (foldable(t)) {
    Shape shape;
    for (int64_t d = 0; d < rank; ++d)
      shape.push_back(cg::sliceLength(lo[d], hi[d], st[d]));
    auto strides = stridesOf(in.getShape());
    c.setConstantOutput(0, rearrange(*t, shape, [&](ArrayRef<int64_t> idx) {
                          int64_t src = 0;
                          for (size_t d = 0; d < idx.size(); ++d)
                            src += (lo[d] + idx[d] * st[d]) * strides[d];
                          return src;
                        }));
    return success();
  }
  auto result =
      c.create<cg::SliceOp>(c.value(0), ArrayRef<int64_t>(lo),
                            ArrayRef<int64_t>(hi), ArrayRef<int64_t>(st));
  if (failed(result))
    return failure();
  c.setOutput(0, *result);
  return success();
}

LogicalResult convertConcat(NodeContext &c) {
  if (c.numInputs() == 0)
    return c.error() << "needs at least one input";
  int64_t rank = c.inputType(0).getRank();
  auto axis = c.axisAttr("axis", 0, rank);
  if (failed(axis))
    return failure();
  bool allConstant = true;
  Type element = c.inputType(0).getElementType();
  for (unsigned i = 0; i < c.numInputs(); ++i) {
    if (!c.hasInput(i))
      return c.error() << "input " << i << " is missing";
    if (c.inputType(i).getElementType() != element)
      return c.error() << "inputs differ in element type";
    allConstant &= foldable(c.constant(i));
  }
  if (allConstant) {
    // Concatenate row-major blocks: outer = dims before the axis.
    int64_t outer =
        cg::numElements(c.inputType(0).getShape().take_front(*axis));
    Shape shape(c.inputType(0).getShape());
    shape[*axis] = 0;
    for (unsigned i = 0; i < c.numInputs(); ++i) {
      if (c.inputType(i).getRank() != rank)
        return c.error() << "inputs differ in rank";
      shape[*axis] += c.inputType(i).getDimSize(*axis);
    }
    HostTensor out;
    out.elementType = element;
    out.shape = shape;
    for (int64_t o = 0; o < outer; ++o)
      for (unsigned i = 0; i < c.numInputs(); ++i) {
        HostTensor t = c.constant(i)->expanded();
        int64_t block = t.size() / std::max<int64_t>(outer, 1);
        for (int64_t k = 0; k < block; ++k) {
          if (t.isFloat())
            out.floats.push_back(t.floats[o * block + k]);
          else
            out.ints.push_back(t.ints[o * block + k]);
        }
      }
    c.setConstantOutput(0, std::move(out));
    return success();
  }
  SmallVector<Value> inputs;
  for (unsigned i = 0; i < c.numInputs(); ++i)
    inputs.push_back(c.value(i));
  auto result = c.create<cg::ConcatOp>(inputs, *axis);
  if (failed(result))
    return failure();
  c.setOutput(0, *result);
  return success();
}

LogicalResult convertSplit(NodeContext &c) {
  auto in = c.inputType(0);
  auto axis = c.axisAttr("axis", 0, in.getRank());
  if (failed(axis))
    return failure();
  int64_t dim = in.getDimSize(*axis);
  std::vector<int64_t> sizes;
  if (c.hasInput(1)) {
    auto v = c.constantInts(1, "split");
    if (failed(v))
      return failure();
    sizes = *v;
  } else if (c.opset() < 13 && c.attr("split")) {
    sizes = c.intsAttr("split");
  } else {
    int64_t parts = c.opset() >= 18 && c.attr("num_outputs")
                        ? c.intAttr("num_outputs", 1)
                        : c.numOutputs();
    if (parts <= 0)
      return c.error() << "cannot split into " << parts << " parts";
    int64_t chunk = (dim + parts - 1) / parts;
    if (c.opset() < 18 && dim % parts != 0)
      return c.error() << "dimension " << dim << " does not split evenly into "
                       << parts << " parts";
    for (int64_t p = 0, left = dim; p < parts; ++p, left -= chunk)
      sizes.push_back(std::min(chunk, std::max<int64_t>(left, 0)));
  }
  if (sizes.size() != c.numOutputs())
    return c.error() << sizes.size() << " split sizes for " << c.numOutputs()
                     << " outputs";
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0)
      return c.error() << "split sizes must not be negative";
    total += s;
  }
  if (total != dim)
    return c.error() << "split sizes add up to " << total << ", not " << dim;
  SmallVector<Type> types;
  for (int64_t s : sizes) {
    Shape shape(in.getShape());
    shape[*axis] = s;
    types.push_back(RankedTensorType::get(shape, in.getElementType()));
  }
  auto op =
      c.builder().create<cg::SplitOp>(c.loc(), types, c.value(0), *axis, sizes);
  for (unsigned o = 0; o < op.getNumResults(); ++o)
    c.setOutput(o, op.getResult(o));
  return success();
}

LogicalResult convertGather(NodeContext &c) {
  auto data = c.inputType(0), indices = c.inputType(1);
  if (!indices.getElementType().isInteger(64) &&
      !indices.getElementType().isInteger(32))
    return c.error() << "indices must be int64 or int32";
  auto axis = c.axisAttr("axis", 0, data.getRank());
  if (failed(axis))
    return failure();
  int64_t dim = data.getDimSize(*axis);
  const HostTensor *d = c.constant(0), *i = c.constant(1);
  if (i) {
    for (int64_t v : i->toInts())
      if (v < -dim || v >= dim)
        return c.error() << "index " << v << " is out of range for dimension "
                         << *axis << " of size " << dim;
  }
  if (foldable(d) && foldable(i)) {
    Shape shape(data.getShape().take_front(*axis));
    shape.append(indices.getShape().begin(), indices.getShape().end());
    shape.append(data.getShape().begin() + *axis + 1, data.getShape().end());
    auto strides = stridesOf(data.getShape());
    std::vector<int64_t> idx = i->toInts();
    int64_t ir = indices.getRank();
    auto idxStrides = stridesOf(indices.getShape());
    c.setConstantOutput(0, rearrange(*d, shape, [&](ArrayRef<int64_t> o) {
                          int64_t flatIndex = 0;
                          for (int64_t k = 0; k < ir; ++k)
                            flatIndex += o[*axis + k] * idxStrides[k];
                          int64_t v = idx[flatIndex];
                          if (v < 0)
                            v += dim;
                          int64_t src = v * strides[*axis];
                          for (int64_t k = 0; k < static_cast<int64_t>(*axis);
                               ++k)
                            src += o[k] * strides[k];
                          for (int64_t k = *axis + 1; k < data.getRank(); ++k)
                            src += o[k + ir - 1] * strides[k];
                          return src;
                        }));
    return success();
  }
  auto result = c.create<cg::GatherOp>(c.value(0), c.value(1), *axis);
  if (failed(result))
    return failure();
  c.setOutput(0, *result);
  return success();
}

FailureOr<std::vector<int64_t>> axesOf(NodeContext &c, bool required) {
  if (c.opset() >= 13) {
    if (!c.hasInput(1)) {
      if (required)
        return static_cast<LogicalResult>(c.error() << "needs axes");
      return std::vector<int64_t>{};
    }
    return c.constantInts(1, "axes");
  }
  return c.intsAttr("axes");
}

LogicalResult convertUnsqueeze(NodeContext &c) {
  auto axes = axesOf(c, true);
  if (failed(axes))
    return failure();
  auto in = c.inputType(0);
  int64_t rank = in.getRank() + axes->size();
  SmallVector<bool> inserted(rank, false);
  for (int64_t a : *axes) {
    auto n = cg::normalizeAxis(a, rank);
    if (!n || inserted[*n])
      return c.error() << "axis " << a << " is out of range or repeated";
    inserted[*n] = true;
  }
  Shape shape;
  for (int64_t d = 0, k = 0; d < rank; ++d)
    shape.push_back(inserted[d] ? 1 : in.getDimSize(k++));
  return setReshaped(c, 0, shape);
}

LogicalResult convertSqueeze(NodeContext &c) {
  auto axes = axesOf(c, false);
  if (failed(axes))
    return failure();
  auto in = c.inputType(0);
  SmallVector<bool> removed(in.getRank(), false);
  if (axes->empty()) {
    for (int64_t d = 0; d < in.getRank(); ++d)
      removed[d] = in.getDimSize(d) == 1;
  }
  for (int64_t a : *axes) {
    auto n = cg::normalizeAxis(a, in.getRank());
    if (!n)
      return c.error() << "axis " << a << " is out of range";
    if (in.getDimSize(*n) != 1)
      return c.error() << "cannot squeeze dimension " << *n << " of size "
                       << in.getDimSize(*n);
    removed[*n] = true;
  }
  Shape shape;
  for (int64_t d = 0; d < in.getRank(); ++d)
    if (!removed[d])
      shape.push_back(in.getDimSize(d));
  return setReshaped(c, 0, shape);
}

LogicalResult convertExpand(NodeContext &c) {
  auto target = c.constantInts(1, "the target shape");
  if (failed(target))
    return failure();
  auto in = c.inputType(0);
  auto shape = cg::broadcastShapes(in.getShape(), *target);
  if (!shape)
    return c.error() << "cannot broadcast " << in << " to ["
                     << llvm::make_range(target->begin(), target->end()) << "]";
  const HostTensor *t = c.constant(0);
  if (t && (t->splat || t->size() == 1)) {
    HostTensor r = *t;
    r.shape = *shape;
    r.splat = cg::numElements(*shape) != 1;
    c.setConstantOutput(0, std::move(r));
    return success();
  }
  if (t && cg::numElements(*shape) <= kMaxFoldElements) {
    auto strides = stridesOf(in.getShape());
    size_t offset = shape->size() - in.getRank();
    c.setConstantOutput(0, rearrange(*t, *shape, [&](ArrayRef<int64_t> o) {
                          int64_t src = 0;
                          for (int64_t d = 0; d < in.getRank(); ++d)
                            if (in.getDimSize(d) != 1)
                              src += o[d + offset] * strides[d];
                          return src;
                        }));
    return success();
  }
  if (ArrayRef<int64_t>(*shape) == in.getShape()) {
    c.setOutput(0, c.value(0));
    return success();
  }
  c.setOutput(
      0, c.createTyped<cg::ExpandOp>(
             RankedTensorType::get(*shape, in.getElementType()), c.value(0)));
  return success();
}

/// Pad in constant mode: negative pads crop (a slice), positive ones add
/// blocks of the constant (a concat), one axis at a time, so the gradient
/// follows from slice and concat.
LogicalResult convertPad(NodeContext &c) {
  std::string mode = c.stringAttr("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" &&
      mode != "wrap")
    return c.error() << "mode '" << mode
                     << "' is not a padding mode (constant, reflect, edge, "
                        "wrap)";
  RankedTensorType in = c.inputType(0);
  int64_t rank = in.getRank();
  if (!c.hasInput(1))
    return c.error() << "needs its pads input";
  auto pads = c.constantInts(1, "pads");
  if (failed(pads))
    return failure();
  std::vector<int64_t> axes;
  if (c.hasInput(3)) {
    auto given = c.constantInts(3, "axes");
    if (failed(given))
      return failure();
    for (int64_t g : *given) {
      auto a = cg::normalizeAxis(g, rank);
      if (!a)
        return c.error() << "axis " << g << " is out of range";
      axes.push_back(*a);
    }
  } else {
    for (int64_t d = 0; d < rank; ++d)
      axes.push_back(d);
  }
  int64_t n = static_cast<int64_t>(axes.size());
  if (static_cast<int64_t>(pads->size()) != 2 * n)
    return c.error() << "pads has " << pads->size() << " values; " << 2 * n
                     << " expected (begins, then ends)";
  Type element = in.getElementType();
  double fill = 0;
  if (c.hasInput(2)) {
    const HostTensor *v = c.constant(2);
    if (!v)
      return c.error() << "constant_value (input 2, '" << c.node().input(2)
                       << "') must be known at compile time; give it with "
                          "--const-input NAME=v";
    fill = v->floatAt(0);
  }
  Value cur = c.value(0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t d = axes[i], begin = (*pads)[i], end = (*pads)[i + n];
    auto type = cast<RankedTensorType>(cur.getType());
    if (begin < 0 || end < 0) {
      SmallVector<int64_t> lo(rank, 0), hi(type.getShape()), st(rank, 1);
      lo[d] = std::max<int64_t>(0, -begin);
      hi[d] = type.getDimSize(d) - std::max<int64_t>(0, -end);
      if (hi[d] < lo[d])
        return c.error() << "pads crop more than axis " << d << " holds";
      auto sliced =
          c.create<cg::SliceOp>(cur, ArrayRef<int64_t>(lo),
                                ArrayRef<int64_t>(hi), ArrayRef<int64_t>(st));
      if (failed(sliced))
        return failure();
      cur = *sliced;
      type = cast<RankedTensorType>(cur.getType());
    }
    SmallVector<Value> parts;
    auto block = [&](int64_t size) {
      SmallVector<int64_t> shape(type.getShape());
      shape[d] = size;
      auto scalar = RankedTensorType::get({}, element);
      Attribute value = isa<FloatType>(element)
                            ? Attribute(c.builder().getFloatAttr(element, fill))
                            : Attribute(c.builder().getIntegerAttr(
                                  element, static_cast<int64_t>(fill)));
      Value s = c.builder().create<cg::ConstantOp>(
          c.loc(), DenseElementsAttr::get(scalar, value));
      return c.createTyped<cg::ExpandOp>(RankedTensorType::get(shape, element),
                                         s);
    };
    // reflect, edge and wrap: pieces of the axis itself (reflect: mirrored
    // without the edge element; edge: the edge element repeated; wrap: the
    // other end).
    int64_t size = type.getDimSize(d);
    auto piece = [&](int64_t start, int64_t limit, int64_t step,
                     int64_t repeat) -> FailureOr<Value> {
      SmallVector<int64_t> lo(rank, 0), hi(type.getShape()), st(rank, 1);
      lo[d] = start;
      hi[d] = limit;
      st[d] = step;
      auto sliced =
          c.create<cg::SliceOp>(cur, ArrayRef<int64_t>(lo),
                                ArrayRef<int64_t>(hi), ArrayRef<int64_t>(st));
      if (failed(sliced) || repeat == 1)
        return sliced;
      SmallVector<int64_t> shape(type.getShape());
      shape[d] = repeat;
      return c.createTyped<cg::ExpandOp>(RankedTensorType::get(shape, element),
                                         *sliced);
    };
    auto side = [&](int64_t count, bool front) -> FailureOr<Value> {
      if (mode == "constant")
        return block(count);
      if (size == 0)
        return static_cast<LogicalResult>(c.error()
                                          << "cannot pad an empty axis " << d
                                          << " in mode '" << mode << "'");
      if (mode == "edge")
        return front ? piece(0, 1, 1, count) : piece(size - 1, size, 1, count);
      if (mode == "reflect") {
        if (count > size - 1)
          return static_cast<LogicalResult>(
              c.error() << "reflect padding of " << count << " on axis " << d
                        << " needs at least " << count + 1
                        << " elements there, it has " << size);
        return front ? piece(count, 0, -1, 1)
                     : piece(size - 2, size - 2 - count, -1, 1);
      }
      if (count > size) // wrap
        return static_cast<LogicalResult>(
            c.error() << "wrap padding of " << count << " on axis " << d
                      << " is more than its " << size << " elements");
      return front ? piece(size - count, size, 1, 1) : piece(0, count, 1, 1);
    };
    if (begin > 0) {
      auto front = side(begin, true);
      if (failed(front))
        return failure();
      parts.push_back(*front);
    }
    parts.push_back(cur);
    if (end > 0) {
      auto back = side(end, false);
      if (failed(back))
        return failure();
      parts.push_back(*back);
    }
    if (parts.size() > 1) {
      auto joined = c.create<cg::ConcatOp>(parts, d);
      if (failed(joined))
        return failure();
      cur = *joined;
    }
  }
  c.setOutput(0, cur);
  return success();
}

/// CumSum (floats): a product with a triangular matrix of ones over the
/// summed axis (moved last and back): inclusive or exclusive, forward or
/// reverse. Differentiable through the matmul.
LogicalResult convertCumSum(NodeContext &c) {
  auto type = c.inputType(0);
  Type f = type.getElementType();
  if (!isa<FloatType>(f))
    return c.error() << "is supported on floating-point tensors only";
  auto axisValue = c.constantInts(1, "axis");
  if (failed(axisValue))
    return failure();
  if (axisValue->size() != 1)
    return c.error() << "axis must be a scalar";
  int64_t rank = type.getRank(), axis = (*axisValue)[0];
  if (axis < -rank || axis >= rank)
    return c.error() << "axis " << axis << " is out of range for rank " << rank;
  if (axis < 0)
    axis += rank;
  bool exclusive = c.intAttr("exclusive", 0) != 0;
  bool reverse = c.intAttr("reverse", 0) != 0;
  int64_t n = type.getDimSize(axis);
  // y[j] = sum_i x[i] * T[i][j]: T[i][j] = 1 where i <= j (forward) or
  // i >= j (reverse), strictly for exclusive.
  std::vector<float> ones(n * n, 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      bool keep =
          reverse ? (exclusive ? i > j : i >= j) : (exclusive ? i < j : i <= j);
      ones[i * n + j] = keep ? 1.0f : 0.0f;
    }
  auto tt = RankedTensorType::get({n, n}, c.builder().getF32Type());
  Value tri = c.builder().create<cg::ConstantOp>(
      c.loc(), DenseElementsAttr::get(tt, ArrayRef<float>(ones)));
  if (!f.isF32())
    tri = c.createTyped<cg::CastOp>(RankedTensorType::get({n, n}, f), tri);
  SmallVector<int64_t> perm;
  for (int64_t d = 0; d < rank; ++d)
    if (d != axis)
      perm.push_back(d);
  perm.push_back(axis);
  bool moved = axis != rank - 1;
  Value x = c.value(0);
  if (moved) {
    auto t = c.create<cg::TransposeOp>(x, ArrayRef<int64_t>(perm));
    if (failed(t))
      return failure();
    x = *t;
  }
  auto y = c.create<cg::MatMulOp>(x, tri);
  if (failed(y))
    return failure();
  Value out = *y;
  if (moved) {
    SmallVector<int64_t> back(rank);
    for (int64_t d = 0; d < rank; ++d)
      back[perm[d]] = d;
    auto t = c.create<cg::TransposeOp>(out, ArrayRef<int64_t>(back));
    if (failed(t))
      return failure();
    out = *t;
  }
  c.setOutput(0, out);
  return success();
}

/// OneHot: where(indices (negative ones wrapped by depth, expanded at
/// `axis`) == 0 .. depth-1, on, off). Depth and values must be constants.
LogicalResult convertOneHot(NodeContext &c) {
  auto depths = c.constantInts(1, "depth");
  if (failed(depths))
    return failure();
  if (depths->size() != 1)
    return c.error() << "depth must be a scalar";
  const HostTensor *values = c.constant(2);
  if (!values)
    return c.error() << "values (input 2, '" << c.node().input(2)
                     << "') must be known at compile time; if it is a graph "
                        "input whose value you know, give it with "
                        "--const-input NAME=off,on";
  if (values->size() != 2)
    return c.error() << "values must hold [off, on]";
  int64_t depth = (*depths)[0];
  if (depth < 1)
    return c.error() << "depth " << depth << " must be positive";
  auto idxType = c.inputType(0);
  int64_t rank = idxType.getRank();
  int64_t axis = c.intAttr("axis", -1);
  if (axis < -(rank + 1) || axis > rank)
    return c.error() << "axis " << axis << " is out of range for rank "
                     << rank + 1;
  if (axis < 0)
    axis += rank + 1;
  // Indices as int64 (ONNX allows any numeric type; floats truncate).
  Value idx = c.value(0);
  Type i64 = c.builder().getI64Type();
  if (idxType.getElementType() != i64)
    idx = c.createTyped<cg::CastOp>(
        RankedTensorType::get(idxType.getShape(), i64), idx);
  auto negative =
      c.create<cg::CmpOp>(cg::CmpPredicate::lt, idx, c.scalar(0, i64));
  auto wrapped = c.create<cg::AddOp>(idx, c.scalar(depth, i64));
  if (failed(negative) || failed(wrapped))
    return failure();
  auto fixed = c.create<cg::WhereOp>(*negative, *wrapped, idx);
  if (failed(fixed))
    return failure();
  SmallVector<int64_t> expanded(idxType.getShape());
  expanded.insert(expanded.begin() + axis, 1);
  Value column = c.reshape(*fixed, expanded);
  SmallVector<int64_t> iotaShape(rank + 1, 1);
  iotaShape[axis] = depth;
  std::vector<int64_t> iota(depth);
  for (int64_t k = 0; k < depth; ++k)
    iota[k] = k;
  auto iotaType = RankedTensorType::get(iotaShape, i64);
  Value positions = c.builder().create<cg::ConstantOp>(
      c.loc(), DenseElementsAttr::get(iotaType, ArrayRef<int64_t>(iota)));
  auto hit = c.create<cg::CmpOp>(cg::CmpPredicate::eq, column, positions);
  if (failed(hit))
    return failure();
  Type out = values->elementType;
  auto y = c.create<cg::WhereOp>(*hit, c.scalar(values->floatAt(1), out),
                                 c.scalar(values->floatAt(0), out));
  if (failed(y))
    return failure();
  c.setOutput(0, *y);
  return success();
}

/// Tile: along each axis with repeats r > 1, r copies concatenated.
LogicalResult convertTile(NodeContext &c) {
  auto repeats = c.constantInts(1, "repeats");
  if (failed(repeats))
    return failure();
  int64_t rank = c.inputType(0).getRank();
  if (static_cast<int64_t>(repeats->size()) != rank)
    return c.error() << "repeats has " << repeats->size()
                     << " entries for an input of rank " << rank;
  Value cur = c.value(0);
  for (int64_t d = 0; d < rank; ++d) {
    int64_t r = (*repeats)[d];
    if (r < 1)
      return c.error() << "repeats[" << d << "] = " << r
                       << " is not supported (zero-sized results)";
    if (r == 1)
      continue;
    SmallVector<Value> parts(r, cur);
    auto joined = c.create<cg::ConcatOp>(parts, d);
    if (failed(joined))
      return failure();
    cur = *joined;
  }
  c.setOutput(0, cur);
  return success();
}

LogicalResult convertShape(NodeContext &c) {
  ArrayRef<int64_t> dims = c.inputType(0).getShape();
  int64_t rank = dims.size();
  int64_t start = c.intAttr("start", 0), end = c.intAttr("end", rank);
  auto clampIndex = [&](int64_t v) {
    if (v < 0)
      v += rank;
    return std::clamp<int64_t>(v, 0, rank);
  };
  start = clampIndex(start);
  end = clampIndex(end);
  std::vector<int64_t> values;
  for (int64_t d = start; d < end; ++d)
    values.push_back(dims[d]);
  int64_t n = values.size();
  c.setConstantOutput(
      0, HostTensor::ofInts(c.builder().getI64Type(), {n}, std::move(values)));
  return success();
}

LogicalResult convertSize(NodeContext &c) {
  c.setConstantOutput(
      0, HostTensor::ofInts(c.builder().getI64Type(), {},
                            {cg::numElements(c.inputType(0).getShape())}));
  return success();
}

LogicalResult convertConstantOfShape(NodeContext &c) {
  auto shapeValues = c.constantInts(0, "the shape");
  if (failed(shapeValues))
    return failure();
  Shape shape(shapeValues->begin(), shapeValues->end());
  for (int64_t d : shape)
    if (d < 0)
      return c.error() << "negative dimension " << d;
  HostTensor fill = HostTensor::ofFloats(c.builder().getF32Type(), {}, {0.0});
  if (const auto *a = c.attr("value")) {
    std::string message;
    auto t = hostTensorFromProto(c.context(), a->t(), message);
    if (failed(t))
      return c.error() << "value: " << message;
    if (t->size() != 1)
      return c.error() << "value must hold one element";
    fill = *t;
  }
  fill.shape = shape;
  fill.splat = cg::numElements(shape) != 1;
  c.setConstantOutput(0, std::move(fill));
  return success();
}

LogicalResult convertRange(NodeContext &c) {
  const HostTensor *start = c.constant(0), *limit = c.constant(1),
                   *delta = c.constant(2);
  if (!start || !limit || !delta)
    return c.error() << "start, limit and delta must be known at compile "
                        "time; bind all symbolic dimensions";
  Type element = c.inputType(0).getElementType();
  double s = start->floatAt(0), l = limit->floatAt(0), d = delta->floatAt(0);
  if (d == 0)
    return c.error() << "delta must not be 0";
  int64_t n =
      std::max<int64_t>(static_cast<int64_t>(std::ceil((l - s) / d)), 0);
  if (n > kMaxFoldElements * 64)
    return c.error() << "range of " << n << " elements is too large";
  std::vector<double> values;
  for (int64_t k = 0; k < n; ++k)
    values.push_back(s + k * d);
  c.setConstantOutput(0, HostTensor::ofFloats(element, {n}, std::move(values)));
  return success();
}

LogicalResult convertConstant(NodeContext &c) {
  Type f32 = c.builder().getF32Type(), i64 = c.builder().getI64Type();
  if (const auto *a = c.attr("value")) {
    std::string message;
    auto t = hostTensorFromProto(c.context(), a->t(), message);
    if (failed(t))
      return c.error() << "value: " << message;
    c.setConstantOutput(0, std::move(*t));
  } else if (const auto *a = c.attr("value_float")) {
    c.setConstantOutput(0, HostTensor::ofFloats(f32, {}, {a->f()}));
  } else if (const auto *a = c.attr("value_floats")) {
    std::vector<double> v(a->floats().begin(), a->floats().end());
    int64_t n = v.size();
    c.setConstantOutput(0, HostTensor::ofFloats(f32, {n}, std::move(v)));
  } else if (const auto *a = c.attr("value_int")) {
    c.setConstantOutput(0, HostTensor::ofInts(i64, {}, {a->i()}));
  } else if (const auto *a = c.attr("value_ints")) {
    std::vector<int64_t> v(a->ints().begin(), a->ints().end());
    int64_t n = v.size();
    c.setConstantOutput(0, HostTensor::ofInts(i64, {n}, std::move(v)));
  } else {
    return c.error() << "only value, value_float(s) and value_int(s) "
                        "constants are supported";
  }
  return success();
}

} // namespace

void mlir::colossal::onnx::registerTensorConverters(ConverterTable &t) {
  t["Reshape"] = {convertReshape, 2, 2};
  t["Transpose"] = {convertTranspose, 1, 1};
  t["Slice"] = {convertSlice, 3, 5};
  t["Concat"] = {convertConcat, 1, -1};
  t["Split"] = {convertSplit, 1, 2};
  t["Gather"] = {convertGather, 2, 2};
  t["Unsqueeze"] = {convertUnsqueeze, 1, 2};
  t["Squeeze"] = {convertSqueeze, 1, 2};
  t["Expand"] = {convertExpand, 2, 2};
  t["Pad"] = {convertPad, 2, 4};
  t["Shape"] = {convertShape, 1, 1};
  t["Size"] = {convertSize, 1, 1};
  t["ConstantOfShape"] = {convertConstantOfShape, 1, 1};
  t["Range"] = {convertRange, 3, 3};
  t["Tile"] = {convertTile, 2, 2};
  t["CumSum"] = {convertCumSum, 2, 2};
  t["OneHot"] = {convertOneHot, 3, 3};
  t["Constant"] = {convertConstant, 0, 0};
}
