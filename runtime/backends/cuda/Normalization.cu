//===- Normalization.cu - softmax, log_softmax and the norms --------------===//
//
// One block per row. softmax and log_softmax subtract the row maximum and
// sum in double; layer_norm and rms_norm take their statistics in double,
// as the CPU kernels do, so long rows of large values keep fp32 accuracy.
// Scale and bias may be any float dtype and hold one element per row
// position or one in all.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/OpGeometry.h"
#include "runtime/backends/cuda/DeviceUtil.cuh"

namespace colossal::rt::cuda {
namespace {

/// Blocks for `rows` rows, one each, capped (rows loop).
unsigned rowGrid(const KernelContext &ctx, int64_t rows) {
  const int64_t cap = int64_t(ctx.multiprocessors) * 32;
  return static_cast<unsigned>(rows < 1 ? 1 : (rows < cap ? rows : cap));
}

//===----------------------------------------------------------------------===//
// softmax
//===----------------------------------------------------------------------===//

template <class T, bool Log>
__global__ void softmaxKernel(const T *in, T *out, int64_t rows, int64_t len,
                              int64_t inner) {
  using N = Num<T>;
  __shared__ float shared[32];
  __shared__ double sharedD[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t base = (r / inner) * len * inner + r % inner;
    const T *x = in + base;
    T *y = out + base;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x)
      m = fmaxf(m, N::load(x[j * inner]));
    m = blockReduce<true>(m, shared);
    double sum = 0;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x)
      sum += expf(N::load(x[j * inner]) - m);
    sum = blockSumD(sum, sharedD);
    if constexpr (Log) {
      const float logSum = static_cast<float>(log(sum));
      for (int64_t j = threadIdx.x; j < len; j += blockDim.x)
        y[j * inner] = N::store((N::load(x[j * inner]) - m) - logSum);
    } else {
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t j = threadIdx.x; j < len; j += blockDim.x)
        y[j * inner] = N::store(expf(N::load(x[j * inner]) - m) * inv);
    }
  }
}

template <bool Log>
Status softmaxOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
                 const std::vector<TensorRef> &outputs,
                 const AttributeMap &attrs) {
  const char *op = Log ? "log_softmax" : "softmax";
  int64_t outer = 1, len = 1, inner = 1;
  if (Status s =
          cpu::softmaxGeometry(op, inputs, outputs, attrs, outer, len, inner);
      !s)
    return s;
  const int64_t rows = outer * inner;
  if (rows == 0 || len == 0)
    return Status::ok();
  return dispatchFloat(op, inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    softmaxKernel<T, Log><<<rowGrid(ctx, rows), kThreads, 0, ctx.stream>>>(
        inputs[0].as<T>(), outputs[0].as<T>(), rows, len, inner);
    return launched(op);
  });
}

//===----------------------------------------------------------------------===//
// layer_norm and rms_norm
//===----------------------------------------------------------------------===//

/// A scale or bias: element j of `len`, or its one element.
template <class P> struct Param {
  const P *p = nullptr;
  bool scalar = false;
  __device__ float at(int64_t j) const {
    return Num<P>::load(p[scalar ? 0 : j]);
  }
};

template <class T, class P, bool HasBias>
__global__ void layerNormKernel(const T *in, T *out, int64_t rows, int64_t len,
                                Param<P> scale, Param<P> bias, double eps) {
  using N = Num<T>;
  __shared__ double shared[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T *x = in + r * len;
    T *y = out + r * len;
    double sum = 0;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x)
      sum += N::load(x[j]);
    const double mean = blockSumD(sum, shared) / double(len);
    double sq = 0;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
      const double d = N::load(x[j]) - mean;
      sq += d * d;
    }
    const double inv = 1.0 / sqrt(blockSumD(sq, shared) / len + eps);
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
      const float v =
          static_cast<float>((N::load(x[j]) - mean) * inv) * scale.at(j);
      y[j] = N::store(HasBias ? v + bias.at(j) : v);
    }
  }
}

template <class T, class P>
__global__ void rmsNormKernel(const T *in, T *out, int64_t rows, int64_t len,
                              Param<P> scale, double eps) {
  using N = Num<T>;
  __shared__ double shared[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T *x = in + r * len;
    T *y = out + r * len;
    double sq = 0;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
      const double v = N::load(x[j]);
      sq += v * v;
    }
    const float inv =
        static_cast<float>(1.0 / sqrt(blockSumD(sq, shared) / len + eps));
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x)
      y[j] = N::store(N::load(x[j]) * inv * scale.at(j));
  }
}

/// normGeometry, and one float dtype for every parameter.
Status prepareNorm(std::string_view op, const std::vector<TensorRef> &inputs,
                   const AttributeMap &attrs, size_t numParams, int64_t &rows,
                   int64_t &len) {
  if (Status s = cpu::normGeometry(op, inputs, attrs, numParams, rows, len); !s)
    return s;
  for (size_t i = 0; i < numParams; ++i)
    if (inputs[1 + i].dtype != inputs[1].dtype)
      return Status::error(std::string(op) +
                           ": scale and bias dtypes differ on cuda");
  return Status::ok();
}

template <class P> Param<P> paramOf(const TensorRef &t) {
  return Param<P>{t.as<P>(), t.numel() == 1};
}

