//===- Attention.cu - Attention without a score matrix, and its ring blocks
//===//
//
// A warp owns one query row (or, for dk/dv, one key row): the row's
// vectors live in its lanes' registers (head dimensions up to
// 32 * kPerLane), scores are warp dot products, and the softmax is online
// (running maximum and sum), so no score matrix is ever stored -- the
// memory behaviour of flash attention, without its tensor-core tiling yet.
//   attention                 softmax(q k^T * scale + mask) v
//   attention_backward        one block per batch-head: the rows' lse and
//                             D = rowsum(dout * out) in shared memory, then
//                             dq by query rows and dk, dv by key rows
//                             (deterministic: no atomics)
//   attention_block, attention_block_finish, attention_delta,
//   attention_block_backward  the pieces ring attention folds together, as
//                             the CPU kernels define them
// Causal attention keeps key j for query i when
// k_offset + j <= q_offset + i + shift; a mask (float, added, or bool)
// broadcasts to [batch..., sq, keys of the whole sequence].
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/OpGeometry.h"
#include "runtime/backends/cuda/DeviceUtil.cuh"

#include <cmath>
#include <tuple>

namespace colossal::rt::cuda {
namespace {

constexpr int kPerLane = 8; // head dimensions up to 256
constexpr int kWarps = 8;   // warps per block of the row kernels

/// Everything a row kernel reads. Batch b's q/k/v matrices and mask base
/// come from `batch` (operands 0-2 in matrices, 3 in mask elements).
template <class T> struct Attn {
  const T *q = nullptr, *k = nullptr, *v = nullptr;
  const void *mask = nullptr;
  bool maskBool = false;
  int64_t maskRow = 0, maskCol = 0;
  Broadcast batch;
  int64_t batches = 0, sq = 0, skv = 0, d = 0, dv = 0;
  int64_t qOffset = 0, kOffset = 0, shift = 0;
  bool causal = false;
  float scale = 1.0f;

  __device__ bool dropped(int64_t i, int64_t j) const {
    return causal && kOffset + j > qOffset + i + shift;
  }
  /// The mask's contribution to score (i, j) of batch-head b (mask base
  /// `mb`): -inf where it drops the key.
  __device__ float maskAt(int64_t mb, int64_t i, int64_t j) const {
    if (!mask)
      return 0.0f;
    const int64_t at = mb + i * maskRow + (kOffset + j) * maskCol;
    if (maskBool)
      return static_cast<const uint8_t *>(mask)[at] ? 0.0f : -INFINITY;
    return static_cast<const float *>(mask)[at];
  }
};

/// A row of `n` elements spread over the warp's lanes: element
/// lane + 32 t in slot t.
struct Lanes {
  float x[kPerLane];

  template <class T> __device__ void load(const T *row, int64_t n) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) {
      const int64_t c = lane + 32 * t;
      x[t] = c < n ? Num<T>::load(row[c]) : 0.0f;
    }
  }
  template <class T> __device__ void store(T *row, int64_t n) const {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) {
      const int64_t c = lane + 32 * t;
      if (c < n)
        row[c] = Num<T>::store(x[t]);
    }
  }
  __device__ void fill(float value) {
#pragma unroll
    for (int t = 0; t < kPerLane; ++t)
      x[t] = value;
  }
  /// this = this * a + b * other
  __device__ void axpby(float a, float b, const Lanes &other) {
#pragma unroll
    for (int t = 0; t < kPerLane; ++t)
      x[t] = x[t] * a + b * other.x[t];
  }
  __device__ float dot(const Lanes &other) const {
    float s = 0.0f;
#pragma unroll
    for (int t = 0; t < kPerLane; ++t)
      s += x[t] * other.x[t];
    return warpSum(s);
  }
};

