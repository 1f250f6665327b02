//===- DataMovement.cu - Reshape, transpose, slice, concat, gather, ... ---===//
//
// Every rearrangement is one strided copy (an element's source offset from
// its output index) or, for concat and split, one 2-D memcpy per piece.
// Indices are read on the device: an out-of-range one sets the backend's
// error word, which synchronize() reports, as the CPU kernel would.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cuda/DeviceUtil.cuh"

namespace colossal::rt::cuda {
namespace {

Status checkSameDType(std::string_view op, const TensorRef &in,
                      const TensorRef &out) {
  return checkDType(op, "result", out, in.dtype);
}

Status cudaCall(std::string_view op, cudaError_t e) {
  if (e == cudaSuccess)
    return Status::ok();
  return Status::error(std::string(op) + ": " + cudaGetErrorString(e));
}

std::vector<int64_t> contiguousStrides(const std::vector<int64_t> &shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;)
    strides[d - 1] = strides[d] * shape[d];
  return strides;
}

/// The output's index space with the source stride of each dimension,
/// size-1 dimensions dropped and contiguous runs merged (as the CPU's).
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
__global__ void stridedCopyKernel(Broadcast bc, const T *in, T *out,
                                  int64_t n) {
  COLOSSAL_GRID_STRIDE(i, n) {
    int64_t off;
    bc.offsets(i, &off, 1);
    out[i] = in[off];
  }
}

/// out[i] = in[offset of i under `plan`], moving elements of `size` bytes.
Status stridedCopy(std::string_view op, const KernelContext &ctx,
                   const BroadcastPlan &plan, const void *in, void *out,
                   size_t size) {
  if (plan.total <= 0)
    return Status::ok();
  if (plan.dims.size() == 1 && plan.strides[0][0] == 1)
    return cudaCall(op, cudaMemcpyAsync(out, in, plan.total * size,
                                        cudaMemcpyDeviceToDevice, ctx.stream));
  Broadcast bc;
  if (Status s = toDevice(op, plan, bc); !s)
    return s;
  const unsigned grid = gridFor(ctx, plan.total);
  switch (size) {
  case 1:
    stridedCopyKernel<<<grid, kThreads, 0, ctx.stream>>>(
        bc, static_cast<const uint8_t *>(in), static_cast<uint8_t *>(out),
        plan.total);
    break;
  case 2:
    stridedCopyKernel<<<grid, kThreads, 0, ctx.stream>>>(
        bc, static_cast<const uint16_t *>(in), static_cast<uint16_t *>(out),
        plan.total);
    break;
  case 4:
    stridedCopyKernel<<<grid, kThreads, 0, ctx.stream>>>(
        bc, static_cast<const uint32_t *>(in), static_cast<uint32_t *>(out),
        plan.total);
    break;
  default:
    stridedCopyKernel<<<grid, kThreads, 0, ctx.stream>>>(
        bc, static_cast<const uint64_t *>(in), static_cast<uint64_t *>(out),
        plan.total);
    break;
  }
  return launched(op);
}

Status reshapeOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
                 const std::vector<TensorRef> &outputs, const AttributeMap &) {
  if (Status s = checkArity("reshape", inputs, outputs, 1, 1, 1); !s)
    return s;
  if (Status s = checkSameDType("reshape", inputs[0], outputs[0]); !s)
    return s;
  if (Status s = checkSameNumel("reshape", inputs[0], outputs[0]); !s)
    return s;
  if (!outputs[0].numel() || inputs[0].data == outputs[0].data)
    return Status::ok();
  return cudaCall("reshape",
                  cudaMemcpyAsync(outputs[0].data, inputs[0].data,
                                  outputs[0].bytes(), cudaMemcpyDeviceToDevice,
                                  ctx.stream));
}

Status transposeOp(const KernelContext &ctx,
                   const std::vector<TensorRef> &inputs,
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
                         " does not take " + shapeString(in) + " to " +
                         shapeString(out));
  const std::vector<int64_t> inStrides = contiguousStrides(in);
  std::vector<int64_t> strides(out.size());
  for (size_t i = 0; i < out.size(); ++i)
    strides[i] = inStrides[perm[i]];
  return stridedCopy("transpose", ctx, stridedPlan(out, strides),
                     inputs[0].data, outputs[0].data,
                     dtypeSize(outputs[0].dtype));
}

