//===- Reduction.cpp - reduce_sum, reduce_mean, reduce_max and topk -------===//
//
// Dimensions are merged into runs of kept and reduced ones. When the
// innermost run is reduced, each output sums a contiguous stretch; when it
// is kept, whole contiguous output rows accumulate at once. Float sums
// accumulate in double; integer sums wrap in 64 bits. topk partially sorts
// each row's positions.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/KernelUtil.h"
#include "runtime/backends/cpu/OpGeometry.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <type_traits>

namespace colossal::rt::cpu {
namespace {

enum class Reduce { Sum, Mean, Max };

constexpr const char *reduceName(Reduce k) {
  return k == Reduce::Sum    ? "reduce_sum"
         : k == Reduce::Mean ? "reduce_mean"
                             : "reduce_max";
}

/// Accumulation for storage type T: double for float sums, 64-bit wrapping
/// integers for integer sums, the compute type for max.
template <Reduce K, class T> struct Acc {
  using C = typename Num<T>::C;
  static constexpr bool kInt = std::is_integral_v<C>;
  using A = std::conditional_t<K == Reduce::Max, C,
                               std::conditional_t<kInt, uint64_t, double>>;

  static A init() {
    if constexpr (K != Reduce::Max)
      return 0;
    else if constexpr (kInt)
      return std::numeric_limits<C>::lowest();
    else
      return -std::numeric_limits<float>::infinity();
  }
  static void add(A &acc, T v) {
    const C c = Num<T>::load(v);
    if constexpr (K == Reduce::Max) {
      if (c > acc || c != c) // NaN wins, as in numpy
        acc = c;
    } else if constexpr (kInt) {
      acc += static_cast<uint64_t>(static_cast<int64_t>(c));
    } else {
      acc += c;
    }
  }
  static T finish(A acc, int64_t count) {
    if constexpr (K == Reduce::Max) {
      return Num<T>::store(acc);
    } else if constexpr (kInt) {
      int64_t s = static_cast<int64_t>(acc);
      if (K == Reduce::Mean)
        s = count ? s / count : 0; // truncates, like integer division
      return static_cast<T>(s);
    } else {
      const double r = K == Reduce::Mean ? acc / double(count) : acc;
      return Num<T>::store(static_cast<C>(r));
    }
  }
};

/// Calls f(offset) for every index of the box `sizes` with `strides`.
template <class F>
void forEachOffset(const std::vector<int64_t> &sizes,
                   const std::vector<int64_t> &strides, F &&f) {
  const size_t rank = sizes.size();
  std::vector<int64_t> idx(rank, 0);
  int64_t off = 0;
  while (true) {
    f(off);
    size_t d = rank;
    while (d-- > 0) {
      off += strides[d];
      if (++idx[d] < sizes[d])
        break;
      off -= strides[d] * sizes[d];
      idx[d] = 0;
    }
    if (d == SIZE_MAX)
      return;
  }
}

int64_t offsetOf(int64_t linear, const std::vector<int64_t> &sizes,
                 const std::vector<int64_t> &strides) {
  int64_t off = 0;
  for (size_t d = sizes.size(); d-- > 0;) {
    off += (linear % sizes[d]) * strides[d];
    linear /= sizes[d];
  }
  return off;
}

template <Reduce K>
Status reduceKernel(const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs,
                    const AttributeMap &attrs) {
  constexpr const char *op = reduceName(K);
  ReduceGeometry g;
  if (Status s = reduceGeometry(op, inputs, outputs, attrs, g); !s)
    return s;
  const int64_t outCount = g.outCount, redCount = g.redCount;
  const std::vector<int64_t> &keptSizes = g.keptSizes,
                             &keptStrides = g.keptStrides,
                             &redSizes = g.redSizes, &redStrides = g.redStrides;

  return dispatchNumeric(op, inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using R = Acc<K, T>;
    const T *in = inputs[0].as<T>();
    T *out = outputs[0].as<T>();
    if (outCount == 0)
      return Status::ok();
    if (redCount <= 1 || redSizes.empty()) {
      // Nothing (or nothing but size-1 dimensions) to reduce.
      parallelRange(outCount, outCount, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          typename R::A acc = R::init();
          if (redCount)
            R::add(acc, in[i]);
          out[i] = R::finish(acc, redCount);
        }
      });
      return Status::ok();
    }
    if (g.innermostReduced) {
      // Innermost run reduced: contiguous stretches of `inner` elements.
      const int64_t inner = redSizes.back();
      std::vector<int64_t> outerSizes(redSizes.begin(), redSizes.end() - 1),
          outerStrides(redStrides.begin(), redStrides.end() - 1);
      parallelRange(outCount, outCount * redCount, [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) {
          const T *base = in + offsetOf(o, keptSizes, keptStrides);
          typename R::A acc = R::init();
          forEachOffset(outerSizes, outerStrides, [&](int64_t off) {
            const T *p = base + off;
            for (int64_t j = 0; j < inner; ++j)
              R::add(acc, p[j]);
          });
          out[o] = R::finish(acc, redCount);
        }
      });
    } else {
      // Innermost run kept: accumulate whole output rows of `inner`.
      const int64_t inner = keptSizes.back();
      std::vector<int64_t> outerSizes(keptSizes.begin(), keptSizes.end() - 1),
          outerStrides(keptStrides.begin(), keptStrides.end() - 1);
      const int64_t rows = outCount / inner;
      parallelRange(rows, outCount * redCount, [&](int64_t b, int64_t e) {
        std::vector<typename R::A> acc(static_cast<size_t>(inner));
        for (int64_t r = b; r < e; ++r) {
          const T *base = in + offsetOf(r, outerSizes, outerStrides);
          std::fill(acc.begin(), acc.end(), R::init());
          forEachOffset(redSizes, redStrides, [&](int64_t off) {
            const T *p = base + off;
            for (int64_t j = 0; j < inner; ++j)
              R::add(acc[j], p[j]);
          });
          for (int64_t j = 0; j < inner; ++j)
            out[r * inner + j] = R::finish(acc[j], redCount);
        }
      });
    }
    return Status::ok();
  });
}

