//===- Conv.cu - conv2d, its gradients and the pools, direct
//---------------===//
//
// Direct kernels, one thread per output element (a block per weight
// element for the weight gradient, whose sums run over the whole batch):
// deterministic, with no atomics and no im2col buffer, so they need no
// memory beyond the plan's. They compute what the CPU kernels compute, in
// fp32 for every float dtype. cuDNN's implicit-GEMM convolutions are the
// faster path still to come.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/OpGeometry.h"
#include "runtime/backends/cuda/DeviceUtil.cuh"

namespace colossal::rt::cuda {
namespace {

using cpu::Window;

/// The geometry of one convolution, by value to the kernels.
struct Conv {
  int64_t n, c, h, w, o, cg, og, groups, oh, ow;
  int64_t kh, kw, sh, sw, dh, dw, padTop, padLeft;
};

/// The kernels' form of cpu::convGeometry's checked shapes.
Status readConv(std::string_view op, const TensorRef &x, const TensorRef &wt,
                const TensorRef &y, const AttributeMap &attrs, Conv &out) {
  cpu::ConvGeometry g;
  if (Status s = cpu::convGeometry(op, x, wt, y, attrs, g); !s)
    return s;
  const Window &win = g.win;
  out = Conv{
      g.n,      g.c,    g.h,        g.w,        g.o,    g.cg,   g.o / g.groups,
      g.groups, g.oh,   g.ow,       win.kh,     win.kw, win.sh, win.sw,
      win.dh,   win.dw, win.padTop, win.padLeft};
  return Status::ok();
}

Status checkFloats(std::string_view op, const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &outputs) {
  for (const TensorRef &t : inputs)
    if (t.dtype != outputs[0].dtype || !isFloat(t.dtype))
      return Status::error(std::string(op) +
                           ": operands and result must share one float "
                           "dtype, got " +
                           dtypeName(t.dtype) + " and " +
                           dtypeName(outputs[0].dtype));
  return Status::ok();
}

template <class T>
__global__ void conv2dKernel(Conv k, const T *x, const T *wt, const T *bias,
                             T *y, int64_t total) {
  using N = Num<T>;
  COLOSSAL_GRID_STRIDE(e, total) {
    const int64_t ox = e % k.ow, oy = (e / k.ow) % k.oh,
                  oc = (e / (k.ow * k.oh)) % k.o, img = e / (k.ow * k.oh * k.o);
    const int64_t g = oc / k.og;
    float acc = bias ? N::load(bias[oc]) : 0.0f;
    for (int64_t ci = 0; ci < k.cg; ++ci) {
      const T *xc = x + ((img * k.c) + g * k.cg + ci) * k.h * k.w;
      const T *wc = wt + (oc * k.cg + ci) * k.kh * k.kw;
      for (int64_t a = 0; a < k.kh; ++a) {
        const int64_t iy = oy * k.sh - k.padTop + a * k.dh;
        if (iy < 0 || iy >= k.h)
          continue;
        for (int64_t b = 0; b < k.kw; ++b) {
          const int64_t ix = ox * k.sw - k.padLeft + b * k.dw;
          if (ix >= 0 && ix < k.w)
            acc += N::load(xc[iy * k.w + ix]) * N::load(wc[a * k.kw + b]);
        }
      }
    }
    y[e] = N::store(acc);
  }
}

template <class T>
__global__ void conv2dBackwardInputKernel(Conv k, const T *dy, const T *wt,
                                          T *dx, int64_t total) {
  using N = Num<T>;
  COLOSSAL_GRID_STRIDE(e, total) {
    const int64_t ix = e % k.w, iy = (e / k.w) % k.h,
                  c = (e / (k.w * k.h)) % k.c, img = e / (k.w * k.h * k.c);
    const int64_t g = c / k.cg, ci = c % k.cg;
    float acc = 0.0f;
    for (int64_t a = 0; a < k.kh; ++a) {
      const int64_t ty = iy + k.padTop - a * k.dh;
      if (ty < 0 || ty % k.sh != 0 || ty / k.sh >= k.oh)
        continue;
      const int64_t oy = ty / k.sh;
      for (int64_t b = 0; b < k.kw; ++b) {
        const int64_t tx = ix + k.padLeft - b * k.dw;
        if (tx < 0 || tx % k.sw != 0 || tx / k.sw >= k.ow)
          continue;
        const int64_t ox = tx / k.sw;
        for (int64_t j = 0; j < k.og; ++j) {
          const int64_t oc = g * k.og + j;
          acc += N::load(dy[((img * k.o + oc) * k.oh + oy) * k.ow + ox]) *
                 N::load(wt[((oc * k.cg + ci) * k.kh + a) * k.kw + b]);
        }
      }
    }
    dx[e] = N::store(acc);
  }
}

/// Block per weight element: the sum over images and output positions.
template <class T>
__global__ void conv2dBackwardWeightKernel(Conv k, const T *x, const T *dy,
                                           T *dw, int64_t total) {
  using N = Num<T>;
  __shared__ float shared[32];
  const int64_t terms = k.n * k.oh * k.ow;
  for (int64_t e = blockIdx.x; e < total; e += gridDim.x) {
    const int64_t b = e % k.kw, a = (e / k.kw) % k.kh,
                  ci = (e / (k.kw * k.kh)) % k.cg,
                  oc = e / (k.kw * k.kh * k.cg);
    const int64_t c = (oc / k.og) * k.cg + ci;
    float acc = 0.0f;
    for (int64_t t = threadIdx.x; t < terms; t += blockDim.x) {
      const int64_t ox = t % k.ow, oy = (t / k.ow) % k.oh,
                    img = t / (k.ow * k.oh);
      const int64_t iy = oy * k.sh - k.padTop + a * k.dh;
      const int64_t ix = ox * k.sw - k.padLeft + b * k.dw;
      if (iy >= 0 && iy < k.h && ix >= 0 && ix < k.w)
        acc += N::load(dy[((img * k.o + oc) * k.oh + oy) * k.ow + ox]) *
               N::load(x[((img * k.c + c) * k.h + iy) * k.w + ix]);
    }
    acc = blockReduce<false>(acc, shared);
    if (threadIdx.x == 0)
      dw[e] = N::store(acc);
  }
}

Status conv2dOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
                const std::vector<TensorRef> &outputs,
                const AttributeMap &attrs) {
  constexpr const char *op = "conv2d";
  if (Status s = checkArity(op, inputs, outputs, 2, 3, 1); !s)
    return s;
  if (Status s = checkFloats(op, inputs, outputs); !s)
    return s;
  Conv k;
  if (Status s = readConv(op, inputs[0], inputs[1], outputs[0], attrs, k); !s)
    return s;
  const TensorRef *bias = inputs.size() == 3 ? &inputs[2] : nullptr;
  if (bias && bias->numel() != k.o)
    return Status::error("conv2d: bias of shape " + shapeString(bias->shape) +
                         " does not match " + std::to_string(k.o) +
                         " channels");
  const int64_t total = outputs[0].numel();
  if (total == 0)
    return Status::ok();
  return dispatchFloat(op, outputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    conv2dKernel<<<gridFor(ctx, total), kThreads, 0, ctx.stream>>>(
        k, inputs[0].as<T>(), inputs[1].as<T>(), bias ? bias->as<T>() : nullptr,
        outputs[0].as<T>(), total);
    return launched(op);
  });
}

