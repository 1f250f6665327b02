//===- Elementwise.cu - Unary, binary, comparison, select and cast --------===//
//
// Grid-stride loops, one element a thread per step; broadcasting operands
// are indexed through the merged BroadcastPlan the CPU kernels use, and a
// plan with no broadcast at all takes the flat path.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cuda/DeviceUtil.cuh"
#include "runtime/backends/cuda/ElementwiseMath.cuh"

#include <limits>

namespace colossal::rt::cuda {
namespace {

//===----------------------------------------------------------------------===//
// Unary
//===----------------------------------------------------------------------===//

template <Unary K, class T>
__global__ void unaryKernel(const T *in, T *out, int64_t n) {
  using N = Num<T>;
  COLOSSAL_GRID_STRIDE(i, n) {
    out[i] = N::store(devUnary<K, typename N::C>(N::load(in[i])));
  }
}

template <Unary K>
Status runUnary(const char *op, const KernelContext &ctx,
                const std::vector<TensorRef> &inputs,
                const std::vector<TensorRef> &outputs) {
  if (Status s = checkArity(op, inputs, outputs, 1, 1, 1); !s)
    return s;
  if (Status s = checkDType(op, "result", outputs[0], inputs[0].dtype); !s)
    return s;
  if (Status s = checkSameNumel(op, inputs[0], outputs[0]); !s)
    return s;
  if (!cpu::takesIntegers(K) && !isFloat(inputs[0].dtype))
    return unsupported(op, inputs[0].dtype);
  const int64_t n = outputs[0].numel();
  return dispatchNumeric(op, inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (!cpu::takesIntegers(K) && std::is_integral_v<T>) {
      return unsupported(op, inputs[0].dtype);
    } else {
      if (n == 0)
        return Status::ok();
      unaryKernel<K, T><<<gridFor(ctx, n), kThreads, 0, ctx.stream>>>(
          inputs[0].as<T>(), outputs[0].as<T>(), n);
      return launched(op);
    }
  });
}

template <Unary K>
Status unaryOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
               const std::vector<TensorRef> &outputs, const AttributeMap &) {
  return runUnary<K>(cpu::unaryName(K), ctx, inputs, outputs);
}

Status geluOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
              const std::vector<TensorRef> &outputs,
              const AttributeMap &attrs) {
  const std::string approximate = attrs.getString("approximate", "none");
  if (approximate == "none")
    return runUnary<Unary::GeluErf>("gelu", ctx, inputs, outputs);
  if (approximate == "tanh")
    return runUnary<Unary::GeluTanh>("gelu", ctx, inputs, outputs);
  return Status::error("gelu: unknown approximation '" + approximate +
                       "' (expected none or tanh)");
}

__global__ void notKernel(const uint8_t *in, uint8_t *out, int64_t n) {
  COLOSSAL_GRID_STRIDE(i, n) { out[i] = in[i] == 0; }
}

Status notOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
             const std::vector<TensorRef> &outputs, const AttributeMap &) {
  if (Status s = checkArity("not", inputs, outputs, 1, 1, 1); !s)
    return s;
  if (inputs[0].dtype != DType::Bool)
    return unsupported("not", inputs[0].dtype);
  if (Status s = checkDType("not", "result", outputs[0], DType::Bool); !s)
    return s;
  if (Status s = checkSameNumel("not", inputs[0], outputs[0]); !s)
    return s;
  const int64_t n = outputs[0].numel();
  if (n == 0)
    return Status::ok();
  notKernel<<<gridFor(ctx, n), kThreads, 0, ctx.stream>>>(
      inputs[0].as<uint8_t>(), outputs[0].as<uint8_t>(), n);
  return launched("not");
}

//===----------------------------------------------------------------------===//
// Cast
//===----------------------------------------------------------------------===//

template <class T> constexpr bool isFloatStorage() {
  return std::is_same_v<T, float> || std::is_same_v<T, __half> ||
         std::is_same_v<T, __nv_bfloat16>;
}

