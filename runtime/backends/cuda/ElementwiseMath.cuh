//===- ElementwiseMath.cuh - Per-element arithmetic on the GPU --*- CUDA
//-*-===//
//
// The device twin of runtime/backends/cpu/ElementwiseMath.h: the same ops
// (the CPU header's Unary/Arith enums), the same integer rules (wrapping,
// x/0 == 0) and NaN propagation through max/min, shared by the ops' own
// kernels and fused_elementwise.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_BACKENDS_CUDA_ELEMENTWISEMATH_CUH
#define COLOSSAL_RUNTIME_BACKENDS_CUDA_ELEMENTWISEMATH_CUH

#include "runtime/backends/cpu/ElementwiseMath.h"

#include <cuda_runtime.h>

#include <type_traits>

namespace colossal::rt::cuda {

using cpu::Arith;
using cpu::Unary;

template <Unary K, class C> __device__ inline C devUnary(C x) {
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
      return fabsf(x);
    if constexpr (K == Unary::Relu)
      return x < 0 ? 0.0f : x; // NaN stays NaN
    if constexpr (K == Unary::Sqrt)
      return sqrtf(x);
    if constexpr (K == Unary::Rsqrt)
      return 1.0f / sqrtf(x);
    if constexpr (K == Unary::Exp)
      return expf(x);
    if constexpr (K == Unary::Log)
      return logf(x);
    if constexpr (K == Unary::Tanh)
      return tanhf(x);
    if constexpr (K == Unary::Erf)
      return erff(x);
    if constexpr (K == Unary::Sin)
      return sinf(x);
    if constexpr (K == Unary::Cos)
      return cosf(x);
    if constexpr (K == Unary::Reciprocal)
      return 1.0f / x;
    if constexpr (K == Unary::Sigmoid)
      return 1.0f / (1.0f + expf(-x));
    if constexpr (K == Unary::Silu)
      return x / (1.0f + expf(-x));
    if constexpr (K == Unary::GeluErf)
      return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    if constexpr (K == Unary::GeluTanh)
      return 0.5f * x *
             (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    if constexpr (K == Unary::Floor)
      return floorf(x);
    if constexpr (K == Unary::Ceil)
      return ceilf(x);
    if constexpr (K == Unary::Round)
      return rintf(x); // halves to even
    return x;
  }
}

template <Arith K, class C> __device__ inline C devArith(C a, C b) {
  if constexpr (std::is_integral_v<C>) {
    using U = std::make_unsigned_t<C>;
    if constexpr (K == Arith::Add)
      return static_cast<C>(static_cast<U>(a) + static_cast<U>(b));
    if constexpr (K == Arith::Sub)
      return static_cast<C>(static_cast<U>(a) - static_cast<U>(b));
    if constexpr (K == Arith::Mul)
      return static_cast<C>(static_cast<U>(a) * static_cast<U>(b));
    if constexpr (K == Arith::Div) {
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
      return powf(a, b);
    if constexpr (K == Arith::Max)
      return (a > b || a != a) ? a : b;
    if constexpr (K == Arith::Min)
      return (a < b || a != a) ? a : b;
    return a;
  }
}

/// Runtime dispatch over the enums (for fused chains, decoded per step).
__device__ inline float unaryAt(Unary k, float x) {
  switch (k) {
#define COLOSSAL_CASE(K)                                                       \
  case Unary::K:                                                               \
    return devUnary<Unary::K, float>(x);
    COLOSSAL_CASE(Neg)
    COLOSSAL_CASE(Abs)
    COLOSSAL_CASE(Relu)
    COLOSSAL_CASE(Sqrt)
    COLOSSAL_CASE(Rsqrt)
    COLOSSAL_CASE(Exp)
    COLOSSAL_CASE(Log)
    COLOSSAL_CASE(Tanh)
    COLOSSAL_CASE(Erf)
    COLOSSAL_CASE(Sin)
    COLOSSAL_CASE(Cos)
    COLOSSAL_CASE(Reciprocal)
    COLOSSAL_CASE(Sigmoid)
    COLOSSAL_CASE(Silu)
    COLOSSAL_CASE(GeluErf)
    COLOSSAL_CASE(GeluTanh)
    COLOSSAL_CASE(Floor)
    COLOSSAL_CASE(Ceil)
    COLOSSAL_CASE(Round)
#undef COLOSSAL_CASE
  }
  return x;
}

__device__ inline float arithAt(Arith k, float a, float b) {
  switch (k) {
#define COLOSSAL_CASE(K)                                                       \
  case Arith::K:                                                               \
    return devArith<Arith::K, float>(a, b);
    COLOSSAL_CASE(Add)
    COLOSSAL_CASE(Sub)
    COLOSSAL_CASE(Mul)
    COLOSSAL_CASE(Div)
    COLOSSAL_CASE(Pow)
    COLOSSAL_CASE(Max)
    COLOSSAL_CASE(Min)
#undef COLOSSAL_CASE
  }
  return a;
}

} // namespace colossal::rt::cuda

#endif // COLOSSAL_RUNTIME_BACKENDS_CUDA_ELEMENTWISEMATH_CUH
