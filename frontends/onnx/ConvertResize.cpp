//===- ConvertResize.cpp - Resize as per-axis gathers and products --------===//
//
// Every Resize mode is separable: the output is the input resized along one
// axis at a time, the last axis first (as the ONNX reference interpolates),
// and each axis is a linear map fixed at import time. So:
//   nearest         a gather of constant indices along the axis (exact, any
//                   dtype);
//   linear, cubic   a product with a constant matrix W[in, out] along the
//                   axis (antialiased filters too), in the input's float
//                   type;
// with tf_crop_and_resize's extrapolated positions a zero column of W (or a
// select, for nearest) plus the extrapolation value. W is computed exactly
// as onnx/reference/ops/op_resize.py does: the coordinate transformation,
// the neighbours of an edge-padded axis, exclude_outside's
// renormalization, keep_aspect_ratio_policy and axes. Differentiable, since
// it is made of gather, matmul and elementwise ops.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/ImportContext.h"

#include <algorithm>
#include <cmath>

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::onnx;

namespace {

/// One resized axis: how output position x reads the input.
struct AxisMap {
  int64_t in = 0, out = 0;
  // weights[x] = {(input index, coefficient)}; extrapolated[x]: the output
  // is the extrapolation value there.
  std::vector<std::vector<std::pair<int64_t, double>>> weights;
  std::vector<bool> extrapolated;

