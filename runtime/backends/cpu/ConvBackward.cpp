//===- ConvBackward.cpp - Gradients of conv2d and max_pool2d --------------===//
//
// conv2d_backward_input is the transposed product W^T @ dY per (image,
// group) followed by col2im (the adjoint of im2col); conv2d_backward_weight
// accumulates dY @ im2col(X)^T over the images. Both thread like the forward
// conv2d. max_pool2d_backward sends each output gradient to the first
// maximum of its window, planes spread over the threads. f16/bf16 go
// through f32.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/ConvWindow.h"
#include "runtime/backends/cpu/OpGeometry.h"

namespace colossal::rt::cpu {
namespace {

Status checkF32(std::string_view op, const std::vector<TensorRef> &inputs,
                const std::vector<TensorRef> &outputs) {
  for (const TensorRef &t : inputs)
    if (t.dtype != DType::F32)
      return unsupported(op, t.dtype);
  return checkDType(op, "result", outputs[0], DType::F32);
}

/// Adds col [(c * kh + i) * kw + j][oh * ow] back into the image (c x h x w)
/// it was unfolded from: the adjoint of im2col.
void col2im(const float *col, int64_t channels, int64_t h, int64_t w,
            const Window &win, int64_t oh, int64_t ow, float *x) {
  for (int64_t r = 0; r < channels * win.kh * win.kw; ++r) {
    const int64_t kj = r % win.kw, ki = (r / win.kw) % win.kh,
                  c = r / (win.kw * win.kh);
    float *xc = x + c * h * w;
    const float *src = col + r * oh * ow;
    const int64_t colOff = kj * win.dw - win.padLeft;
    const int64_t lo =
        std::min(ow, std::max<int64_t>(0, ceilDiv(-colOff, win.sw)));
    const int64_t hi = std::max(lo, std::min(ow, ceilDiv(w - colOff, win.sw)));
    for (int64_t y = 0; y < oh; ++y) {
      const int64_t iy = y * win.sh - win.padTop + ki * win.dh;
      if (iy < 0 || iy >= h)
        continue;
      float *dst = xc + iy * w;
      const float *s = src + y * ow;
      for (int64_t xo = lo; xo < hi; ++xo)
        dst[xo * win.sw + colOff] += s[xo];
    }
  }
}

Status conv2dBackwardInputKernel(const std::vector<TensorRef> &inputs,
                                 const std::vector<TensorRef> &outputs,
                                 const AttributeMap &attrs) {
  constexpr const char *op = "conv2d_backward_input";
  if (Status s = checkArity(op, inputs, outputs, 2, 2, 1); !s)
    return s;
  if (has16BitFloat(inputs))
    return runViaF32(op, &conv2dBackwardInputKernel, inputs, outputs, attrs);
  if (Status s = checkF32(op, inputs, outputs); !s)
    return s;
  const TensorRef &dy = inputs[0], &wt = inputs[1], &dx = outputs[0];
  ConvGeometry d;
  if (Status s = convGeometry(op, dx, wt, dy, attrs, d); !s)
    return s;
  if (dx.numel() == 0)
    return Status::ok();
  const int64_t og = d.o / d.groups, kdim = d.cg * d.win.kh * d.win.kw,
                plane = d.oh * d.ow, units = d.n * d.groups;
  const float *pdy = dy.as<float>(), *pw = wt.as<float>();
  float *pdx = dx.as<float>();
  std::fill(pdx, pdx + dx.numel(), 0.0f);
  const int threads = maxThreads();
  const bool overUnits = threads > 1 && units >= threads;
  FloatBuffer cols;
  if (Status s = cols.allocate(op, (overUnits ? threads : 1) * kdim * plane);
      !s)
    return s;
  // One (image, group): col = W_g^T @ dY_g, then folded into dX_g.
  auto unit = [&](int64_t u, float *col) {
    const int64_t img = u / d.groups, g = u % d.groups;
    sgemm(true, false, kdim, plane, og, 1.0f, pw + g * og * kdim, kdim,
          pdy + (img * d.o + g * og) * plane, plane, 0.0f, col, plane);
    col2im(col, d.cg, d.h, d.w, d.win, d.oh, d.ow,
           pdx + (img * d.c + g * d.cg) * d.h * d.w);
  };
  if (overUnits) {
#pragma omp parallel num_threads(threads)
    {
      float *col = cols.data() + omp_get_thread_num() * kdim * plane;
#pragma omp for schedule(static)
      for (int64_t u = 0; u < units; ++u)
        unit(u, col);
    }
  } else {
    for (int64_t u = 0; u < units; ++u)
      unit(u, cols.data());
  }
  return Status::ok();
}

Status conv2dBackwardWeightKernel(const std::vector<TensorRef> &inputs,
                                  const std::vector<TensorRef> &outputs,
                                  const AttributeMap &attrs) {
  constexpr const char *op = "conv2d_backward_weight";
  if (Status s = checkArity(op, inputs, outputs, 2, 2, 1); !s)
    return s;
  if (has16BitFloat(inputs))
    return runViaF32(op, &conv2dBackwardWeightKernel, inputs, outputs, attrs);
  if (Status s = checkF32(op, inputs, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &dy = inputs[1], &dw = outputs[0];
  ConvGeometry d;
  if (Status s = convGeometry(op, x, dw, dy, attrs, d); !s)
    return s;
  if (dw.numel() == 0)
    return Status::ok();
  const int64_t og = d.o / d.groups, kdim = d.cg * d.win.kh * d.win.kw,
                plane = d.oh * d.ow;
  const float *px = x.as<float>(), *pdy = dy.as<float>();
  float *pdw = dw.as<float>();
  std::fill(pdw, pdw + dw.numel(), 0.0f);
  FloatBuffer col;
  if (Status s = col.allocate(op, kdim * plane); !s)
    return s;
  // dW_g += dY_g @ im2col(X_g)^T, image after image (the sum is over them).
  for (int64_t img = 0; img < d.n; ++img)
    for (int64_t g = 0; g < d.groups; ++g) {
      const float *xg = px + (img * d.c + g * d.cg) * d.h * d.w;
      parallelRange(kdim, kdim * plane, [&](int64_t lo, int64_t hi) {
        im2col(xg, d.h, d.w, d.win, d.oh, d.ow, col.data(), lo, hi);
      });
      sgemm(false, true, og, kdim, plane, 1.0f,
            pdy + (img * d.o + g * og) * plane, plane, col.data(), plane, 1.0f,
            pdw + g * og * kdim, kdim);
    }
  return Status::ok();
}

Status maxPoolBackwardKernel(const std::vector<TensorRef> &inputs,
                             const std::vector<TensorRef> &outputs,
                             const AttributeMap &attrs) {
  constexpr const char *op = "max_pool2d_backward";
  if (Status s = checkArity(op, inputs, outputs, 2, 2, 1); !s)
    return s;
  if (has16BitFloat(inputs))
    return runViaF32(op, &maxPoolBackwardKernel, inputs, outputs, attrs);
  if (Status s = checkF32(op, inputs, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &dy = inputs[1], &dx = outputs[0];
  Window win;
  if (Status s = maxPoolBackwardGeometry(op, x, dy, dx, attrs, win); !s)
    return s;
  const int64_t h = x.shape[2], w = x.shape[3];
  const int64_t oh = dy.shape[2], ow = dy.shape[3];
  const int64_t planes = x.shape[0] * x.shape[1];
  const float *px = x.as<float>(), *pdy = dy.as<float>();
  float *pdx = dx.as<float>();
  parallelRange(planes, planes * oh * ow * win.kh * win.kw,
                [&](int64_t lo, int64_t hi) {
                  std::fill(pdx + lo * h * w, pdx + hi * h * w, 0.0f);
                  for (int64_t p = lo; p < hi; ++p) {
                    const float *xp = px + p * h * w;
                    float *dp = pdx + p * h * w;
                    const float *gp = pdy + p * oh * ow;
                    for (int64_t i = 0; i < oh; ++i)
                      for (int64_t j = 0; j < ow; ++j) {
                        const int64_t h0 = i * win.sh - win.padTop,
                                      w0 = j * win.sw - win.padLeft;
                        int64_t best = -1;
                        for (int64_t a = std::max<int64_t>(h0, 0);
                             a < std::min(h0 + win.kh, h); ++a)
                          for (int64_t b = std::max<int64_t>(w0, 0);
                               b < std::min(w0 + win.kw, w); ++b) {
                            const float v = xp[a * w + b];
                            // Strictly greater keeps the first maximum; the
                            // first NaN wins, as in the forward kernel.
                            if (best < 0 || v > xp[best] ||
                                (v != v && xp[best] == xp[best]))
                              best = a * w + b;
                          }
                        if (best >= 0)
                          dp[best] += gp[i * ow + j];
                      }
                  }
                });
  return Status::ok();
}

} // namespace

void appendConvBackwardKernels(std::vector<KernelEntry> &table) {
  table.push_back({"conv2d_backward_input", &conv2dBackwardInputKernel});
  table.push_back({"conv2d_backward_weight", &conv2dBackwardWeightKernel});
  table.push_back({"max_pool2d_backward", &maxPoolBackwardKernel});
}

} // namespace colossal::rt::cpu