/// Global warp index, and the warp's lane 0 test.
__device__ inline int64_t warpIndex() {
  return (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
}

//===----------------------------------------------------------------------===//
// Forward: attention and attention_block
//===----------------------------------------------------------------------===//

/// Folds keys [0, skv) into the row state (m, l, acc) of query i.
template <class T>
__device__ void foldRow(const Attn<T> &p, int64_t b, int64_t i, float &m,
                        float &l, Lanes &acc) {
  int64_t off[4];
  p.batch.offsets(b, off, 4);
  Lanes q, kv;
  q.load(p.q + (off[0] * p.sq + i) * p.d, p.d);
  const T *kb = p.k + off[1] * p.skv * p.d;
  const T *vb = p.v + off[2] * p.skv * p.dv;
  for (int64_t j = 0; j < p.skv; ++j) {
    if (p.dropped(i, j))
      break; // every later key is dropped too
    kv.load(kb + j * p.d, p.d);
    const float s = q.dot(kv) * p.scale + p.maskAt(off[3], i, j);
    if (s == -INFINITY)
      continue;
    const float mNew = fmaxf(m, s);
    const float alpha = m == -INFINITY ? 0.0f : expf(m - mNew);
    const float e = expf(s - mNew);
    l = l * alpha + e;
    m = mNew;
    kv.load(vb + j * p.dv, p.dv);
    acc.axpby(alpha, e, kv);
  }
}

template <class T> __global__ void attentionKernel(Attn<T> p, T *out) {
  const int64_t r = warpIndex();
  if (r >= p.batches * p.sq)
    return;
  float m = -INFINITY, l = 0.0f;
  Lanes acc;
  acc.fill(0.0f);
  foldRow(p, r / p.sq, r % p.sq, m, l, acc);
  // A row with nothing to attend to is zeros.
  const float inv = l > 0 ? 1.0f / l : 0.0f;
#pragma unroll
  for (int t = 0; t < kPerLane; ++t)
    acc.x[t] *= inv;
  acc.store(out + r * p.dv, p.dv);
}

/// attention_block: acc [rows, dv], m, l [rows] read (unless `init`) and
/// written.
template <class T>
__global__ void attentionBlockKernel(Attn<T> p, float *acc, float *pm,
                                     float *pl, bool init) {
  const int64_t r = warpIndex();
  if (r >= p.batches * p.sq)
    return;
  float m = -INFINITY, l = 0.0f;
  Lanes a;
  if (init) {
    a.fill(0.0f);
  } else {
    m = pm[r];
    l = pl[r];
    a.load(acc + r * p.dv, p.dv);
  }
  foldRow(p, r / p.sq, r % p.sq, m, l, a);
  a.store(acc + r * p.dv, p.dv);
  if ((threadIdx.x & 31) == 0) {
    pm[r] = m;
    pl[r] = l;
  }
}

//===----------------------------------------------------------------------===//
// Backward
//===----------------------------------------------------------------------===//

/// dq[i] (+)= scale * sum_j P_ij (dP_ij - D_i) k_j with P = exp(s - lse).
template <class T>
__device__ void dqRow(const Attn<T> &p, int64_t b, int64_t i, float lse,
                      float delta, const T *dout, T *dq, bool init) {
  int64_t off[4];
  p.batch.offsets(b, off, 4);
  Lanes q, g, kv, acc;
  const int64_t row = b * p.sq + i;
  q.load(p.q + row * p.d, p.d);
  g.load(dout + row * p.dv, p.dv);
  if (init)
    acc.fill(0.0f);
  else
    acc.load(dq + row * p.d, p.d);
  if (lse != -INFINITY) {
    const T *kb = p.k + b * p.skv * p.d, *vb = p.v + b * p.skv * p.dv;
    for (int64_t j = 0; j < p.skv; ++j) {
      if (p.dropped(i, j))
        break;
      kv.load(kb + j * p.d, p.d);
      const float s = q.dot(kv) * p.scale + p.maskAt(off[3], i, j);
      if (s == -INFINITY)
        continue;
      const float prob = expf(s - lse);
      Lanes vj;
      vj.load(vb + j * p.dv, p.dv);
      const float ds = prob * (g.dot(vj) - delta);
      acc.axpby(1.0f, p.scale * ds, kv);
    }
  }
  acc.store(dq + row * p.d, p.d);
}

/// dv[j] (+)= sum_i P_ij dout_i; dk[j] (+)= scale * sum_i dS_ij q_i.
template <class T>
__device__ void dkdvRow(const Attn<T> &p, int64_t b, int64_t j,
                        const float *lse, const float *delta, const T *dout,
                        T *dk, T *dv, bool init) {
  int64_t off[4];
  p.batch.offsets(b, off, 4);
  Lanes kj, vj, qi, gi, dka, dva;
  const int64_t row = b * p.skv + j;
  kj.load(p.k + row * p.d, p.d);
  vj.load(p.v + row * p.dv, p.dv);
  if (init) {
    dka.fill(0.0f);
    dva.fill(0.0f);
  } else {
    dka.load(dk + row * p.d, p.d);
    dva.load(dv + row * p.dv, p.dv);
  }
  // The first query that keeps this key under the causal mask.
  int64_t first = 0;
  if (p.causal) {
    first = p.kOffset + j - p.qOffset - p.shift;
    if (first < 0)
      first = 0;
  }
  for (int64_t i = first; i < p.sq; ++i) {
    const float l = lse[i];
    if (l == -INFINITY)
      continue;
    qi.load(p.q + (b * p.sq + i) * p.d, p.d);
    const float s = qi.dot(kj) * p.scale + p.maskAt(off[3], i, j);
    if (s == -INFINITY)
      continue;
    const float prob = expf(s - l);
    gi.load(dout + (b * p.sq + i) * p.dv, p.dv);
    dva.axpby(1.0f, prob, gi);
    const float ds = prob * (gi.dot(vj) - delta[i]);
    dka.axpby(1.0f, p.scale * ds, qi);
  }
  dka.store(dk + row * p.d, p.d);
  dva.store(dv + row * p.dv, p.dv);
}

/// attention_backward: block b is batch-head b; shared memory holds its
/// rows' lse and D.
template <class T>
__global__ void attentionBackwardKernel(Attn<T> p, const T *out, const T *dout,
                                        T *dq, T *dk, T *dv) {
  extern __shared__ float rowStats[];
  float *lse = rowStats, *delta = rowStats + p.sq;
  const int64_t b = blockIdx.x;
  const int warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int64_t i = warp; i < p.sq; i += warps) {
    float m = -INFINITY, l = 0.0f;
    Lanes unused;
    unused.fill(0.0f);
    // lse from the forward's running statistics (v is folded in too:
    // cheaper to recompute than to special-case).
    foldRow(p, b, i, m, l, unused);
    Lanes o, g;
    o.load(out + (b * p.sq + i) * p.dv, p.dv);
    g.load(dout + (b * p.sq + i) * p.dv, p.dv);
    const float dot = o.dot(g);
    if ((threadIdx.x & 31) == 0) {
      lse[i] = l > 0 ? m + logf(l) : -INFINITY;
      delta[i] = dot;
    }
  }
  __syncthreads();
  for (int64_t i = warp; i < p.sq; i += warps)
    dqRow(p, b, i, lse[i], delta[i], dout, dq, true);
  for (int64_t j = warp; j < p.skv; j += warps)
    dkdvRow(p, b, j, lse, delta, dout, dk, dv, true);
}