/// Float to integer: truncation, saturating, NaN to 0 (as the CPU's cast).
template <class D> __device__ D floatToInt(float f) {
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

template <class D, class S> __device__ D convertElement(S v) {
  if constexpr (std::is_same_v<S, D>) {
    return v;
  } else if constexpr (isFloatStorage<S>()) {
    const float f = Num<S>::load(v);
    if constexpr (isFloatStorage<D>())
      return Num<D>::store(f);
    else if constexpr (std::is_same_v<D, uint8_t>)
      return f != 0.0f; // NaN is true, as in numpy
    else
      return floatToInt<D>(f);
  } else {
    int64_t i = std::is_same_v<S, uint8_t> ? (v != 0) : static_cast<int64_t>(v);
    if constexpr (isFloatStorage<D>())
      return Num<D>::store(static_cast<float>(i));
    else if constexpr (std::is_same_v<D, uint8_t>)
      return i != 0;
    else
      return static_cast<D>(i);
  }
}

template <class D, class S>
__global__ void castKernel(const S *in, D *out, int64_t n) {
  COLOSSAL_GRID_STRIDE(i, n) { out[i] = convertElement<D, S>(in[i]); }
}

Status castOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
              const std::vector<TensorRef> &outputs, const AttributeMap &) {
  if (Status s = checkArity("cast", inputs, outputs, 1, 1, 1); !s)
    return s;
  if (Status s = checkSameNumel("cast", inputs[0], outputs[0]); !s)
    return s;
  const int64_t n = outputs[0].numel();
  if (n == 0)
    return Status::ok();
  if (inputs[0].dtype == outputs[0].dtype) {
    if (inputs[0].data == outputs[0].data)
      return Status::ok();
    cudaError_t e =
        cudaMemcpyAsync(outputs[0].data, inputs[0].data, outputs[0].bytes(),
                        cudaMemcpyDeviceToDevice, ctx.stream);
    return e == cudaSuccess
               ? Status::ok()
               : Status::error(std::string("cast: ") + cudaGetErrorString(e));
  }
  return dispatchAny("cast", inputs[0].dtype, [&](auto srcTag) {
    using S = typename decltype(srcTag)::type;
    return dispatchAny("cast", outputs[0].dtype, [&](auto dstTag) {
      using D = typename decltype(dstTag)::type;
      castKernel<D, S><<<gridFor(ctx, n), kThreads, 0, ctx.stream>>>(
          inputs[0].as<S>(), outputs[0].as<D>(), n);
      return launched("cast");
    });
  });
}

//===----------------------------------------------------------------------===//
// Binary
//===----------------------------------------------------------------------===//

/// out[i] = f(a[.], b[.]) with each operand's offset from the broadcast.
template <class TIn, class TOut, class F>
__global__ void binaryKernel(Broadcast bc, bool flat, const TIn *a,
                             const TIn *b, TOut *out, int64_t n, F f) {
  COLOSSAL_GRID_STRIDE(i, n) {
    if (flat) {
      out[i] = f(a[i], b[i]);
    } else {
      int64_t off[2];
      bc.offsets(i, off, 2);
      out[i] = f(a[off[0]], b[off[1]]);
    }
  }
}

/// Whether every operand of `plan` is read element for element.
bool isFlat(const BroadcastPlan &plan) {
  if (plan.dims.size() != 1)
    return false;
  for (const auto &s : plan.strides)
    if (s[0] != 1)
      return false;
  return true;
}

Status planBinary(std::string_view op, const std::vector<TensorRef> &inputs,
                  const std::vector<TensorRef> &outputs, BroadcastPlan &plan,
                  Broadcast &bc) {
  if (Status s = checkArity(op, inputs, outputs, 2, 2, 1); !s)
    return s;
  if (inputs[0].dtype != inputs[1].dtype)
    return Status::error(std::string(op) + ": operand dtypes differ (" +
                         dtypeName(inputs[0].dtype) + " and " +
                         dtypeName(inputs[1].dtype) + ")");
  if (Status s = makeBroadcastPlan(op, outputs[0].shape,
                                   {&inputs[0].shape, &inputs[1].shape}, plan);
      !s)
    return s;
  return toDevice(op, plan, bc);
}

template <class TIn, class TOut, class F>
Status runBinary(const char *op, const KernelContext &ctx,
                 const BroadcastPlan &plan, const Broadcast &bc,
                 const TensorRef &a, const TensorRef &b, const TensorRef &out,
                 F f) {
  if (plan.total <= 0)
    return Status::ok();
  binaryKernel<<<gridFor(ctx, plan.total), kThreads, 0, ctx.stream>>>(
      bc, isFlat(plan), a.as<TIn>(), b.as<TIn>(), out.as<TOut>(), plan.total,
      f);
  return launched(op);
}

