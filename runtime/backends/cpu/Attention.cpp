//===- Attention.cpp - Attention, its fused backward and its ring blocks --===//
//
// Every kernel runs per batch-head (threads over heads when there are
// enough, else the SGEMMs threaded) in blocks of query rows, so no score
// matrix larger than a block is ever held:
//   attention                 softmax(q k^T * scale + mask) v
//   attention_backward        dq, dk, dv from q, k, v, out and dout, the
//                             probabilities recomputed block by block
//                             (flash attention's backward)
// and the pieces ring attention is made of (runtime/core/Executor.cpp
// passes each rank's key/value block around the ring):
//   attention_block           folds one key/value block into an output
//                             accumulator with online softmax (running row
//                             maximum m and sum l)
//   attention_block_finish    out = acc / l, lse = m + log l
//   attention_delta           D = rowsum(dout * out)
//   attention_block_backward  adds one key/value block's share to dq and
//                             that block's dk and dv, from lse and D.
// Blocks know where they sit in the whole sequence (`q_offset`, `k_offset`)
// for the causal mask, which keeps key j for query i when j <= i + `shift`,
// and for a mask whose key dimension covers the whole sequence.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/KernelUtil.h"
#include "runtime/backends/cpu/OpGeometry.h"
#include "runtime/backends/cpu/VecMath.h"

#include <cmath>
#include <limits>
#include <tuple>

namespace colossal::rt::cpu {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

/// The shapes of one attention call: per batch-head, the query rows, the
/// key/value rows of this block, and where q, k, v and the mask start.
struct Heads {
  std::vector<int64_t> batch;
  int64_t batches = 0, sq = 0, skv = 0, d = 0, dv = 0;
  std::vector<int64_t> qIdx, kIdx, vIdx;
  const TensorRef *mask = nullptr;
  std::vector<int64_t> maskBase;
  int64_t maskRowStride = 0, maskColStride = 0;
  // Global positions: query row r is q_offset + r, key column j is
  // k_offset + j; causal keeps k_offset + j <= q_offset + r + shift.
  int64_t qOffset = 0, kOffset = 0, shift = 0;
  bool causal = false;
  float scale = 1.0f;