Status sliceOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
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
    return Status::error("slice: starts, limits and steps need one entry per "
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
  return stridedCopy("slice", ctx, stridedPlan(out, strides),
                     static_cast<const char *>(inputs[0].data) + base * es,
                     outputs[0].data, es);
}

Status expandOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
                const std::vector<TensorRef> &outputs, const AttributeMap &) {
  if (Status s = checkArity("expand", inputs, outputs, 1, 1, 1); !s)
    return s;
  if (Status s = checkSameDType("expand", inputs[0], outputs[0]); !s)
    return s;
  BroadcastPlan plan;
  if (Status s = makeBroadcastPlan("expand", outputs[0].shape,
                                   {&inputs[0].shape}, plan);
      !s)
    return s;
  return stridedCopy("expand", ctx, plan, inputs[0].data, outputs[0].data,
                     dtypeSize(outputs[0].dtype));
}

//===----------------------------------------------------------------------===//
// concat and split: each piece is a 2-D copy (outer rows of its width)
//===----------------------------------------------------------------------===//

template <bool ToWhole>
Status stackOp(const char *op, const KernelContext &ctx, const TensorRef &whole,
               const std::vector<TensorRef> &pieces,
               const AttributeMap &attrs) {
  const std::vector<int64_t> &shape = whole.shape;
  int64_t axis = 0;
  if (Status s = normalizeAxis(op, attrs.getInt("axis", 0), shape.size(), axis);
      !s)
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
  int64_t outer = 1, inner = static_cast<int64_t>(dtypeSize(whole.dtype));
  for (size_t d = 0; d < shape.size(); ++d)
    if (int64_t(d) < axis)
      outer *= shape[d];
    else if (int64_t(d) > axis)
      inner *= shape[d];
  const int64_t rowBytes = shape[axis] * inner;
  int64_t at = 0;
  for (const TensorRef &p : pieces) {
    const int64_t bytes = p.shape[axis] * inner;
    if (bytes && outer) {
      char *row = static_cast<char *>(whole.data) + at;
      cudaError_t e =
          ToWhole
              ? cudaMemcpy2DAsync(row, rowBytes, p.data, bytes, bytes, outer,
                                  cudaMemcpyDeviceToDevice, ctx.stream)
              : cudaMemcpy2DAsync(p.data, bytes, row, rowBytes, bytes, outer,
                                  cudaMemcpyDeviceToDevice, ctx.stream);
      if (Status s = cudaCall(op, e); !s)
        return s;
    }
    at += bytes;
  }
  return Status::ok();
}

Status concatOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
                const std::vector<TensorRef> &outputs,
                const AttributeMap &attrs) {
  if (Status s = checkArity("concat", inputs, outputs, 1, SIZE_MAX, 1); !s)
    return s;
  return stackOp<true>("concat", ctx, outputs[0], inputs, attrs);
}

Status splitOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
               const std::vector<TensorRef> &outputs,
               const AttributeMap &attrs) {
  if (Status s = checkArity("split", inputs, outputs, 1, 1, SIZE_MAX); !s)
    return s;
  return stackOp<false>("split", ctx, inputs[0], outputs, attrs);
}

//===----------------------------------------------------------------------===//
// gather and scatter_add_rows
//===----------------------------------------------------------------------===//

/// Reads index t, counted from the end when negative; -1 when out of range
/// (which raises the error word).
template <class I>
__device__ int64_t indexAt(const I *idx, int64_t t, int64_t n, int *error) {
  int64_t v = static_cast<int64_t>(idx[t]);
  if (v < -n || v >= n) {
    atomicExch(error, kIndexOutOfRange);
    return -1;
  }
  return v < 0 ? v + n : v;
}

/// out[o, t, j] = data[o, idx[t], j], elements of type T.
template <class T, class I>
__global__ void gatherKernel(const T *data, const I *idx, T *out, int64_t count,
                             int64_t n, int64_t inner, int64_t total,
                             int *error) {
  COLOSSAL_GRID_STRIDE(i, total) {
    const int64_t j = i % inner, c = i / inner;
    const int64_t o = c / count, t = c % count;
    const int64_t v = indexAt(idx, t, n, error);
    out[i] = v < 0 ? T(0) : data[(o * n + v) * inner + j];
  }
}