template <Arith K, class T> struct ArithFn {
  __device__ T operator()(T a, T b) const {
    using N = Num<T>;
    return N::store(devArith<K, typename N::C>(N::load(a), N::load(b)));
  }
};

template <Arith K>
Status arithOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
               const std::vector<TensorRef> &outputs, const AttributeMap &) {
  constexpr const char *op = cpu::arithName(K);
  BroadcastPlan plan;
  Broadcast bc;
  if (Status s = planBinary(op, inputs, outputs, plan, bc); !s)
    return s;
  if (Status s = checkDType(op, "result", outputs[0], inputs[0].dtype); !s)
    return s;
  if (K == Arith::Pow && !isFloat(inputs[0].dtype))
    return unsupported(op, inputs[0].dtype);
  return dispatchNumeric(op, inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (K == Arith::Pow && std::is_integral_v<T>) {
      return unsupported(op, inputs[0].dtype);
    } else {
      return runBinary<T, T>(op, ctx, plan, bc, inputs[0], inputs[1],
                             outputs[0], ArithFn<K, T>{});
    }
  });
}

template <bool IsAnd> struct LogicFn {
  __device__ uint8_t operator()(uint8_t a, uint8_t b) const {
    return IsAnd ? ((a != 0) & (b != 0)) : ((a != 0) | (b != 0));
  }
};

template <bool IsAnd>
Status logicOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
               const std::vector<TensorRef> &outputs, const AttributeMap &) {
  const char *op = IsAnd ? "and" : "or";
  BroadcastPlan plan;
  Broadcast bc;
  if (Status s = planBinary(op, inputs, outputs, plan, bc); !s)
    return s;
  if (inputs[0].dtype != DType::Bool)
    return unsupported(op, inputs[0].dtype);
  if (Status s = checkDType(op, "result", outputs[0], DType::Bool); !s)
    return s;
  return runBinary<uint8_t, uint8_t>(op, ctx, plan, bc, inputs[0], inputs[1],
                                     outputs[0], LogicFn<IsAnd>{});
}

enum class Pred { Eq, Ne, Lt, Le, Gt, Ge };

template <class T> struct CmpFn {
  Pred pred;
  __device__ uint8_t operator()(T x, T y) const {
    const auto a = Num<T>::load(x), b = Num<T>::load(y);
    switch (pred) {
    case Pred::Eq:
      return a == b;
    case Pred::Ne:
      return a != b;
    case Pred::Lt:
      return a < b;
    case Pred::Le:
      return a <= b;
    case Pred::Gt:
      return a > b;
    case Pred::Ge:
      return a >= b;
    }
    return 0;
  }
};

Status cmpOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
             const std::vector<TensorRef> &outputs, const AttributeMap &attrs) {
  BroadcastPlan plan;
  Broadcast bc;
  if (Status s = planBinary("cmp", inputs, outputs, plan, bc); !s)
    return s;
  if (Status s = checkDType("cmp", "result", outputs[0], DType::Bool); !s)
    return s;
  const std::string p = attrs.getString("predicate");
  static const std::pair<const char *, Pred> preds[] = {
      {"eq", Pred::Eq}, {"ne", Pred::Ne}, {"lt", Pred::Lt},
      {"le", Pred::Le}, {"gt", Pred::Gt}, {"ge", Pred::Ge}};
  const auto *found = std::find_if(std::begin(preds), std::end(preds),
                                   [&](const auto &e) { return p == e.first; });
  if (found == std::end(preds))
    return Status::error("cmp: unknown predicate '" + p +
                         "' (expected eq, ne, lt, le, gt or ge)");
  return dispatchAny("cmp", inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return runBinary<T, uint8_t>("cmp", ctx, plan, bc, inputs[0], inputs[1],
                                 outputs[0], CmpFn<T>{found->second});
  });
}

//===----------------------------------------------------------------------===//
// where
//===----------------------------------------------------------------------===//

template <class T>
__global__ void whereKernel(Broadcast bc, const uint8_t *cond, const T *x,
                            const T *y, T *out, int64_t n) {
  COLOSSAL_GRID_STRIDE(i, n) {
    int64_t off[3];
    bc.offsets(i, off, 3);
    out[i] = cond[off[0]] ? x[off[1]] : y[off[2]];
  }
}