  /// Whether causality masks every key of this block for query rows
  /// [r0, r0 + rows).
  bool blockMasked(int64_t r0, int64_t rows) const {
    return causal && kOffset > qOffset + r0 + rows - 1 + shift;
  }
};

/// Checks q [batch..., sq, d], k [batch..., skv, d], v [batch..., skv, dv]
/// and the optional mask (broadcastable to [batch..., sq, maskColumns])
/// against `batch`, and fills `h`.
Status describe(std::string_view op, const TensorRef &q, const TensorRef &k,
                const TensorRef &v, const TensorRef *mask,
                const std::vector<int64_t> &batch, int64_t maskColumns,
                Heads &h) {
  for (const TensorRef *t : {&q, &k, &v})
    if (t->dtype != DType::F32)
      return unsupported(op, t->dtype);
  AttentionGeometry g;
  if (Status s = attentionGeometry(op, q, k, v, mask, batch, maskColumns, g);
      !s)
    return s;
  h.batch = g.batch;
  h.batches = g.batches;
  h.sq = g.sq;
  h.skv = g.skv;
  h.d = g.d;
  h.dv = g.dv;
  h.qIdx = batchOffsets(batch, g.qStrides);
  h.kIdx = batchOffsets(batch, g.kStrides);
  h.vIdx = batchOffsets(batch, g.vStrides);
  h.mask = mask;
  h.maskBase = batchOffsets(batch, g.maskStrides);
  h.maskRowStride = g.maskRowStride;
  h.maskColStride = g.maskColStride;
  return Status::ok();
}

/// Query rows per block: keeps each thread's scores near 4 MiB.
int64_t rowBlock(const Heads &h) {
  return std::max<int64_t>(
      1, std::min<int64_t>(h.sq,
                           (int64_t(1) << 20) / std::max<int64_t>(h.skv, 1)));
}

/// s[rows, skv] = scale * q[r0 : r0 + rows] k^T of head b, masked (-inf
/// where the causal or a boolean mask drops a key, a float mask added).
void scoreBlock(const Heads &h, int64_t b, const float *qb, const float *kb,
                int64_t r0, int64_t rows, float *s) {
  sgemm(false, true, rows, h.skv, h.d, h.scale, qb + r0 * h.d, h.d, kb, h.d,
        0.0f, s, h.skv);
  for (int64_t r = 0; r < rows; ++r) {
    float *row = s + r * h.skv;
    const int64_t i = r0 + r;
    if (h.causal)
      for (int64_t j =
               std::max<int64_t>(0, h.qOffset + i + h.shift + 1 - h.kOffset);
           j < h.skv; ++j)
        row[j] = kNegInf;
    if (!h.mask)
      continue;
    const int64_t base =
        h.maskBase[b] + i * h.maskRowStride + h.kOffset * h.maskColStride;
    if (h.mask->dtype == DType::Bool) {
      const uint8_t *m = h.mask->as<uint8_t>() + base;
      for (int64_t j = 0; j < h.skv; ++j)
        if (!m[j * h.maskColStride])
          row[j] = kNegInf;
    } else {
      const float *m = h.mask->as<float>() + base;
      for (int64_t j = 0; j < h.skv; ++j)
        row[j] += m[j * h.maskColStride];
    }
  }
}

/// Runs head(b, scratch) for every batch-head, each thread with its own
/// `perThread` floats of scratch.
template <class F>
Status forEachHead(std::string_view op, const Heads &h, int64_t perThread,
                   F &&head) {
  const int threads = maxThreads();
  const bool overHeads = threads > 1 && h.batches >= threads;
  FloatBuffer scratch;
  if (Status s = scratch.allocate(op, (overHeads ? threads : 1) * perThread);
      !s)
    return s;
  if (overHeads) {
#pragma omp parallel num_threads(threads)
    {
      float *mine = scratch.data() + omp_get_thread_num() * perThread;
#pragma omp for schedule(static)
      for (int64_t b = 0; b < h.batches; ++b)
        head(b, mine);
    }
  } else {
    for (int64_t b = 0; b < h.batches; ++b)
      head(b, scratch.data());
  }
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// attention
//===----------------------------------------------------------------------===//

Status attentionKernel(const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs,
                       const AttributeMap &attrs) {
  constexpr const char *op = "attention";
  if (Status s = checkArity(op, inputs, outputs, 3, 4, 1); !s)
    return s;
  if (has16BitFloat(inputs))
    return runViaF32(op, &attentionKernel, inputs, outputs, attrs);
  if (Status s = checkDType(op, "result", outputs[0], DType::F32); !s)
    return s;
  const TensorRef &q = inputs[0], &k = inputs[1], &v = inputs[2],
                  &o = outputs[0];
  if (o.shape.size() < 2)
    return Status::error("attention: the result needs rank >= 2");
  Heads h;
  const TensorRef *mask = inputs.size() == 4 ? &inputs[3] : nullptr;
  if (Status s =
          describe(op, q, k, v, mask, matrixBatch(o),
                   k.shape.size() >= 2 ? k.shape[k.shape.size() - 2] : 0, h);
      !s)
    return s;
  if (o.shape[o.shape.size() - 2] != h.sq || o.shape.back() != h.dv)
    return Status::error("attention: result " + shapeString(o.shape) +
                         " does not match query " + shapeString(q.shape) +
                         " and value " + shapeString(v.shape));
  if (o.numel() == 0)
    return Status::ok();
  h.scale =
      static_cast<float>(attrs.getFloat("scale", 1.0 / std::sqrt(double(h.d))));
  h.causal = attrs.getInt("causal", 0) != 0;
  h.shift = h.skv - h.sq; // causal aligned at the end
  const int64_t block = rowBlock(h);
  const float *pq = q.as<float>(), *pk = k.as<float>(), *pv = v.as<float>();
  float *po = o.as<float>();
  return forEachHead(op, h, block * h.skv, [&](int64_t b, float *s) {
    const float *qb = pq + h.qIdx[b] * h.sq * h.d;
    const float *kb = pk + h.kIdx[b] * h.skv * h.d;
    const float *vb = pv + h.vIdx[b] * h.skv * h.dv;
    float *ob = po + b * h.sq * h.dv;
    for (int64_t i0 = 0; i0 < h.sq; i0 += block) {
      const int64_t rows = std::min(block, h.sq - i0);
      scoreBlock(h, b, qb, kb, i0, rows, s);
      // A row with nothing left to attend to becomes zeros, so its output
      // row is zero too.
      for (int64_t r = 0; r < rows; ++r) {
        float *row = s + r * h.skv;
        const float mx = vecMax(row, h.skv);
        if (mx == kNegInf) {
          std::fill(row, row + h.skv, 0.0f);
          continue;
        }
        const double sum = vecExpShiftSum(row, row, h.skv, mx);
        vecScale(row, h.skv, static_cast<float>(1.0 / sum));
      }
      sgemm(false, false, rows, h.dv, h.skv, 1.0f, s, h.skv, vb, h.dv, 0.0f,
            ob + i0 * h.dv, h.dv);
    }
  });
}

//===----------------------------------------------------------------------===//
// The backward of one key/value block, given lse and D
//===----------------------------------------------------------------------===//

/// Adds head b's share of this key/value block to dq (its rows) and to the
/// block's dk and dv: P = exp(s - lse), dv += P^T dout, dP = dout v^T,
/// dS = P (dP - D), dq += scale dS k, dk += scale dS^T q. `s` holds
/// 2 * rowBlock(h) * skv floats.
void blockBackward(const Heads &h, int64_t b, const float *qb, const float *kb,
                   const float *vb, const float *dob, const float *lse,
                   const float *delta, float *dqb, float *dkb, float *dvb,
                   float *s) {
  const int64_t block = rowBlock(h);
  float *dp = s + block * h.skv;
  for (int64_t i0 = 0; i0 < h.sq; i0 += block) {
    const int64_t rows = std::min(block, h.sq - i0);
    if (h.blockMasked(i0, rows))
      continue;
    scoreBlock(h, b, qb, kb, i0, rows, s);
    for (int64_t r = 0; r < rows; ++r) {
      float *row = s + r * h.skv;
      const float l = lse[i0 + r];
      if (l == kNegInf) {
        std::fill(row, row + h.skv, 0.0f);
        continue;
      }
      for (int64_t j = 0; j < h.skv; ++j)
        row[j] = row[j] == kNegInf ? 0.0f : std::exp(row[j] - l);
    }
    const float *dor = dob + i0 * h.dv;
    // dv[skv, dv] += P^T dout.
    sgemm(true, false, h.skv, h.dv, rows, 1.0f, s, h.skv, dor, h.dv, 1.0f, dvb,
          h.dv);
    // dP[rows, skv] = dout v^T; dS = P (dP - D).
    sgemm(false, true, rows, h.skv, h.dv, 1.0f, dor, h.dv, vb, h.dv, 0.0f, dp,
          h.skv);
    for (int64_t r = 0; r < rows; ++r) {
      float *p = s + r * h.skv, *g = dp + r * h.skv;
      const float dr = delta[i0 + r];
      for (int64_t j = 0; j < h.skv; ++j)
        p[j] *= g[j] - dr;
    }
    sgemm(false, false, rows, h.d, h.skv, h.scale, s, h.skv, kb, h.d, 1.0f,
          dqb + i0 * h.d, h.d);
    sgemm(true, false, h.skv, h.d, rows, h.scale, s, h.skv, qb + i0 * h.d, h.d,
          1.0f, dkb, h.d);
  }
}

/// D[row] = sum(dout[row] * out[row]) for every row of [..., rows, dv].
void rowDot(const float *dout, const float *out, float *delta, int64_t rows,
            int64_t dv) {
  parallelRange(rows, rows * dv, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      double acc = 0;
      const float *a = dout + r * dv, *c = out + r * dv;
      for (int64_t j = 0; j < dv; ++j)
        acc += double(a[j]) * c[j];
      delta[r] = static_cast<float>(acc);
    }
  });
}

