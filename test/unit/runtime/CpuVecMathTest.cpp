//===- CpuVecMathTest.cpp - Accuracy of the vectorized transcendentals ----===//
//
// Dense sweeps against libm in double, plus the special values (infinities,
// NaN, underflow, tiny inputs) the polynomials must get exactly right.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/VecMath.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace colossal::rt::cpu {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> sweep(float lo, float hi, int count) {
  std::vector<float> x(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i)
    x[i] = lo + (hi - lo) * float(i) / float(count - 1);
  return x;
}

/// Largest error of f against ref over x, measured as |got - want| /
/// (absFloor + |want|).
double maxError(VecFn f, double (*ref)(double), const std::vector<float> &x,
                double absFloor) {
  std::vector<float> y(x.size());
  f(x.data(), y.data(), static_cast<int64_t>(x.size()));
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = ref(x[i]);
    worst =
        std::max(worst, std::abs(y[i] - want) / (absFloor + std::abs(want)));
  }
  return worst;
}

TEST(CpuVecMath, ExpIsAccurateToAFewUlp) {
  EXPECT_LT(maxError(
                &vecExp, [](double v) { return std::exp(v); },
                sweep(-87.0f, 88.7f, 200001), 0),
            4e-7);
  std::vector<float> x = {-kInf, kInf, NAN, -200.0f, 0.0f, 89.0f, -100.0f};
  std::vector<float> y(x.size());
  vecExp(x.data(), y.data(), static_cast<int64_t>(x.size()));
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], kInf);
  EXPECT_TRUE(std::isnan(y[2]));
  EXPECT_EQ(y[3], 0.0f);
  EXPECT_EQ(y[4], 1.0f);
  EXPECT_EQ(y[5], kInf);
  EXPECT_NEAR(y[6], std::exp(-100.0), 1e-45); // subnormal, not flushed
}

TEST(CpuVecMath, TanhAndErf) {
  auto tanhRef = [](double v) { return std::tanh(v); };
  auto erfRef = [](double v) { return std::erf(v); };
  // Relative near zero, absolute (1e-6 floor) elsewhere.
  EXPECT_LT(maxError(&vecTanh, tanhRef, sweep(-12.0f, 12.0f, 200001), 1e-6),
            1e-6);
  EXPECT_LT(maxError(&vecTanh, tanhRef, sweep(-1e-3f, 1e-3f, 20001), 0), 1e-6);
  EXPECT_LT(maxError(&vecErf, erfRef, sweep(-6.0f, 6.0f, 200001), 1e-6), 1e-6);
  EXPECT_LT(maxError(&vecErf, erfRef, sweep(-1e-3f, 1e-3f, 20001), 0), 1e-6);
  std::vector<float> x = {-kInf, kInf, NAN, -0.0f};
  std::vector<float> t(4), e(4);
  vecTanh(x.data(), t.data(), 4);
  vecErf(x.data(), e.data(), 4);
  EXPECT_EQ(t[0], -1.0f);
  EXPECT_EQ(t[1], 1.0f);
  EXPECT_TRUE(std::isnan(t[2]));
  EXPECT_TRUE(std::signbit(t[3]));
  EXPECT_EQ(e[0], -1.0f);
  EXPECT_EQ(e[1], 1.0f);
  EXPECT_TRUE(std::isnan(e[2]));
}

TEST(CpuVecMath, Activations) {
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  auto silu = [](double v) { return v / (1 + std::exp(-v)); };
  auto geluErf = [](double v) {
    return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
  };
  auto geluTanh = [](double v) {
    return 0.5 * v *
           (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
  };
  const std::vector<float> x = sweep(-30.0f, 30.0f, 120001);
  // onnxruntime's fp32 tolerance, 1e-5 absolute + 1e-4 relative, is a
  // bound of 1e-4 with a floor of 0.1; ask for five times better.
  EXPECT_LT(maxError(&vecSigmoid, sig, x, 0.1), 2e-5);
  EXPECT_LT(maxError(&vecSilu, silu, x, 0.1), 2e-5);
  EXPECT_LT(maxError(&vecGeluErf, geluErf, x, 0.1), 2e-5);
  EXPECT_LT(maxError(&vecGeluTanh, geluTanh, x, 0.1), 2e-5);
}

TEST(CpuVecMath, ExpShiftSumAndMax) {
  std::vector<float> x = sweep(-10.0f, 3.0f, 1001);
  std::vector<float> y(x.size());
  EXPECT_EQ(vecMax(x.data(), 1001), 3.0f);
  EXPECT_EQ(vecMax(x.data(), 0), -kInf);
  const double sum = vecExpShiftSum(x.data(), y.data(), 1001, 3.0f);
  double want = 0;
  for (float v : x)
    want += std::exp(double(v) - 3.0);
  EXPECT_NEAR(sum, want, want * 1e-6);
  EXPECT_NEAR(y[1000], 1.0f, 1e-7);
}

} // namespace
} // namespace colossal::rt::cpu