Status layerNormOp(const KernelContext &ctx,
                   const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &outputs,
                   const AttributeMap &attrs) {
  if (Status s = checkArity("layer_norm", inputs, outputs, 2, 3, 1); !s)
    return s;
  if (Status s = cpu::checkUnaryShape("layer_norm", inputs, outputs); !s)
    return s;
  int64_t rows = 0, len = 0;
  if (Status s = prepareNorm("layer_norm", inputs, attrs, inputs.size() - 1,
                             rows, len);
      !s)
    return s;
  if (rows == 0)
    return Status::ok();
  const double eps = attrs.getFloat("epsilon", 1e-5);
  const bool hasBias = inputs.size() == 3;
  return dispatchFloat("layer_norm", inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return dispatchFloat("layer_norm", inputs[1].dtype, [&](auto ptag) {
      using P = typename decltype(ptag)::type;
      const Param<P> scale = paramOf<P>(inputs[1]);
      const Param<P> bias = hasBias ? paramOf<P>(inputs[2]) : Param<P>{};
      if (hasBias)
        layerNormKernel<T, P, true>
            <<<rowGrid(ctx, rows), kThreads, 0, ctx.stream>>>(
                inputs[0].as<T>(), outputs[0].as<T>(), rows, len, scale, bias,
                eps);
      else
        layerNormKernel<T, P, false>
            <<<rowGrid(ctx, rows), kThreads, 0, ctx.stream>>>(
                inputs[0].as<T>(), outputs[0].as<T>(), rows, len, scale, bias,
                eps);
      return launched("layer_norm");
    });
  });
}

Status rmsNormOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
                 const std::vector<TensorRef> &outputs,
                 const AttributeMap &attrs) {
  if (Status s = checkArity("rms_norm", inputs, outputs, 2, 2, 1); !s)
    return s;
  if (Status s = cpu::checkUnaryShape("rms_norm", inputs, outputs); !s)
    return s;
  int64_t rows = 0, len = 0;
  if (Status s = prepareNorm("rms_norm", inputs, attrs, 1, rows, len); !s)
    return s;
  if (rows == 0)
    return Status::ok();
  const double eps = attrs.getFloat("epsilon", 1e-6);
  return dispatchFloat("rms_norm", inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return dispatchFloat("rms_norm", inputs[1].dtype, [&](auto ptag) {
      using P = typename decltype(ptag)::type;
      rmsNormKernel<T, P><<<rowGrid(ctx, rows), kThreads, 0, ctx.stream>>>(
          inputs[0].as<T>(), outputs[0].as<T>(), rows, len,
          paramOf<P>(inputs[1]), eps);
      return launched("rms_norm");
    });
  });
}

//===----------------------------------------------------------------------===//
// batch_norm (running statistics)
//===----------------------------------------------------------------------===//

template <class T, class P>
__global__ void batchNormKernel(const T *in, T *out, const P *scale,
                                const P *bias, const P *mean, const P *var,
                                int64_t channels, int64_t spatial, double eps,
                                int64_t total) {
  using N = Num<T>;
  COLOSSAL_GRID_STRIDE(i, total) {
    const int64_t c = (i / spatial) % channels;
    const double a = double(Num<P>::load(scale[c])) /
                     sqrt(double(Num<P>::load(var[c])) + eps);
    const float mul = static_cast<float>(a);
    const float add = static_cast<float>(double(Num<P>::load(bias[c])) -
                                         double(Num<P>::load(mean[c])) * a);
    out[i] = N::store(N::load(in[i]) * mul + add);
  }
}

Status batchNormOp(const KernelContext &ctx,
                   const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &outputs,
                   const AttributeMap &attrs) {
  if (Status s = checkArity("batch_norm", inputs, outputs, 5, 5, 1); !s)
    return s;
  if (Status s = cpu::checkUnaryShape("batch_norm", inputs, outputs); !s)
    return s;
  int64_t channels = 0, spatial = 0;
  if (Status s = cpu::batchNormGeometry(inputs, channels, spatial); !s)
    return s;
  for (int i = 1; i < 5; ++i)
    if (inputs[i].dtype != inputs[1].dtype)
      return Status::error("batch_norm: parameter dtypes differ on cuda");
  const int64_t total = inputs[0].numel();
  if (total == 0 || channels == 0)
    return Status::ok();
  const double eps = attrs.getFloat("epsilon", 1e-5);
  return dispatchFloat("batch_norm", inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return dispatchFloat("batch_norm", inputs[1].dtype, [&](auto ptag) {
      using P = typename decltype(ptag)::type;
      batchNormKernel<T, P><<<gridFor(ctx, total), kThreads, 0, ctx.stream>>>(
          inputs[0].as<T>(), outputs[0].as<T>(), inputs[1].as<P>(),
          inputs[2].as<P>(), inputs[3].as<P>(), inputs[4].as<P>(), channels,
          spatial, eps, total);
      return launched("batch_norm");
    });
  });
}

} // namespace

void appendNormalizationKernels(std::vector<KernelEntry> &table) {
  table.push_back({"softmax", &softmaxOp<false>});
  table.push_back({"log_softmax", &softmaxOp<true>});
  table.push_back({"layer_norm", &layerNormOp});
  table.push_back({"rms_norm", &rmsNormOp});
  table.push_back({"batch_norm", &batchNormOp});
}

} // namespace colossal::rt::cuda