template <class T>
__global__ void blockDqKernel(Attn<T> p, const float *lse, const float *delta,
                              const T *dout, T *dq, bool init) {
  const int64_t r = warpIndex();
  if (r >= p.batches * p.sq)
    return;
  dqRow(p, r / p.sq, r % p.sq, lse[r], delta[r], dout, dq, init);
}

template <class T>
__global__ void blockDkdvKernel(Attn<T> p, const float *lse, const float *delta,
                                const T *dout, T *dk, T *dv, bool init) {
  const int64_t r = warpIndex();
  if (r >= p.batches * p.skv)
    return;
  const int64_t b = r / p.skv;
  dkdvRow(p, b, r % p.skv, lse + b * p.sq, delta + b * p.sq, dout, dk, dv,
          init);
}

//===----------------------------------------------------------------------===//
// Row statistics
//===----------------------------------------------------------------------===//

__global__ void finishKernel(const float *acc, const float *pm, const float *pl,
                             float *out, float *lse, int64_t rows, int64_t dv) {
  COLOSSAL_GRID_STRIDE(e, rows * dv) {
    const int64_t r = e / dv;
    const float l = pl[r];
    out[e] = acc[e] * (l > 0 ? 1.0f / l : 0.0f);
    if (e % dv == 0)
      lse[r] = l > 0 ? pm[r] + logf(l) : -INFINITY;
  }
}

