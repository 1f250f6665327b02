//===- OpGeometry.cpp - Operand checks and index geometry of the ops ------===//

#include "runtime/backends/cpu/OpGeometry.h"

#include <tuple>

namespace colossal::rt::cpu {

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

std::vector<int64_t> contiguousStrides(const std::vector<int64_t> &shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;)
    strides[d - 1] = strides[d] * shape[d];
  return strides;
}

BroadcastPlan stridedPlan(const std::vector<int64_t> &out,
                          const std::vector<int64_t> &strides) {
  BroadcastPlan plan;
  plan.strides.resize(1);
  std::vector<int64_t> &s = plan.strides[0];
  for (size_t d = 0; d < out.size(); ++d) {
    if (out[d] == 1)
      continue;
    if (!plan.dims.empty() && s.back() == strides[d] * out[d]) {
      plan.dims.back() *= out[d];
      s.back() = strides[d];
    } else {
      plan.dims.push_back(out[d]);
      s.push_back(strides[d]);
    }
  }
  if (plan.dims.empty()) {
    plan.dims.push_back(1);
    s.push_back(0);
  }
  plan.total = numElements(out);
  return plan;
}

Status transposePlan(const std::vector<TensorRef> &inputs,
                     const std::vector<TensorRef> &outputs,
                     const AttributeMap &attrs, BroadcastPlan &plan) {
  if (Status s = checkArity("transpose", inputs, outputs, 1, 1, 1); !s)
    return s;
  if (Status s = checkDType("transpose", "result", outputs[0], inputs[0].dtype);
      !s)
    return s;
  const std::vector<int64_t> &in = inputs[0].shape, &out = outputs[0].shape;
  const std::vector<int64_t> perm = attrs.getInts("permutation");
  std::vector<bool> seen(in.size(), false);
  bool ok = perm.size() == in.size() && out.size() == in.size();
  for (size_t i = 0; ok && i < perm.size(); ++i) {
    ok = perm[i] >= 0 && perm[i] < int64_t(in.size()) && !seen[perm[i]] &&
         out[i] == in[perm[i]];
    if (ok)
      seen[perm[i]] = true;
  }
  if (!ok)
    return Status::error("transpose: permutation " + shapeString(perm) +
                         " does not take " + shapeString(in) + " to " +
                         shapeString(out));
  const std::vector<int64_t> inStrides = contiguousStrides(in);
  std::vector<int64_t> strides(out.size());
  for (size_t i = 0; i < out.size(); ++i)
    strides[i] = inStrides[perm[i]];
  plan = stridedPlan(out, strides);
  return Status::ok();
}

Status slicePlan(const std::vector<TensorRef> &inputs,
                 const std::vector<TensorRef> &outputs,
                 const AttributeMap &attrs, BroadcastPlan &plan,
                 int64_t &base) {
  if (Status s = checkArity("slice", inputs, outputs, 1, 1, 1); !s)
    return s;
  if (Status s = checkDType("slice", "result", outputs[0], inputs[0].dtype); !s)
    return s;
  const std::vector<int64_t> &in = inputs[0].shape, &out = outputs[0].shape;
  const std::vector<int64_t> starts = attrs.getInts("starts"),
                             limits = attrs.getInts("limits"),
                             steps = attrs.getInts("steps");
  const size_t rank = in.size();
  if (starts.size() != rank || limits.size() != rank || steps.size() != rank ||
      out.size() != rank)
    return Status::error("slice: starts, limits and steps need one entry per "
                         "dimension of " +
                         shapeString(in) + " and a result of the same rank");
  const std::vector<int64_t> inStrides = contiguousStrides(in);
  std::vector<int64_t> strides(rank);
  base = 0;
  for (size_t d = 0; d < rank; ++d) {
    const int64_t start = starts[d], limit = limits[d], step = steps[d];
    int64_t len = 0;
    if (step > 0 && limit > start)
      len = (limit - start + step - 1) / step;
    else if (step < 0 && start > limit)
      len = (start - limit - step - 1) / -step;
    const int64_t last = start + (len - 1) * step;
    if (step == 0 || len != out[d] ||
        (len > 0 && (start < 0 || start >= in[d] || last < 0 || last >= in[d])))
      return Status::error("slice: start " + std::to_string(start) +
                           ", limit " + std::to_string(limit) + ", step " +
                           std::to_string(step) + " do not give the result's " +
                           std::to_string(out[d]) + " elements of dimension " +
                           std::to_string(d) + " (size " +
                           std::to_string(in[d]) + ")");
    strides[d] = inStrides[d] * step;
    if (len > 0)
      base += start * inStrides[d];
  }
  plan = stridedPlan(out, strides);
  return Status::ok();
}

