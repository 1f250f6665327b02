//===- Contraction.cu - matmul and linear through cuBLASLt ----------------===//
//
// Row-major C[m,n] = op(A)[m,k] @ op(B)[k,n] is column-major
// C^T[n,m] = op(B)^T @ op(A)^T, so every call hands cuBLASLt the operands
// swapped, with no copies. Batches whose operands are each either shared
// or stacked are one strided-batch call (stride 0 for a shared operand);
// other broadcasts loop over the batches. fp32 computes in fp32 (no TF32:
// the CPU backend is the reference within 1e-5), fp16/bf16 with fp32
// accumulation. linear's bias is the GEMM's epilogue where cuBLASLt has
// one for it. Integer matmul is a plain kernel. The algorithm for each
// shape is chosen once by cuBLASLt's heuristic and remembered.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/OpGeometry.h"
#include "runtime/backends/cuda/DeviceUtil.cuh"

#include <map>
#include <mutex>
#include <tuple>

namespace colossal::rt::cuda {
namespace {

/// One GEMM (or strided batch of them) in column-major terms.
struct Gemm {
  cudaDataType_t type = CUDA_R_32F;
  bool transA = false, transB = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t batch = 1, strideA = 0, strideB = 0, strideC = 0;
  const void *a = nullptr, *b = nullptr;
  void *c = nullptr;
  float beta = 0.0f;
  const void *bias = nullptr; // epilogue bias of length m, C's type

  auto key() const {
    return std::make_tuple(int(type), transA, transB, m, n, k, lda, ldb, ldc,
                           batch, strideA, strideB, strideC, beta != 0.0f,
                           bias != nullptr);
  }
};

Status ltStatus(const KernelContext &ctx, const char *what, cublasStatus_t s) {
  if (s == CUBLAS_STATUS_SUCCESS)
    return Status::ok();
  return Status::error(std::string("cuBLASLt ") + what +
                       " failed: " + ctx.lt->cublasLtGetStatusString(s));
}

/// Owns cuBLASLt descriptors for one call.
struct Descriptors {
  const CublasLt *lt;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~Descriptors() {
    if (pref)
      lt->cublasLtMatmulPreferenceDestroy(pref);
    if (c)
      lt->cublasLtMatrixLayoutDestroy(c);
    if (b)
      lt->cublasLtMatrixLayoutDestroy(b);
    if (a)
      lt->cublasLtMatrixLayoutDestroy(a);
    if (op)
      lt->cublasLtMatmulDescDestroy(op);
  }
};

Status layout(const KernelContext &ctx, cublasLtMatrixLayout_t &out,
              cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld,
              int64_t batch, int64_t stride) {
  if (Status s = ltStatus(ctx, "matrix layout",
                          ctx.lt->cublasLtMatrixLayoutCreate(
                              &out, type, uint64_t(rows), uint64_t(cols), ld));
      !s)
    return s;
  if (batch == 1)
    return Status::ok();
  int count = static_cast<int>(batch);
  if (Status s = ltStatus(
          ctx, "batch count",
          ctx.lt->cublasLtMatrixLayoutSetAttribute(
              out, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
      !s)
    return s;
  return ltStatus(ctx, "batch stride",
                  ctx.lt->cublasLtMatrixLayoutSetAttribute(
                      out, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                      sizeof(stride)));
}

Status runGemm(const KernelContext &ctx, const Gemm &g) {
  Descriptors d{ctx.lt};
  const CublasLt &lt = *ctx.lt;
  if (Status s = ltStatus(
          ctx, "matmul descriptor",
          lt.cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
      !s)
    return s;
  const cublasOperation_t ta = g.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t tb = g.transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  lt.cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta,
                                    sizeof(ta));
  lt.cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb,
                                    sizeof(tb));
  if (g.bias) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    lt.cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                      &epilogue, sizeof(epilogue));
    lt.cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                      &g.bias, sizeof(g.bias));
  }
  if (Status s = layout(ctx, d.a, g.type, g.transA ? g.k : g.m,
                        g.transA ? g.m : g.k, g.lda, g.batch, g.strideA);
      !s)
    return s;
  if (Status s = layout(ctx, d.b, g.type, g.transB ? g.n : g.k,
                        g.transB ? g.k : g.n, g.ldb, g.batch, g.strideB);
      !s)
    return s;
  if (Status s = layout(ctx, d.c, g.type, g.m, g.n, g.ldc, g.batch, g.strideC);
      !s)
    return s;