__global__ void deltaKernel(const float *out, const float *grad, float *delta,
                            int64_t rows, int64_t dv) {
  const int64_t r = warpIndex();
  if (r >= rows)
    return;
  Lanes o, g;
  o.load(out + r * dv, dv);
  g.load(grad + r * dv, dv);
  const float dot = o.dot(g);
  if ((threadIdx.x & 31) == 0)
    delta[r] = dot;
}

//===----------------------------------------------------------------------===//
// Host side
//===----------------------------------------------------------------------===//

unsigned warpGrid(int64_t rows) {
  return static_cast<unsigned>((rows + kWarps - 1) / kWarps);
}

/// cpu::attentionGeometry's checks, one float dtype for q, k and v, head
/// dimensions the lanes hold, and `p` filled from them.
template <class T>
Status describe(std::string_view op, const TensorRef &q, const TensorRef &k,
                const TensorRef &v, const TensorRef *mask,
                const std::vector<int64_t> &batch, int64_t maskColumns,
                Attn<T> &p, cpu::AttentionGeometry &g) {
  if (k.dtype != q.dtype || v.dtype != q.dtype)
    return Status::error(std::string(op) +
                         ": query, key and value dtypes differ");
  if (Status s =
          cpu::attentionGeometry(op, q, k, v, mask, batch, maskColumns, g);
      !s)
    return s;
  if (g.d > 32 * kPerLane || g.dv > 32 * kPerLane)
    return Status::error(std::string(op) + ": head dimensions above " +
                         std::to_string(32 * kPerLane) +
                         " are not supported on cuda yet (got " +
                         std::to_string(std::max(g.d, g.dv)) + ")");
  if (batch.size() > size_t(kMaxRank))
    return Status::error(std::string(op) + ": more than " +
                         std::to_string(kMaxRank) + " batch dimensions");
  p.batches = g.batches;
  p.sq = g.sq;
  p.skv = g.skv;
  p.d = g.d;
  p.dv = g.dv;
  p.maskRow = g.maskRowStride;
  p.maskCol = g.maskColStride;
  if (mask) {
    p.mask = mask->data;
    p.maskBool = mask->dtype == DType::Bool;
  }
  const std::vector<int64_t> *strides[4] = {&g.qStrides, &g.kStrides,
                                            &g.vStrides, &g.maskStrides};
  p.batch.rank = static_cast<int>(batch.size());
  for (size_t dim = 0; dim < batch.size(); ++dim) {
    p.batch.dims[dim] = batch[dim];
    for (int o = 0; o < 4; ++o)
      p.batch.strides[o][dim] = (*strides[o])[dim];
  }
  p.q = q.as<T>();
  p.k = k.as<T>();
  p.v = v.as<T>();
  return Status::ok();
}

template <class T> void readAttributes(const AttributeMap &attrs, Attn<T> &p) {
  p.scale =
      static_cast<float>(attrs.getFloat("scale", 1.0 / std::sqrt(double(p.d))));
  p.causal = attrs.getInt("causal", 0) != 0;
  p.qOffset = attrs.getInt("q_offset", 0);
  p.kOffset = attrs.getInt("k_offset", 0);
  p.shift = attrs.getInt("shift", 0);
}