Status stackGeometry(std::string_view op, const TensorRef &whole,
                     const std::vector<TensorRef> &pieces, int64_t axisAttr,
                     int64_t &axis, int64_t &outer, int64_t &innerBytes) {
  const std::vector<int64_t> &shape = whole.shape;
  if (Status s = normalizeAxis(op, axisAttr, shape.size(), axis); !s)
    return s;
  int64_t total = 0;
  for (const TensorRef &p : pieces) {
    bool ok = p.dtype == whole.dtype && p.shape.size() == shape.size();
    for (size_t d = 0; ok && d < shape.size(); ++d)
      ok = int64_t(d) == axis || p.shape[d] == shape[d];
    if (!ok)
      return Status::error(std::string(op) + ": piece " + shapeString(p.shape) +
                           " does not match " + shapeString(shape) +
                           " outside axis " + std::to_string(axis));
    total += p.shape[axis];
  }
  if (total != shape[axis])
    return Status::error(std::string(op) + ": the pieces add up to " +
                         std::to_string(total) + " along axis " +
                         std::to_string(axis) + " but " + shapeString(shape) +
                         " has " + std::to_string(shape[axis]));
  outer = 1;
  innerBytes = static_cast<int64_t>(dtypeSize(whole.dtype));
  for (size_t d = 0; d < shape.size(); ++d)
    (int64_t(d) < axis   ? outer
     : int64_t(d) > axis ? innerBytes
                         : total) *= shape[d];
  return Status::ok();
}

Status gatherGeometry(const std::vector<TensorRef> &inputs,
                      const std::vector<TensorRef> &outputs,
                      const AttributeMap &attrs, GatherGeometry &g) {
  if (Status s = checkArity("gather", inputs, outputs, 2, 2, 1); !s)
    return s;
  const TensorRef &data = inputs[0], &indices = inputs[1], &out = outputs[0];
  if (Status s = checkDType("gather", "result", out, data.dtype); !s)
    return s;
  if (!isInt(indices.dtype))
    return Status::error(std::string("gather: indices must be int64 or "
                                     "int32, got ") +
                         dtypeName(indices.dtype));
  if (Status s = normalizeAxis("gather", attrs.getInt("axis", 0),
                               data.shape.size(), g.axis);
      !s)
    return s;
  std::vector<int64_t> expected(data.shape.begin(),
                                data.shape.begin() + g.axis);
  expected.insert(expected.end(), indices.shape.begin(), indices.shape.end());
  expected.insert(expected.end(), data.shape.begin() + g.axis + 1,
                  data.shape.end());
  if (expected != out.shape)
    return Status::error("gather: result shape " + shapeString(out.shape) +
                         " should be " + shapeString(expected));
  g.n = data.shape[g.axis];
  g.count = indices.numel();
  g.outer = g.inner = 1;
  for (size_t d = 0; d < data.shape.size(); ++d)
    if (int64_t(d) < g.axis)
      g.outer *= data.shape[d];
    else if (int64_t(d) > g.axis)
      g.inner *= data.shape[d];
  return Status::ok();
}