  bool identity() const {
    if (in != out)
      return false;
    for (int64_t x = 0; x < out; ++x)
      if (extrapolated[x] || weights[x].size() != 1 ||
          weights[x][0].first != x || weights[x][0].second != 1.0)
        return false;
    return true;
  }
  bool anyExtrapolated() const {
    return std::find(extrapolated.begin(), extrapolated.end(), true) !=
           extrapolated.end();
  }
};

struct ResizeAttrs {
  std::string mode, transform, nearestMode;
  double cubicA = -0.75, extrapolation = 0;
  bool excludeOutside = false, antialias = false;
};

/// The filter taps around a position whose fractional part is `ratio`.
std::vector<double> coefficients(const ResizeAttrs &a, double ratio,
                                 double scale) {
  if (a.mode == "nearest") {
    if (ratio == 1.0 || ratio == std::floor(ratio))
      return {0, 1};
    if (a.nearestMode == "round_prefer_ceil")
      return {double(ratio < 0.5), double(ratio >= 0.5)};
    if (a.nearestMode == "floor")
      return {1, 0};
    if (a.nearestMode == "ceil")
      return {0, 1};
    return {double(ratio <= 0.5), double(ratio > 0.5)}; // round_prefer_floor
  }
  const double A = a.cubicA;
  if (a.mode == "linear" && !a.antialias)
    return {1 - ratio, ratio};
  if (a.mode == "linear") {
    const double s = std::min(scale, 1.0);
    const int64_t start = static_cast<int64_t>(std::floor(-1 / s) + 1);
    const int64_t footprint = 2 - 2 * start;
    std::vector<double> c;
    double sum = 0;
    for (int64_t i = start; i < start + footprint; ++i) {
      c.push_back(std::clamp(1 - std::fabs((double(i) - ratio) * s), 0.0, 1.0));
      sum += c.back();
    }
    for (double &v : c)
      v /= sum;
    return c;
  }
  if (!a.antialias) {
    const double r = ratio;
    return {((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A,
            ((A + 2) * r - (A + 3)) * r * r + 1,
            ((A + 2) * (1 - r) - (A + 3)) * (1 - r) * (1 - r) + 1,
            ((A * ((1 - r) + 1) - 5 * A) * ((1 - r) + 1) + 8 * A) *
                    ((1 - r) + 1) -
                4 * A};
  }
  const double s = std::min(scale, 1.0);
  auto coeff = [&](double x) {
    x = std::fabs(x);
    const double x2 = x * x, x3 = x * x2;
    if (x <= 1)
      return (A + 2) * x3 - (A + 3) * x2 + 1;
    if (x < 2)
      return A * x3 - 5 * A * x2 + 8 * A * x - 4 * A;
    return 0.0;
  };
  const int64_t start = static_cast<int64_t>(std::floor(-2 / s) + 1);
  const int64_t end = 2 - start;
  std::vector<double> c;
  double sum = 0;
  for (int64_t i = start; i < end; ++i) {
    c.push_back(coeff(s * (double(i) - ratio)));
    sum += c.back();
  }
  for (double &v : c)
    v /= sum;
  return c;
}

/// The `n` indices of [0, limit) nearest to `x`, smaller first on ties, in
/// ascending order (the reference's _get_neighbor_idxes).
std::vector<int64_t> neighbours(double x, int64_t n, int64_t limit) {
  std::vector<int64_t> candidates;
  const int64_t centre = static_cast<int64_t>(std::floor(x));
  for (int64_t i = centre - n - 1; i <= centre + n + 1; ++i)
    if (i >= 0 && i < limit)
      candidates.push_back(i);
  std::sort(candidates.begin(), candidates.end(), [&](int64_t a, int64_t b) {
    const double da = std::fabs(x - double(a)), db = std::fabs(x - double(b));
    return da != db ? da < db : a < b;
  });
  candidates.resize(std::min<size_t>(candidates.size(), size_t(n)));
  std::sort(candidates.begin(), candidates.end());
  return candidates;
}

/// Builds the map of one axis: `in` inputs to `out` outputs at `scale`,
/// `roi` = {start, end} for tf_crop_and_resize.
FailureOr<AxisMap> mapAxis(NodeContext &c, const ResizeAttrs &a, int64_t in,
                           int64_t out, double scale, double roiStart,
                           double roiEnd) {
  AxisMap m;
  m.in = in;
  m.out = out;
  m.weights.resize(out);
  m.extrapolated.assign(out, false);
  // The output length as the reference takes it: in * scale, a float when
  // scales are given. (onnxruntime uses the integer length instead, so the
  // two differ for align_corners, pytorch_half_pixel and
  // tf_crop_and_resize when in * scale is not whole; the ONNX node tests
  // follow the reference.)
  const double width = scale * double(in);
  for (int64_t x = 0; x < out; ++x) {
    const double xd = double(x);
    double ori;
    const std::string &t = a.transform;
    if (t == "align_corners") {
      ori = width == 1 ? 0.0 : xd * double(in - 1) / (width - 1);
    } else if (t == "asymmetric") {
      ori = xd / scale;
    } else if (t == "tf_crop_and_resize") {
      ori = width == 1
                ? (roiEnd - roiStart) * double(in - 1) / 2
                : xd * (roiEnd - roiStart) * double(in - 1) / (width - 1);
      ori += roiStart * double(in - 1);
      if (ori < 0 || ori > double(in - 1)) {
        m.extrapolated[x] = true;
        continue;
      }
    } else if (t == "pytorch_half_pixel") {
      ori = width == 1 ? -0.5 : (xd + 0.5) / scale - 0.5;
    } else if (t == "half_pixel") {
      ori = (xd + 0.5) / scale - 0.5;
    } else if (t == "half_pixel_symmetric") {
      const double adjustment = double(out) / width;
      const double centre = double(in) / 2;
      ori = centre * (1 - adjustment) + (xd + 0.5) / scale - 0.5;
    } else if (t == "tf_half_pixel_for_nn") {
      ori = (xd + 0.5) / scale;
    } else {
      return c.error() << "coordinate_transformation_mode '" << t
                       << "' is not known; expected half_pixel, "
                          "half_pixel_symmetric, pytorch_half_pixel, "
                          "align_corners, asymmetric, tf_half_pixel_for_nn or "
                          "tf_crop_and_resize";
    }
    const double ratio = ori == std::floor(ori) ? 1.0 : ori - std::floor(ori);
    std::vector<double> coeffs = coefficients(a, ratio, scale);
    const int64_t n = static_cast<int64_t>(coeffs.size());
    const int64_t pad = (n + 1) / 2;
    std::vector<int64_t> idx = neighbours(ori + double(pad), n, in + 2 * pad);
    if (static_cast<int64_t>(idx.size()) != n)
      return c.error() << "an axis of " << in
                       << " elements is too short for this filter";
    for (int64_t &i : idx)
      i -= pad;
    if (a.excludeOutside) {
      double sum = 0;
      for (int64_t k = 0; k < n; ++k) {
        if (idx[k] < 0 || idx[k] >= in)
          coeffs[k] = 0;
        sum += coeffs[k];
      }
      for (double &v : coeffs)
        v /= sum;
    }
    // Edge padding: outside taps read the edge element.
    for (int64_t k = 0; k < n; ++k) {
      if (coeffs[k] == 0)
        continue;
      const int64_t at = std::clamp<int64_t>(idx[k], 0, in - 1);
      auto &w = m.weights[x];
      auto it = std::find_if(w.begin(), w.end(),
                             [&](const auto &p) { return p.first == at; });
      if (it == w.end())
        w.push_back({at, coeffs[k]});
      else
        it->second += coeffs[k];
    }
  }
  return m;
}

/// Moves `axis` of `x` last (or back: `inverse`).
FailureOr<Value> axisLast(NodeContext &c, Value x, int64_t axis, bool inverse) {
  const int64_t rank = cast<RankedTensorType>(x.getType()).getRank();
  if (axis == rank - 1)
    return x;
  SmallVector<int64_t> perm;
  for (int64_t d = 0; d < rank; ++d)
    if (d != axis)
      perm.push_back(d);
  perm.push_back(axis);
  if (inverse) {
    SmallVector<int64_t> back(rank);
    for (int64_t d = 0; d < rank; ++d)
      back[perm[d]] = d;
    perm = back;
  }
  return c.create<cg::TransposeOp>(x, ArrayRef<int64_t>(perm));
}

/// `x` resized along `axis` by `m`.
FailureOr<Value> resizeAxis(NodeContext &c, const ResizeAttrs &a, Value x,
                            int64_t axis, const AxisMap &m) {
  auto type = cast<RankedTensorType>(x.getType());
  Type element = type.getElementType();
  const int64_t rank = type.getRank();
  Value result;
  if (a.mode == "nearest") {
    std::vector<int64_t> indices(m.out, 0);
    for (int64_t x2 = 0; x2 < m.out; ++x2)
      if (!m.extrapolated[x2]) {
        // Exactly one tap has coefficient 1.
        for (const auto &[at, w] : m.weights[x2])
          if (w == 1.0)
            indices[x2] = at;
      }
    Value idx = materializeConstant(
        c.builder(), c.loc(),
        HostTensor::ofInts(c.builder().getI64Type(), {m.out}, indices));
    auto gathered = c.create<cg::GatherOp>(x, idx, axis);
    if (failed(gathered))
      return failure();
    result = *gathered;
  } else {
    if (!isa<FloatType>(element))
      return c.error() << "mode '" << a.mode
                       << "' resizes floating-point tensors only; cast the "
                          "input to float first or use mode 'nearest'";
    std::vector<double> w(m.in * m.out, 0.0);
    for (int64_t x2 = 0; x2 < m.out; ++x2)
      for (const auto &[at, coeff] : m.weights[x2])
        w[at * m.out + x2] = coeff;
    Value matrix = materializeConstant(
        c.builder(), c.loc(), HostTensor::ofFloats(element, {m.in, m.out}, w));
    auto moved = axisLast(c, x, axis, false);
    if (failed(moved))
      return failure();
    auto product = c.create<cg::MatMulOp>(*moved, matrix);
    if (failed(product))
      return failure();
    auto back = axisLast(c, *product, axis, true);
    if (failed(back))
      return failure();
    result = *back;
  }
  if (!m.anyExtrapolated())
    return result;
  // Extrapolated positions take the extrapolation value.
  Shape maskShape(rank, 1);
  maskShape[axis] = m.out;
  std::vector<int64_t> flags(m.out);
  for (int64_t x2 = 0; x2 < m.out; ++x2)
    flags[x2] = m.extrapolated[x2];
  Value mask = materializeConstant(
      c.builder(), c.loc(),
      HostTensor::ofInts(c.builder().getI1Type(), maskShape, flags));
  Value value = c.scalar(a.extrapolation, element);
  return c.create<cg::WhereOp>(mask, value, result);
}

/// The node's float constant input `i` (empty when absent or empty).
FailureOr<std::vector<double>> floatsOf(NodeContext &c, unsigned i,
                                        StringRef what) {
  if (!c.hasInput(i))
    return std::vector<double>{};
  const HostTensor *t = c.constant(i);
  if (!t)
    return c.error() << what << " (input " << i << ", '" << c.node().input(i)
                     << "') must be known at compile time; pass "
                        "--const-input "
                     << c.node().input(i) << "=VALUES if it is a graph input";
  std::vector<double> v(t->size());
  for (int64_t k = 0; k < t->size(); ++k)
    v[k] = t->floatAt(k);
  return v;
}

LogicalResult convertResize(NodeContext &c) {
  auto type = c.inputType(0);
  const int64_t rank = type.getRank();
  ResizeAttrs a;
  a.mode = c.stringAttr("mode", "nearest");
  a.transform = c.stringAttr("coordinate_transformation_mode", "half_pixel");
  a.nearestMode = c.stringAttr("nearest_mode", "round_prefer_floor");
  a.cubicA = c.floatAttr("cubic_coeff_a", -0.75);
  a.extrapolation = c.floatAttr("extrapolation_value", 0.0);
  a.excludeOutside = c.intAttr("exclude_outside", 0) != 0;
  a.antialias = c.intAttr("antialias", 0) != 0;
  if (a.mode != "nearest" && a.mode != "linear" && a.mode != "cubic")
    return c.error() << "mode '" << a.mode
                     << "' is not known; expected nearest, linear or cubic";
  if (a.mode == "nearest" && a.antialias)
    return c.error() << "antialias applies to linear and cubic modes only";
  if (a.mode == "nearest" &&
      !llvm::is_contained(llvm::ArrayRef<StringRef>{"round_prefer_floor",
                                                    "round_prefer_ceil",
                                                    "floor", "ceil"},
                          a.nearestMode))
    return c.error() << "nearest_mode '" << a.nearestMode << "' is not known";
  const std::string policy =
      c.stringAttr("keep_aspect_ratio_policy", "stretch");
  if (policy != "stretch" && policy != "not_larger" && policy != "not_smaller")
    return c.error() << "keep_aspect_ratio_policy '" << policy
                     << "' is not known";

  // Which axes, their scales or sizes, and the roi.
  std::vector<int64_t> axes = c.intsAttr("axes");
  if (axes.empty())
    for (int64_t d = 0; d < rank; ++d)
      axes.push_back(d);
  for (int64_t &d : axes) {
    if (d < -rank || d >= rank)
      return c.error() << "axis " << d << " is out of range for rank " << rank;
    if (d < 0)
      d += rank;
  }
  const int64_t naxes = static_cast<int64_t>(axes.size());
  auto roi = floatsOf(c, 1, "roi");
  auto scales = floatsOf(c, 2, "scales");
  if (failed(roi) || failed(scales))
    return failure();
  std::vector<int64_t> sizes;
  if (c.hasInput(3) && (!c.constant(3) || c.constant(3)->size() > 0)) {
    auto s = c.constantInts(3, "sizes");
    if (failed(s))
      return failure();
    sizes = *s;
  }
  if (scales->empty() == sizes.empty())
    return c.error() << "exactly one of scales and sizes must be given";
  if (!scales->empty() && static_cast<int64_t>(scales->size()) != naxes)
    return c.error() << "scales has " << scales->size() << " values for "
                     << naxes << " axes";
  if (!sizes.empty() && static_cast<int64_t>(sizes.size()) != naxes)
    return c.error() << "sizes has " << sizes.size() << " values for " << naxes
                     << " axes";
  if (a.transform == "tf_crop_and_resize" &&
      static_cast<int64_t>(roi->size()) != 2 * naxes)
    return c.error() << "tf_crop_and_resize needs a roi of " << 2 * naxes
                     << " values (starts, then ends)";

  std::vector<double> scale(rank, 1.0), roiStart(rank, 0.0), roiEnd(rank, 1.0);
  std::vector<int64_t> outSize(type.getShape().begin(), type.getShape().end());
  for (int64_t i = 0; i < naxes; ++i) {
    const int64_t d = axes[i];
    if (!roi->empty() && static_cast<int64_t>(roi->size()) == 2 * naxes) {
      roiStart[d] = (*roi)[i];
      roiEnd[d] = (*roi)[naxes + i];
    }
    if (!sizes.empty()) {
      if (sizes[i] <= 0)
        return c.error() << "sizes must be positive, got " << sizes[i];
      scale[d] = double(sizes[i]) / double(type.getDimSize(d));
      outSize[d] = sizes[i];
    } else {
      // The scales are float32 values.
      scale[d] = double(static_cast<float>((*scales)[i]));
      if (!(scale[d] > 0))
        return c.error() << "scales must be positive, got " << (*scales)[i];
      outSize[d] = static_cast<int64_t>(scale[d] * double(type.getDimSize(d)));
    }
  }
  if (!sizes.empty() && policy != "stretch") {
    double s = policy == "not_larger" ? INFINITY : 0.0;
    for (int64_t d : axes)
      s = policy == "not_larger" ? std::min(s, scale[d])
                                 : std::max(s, scale[d]);
    for (int64_t d : axes) {
      scale[d] = s;
      outSize[d] = static_cast<int64_t>(s * double(type.getDimSize(d)) + 0.5);
    }
  }

  Value x = c.value(0);
  for (int64_t d = rank - 1; d >= 0; --d) {
    if (!llvm::is_contained(axes, d))
      continue;
    if (outSize[d] <= 0 || type.getDimSize(d) <= 0)
      return c.error() << "resizing dimension " << d << " of "
                       << type.getDimSize(d) << " to " << outSize[d]
                       << " elements is not supported";
    auto m = mapAxis(c, a, type.getDimSize(d), outSize[d], scale[d],
                     roiStart[d], roiEnd[d]);
    if (failed(m))
      return failure();
    if (m->identity())
      continue;
    auto y = resizeAxis(c, a, x, d, *m);
    if (failed(y))
      return failure();
    x = *y;
  }
  c.setOutput(0, x);
  return success();
}

} // namespace

void mlir::colossal::onnx::registerResizeConverters(ConverterTable &t) {
  t["Resize"] = {convertResize, 1, 4};
}