Status topkKernel(const std::vector<TensorRef> &inputs,
                  const std::vector<TensorRef> &outputs,
                  const AttributeMap &attrs) {
  TopKGeometry g;
  if (Status s = topkGeometry(inputs, outputs, attrs, g); !s)
    return s;
  return dispatchNumeric("topk", inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using N = Num<T>;
    using C = typename N::C;
    const T *in = inputs[0].as<T>();
    T *values = outputs[0].as<T>();
    int64_t *indices = outputs[1].as<int64_t>();
    const int64_t rows = g.outer * g.inner;
    parallelRange(rows, rows * g.len * 4, [&](int64_t lo, int64_t hi) {
      std::vector<C> row(static_cast<size_t>(g.len));
      std::vector<int64_t> order(static_cast<size_t>(g.len));
      for (int64_t r = lo; r < hi; ++r) {
        const int64_t o = r / g.inner, i = r % g.inner;
        const T *x = in + o * g.len * g.inner + i;
        for (int64_t j = 0; j < g.len; ++j)
          row[j] = N::load(x[j * g.inner]);
        std::iota(order.begin(), order.end(), int64_t{0});
        std::partial_sort(order.begin(), order.begin() + g.k, order.end(),
                          [&](int64_t a, int64_t b) {
                            return topkBefore(row[a], row[b], a, b, g.smallest);
                          });
        const int64_t base = o * g.k * g.inner + i;
        for (int64_t j = 0; j < g.k; ++j) {
          values[base + j * g.inner] = N::store(row[order[j]]);
          indices[base + j * g.inner] = order[j];
        }
      }
    });
    return Status::ok();
  });
}

} // namespace

void appendReductionKernels(std::vector<KernelEntry> &table) {
  table.push_back({"topk", &topkKernel});
  table.push_back({"reduce_sum", &reduceKernel<Reduce::Sum>});
  table.push_back({"reduce_mean", &reduceKernel<Reduce::Mean>});
  table.push_back({"reduce_max", &reduceKernel<Reduce::Max>});
}

} // namespace colossal::rt::cpu
