//===- Common.cpp - Shared machinery of the CPU kernels -------------------===//
//
// Argument checks, broadcasting plans, the threaded SGEMM wrapper, scratch
// buffers and the f16/bf16 fallback through f32.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/KernelUtil.h"
#include "runtime/backends/cpu/OpGeometry.h"

#include <cblas.h>

#include <climits>
#include <mutex>

namespace colossal::rt::cpu {

//===----------------------------------------------------------------------===//
// Argument checks
//===----------------------------------------------------------------------===//

std::string shapeString(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Status checkArity(std::string_view op, const std::vector<TensorRef> &inputs,
                  const std::vector<TensorRef> &outputs, size_t minInputs,
                  size_t maxInputs, size_t numOutputs) {
  if (inputs.size() < minInputs || inputs.size() > maxInputs) {
    std::string want = std::to_string(minInputs);
    if (maxInputs != minInputs)
      want += maxInputs == SIZE_MAX ? " or more"
                                    : " to " + std::to_string(maxInputs);
    return Status::error(std::string(op) + ": expected " + want +
                         " inputs, got " + std::to_string(inputs.size()));
  }
  if (numOutputs != SIZE_MAX && outputs.size() != numOutputs)
    return Status::error(std::string(op) + ": expected " +
                         std::to_string(numOutputs) + " outputs, got " +
                         std::to_string(outputs.size()));
  auto check = [&](const TensorRef &t, const char *what, size_t i) -> Status {
    for (int64_t d : t.shape)
      if (d < 0)
        return Status::error(std::string(op) + ": " + what + " " +
                             std::to_string(i) + " has negative shape " +
                             shapeString(t.shape));
    if (!t.data && t.numel() != 0)
      return Status::error(std::string(op) + ": " + what + " " +
                           std::to_string(i) + " has no data");
    return Status::ok();
  };
  for (size_t i = 0; i < inputs.size(); ++i)
    if (Status s = check(inputs[i], "input", i); !s)
      return s;
  for (size_t i = 0; i < outputs.size(); ++i)
    if (Status s = check(outputs[i], "output", i); !s)
      return s;
  return Status::ok();
}

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
  indices = batchOffsets(outBatch, strides);
  return Status::ok();
}

Status checkDType(std::string_view op, const char *what, const TensorRef &t,
                  DType want) {
  if (t.dtype == want)
    return Status::ok();
  return Status::error(std::string(op) + ": " + what + " must be " +
                       dtypeName(want) + ", got " + dtypeName(t.dtype));
}

Status checkSameNumel(std::string_view op, const TensorRef &in,
                      const TensorRef &out) {
  if (in.numel() == out.numel())
    return Status::ok();
  return Status::error(std::string(op) + ": input shape " +
                       shapeString(in.shape) + " does not match output shape " +
                       shapeString(out.shape));
}

Status normalizeAxis(std::string_view op, int64_t axis, size_t rank,
                     int64_t &result) {
  int64_t r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r)
    return Status::error(std::string(op) + ": axis " + std::to_string(axis) +
                         " is out of range for rank " + std::to_string(r));
  result = axis < 0 ? axis + r : axis;
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Broadcasting
//===----------------------------------------------------------------------===//

Status
makeBroadcastPlan(std::string_view op, const std::vector<int64_t> &out,
                  const std::vector<const std::vector<int64_t> *> &inputs,
                  BroadcastPlan &plan) {
  const size_t rank = out.size();
  std::vector<std::vector<int64_t>> raw(inputs.size(),
                                        std::vector<int64_t>(rank, 0));
  for (size_t k = 0; k < inputs.size(); ++k) {
    const std::vector<int64_t> &s = *inputs[k];
    if (s.size() > rank)
      return Status::error(std::string(op) + ": operand " + std::to_string(k) +
                           " of shape " + shapeString(s) +
                           " does not broadcast to " + shapeString(out));
    const size_t lead = rank - s.size();
    int64_t stride = 1;
    for (size_t e = s.size(); e-- > 0;) {
      size_t d = e + lead;
      if (s[e] == out[d])
        raw[k][d] = s[e] == 1 ? 0 : stride;
      else if (s[e] == 1)
        raw[k][d] = 0;
      else
        return Status::error(std::string(op) + ": operand " +
                             std::to_string(k) + " of shape " + shapeString(s) +
                             " does not broadcast to " + shapeString(out));
      stride *= s[e];
    }
  }

  plan.dims.clear();
  plan.strides.assign(inputs.size(), {});
  for (size_t d = 0; d < rank; ++d) {
    if (out[d] == 1)
      continue;
    bool merge = !plan.dims.empty();
    for (size_t k = 0; merge && k < inputs.size(); ++k)
      merge = plan.strides[k].back() == raw[k][d] * out[d];
    if (merge) {
      plan.dims.back() *= out[d];
      for (size_t k = 0; k < inputs.size(); ++k)
        plan.strides[k].back() = raw[k][d];
    } else {
      plan.dims.push_back(out[d]);
      for (size_t k = 0; k < inputs.size(); ++k)
        plan.strides[k].push_back(raw[k][d]);
    }
  }
  if (plan.dims.empty()) {
    plan.dims.push_back(1);
    for (auto &s : plan.strides)
      s.push_back(0);
  }
  plan.total = numElements(out);
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Scratch memory
//===----------------------------------------------------------------------===//

Status FloatBuffer::allocate(std::string_view op, int64_t count) {
  size_t bytes =
      static_cast<size_t>(std::max<int64_t>(count, 1)) * sizeof(float);
  data_.reset(static_cast<float *>(std::malloc(bytes)));
  if (!data_)
    return Status::error(std::string(op) + ": out of memory allocating " +
                         std::to_string(bytes) +
                         " bytes of scratch space; use a smaller batch or a "
                         "machine with more memory");
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// SGEMM
//===----------------------------------------------------------------------===//

static void blasSingleThreaded() {
#ifdef OPENBLAS_VERSION
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
#endif
}

static void sgemmOnce(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
                      float alpha, const float *a, int64_t lda, const float *b,
                      int64_t ldb, float beta, float *c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
              transB ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c,
              static_cast<int>(ldc));
}

void dgemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
           const double *a, int64_t lda, const double *b, int64_t ldb,
           double *c, int64_t ldc) {
  if (m <= 0 || n <= 0)
    return;
  if (k <= 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        c[i * ldc + j] = 0.0;
    return;
  }
  blasSingleThreaded();
  cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
              transB ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), 1.0, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), 0.0, c,
              static_cast<int>(ldc));
}

void sgemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
           float alpha, const float *a, int64_t lda, const float *b,
           int64_t ldb, float beta, float *c, int64_t ldc) {
  if (m <= 0 || n <= 0)
    return;
  if (k <= 0) {
    // BLAS rejects K = 0 (leading dimensions must be >= 1) and leaves C.
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  blasSingleThreaded();
  // BLAS takes int sizes; split anything larger along M (never K or N in
  // practice: a single row of more than 2^31 floats would not fit anyway).
  if (m > INT_MAX / 2) {
    int64_t half = m / 2;
    sgemm(transA, transB, half, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    sgemm(transA, transB, m - half, n, k, alpha,
          transA ? a + half : a + half * lda, lda, b, ldb, beta, c + half * ldc,
          ldc);
    return;
  }
  int threads = maxThreads();
  double work = double(m) * double(n) * double(std::max<int64_t>(k, 1));
  if (threads <= 1 || work < 262144.0) {
    sgemmOnce(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // Split the larger of M and N into one block per thread, rounded to 16
  // rows/columns so each block keeps whole register tiles.
  const bool splitM = m >= n;
  const int64_t extent = splitM ? m : n;
  const int64_t unit = 16;
  const int64_t units = (extent + unit - 1) / unit;
  threads = static_cast<int>(std::min<int64_t>(threads, units));
  if (threads <= 1) {
    sgemmOnce(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num(), count = omp_get_num_threads();
    int64_t begin = std::min(extent, units * t / count * unit);
    int64_t end = std::min(extent, units * (t + 1) / count * unit);
    if (begin < end) {
      if (splitM)
        sgemmOnce(transA, transB, end - begin, n, k, alpha,
                  transA ? a + begin : a + begin * lda, lda, b, ldb, beta,
                  c + begin * ldc, ldc);
      else
        sgemmOnce(transA, transB, m, end - begin, k, alpha, a, lda,
                  transB ? b + begin * ldb : b + begin, ldb, beta, c + begin,
                  ldc);
    }
  }
}

//===----------------------------------------------------------------------===//
// f16/bf16 through f32
//===----------------------------------------------------------------------===//

static void toFloat(const TensorRef &t, float *dst) {
  const int64_t n = t.numel();
  parallelRange(n, n, [&](int64_t b, int64_t e) {
    if (t.dtype == DType::F16) {
      const uint16_t *src = t.as<uint16_t>();
      for (int64_t i = b; i < e; ++i)
        dst[i] = halfToFloat(src[i]);
    } else {
      const uint16_t *src = t.as<uint16_t>();
      for (int64_t i = b; i < e; ++i)
        dst[i] = bf16ToFloat(src[i]);
    }
  });
}

static void fromFloat(const float *src, const TensorRef &t) {
  const int64_t n = t.numel();
  parallelRange(n, n, [&](int64_t b, int64_t e) {
    uint16_t *dst = t.as<uint16_t>();
    if (t.dtype == DType::F16) {
      for (int64_t i = b; i < e; ++i)
        dst[i] = floatToHalf(src[i]);
    } else {
      for (int64_t i = b; i < e; ++i)
        dst[i] = floatToBf16(src[i]);
    }
  });
}

Status runViaF32(std::string_view op, KernelFn kernel,
                 const std::vector<TensorRef> &inputs,
                 const std::vector<TensorRef> &outputs,
                 const AttributeMap &attrs) {
  auto is16 = [](DType t) { return t == DType::F16 || t == DType::BF16; };
  std::vector<FloatBuffer> buffers(inputs.size() + outputs.size());
  std::vector<TensorRef> ins = inputs, outs = outputs;
  for (size_t i = 0; i < ins.size(); ++i) {
    if (!is16(ins[i].dtype))
      continue;
    if (Status s = buffers[i].allocate(op, ins[i].numel()); !s)
      return s;
    toFloat(inputs[i], buffers[i].data());
    ins[i].data = buffers[i].data();
    ins[i].dtype = DType::F32;
  }
  for (size_t i = 0; i < outs.size(); ++i) {
    if (!is16(outs[i].dtype))
      continue;
    FloatBuffer &buf = buffers[inputs.size() + i];
    if (Status s = buf.allocate(op, outs[i].numel()); !s)
      return s;
    outs[i].data = buf.data();
    outs[i].dtype = DType::F32;
  }
  if (Status s = kernel(ins, outs, attrs); !s)
    return s;
  for (size_t i = 0; i < outs.size(); ++i)
    if (is16(outputs[i].dtype))
      fromFloat(buffers[inputs.size() + i].data(), outputs[i]);
  return Status::ok();
}

} // namespace colossal::rt::cpu
