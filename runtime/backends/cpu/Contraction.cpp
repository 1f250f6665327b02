//===- Contraction.cpp - matmul, linear and attention ---------------------===//
//
// Every f32 contraction goes to SGEMM. linear is one SGEMM over all rows;
// matmul folds the batch into M when the right operand is shared, and
// otherwise runs one SGEMM per batch, the batches spread over the threads;
// attention runs per batch-head (threads over heads) in blocks of query
// rows, so the score buffer stays small. f16/bf16 go through f32 copies;
// integer matmul is a plain loop.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/KernelUtil.h"
#include "runtime/backends/cpu/VecMath.h"

#include <cmath>
#include <limits>
#include <type_traits>

namespace colossal::rt::cpu {
namespace {

/// Element strides of `in` broadcast (numpy rules) to `target`: 0 where a
/// dimension is broadcast.
Status broadcastStrides(std::string_view op, const char *what,
                        const std::vector<int64_t> &in,
                        const std::vector<int64_t> &target,
                        std::vector<int64_t> &strides) {
  auto fail = [&] {
    return Status::error(std::string(op) + ": " + what + " of shape " +
                         shapeString(in) + " does not broadcast to " +
                         shapeString(target));
  };
  if (in.size() > target.size())
    return fail();
  strides.assign(target.size(), 0);
  const size_t lead = target.size() - in.size();
  int64_t stride = 1;
  for (size_t e = in.size(); e-- > 0;) {
    if (in[e] != target[e + lead] && in[e] != 1)
      return fail();
    strides[e + lead] = in[e] == 1 ? 0 : stride;
    stride *= in[e];
  }
  return Status::ok();
}

/// For each batch index of `outBatch` (row-major), the index of the
/// matching batch of an operand whose batch shape broadcasts to it.
Status batchIndices(std::string_view op, const char *what,
                    const std::vector<int64_t> &inBatch,
                    const std::vector<int64_t> &outBatch,
                    std::vector<int64_t> &indices) {
  std::vector<int64_t> strides;
  if (Status s = broadcastStrides(op, what, inBatch, outBatch, strides); !s)
    return s;
  const int64_t count = numElements(outBatch);
  indices.assign(static_cast<size_t>(count), 0);
  for (int64_t b = 0; b < count; ++b) {
    int64_t rest = b, idx = 0;
    for (size_t d = outBatch.size(); d-- > 0;) {
      idx += (rest % outBatch[d]) * strides[d];
      rest /= outBatch[d];
    }
    indices[b] = idx;
  }
  return Status::ok();
}

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
  // numpy.matmul: a 1-D lhs is a row, a 1-D rhs a column.
  const bool aVec = a.shape.size() == 1, bVec = b.shape.size() == 1;
  const int64_t m = aVec ? 1 : a.shape[a.shape.size() - 2];
  const int64_t k = a.shape.back();
  const int64_t kb = bVec ? b.shape[0] : b.shape[b.shape.size() - 2];
  const int64_t n = bVec ? 1 : b.shape.back();
  if (k != kb)
    return Status::error("matmul: contracting dimensions differ: " +
                         shapeString(a.shape) + " @ " + shapeString(b.shape));
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
    // A shared rhs and an unbroadcast lhs: the batch is just more rows.
    if (numElements(bBatch) == 1 && numElements(aBatch) == batches) {
      sgemm(false, false, batches * m, n, k, 1.0f, pa, k, pb, n, 0.0f, pc, n);
      return Status::ok();
    }
    forEachBatch(batches, [&](int64_t i) {
      sgemm(false, false, m, n, k, 1.0f, pa + aIdx[i] * m * k, k,
            pb + bIdx[i] * k * n, n, 0.0f, pc + i * m * n, n);
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

//===----------------------------------------------------------------------===//
// attention
//===----------------------------------------------------------------------===//

/// Masks and normalizes `rows` rows of scores in place; a row with nothing
/// left to attend to becomes zeros, so its output row is zero too.
void softmaxScores(float *s, int64_t rows, int64_t skv, int64_t firstRow,
                   int64_t causalShift, bool causal, const TensorRef *mask,
                   int64_t maskBase, int64_t maskRowStride,
                   int64_t maskColStride) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (int64_t r = 0; r < rows; ++r) {
    float *row = s + r * skv;
    const int64_t i = firstRow + r;
    if (causal)
      for (int64_t j = std::max<int64_t>(0, i + causalShift + 1); j < skv; ++j)
        row[j] = kNegInf;
    if (mask) {
      const int64_t base = maskBase + i * maskRowStride;
      if (mask->dtype == DType::Bool) {
        const uint8_t *m = mask->as<uint8_t>() + base;
        for (int64_t j = 0; j < skv; ++j)
          if (!m[j * maskColStride])
            row[j] = kNegInf;
      } else {
        const float *m = mask->as<float>() + base;
        for (int64_t j = 0; j < skv; ++j)
          row[j] += m[j * maskColStride];
      }
    }
    const float mx = vecMax(row, skv);
    if (mx == kNegInf) {
      std::fill(row, row + skv, 0.0f);
      continue;
    }
    const double sum = vecExpShiftSum(row, row, skv, mx);
    vecScale(row, skv, static_cast<float>(1.0 / sum));
  }
}

Status attentionKernel(const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs,
                       const AttributeMap &attrs) {
  constexpr const char *op = "attention";
  if (Status s = checkArity(op, inputs, outputs, 3, 4, 1); !s)
    return s;
  if (has16BitFloat(inputs))
    return runViaF32(op, &attentionKernel, inputs, outputs, attrs);
  for (size_t i = 0; i < 3; ++i)
    if (inputs[i].dtype != DType::F32)
      return unsupported(op, inputs[i].dtype);
  if (Status s = checkDType(op, "result", outputs[0], DType::F32); !s)
    return s;
  const TensorRef &q = inputs[0], &k = inputs[1], &v = inputs[2],
                  &o = outputs[0];
  const TensorRef *mask = inputs.size() == 4 ? &inputs[3] : nullptr;
  if (mask && mask->dtype != DType::F32 && mask->dtype != DType::Bool)
    return Status::error(std::string("attention: mask must be float or bool, "
                                     "got ") +
                         dtypeName(mask->dtype));
  if (q.shape.size() < 2 || k.shape.size() < 2 || v.shape.size() < 2 ||
      o.shape.size() < 2)
    return Status::error("attention: query, key, value and result need rank "
                         ">= 2");
  const size_t rank = o.shape.size();
  const int64_t sq = q.shape[q.shape.size() - 2], d = q.shape.back();
  const int64_t skv = k.shape[k.shape.size() - 2];
  const int64_t dv = v.shape.back();
  if (k.shape.back() != d || v.shape[v.shape.size() - 2] != skv ||
      o.shape[rank - 2] != sq || o.shape[rank - 1] != dv)
    return Status::error(
        "attention: shapes do not agree: query " + shapeString(q.shape) +
        ", key " + shapeString(k.shape) + ", value " + shapeString(v.shape) +
        ", result " + shapeString(o.shape));
  const std::vector<int64_t> batch(o.shape.begin(), o.shape.end() - 2);
  const int64_t batches = numElements(batch);
  std::vector<int64_t> qIdx, kIdx, vIdx;
  auto batchOf = [](const TensorRef &t) {
    return std::vector<int64_t>(t.shape.begin(), t.shape.end() - 2);
  };
  if (Status s = batchIndices(op, "query batch", batchOf(q), batch, qIdx); !s)
    return s;
  if (Status s = batchIndices(op, "key batch", batchOf(k), batch, kIdx); !s)
    return s;
  if (Status s = batchIndices(op, "value batch", batchOf(v), batch, vIdx); !s)
    return s;
  // The mask broadcasts to [batch..., sq, skv]: per-batch base offsets and
  // row/column strides.
  std::vector<int64_t> maskBase(static_cast<size_t>(batches), 0);
  int64_t maskRowStride = 0, maskColStride = 0;
  if (mask) {
    std::vector<int64_t> target = batch, strides;
    target.push_back(sq);
    target.push_back(skv);
    if (Status s = broadcastStrides(op, "mask", mask->shape, target, strides);
        !s)
      return s;
    maskRowStride = strides[rank - 2];
    maskColStride = strides[rank - 1];
    for (int64_t b = 0; b < batches; ++b) {
      int64_t rest = b;
      for (size_t dim = batch.size(); dim-- > 0;) {
        maskBase[b] += (rest % batch[dim]) * strides[dim];
        rest /= batch[dim];
      }
    }
  }
  if (o.numel() == 0)
    return Status::ok();

  const float scale =
      static_cast<float>(attrs.getFloat("scale", 1.0 / std::sqrt(double(d))));
  const bool causal = attrs.getInt("causal", 0) != 0;
  const int64_t causalShift = skv - sq;
  // Query rows per block: keeps each thread's scores near 4 MiB.
  const int64_t block = std::max<int64_t>(
      1, std::min<int64_t>(sq, (int64_t(1) << 20) / std::max<int64_t>(skv, 1)));
  const int threads = maxThreads();
  const bool overHeads = threads > 1 && batches >= threads;
  FloatBuffer scores;
  if (Status s = scores.allocate(op, (overHeads ? threads : 1) * block * skv);
      !s)
    return s;
  const float *pq = q.as<float>(), *pk = k.as<float>(), *pv = v.as<float>();
  float *po = o.as<float>();
  auto head = [&](int64_t b, float *s) {
    const float *qb = pq + qIdx[b] * sq * d;
    const float *kb = pk + kIdx[b] * skv * d;
    const float *vb = pv + vIdx[b] * skv * dv;
    float *ob = po + b * sq * dv;
    for (int64_t i0 = 0; i0 < sq; i0 += block) {
      const int64_t rows = std::min(block, sq - i0);
      sgemm(false, true, rows, skv, d, scale, qb + i0 * d, d, kb, d, 0.0f, s,
            skv);
      softmaxScores(s, rows, skv, i0, causalShift, causal, mask, maskBase[b],
                    maskRowStride, maskColStride);
      sgemm(false, false, rows, dv, skv, 1.0f, s, skv, vb, dv, 0.0f,
            ob + i0 * dv, dv);
    }
  };
  if (overHeads) {
#pragma omp parallel num_threads(threads)
    {
      float *s = scores.data() + omp_get_thread_num() * block * skv;
#pragma omp for schedule(static)
      for (int64_t b = 0; b < batches; ++b)
        head(b, s);
    }
  } else {
    for (int64_t b = 0; b < batches; ++b)
      head(b, scores.data());
  }
  return Status::ok();
}

} // namespace

void appendContractionKernels(std::vector<KernelEntry> &table) {
  table.push_back({"matmul", &matmulKernel});
  table.push_back({"linear", &linearKernel});
  table.push_back({"attention", &attentionKernel});
}

} // namespace colossal::rt::cpu
