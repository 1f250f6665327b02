//===- Normalization.cpp - softmax, log_softmax and the norms -------------===//
//
// softmax and log_softmax subtract the row maximum; layer_norm and rms_norm
// accumulate their statistics in double, so long rows of large values keep
// fp32 accuracy (float rows in VecMath's eight double lanes, vectorized).
// batch_norm folds its running statistics into one multiply-add per channel.
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

/// A float copy of a small float tensor (scale, bias, statistics).
Status loadFloats(std::string_view op, const TensorRef &t,
                  std::vector<float> &out) {
  return dispatchFloat(op, t.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *p = t.as<T>();
    out.resize(static_cast<size_t>(t.numel()));
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = Num<T>::load(p[i]);
    return Status::ok();
  });
}

//===----------------------------------------------------------------------===//
// softmax and log_softmax
//===----------------------------------------------------------------------===//

/// Softmax (or log-softmax) of a contiguous float row; `tmp` holds len
/// floats and may be `out`, never `in`.
template <bool Log>
void softmaxRow(const float *in, float *out, int64_t len, float *tmp) {
  const float m = vecMax(in, len);
  if constexpr (Log) {
    const double sum = vecExpShiftSum(in, tmp, len, m);
    const float logSum = static_cast<float>(std::log(sum));
    for (int64_t j = 0; j < len; ++j)
      out[j] = (in[j] - m) - logSum;
  } else {
    const double sum = vecExpShiftSum(in, out, len, m);
    vecScale(out, len, static_cast<float>(1.0 / sum));
  }
}

/// A row of `len` elements `stride` apart, through float buffers `a` and
/// `b` of len floats each unless it is already a contiguous float row.
template <class T, bool Log>
void softmaxRowStrided(const T *in, T *out, int64_t len, int64_t stride,
                       float *a, float *b) {
  using N = Num<T>;
  if constexpr (std::is_same_v<T, float>) {
    if (stride == 1) {
      softmaxRow<Log>(in, out, len, Log ? a : out);
      return;
    }
  }
  for (int64_t j = 0; j < len; ++j)
    a[j] = N::load(in[j * stride]);
  softmaxRow<Log>(a, b, len, b);
  for (int64_t j = 0; j < len; ++j)
    out[j * stride] = N::store(b[j]);
}

template <bool Log>
Status softmaxKernel(const std::vector<TensorRef> &inputs,
                     const std::vector<TensorRef> &outputs,
                     const AttributeMap &attrs) {
  const char *op = Log ? "log_softmax" : "softmax";
  int64_t outer = 1, len = 1, inner = 1;
  if (Status s = softmaxGeometry(op, inputs, outputs, attrs, outer, len, inner);
      !s)
    return s;
  return dispatchFloat(op, inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *in = inputs[0].as<T>();
    T *out = outputs[0].as<T>();
    const int64_t rows = outer * inner;
    parallelRange(rows, rows * len * 4, [&](int64_t b, int64_t e) {
      std::vector<float> tmp(static_cast<size_t>(2 * len));
      for (int64_t r = b; r < e; ++r) {
        const int64_t base = (r / inner) * len * inner + r % inner;
        softmaxRowStrided<T, Log>(in + base, out + base, len, inner, tmp.data(),
                                  tmp.data() + len);
      }
    });
    return Status::ok();
  });
}

//===----------------------------------------------------------------------===//
// layer_norm and rms_norm
//===----------------------------------------------------------------------===//

/// Splits x into rows over dims [axis, rank) and loads scale/bias, which must
/// hold one element per row position (or one element in all).
Status prepareNorm(std::string_view op, const std::vector<TensorRef> &inputs,
                   const AttributeMap &attrs, size_t numParams, int64_t &rows,
                   int64_t &len, std::vector<std::vector<float>> &params) {
  if (Status s = normGeometry(op, inputs, attrs, numParams, rows, len); !s)
    return s;
  params.resize(numParams);
  for (size_t i = 0; i < numParams; ++i) {
    const TensorRef &p = inputs[1 + i];
    if (Status s = loadFloats(op, p, params[i]); !s)
      return s;
    if (p.numel() == 1 && len > 1)
      params[i].assign(static_cast<size_t>(len), params[i][0]);
  }
  return Status::ok();
}