Status gatherOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
                const std::vector<TensorRef> &outputs,
                const AttributeMap &attrs) {
  if (Status s = checkArity("gather", inputs, outputs, 2, 2, 1); !s)
    return s;
  const TensorRef &data = inputs[0], &indices = inputs[1], &out = outputs[0];
  if (Status s = checkSameDType("gather", data, out); !s)
    return s;
  if (!isInt(indices.dtype))
    return Status::error(std::string("gather: indices must be integers, got ") +
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
                         " is not " + shapeString(expected));
  const int64_t n = data.shape[axis], count = indices.numel();
  int64_t inner = 1;
  for (size_t d = size_t(axis) + 1; d < data.shape.size(); ++d)
    inner *= data.shape[d];
  const int64_t total = out.numel();
  if (total == 0)
    return Status::ok();
  if (inner == 0 || count == 0)
    return Status::ok();
  const unsigned grid = gridFor(ctx, total);
  auto run = [&](auto elem, auto index) {
    using T = decltype(elem);
    using I = decltype(index);
    gatherKernel<<<grid, kThreads, 0, ctx.stream>>>(
        data.as<T>(), indices.as<I>(), out.as<T>(), count, n, inner, total,
        ctx.errorWord);
  };
  auto withIndex = [&](auto elem) {
    if (indices.dtype == DType::I64)
      run(elem, int64_t());
    else
      run(elem, int32_t());
  };
  switch (dtypeSize(data.dtype)) {
  case 1:
    withIndex(uint8_t());
    break;
  case 2:
    withIndex(uint16_t());
    break;
  case 4:
    withIndex(uint32_t());
    break;
  default:
    withIndex(uint64_t());
    break;
  }
  return launched("gather");
}

template <class T, class I>
__global__ void scatterAddRowsKernel(const I *idx, const T *upd, T *out,
                                     int64_t rows, int64_t width,
                                     int64_t total) {
  COLOSSAL_GRID_STRIDE(i, total) {
    const int64_t r = static_cast<int64_t>(idx[i / width]);
    if (r >= 0 && r < rows) // as on the CPU, rows outside are dropped
      atomicAdd(out + r * width + i % width, upd[i]);
  }
}

Status scatterAddRowsOp(const KernelContext &ctx,
                        const std::vector<TensorRef> &inputs,
                        const std::vector<TensorRef> &outputs,
                        const AttributeMap &) {
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
  if (Status s =
          cudaCall("scatter_add_rows",
                   cudaMemsetAsync(out.data, 0, out.bytes(), ctx.stream));
      !s)
    return s;
  const int64_t total = upd.numel();
  if (total == 0)
    return Status::ok();
  return dispatchFloat("scatter_add_rows", upd.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const unsigned grid = gridFor(ctx, total);
    if (indices.dtype == DType::I64)
      scatterAddRowsKernel<<<grid, kThreads, 0, ctx.stream>>>(
          indices.as<int64_t>(), upd.as<T>(), out.as<T>(), out.shape[0],
          out.shape[1], total);
    else
      scatterAddRowsKernel<<<grid, kThreads, 0, ctx.stream>>>(
          indices.as<int32_t>(), upd.as<T>(), out.as<T>(), out.shape[0],
          out.shape[1], total);
    return launched("scatter_add_rows");
  });
}

//===----------------------------------------------------------------------===//
// random_keep: the CPU's counter-based stream, element for element
//===----------------------------------------------------------------------===//

__host__ __device__ inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

template <class I>
__global__ void randomKeepKernel(const I *counter, uint64_t seedKey,
                                 double threshold, uint8_t *keep, int64_t n) {
  const uint64_t key = mix64(seedKey ^ static_cast<uint64_t>(counter[0]));
  COLOSSAL_GRID_STRIDE(i, n) {
    keep[i] = static_cast<double>(mix64(key + static_cast<uint64_t>(i)) >>
                                  11) >= threshold;
  }
}

