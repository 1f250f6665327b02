//===- DataMovement.cpp - reshape, transpose, slice, concat, ... ----------===//
//
// reshape transpose slice concat split gather expand trilu. All of them move
// bytes without looking at them, so they work for every dtype. transpose,
// slice and expand are one strided copy over a merged index space.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/KernelUtil.h"

namespace colossal::rt::cpu {
namespace {

Status checkSameDType(std::string_view op, const TensorRef &in,
                      const TensorRef &out) {
  return checkDType(op, "result", out, in.dtype);
}

/// A plan for copying into a contiguous output of shape `out` from an input
/// whose element for output index i is at `base` + sum(i[d] * strides[d]).
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

template <class T>
void stridedCopyAs(const BroadcastPlan &plan, const T *in, T *out) {
  const int64_t stride = plan.innerStride(0);
  forEachRun(plan, [&](int64_t o, const int64_t *off, int64_t n) {
    const T *src = in + off[0];
    T *dst = out + o;
    if (stride == 1) {
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(T));
    } else if (stride == 0) {
      std::fill(dst, dst + n, src[0]);
    } else {
      for (int64_t i = 0; i < n; ++i)
        dst[i] = src[i * stride];
    }
  });
}

/// Copies by element size: the dtype does not matter.
void stridedCopy(const BroadcastPlan &plan, const void *in, void *out,
                 size_t elementSize) {
  switch (elementSize) {
  case 1:
    return stridedCopyAs(plan, static_cast<const uint8_t *>(in),
                         static_cast<uint8_t *>(out));
  case 2:
    return stridedCopyAs(plan, static_cast<const uint16_t *>(in),
                         static_cast<uint16_t *>(out));
  case 4:
    return stridedCopyAs(plan, static_cast<const uint32_t *>(in),
                         static_cast<uint32_t *>(out));
  default:
    return stridedCopyAs(plan, static_cast<const uint64_t *>(in),
                         static_cast<uint64_t *>(out));
  }
}

std::vector<int64_t> contiguousStrides(const std::vector<int64_t> &shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;)
    strides[d - 1] = strides[d] * shape[d];
  return strides;
}

Status reshapeKernel(const std::vector<TensorRef> &inputs,
                     const std::vector<TensorRef> &outputs,
                     const AttributeMap &) {
  if (Status s = checkArity("reshape", inputs, outputs, 1, 1, 1); !s)
    return s;
  if (Status s = checkSameDType("reshape", inputs[0], outputs[0]); !s)
    return s;
  if (Status s = checkSameNumel("reshape", inputs[0], outputs[0]); !s)
    return s;
  if (outputs[0].numel() && inputs[0].data != outputs[0].data)
    std::memcpy(outputs[0].data, inputs[0].data, outputs[0].bytes());
  return Status::ok();
}

Status transposeKernel(const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs,
                       const AttributeMap &attrs) {
  if (Status s = checkArity("transpose", inputs, outputs, 1, 1, 1); !s)
    return s;
  if (Status s = checkSameDType("transpose", inputs[0], outputs[0]); !s)
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
                         " does not map " + shapeString(in) + " to " +
                         shapeString(out));
  const std::vector<int64_t> inStrides = contiguousStrides(in);
  std::vector<int64_t> strides(out.size());
  for (size_t i = 0; i < out.size(); ++i)
    strides[i] = inStrides[perm[i]];
  stridedCopy(stridedPlan(out, strides), inputs[0].data, outputs[0].data,
              dtypeSize(outputs[0].dtype));
  return Status::ok();
}

Status sliceKernel(const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &outputs,
                   const AttributeMap &attrs) {
  if (Status s = checkArity("slice", inputs, outputs, 1, 1, 1); !s)
    return s;
  if (Status s = checkSameDType("slice", inputs[0], outputs[0]); !s)
    return s;
  const std::vector<int64_t> &in = inputs[0].shape, &out = outputs[0].shape;
  const std::vector<int64_t> starts = attrs.getInts("starts"),
                             limits = attrs.getInts("limits"),
                             steps = attrs.getInts("steps");
  const size_t rank = in.size();
  if (starts.size() != rank || limits.size() != rank || steps.size() != rank ||
      out.size() != rank)
    return Status::error("slice: needs one start, limit and step per "
                         "dimension of " +
                         shapeString(in) + " and a result of the same rank");
  const std::vector<int64_t> inStrides = contiguousStrides(in);
  std::vector<int64_t> strides(rank);
  int64_t base = 0;
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
  if (outputs[0].numel() == 0)
    return Status::ok();
  const size_t es = dtypeSize(outputs[0].dtype);
  stridedCopy(stridedPlan(out, strides),
              static_cast<const char *>(inputs[0].data) + base * es,
              outputs[0].data, es);
  return Status::ok();
}

