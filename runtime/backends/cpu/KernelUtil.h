//===- KernelUtil.h - Shared machinery of the CPU kernels -------*- C++ -*-===//
//
// What the CPU kernel families share: half and bfloat16 conversion, dtype
// dispatch, argument checks, numpy broadcasting plans with parallel
// iteration, the threaded SGEMM wrapper and scratch buffers. Internal to
// runtime/backends/cpu.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_BACKENDS_CPU_KERNELUTIL_H
#define COLOSSAL_RUNTIME_BACKENDS_CPU_KERNELUTIL_H

#include "runtime/backends/cpu/CpuKernels.h"
#include "runtime/core/Float16.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace colossal::rt::cpu {

//===----------------------------------------------------------------------===//
// Registration
//===----------------------------------------------------------------------===//

struct KernelEntry {
  const char *name;
  KernelFn fn;
};

/// Each family appends its kernels; Registry.cpp collects them.
void appendElementwiseBinaryKernels(std::vector<KernelEntry> &table);
void appendElementwiseUnaryKernels(std::vector<KernelEntry> &table);
void appendFusedElementwiseKernels(std::vector<KernelEntry> &table);
void appendNormalizationKernels(std::vector<KernelEntry> &table);
void appendContractionKernels(std::vector<KernelEntry> &table);
void appendAttentionKernels(std::vector<KernelEntry> &table);
void appendConvKernels(std::vector<KernelEntry> &table);
void appendConvBackwardKernels(std::vector<KernelEntry> &table);
void appendReductionKernels(std::vector<KernelEntry> &table);
void appendDataMovementKernels(std::vector<KernelEntry> &table);

//===----------------------------------------------------------------------===//
// 16-bit floats
//===----------------------------------------------------------------------===//

/// Storage types for f16 and bf16 elements; arithmetic happens in float.
struct Half {
  uint16_t bits;
};
struct BFloat16 {
  uint16_t bits;
};

//===----------------------------------------------------------------------===//
// Element traits and dtype dispatch
//===----------------------------------------------------------------------===//

/// How an element of storage type T is computed on: `C` is the compute type
/// (float for the 16-bit floats), `load`/`store` convert.
template <class T> struct Num {
  using C = T;
  static C load(T v) { return v; }
  static T store(C v) { return v; }
};
template <> struct Num<Half> {
  using C = float;
  static float load(Half v) { return halfToFloat(v.bits); }
  static Half store(float v) { return Half{floatToHalf(v)}; }
};
template <> struct Num<BFloat16> {
  using C = float;
  static float load(BFloat16 v) { return bf16ToFloat(v.bits); }
  static BFloat16 store(float v) { return BFloat16{floatToBf16(v)}; }
};

template <class T> struct Tag { using type = T; };

inline bool isFloat(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 ||
         t == DType::F64;
}
inline bool isInt(DType t) { return t == DType::I64 || t == DType::I32; }

/// Whether any of `ts` is float16 or bfloat16.
inline bool has16BitFloat(const std::vector<TensorRef> &ts) {
  for (const TensorRef &t : ts)
    if (t.dtype == DType::F16 || t.dtype == DType::BF16)
      return true;
  return false;
}

inline Status unsupported(std::string_view op, DType t) {
  return Status::error(
      std::string(op) + ": " + dtypeName(t) + " is not supported" +
      (t == DType::F64 ? std::string("; float64 runs through elementwise ops, "
                                     "casts, reductions, matmul, topk and "
                                     "data movement only: cast the model (or "
                                     "this op's inputs) to float32")
                       : std::string()));
}

/// Calls f(Tag<T>{}) for the 32- and 16-bit float dtypes; error for the
/// others (float64 too: the kernels that take it dispatch with
/// dispatchNumeric).
template <class F> Status dispatchFloat(std::string_view op, DType t, F &&f) {
  switch (t) {
  case DType::F32:
    return f(Tag<float>{});
  case DType::F16:
    return f(Tag<Half>{});
  case DType::BF16:
    return f(Tag<BFloat16>{});
  default:
    return unsupported(op, t);
  }
}

/// Floats (float64 included) and the two integer types.
template <class F> Status dispatchNumeric(std::string_view op, DType t, F &&f) {
  switch (t) {
  case DType::F64:
    return f(Tag<double>{});
  case DType::I64:
    return f(Tag<int64_t>{});
  case DType::I32:
    return f(Tag<int32_t>{});
  default:
    return dispatchFloat(op, t, f);
  }
}

/// Every dtype; bool is stored as one byte.
template <class F> Status dispatchAny(std::string_view op, DType t, F &&f) {
  if (t == DType::Bool)
    return f(Tag<uint8_t>{});
  return dispatchNumeric(op, t, f);
}

//===----------------------------------------------------------------------===//
// Argument checks
//===----------------------------------------------------------------------===//

std::string shapeString(const std::vector<int64_t> &shape);

/// Checks operand/result counts and that every tensor has data (or is empty).
Status checkArity(std::string_view op, const std::vector<TensorRef> &inputs,
                  const std::vector<TensorRef> &outputs, size_t minInputs,
                  size_t maxInputs, size_t numOutputs);

/// Element strides of `in` broadcast (numpy rules) to `target`: 0 where a
/// dimension is broadcast.
Status broadcastStrides(std::string_view op, const char *what,
                        const std::vector<int64_t> &in,
                        const std::vector<int64_t> &target,
                        std::vector<int64_t> &strides);

/// For each batch index of `outBatch` (row-major), the index of the
/// matching batch of an operand whose batch shape broadcasts to it.
Status batchIndices(std::string_view op, const char *what,
                    const std::vector<int64_t> &inBatch,
                    const std::vector<int64_t> &outBatch,
                    std::vector<int64_t> &indices);

