//===- OpGeometry.h - What each op's operands mean, for every backend -*- C++
//-*-===//
//
// The host-side half of a kernel that does not depend on where the data
// lives: checking an op's operand shapes and attributes and deriving the
// sizes, strides and index maps its loops run over. The CPU kernels and
// the CUDA backend's both call these, so the two accept the same inputs,
// refuse the same mistakes with the same messages, and index alike.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_BACKENDS_CPU_OPGEOMETRY_H
#define COLOSSAL_RUNTIME_BACKENDS_CPU_OPGEOMETRY_H

#include "runtime/backends/cpu/ConvWindow.h"
#include "runtime/backends/cpu/KernelUtil.h"

#include <cstdint>
#include <string_view>
#include <vector>

namespace colossal::rt::cpu {

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

/// Row-major element strides of `shape`.
std::vector<int64_t> contiguousStrides(const std::vector<int64_t> &shape);

/// The output index space `out` read through source strides `strides`
/// (size-1 dimensions dropped, runs that stay contiguous merged).
BroadcastPlan stridedPlan(const std::vector<int64_t> &out,
                          const std::vector<int64_t> &strides);

/// transpose: the strided read of the input that gives the result.
Status transposePlan(const std::vector<TensorRef> &inputs,
                     const std::vector<TensorRef> &outputs,
                     const AttributeMap &attrs, BroadcastPlan &plan);

/// slice: the strided read, starting `base` elements into the input.
Status slicePlan(const std::vector<TensorRef> &inputs,
                 const std::vector<TensorRef> &outputs,
                 const AttributeMap &attrs, BroadcastPlan &plan, int64_t &base);

/// concat / split: `pieces` stacked along `axis` make `whole`; `outer`
/// rows of `innerBytes` per unit along the axis.
Status stackGeometry(std::string_view op, const TensorRef &whole,
                     const std::vector<TensorRef> &pieces, int64_t axisAttr,
                     int64_t &axis, int64_t &outer, int64_t &innerBytes);

/// gather: out[o, t, i] = data[o, indices[t], i] over `outer` x `count` x
/// `inner` elements, `n` = the gathered dimension's size.
struct GatherGeometry {
  int64_t axis = 0, n = 0, count = 0, outer = 1, inner = 1;
};
Status gatherGeometry(const std::vector<TensorRef> &inputs,
                      const std::vector<TensorRef> &outputs,
                      const AttributeMap &attrs, GatherGeometry &g);

/// scatter_add_rows: integer indices [n], updates [n, width] of the
/// result's float dtype, result [rows, width].
Status checkScatterAddRows(const std::vector<TensorRef> &inputs,
                           const std::vector<TensorRef> &outputs);

/// trilu: the band kept of each [rows, cols] matrix.
struct TriluGeometry {
  bool upper = false;
  int64_t diagonal = 0, rows = 0, cols = 0;
};
Status triluGeometry(const std::vector<TensorRef> &inputs,
                     const std::vector<TensorRef> &outputs,
                     const AttributeMap &attrs, TriluGeometry &g);

/// topk: rows of `len` elements `inner` apart (along `axis`), the first
/// `k` of each in the order "larger first" (or "smaller first" with
/// `smallest`), NaN above every number and ties by the lower index.
struct TopKGeometry {
  int64_t outer = 1, len = 1, inner = 1, k = 0;
  bool smallest = false;
};
Status topkGeometry(const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs,
                    const AttributeMap &attrs, TopKGeometry &g);

#ifdef __CUDACC__
#define COLOSSAL_HOST_DEVICE __host__ __device__
#else
#define COLOSSAL_HOST_DEVICE
#endif

/// "a (at position ia) comes before b (at ib)" in topk's order, on the host
/// and on the device: larger first (smaller first with `smallest`), NaN
/// above every number, ties by the lower position.
template <class C>
COLOSSAL_HOST_DEVICE inline bool topkBefore(C a, C b, int64_t ia, int64_t ib,
                                            bool smallest) {
  auto above = [](C x, C y) {
    if (x != x || y != y) // NaN; never for integers
      return x != x && y == y;
    return x > y;
  };
  if (smallest ? above(b, a) : above(a, b))
    return true;
  if (smallest ? above(a, b) : above(b, a))
    return false;
  return ia < ib;
}

/// splitmix64: the mixing step of the dropout masks' counter stream.
constexpr uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// random_keep: element i of run `counter` is kept when
/// (mix64(mix64(seedKey ^ counter) + i) >> 11) >= threshold, one stream per
/// (seed, stream attribute).
struct RandomKeep {
  uint64_t seedKey = 0;
  double threshold = 0;
};
Status randomKeepGeometry(const std::vector<TensorRef> &inputs,
                          const std::vector<TensorRef> &outputs,
                          const AttributeMap &attrs, RandomKeep &r);

//===----------------------------------------------------------------------===//
// Contractions
//===----------------------------------------------------------------------===//

/// matmul (numpy rules, transposed operands from colossal-fold-into-gemm):
/// `batches` products C[m,n] = op(A)[m,k] op(B)[k,n]; batch i reads lhs
/// matrix aIdx[i] and rhs matrix bIdx[i].
struct MatmulGeometry {
  bool ta = false, tb = false;
  int64_t m = 0, n = 0, k = 0, batches = 0;
  std::vector<int64_t> batch, aBatch, bBatch, aIdx, bIdx;
};
Status matmulGeometry(const std::vector<TensorRef> &inputs,
                      const std::vector<TensorRef> &outputs,
                      const AttributeMap &attrs, MatmulGeometry &g);

/// linear: y[rows, out] = x[rows, in] @ W (+ bias of `out` or 1 element).
struct LinearGeometry {
  bool transposed = false;
  int64_t in = 0, out = 0, rows = 0;
};
Status linearGeometry(const std::vector<TensorRef> &inputs,
                      const std::vector<TensorRef> &outputs,
                      const AttributeMap &attrs, LinearGeometry &g);

//===----------------------------------------------------------------------===//
// Reductions and normalization
//===----------------------------------------------------------------------===//

/// reduce_*: the input's dimensions as runs of kept and of reduced ones
/// (merged where contiguous, size-1 dropped), with their element strides.
struct ReduceGeometry {
  std::vector<int64_t> keptSizes, keptStrides, redSizes, redStrides;
  int64_t outCount = 1, redCount = 1;
  /// Whether the innermost dimension of size > 1 is a reduced one.
  bool innermostReduced = false;
};
Status reduceGeometry(std::string_view op, const std::vector<TensorRef> &inputs,
                      const std::vector<TensorRef> &outputs,
                      const AttributeMap &attrs, ReduceGeometry &g);

/// Error unless the result has the input's dtype and shape.
Status checkUnaryShape(std::string_view op, const std::vector<TensorRef> &in,
                       const std::vector<TensorRef> &out);

/// softmax / log_softmax along `axis`: rows of `len` elements `inner` apart.
Status softmaxGeometry(std::string_view op,
                       const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs,
                       const AttributeMap &attrs, int64_t &outer, int64_t &len,
                       int64_t &inner);

/// layer_norm / rms_norm: rows of `len` elements over dims [axis, rank);
/// the `numParams` parameters after the input hold `len` elements or one.
Status normGeometry(std::string_view op, const std::vector<TensorRef> &inputs,
                    const AttributeMap &attrs, size_t numParams, int64_t &rows,
                    int64_t &len);

/// batch_norm: channels (dimension 1) and elements per channel and image;
/// every parameter holds one element per channel.
Status batchNormGeometry(const std::vector<TensorRef> &inputs,
                         int64_t &channels, int64_t &spatial);

//===----------------------------------------------------------------------===//
// Convolutions and pools
//===----------------------------------------------------------------------===//

/// conv2d and its gradients: input x [n, c, h, w], weight [o, cg, kh, kw],
/// the output side y [n, o, oh, ow], `groups` groups.
struct ConvGeometry {
  int64_t n, c, h, w, o, cg, groups, oh, ow;
  Window win;
};
Status convGeometry(std::string_view op, const TensorRef &x,
                    const TensorRef &wt, const TensorRef &y,
                    const AttributeMap &attrs, ConvGeometry &g);

/// The pools: input [n, c, h, w], result [n, c, oh, ow], the window.
Status poolGeometry(std::string_view op, const TensorRef &x, const TensorRef &y,
                    const AttributeMap &attrs, Window &win);

/// max_pool2d_backward: input x, output gradient dy, result dx (x's shape).
Status maxPoolBackwardGeometry(std::string_view op, const TensorRef &x,
                               const TensorRef &dy, const TensorRef &dx,
                               const AttributeMap &attrs, Window &win);

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

/// q [batch..., sq, d], k [batch..., skv, d], v [batch..., skv, dv] and a
/// mask broadcast to [batch..., sq, maskColumns]: each operand's stride per
/// batch dimension (in matrices for q/k/v, in elements for the mask), and
/// the mask's row and column strides.
struct AttentionGeometry {
  std::vector<int64_t> batch;
  int64_t batches = 0, sq = 0, skv = 0, d = 0, dv = 0;
  std::vector<int64_t> qStrides, kStrides, vStrides, maskStrides;
  int64_t maskRowStride = 0, maskColStride = 0;