Status conv2dBackwardInputOp(const KernelContext &ctx,
                             const std::vector<TensorRef> &inputs,
                             const std::vector<TensorRef> &outputs,
                             const AttributeMap &attrs) {
  constexpr const char *op = "conv2d_backward_input";
  if (Status s = checkArity(op, inputs, outputs, 2, 2, 1); !s)
    return s;
  if (Status s = checkFloats(op, inputs, outputs); !s)
    return s;
  const TensorRef &dy = inputs[0], &wt = inputs[1], &dx = outputs[0];
  Conv k;
  if (Status s = readConv(op, dx, wt, dy, attrs, k); !s)
    return s;
  const int64_t total = dx.numel();
  if (total == 0)
    return Status::ok();
  return dispatchFloat(op, dx.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    conv2dBackwardInputKernel<<<gridFor(ctx, total), kThreads, 0, ctx.stream>>>(
        k, dy.as<T>(), wt.as<T>(), dx.as<T>(), total);
    return launched(op);
  });
}

Status conv2dBackwardWeightOp(const KernelContext &ctx,
                              const std::vector<TensorRef> &inputs,
                              const std::vector<TensorRef> &outputs,
                              const AttributeMap &attrs) {
  constexpr const char *op = "conv2d_backward_weight";
  if (Status s = checkArity(op, inputs, outputs, 2, 2, 1); !s)
    return s;
  if (Status s = checkFloats(op, inputs, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &dy = inputs[1], &dw = outputs[0];
  Conv k;
  if (Status s = readConv(op, x, dw, dy, attrs, k); !s)
    return s;
  const int64_t total = dw.numel();
  if (total == 0)
    return Status::ok();
  const int64_t cap = int64_t(ctx.multiprocessors) * 16;
  return dispatchFloat(op, dw.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    conv2dBackwardWeightKernel<<<static_cast<unsigned>(std::min(total, cap)),
                                 kThreads, 0, ctx.stream>>>(
        k, x.as<T>(), dy.as<T>(), dw.as<T>(), total);
    return launched(op);
  });
}

//===----------------------------------------------------------------------===//
// Pools
//===----------------------------------------------------------------------===//

struct Pool {
  int64_t h, w, oh, ow, kh, kw, sh, sw, padTop, padLeft, padBottom, padRight;
  bool includePad;
};

template <class T, bool IsMax>
__global__ void poolKernel(Pool p, const T *x, T *y, int64_t total) {
  using N = Num<T>;
  COLOSSAL_GRID_STRIDE(e, total) {
    const int64_t j = e % p.ow, i = (e / p.ow) % p.oh,
                  plane = e / (p.ow * p.oh);
    const T *xp = x + plane * p.h * p.w;
    const int64_t h0 = i * p.sh - p.padTop, w0 = j * p.sw - p.padLeft;
    const int64_t hs = h0 > 0 ? h0 : 0, he = min(h0 + p.kh, p.h);
    const int64_t ws = w0 > 0 ? w0 : 0, we = min(w0 + p.kw, p.w);
    float acc = IsMax ? -INFINITY : 0.0f;
    for (int64_t a = hs; a < he; ++a)
      for (int64_t b = ws; b < we; ++b) {
        const float v = N::load(xp[a * p.w + b]);
        if constexpr (IsMax)
          acc = (v > acc || v != v) ? v : acc; // NaN wins
        else
          acc += v;
      }
    if constexpr (!IsMax) {
      const int64_t rows =
          p.includePad ? min(h0 + p.kh, p.h + p.padBottom) - h0 : he - hs;
      const int64_t cols =
          p.includePad ? min(w0 + p.kw, p.w + p.padRight) - w0 : we - ws;
      acc = rows > 0 && cols > 0 ? acc / static_cast<float>(rows * cols) : 0.0f;
    }
    y[e] = N::store(acc);
  }
}

/// Each input element adds the gradient of every window whose maximum it
/// is (the first, in row-major order, as on the CPU).
template <class T>
__global__ void maxPoolBackwardKernel(Pool p, const T *x, const T *dy, T *dx,
                                      int64_t total) {
  using N = Num<T>;
  COLOSSAL_GRID_STRIDE(e, total) {
    const int64_t b0 = e % p.w, a0 = (e / p.w) % p.h, plane = e / (p.w * p.h);
    const T *xp = x + plane * p.h * p.w;
    const int64_t self = a0 * p.w + b0;
    float acc = 0.0f;
    // Windows i with i*sh - padTop <= a0 < i*sh - padTop + kh.
    for (int64_t i = 0; i < p.oh; ++i) {
      const int64_t h0 = i * p.sh - p.padTop;
      if (a0 < h0 || a0 >= h0 + p.kh)
        continue;
      for (int64_t j = 0; j < p.ow; ++j) {
        const int64_t w0 = j * p.sw - p.padLeft;
        if (b0 < w0 || b0 >= w0 + p.kw)
          continue;
        int64_t best = -1;
        float bestValue = 0.0f;
        for (int64_t a = max(h0, int64_t(0)); a < min(h0 + p.kh, p.h); ++a)
          for (int64_t b = max(w0, int64_t(0)); b < min(w0 + p.kw, p.w); ++b) {
            const float v = N::load(xp[a * p.w + b]);
            if (best < 0 || v > bestValue ||
                (v != v && bestValue == bestValue)) {
              best = a * p.w + b;
              bestValue = v;
            }
          }
        if (best == self)
          acc += N::load(dy[(plane * p.oh + i) * p.ow + j]);
      }
    }
    dx[e] = N::store(acc);
  }
}

Pool poolOf(const TensorRef &x, const TensorRef &y, const Window &win,
            const AttributeMap &attrs) {
  return Pool{x.shape[2],
              x.shape[3],
              y.shape[2],
              y.shape[3],
              win.kh,
              win.kw,
              win.sh,
              win.sw,
              win.padTop,
              win.padLeft,
              win.padBottom,
              win.padRight,
              attrs.getInt("count_include_pad", 0) != 0};
}

template <bool IsMax>
Status poolOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
              const std::vector<TensorRef> &outputs,
              const AttributeMap &attrs) {
  constexpr const char *op = IsMax ? "max_pool2d" : "avg_pool2d";
  if (Status s = checkArity(op, inputs, outputs, 1, 1, 1); !s)
    return s;
  if (Status s = checkFloats(op, inputs, outputs); !s)
    return s;
  Window win;
  if (Status s = cpu::poolGeometry(op, inputs[0], outputs[0], attrs, win); !s)
    return s;
  const Pool p = poolOf(inputs[0], outputs[0], win, attrs);
  const int64_t total = outputs[0].numel();
  if (total == 0)
    return Status::ok();
  return dispatchFloat(op, outputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    poolKernel<T, IsMax><<<gridFor(ctx, total), kThreads, 0, ctx.stream>>>(
        p, inputs[0].as<T>(), outputs[0].as<T>(), total);
    return launched(op);
  });
}

