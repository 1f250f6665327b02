//===- Contraction.cpp - matmul and linear --------------------------------===//
//
// Every f32 contraction goes to SGEMM. linear is one SGEMM over all rows;
// matmul folds the batch into M when the right operand is shared, and
// otherwise runs one SGEMM per batch, the batches spread over the threads.
// f16/bf16 go through f32 copies; integer matmul is a plain loop.
// Attention is in Attention.cpp.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/KernelUtil.h"
#include "runtime/backends/cpu/OpGeometry.h"
#include "runtime/backends/cpu/VecMath.h"

#include <cmath>
#include <limits>
#include <type_traits>

namespace colossal::rt::cpu {
namespace {

/// Runs f(b) for every batch: spread over the threads when there are enough
/// batches (each SGEMM then runs single-threaded), else one after another
/// with each SGEMM threaded.
template <class F> void forEachBatch(int64_t batches, F &&f) {
  const int threads = maxThreads();
  if (threads > 1 && batches >= threads) {
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < batches; ++b)
      f(b);
  } else {
    for (int64_t b = 0; b < batches; ++b)
      f(b);
  }
}

//===----------------------------------------------------------------------===//
// matmul
//===----------------------------------------------------------------------===//

template <class T>
void intMatmul(const T *a, const T *b, T *c, int64_t m, int64_t n, int64_t k) {
  using U = std::make_unsigned_t<T>; // wraps instead of overflowing
  for (int64_t i = 0; i < m; ++i) {
    U *row = reinterpret_cast<U *>(c + i * n);
    for (int64_t j = 0; j < n; ++j)
      row[j] = 0;
    for (int64_t p = 0; p < k; ++p) {
      const U av = static_cast<U>(a[i * k + p]);
      const T *brow = b + p * n;
      for (int64_t j = 0; j < n; ++j)
        row[j] += av * static_cast<U>(brow[j]);
    }
  }
}

Status matmulKernel(const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs,
                    const AttributeMap &attrs) {
  if (Status s = checkArity("matmul", inputs, outputs, 2, 2, 1); !s)
    return s;
  if (has16BitFloat(inputs))
    return runViaF32("matmul", &matmulKernel, inputs, outputs, attrs);
  MatmulGeometry g;
  if (Status s = matmulGeometry(inputs, outputs, attrs, g); !s)
    return s;
  const TensorRef &a = inputs[0], &b = inputs[1], &c = outputs[0];
  if (c.numel() == 0)
    return Status::ok();
  const bool ta = g.ta, tb = g.tb;
  const int64_t m = g.m, n = g.n, k = g.k, batches = g.batches;
  const std::vector<int64_t> &aIdx = g.aIdx, &bIdx = g.bIdx;

  if (a.dtype == DType::F32) {
    const float *pa = a.as<float>(), *pb = b.as<float>();
    float *pc = c.as<float>();
    const int64_t lda = ta ? m : k, ldb = tb ? k : n;
    // A shared rhs and an unbroadcast lhs: the batch is just more rows.
    if (!ta && numElements(g.bBatch) == 1 && numElements(g.aBatch) == batches) {
      sgemm(false, tb, batches * m, n, k, 1.0f, pa, lda, pb, ldb, 0.0f, pc, n);
      return Status::ok();
    }
    forEachBatch(batches, [&](int64_t i) {
      sgemm(ta, tb, m, n, k, 1.0f, pa + aIdx[i] * m * k, lda,
            pb + bIdx[i] * k * n, ldb, 0.0f, pc + i * m * n, n);
    });
    return Status::ok();
  }
  if (a.dtype == DType::F64) {
    const double *pa = a.as<double>(), *pb = b.as<double>();
    double *pc = c.as<double>();
    const int64_t lda = ta ? m : k, ldb = tb ? k : n;
    forEachBatch(batches, [&](int64_t i) {
      dgemm(ta, tb, m, n, k, pa + aIdx[i] * m * k, lda, pb + bIdx[i] * k * n,
            ldb, pc + i * m * n, n);
    });
    return Status::ok();
  }
  if (!isInt(a.dtype))
    return unsupported("matmul", a.dtype);
  return dispatchNumeric("matmul", a.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_integral_v<T>) {
      const T *pa = a.as<T>(), *pb = b.as<T>();
      T *pc = c.as<T>();
      parallelRange(batches, batches * m * n * k, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i)
          intMatmul(pa + aIdx[i] * m * k, pb + bIdx[i] * k * n, pc + i * m * n,
                    m, n, k);
      });
    }
    return Status::ok();
  });
}

//===----------------------------------------------------------------------===//
// linear
//===----------------------------------------------------------------------===//

Status linearKernel(const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs,
                    const AttributeMap &attrs) {
  if (Status s = checkArity("linear", inputs, outputs, 2, 3, 1); !s)
    return s;
  if (has16BitFloat(inputs))
    return runViaF32("linear", &linearKernel, inputs, outputs, attrs);
  for (const TensorRef &t : inputs)
    if (t.dtype != DType::F32)
      return unsupported("linear", t.dtype);
  if (Status s = checkDType("linear", "result", outputs[0], DType::F32); !s)
    return s;
  LinearGeometry g;
  if (Status s = linearGeometry(inputs, outputs, attrs, g); !s)
    return s;
  const TensorRef &x = inputs[0], &w = inputs[1], &y = outputs[0];
  const bool transposed = g.transposed;
  const int64_t in = g.in, out = g.out, rows = g.rows;
  float *py = y.as<float>();
  float beta = 0.0f;
  if (inputs.size() == 3) {
    const TensorRef &bias = inputs[2];
    const float *pb = bias.as<float>();
    const bool scalar = bias.numel() == 1;
    parallelRange(rows, rows * out, [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r)
        for (int64_t j = 0; j < out; ++j)
          py[r * out + j] = pb[scalar ? 0 : j];
    });
    beta = 1.0f;
  }
  sgemm(false, transposed, rows, out, in, 1.0f, x.as<float>(), in,
        w.as<float>(), transposed ? in : out, beta, py, out);
  return Status::ok();
}

} // namespace

void appendContractionKernels(std::vector<KernelEntry> &table) {
  table.push_back({"matmul", &matmulKernel});
  table.push_back({"linear", &linearKernel});
}

} // namespace colossal::rt::cpu