Status whereOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
               const std::vector<TensorRef> &outputs, const AttributeMap &) {
  if (Status s = checkArity("where", inputs, outputs, 3, 3, 1); !s)
    return s;
  if (Status s = checkDType("where", "condition", inputs[0], DType::Bool); !s)
    return s;
  if (inputs[1].dtype != inputs[2].dtype || outputs[0].dtype != inputs[1].dtype)
    return Status::error(std::string("where: x, y and result dtypes differ (") +
                         dtypeName(inputs[1].dtype) + ", " +
                         dtypeName(inputs[2].dtype) + ", " +
                         dtypeName(outputs[0].dtype) + ")");
  BroadcastPlan plan;
  Broadcast bc;
  if (Status s = makeBroadcastPlan(
          "where", outputs[0].shape,
          {&inputs[0].shape, &inputs[1].shape, &inputs[2].shape}, plan);
      !s)
    return s;
  if (Status s = toDevice("where", plan, bc); !s)
    return s;
  if (plan.total <= 0)
    return Status::ok();
  const uint8_t *cond = inputs[0].as<uint8_t>();
  const unsigned grid = gridFor(ctx, plan.total);
  // Selection moves bits: dispatch on the element size only.
  switch (dtypeSize(outputs[0].dtype)) {
  case 1:
    whereKernel<<<grid, kThreads, 0, ctx.stream>>>(
        bc, cond, inputs[1].as<uint8_t>(), inputs[2].as<uint8_t>(),
        outputs[0].as<uint8_t>(), plan.total);
    break;
  case 2:
    whereKernel<<<grid, kThreads, 0, ctx.stream>>>(
        bc, cond, inputs[1].as<uint16_t>(), inputs[2].as<uint16_t>(),
        outputs[0].as<uint16_t>(), plan.total);
    break;
  case 4:
    whereKernel<<<grid, kThreads, 0, ctx.stream>>>(
        bc, cond, inputs[1].as<uint32_t>(), inputs[2].as<uint32_t>(),
        outputs[0].as<uint32_t>(), plan.total);
    break;
  case 8:
    whereKernel<<<grid, kThreads, 0, ctx.stream>>>(
        bc, cond, inputs[1].as<uint64_t>(), inputs[2].as<uint64_t>(),
        outputs[0].as<uint64_t>(), plan.total);
    break;
  default:
    return unsupported("where", outputs[0].dtype);
  }
  return launched("where");
}

} // namespace

void appendElementwiseKernels(std::vector<KernelEntry> &table) {
  table.push_back({"neg", &unaryOp<Unary::Neg>});
  table.push_back({"abs", &unaryOp<Unary::Abs>});
  table.push_back({"relu", &unaryOp<Unary::Relu>});
  table.push_back({"sqrt", &unaryOp<Unary::Sqrt>});
  table.push_back({"rsqrt", &unaryOp<Unary::Rsqrt>});
  table.push_back({"exp", &unaryOp<Unary::Exp>});
  table.push_back({"log", &unaryOp<Unary::Log>});
  table.push_back({"tanh", &unaryOp<Unary::Tanh>});
  table.push_back({"erf", &unaryOp<Unary::Erf>});
  table.push_back({"sin", &unaryOp<Unary::Sin>});
  table.push_back({"cos", &unaryOp<Unary::Cos>});
  table.push_back({"reciprocal", &unaryOp<Unary::Reciprocal>});
  table.push_back({"floor", &unaryOp<Unary::Floor>});
  table.push_back({"ceil", &unaryOp<Unary::Ceil>});
  table.push_back({"round", &unaryOp<Unary::Round>});
  table.push_back({"sigmoid", &unaryOp<Unary::Sigmoid>});
  table.push_back({"silu", &unaryOp<Unary::Silu>});
  table.push_back({"gelu", &geluOp});
  table.push_back({"not", &notOp});
  table.push_back({"cast", &castOp});
  table.push_back({"add", &arithOp<Arith::Add>});
  table.push_back({"sub", &arithOp<Arith::Sub>});
  table.push_back({"mul", &arithOp<Arith::Mul>});
  table.push_back({"div", &arithOp<Arith::Div>});
  table.push_back({"pow", &arithOp<Arith::Pow>});
  table.push_back({"max", &arithOp<Arith::Max>});
  table.push_back({"min", &arithOp<Arith::Min>});
  table.push_back({"and", &logicOp<true>});
  table.push_back({"or", &logicOp<false>});
  table.push_back({"cmp", &cmpOp});
  table.push_back({"where", &whereOp});
}

} // namespace colossal::rt::cuda
