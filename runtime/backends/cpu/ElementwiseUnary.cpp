//===- ElementwiseUnary.cpp - Unary math, activations and cast ------------===//
//
// neg abs relu (numeric), sqrt rsqrt exp log tanh erf sin cos reciprocal
// floor ceil round sigmoid silu gelu (float), not (bool), and cast between any
// two dtypes.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/ElementwiseMath.h"
#include "runtime/backends/cpu/KernelUtil.h"
#include "runtime/backends/cpu/VecMath.h"

#include <cmath>
#include <limits>
#include <type_traits>

namespace colossal::rt::cpu {
namespace {

template <Unary K>
Status runUnary(const std::vector<TensorRef> &inputs,
                const std::vector<TensorRef> &outputs) {
  constexpr const char *op = unaryName(K);
  if (Status s = checkArity(op, inputs, outputs, 1, 1, 1); !s)
    return s;
  if (Status s = checkDType(op, "result", outputs[0], inputs[0].dtype); !s)
    return s;
  if (Status s = checkSameNumel(op, inputs[0], outputs[0]); !s)
    return s;
  if (!takesIntegers(K) && !isFloat(inputs[0].dtype))
    return unsupported(op, inputs[0].dtype);
  return dispatchNumeric(op, inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using N = Num<T>;
    using C = typename N::C;
    if constexpr (!takesIntegers(K) && std::is_integral_v<C>) {
      return unsupported(op, inputs[0].dtype);
    } else {
      const T *in = inputs[0].as<T>();
      T *out = outputs[0].as<T>();
      const int64_t n = outputs[0].numel();
      // Transcendentals cost far more than a load: parallelize sooner.
      const int64_t work = takesIntegers(K) ? n : n * 8;
      const VecFn vec = vectorized(K);
      parallelRange(n, work, [&](int64_t b, int64_t e) {
        if constexpr (isVectorized(K) && std::is_same_v<T, float>) {
          vec(in + b, out + b, e - b);
        } else if constexpr (isVectorized(K) && !std::is_same_v<T, double>) {
          // 16-bit floats: through a float block on the stack (float64
          // takes the libm path below, in double).
          float tmp[512];
          for (int64_t i0 = b; i0 < e; i0 += 512) {
            const int64_t len = std::min<int64_t>(512, e - i0);
            for (int64_t i = 0; i < len; ++i)
              tmp[i] = N::load(in[i0 + i]);
            vec(tmp, tmp, len);
            for (int64_t i = 0; i < len; ++i)
              out[i0 + i] = N::store(tmp[i]);
          }
        } else {
          for (int64_t i = b; i < e; ++i)
            out[i] = N::store(applyUnary<K, C>(N::load(in[i])));
        }
      });
      return Status::ok();
    }
  });
}

template <Unary K>
Status unaryKernel(const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &outputs,
                   const AttributeMap &) {
  return runUnary<K>(inputs, outputs);
}

Status geluKernel(const std::vector<TensorRef> &inputs,
                  const std::vector<TensorRef> &outputs,
                  const AttributeMap &attrs) {
  const std::string approximate = attrs.getString("approximate", "none");
  if (approximate == "none")
    return runUnary<Unary::GeluErf>(inputs, outputs);
  if (approximate == "tanh")
    return runUnary<Unary::GeluTanh>(inputs, outputs);
  return Status::error("gelu: unknown approximation '" + approximate +
                       "' (expected none or tanh)");
}

Status notKernel(const std::vector<TensorRef> &inputs,
                 const std::vector<TensorRef> &outputs, const AttributeMap &) {
  if (Status s = checkArity("not", inputs, outputs, 1, 1, 1); !s)
    return s;
  if (inputs[0].dtype != DType::Bool)
    return unsupported("not", inputs[0].dtype);
  if (Status s = checkDType("not", "result", outputs[0], DType::Bool); !s)
    return s;
  if (Status s = checkSameNumel("not", inputs[0], outputs[0]); !s)
    return s;
  const uint8_t *in = inputs[0].as<uint8_t>();
  uint8_t *out = outputs[0].as<uint8_t>();
  const int64_t n = outputs[0].numel();
  parallelRange(n, n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      out[i] = in[i] == 0;
  });
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Cast
//===----------------------------------------------------------------------===//

template <class T> constexpr bool isFloatStorage() {
  return std::is_same_v<T, float> || std::is_same_v<T, Half> ||
         std::is_same_v<T, BFloat16> || std::is_same_v<T, double>;
}

/// Float to integer: truncation toward zero, saturating at the type's
/// limits, NaN to 0 (C++ leaves all three undefined).
template <class D> D floatToInt(double f) {
  if (f != f)
    return 0;
  const double d = f;
  constexpr double hi = -static_cast<double>(std::numeric_limits<D>::min());
  if (d >= hi)
    return std::numeric_limits<D>::max();
  if (d < -hi)
    return std::numeric_limits<D>::min();
  return static_cast<D>(d);
}

template <class D, class S> D convertElement(S v) {
  if constexpr (std::is_same_v<S, D>) {
    return v;
  } else if constexpr (isFloatStorage<S>()) {
    // In the source's compute type (float, or double for float64).
    const auto f = Num<S>::load(v);
    if constexpr (isFloatStorage<D>())
      return Num<D>::store(static_cast<typename Num<D>::C>(f));
    else if constexpr (std::is_same_v<D, uint8_t>)
      return f != 0; // NaN is true, as in numpy
    else
      return floatToInt<D>(f);
  } else {
    // Integers and bool (one byte holding 0 or 1).
    int64_t i = std::is_same_v<S, uint8_t> ? (v != 0) : static_cast<int64_t>(v);
    if constexpr (isFloatStorage<D>())
      return Num<D>::store(static_cast<typename Num<D>::C>(i));
    else if constexpr (std::is_same_v<D, uint8_t>)
      return i != 0;
    else
      return static_cast<D>(i); // int64 -> int32 wraps, as in numpy
  }
}

Status castKernel(const std::vector<TensorRef> &inputs,
                  const std::vector<TensorRef> &outputs, const AttributeMap &) {
  if (Status s = checkArity("cast", inputs, outputs, 1, 1, 1); !s)
    return s;
  if (Status s = checkSameNumel("cast", inputs[0], outputs[0]); !s)
    return s;
  const int64_t n = outputs[0].numel();
  if (inputs[0].dtype == outputs[0].dtype) {
    if (n && inputs[0].data != outputs[0].data)
      std::memcpy(outputs[0].data, inputs[0].data, outputs[0].bytes());
    return Status::ok();
  }
  return dispatchAny("cast", inputs[0].dtype, [&](auto srcTag) {
    using S = typename decltype(srcTag)::type;
    return dispatchAny("cast", outputs[0].dtype, [&](auto dstTag) {
      using D = typename decltype(dstTag)::type;
      const S *in = inputs[0].as<S>();
      D *out = outputs[0].as<D>();
      parallelRange(n, n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
          out[i] = convertElement<D, S>(in[i]);
      });
      return Status::ok();
    });
  });
}

} // namespace