Status checkScatterAddRows(const std::vector<TensorRef> &inputs,
                           const std::vector<TensorRef> &outputs) {
  if (Status s = checkArity("scatter_add_rows", inputs, outputs, 2, 2, 1); !s)
    return s;
  const TensorRef &indices = inputs[0], &upd = inputs[1], &out = outputs[0];
  if (!isInt(indices.dtype) || !isFloat(upd.dtype) || out.dtype != upd.dtype)
    return Status::error("scatter_add_rows: takes integer indices and float "
                         "updates of the result's dtype");
  if (indices.shape.size() != 1 || upd.shape.size() != 2 ||
      out.shape.size() != 2 || upd.shape[0] != indices.shape[0] ||
      upd.shape[1] != out.shape[1])
    return Status::error("scatter_add_rows: indices " +
                         shapeString(indices.shape) + ", updates " +
                         shapeString(upd.shape) + " and result " +
                         shapeString(out.shape) + " disagree");
  return Status::ok();
}

Status triluGeometry(const std::vector<TensorRef> &inputs,
                     const std::vector<TensorRef> &outputs,
                     const AttributeMap &attrs, TriluGeometry &g) {
  if (Status s = checkArity("trilu", inputs, outputs, 1, 1, 1); !s)
    return s;
  if (Status s = checkDType("trilu", "result", outputs[0], inputs[0].dtype); !s)
    return s;
  const std::vector<int64_t> &shape = inputs[0].shape;
  if (shape.size() < 2 || shape != outputs[0].shape)
    return Status::error("trilu: needs input and result of the same shape "
                         "with rank >= 2, got " +
                         shapeString(shape) + " and " +
                         shapeString(outputs[0].shape));
  g.upper = attrs.getInt("upper", 0) != 0;
  g.diagonal = attrs.getInt("diagonal", 0);
  g.rows = shape[shape.size() - 2];
  g.cols = shape.back();
  return Status::ok();
}

/// The products of the dimensions before `axis`, of `axis` itself and of
/// those after it: rows of `len` elements `inner` apart.
static void splitAtAxis(const std::vector<int64_t> &shape, int64_t axis,
                        int64_t &outer, int64_t &len, int64_t &inner) {
  outer = len = inner = 1;
  for (size_t d = 0; d < shape.size(); ++d)
    (int64_t(d) < axis ? outer : int64_t(d) == axis ? len : inner) *= shape[d];
}

Status topkGeometry(const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs,
                    const AttributeMap &attrs, TopKGeometry &g) {
  if (Status s = checkArity("topk", inputs, outputs, 1, 1, 2); !s)
    return s;
  if (Status s = checkDType("topk", "values", outputs[0], inputs[0].dtype); !s)
    return s;
  if (Status s = checkDType("topk", "indices", outputs[1], DType::I64); !s)
    return s;
  const std::vector<int64_t> &shape = inputs[0].shape;
  int64_t axis = 0;
  if (Status s =
          normalizeAxis("topk", attrs.getInt("axis", -1), shape.size(), axis);
      !s)
    return s;
  g.k = attrs.getInt("k", 0);
  g.smallest = attrs.getInt("smallest", 0) != 0;
  if (g.k < 0 || g.k > shape[axis])
    return Status::error("topk: k = " + std::to_string(g.k) +
                         " is not between 0 and the axis' size " +
                         std::to_string(shape[axis]));
  std::vector<int64_t> want = shape;
  want[axis] = g.k;
  if (outputs[0].shape != want || outputs[1].shape != want)
    return Status::error("topk: values and indices must be " +
                         shapeString(want) + ", got " +
                         shapeString(outputs[0].shape) + " and " +
                         shapeString(outputs[1].shape));
  splitAtAxis(shape, axis, g.outer, g.len, g.inner);
  return Status::ok();
}