Status attentionOp(const KernelContext &ctx,
                   const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &outputs,
                   const AttributeMap &attrs) {
  constexpr const char *op = "attention";
  if (Status s = checkArity(op, inputs, outputs, 3, 4, 1); !s)
    return s;
  const TensorRef &o = outputs[0];
  if (o.shape.size() < 2)
    return Status::error("attention: the result needs rank >= 2");
  if (Status s = checkDType(op, "result", o, inputs[0].dtype); !s)
    return s;
  return dispatchFloat(op, inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    Attn<T> p;
    cpu::AttentionGeometry geo;
    const TensorRef *mask = inputs.size() == 4 ? &inputs[3] : nullptr;
    const TensorRef &k = inputs[1];
    if (Status s =
            describe(op, inputs[0], k, inputs[2], mask, cpu::matrixBatch(o),
                     k.shape.size() >= 2 ? k.shape.end()[-2] : 0, p, geo);
        !s)
      return s;
    if (o.shape.end()[-2] != p.sq || o.shape.back() != p.dv)
      return Status::error("attention: result " + shapeString(o.shape) +
                           " does not match query " +
                           shapeString(inputs[0].shape) + " and value " +
                           shapeString(inputs[2].shape));
    if (o.numel() == 0)
      return Status::ok();
    readAttributes(attrs, p);
    p.qOffset = p.kOffset = 0;
    p.shift = p.skv - p.sq; // causal aligned at the end
    attentionKernel<<<warpGrid(p.batches * p.sq), kWarps * 32, 0, ctx.stream>>>(
        p, o.as<T>());
    return launched(op);
  });
}

Status attentionBackwardOp(const KernelContext &ctx,
                           const std::vector<TensorRef> &inputs,
                           const std::vector<TensorRef> &outputs,
                           const AttributeMap &attrs) {
  constexpr const char *op = "attention_backward";
  if (Status s = checkArity(op, inputs, outputs, 5, 6, 3); !s)
    return s;
  const TensorRef &q = inputs[0], &k = inputs[1], &v = inputs[2],
                  &o = inputs[3], &dout = inputs[4];
  const TensorRef &dq = outputs[0], &dk = outputs[1], &dv = outputs[2];
  return dispatchFloat(op, q.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    Attn<T> p;
    cpu::AttentionGeometry geo;
    const TensorRef *mask = inputs.size() == 6 ? &inputs[5] : nullptr;
    if (Status s =
            describe(op, q, k, v, mask, cpu::matrixBatch(q),
                     k.shape.size() >= 2 ? k.shape.end()[-2] : 0, p, geo);
        !s)
      return s;
    if (!geo.unbroadcast())
      return Status::error(std::string(op) +
                           ": query, key and value must have the result's "
                           "batch dimensions (no broadcasting)");
    std::vector<int64_t> outShape = q.shape;
    outShape.back() = p.dv;
    for (auto [t, what, shape] :
         {std::tuple{&o, "out", outShape}, std::tuple{&dout, "grad", outShape},
          std::tuple{&dq, "query gradient", q.shape},
          std::tuple{&dk, "key gradient", k.shape},
          std::tuple{&dv, "value gradient", v.shape}})
      if (Status s = cpu::checkTensor(op, what, *t, q.dtype, shape); !s)
        return s;
    readAttributes(attrs, p);
    p.qOffset = p.kOffset = 0;
    p.shift = p.skv - p.sq;
    for (const TensorRef *t : {&dq, &dk, &dv})
      if (t->bytes())
        cudaMemsetAsync(t->data, 0, t->bytes(), ctx.stream);
    if (p.batches == 0 || p.sq == 0 || p.skv == 0)
      return launched(op);
    const size_t shared = sizeof(float) * size_t(2 * p.sq);
    if (shared > size_t(ctx.maxSharedBytes))
      return Status::error(
          std::string(op) + ": " + std::to_string(p.sq) + " query rows need " +
          std::to_string(shared) +
          " bytes of shared memory for their statistics, more than this "
          "GPU's " +
          std::to_string(ctx.maxSharedBytes) +
          "; split the sequence (sp) or compile without fused attention");
    if (shared > 48 * 1024)
      cudaFuncSetAttribute(attentionBackwardKernel<T>,
                           cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(shared));
    attentionBackwardKernel<T>
        <<<static_cast<unsigned>(p.batches), kWarps * 32, shared, ctx.stream>>>(
            p, o.as<T>(), dout.as<T>(), dq.as<T>(), dk.as<T>(), dv.as<T>());
    return launched(op);
  });
}