Status expandKernel(const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs,
                    const AttributeMap &) {
  if (Status s = checkArity("expand", inputs, outputs, 1, 1, 1); !s)
    return s;
  if (Status s = checkSameDType("expand", inputs[0], outputs[0]); !s)
    return s;
  BroadcastPlan plan;
  if (Status s = makeBroadcastPlan("expand", outputs[0].shape,
                                   {&inputs[0].shape}, plan);
      !s)
    return s;
  stridedCopy(plan, inputs[0].data, outputs[0].data,
              dtypeSize(outputs[0].dtype));
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// concat and split
//===----------------------------------------------------------------------===//

/// Checks that `pieces` stack along `axis` into `whole`; gives the number of
/// outer rows and the bytes per element of the inner block.
Status checkPieces(std::string_view op, const TensorRef &whole,
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
                           " (" + dtypeName(p.dtype) +
                           ") does not stack into " + shapeString(shape) +
                           " (" + dtypeName(whole.dtype) + ") along axis " +
                           std::to_string(axis));
    total += p.shape[axis];
  }
  if (total != shape[axis])
    return Status::error(std::string(op) + ": pieces add up to " +
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

/// Copies between the whole and its pieces: row `o` of the whole is the
/// concatenation of row `o` of every piece.
template <bool ToWhole>
Status stackKernel(const char *op, const TensorRef &whole,
                   const std::vector<TensorRef> &pieces,
                   const AttributeMap &attrs) {
  int64_t axis = 0, outer = 0, innerBytes = 0;
  if (Status s = checkPieces(op, whole, pieces, attrs.getInt("axis", 0), axis,
                             outer, innerBytes);
      !s)
    return s;
  const int64_t rowBytes = whole.shape[axis] * innerBytes;
  parallelRange(outer, outer * rowBytes / 4, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      char *row = static_cast<char *>(whole.data) + o * rowBytes;
      for (const TensorRef &p : pieces) {
        const int64_t bytes = p.shape[axis] * innerBytes;
        if (!bytes)
          continue;
        char *chunk = static_cast<char *>(p.data) + o * bytes;
        if (ToWhole)
          std::memcpy(row, chunk, static_cast<size_t>(bytes));
        else
          std::memcpy(chunk, row, static_cast<size_t>(bytes));
        row += bytes;
      }
    }
  });
  return Status::ok();
}

Status concatKernel(const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs,
                    const AttributeMap &attrs) {
  if (Status s = checkArity("concat", inputs, outputs, 1, SIZE_MAX, 1); !s)
    return s;
  return stackKernel<true>("concat", outputs[0], inputs, attrs);
}

Status splitKernel(const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &outputs,
                   const AttributeMap &attrs) {
  if (Status s = checkArity("split", inputs, outputs, 1, 1, SIZE_MAX); !s)
    return s;
  return stackKernel<false>("split", inputs[0], outputs, attrs);
}

//===----------------------------------------------------------------------===//
// gather
//===----------------------------------------------------------------------===//

