//===- DeviceUtil.cuh - Shared machinery of the CUDA kernels ----*- CUDA
//-*-===//
//
// Element load/store in fp32, dtype dispatch, grid sizes, launch checks and
// broadcast indexing on the device, for the kernel families. Internal to
// runtime/backends/cuda.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_BACKENDS_CUDA_DEVICEUTIL_CUH
#define COLOSSAL_RUNTIME_BACKENDS_CUDA_DEVICEUTIL_CUH

#include "runtime/backends/cpu/KernelUtil.h"
#include "runtime/backends/cuda/KernelTable.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace colossal::rt::cuda {

// Host-side checks shared with the CPU kernels.
using cpu::BroadcastPlan;
using cpu::checkArity;
using cpu::checkDType;
using cpu::checkSameNumel;
using cpu::isFloat;
using cpu::isInt;
using cpu::makeBroadcastPlan;
using cpu::normalizeAxis;
using cpu::shapeString;
/// The CPU's message, except for float64, which only the CPU runs.
inline Status unsupported(std::string_view op, DType t) {
  if (t == DType::F64)
    return Status::error(std::string(op) +
                         ": float64 runs on the CPU backend only; run with "
                         "--backend=cpu or cast the model to float32");
  return cpu::unsupported(op, t);
}

//===----------------------------------------------------------------------===//
// Elements
//===----------------------------------------------------------------------===//

/// Storage type T computed on as C (fp32 for the 16-bit floats).
template <class T> struct Num {
  using C = T;
  __device__ static C load(T v) { return v; }
  __device__ static T store(C v) { return v; }
};
template <> struct Num<__half> {
  using C = float;
  __device__ static float load(__half v) { return __half2float(v); }
  __device__ static __half store(float v) { return __float2half_rn(v); }
};
template <> struct Num<__nv_bfloat16> {
  using C = float;
  __device__ static float load(__nv_bfloat16 v) { return __bfloat162float(v); }
  __device__ static __nv_bfloat16 store(float v) {
    return __float2bfloat16_rn(v);
  }
};

template <class T> struct Tag { using type = T; };

/// Calls f(Tag<T>{}) for the float dtypes.
template <class F> Status dispatchFloat(std::string_view op, DType t, F &&f) {
  switch (t) {
  case DType::F32:
    return f(Tag<float>{});
  case DType::F16:
    return f(Tag<__half>{});
  case DType::BF16:
    return f(Tag<__nv_bfloat16>{});
  default:
    return unsupported(op, t);
  }
}

/// Floats and the two integer types.
template <class F> Status dispatchNumeric(std::string_view op, DType t, F &&f) {
  switch (t) {
  case DType::I64:
    return f(Tag<int64_t>{});
  case DType::I32:
    return f(Tag<int32_t>{});
  default:
    return dispatchFloat(op, t, f);
  }
}

/// Every dtype; bool is one byte.
template <class F> Status dispatchAny(std::string_view op, DType t, F &&f) {
  if (t == DType::Bool)
    return f(Tag<uint8_t>{});
  return dispatchNumeric(op, t, f);
}

//===----------------------------------------------------------------------===//
// Launches
//===----------------------------------------------------------------------===//

constexpr int kThreads = 256;

/// Blocks for a grid-stride loop over n elements: enough to fill the
/// device several times over, no more.
inline unsigned gridFor(const KernelContext &ctx, int64_t n) {
  const int64_t want = (n + kThreads - 1) / kThreads;
  const int64_t cap = int64_t(ctx.multiprocessors) * 16;
  return static_cast<unsigned>(want < 1 ? 1 : (want < cap ? want : cap));
}

/// The status of the launch just made.
inline Status launched(std::string_view op) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess)
    return Status::ok();
  return Status::error(std::string(op) +
                       ": CUDA kernel launch failed: " + cudaGetErrorString(e));
}

#define COLOSSAL_GRID_STRIDE(i, n)                                             \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);    \
       i += int64_t(gridDim.x) * blockDim.x)

//===----------------------------------------------------------------------===//
// Broadcasting
//===----------------------------------------------------------------------===//

constexpr int kMaxRank = 8;
constexpr int kMaxOperands = 4;

/// A BroadcastPlan passed by value to a kernel: each operand's element
/// offset for output element i.
struct Broadcast {
  int rank = 0;
  int64_t dims[kMaxRank];
  int64_t strides[kMaxOperands][kMaxRank];

  __device__ void offsets(int64_t i, int64_t *off, int operands) const {
    for (int k = 0; k < operands; ++k)
      off[k] = 0;
    for (int d = rank - 1; d >= 0; --d) {
      const int64_t idx = i % dims[d];
      i /= dims[d];
      for (int k = 0; k < operands; ++k)
        off[k] += idx * strides[k][d];
    }
  }
};

/// The device form of `plan`; error past kMaxRank merged dimensions.
inline Status toDevice(std::string_view op, const BroadcastPlan &plan,
                       Broadcast &out) {
  if (plan.dims.size() > size_t(kMaxRank) ||
      plan.strides.size() > size_t(kMaxOperands))
    return Status::error(std::string(op) + ": broadcasting over more than " +
                         std::to_string(kMaxRank) +
                         " non-mergeable dimensions is not supported on cuda");
  out.rank = static_cast<int>(plan.dims.size());
  for (size_t d = 0; d < plan.dims.size(); ++d) {
    out.dims[d] = plan.dims[d];
    for (size_t k = 0; k < plan.strides.size(); ++k)
      out.strides[k][d] = plan.strides[k][d];
  }
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Block reductions
//===----------------------------------------------------------------------===//

__device__ inline float warpSum(float v) {
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ inline float warpMax(float v) {
  for (int o = 16; o > 0; o >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/// Sum (or max) over the block; every thread gets the result. `shared`
/// holds 32 floats. blockDim.x is a multiple of 32.
template <bool Max>
__device__ inline float blockReduce(float v, float *shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  v = Max ? warpMax(v) : warpSum(v);
  __syncthreads(); // `shared` may still be read from a previous call
  if (lane == 0)
    shared[warp] = v;
  __syncthreads();
  float r = lane < warps ? shared[lane] : (Max ? -INFINITY : 0.0f);
  r = Max ? warpMax(r) : warpSum(r);
  return r;
}

/// The same in double, for statistics the CPU accumulates in double.
__device__ inline double warpSumD(double v) {
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ inline double blockSumD(double v, double *shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  v = warpSumD(v);
  __syncthreads();
  if (lane == 0)
    shared[warp] = v;
  __syncthreads();
  double r = lane < warps ? shared[lane] : 0.0;
  return warpSumD(r);
}

} // namespace colossal::rt::cuda

#endif // COLOSSAL_RUNTIME_BACKENDS_CUDA_DEVICEUTIL_CUH
