//===- Reduction.cu - reduce_sum, reduce_mean, reduce_max and topk --------===//
//
// The input's dimensions split (cpu::reduceGeometry, as on the CPU) into
// kept and reduced runs, each merged where contiguous. An output element with
// many inputs gets a block that reduces in shared memory; one with few, a
// thread. Float sums accumulate in double and integer sums wrap in 64 bits, as
// the CPU's do, so the results agree to the last bit or nearly. topk gives
// each row a block that selects its k elements in k rounds, each the block's
// first element (in the CPU's order) after the one chosen before.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/OpGeometry.h"
#include "runtime/backends/cuda/DeviceUtil.cuh"

#include <limits>

namespace colossal::rt::cuda {
namespace {

enum class Reduce { Sum, Mean, Max };

constexpr const char *reduceName(Reduce k) {
  return k == Reduce::Sum    ? "reduce_sum"
         : k == Reduce::Mean ? "reduce_mean"
                             : "reduce_max";
}

/// Sizes and element strides of a run of merged dimensions.
struct Dims {
  int rank = 0;
  int64_t sizes[kMaxRank];
  int64_t strides[kMaxRank];

  __device__ int64_t offset(int64_t linear) const {
    int64_t off = 0;
    for (int d = rank - 1; d >= 0; --d) {
      off += (linear % sizes[d]) * strides[d];
      linear /= sizes[d];
    }
    return off;
  }
};

template <Reduce K, class T> struct Acc {
  using C = typename Num<T>::C;
  static constexpr bool kInt = std::is_integral_v<C>;
  using A = std::conditional_t<K == Reduce::Max, C,
                               std::conditional_t<kInt, uint64_t, double>>;

  __device__ static A init() {
    if constexpr (K != Reduce::Max)
      return 0;
    else if constexpr (kInt)
      return std::numeric_limits<C>::lowest();
    else
      return -INFINITY;
  }
  __device__ static void add(A &acc, A v) {
    if constexpr (K == Reduce::Max) {
      if (v > acc || v != v) // NaN wins, as in numpy
        acc = v;
    } else {
      acc += v;
    }
  }
  __device__ static A load(T v) {
    const C c = Num<T>::load(v);
    if constexpr (K != Reduce::Max && kInt)
      return static_cast<uint64_t>(static_cast<int64_t>(c));
    else
      return static_cast<A>(c);
  }
  __device__ static T finish(A acc, int64_t count) {
    if constexpr (K == Reduce::Max) {
      return Num<T>::store(acc);
    } else if constexpr (kInt) {
      int64_t s = static_cast<int64_t>(acc);
      if (K == Reduce::Mean)
        s = count ? s / count : 0;
      return static_cast<T>(s);
    } else {
      const double r = K == Reduce::Mean ? acc / double(count) : acc;
      return Num<T>::store(static_cast<C>(r));
    }
  }
  /// Combines two partial results that a shuffle brings together.
  __device__ static A shuffle(A v, int lane) {
    return __shfl_xor_sync(0xffffffffu, v, lane);
  }
};

template <Reduce K, class T>
__global__ void reduceByThread(Dims kept, Dims red, int64_t outCount,
                               int64_t redCount, const T *in, T *out) {
  using R = Acc<K, T>;
  COLOSSAL_GRID_STRIDE(o, outCount) {
    const int64_t base = kept.offset(o);
    typename R::A acc = R::init();
    for (int64_t r = 0; r < redCount; ++r)
      R::add(acc, R::load(in[base + red.offset(r)]));
    out[o] = R::finish(acc, redCount);
  }
}

template <Reduce K, class T>
__global__ void reduceByBlock(Dims kept, Dims red, int64_t outCount,
                              int64_t redCount, const T *in, T *out) {
  using R = Acc<K, T>;
  using A = typename R::A;
  __shared__ A partial[32];
  for (int64_t o = blockIdx.x; o < outCount; o += gridDim.x) {
    const int64_t base = kept.offset(o);
    A acc = R::init();
    for (int64_t r = threadIdx.x; r < redCount; r += blockDim.x)
      R::add(acc, R::load(in[base + red.offset(r)]));
    for (int lane = 16; lane > 0; lane >>= 1)
      R::add(acc, R::shuffle(acc, lane));
    __syncthreads();
    if ((threadIdx.x & 31) == 0)
      partial[threadIdx.x >> 5] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
      A total = R::init();
      for (int w = 0; w < int(blockDim.x >> 5); ++w)
        R::add(total, partial[w]);
      out[o] = R::finish(total, redCount);
    }
  }
}

Status toDims(std::string_view op, const std::vector<int64_t> &sizes,
              const std::vector<int64_t> &strides, Dims &out) {
  if (sizes.size() > size_t(kMaxRank))
    return Status::error(std::string(op) + ": more than " +
                         std::to_string(kMaxRank) +
                         " separate runs of dimensions is not supported on "
                         "cuda");
  out.rank = static_cast<int>(sizes.size());
  for (size_t d = 0; d < sizes.size(); ++d) {
    out.sizes[d] = sizes[d];
    out.strides[d] = strides[d];
  }
  return Status::ok();
}

template <Reduce K>
Status reduceOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
                const std::vector<TensorRef> &outputs,
                const AttributeMap &attrs) {
  constexpr const char *op = reduceName(K);
  cpu::ReduceGeometry g;
  if (Status s = cpu::reduceGeometry(op, inputs, outputs, attrs, g); !s)
    return s;
  const int64_t outCount = g.outCount, redCount = g.redCount;
  Dims kept, red;
  if (Status s = toDims(op, g.keptSizes, g.keptStrides, kept); !s)
    return s;
  if (Status s = toDims(op, g.redSizes, g.redStrides, red); !s)
    return s;
  if (outCount == 0)
    return Status::ok();
  return dispatchNumeric(op, inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *in = inputs[0].as<T>();
    T *out = outputs[0].as<T>();
    if (redCount < 256) {
      reduceByThread<K, T><<<gridFor(ctx, outCount), kThreads, 0, ctx.stream>>>(
          kept, red, outCount, redCount, in, out);
    } else {
      const int64_t cap = int64_t(ctx.multiprocessors) * 16;
      const unsigned grid =
          static_cast<unsigned>(outCount < cap ? outCount : cap);
      reduceByBlock<K, T><<<grid, kThreads, 0, ctx.stream>>>(
          kept, red, outCount, redCount, in, out);
    }
    return launched(op);
  });
}