/// Fills the batch-heads' own gradients: the broadcast batches of q, k or v
/// (several heads reading one) are not supported by the fused backward.
Status checkUnbroadcast(std::string_view op, const Heads &h) {
  for (int64_t b = 0; b < h.batches; ++b)
    if (h.qIdx[b] != b || h.kIdx[b] != b || h.vIdx[b] != b)
      return Status::error(std::string(op) +
                           ": query, key and value must have the result's "
                           "batch dimensions (no broadcasting)");
  return Status::ok();
}

/// The checks both backward kernels share: q, k, v and the mask describe
/// `h` (the mask over `maskColumns` keys), the heads are not broadcast,
/// and grad and the three gradients are f32 of their shapes.
Status describeBackward(std::string_view op, const TensorRef &q,
                        const TensorRef &k, const TensorRef &v,
                        const TensorRef *mask, int64_t maskColumns,
                        const TensorRef &grad, const TensorRef &dq,
                        const TensorRef &dk, const TensorRef &dv, Heads &h) {
  if (q.shape.size() < 2 || k.shape.size() < 2)
    return Status::error(std::string(op) + ": query and key need rank >= 2");
  if (Status s = describe(op, q, k, v, mask, matrixBatch(q), maskColumns, h);
      !s)
    return s;
  if (Status s = checkUnbroadcast(op, h); !s)
    return s;
  std::vector<int64_t> outShape = q.shape;
  outShape.back() = h.dv;
  for (auto [t, what, shape] : {std::tuple{&grad, "grad", outShape},
                                std::tuple{&dq, "query gradient", q.shape},
                                std::tuple{&dk, "key gradient", k.shape},
                                std::tuple{&dv, "value gradient", v.shape}})
    if (Status s = checkTensor(op, what, *t, DType::F32, shape); !s)
      return s;
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// attention_backward
//===----------------------------------------------------------------------===//

Status attentionBackwardKernel(const std::vector<TensorRef> &inputs,
                               const std::vector<TensorRef> &outputs,
                               const AttributeMap &attrs) {
  constexpr const char *op = "attention_backward";
  if (Status s = checkArity(op, inputs, outputs, 5, 6, 3); !s)
    return s;
  if (has16BitFloat(inputs))
    return runViaF32(op, &attentionBackwardKernel, inputs, outputs, attrs);
  const TensorRef &q = inputs[0], &k = inputs[1], &v = inputs[2],
                  &o = inputs[3], &dout = inputs[4];
  const TensorRef &dq = outputs[0], &dk = outputs[1], &dv = outputs[2];
  const TensorRef *mask = inputs.size() == 6 ? &inputs[5] : nullptr;
  Heads h;
  if (Status s = describeBackward(op, q, k, v, mask,
                                  k.shape.size() >= 2 ? k.shape.end()[-2] : 0,
                                  dout, dq, dk, dv, h);
      !s)
    return s;
  if (Status s = checkTensor(op, "out", o, DType::F32, dout.shape); !s)
    return s;
  std::fill(dq.as<float>(), dq.as<float>() + dq.numel(), 0.0f);
  std::fill(dk.as<float>(), dk.as<float>() + dk.numel(), 0.0f);
  std::fill(dv.as<float>(), dv.as<float>() + dv.numel(), 0.0f);
  if (o.numel() == 0)
    return Status::ok();
  h.scale =
      static_cast<float>(attrs.getFloat("scale", 1.0 / std::sqrt(double(h.d))));
  h.causal = attrs.getInt("causal", 0) != 0;
  h.shift = h.skv - h.sq;
  const int64_t block = rowBlock(h);
  const float *pq = q.as<float>(), *pk = k.as<float>(), *pv = v.as<float>(),
              *po = o.as<float>(), *pg = dout.as<float>();
  // Per head: 2 score blocks, then the rows' lse and D.
  const int64_t perThread = 2 * block * h.skv + 2 * h.sq;
  return forEachHead(op, h, perThread, [&](int64_t b, float *s) {
    const float *qb = pq + b * h.sq * h.d, *kb = pk + b * h.skv * h.d,
                *vb = pv + b * h.skv * h.dv, *ob = po + b * h.sq * h.dv,
                *gb = pg + b * h.sq * h.dv;
    float *lse = s + 2 * block * h.skv, *delta = lse + h.sq;
    rowDot(gb, ob, delta, h.sq, h.dv);
    for (int64_t i0 = 0; i0 < h.sq; i0 += block) {
      const int64_t rows = std::min(block, h.sq - i0);
      scoreBlock(h, b, qb, kb, i0, rows, s);
      for (int64_t r = 0; r < rows; ++r) {
        float *row = s + r * h.skv;
        const float mx = vecMax(row, h.skv);
        lse[i0 + r] = mx == kNegInf
                          ? kNegInf
                          : mx + static_cast<float>(std::log(
                                     vecExpShiftSum(row, row, h.skv, mx)));
      }
    }
    blockBackward(
        h, b, qb, kb, vb, gb, lse, delta, dq.as<float>() + b * h.sq * h.d,
        dk.as<float>() + b * h.skv * h.d, dv.as<float>() + b * h.skv * h.dv, s);
  });
}

//===----------------------------------------------------------------------===//
// Ring blocks
//===----------------------------------------------------------------------===//

/// Reads the block attributes shared by the ring kernels.
void blockAttributes(const AttributeMap &attrs, Heads &h) {
  h.scale =
      static_cast<float>(attrs.getFloat("scale", 1.0 / std::sqrt(double(h.d))));
  h.causal = attrs.getInt("causal", 0) != 0;
  h.qOffset = attrs.getInt("q_offset", 0);
  h.kOffset = attrs.getInt("k_offset", 0);
  h.shift = attrs.getInt("shift", 0);
}

/// attention_block: inputs q, k, v[, mask]; outputs (read and written) acc
/// [batch..., sq, dv], m and l [batch..., sq]; `init` starts them afresh.
/// The mask covers the whole key sequence (`kv_length` columns).
Status attentionBlockKernel(const std::vector<TensorRef> &inputs,
                            const std::vector<TensorRef> &outputs,
                            const AttributeMap &attrs) {
  constexpr const char *op = "attention_block";
  if (Status s = checkArity(op, inputs, outputs, 3, 4, 3); !s)
    return s;
  const TensorRef &q = inputs[0], &k = inputs[1], &v = inputs[2];
  const TensorRef &acc = outputs[0], &m = outputs[1], &l = outputs[2];
  const TensorRef *mask = inputs.size() == 4 ? &inputs[3] : nullptr;
  if (acc.shape.size() < 2)
    return Status::error("attention_block: the accumulator needs rank >= 2");
  Heads h;
  if (Status s = describe(op, q, k, v, mask, matrixBatch(acc),
                          attrs.getInt("kv_length", 0), h);
      !s)
    return s;
  if (Status s = checkUnbroadcast(op, h); !s)
    return s;
  std::vector<int64_t> accShape = q.shape;
  accShape.back() = h.dv;
  if (Status s = checkTensor(op, "accumulator", acc, DType::F32, accShape); !s)
    return s;
  for (const TensorRef *t : {&m, &l})
    if (Status s =
            checkTensor(op, "row statistic", *t, DType::F32, rowsShape(acc));
        !s)
      return s;
  blockAttributes(attrs, h);
  float *pa = acc.as<float>(), *pm = m.as<float>(), *pl = l.as<float>();
  if (attrs.getInt("init", 0)) {
    std::fill(pa, pa + acc.numel(), 0.0f);
    std::fill(pm, pm + m.numel(), kNegInf);
    std::fill(pl, pl + l.numel(), 0.0f);
  }
  if (acc.numel() == 0 || h.skv == 0 || h.blockMasked(0, h.sq))
    return Status::ok();
  const int64_t block = rowBlock(h);
  const float *pq = q.as<float>(), *pk = k.as<float>(), *pv = v.as<float>();
  return forEachHead(op, h, block * h.skv, [&](int64_t b, float *s) {
    const float *qb = pq + b * h.sq * h.d, *kb = pk + b * h.skv * h.d,
                *vb = pv + b * h.skv * h.dv;
    float *ab = pa + b * h.sq * h.dv, *mb = pm + b * h.sq, *lb = pl + b * h.sq;
    for (int64_t i0 = 0; i0 < h.sq; i0 += block) {
      const int64_t rows = std::min(block, h.sq - i0);
      if (h.blockMasked(i0, rows))
        continue;
      scoreBlock(h, b, qb, kb, i0, rows, s);
      for (int64_t r = 0; r < rows; ++r) {
        float *row = s + r * h.skv;
        const int64_t i = i0 + r;
        const float mx = std::max(mb[i], vecMax(row, h.skv));
        if (mx == kNegInf) { // nothing to attend to yet
          std::fill(row, row + h.skv, 0.0f);
          continue;
        }
        const float alpha = mb[i] == kNegInf ? 0.0f : std::exp(mb[i] - mx);
        const double sum = vecExpShiftSum(row, row, h.skv, mx);
        lb[i] = lb[i] * alpha + static_cast<float>(sum);
        mb[i] = mx;
        vecScale(ab + i * h.dv, h.dv, alpha);
      }
      sgemm(false, false, rows, h.dv, h.skv, 1.0f, s, h.skv, vb, h.dv, 1.0f,
            ab + i0 * h.dv, h.dv);
    }
  });
}

/// attention_block_finish: inputs acc, m, l; outputs out (may be acc) and
/// lse = m + log l (-inf, and a zero row, where nothing was attended to).
Status attentionBlockFinishKernel(const std::vector<TensorRef> &inputs,
                                  const std::vector<TensorRef> &outputs,
                                  const AttributeMap &) {
  if (Status s = checkAttentionBlockFinish(inputs, outputs); !s)
    return s;
  const TensorRef &acc = inputs[0], &m = inputs[1], &l = inputs[2];
  const TensorRef &out = outputs[0], &lse = outputs[1];
  const int64_t dv = acc.shape.back(), rows = m.numel();
  const float *pa = acc.as<float>(), *pm = m.as<float>(), *pl = l.as<float>();
  float *po = out.as<float>(), *ps = lse.as<float>();
  parallelRange(rows, rows * dv, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float l = pl[r];
      const float inv = l > 0 ? 1.0f / l : 0.0f;
      for (int64_t j = 0; j < dv; ++j)
        po[r * dv + j] = pa[r * dv + j] * inv;
      ps[r] = l > 0 ? pm[r] + std::log(l) : kNegInf;
    }
  });
  return Status::ok();
}