Status randomKeepOp(const KernelContext &ctx,
                    const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs,
                    const AttributeMap &attrs) {
  if (Status s = checkArity("random_keep", inputs, outputs, 1, 1, 1); !s)
    return s;
  const TensorRef &counter = inputs[0], &out = outputs[0];
  if (!isInt(counter.dtype) || counter.numel() != 1 || out.dtype != DType::Bool)
    return Status::error("random_keep: takes an integer scalar counter to a "
                         "bool mask");
  const double ratio = attrs.getFloat("ratio", 0.0);
  if (!(ratio >= 0 && ratio < 1))
    return Status::error("random_keep: ratio " + std::to_string(ratio) +
                         " is not in [0, 1)");
  const uint64_t seedKey =
      mix64(static_cast<uint64_t>(attrs.getInt("seed", 0)) ^
            mix64(static_cast<uint64_t>(attrs.getInt("stream", 0))));
  const double threshold = ratio * 9007199254740992.0; // 2^53
  const int64_t n = out.numel();
  if (n == 0)
    return Status::ok();
  const unsigned grid = gridFor(ctx, n);
  if (counter.dtype == DType::I64)
    randomKeepKernel<<<grid, kThreads, 0, ctx.stream>>>(
        counter.as<int64_t>(), seedKey, threshold, out.as<uint8_t>(), n);
  else
    randomKeepKernel<<<grid, kThreads, 0, ctx.stream>>>(
        counter.as<int32_t>(), seedKey, threshold, out.as<uint8_t>(), n);
  return launched("random_keep");
}

//===----------------------------------------------------------------------===//
// trilu
//===----------------------------------------------------------------------===//

template <class T>
__global__ void triluKernel(const T *in, T *out, int64_t rows, int64_t cols,
                            bool upper, int64_t diag, int64_t total) {
  COLOSSAL_GRID_STRIDE(e, total) {
    const int64_t j = e % cols, i = (e / cols) % rows;
    const bool keep = upper ? j - i >= diag : j - i <= diag;
    out[e] = keep ? in[e] : T(0);
  }
}

Status triluOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
               const std::vector<TensorRef> &outputs,
               const AttributeMap &attrs) {
  if (Status s = checkArity("trilu", inputs, outputs, 1, 1, 1); !s)
    return s;
  if (Status s = checkSameDType("trilu", inputs[0], outputs[0]); !s)
    return s;
  const std::vector<int64_t> &shape = inputs[0].shape;
  if (shape.size() < 2 || shape != outputs[0].shape)
    return Status::error("trilu: needs rank >= 2 and equal shapes, got " +
                         shapeString(shape) + " and " +
                         shapeString(outputs[0].shape));
  const bool upper = attrs.getInt("upper", 0) != 0;
  const int64_t diag = attrs.getInt("diagonal", 0);
  const int64_t rows = shape[shape.size() - 2], cols = shape.back();
  const int64_t total = inputs[0].numel();
  if (total == 0)
    return Status::ok();
  const unsigned grid = gridFor(ctx, total);
  // Zeroing moves bits: one kernel per element size (0 is all-zero bits).
  switch (dtypeSize(outputs[0].dtype)) {
  case 1:
    triluKernel<<<grid, kThreads, 0, ctx.stream>>>(
        inputs[0].as<uint8_t>(), outputs[0].as<uint8_t>(), rows, cols, upper,
        diag, total);
    break;
  case 2:
    triluKernel<<<grid, kThreads, 0, ctx.stream>>>(
        inputs[0].as<uint16_t>(), outputs[0].as<uint16_t>(), rows, cols, upper,
        diag, total);
    break;
  case 4:
    triluKernel<<<grid, kThreads, 0, ctx.stream>>>(
        inputs[0].as<uint32_t>(), outputs[0].as<uint32_t>(), rows, cols, upper,
        diag, total);
    break;
  default:
    triluKernel<<<grid, kThreads, 0, ctx.stream>>>(
        inputs[0].as<uint64_t>(), outputs[0].as<uint64_t>(), rows, cols, upper,
        diag, total);
    break;
  }
  return launched("trilu");
}

} // namespace

void appendDataMovementKernels(std::vector<KernelEntry> &table) {
  table.push_back({"reshape", &reshapeOp});
  table.push_back({"transpose", &transposeOp});
  table.push_back({"slice", &sliceOp});
  table.push_back({"concat", &concatOp});
  table.push_back({"split", &splitOp});
  table.push_back({"gather", &gatherOp});
  table.push_back({"scatter_add_rows", &scatterAddRowsOp});
  table.push_back({"random_keep", &randomKeepOp});
  table.push_back({"expand", &expandOp});
  table.push_back({"trilu", &triluOp});
}

} // namespace colossal::rt::cuda
