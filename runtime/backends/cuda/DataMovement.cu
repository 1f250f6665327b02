//===- DataMovement.cu - Reshape, transpose, slice, concat, gather, ... ---===//
//
// Every rearrangement is one strided copy (an element's source offset from
// its output index) or, for concat and split, one 2-D memcpy per piece.
// Indices are read on the device: an out-of-range one sets the backend's
// error word, which synchronize() reports, as the CPU kernel would.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/OpGeometry.h"
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
  BroadcastPlan plan;
  if (Status s = cpu::transposePlan(inputs, outputs, attrs, plan); !s)
    return s;
  return stridedCopy("transpose", ctx, plan, inputs[0].data, outputs[0].data,
                     dtypeSize(outputs[0].dtype));
}

Status sliceOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
               const std::vector<TensorRef> &outputs,
               const AttributeMap &attrs) {
  BroadcastPlan plan;
  int64_t base = 0;
  if (Status s = cpu::slicePlan(inputs, outputs, attrs, plan, base); !s)
    return s;
  if (outputs[0].numel() == 0)
    return Status::ok();
  const size_t es = dtypeSize(outputs[0].dtype);
  return stridedCopy("slice", ctx, plan,
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
  int64_t axis = 0, outer = 0, inner = 0;
  if (Status s = cpu::stackGeometry(op, whole, pieces, attrs.getInt("axis", 0),
                                    axis, outer, inner);
      !s)
    return s;
  const int64_t rowBytes = whole.shape[axis] * inner;
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
  cpu::GatherGeometry g;
  if (Status s = cpu::gatherGeometry(inputs, outputs, attrs, g); !s)
    return s;
  const TensorRef &data = inputs[0], &indices = inputs[1], &out = outputs[0];
  const int64_t n = g.n, count = g.count, inner = g.inner;
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
  if (Status s = cpu::checkScatterAddRows(inputs, outputs); !s)
    return s;
  const TensorRef &indices = inputs[0], &upd = inputs[1], &out = outputs[0];
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

template <class I>
__global__ void randomKeepKernel(const I *counter, uint64_t seedKey,
                                 double threshold, uint8_t *keep, int64_t n) {
  const uint64_t key = cpu::mix64(seedKey ^ static_cast<uint64_t>(counter[0]));
  COLOSSAL_GRID_STRIDE(i, n) {
    keep[i] = static_cast<double>(cpu::mix64(key + static_cast<uint64_t>(i)) >>
                                  11) >= threshold;
  }
}

Status randomKeepOp(const KernelContext &ctx,
                    const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs,
                    const AttributeMap &attrs) {
  cpu::RandomKeep r;
  if (Status s = cpu::randomKeepGeometry(inputs, outputs, attrs, r); !s)
    return s;
  const TensorRef &counter = inputs[0], &out = outputs[0];
  const uint64_t seedKey = r.seedKey;
  const double threshold = r.threshold;
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
  cpu::TriluGeometry g;
  if (Status s = cpu::triluGeometry(inputs, outputs, attrs, g); !s)
    return s;
  const bool upper = g.upper;
  const int64_t diag = g.diagonal, rows = g.rows, cols = g.cols;
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