Status layerNormKernel(const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs,
                       const AttributeMap &attrs) {
  if (Status s = checkArity("layer_norm", inputs, outputs, 2, 3, 1); !s)
    return s;
  if (Status s = checkUnaryShape("layer_norm", inputs, outputs); !s)
    return s;
  int64_t rows = 0, len = 0;
  std::vector<std::vector<float>> params;
  if (Status s = prepareNorm("layer_norm", inputs, attrs, inputs.size() - 1,
                             rows, len, params);
      !s)
    return s;
  const double eps = attrs.getFloat("epsilon", 1e-5);
  const float *scale = params[0].data();
  const float *bias = params.size() > 1 ? params[1].data() : nullptr;
  return dispatchFloat("layer_norm", inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using N = Num<T>;
    const T *in = inputs[0].as<T>();
    T *out = outputs[0].as<T>();
    parallelRange(rows, rows * len * 2, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const T *x = in + r * len;
        T *y = out + r * len;
        if constexpr (std::is_same_v<T, float>) {
          // Vectorized: the same double statistics in eight lanes.
          const double mean = vecSumDouble(x, len) / double(len);
          const double inv =
              1.0 / std::sqrt(vecSquaredDeviationSum(x, len, mean) / len + eps);
          vecNormalizeRow(x, y, len, mean, inv, scale, bias);
          continue;
        }
        double sum = 0;
        for (int64_t j = 0; j < len; ++j)
          sum += N::load(x[j]);
        const double mean = sum / double(len);
        double sq = 0;
        for (int64_t j = 0; j < len; ++j) {
          const double d = N::load(x[j]) - mean;
          sq += d * d;
        }
        // Centre in double: with a large mean, rounding it to float would
        // cost more than the tolerance when the spread is small.
        const double inv = 1.0 / std::sqrt(sq / len + eps);
        for (int64_t j = 0; j < len; ++j) {
          const float v =
              static_cast<float>((N::load(x[j]) - mean) * inv) * scale[j];
          y[j] = N::store(bias ? v + bias[j] : v);
        }
      }
    });
    return Status::ok();
  });
}

Status rmsNormKernel(const std::vector<TensorRef> &inputs,
                     const std::vector<TensorRef> &outputs,
                     const AttributeMap &attrs) {
  if (Status s = checkArity("rms_norm", inputs, outputs, 2, 2, 1); !s)
    return s;
  if (Status s = checkUnaryShape("rms_norm", inputs, outputs); !s)
    return s;
  int64_t rows = 0, len = 0;
  std::vector<std::vector<float>> params;
  if (Status s = prepareNorm("rms_norm", inputs, attrs, 1, rows, len, params);
      !s)
    return s;
  const double eps = attrs.getFloat("epsilon", 1e-6);
  const float *scale = params[0].data();
  return dispatchFloat("rms_norm", inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using N = Num<T>;
    const T *in = inputs[0].as<T>();
    T *out = outputs[0].as<T>();
    parallelRange(rows, rows * len * 2, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const T *x = in + r * len;
        T *y = out + r * len;
        double sq = 0;
        if constexpr (std::is_same_v<T, float>) {
          sq = vecSquaredDeviationSum(x, len, 0.0);
        } else {
          for (int64_t j = 0; j < len; ++j) {
            const double v = N::load(x[j]);
            sq += v * v;
          }
        }
        const float inv = static_cast<float>(1.0 / std::sqrt(sq / len + eps));
        for (int64_t j = 0; j < len; ++j)
          y[j] = N::store(N::load(x[j]) * inv * scale[j]);
      }
    });
    return Status::ok();
  });
}

//===----------------------------------------------------------------------===//
// batch_norm
//===----------------------------------------------------------------------===//

Status batchNormKernel(const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs,
                       const AttributeMap &attrs) {
  if (Status s = checkArity("batch_norm", inputs, outputs, 5, 5, 1); !s)
    return s;
  if (Status s = checkUnaryShape("batch_norm", inputs, outputs); !s)
    return s;
  int64_t channels = 0, spatial = 0;
  if (Status s = batchNormGeometry(inputs, channels, spatial); !s)
    return s;
  const int64_t planes = inputs[0].shape[0] * channels;
  std::vector<float> p[4];
  for (int i = 0; i < 4; ++i) {
    if (Status s = loadFloats("batch_norm", inputs[1 + i], p[i]); !s)
      return s;
  }
  const double eps = attrs.getFloat("epsilon", 1e-5);
  std::vector<float> mul(static_cast<size_t>(channels)),
      add(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    const double a = double(p[0][c]) / std::sqrt(double(p[3][c]) + eps);
    mul[c] = static_cast<float>(a);
    add[c] = static_cast<float>(double(p[1][c]) - double(p[2][c]) * a);
  }
  return dispatchFloat("batch_norm", inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using N = Num<T>;
    const T *in = inputs[0].as<T>();
    T *out = outputs[0].as<T>();
    parallelRange(planes, planes * spatial, [&](int64_t b, int64_t e) {
      for (int64_t pl = b; pl < e; ++pl) {
        const float a = mul[pl % channels], c = add[pl % channels];
        const T *x = in + pl * spatial;
        T *y = out + pl * spatial;
        for (int64_t j = 0; j < spatial; ++j)
          y[j] = N::store(N::load(x[j]) * a + c);
      }
    });
    return Status::ok();
  });
}

} // namespace

void appendNormalizationKernels(std::vector<KernelEntry> &table) {
  table.push_back({"softmax", &softmaxKernel<false>});
  table.push_back({"log_softmax", &softmaxKernel<true>});
  table.push_back({"layer_norm", &layerNormKernel});
  table.push_back({"rms_norm", &rmsNormKernel});
  table.push_back({"batch_norm", &batchNormKernel});
}

} // namespace colossal::rt::cpu
