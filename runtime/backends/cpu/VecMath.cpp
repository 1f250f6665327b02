//===- VecMath.cpp - Vectorized float32 transcendentals -------------------===//
//
// Every loop body is plain arithmetic and selects, no calls, so GCC
// vectorizes it; each entry point is cloned for x86-64-v3 (AVX2+FMA) and
// x86-64-v4 (AVX-512) and picked at load time. The polynomials: Cephes'
// expf (range reduction by ln 2 split in two, degree-6 polynomial) and the
// rational tanh/erf approximations Eigen and MLAS use.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/VecMath.h"
#include "runtime/core/Float16.h"

#include <algorithm>
#include <cstring>
#include <limits>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) &&         \
    defined(__linux__)
#define COLOSSAL_VEC_CLONES                                                    \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define COLOSSAL_VEC_CLONES
#endif

namespace colossal::rt::cpu {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

inline float expOne(float x0) {
  // Beyond 88.72 exp overflows; below -104 it rounds to 0 (the clamp makes
  // 2^n tiny enough for that).
  const float x = std::min(std::max(x0, -104.0f), 88.7228f);
  // n = round(x / ln 2) by the 1.5 * 2^23 trick; its low bits hold n.
  const float t = x * 1.44269504088896341f + 12582912.0f;
  const float n = t - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n in two halves, so n down to -150 (subnormal results) and up to 128
  // never leave the exponent range.
  const int32_t ni = static_cast<int32_t>(floatToBits(t) - 0x4B400000u);
  const int32_t n1 = ni / 2, n2 = ni - n1;
  const float s1 = bitsToFloat(static_cast<uint32_t>(n1 + 127) << 23);
  const float s2 = bitsToFloat(static_cast<uint32_t>(n2 + 127) << 23);
  const float y = p * s1 * s2;
  return x0 > 88.7228f ? kInf : (x0 != x0 ? x0 : y);
}

inline float tanhOne(float x0) {
  // Beyond +-7.9 tanh is +-1 in float.
  const float x =
      std::min(std::max(x0, -7.90531110763549805f), 7.90531110763549805f);
  const float x2 = x * x;
  float p = -2.76076847742355e-16f;
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  p = p * x;
  float q = 1.19825839466702e-06f;
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  const float y = p / q;
  // Keeps tiny inputs exact (and -0 negative), NaN NaN.
  return std::abs(x0) < 0.0004f ? x0 : (x0 != x0 ? x0 : y);
}

inline float erfOne(float x0) {
  // Beyond +-4 erf is +-1 in float.
  const float x = std::min(std::max(x0, -4.0f), 4.0f);
  const float x2 = x * x;
  float p = -2.72614225801306e-10f;
  p = p * x2 + 2.77068142495902e-08f;
  p = p * x2 + -2.10102402082508e-06f;
  p = p * x2 + -5.69250639462346e-05f;
  p = p * x2 + -7.34990630326855e-04f;
  p = p * x2 + -2.95459980854025e-03f;
  p = p * x2 + -1.60960333262415e-02f;
  p = p * x;
  float q = -1.45660718464996e-05f;
  q = q * x2 + -2.13374055278905e-04f;
  q = q * x2 + -1.68282697438203e-03f;
  q = q * x2 + -7.37332916720468e-03f;
  q = q * x2 + -1.42647390514189e-02f;
  const float y = std::min(std::max(p / q, -1.0f), 1.0f);
  return x0 != x0 ? x0 : y;
}

inline float sigmoidOne(float x) { return 1.0f / (1.0f + expOne(-x)); }

} // namespace

COLOSSAL_VEC_CLONES
void vecExp(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = expOne(x[i]);
}

COLOSSAL_VEC_CLONES
void vecTanh(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = tanhOne(x[i]);
}

COLOSSAL_VEC_CLONES
void vecErf(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = erfOne(x[i]);
}

COLOSSAL_VEC_CLONES
void vecSigmoid(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = sigmoidOne(x[i]);
}

COLOSSAL_VEC_CLONES
void vecSilu(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = x[i] * sigmoidOne(x[i]);
}

COLOSSAL_VEC_CLONES
void vecGeluErf(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + erfOne(v * 0.70710678118654752f));
  }
}

COLOSSAL_VEC_CLONES
void vecGeluTanh(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float u = 0.79788456080286536f * (v + 0.044715f * v * v * v);
    y[i] = 0.5f * v * (1.0f + tanhOne(u));
  }
}

COLOSSAL_VEC_CLONES
float vecMax(const float *x, int64_t n) {
  // GCC will not vectorize a float max reduction without -ffast-math (it
  // would reorder NaNs and signed zeros), so spell out the vector: eight
  // lanes through GCC's vector extension, NaN winning as in numpy.
  typedef float V8 __attribute__((vector_size(32)));
  V8 m = {-kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    V8 v;
    std::memcpy(&v, x + i, sizeof(v));
    m = ((v > m) | (v != v)) ? v : m;
  }
  float r = -kInf;
  for (int l = 0; l < 8; ++l)
    r = (m[l] > r || m[l] != m[l]) ? m[l] : r;
  for (; i < n; ++i)
    r = (x[i] > r || x[i] != x[i]) ? x[i] : r;
  return r;
}

COLOSSAL_VEC_CLONES
double vecExpShiftSum(const float *x, float *y, int64_t n, float shift) {
  double total = 0;
  for (int64_t b = 0; b < n; b += 256) {
    const int64_t e = std::min<int64_t>(n, b + 256);
    for (int64_t i = b; i < e; ++i)
      y[i] = expOne(x[i] - shift);
    float lanes[16] = {};
    int64_t i = b;
    for (; i + 16 <= e; i += 16)
      for (int l = 0; l < 16; ++l)
        lanes[l] += y[i + l];
    double block = 0;
    for (; i < e; ++i)
      block += y[i];
    for (int l = 0; l < 16; ++l)
      block += lanes[l];
    total += block;
  }
  return total;
}

COLOSSAL_VEC_CLONES
void vecScale(float *y, int64_t n, float s) {
  for (int64_t i = 0; i < n; ++i)
    y[i] *= s;
}

namespace {
constexpr int kLanes = 8;
} // namespace

COLOSSAL_VEC_CLONES
double vecSumDouble(const float *x, int64_t n) {
  double lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k)
      lane[k] += x[i + k];
  double sum = 0;
  for (int k = 0; k < kLanes; ++k)
    sum += lane[k];
  for (; i < n; ++i)
    sum += x[i];
  return sum;
}

COLOSSAL_VEC_CLONES
double vecSquaredDeviationSum(const float *x, int64_t n, double mean) {
  double lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) {
      const double d = x[i + k] - mean;
      lane[k] += d * d;
    }
  double sum = 0;
  for (int k = 0; k < kLanes; ++k)
    sum += lane[k];
  for (; i < n; ++i) {
    const double d = x[i] - mean;
    sum += d * d;
  }
  return sum;
}

COLOSSAL_VEC_CLONES
void vecNormalizeRow(const float *x, float *y, int64_t n, double shift,
                     double scale, const float *gain, const float *bias) {
  if (bias) {
    for (int64_t i = 0; i < n; ++i)
      y[i] = static_cast<float>((x[i] - shift) * scale) * gain[i] + bias[i];
  } else {
    for (int64_t i = 0; i < n; ++i)
      y[i] = static_cast<float>((x[i] - shift) * scale) * gain[i];
  }
}

} // namespace colossal::rt::cpu