/// attention_delta: inputs out, grad [batch..., sq, dv]; output D
/// [batch..., sq] = rowsum(grad * out).
Status attentionDeltaKernel(const std::vector<TensorRef> &inputs,
                            const std::vector<TensorRef> &outputs,
                            const AttributeMap &) {
  if (Status s = checkAttentionDelta(inputs, outputs); !s)
    return s;
  const TensorRef &o = inputs[0], &g = inputs[1], &delta = outputs[0];
  rowDot(g.as<float>(), o.as<float>(), delta.as<float>(), delta.numel(),
         o.shape.back());
  return Status::ok();
}

/// attention_block_backward: inputs q, k, v, grad, lse, D[, mask]; outputs
/// (added to) dq, dk, dv of this key/value block; `init_q` / `init_kv`
/// zero dq / dk and dv first.
Status attentionBlockBackwardKernel(const std::vector<TensorRef> &inputs,
                                    const std::vector<TensorRef> &outputs,
                                    const AttributeMap &attrs) {
  constexpr const char *op = "attention_block_backward";
  if (Status s = checkArity(op, inputs, outputs, 6, 7, 3); !s)
    return s;
  const TensorRef &q = inputs[0], &k = inputs[1], &v = inputs[2],
                  &g = inputs[3], &lse = inputs[4], &delta = inputs[5];
  const TensorRef &dq = outputs[0], &dk = outputs[1], &dv = outputs[2];
  const TensorRef *mask = inputs.size() == 7 ? &inputs[6] : nullptr;
  Heads h;
  if (Status s = describeBackward(
          op, q, k, v, mask, attrs.getInt("kv_length", 0), g, dq, dk, dv, h);
      !s)
    return s;
  for (const TensorRef *t : {&lse, &delta})
    if (Status s = checkTensor(op, t == &lse ? "log-sum-exp" : "delta", *t,
                               DType::F32, rowsShape(q));
        !s)
      return s;
  blockAttributes(attrs, h);
  if (attrs.getInt("init_q", 0))
    std::fill(dq.as<float>(), dq.as<float>() + dq.numel(), 0.0f);
  if (attrs.getInt("init_kv", 0)) {
    std::fill(dk.as<float>(), dk.as<float>() + dk.numel(), 0.0f);
    std::fill(dv.as<float>(), dv.as<float>() + dv.numel(), 0.0f);
  }
  if (q.numel() == 0 || h.skv == 0 || h.blockMasked(0, h.sq))
    return Status::ok();
  const int64_t block = rowBlock(h);
  const float *pq = q.as<float>(), *pk = k.as<float>(), *pv = v.as<float>(),
              *pg = g.as<float>(), *pl = lse.as<float>(),
              *pd = delta.as<float>();
  return forEachHead(op, h, 2 * block * h.skv, [&](int64_t b, float *s) {
    blockBackward(h, b, pq + b * h.sq * h.d, pk + b * h.skv * h.d,
                  pv + b * h.skv * h.dv, pg + b * h.sq * h.dv, pl + b * h.sq,
                  pd + b * h.sq, dq.as<float>() + b * h.sq * h.d,
                  dk.as<float>() + b * h.skv * h.d,
                  dv.as<float>() + b * h.skv * h.dv, s);
  });
}

} // namespace

void appendAttentionKernels(std::vector<KernelEntry> &table) {
  table.push_back({"attention", &attentionKernel});
  table.push_back({"attention_backward", &attentionBackwardKernel});
  table.push_back({"attention_block", &attentionBlockKernel});
  table.push_back({"attention_block_finish", &attentionBlockFinishKernel});
  table.push_back({"attention_delta", &attentionDeltaKernel});
  table.push_back({"attention_block_backward", &attentionBlockBackwardKernel});
}

} // namespace colossal::rt::cpu