Status gatherKernel(const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs,
                    const AttributeMap &attrs) {
  if (Status s = checkArity("gather", inputs, outputs, 2, 2, 1); !s)
    return s;
  const TensorRef &data = inputs[0], &indices = inputs[1], &out = outputs[0];
  if (Status s = checkSameDType("gather", data, out); !s)
    return s;
  if (!isInt(indices.dtype))
    return Status::error(std::string("gather: indices must be int64 or "
                                     "int32, got ") +
                         dtypeName(indices.dtype));
  int64_t axis = 0;
  if (Status s = normalizeAxis("gather", attrs.getInt("axis", 0),
                               data.shape.size(), axis);
      !s)
    return s;
  std::vector<int64_t> expected(data.shape.begin(), data.shape.begin() + axis);
  expected.insert(expected.end(), indices.shape.begin(), indices.shape.end());
  expected.insert(expected.end(), data.shape.begin() + axis + 1,
                  data.shape.end());
  if (expected != out.shape)
    return Status::error("gather: result shape " + shapeString(out.shape) +
                         " should be " + shapeString(expected));
  const int64_t n = data.shape[axis];
  const int64_t count = indices.numel();
  std::vector<int64_t> idx(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t v = indices.dtype == DType::I64 ? indices.as<int64_t>()[i]
                                                  : indices.as<int32_t>()[i];
    if (v < -n || v >= n)
      return Status::error("gather: index " + std::to_string(v) +
                           " out of range [" + std::to_string(-n) + ", " +
                           std::to_string(n) + ") on axis " +
                           std::to_string(axis));
    idx[i] = v < 0 ? v + n : v;
  }
  int64_t outer = 1, innerBytes = static_cast<int64_t>(dtypeSize(data.dtype));
  for (size_t d = 0; d < data.shape.size(); ++d)
    if (int64_t(d) < axis)
      outer *= data.shape[d];
    else if (int64_t(d) > axis)
      innerBytes *= data.shape[d];
  const char *src = static_cast<const char *>(data.data);
  char *dst = static_cast<char *>(out.data);
  const int64_t copies = outer * count;
  parallelRange(copies, copies * innerBytes / 4, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      const int64_t o = c / std::max<int64_t>(count, 1), t = c % count;
      std::memcpy(dst + c * innerBytes, src + (o * n + idx[t]) * innerBytes,
                  static_cast<size_t>(innerBytes));
    }
  });
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// scatter_add_rows
//===----------------------------------------------------------------------===//

template <class T>
void scatterAddRows(const std::vector<int64_t> &idx, const T *upd, T *out,
                    int64_t rows, int64_t width) {
  // Threads own column ranges, so no two write one element and the sums
  // are added in index order: deterministic.
  const int64_t n = static_cast<int64_t>(idx.size());
  parallelRange(width, n * width, [&](int64_t b, int64_t e) {
    for (int64_t i = 0; i < n; ++i) {
      if (idx[i] < 0 || idx[i] >= rows)
        continue;
      T *dst = out + idx[i] * width;
      const T *src = upd + i * width;
      for (int64_t c = b; c < e; ++c)
        dst[c] += src[c];
    }
  });
}