  /// Whether every batch-head has its own q, k and v.
  bool unbroadcast() const;
};
Status attentionGeometry(std::string_view op, const TensorRef &q,
                         const TensorRef &k, const TensorRef &v,
                         const TensorRef *mask,
                         const std::vector<int64_t> &batch, int64_t maskColumns,
                         AttentionGeometry &g);

/// For each batch index of `batch` (row-major), the offset
/// sum(index[d] * strides[d]).
std::vector<int64_t> batchOffsets(const std::vector<int64_t> &batch,
                                  const std::vector<int64_t> &strides);

/// The batch shape of [batch..., rows, cols], and the row shape
/// [batch..., rows] of per-row statistics.
std::vector<int64_t> matrixBatch(const TensorRef &t);
std::vector<int64_t> rowsShape(const TensorRef &t);

/// attention_block_finish: float32 acc [..., rows, dv], m and l [..., rows]
/// in; out (acc's shape) and lse (m's) out.
Status checkAttentionBlockFinish(const std::vector<TensorRef> &inputs,
                                 const std::vector<TensorRef> &outputs);

/// attention_delta: float32 out and grad [..., rows, dv] in, D [..., rows]
/// out.
Status checkAttentionDelta(const std::vector<TensorRef> &inputs,
                           const std::vector<TensorRef> &outputs);

/// Error unless `t` has dtype `dtype` and shape `shape`.
Status checkTensor(std::string_view op, const char *what, const TensorRef &t,
                   DType dtype, const std::vector<int64_t> &shape);

} // namespace colossal::rt::cpu

#endif // COLOSSAL_RUNTIME_BACKENDS_CPU_OPGEOMETRY_H