Status attentionBlockOp(const KernelContext &ctx,
                        const std::vector<TensorRef> &inputs,
                        const std::vector<TensorRef> &outputs,
                        const AttributeMap &attrs) {
  constexpr const char *op = "attention_block";
  if (Status s = checkArity(op, inputs, outputs, 3, 4, 3); !s)
    return s;
  const TensorRef &q = inputs[0];
  const TensorRef &acc = outputs[0], &m = outputs[1], &l = outputs[2];
  if (acc.shape.size() < 2)
    return Status::error("attention_block: the accumulator needs rank >= 2");
  return dispatchFloat(op, q.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    Attn<T> p;
    cpu::AttentionGeometry geo;
    const TensorRef *mask = inputs.size() == 4 ? &inputs[3] : nullptr;
    if (Status s =
            describe(op, q, inputs[1], inputs[2], mask, cpu::matrixBatch(acc),
                     attrs.getInt("kv_length", 0), p, geo);
        !s)
      return s;
    if (!geo.unbroadcast())
      return Status::error(std::string(op) +
                           ": query, key and value must have the result's "
                           "batch dimensions (no broadcasting)");
    std::vector<int64_t> accShape = q.shape;
    accShape.back() = p.dv;
    if (Status s =
            cpu::checkTensor(op, "accumulator", acc, DType::F32, accShape);
        !s)
      return s;
    for (const TensorRef *t : {&m, &l})
      if (Status s = cpu::checkTensor(op, "row statistic", *t, DType::F32,
                                      cpu::rowsShape(acc));
          !s)
        return s;
    readAttributes(attrs, p);
    if (acc.numel() == 0)
      return Status::ok();
    attentionBlockKernel<<<warpGrid(p.batches * p.sq), kWarps * 32, 0,
                           ctx.stream>>>(p, acc.as<float>(), m.as<float>(),
                                         l.as<float>(),
                                         attrs.getInt("init", 0) != 0);
    return launched(op);
  });
}

Status attentionBlockFinishOp(const KernelContext &ctx,
                              const std::vector<TensorRef> &inputs,
                              const std::vector<TensorRef> &outputs,
                              const AttributeMap &) {
  constexpr const char *op = "attention_block_finish";
  if (Status s = cpu::checkAttentionBlockFinish(inputs, outputs); !s)
    return s;
  const TensorRef &acc = inputs[0], &m = inputs[1], &l = inputs[2];
  const TensorRef &out = outputs[0], &lse = outputs[1];
  const int64_t dv = acc.shape.back(), rows = m.numel();
  if (rows * dv == 0)
    return Status::ok();
  finishKernel<<<gridFor(ctx, rows * dv), kThreads, 0, ctx.stream>>>(
      acc.as<float>(), m.as<float>(), l.as<float>(), out.as<float>(),
      lse.as<float>(), rows, dv);
  return launched(op);
}