Status maxPoolBackwardOp(const KernelContext &ctx,
                         const std::vector<TensorRef> &inputs,
                         const std::vector<TensorRef> &outputs,
                         const AttributeMap &attrs) {
  constexpr const char *op = "max_pool2d_backward";
  if (Status s = checkArity(op, inputs, outputs, 2, 2, 1); !s)
    return s;
  if (Status s = checkFloats(op, inputs, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &dy = inputs[1], &dx = outputs[0];
  Window win;
  if (Status s = cpu::maxPoolBackwardGeometry(op, x, dy, dx, attrs, win); !s)
    return s;
  const Pool p = poolOf(x, dy, win, attrs);
  const int64_t total = dx.numel();
  if (total == 0)
    return Status::ok();
  return dispatchFloat(op, dx.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    maxPoolBackwardKernel<<<gridFor(ctx, total), kThreads, 0, ctx.stream>>>(
        p, x.as<T>(), dy.as<T>(), dx.as<T>(), total);
    return launched(op);
  });
}

} // namespace

void appendConvKernels(std::vector<KernelEntry> &table) {
  table.push_back({"conv2d", &conv2dOp});
  table.push_back({"conv2d_backward_input", &conv2dBackwardInputOp});
  table.push_back({"conv2d_backward_weight", &conv2dBackwardWeightOp});
  table.push_back({"max_pool2d", &poolOp<true>});
  table.push_back({"avg_pool2d", &poolOp<false>});
  table.push_back({"max_pool2d_backward", &maxPoolBackwardOp});
}

} // namespace colossal::rt::cuda