Status scatterAddRowsKernel(const std::vector<TensorRef> &inputs,
                            const std::vector<TensorRef> &outputs,
                            const AttributeMap &attrs) {
  if (Status s = checkArity("scatter_add_rows", inputs, outputs, 2, 2, 1); !s)
    return s;
  if (has16BitFloat(inputs))
    return runViaF32("scatter_add_rows", &scatterAddRowsKernel, inputs, outputs,
                     attrs);
  const TensorRef &indices = inputs[0], &upd = inputs[1], &out = outputs[0];
  if (!isInt(indices.dtype) || upd.dtype != DType::F32 ||
      out.dtype != DType::F32)
    return Status::error("scatter_add_rows: takes int indices and float "
                         "updates/result");
  if (indices.shape.size() != 1 || upd.shape.size() != 2 ||
      out.shape.size() != 2 || upd.shape[0] != indices.shape[0] ||
      upd.shape[1] != out.shape[1])
    return Status::error("scatter_add_rows: indices " +
                         shapeString(indices.shape) + ", updates " +
                         shapeString(upd.shape) + " and result " +
                         shapeString(out.shape) + " disagree");
  std::vector<int64_t> idx(static_cast<size_t>(indices.numel()));
  for (size_t i = 0; i < idx.size(); ++i)
    idx[i] = indices.dtype == DType::I64 ? indices.as<int64_t>()[i]
                                         : indices.as<int32_t>()[i];
  std::memset(out.data, 0, out.bytes());
  scatterAddRows(idx, upd.as<float>(), out.as<float>(), out.shape[0],
                 out.shape[1]);
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// random_keep
//===----------------------------------------------------------------------===//

/// splitmix64 of `x`: a well-mixed 64-bit hash.
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

Status randomKeepKernel(const std::vector<TensorRef> &inputs,
                        const std::vector<TensorRef> &outputs,
                        const AttributeMap &attrs) {
  if (Status s = checkArity("random_keep", inputs, outputs, 1, 1, 1); !s)
    return s;
  const TensorRef &counter = inputs[0], &out = outputs[0];
  if (!isInt(counter.dtype) || counter.numel() != 1 || out.dtype != DType::Bool)
    return Status::error("random_keep: takes an integer scalar counter to a "
                         "bool mask");
  double ratio = attrs.getFloat("ratio", 0.0);
  if (!(ratio >= 0 && ratio < 1))
    return Status::error("random_keep: ratio must lie in [0, 1)");
  uint64_t c = counter.dtype == DType::I64
                   ? static_cast<uint64_t>(counter.as<int64_t>()[0])
                   : static_cast<uint64_t>(counter.as<int32_t>()[0]);
  // One stream per (seed, dropout site, run); 53 random bits per element.
  uint64_t key =
      mix64(mix64(static_cast<uint64_t>(attrs.getInt("seed", 0)) ^
                  mix64(static_cast<uint64_t>(attrs.getInt("stream", 0)))) ^
            c);
  const double threshold = ratio * 9007199254740992.0; // 2^53
  uint8_t *keep = out.as<uint8_t>();
  const int64_t n = out.numel();
  parallelRange(n, n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      keep[i] = static_cast<double>(mix64(key + static_cast<uint64_t>(i)) >>
                                    11) >= threshold;
  });
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// trilu
//===----------------------------------------------------------------------===//

Status triluKernel(const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &outputs,
                   const AttributeMap &attrs) {
  if (Status s = checkArity("trilu", inputs, outputs, 1, 1, 1); !s)
    return s;
  if (Status s = checkSameDType("trilu", inputs[0], outputs[0]); !s)
    return s;
  const std::vector<int64_t> &shape = inputs[0].shape;
  if (shape.size() < 2 || shape != outputs[0].shape)
    return Status::error("trilu: needs input and result of the same shape "
                         "with rank >= 2, got " +
                         shapeString(shape) + " and " +
                         shapeString(outputs[0].shape));
  const bool upper = attrs.getInt("upper", 0) != 0;
  const int64_t diag = attrs.getInt("diagonal", 0);
  const int64_t rows = shape[shape.size() - 2], cols = shape.back();
  const int64_t es = static_cast<int64_t>(dtypeSize(outputs[0].dtype));
  const int64_t totalRows = inputs[0].numel() / std::max<int64_t>(cols, 1);
  const char *src = static_cast<const char *>(inputs[0].data);
  char *dst = static_cast<char *>(outputs[0].data);
  if (cols == 0)
    return Status::ok();
  parallelRange(totalRows, totalRows * cols, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t i = r % rows;
      // Kept columns [lo, hi): j <= i + diag (lower) or j >= i + diag.
      const int64_t lo = upper ? std::clamp<int64_t>(i + diag, 0, cols) : 0;
      const int64_t hi =
          upper ? cols : std::clamp<int64_t>(i + diag + 1, 0, cols);
      const char *s = src + r * cols * es;
      char *d = dst + r * cols * es;
      std::memset(d, 0, static_cast<size_t>(lo * es));
      if (s != d)
        std::memmove(d + lo * es, s + lo * es,
                     static_cast<size_t>((hi - lo) * es));
      std::memset(d + hi * es, 0, static_cast<size_t>((cols - hi) * es));
    }
  });
  return Status::ok();
}

} // namespace

void appendDataMovementKernels(std::vector<KernelEntry> &table) {
  table.push_back({"reshape", &reshapeKernel});
  table.push_back({"transpose", &transposeKernel});
  table.push_back({"slice", &sliceKernel});
  table.push_back({"concat", &concatKernel});
  table.push_back({"split", &splitKernel});
  table.push_back({"gather", &gatherKernel});
  table.push_back({"scatter_add_rows", &scatterAddRowsKernel});
  table.push_back({"random_keep", &randomKeepKernel});
  table.push_back({"expand", &expandKernel});
  table.push_back({"trilu", &triluKernel});
}

} // namespace colossal::rt::cpu