Status randomKeepGeometry(const std::vector<TensorRef> &inputs,
                          const std::vector<TensorRef> &outputs,
                          const AttributeMap &attrs, RandomKeep &r) {
  if (Status s = checkArity("random_keep", inputs, outputs, 1, 1, 1); !s)
    return s;
  const TensorRef &counter = inputs[0], &out = outputs[0];
  if (!isInt(counter.dtype) || counter.numel() != 1 || out.dtype != DType::Bool)
    return Status::error("random_keep: takes an integer scalar counter to a "
                         "bool mask");
  const double ratio = attrs.getFloat("ratio", 0.0);
  if (!(ratio >= 0 && ratio < 1))
    return Status::error("random_keep: ratio must lie in [0, 1)");
  // One stream per (seed, dropout site); the run's counter picks the run.
  r.seedKey = mix64(static_cast<uint64_t>(attrs.getInt("seed", 0)) ^
                    mix64(static_cast<uint64_t>(attrs.getInt("stream", 0))));
  r.threshold = ratio * 9007199254740992.0; // 2^53: 53 random bits each
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Contractions
//===----------------------------------------------------------------------===//

Status matmulGeometry(const std::vector<TensorRef> &inputs,
                      const std::vector<TensorRef> &outputs,
                      const AttributeMap &attrs, MatmulGeometry &g) {
  if (Status s = checkArity("matmul", inputs, outputs, 2, 2, 1); !s)
    return s;
  const TensorRef &a = inputs[0], &b = inputs[1], &c = outputs[0];
  if (a.dtype != b.dtype || c.dtype != a.dtype)
    return Status::error(std::string("matmul: operand and result dtypes "
                                     "differ (") +
                         dtypeName(a.dtype) + ", " + dtypeName(b.dtype) + ", " +
                         dtypeName(c.dtype) + ")");
  if (a.shape.empty() || b.shape.empty())
    return Status::error("matmul: operands must have rank >= 1, got " +
                         shapeString(a.shape) + " and " + shapeString(b.shape));
  // numpy.matmul: a 1-D lhs is a row, a 1-D rhs a column. A transposed
  // operand (colossal-fold-into-gemm) holds its matrix's last two
  // dimensions swapped.
  g.ta = attrs.getInt("transpose_lhs", 0) != 0;
  g.tb = attrs.getInt("transpose_rhs", 0) != 0;
  const bool aVec = a.shape.size() == 1, bVec = b.shape.size() == 1;
  if ((g.ta && aVec) || (g.tb && bVec))
    return Status::error("matmul: a transposed operand needs rank >= 2, got " +
                         shapeString(a.shape) + " @ " + shapeString(b.shape));
  if ((g.ta || g.tb) && !isFloat(a.dtype))
    return Status::error(std::string("matmul: transposed operands are for "
                                     "float matmuls, got ") +
                         dtypeName(a.dtype));
  const size_t ra = a.shape.size(), rb = b.shape.size();
  g.m = aVec ? 1 : a.shape[ra - (g.ta ? 1 : 2)];
  g.k = g.ta ? a.shape[ra - 2] : a.shape.back();
  const int64_t kb = bVec ? b.shape[0] : b.shape[rb - (g.tb ? 1 : 2)];
  g.n = bVec ? 1 : b.shape[rb - (g.tb ? 2 : 1)];
  if (g.k != kb)
    return Status::error(
        "matmul: contracting dimensions differ: " + shapeString(a.shape) +
        (g.ta ? "^T" : "") + " @ " + shapeString(b.shape) + (g.tb ? "^T" : ""));
  g.aBatch.clear();
  g.bBatch.clear();
  if (!aVec)
    g.aBatch.assign(a.shape.begin(), a.shape.end() - 2);
  if (!bVec)
    g.bBatch.assign(b.shape.begin(), b.shape.end() - 2);
  g.batch.assign(std::max(g.aBatch.size(), g.bBatch.size()), 1);
  for (size_t i = 0; i < g.batch.size(); ++i) {
    const size_t ia = g.batch.size() - g.aBatch.size(),
                 ib = g.batch.size() - g.bBatch.size();
    const int64_t da = i >= ia ? g.aBatch[i - ia] : 1;
    const int64_t db = i >= ib ? g.bBatch[i - ib] : 1;
    if (da != db && da != 1 && db != 1)
      return Status::error("matmul: batch dimensions do not broadcast: " +
                           shapeString(a.shape) + " @ " + shapeString(b.shape));
    g.batch[i] = da == 1 ? db : da;
  }
  g.batches = numElements(g.batch);
  if (c.numel() != g.batches * g.m * g.n)
    return Status::error("matmul: result shape " + shapeString(c.shape) +
                         " does not match " + shapeString(a.shape) + " @ " +
                         shapeString(b.shape));
  if (Status s = batchIndices("matmul", "lhs batch", g.aBatch, g.batch, g.aIdx);
      !s)
    return s;
  return batchIndices("matmul", "rhs batch", g.bBatch, g.batch, g.bIdx);
}

Status linearGeometry(const std::vector<TensorRef> &inputs,
                      const std::vector<TensorRef> &outputs,
                      const AttributeMap &attrs, LinearGeometry &g) {
  if (Status s = checkArity("linear", inputs, outputs, 2, 3, 1); !s)
    return s;
  const TensorRef &x = inputs[0], &w = inputs[1], &y = outputs[0];
  g.transposed = attrs.getInt("transpose_weight", 0) != 0;
  if (x.shape.empty() || y.shape.empty() || w.shape.size() != 2)
    return Status::error("linear: expected input rank >= 1 and a 2-D weight, "
                         "got " +
                         shapeString(x.shape) + " and " + shapeString(w.shape));
  g.in = x.shape.back();
  g.out = y.shape.back();
  const int64_t wIn = g.transposed ? w.shape[1] : w.shape[0];
  const int64_t wOut = g.transposed ? w.shape[0] : w.shape[1];
  if (wIn != g.in || wOut != g.out)
    return Status::error("linear: weight of shape " + shapeString(w.shape) +
                         (g.transposed ? " (transposed)" : "") +
                         " does not map " + std::to_string(g.in) + " to " +
                         std::to_string(g.out) + " features");
  g.rows =
      numElements(std::vector<int64_t>(x.shape.begin(), x.shape.end() - 1));
  if (y.numel() != g.rows * g.out)
    return Status::error("linear: result shape " + shapeString(y.shape) +
                         " does not match input shape " + shapeString(x.shape));
  if (inputs.size() == 3 && inputs[2].numel() != g.out &&
      inputs[2].numel() != 1)
    return Status::error("linear: bias of shape " +
                         shapeString(inputs[2].shape) + " does not match " +
                         std::to_string(g.out) + " output features");
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Reductions and normalization
//===----------------------------------------------------------------------===//

Status reduceGeometry(std::string_view op, const std::vector<TensorRef> &inputs,
                      const std::vector<TensorRef> &outputs,
                      const AttributeMap &attrs, ReduceGeometry &g) {
  if (Status s = checkArity(op, inputs, outputs, 1, 1, 1); !s)
    return s;
  if (Status s = checkDType(op, "result", outputs[0], inputs[0].dtype); !s)
    return s;
  const std::vector<int64_t> &shape = inputs[0].shape;
  const size_t rank = shape.size();
  std::vector<bool> reduced(rank, false);
  for (int64_t axis : attrs.getInts("axes")) {
    int64_t a = 0;
    if (Status s = normalizeAxis(op, axis, rank, a); !s)
      return s;
    if (reduced[a])
      return Status::error(std::string(op) + ": axis " + std::to_string(axis) +
                           " is listed twice");
    reduced[a] = true;
  }
  const std::vector<int64_t> strides = contiguousStrides(shape);
  g = ReduceGeometry{};
  int lastKind = -1; // 0 kept, 1 reduced
  for (size_t d = 0; d < rank; ++d) {
    (reduced[d] ? g.redCount : g.outCount) *= shape[d];
    if (shape[d] == 1)
      continue;
    auto &sizes = reduced[d] ? g.redSizes : g.keptSizes;
    auto &strs = reduced[d] ? g.redStrides : g.keptStrides;
    if (lastKind == int(reduced[d])) {
      sizes.back() *= shape[d];
      strs.back() = strides[d];
    } else {
      sizes.push_back(shape[d]);
      strs.push_back(strides[d]);
    }
    lastKind = reduced[d];
  }
  g.innermostReduced = lastKind == 1;
  if (outputs[0].numel() != g.outCount)
    return Status::error(std::string(op) + ": result shape " +
                         shapeString(outputs[0].shape) +
                         " does not match reducing " + shapeString(shape));
  if (!isFloat(inputs[0].dtype) && !isInt(inputs[0].dtype))
    return unsupported(op, inputs[0].dtype);
  return Status::ok();
}

Status checkUnaryShape(std::string_view op, const std::vector<TensorRef> &in,
                       const std::vector<TensorRef> &out) {
  if (Status s = checkDType(op, "result", out[0], in[0].dtype); !s)
    return s;
  if (in[0].shape != out[0].shape)
    return Status::error(
        std::string(op) + ": input shape " + shapeString(in[0].shape) +
        " does not match result shape " + shapeString(out[0].shape));
  return Status::ok();
}

Status softmaxGeometry(std::string_view op,
                       const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs,
                       const AttributeMap &attrs, int64_t &outer, int64_t &len,
                       int64_t &inner) {
  if (Status s = checkArity(op, inputs, outputs, 1, 1, 1); !s)
    return s;
  if (Status s = checkUnaryShape(op, inputs, outputs); !s)
    return s;
  const std::vector<int64_t> &shape = inputs[0].shape;
  int64_t axis = 0; // a scalar is a row of one
  if (!shape.empty())
    if (Status s =
            normalizeAxis(op, attrs.getInt("axis", -1), shape.size(), axis);
        !s)
      return s;
  splitAtAxis(shape, axis, outer, len, inner);
  return Status::ok();
}

Status normGeometry(std::string_view op, const std::vector<TensorRef> &inputs,
                    const AttributeMap &attrs, size_t numParams, int64_t &rows,
                    int64_t &len) {
  const std::vector<int64_t> &shape = inputs[0].shape;
  int64_t axis = attrs.getInt("axis", -1);
  if (shape.empty()) {
    axis = 0;
  } else if (Status s = normalizeAxis(op, axis, shape.size(), axis); !s) {
    return s;
  }
  len = 1;
  for (size_t d = static_cast<size_t>(axis); d < shape.size(); ++d)
    len *= shape[d];
  rows = len ? inputs[0].numel() / len : 0;
  for (size_t i = 0; i < numParams; ++i) {
    const TensorRef &p = inputs[1 + i];
    if (p.numel() != len && p.numel() != 1)
      return Status::error(std::string(op) + ": " +
                           (i == 0 ? "scale" : "bias") + " of shape " +
                           shapeString(p.shape) + " does not match the " +
                           std::to_string(len) + " normalized elements");
  }
  return Status::ok();
}

Status batchNormGeometry(const std::vector<TensorRef> &inputs,
                         int64_t &channels, int64_t &spatial) {
  const std::vector<int64_t> &shape = inputs[0].shape;
  if (shape.size() < 2)
    return Status::error("batch_norm: input of shape " + shapeString(shape) +
                         " has no channel dimension (rank must be >= 2)");
  channels = shape[1];
  const int64_t planes = shape[0] * channels;
  spatial = planes ? inputs[0].numel() / planes : 0;
  static const char *names[] = {"scale", "bias", "mean", "variance"};
  for (int i = 0; i < 4; ++i)
    if (inputs[1 + i].numel() != channels)
      return Status::error(std::string("batch_norm: ") + names[i] +
                           " of shape " + shapeString(inputs[1 + i].shape) +
                           " does not match " + std::to_string(channels) +
                           " channels");
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Convolutions and pools
//===----------------------------------------------------------------------===//

Status convGeometry(std::string_view op, const TensorRef &x,
                    const TensorRef &wt, const TensorRef &y,
                    const AttributeMap &attrs, ConvGeometry &g) {
  for (auto [t, what] : {std::pair{&x, "input"}, std::pair{&wt, "weight"},
                         std::pair{&y, "result"}})
    if (Status s = checkNchw(op, what, *t); !s)
      return s;
  g.n = x.shape[0];
  g.c = x.shape[1];
  g.h = x.shape[2];
  g.w = x.shape[3];
  g.o = wt.shape[0];
  g.cg = wt.shape[1];
  g.groups = attrs.getInt("groups", 1);
  g.oh = y.shape[2];
  g.ow = y.shape[3];
  if (Status s =
          readWindow(op, attrs, nullptr, wt.shape[2], wt.shape[3], g.win);
      !s)
    return s;
  if (g.groups < 1 || g.c != g.cg * g.groups || g.o % g.groups != 0 ||
      y.shape[0] != g.n || y.shape[1] != g.o || g.oh != g.win.outH(g.h) ||
      g.ow != g.win.outW(g.w))
    return Status::error(std::string(op) + ": shapes do not agree: input " +
                         shapeString(x.shape) + ", weight " +
                         shapeString(wt.shape) + ", groups " +
                         std::to_string(g.groups) + ", result " +
                         shapeString(y.shape));
  return Status::ok();
}

Status poolGeometry(std::string_view op, const TensorRef &x, const TensorRef &y,
                    const AttributeMap &attrs, Window &win) {
  if (Status s = checkNchw(op, "input", x); !s)
    return s;
  if (Status s = checkNchw(op, "result", y); !s)
    return s;
  if (y.shape[0] != x.shape[0] || y.shape[1] != x.shape[1])
    return Status::error(std::string(op) + ": result shape " +
                         shapeString(y.shape) + " does not match input " +
                         shapeString(x.shape));
  return readWindow(op, attrs, "kernel", 0, 0, win);
}

Status maxPoolBackwardGeometry(std::string_view op, const TensorRef &x,
                               const TensorRef &dy, const TensorRef &dx,
                               const AttributeMap &attrs, Window &win) {
  for (auto [t, what] : {std::pair{&x, "input"}, std::pair{&dy, "gradient"},
                         std::pair{&dx, "result"}})
    if (Status s = checkNchw(op, what, *t); !s)
      return s;
  if (dx.shape != x.shape || dy.shape[0] != x.shape[0] ||
      dy.shape[1] != x.shape[1])
    return Status::error(std::string(op) + ": input " + shapeString(x.shape) +
                         ", gradient " + shapeString(dy.shape) +
                         " and result " + shapeString(dx.shape) +
                         " do not agree");
  return readWindow(op, attrs, "kernel", 0, 0, win);
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

std::vector<int64_t> batchOffsets(const std::vector<int64_t> &batch,
                                  const std::vector<int64_t> &strides) {
  const int64_t count = numElements(batch);
  std::vector<int64_t> offsets(static_cast<size_t>(count), 0);
  for (int64_t b = 0; b < count; ++b) {
    int64_t rest = b;
    for (size_t d = batch.size(); d-- > 0;) {
      offsets[b] += (rest % batch[d]) * strides[d];
      rest /= batch[d];
    }
  }
  return offsets;
}

std::vector<int64_t> matrixBatch(const TensorRef &t) {
  return std::vector<int64_t>(t.shape.begin(), t.shape.end() - 2);
}

std::vector<int64_t> rowsShape(const TensorRef &t) {
  return std::vector<int64_t>(t.shape.begin(), t.shape.end() - 1);
}

bool AttentionGeometry::unbroadcast() const {
  const std::vector<int64_t> own = contiguousStrides(batch);
  for (size_t d = 0; d < batch.size(); ++d)
    if (batch[d] > 1 && (qStrides[d] != own[d] || kStrides[d] != own[d] ||
                         vStrides[d] != own[d]))
      return false;
  return true;
}

Status attentionGeometry(std::string_view op, const TensorRef &q,
                         const TensorRef &k, const TensorRef &v,
                         const TensorRef *mask,
                         const std::vector<int64_t> &batch, int64_t maskColumns,
                         AttentionGeometry &g) {
  if (mask && mask->dtype != DType::F32 && mask->dtype != DType::Bool)
    return Status::error(std::string(op) +
                         ": mask must be float or bool, "
                         "got " +
                         dtypeName(mask->dtype));
  if (q.shape.size() < 2 || k.shape.size() < 2 || v.shape.size() < 2)
    return Status::error(std::string(op) +
                         ": query, key and value need rank >= 2");
  g.batch = batch;
  g.batches = numElements(batch);
  g.sq = q.shape[q.shape.size() - 2];
  g.d = q.shape.back();
  g.skv = k.shape[k.shape.size() - 2];
  g.dv = v.shape.back();
  if (k.shape.back() != g.d || v.shape[v.shape.size() - 2] != g.skv)
    return Status::error(std::string(op) + ": shapes do not agree: query " +
                         shapeString(q.shape) + ", key " +
                         shapeString(k.shape) + ", value " +
                         shapeString(v.shape));
  for (auto [t, what, strides] : {std::tuple{&q, "query batch", &g.qStrides},
                                  std::tuple{&k, "key batch", &g.kStrides},
                                  std::tuple{&v, "value batch", &g.vStrides}})
    if (Status s = broadcastStrides(op, what, matrixBatch(*t), batch, *strides);
        !s)
      return s;
  g.maskStrides.assign(batch.size(), 0);
  g.maskRowStride = g.maskColStride = 0;
  if (mask) {
    std::vector<int64_t> target = batch, strides;
    target.push_back(g.sq);
    target.push_back(maskColumns);
    if (Status s = broadcastStrides(op, "mask", mask->shape, target, strides);
        !s)
      return s;
    g.maskRowStride = strides[target.size() - 2];
    g.maskColStride = strides[target.size() - 1];
    g.maskStrides.assign(strides.begin(), strides.end() - 2);
  }
  return Status::ok();
}

Status checkTensor(std::string_view op, const char *what, const TensorRef &t,
                   DType dtype, const std::vector<int64_t> &shape) {
  if (t.dtype != dtype || t.shape != shape)
    return Status::error(std::string(op) + ": " + what + " must be " +
                         dtypeName(dtype) + " " + shapeString(shape) +
                         ", got " + dtypeName(t.dtype) + " " +
                         shapeString(t.shape));
  return Status::ok();
}

Status checkAttentionBlockFinish(const std::vector<TensorRef> &inputs,
                                 const std::vector<TensorRef> &outputs) {
  constexpr const char *op = "attention_block_finish";
  if (Status s = checkArity(op, inputs, outputs, 3, 3, 2); !s)
    return s;
  const TensorRef &acc = inputs[0], &m = inputs[1], &l = inputs[2];
  const TensorRef &out = outputs[0], &lse = outputs[1];
  if (acc.shape.size() < 2)
    return Status::error("attention_block_finish: the accumulator needs rank "
                         ">= 2");
  for (auto [t, what, shape] :
       {std::tuple{&acc, "accumulator", acc.shape},
        std::tuple{&out, "result", acc.shape},
        std::tuple{&m, "row maximum", rowsShape(acc)},
        std::tuple{&l, "row sum", rowsShape(acc)},
        std::tuple{&lse, "log-sum-exp", rowsShape(acc)}})
    if (Status s = checkTensor(op, what, *t, DType::F32, shape); !s)
      return s;
  return Status::ok();
}

Status checkAttentionDelta(const std::vector<TensorRef> &inputs,
                           const std::vector<TensorRef> &outputs) {
  constexpr const char *op = "attention_delta";
  if (Status s = checkArity(op, inputs, outputs, 2, 2, 1); !s)
    return s;
  const TensorRef &o = inputs[0], &g = inputs[1], &delta = outputs[0];
  if (o.shape.size() < 2)
    return Status::error("attention_delta: out needs rank >= 2");
  for (auto [t, what, shape] :
       {std::tuple{&o, "out", o.shape}, std::tuple{&g, "grad", o.shape},
        std::tuple{&delta, "delta", rowsShape(o)}})
    if (Status s = checkTensor(op, what, *t, DType::F32, shape); !s)
      return s;
  return Status::ok();
}

} // namespace colossal::rt::cpu