/// Error unless `t` has dtype `want`.
Status checkDType(std::string_view op, const char *what, const TensorRef &t,
                  DType want);

/// Error unless the two tensors have the same element count.
Status checkSameNumel(std::string_view op, const TensorRef &in,
                      const TensorRef &out);

/// Normalizes a possibly negative axis into [0, rank); error if out of range.
Status normalizeAxis(std::string_view op, int64_t axis, size_t rank,
                     int64_t &result);

//===----------------------------------------------------------------------===//
// Parallel loops
//===----------------------------------------------------------------------===//

/// Below this many elements a loop is not worth waking the thread team.
constexpr int64_t kParallelElements = 32768;

inline int maxThreads() {
  return omp_in_parallel() ? 1 : omp_get_max_threads();
}

/// Runs f(begin, end) over [0, n) split into one contiguous chunk per
/// thread when `work` (elements, or an estimate of operations) is large.
template <class F> void parallelRange(int64_t n, int64_t work, F &&f) {
  if (n <= 0)
    return;
  int threads = maxThreads();
  if (threads <= 1 || work < kParallelElements || n < 2) {
    f(int64_t(0), n);
    return;
  }
  threads = static_cast<int>(std::min<int64_t>(threads, n));
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num();
    int count = omp_get_num_threads();
    int64_t begin = n * t / count, end = n * (t + 1) / count;
    if (begin < end)
      f(begin, end);
  }
}

//===----------------------------------------------------------------------===//
// Broadcasting
//===----------------------------------------------------------------------===//

/// The output index space of a broadcasting op with adjacent dimensions
/// merged where every operand allows it, and each operand's element stride
/// per merged dimension (0 where it is broadcast).
struct BroadcastPlan {
  std::vector<int64_t> dims;
  std::vector<std::vector<int64_t>> strides;
  int64_t total = 0;

  int64_t innerStride(size_t operand) const { return strides[operand].back(); }
};

/// Plans broadcasting `inputs` to `out` (numpy rules); error when an input
/// does not broadcast to it.
Status
makeBroadcastPlan(std::string_view op, const std::vector<int64_t> &out,
                  const std::vector<const std::vector<int64_t> *> &inputs,
                  BroadcastPlan &plan);

/// Calls f(outOffset, inputOffsets, n) for runs of n consecutive output
/// elements along the innermost merged dimension; operand k's element i of
/// the run is at inputOffsets[k] + i * plan.innerStride(k). Runs are split
/// across threads when the output is large.
template <class F> void forEachRun(const BroadcastPlan &plan, F &&f) {
  if (plan.total <= 0)
    return;
  const size_t rank = plan.dims.size();
  const size_t numOps = plan.strides.size();
  const int64_t inner = plan.dims.back();
  parallelRange(plan.total, plan.total, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> idx(rank, 0), rowOff(numOps, 0), off(numOps, 0);
    int64_t row = begin / inner, col = begin % inner;
    for (size_t d = rank - 1; d-- > 0;) {
      idx[d] = row % plan.dims[d];
      row /= plan.dims[d];
      for (size_t k = 0; k < numOps; ++k)
        rowOff[k] += idx[d] * plan.strides[k][d];
    }
    int64_t e = begin;
    while (e < end) {
      int64_t n = std::min(inner - col, end - e);
      for (size_t k = 0; k < numOps; ++k)
        off[k] = rowOff[k] + col * plan.strides[k][rank - 1];
      f(e, off.data(), n);
      e += n;
      col = 0;
      for (size_t d = rank - 1; d-- > 0;) {
        for (size_t k = 0; k < numOps; ++k)
          rowOff[k] += plan.strides[k][d];
        if (++idx[d] < plan.dims[d])
          break;
        for (size_t k = 0; k < numOps; ++k)
          rowOff[k] -= plan.strides[k][d] * plan.dims[d];
        idx[d] = 0;
      }
    }
  });
}

//===----------------------------------------------------------------------===//
// Scratch memory, SGEMM and 16-bit float fallbacks
//===----------------------------------------------------------------------===//

struct FreeDeleter {
  void operator()(void *p) const { std::free(p); }
};

/// A float buffer from malloc, so running out of memory is a Status rather
/// than an abort (the runtime builds without exceptions).
class FloatBuffer {
public:
  Status allocate(std::string_view op, int64_t count);
  float *data() const { return data_.get(); }

private:
  std::unique_ptr<float, FreeDeleter> data_;
};

/// Row-major C[M,N] = alpha * op(A) @ op(B) + beta * C. Outside a parallel
/// region, large products are split over the OpenMP threads along M or N,
/// each part a single-threaded OpenBLAS call (OpenBLAS's own threads are
/// switched off so the two thread pools never fight over the cores).
void sgemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
           float alpha, const float *a, int64_t lda, const float *b,
           int64_t ldb, float beta, float *c, int64_t ldc);
/// C = A B (row-major, optionally transposed) in float64, one BLAS thread.
void dgemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
           const double *a, int64_t lda, const double *b, int64_t ldb,
           double *c, int64_t ldc);

/// Runs an f32 kernel on f16/bf16 tensors: float copies of the 16-bit
/// float inputs and outputs, `kernel` on them, results rounded back.
/// Integer and bool tensors (masks, indices) pass through.
Status runViaF32(std::string_view op, KernelFn kernel,
                 const std::vector<TensorRef> &inputs,
                 const std::vector<TensorRef> &outputs,
                 const AttributeMap &attrs);

} // namespace colossal::rt::cpu

#endif // COLOSSAL_RUNTIME_BACKENDS_CPU_KERNELUTIL_H
