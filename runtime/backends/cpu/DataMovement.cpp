//===- DataMovement.cpp - reshape, transpose, slice, concat, ... ----------===//
//
// reshape transpose slice concat split gather expand trilu. All of them move
// bytes without looking at them, so they work for every dtype. transpose,
// slice and expand are one strided copy over a merged index space.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/KernelUtil.h"
#include "runtime/backends/cpu/OpGeometry.h"

namespace colossal::rt::cpu {
namespace {

Status checkSameDType(std::string_view op, const TensorRef &in,
                      const TensorRef &out) {
  return checkDType(op, "result", out, in.dtype);
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
  BroadcastPlan plan;
  if (Status s = transposePlan(inputs, outputs, attrs, plan); !s)
    return s;
  stridedCopy(plan, inputs[0].data, outputs[0].data,
              dtypeSize(outputs[0].dtype));
  return Status::ok();
}

Status sliceKernel(const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &outputs,
                   const AttributeMap &attrs) {
  BroadcastPlan plan;
  int64_t base = 0;
  if (Status s = slicePlan(inputs, outputs, attrs, plan, base); !s)
    return s;
  if (outputs[0].numel() == 0)
    return Status::ok();
  const size_t es = dtypeSize(outputs[0].dtype);
  stridedCopy(plan, static_cast<const char *>(inputs[0].data) + base * es,
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

/// Copies between the whole and its pieces: row `o` of the whole is the
/// concatenation of row `o` of every piece.
template <bool ToWhole>
Status stackKernel(const char *op, const TensorRef &whole,
                   const std::vector<TensorRef> &pieces,
                   const AttributeMap &attrs) {
  int64_t axis = 0, outer = 0, innerBytes = 0;
  if (Status s = stackGeometry(op, whole, pieces, attrs.getInt("axis", 0), axis,
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
  GatherGeometry g;
  if (Status s = gatherGeometry(inputs, outputs, attrs, g); !s)
    return s;
  const TensorRef &data = inputs[0], &indices = inputs[1], &out = outputs[0];
  const int64_t n = g.n, count = g.count;
  std::vector<int64_t> idx(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t v = indices.dtype == DType::I64 ? indices.as<int64_t>()[i]
                                                  : indices.as<int32_t>()[i];
    if (v < -n || v >= n)
      return Status::error("gather: index " + std::to_string(v) +
                           " out of range [" + std::to_string(-n) + ", " +
                           std::to_string(n) + ") on axis " +
                           std::to_string(g.axis));
    idx[i] = v < 0 ? v + n : v;
  }
  const int64_t outer = g.outer,
                innerBytes =
                    g.inner * static_cast<int64_t>(dtypeSize(data.dtype));
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
  if (Status s = checkScatterAddRows(inputs, outputs); !s)
    return s;
  if (has16BitFloat(inputs))
    return runViaF32("scatter_add_rows", &scatterAddRowsKernel, inputs, outputs,
                     attrs);
  const TensorRef &indices = inputs[0], &upd = inputs[1], &out = outputs[0];
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

Status randomKeepKernel(const std::vector<TensorRef> &inputs,
                        const std::vector<TensorRef> &outputs,
                        const AttributeMap &attrs) {
  RandomKeep r;
  if (Status s = randomKeepGeometry(inputs, outputs, attrs, r); !s)
    return s;
  const TensorRef &counter = inputs[0], &out = outputs[0];
  uint64_t c = counter.dtype == DType::I64
                   ? static_cast<uint64_t>(counter.as<int64_t>()[0])
                   : static_cast<uint64_t>(counter.as<int32_t>()[0]);
  const uint64_t key = mix64(r.seedKey ^ c);
  const double threshold = r.threshold;
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
  TriluGeometry g;
  if (Status s = triluGeometry(inputs, outputs, attrs, g); !s)
    return s;
  const bool upper = g.upper;
  const int64_t diag = g.diagonal, rows = g.rows, cols = g.cols;
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
