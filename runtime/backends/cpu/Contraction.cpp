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
  // dimensions swapped; SGEMM reads it so.
  const bool ta = attrs.getInt("transpose_lhs", 0) != 0;
  const bool tb = attrs.getInt("transpose_rhs", 0) != 0;
  const bool aVec = a.shape.size() == 1, bVec = b.shape.size() == 1;
  if ((ta && aVec) || (tb && bVec))
    return Status::error("matmul: a transposed operand needs rank >= 2, got " +
                         shapeString(a.shape) + " @ " + shapeString(b.shape));
  const size_t ra = a.shape.size(), rb = b.shape.size();
  const int64_t m = aVec ? 1 : a.shape[ra - (ta ? 1 : 2)];
  const int64_t k = ta ? a.shape[ra - 2] : a.shape.back();
  const int64_t kb = bVec ? b.shape[0] : b.shape[rb - (tb ? 1 : 2)];
  const int64_t n = bVec ? 1 : b.shape[rb - (tb ? 2 : 1)];
  if (k != kb)
    return Status::error(
        "matmul: contracting dimensions differ: " + shapeString(a.shape) +
        (ta ? "^T" : "") + " @ " + shapeString(b.shape) + (tb ? "^T" : ""));
  std::vector<int64_t> aBatch, bBatch;
  if (!aVec)
    aBatch.assign(a.shape.begin(), a.shape.end() - 2);
  if (!bVec)
    bBatch.assign(b.shape.begin(), b.shape.end() - 2);
  std::vector<int64_t> batch(std::max(aBatch.size(), bBatch.size()), 1);
  for (size_t i = 0; i < batch.size(); ++i) {
    const size_t ia = batch.size() - aBatch.size(),
                 ib = batch.size() - bBatch.size();
    const int64_t da = i >= ia ? aBatch[i - ia] : 1;
    const int64_t db = i >= ib ? bBatch[i - ib] : 1;
    if (da != db && da != 1 && db != 1)
      return Status::error("matmul: batch dimensions do not broadcast: " +
                           shapeString(a.shape) + " @ " + shapeString(b.shape));
    batch[i] = da == 1 ? db : da;
  }
  const int64_t batches = numElements(batch);
  if (c.numel() != batches * m * n)
    return Status::error("matmul: result shape " + shapeString(c.shape) +
                         " does not match " + shapeString(a.shape) + " @ " +
                         shapeString(b.shape));
  if (c.numel() == 0)
    return Status::ok();
  std::vector<int64_t> aIdx, bIdx;
  if (Status s = batchIndices("matmul", "lhs batch", aBatch, batch, aIdx); !s)
    return s;
  if (Status s = batchIndices("matmul", "rhs batch", bBatch, batch, bIdx); !s)
    return s;

  if (a.dtype == DType::F32) {
    const float *pa = a.as<float>(), *pb = b.as<float>();
    float *pc = c.as<float>();
    const int64_t lda = ta ? m : k, ldb = tb ? k : n;
    // A shared rhs and an unbroadcast lhs: the batch is just more rows.
    if (!ta && numElements(bBatch) == 1 && numElements(aBatch) == batches) {
      sgemm(false, tb, batches * m, n, k, 1.0f, pa, lda, pb, ldb, 0.0f, pc, n);
      return Status::ok();
    }
    forEachBatch(batches, [&](int64_t i) {
      sgemm(ta, tb, m, n, k, 1.0f, pa + aIdx[i] * m * k, lda,
            pb + bIdx[i] * k * n, ldb, 0.0f, pc + i * m * n, n);
    });
    return Status::ok();
  }
  if (!isInt(a.dtype))
    return unsupported("matmul", a.dtype);
  if (ta || tb)
    return Status::error(std::string("matmul: transposed operands are for "
                                     "float matmuls, got ") +
                         dtypeName(a.dtype));
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
  const TensorRef &x = inputs[0], &w = inputs[1], &y = outputs[0];
  const bool transposed = attrs.getInt("transpose_weight", 0) != 0;
  if (x.shape.empty() || y.shape.empty() || w.shape.size() != 2)
    return Status::error("linear: expected input rank >= 1 and a 2-D weight, "
                         "got " +
                         shapeString(x.shape) + " and " + shapeString(w.shape));
  const int64_t in = x.shape.back(), out = y.shape.back();
  const int64_t wIn = transposed ? w.shape[1] : w.shape[0];
  const int64_t wOut = transposed ? w.shape[0] : w.shape[1];
  if (wIn != in || wOut != out)
    return Status::error("linear: weight of shape " + shapeString(w.shape) +
                         (transposed ? " (transposed)" : "") +
                         " does not map " + std::to_string(in) + " to " +
                         std::to_string(out) + " features");
  const int64_t rows =
      numElements(std::vector<int64_t>(x.shape.begin(), x.shape.end() - 1));
  if (y.numel() != rows * out)
    return Status::error("linear: result shape " + shapeString(y.shape) +
                         " does not match input shape " + shapeString(x.shape));
  float *py = y.as<float>();
  float beta = 0.0f;
  if (inputs.size() == 3) {
    const TensorRef &bias = inputs[2];
    if (bias.numel() != out && bias.numel() != 1)
      return Status::error("linear: bias of shape " + shapeString(bias.shape) +
                           " does not match " + std::to_string(out) +
                           " output features");
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