Status attentionDeltaOp(const KernelContext &ctx,
                        const std::vector<TensorRef> &inputs,
                        const std::vector<TensorRef> &outputs,
                        const AttributeMap &) {
  constexpr const char *op = "attention_delta";
  if (Status s = cpu::checkAttentionDelta(inputs, outputs); !s)
    return s;
  const TensorRef &o = inputs[0], &g = inputs[1], &delta = outputs[0];
  if (o.shape.back() > 32 * kPerLane)
    return Status::error(std::string(op) + ": rows above " +
                         std::to_string(32 * kPerLane) +
                         " elements are not supported on cuda yet");
  const int64_t rows = delta.numel();
  if (rows == 0)
    return Status::ok();
  deltaKernel<<<warpGrid(rows), kWarps * 32, 0, ctx.stream>>>(
      o.as<float>(), g.as<float>(), delta.as<float>(), rows, o.shape.back());
  return launched(op);
}

Status attentionBlockBackwardOp(const KernelContext &ctx,
                                const std::vector<TensorRef> &inputs,
                                const std::vector<TensorRef> &outputs,
                                const AttributeMap &attrs) {
  constexpr const char *op = "attention_block_backward";
  if (Status s = checkArity(op, inputs, outputs, 6, 7, 3); !s)
    return s;
  const TensorRef &q = inputs[0], &k = inputs[1], &v = inputs[2],
                  &g = inputs[3], &lse = inputs[4], &delta = inputs[5];
  const TensorRef &dq = outputs[0], &dk = outputs[1], &dv = outputs[2];
  return dispatchFloat(op, q.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    Attn<T> p;
    cpu::AttentionGeometry geo;
    const TensorRef *mask = inputs.size() == 7 ? &inputs[6] : nullptr;
    if (Status s = describe(op, q, k, v, mask, cpu::matrixBatch(q),
                            attrs.getInt("kv_length", 0), p, geo);
        !s)
      return s;
    if (!geo.unbroadcast())
      return Status::error(std::string(op) +
                           ": query, key and value must have the result's "
                           "batch dimensions (no broadcasting)");
    std::vector<int64_t> outShape = q.shape;
    outShape.back() = p.dv;
    for (auto [t, what, shape] : {std::tuple{&g, "grad", outShape},
                                  std::tuple{&dq, "query gradient", q.shape},
                                  std::tuple{&dk, "key gradient", k.shape},
                                  std::tuple{&dv, "value gradient", v.shape}})
      if (Status s = cpu::checkTensor(op, what, *t, q.dtype, shape); !s)
        return s;
    for (const TensorRef *t : {&lse, &delta})
      if (Status s = cpu::checkTensor(op, t == &lse ? "log-sum-exp" : "delta",
                                      *t, DType::F32, cpu::rowsShape(q));
          !s)
        return s;
    readAttributes(attrs, p);
    const bool initQ = attrs.getInt("init_q", 0) != 0;
    const bool initKv = attrs.getInt("init_kv", 0) != 0;
    if (p.batches * p.sq > 0)
      blockDqKernel<<<warpGrid(p.batches * p.sq), kWarps * 32, 0, ctx.stream>>>(
          p, lse.as<float>(), delta.as<float>(), g.as<T>(), dq.as<T>(), initQ);
    if (p.batches * p.skv > 0)
      blockDkdvKernel<<<warpGrid(p.batches * p.skv), kWarps * 32, 0,
                        ctx.stream>>>(p, lse.as<float>(), delta.as<float>(),
                                      g.as<T>(), dk.as<T>(), dv.as<T>(),
                                      initKv);
    return launched(op);
  });
}

} // namespace

void appendAttentionKernels(std::vector<KernelEntry> &table) {
  table.push_back({"attention", &attentionOp});
  table.push_back({"attention_backward", &attentionBackwardOp});
  table.push_back({"attention_block", &attentionBlockOp});
  table.push_back({"attention_block_finish", &attentionBlockFinishOp});
  table.push_back({"attention_delta", &attentionDeltaOp});
  table.push_back({"attention_block_backward", &attentionBlockBackwardOp});
}

} // namespace colossal::rt::cuda
