//===- ConvWindow.h - Window geometry shared by the conv kernels -*- C++
//-*-===//
//
// The spatial parameters of conv2d and the pools, read from kernel
// attributes, and the im2col unfolding; shared by the forward kernels
// (Conv.cpp) and their gradients (ConvBackward.cpp). Internal to
// runtime/backends/cpu.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_BACKENDS_CPU_CONVWINDOW_H
#define COLOSSAL_RUNTIME_BACKENDS_CPU_CONVWINDOW_H

#include "runtime/backends/cpu/KernelUtil.h"

namespace colossal::rt::cpu {

/// ceil(a / b) for b > 0 and any a.
inline int64_t ceilDiv(int64_t a, int64_t b) {
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

/// The spatial parameters shared by conv2d and the pools.
struct Window {
  int64_t kh, kw, sh, sw, dh = 1, dw = 1;
  int64_t padTop, padLeft, padBottom, padRight;

  /// conv2d's output height and width for an h x w input.
  int64_t outH(int64_t h) const {
    return (h + padTop + padBottom - dh * (kh - 1) - 1) / sh + 1;
  }
  int64_t outW(int64_t w) const {
    return (w + padLeft + padRight - dw * (kw - 1) - 1) / sw + 1;
  }
};

/// Reads strides, padding and (for convolutions, `kernelAttr` null)
/// dilations; the kernel size comes from `kernelAttr` or from `kh`, `kw`.
Status readWindow(std::string_view op, const AttributeMap &attrs,
                  const char *kernelAttr, int64_t kh, int64_t kw, Window &w);

/// Errors unless `t` is 4-D.
Status checkNchw(std::string_view op, const char *what, const TensorRef &t);

/// Unfolds one group of one image (c x h x w) into col
/// [(c * kh + i) * kw + j][oh * ow + x], zeros where the window hangs over
/// the padding. Rows [rowBegin, rowEnd) only, so callers can split it.
void im2col(const float *x, int64_t h, int64_t w, const Window &win, int64_t oh,
            int64_t ow, float *col, int64_t rowBegin, int64_t rowEnd);

} // namespace colossal::rt::cpu

#endif // COLOSSAL_RUNTIME_BACKENDS_CPU_CONVWINDOW_H
