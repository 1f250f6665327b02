//===- VecMath.h - Vectorized float32 transcendentals -----------*- C++ -*-===//
//
// exp, tanh, erf and the activations built on them over float arrays, as
// branch-free polynomials the compiler vectorizes (cloned for AVX2 and
// AVX-512 where the compiler supports function multiversioning), and the
// norms' row statistics (double sums in eight independent lanes). libm's
// scalar calls are ten times slower and dominate GELU and softmax.
// Accuracy: a few ulp (exp), 2.4e-7 absolute (tanh, erf).
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_BACKENDS_CPU_VECMATH_H
#define COLOSSAL_RUNTIME_BACKENDS_CPU_VECMATH_H

#include <cstdint>

namespace colossal::rt::cpu {

/// y[i] = f(x[i]) for i < n; y may equal x.
using VecFn = void (*)(const float *x, float *y, int64_t n);

void vecExp(const float *x, float *y, int64_t n);
void vecTanh(const float *x, float *y, int64_t n);
void vecErf(const float *x, float *y, int64_t n);
void vecSigmoid(const float *x, float *y, int64_t n);
void vecSilu(const float *x, float *y, int64_t n);
/// x * 0.5 * (1 + erf(x / sqrt(2))).
void vecGeluErf(const float *x, float *y, int64_t n);
/// 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))).
void vecGeluTanh(const float *x, float *y, int64_t n);

/// The largest of x[0..n) (-inf for n = 0).
float vecMax(const float *x, int64_t n);

/// y[i] = exp(x[i] - shift); returns the sum of the y, accumulated in
/// float per block of 256 and in double across blocks.
double vecExpShiftSum(const float *x, float *y, int64_t n, float shift);

/// y[i] *= s.
void vecScale(float *y, int64_t n, float s);

/// The sum of x[0..n), and of (x[i] - mean)^2, accumulated in double in
/// eight independent lanes (so the loop vectorizes; the lanes are added
/// at the end).
double vecSumDouble(const float *x, int64_t n);
double vecSquaredDeviationSum(const float *x, int64_t n, double mean);

/// y[i] = float((x[i] - shift) * scale) * gain[i] (+ bias[i] when bias is
/// not null): a normalized row, centred in double.
void vecNormalizeRow(const float *x, float *y, int64_t n, double shift,
                     double scale, const float *gain, const float *bias);

} // namespace colossal::rt::cpu

#endif // COLOSSAL_RUNTIME_BACKENDS_CPU_VECMATH_H