  // The algorithm: cuBLASLt's first choice for this shape, remembered.
  using Key = decltype(g.key());
  static std::mutex mutex;
  static std::map<Key, cublasLtMatmulAlgo_t> algos;
  cublasLtMatmulAlgo_t algo;
  bool known = false;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = algos.find(g.key());
    if (it != algos.end()) {
      algo = it->second;
      known = true;
    }
  }
  if (!known) {
    if (Status s = ltStatus(ctx, "preference",
                            lt.cublasLtMatmulPreferenceCreate(&d.pref));
        !s)
      return s;
    // No workspace: the device's memory is the plan's arena and nothing
    // else.
    const uint64_t workspace = 0;
    lt.cublasLtMatmulPreferenceSetAttribute(
        d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
        sizeof(workspace));
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    if (Status s = ltStatus(
            ctx, "heuristic",
            lt.cublasLtMatmulAlgoGetHeuristic(ctx.ltHandle, d.op, d.a, d.b, d.c,
                                              d.c, d.pref, 1, &result, &found));
        !s)
      return s;
    if (found == 0)
      return Status::error("cuBLASLt has no algorithm for a " +
                           std::to_string(g.m) + "x" + std::to_string(g.n) +
                           "x" + std::to_string(g.k) +
                           " GEMM of this dtype without workspace");
    algo = result.algo;
    std::lock_guard<std::mutex> lock(mutex);
    algos.emplace(g.key(), algo);
  }
  const float alpha = 1.0f;
  return ltStatus(ctx, "matmul",
                  lt.cublasLtMatmul(ctx.ltHandle, d.op, &alpha, g.a, d.a, g.b,
                                    d.b, &g.beta, g.c, d.c, g.c, d.c, &algo,
                                    nullptr, 0, ctx.stream));
}

cudaDataType_t cudaTypeOf(DType t) {
  return t == DType::F16    ? CUDA_R_16F
         : t == DType::BF16 ? CUDA_R_16BF
                            : CUDA_R_32F;
}

/// Row-major C[m,n] = op(A) @ op(B) (A stored [m,k] or, transposed, [k,m];
/// B [k,n] or [n,k]) over `batch` matrices `sa`/`sb`/`sc` elements apart.
Gemm rowMajor(DType type, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
              const void *a, const void *b, void *c, int64_t batch, int64_t sa,
              int64_t sb, int64_t sc) {
  Gemm g;
  g.type = cudaTypeOf(type);
  // Column-major C^T[n,m] = op(B)^T[n,k] @ op(A)^T[k,m].
  g.m = n;
  g.n = m;
  g.k = k;
  g.transA = tb;
  g.a = b;
  g.lda = tb ? k : n;
  g.transB = ta;
  g.b = a;
  g.ldb = ta ? m : k;
  g.c = c;
  g.ldc = n;
  g.batch = batch;
  g.strideA = sb;
  g.strideB = sa;
  g.strideC = sc;
  return g;
}

//===----------------------------------------------------------------------===//
// Integer matmul
//===----------------------------------------------------------------------===//

/// Batch i's lhs and rhs matrices come from bc.offsets(i) (in matrices).
template <class T>
__global__ void intMatmulKernel(Broadcast bc, const T *a, const T *b, T *c,
                                int64_t m, int64_t n, int64_t k,
                                int64_t total) {
  using U = std::make_unsigned_t<T>; // wraps instead of overflowing
  COLOSSAL_GRID_STRIDE(e, total) {
    const int64_t j = e % n, i = (e / n) % m;
    int64_t off[2];
    bc.offsets(e / (m * n), off, 2);
    const T *pa = a + off[0] * m * k + i * k;
    const T *pb = b + off[1] * k * n + j;
    U acc = 0;
    for (int64_t p = 0; p < k; ++p)
      acc += static_cast<U>(pa[p]) * static_cast<U>(pb[p * n]);
    c[e] = static_cast<T>(acc);
  }
}

//===----------------------------------------------------------------------===//
// matmul
//===----------------------------------------------------------------------===//

/// Whether indices[i] == i * step for every batch i, with step 0 or 1.
bool affine(const std::vector<int64_t> &indices, int64_t &step) {
  step = indices.size() > 1 ? indices[1] - indices[0] : 0;
  if (step != 0 && step != 1)
    return false;
  for (size_t i = 0; i < indices.size(); ++i)
    if (indices[i] != int64_t(i) * step)
      return false;
  return true;
}