template <class T>
__global__ void topkRows(cpu::TopKGeometry g, const T *in, T *values,
                         int64_t *indices) {
  using C = typename Num<T>::C;
  __shared__ C bestValue[kThreads];
  __shared__ int64_t bestIndex[kThreads];
  __shared__ C prevValue;
  __shared__ int64_t prevIndex;
  const int64_t rows = g.outer * g.inner;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t o = r / g.inner, i = r % g.inner;
    const T *x = in + o * g.len * g.inner + i;
    for (int64_t round = 0; round < g.k; ++round) {
      C best{};
      int64_t at = -1;
      for (int64_t j = threadIdx.x; j < g.len; j += blockDim.x) {
        const C v = Num<T>::load(x[j * g.inner]);
        if (round > 0 &&
            !cpu::topkBefore(prevValue, v, prevIndex, j, g.smallest))
          continue;
        if (at < 0 || cpu::topkBefore(v, best, j, at, g.smallest)) {
          best = v;
          at = j;
        }
      }
      bestValue[threadIdx.x] = best;
      bestIndex[threadIdx.x] = at;
      __syncthreads();
      for (unsigned half = blockDim.x / 2; half > 0; half >>= 1) {
        if (threadIdx.x < half) {
          const int64_t other = bestIndex[threadIdx.x + half];
          if (other >= 0 &&
              (bestIndex[threadIdx.x] < 0 ||
               cpu::topkBefore(bestValue[threadIdx.x + half],
                               bestValue[threadIdx.x], other,
                               bestIndex[threadIdx.x], g.smallest))) {
            bestValue[threadIdx.x] = bestValue[threadIdx.x + half];
            bestIndex[threadIdx.x] = other;
          }
        }
        __syncthreads();
      }
      if (threadIdx.x == 0) {
        const int64_t out = o * g.k * g.inner + round * g.inner + i;
        values[out] = Num<T>::store(bestValue[0]);
        indices[out] = bestIndex[0];
        prevValue = bestValue[0];
        prevIndex = bestIndex[0];
      }
      __syncthreads();
    }
  }
}

Status topkOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
              const std::vector<TensorRef> &outputs,
              const AttributeMap &attrs) {
  cpu::TopKGeometry g;
  if (Status s = cpu::topkGeometry(inputs, outputs, attrs, g); !s)
    return s;
  const int64_t rows = g.outer * g.inner;
  if (rows == 0 || g.k == 0)
    return Status::ok();
  return dispatchNumeric("topk", inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t cap = int64_t(ctx.multiprocessors) * 16;
    const unsigned grid = static_cast<unsigned>(rows < cap ? rows : cap);
    topkRows<T><<<grid, kThreads, 0, ctx.stream>>>(
        g, inputs[0].as<T>(), outputs[0].as<T>(), outputs[1].as<int64_t>());
    return launched("topk");
  });
}

} // namespace

void appendReductionKernels(std::vector<KernelEntry> &table) {
  table.push_back({"topk", &topkOp});
  table.push_back({"reduce_sum", &reduceOp<Reduce::Sum>});
  table.push_back({"reduce_mean", &reduceOp<Reduce::Mean>});
  table.push_back({"reduce_max", &reduceOp<Reduce::Max>});
}

} // namespace colossal::rt::cuda
