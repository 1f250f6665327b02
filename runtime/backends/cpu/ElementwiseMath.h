//===- ElementwiseMath.h - The arithmetic of the elementwise ops -*- C++
//-*-===//
//
// What each elementwise op computes on one element (integers wrap, NaN
// propagates through max/min), shared by the ops' own kernels
// (ElementwiseUnary.cpp, ElementwiseBinary.cpp) and by fused_elementwise
// (FusedElementwise.cpp), so a fused chain gives the same bits as its ops
// one by one.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_BACKENDS_CPU_ELEMENTWISEMATH_H
#define COLOSSAL_RUNTIME_BACKENDS_CPU_ELEMENTWISEMATH_H

#include "runtime/backends/cpu/VecMath.h"

#include <cmath>
#include <type_traits>

namespace colossal::rt::cpu {

enum class Unary {
  Neg,
  Abs,
  Relu,
  Sqrt,
  Rsqrt,
  Exp,
  Log,
  Tanh,
  Erf,
  Sin,
  Cos,
  Reciprocal,
  Sigmoid,
  Silu,
  GeluErf,
  GeluTanh,
  Floor,
  Ceil,
  Round,
};

constexpr const char *unaryName(Unary k) {
  switch (k) {
  case Unary::Neg:
    return "neg";
  case Unary::Abs:
    return "abs";
  case Unary::Relu:
    return "relu";
  case Unary::Sqrt:
    return "sqrt";
  case Unary::Rsqrt:
    return "rsqrt";
  case Unary::Exp:
    return "exp";
  case Unary::Log:
    return "log";
  case Unary::Tanh:
    return "tanh";
  case Unary::Erf:
    return "erf";
  case Unary::Sin:
    return "sin";
  case Unary::Cos:
    return "cos";
  case Unary::Reciprocal:
    return "reciprocal";
  case Unary::Sigmoid:
    return "sigmoid";
  case Unary::Silu:
    return "silu";
  case Unary::GeluErf:
  case Unary::GeluTanh:
    return "gelu";
  case Unary::Floor:
    return "floor";
  case Unary::Ceil:
    return "ceil";
  case Unary::Round:
    return "round";
  }
  return "?";
}

/// neg, abs and relu also take integers; the rest are float-only.
constexpr bool takesIntegers(Unary k) {
  return k == Unary::Neg || k == Unary::Abs || k == Unary::Relu;
}

template <Unary K, class C> inline C applyUnary(C x) {
  if constexpr (std::is_integral_v<C>) {
    using U = std::make_unsigned_t<C>;
    if constexpr (K == Unary::Neg)
      return static_cast<C>(U(0) - static_cast<U>(x));
    if constexpr (K == Unary::Abs)
      return x < 0 ? static_cast<C>(U(0) - static_cast<U>(x)) : x;
    if constexpr (K == Unary::Relu)
      return x < 0 ? 0 : x;
    return x;
  } else {
    if constexpr (K == Unary::Neg)
      return -x;
    if constexpr (K == Unary::Abs)
      return std::abs(x);
    if constexpr (K == Unary::Relu)
      return x < 0 ? 0.0f : x; // NaN stays NaN
    if constexpr (K == Unary::Sqrt)
      return std::sqrt(x);
    if constexpr (K == Unary::Rsqrt)
      return 1.0f / std::sqrt(x);
    if constexpr (K == Unary::Log)
      return std::log(x);
    if constexpr (K == Unary::Sin)
      return std::sin(x);
    if constexpr (K == Unary::Cos)
      return std::cos(x);
    if constexpr (K == Unary::Reciprocal)
      return 1.0f / x;
    if constexpr (K == Unary::Floor)
      return std::floor(x);
    if constexpr (K == Unary::Ceil)
      return std::ceil(x);
    if constexpr (K == Unary::Round)
      return std::nearbyint(x); // halves to even (the default rounding mode)
    // In float32 and 16-bit floats exp, tanh, erf and the activations go
    // through VecMath instead; float64 computes them here, with libm.
    if constexpr (K == Unary::Exp)
      return std::exp(x);
    if constexpr (K == Unary::Tanh)
      return std::tanh(x);
    if constexpr (K == Unary::Erf)
      return std::erf(x);
    if constexpr (K == Unary::Sigmoid)
      return C(1) / (C(1) + std::exp(-x));
    if constexpr (K == Unary::Silu)
      return x / (C(1) + std::exp(-x));
    if constexpr (K == Unary::GeluErf)
      return C(0.5) * x * (C(1) + std::erf(x * C(0.70710678118654752440)));
    if constexpr (K == Unary::GeluTanh)
      return C(0.5) * x *
             (C(1) + std::tanh(C(0.79788456080286535588) *
                               (x + C(0.044715) * x * x * x)));
    return x;
  }
}

/// Whether K goes through a VecMath function (over float32 values).
constexpr bool isVectorized(Unary k) {
  return k == Unary::Exp || k == Unary::Tanh || k == Unary::Erf ||
         k == Unary::Sigmoid || k == Unary::Silu || k == Unary::GeluErf ||
         k == Unary::GeluTanh;
}

/// The VecMath function of K (null when !isVectorized(K)).
inline VecFn vectorized(Unary k) {
  switch (k) {
  case Unary::Exp:
    return &vecExp;
  case Unary::Tanh:
    return &vecTanh;
  case Unary::Erf:
    return &vecErf;
  case Unary::Sigmoid:
    return &vecSigmoid;
  case Unary::Silu:
    return &vecSilu;
  case Unary::GeluErf:
    return &vecGeluErf;
  case Unary::GeluTanh:
    return &vecGeluTanh;
  default:
    return nullptr;
  }
}

enum class Arith { Add, Sub, Mul, Div, Pow, Max, Min };

constexpr const char *arithName(Arith k) {
  switch (k) {
  case Arith::Add:
    return "add";
  case Arith::Sub:
    return "sub";
  case Arith::Mul:
    return "mul";
  case Arith::Div:
    return "div";
  case Arith::Pow:
    return "pow";
  case Arith::Max:
    return "max";
  case Arith::Min:
    return "min";
  }
  return "?";
}

template <Arith K, class C> inline C applyArith(C a, C b) {
  if constexpr (std::is_integral_v<C>) {
    using U = std::make_unsigned_t<C>;
    if constexpr (K == Arith::Add)
      return static_cast<C>(static_cast<U>(a) + static_cast<U>(b));
    if constexpr (K == Arith::Sub)
      return static_cast<C>(static_cast<U>(a) - static_cast<U>(b));
    if constexpr (K == Arith::Mul)
      return static_cast<C>(static_cast<U>(a) * static_cast<U>(b));
    if constexpr (K == Arith::Div) {
      // Truncates toward zero; x/0 is 0 and MIN/-1 wraps, never a trap.
      if (b == 0)
        return 0;
      if (b == -1)
        return static_cast<C>(U(0) - static_cast<U>(a));
      return a / b;
    }
    if constexpr (K == Arith::Max)
      return a > b ? a : b;
    if constexpr (K == Arith::Min)
      return a < b ? a : b;
    return 0;
  } else {
    if constexpr (K == Arith::Add)
      return a + b;
    if constexpr (K == Arith::Sub)
      return a - b;
    if constexpr (K == Arith::Mul)
      return a * b;
    if constexpr (K == Arith::Div)
      return a / b;
    if constexpr (K == Arith::Pow)
      return std::pow(a, b);
    // NaN propagates, as in numpy.maximum/minimum.
    if constexpr (K == Arith::Max)
      return (a > b || a != a) ? a : b;
    if constexpr (K == Arith::Min)
      return (a < b || a != a) ? a : b;
  }
}

} // namespace colossal::rt::cpu

#endif // COLOSSAL_RUNTIME_BACKENDS_CPU_ELEMENTWISEMATH_H