Status matmulOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
                const std::vector<TensorRef> &outputs,
                const AttributeMap &attrs) {
  cpu::MatmulGeometry g;
  if (Status s = cpu::matmulGeometry(inputs, outputs, attrs, g); !s)
    return s;
  const TensorRef &a = inputs[0], &b = inputs[1], &c = outputs[0];
  if (c.numel() == 0)
    return Status::ok();
  const bool ta = g.ta, tb = g.tb;
  const int64_t m = g.m, n = g.n, k = g.k, batches = g.batches;
  const std::vector<int64_t> &aIdx = g.aIdx, &bIdx = g.bIdx;

  if (isInt(a.dtype)) {
    BroadcastPlan plan;
    Broadcast bc;
    if (Status s =
            makeBroadcastPlan("matmul", g.batch, {&g.aBatch, &g.bBatch}, plan);
        !s)
      return s;
    if (Status s = toDevice("matmul", plan, bc); !s)
      return s;
    const int64_t total = c.numel();
    return dispatchNumeric("matmul", a.dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (std::is_integral_v<T>)
        intMatmulKernel<<<gridFor(ctx, total), kThreads, 0, ctx.stream>>>(
            bc, a.as<T>(), b.as<T>(), c.as<T>(), m, n, k, total);
      return launched("matmul");
    });
  }
  if (!isFloat(a.dtype))
    return unsupported("matmul", a.dtype);

  const size_t es = dtypeSize(a.dtype);
  if (k == 0)
    return cudaMemsetAsync(c.data, 0, c.bytes(), ctx.stream) == cudaSuccess
               ? Status::ok()
               : Status::error("matmul: cudaMemsetAsync failed");
  int64_t sa = 0, sb = 0;
  if (affine(aIdx, sa) && affine(bIdx, sb)) {
    // A shared rhs and a stacked, untransposed lhs: one tall GEMM.
    if (!ta && sb == 0 && sa == 1 && batches > 1)
      return runGemm(ctx, rowMajor(a.dtype, false, tb, batches * m, n, k,
                                   a.data, b.data, c.data, 1, 0, 0, 0));
    return runGemm(ctx,
                   rowMajor(a.dtype, ta, tb, m, n, k, a.data, b.data, c.data,
                            batches, sa * m * k, sb * k * n, m * n));
  }
  for (int64_t i = 0; i < batches; ++i)
    if (Status s =
            runGemm(ctx, rowMajor(a.dtype, ta, tb, m, n, k,
                                  a.as<char>() + aIdx[i] * m * k * es,
                                  b.as<char>() + bIdx[i] * k * n * es,
                                  c.as<char>() + i * m * n * es, 1, 0, 0, 0));
        !s)
      return s;
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// linear
//===----------------------------------------------------------------------===//

template <class T>
__global__ void fillRowsKernel(const T *bias, bool scalar, T *y, int64_t out,
                               int64_t total) {
  COLOSSAL_GRID_STRIDE(i, total) { y[i] = bias[scalar ? 0 : i % out]; }
}

Status linearOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
                const std::vector<TensorRef> &outputs,
                const AttributeMap &attrs) {
  cpu::LinearGeometry geo;
  if (Status s = cpu::linearGeometry(inputs, outputs, attrs, geo); !s)
    return s;
  const TensorRef &x = inputs[0], &w = inputs[1], &y = outputs[0];
  for (const TensorRef &t : inputs)
    if (t.dtype != x.dtype || !isFloat(t.dtype))
      return Status::error(std::string("linear: operands must share one "
                                       "float dtype on cuda, got ") +
                           dtypeName(t.dtype) + " beside " +
                           dtypeName(x.dtype));
  if (Status s = checkDType("linear", "result", y, x.dtype); !s)
    return s;
  const bool transposed = geo.transposed;
  const int64_t in = geo.in, out = geo.out, rows = geo.rows;
  if (y.numel() == 0)
    return Status::ok();
  Gemm g = rowMajor(x.dtype, false, transposed, rows, out, in, x.data, w.data,
                    y.data, 1, 0, 0, 0);
  if (inputs.size() == 3) {
    const TensorRef &bias = inputs[2];
    if (bias.numel() == out) {
      g.bias = bias.data; // the epilogue adds it per output feature
    } else {
      // A scalar bias: the result starts as it and the GEMM adds on.
      Status s = dispatchFloat("linear", y.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        fillRowsKernel<<<gridFor(ctx, y.numel()), kThreads, 0, ctx.stream>>>(
            bias.as<T>(), true, y.as<T>(), out, y.numel());
        return launched("linear");
      });
      if (!s)
        return s;
      g.beta = 1.0f;
    }
  }
  if (in == 0) {
    // No contraction: the result is the bias (or zero).
    if (g.bias)
      return dispatchFloat("linear", y.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        fillRowsKernel<<<gridFor(ctx, y.numel()), kThreads, 0, ctx.stream>>>(
            inputs[2].as<T>(), false, y.as<T>(), out, y.numel());
        return launched("linear");
      });
    if (g.beta == 0.0f)
      cudaMemsetAsync(y.data, 0, y.bytes(), ctx.stream);
    return Status::ok();
  }
  return runGemm(ctx, g);
}

} // namespace

void appendContractionKernels(std::vector<KernelEntry> &table) {
  table.push_back({"matmul", &matmulOp});
  table.push_back({"linear", &linearOp});
}

} // namespace colossal::rt::cuda