void appendElementwiseUnaryKernels(std::vector<KernelEntry> &table) {
  table.push_back({"neg", &unaryKernel<Unary::Neg>});
  table.push_back({"abs", &unaryKernel<Unary::Abs>});
  table.push_back({"relu", &unaryKernel<Unary::Relu>});
  table.push_back({"sqrt", &unaryKernel<Unary::Sqrt>});
  table.push_back({"rsqrt", &unaryKernel<Unary::Rsqrt>});
  table.push_back({"exp", &unaryKernel<Unary::Exp>});
  table.push_back({"log", &unaryKernel<Unary::Log>});
  table.push_back({"tanh", &unaryKernel<Unary::Tanh>});
  table.push_back({"erf", &unaryKernel<Unary::Erf>});
  table.push_back({"sin", &unaryKernel<Unary::Sin>});
  table.push_back({"cos", &unaryKernel<Unary::Cos>});
  table.push_back({"reciprocal", &unaryKernel<Unary::Reciprocal>});
  table.push_back({"floor", &unaryKernel<Unary::Floor>});
  table.push_back({"ceil", &unaryKernel<Unary::Ceil>});
  table.push_back({"round", &unaryKernel<Unary::Round>});
  table.push_back({"sigmoid", &unaryKernel<Unary::Sigmoid>});
  table.push_back({"silu", &unaryKernel<Unary::Silu>});
  table.push_back({"gelu", &geluKernel});
  table.push_back({"not", &notKernel});
  table.push_back({"cast", &castKernel});
}

} // namespace colossal::rt::cpu
