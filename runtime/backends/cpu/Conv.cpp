//===- Conv.cpp - conv2d, max_pool2d and avg_pool2d -----------------------===//
//
// conv2d is im2col + one SGEMM per (image, group); a 1x1, stride-1,
// unpadded convolution skips im2col. When there are at least as many
// (image, group) pairs as threads, the pairs are spread over the threads;
// otherwise im2col and the SGEMM are threaded themselves. Pools loop over
// windows, planes spread over the threads. f16/bf16 go through f32.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/ConvWindow.h"
#include "runtime/backends/cpu/OpGeometry.h"

#include <limits>

namespace colossal::rt::cpu {

/// Reads an integer-list attribute of `count` values, `fallback` when absent.
static Status intsAttr(std::string_view op, const AttributeMap &attrs,
                       const char *name, size_t count,
                       std::vector<int64_t> fallback,
                       std::vector<int64_t> &out) {
  out = attrs.has(name) ? attrs.getInts(name) : std::move(fallback);
  if (out.size() != count)
    return Status::error(std::string(op) + ": attribute '" + name +
                         "' must have " + std::to_string(count) +
                         " values, got " + std::to_string(out.size()));
  return Status::ok();
}

Status readWindow(std::string_view op, const AttributeMap &attrs,
                  const char *kernelAttr, int64_t kh, int64_t kw, Window &w) {
  std::vector<int64_t> kernel, strides, padding, dilations;
  if (kernelAttr) {
    if (Status s = intsAttr(op, attrs, kernelAttr, 2, {}, kernel); !s)
      return s;
    kh = kernel[0];
    kw = kernel[1];
  }
  if (Status s = intsAttr(op, attrs, "strides", 2, {1, 1}, strides); !s)
    return s;
  if (Status s = intsAttr(op, attrs, "padding", 4, {0, 0, 0, 0}, padding); !s)
    return s;
  if (!kernelAttr) {
    if (Status s = intsAttr(op, attrs, "dilations", 2, {1, 1}, dilations); !s)
      return s;
    w.dh = dilations[0];
    w.dw = dilations[1];
  }
  w.kh = kh;
  w.kw = kw;
  w.sh = strides[0];
  w.sw = strides[1];
  w.padTop = padding[0];
  w.padLeft = padding[1];
  w.padBottom = padding[2];
  w.padRight = padding[3];
  if (w.kh < 1 || w.kw < 1 || w.sh < 1 || w.sw < 1 || w.dh < 1 || w.dw < 1 ||
      w.padTop < 0 || w.padLeft < 0 || w.padBottom < 0 || w.padRight < 0)
    return Status::error(std::string(op) +
                         ": kernel, strides and dilations must be positive "
                         "and padding non-negative");
  return Status::ok();
}

Status checkNchw(std::string_view op, const char *what, const TensorRef &t) {
  if (t.shape.size() == 4)
    return Status::ok();
  return Status::error(std::string(op) + ": " + what +
                       " must be 4-D NCHW, got " + shapeString(t.shape));
}

void im2col(const float *x, int64_t h, int64_t w, const Window &win, int64_t oh,
            int64_t ow, float *col, int64_t rowBegin, int64_t rowEnd) {
  const int64_t plane = oh * ow;
  for (int64_t r = rowBegin; r < rowEnd; ++r) {
    const int64_t kj = r % win.kw, ki = (r / win.kw) % win.kh,
                  c = r / (win.kw * win.kh);
    const float *xc = x + c * h * w;
    float *dst = col + r * plane;
    const int64_t colOff = kj * win.dw - win.padLeft;
    // Output columns whose input column lies inside [0, w).
    const int64_t lo =
        std::min(ow, std::max<int64_t>(0, ceilDiv(-colOff, win.sw)));
    const int64_t hi = std::max(lo, std::min(ow, ceilDiv(w - colOff, win.sw)));
    for (int64_t y = 0; y < oh; ++y) {
      float *d = dst + y * ow;
      const int64_t iy = y * win.sh - win.padTop + ki * win.dh;
      if (iy < 0 || iy >= h) {
        std::fill(d, d + ow, 0.0f);
        continue;
      }
      const float *src = xc + iy * w;
      std::fill(d, d + lo, 0.0f);
      if (win.sw == 1) {
        std::memcpy(d + lo, src + lo + colOff,
                    static_cast<size_t>(hi - lo) * sizeof(float));
      } else {
        for (int64_t xo = lo; xo < hi; ++xo)
          d[xo] = src[xo * win.sw + colOff];
      }
      std::fill(d + hi, d + ow, 0.0f);
    }
  }
}

namespace {

//===----------------------------------------------------------------------===//
// conv2d
//===----------------------------------------------------------------------===//

Status conv2dKernel(const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs,
                    const AttributeMap &attrs) {
  constexpr const char *op = "conv2d";
  if (Status s = checkArity(op, inputs, outputs, 2, 3, 1); !s)
    return s;
  if (has16BitFloat(inputs))
    return runViaF32(op, &conv2dKernel, inputs, outputs, attrs);
  for (const TensorRef &t : inputs)
    if (t.dtype != DType::F32)
      return unsupported(op, t.dtype);
  if (Status s = checkDType(op, "result", outputs[0], DType::F32); !s)
    return s;
  const TensorRef &x = inputs[0], &wt = inputs[1], &y = outputs[0];
  ConvGeometry geo;
  if (Status s = convGeometry(op, x, wt, y, attrs, geo); !s)
    return s;
  const int64_t n = geo.n, c = geo.c, h = geo.h, w = geo.w, o = geo.o,
                cg = geo.cg, groups = geo.groups, oh = geo.oh, ow = geo.ow;
  const Window &win = geo.win;
  const TensorRef *bias = inputs.size() == 3 ? &inputs[2] : nullptr;
  if (bias && bias->numel() != o)
    return Status::error("conv2d: bias of shape " + shapeString(bias->shape) +
                         " does not match " + std::to_string(o) + " channels");
  if (y.numel() == 0)
    return Status::ok();

  const int64_t og = o / groups;
  const int64_t kdim = cg * win.kh * win.kw;
  const int64_t plane = oh * ow;
  const bool direct = win.kh == 1 && win.kw == 1 && win.sh == 1 &&
                      win.sw == 1 && win.padTop == 0 && win.padLeft == 0 &&
                      win.padBottom == 0 && win.padRight == 0;
  const float *px = x.as<float>(), *pw = wt.as<float>();
  const float *pb = bias ? bias->as<float>() : nullptr;
  float *py = y.as<float>();

  const int64_t units = n * groups;
  const int threads = maxThreads();
  const bool overUnits = threads > 1 && units >= threads;
  FloatBuffer cols;
  if (!direct) {
    if (Status s = cols.allocate(op, (overUnits ? threads : 1) * kdim * plane);
        !s)
      return s;
  }
  // One (image, group): its output channels get the bias, then += W @ col.
  auto unit = [&](int64_t u, float *col, bool inner) {
    const int64_t img = u / groups, g = u % groups;
    const float *xg = px + (img * c + g * cg) * h * w;
    float *yg = py + (img * o + g * og) * plane;
    if (pb) {
      for (int64_t oc = 0; oc < og; ++oc)
        std::fill(yg + oc * plane, yg + (oc + 1) * plane, pb[g * og + oc]);
    }
    const float *b = xg;
    if (!direct) {
      if (inner)
        parallelRange(kdim, kdim * plane, [&](int64_t lo, int64_t hi) {
          im2col(xg, h, w, win, oh, ow, col, lo, hi);
        });
      else
        im2col(xg, h, w, win, oh, ow, col, 0, kdim);
      b = col;
    }
    sgemm(false, false, og, plane, kdim, 1.0f, pw + g * og * kdim, kdim, b,
          plane, pb ? 1.0f : 0.0f, yg, plane);
  };
  if (overUnits) {
#pragma omp parallel num_threads(threads)
    {
      float *col =
          direct ? nullptr : cols.data() + omp_get_thread_num() * kdim * plane;
#pragma omp for schedule(static)
      for (int64_t u = 0; u < units; ++u)
        unit(u, col, false);
    }
  } else {
    for (int64_t u = 0; u < units; ++u)
      unit(u, cols.data(), true);
  }
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Pools
//===----------------------------------------------------------------------===//

template <bool IsMax>
Status poolKernel(const std::vector<TensorRef> &inputs,
                  const std::vector<TensorRef> &outputs,
                  const AttributeMap &attrs) {
  constexpr const char *op = IsMax ? "max_pool2d" : "avg_pool2d";
  if (Status s = checkArity(op, inputs, outputs, 1, 1, 1); !s)
    return s;
  if (has16BitFloat(inputs))
    return runViaF32(op, &poolKernel<IsMax>, inputs, outputs, attrs);
  if (inputs[0].dtype != DType::F32)
    return unsupported(op, inputs[0].dtype);
  if (Status s = checkDType(op, "result", outputs[0], DType::F32); !s)
    return s;
  const TensorRef &x = inputs[0], &y = outputs[0];
  Window win;
  if (Status s = poolGeometry(op, x, y, attrs, win); !s)
    return s;
  const bool includePad = attrs.getInt("count_include_pad", 0) != 0;
  const int64_t h = x.shape[2], w = x.shape[3];
  const int64_t oh = y.shape[2], ow = y.shape[3];
  const int64_t planes = x.shape[0] * x.shape[1];
  const float *px = x.as<float>();
  float *py = y.as<float>();
  // Per output column: the window's in-bounds columns and, for averages,
  // the divisor's column factor; per kernel column b, the output columns
  // whose input column j * sw - padLeft + b is in bounds.
  std::vector<int64_t> colCount(static_cast<size_t>(ow));
  for (int64_t j = 0; j < ow; ++j) {
    const int64_t w0 = j * win.sw - win.padLeft;
    colCount[j] = includePad
                      ? std::min(w0 + win.kw, w + win.padRight) - w0
                      : std::min(w0 + win.kw, w) - std::max<int64_t>(w0, 0);
  }
  std::vector<int64_t> jLo(static_cast<size_t>(win.kw)),
      jHi(static_cast<size_t>(win.kw));
  for (int64_t b = 0; b < win.kw; ++b) {
    const int64_t off = b - win.padLeft;
    jLo[b] = std::min(ow, std::max<int64_t>(0, ceilDiv(-off, win.sw)));
    jHi[b] = std::max(jLo[b], std::min(ow, ceilDiv(w - off, win.sw)));
  }
  parallelRange(
      planes, planes * oh * ow * win.kh * win.kw, [&](int64_t lo, int64_t hi) {
        for (int64_t p = lo; p < hi; ++p) {
          const float *xp = px + p * h * w;
          for (int64_t i = 0; i < oh; ++i) {
            float *acc = py + (p * oh + i) * ow;
            std::fill(acc, acc + ow,
                      IsMax ? -std::numeric_limits<float>::infinity() : 0.0f);
            const int64_t h0 = i * win.sh - win.padTop;
            const int64_t hs = std::max<int64_t>(h0, 0);
            const int64_t he = std::min(h0 + win.kh, h);
            // Row by row, kernel column by kernel column: the inner loop over
            // output columns is branch-free and vectorizes.
            for (int64_t a = hs; a < he; ++a) {
              const float *row = xp + a * w;
              for (int64_t b = 0; b < win.kw; ++b) {
                const int64_t off = b - win.padLeft;
                for (int64_t j = jLo[b]; j < jHi[b]; ++j) {
                  const float v = row[j * win.sw + off];
                  if constexpr (IsMax)
                    acc[j] = (v > acc[j] || v != v) ? v : acc[j]; // NaN wins
                  else
                    acc[j] += v;
                }
              }
            }
            if constexpr (!IsMax) {
              // The window clipped to the padded input (ONNX) with
              // count_include_pad, else to the input.
              const int64_t rows =
                  includePad ? std::min(h0 + win.kh, h + win.padBottom) - h0
                             : he - hs;
              for (int64_t j = 0; j < ow; ++j) {
                const int64_t count = rows * colCount[j];
                acc[j] = rows > 0 && colCount[j] > 0
                             ? acc[j] / static_cast<float>(count)
                             : 0.0f;
              }
            }
          }
        }
      });
  return Status::ok();
}

} // namespace

void appendConvKernels(std::vector<KernelEntry> &table) {
  table.push_back({"conv2d", &conv2dKernel});
  table.push_back({"max_pool2d", &poolKernel<true>});
  table.push_back({"avg_pool2d", &poolKernel<false>});
}

} // namespace colossal::rt::cpu
