//===- ElementwiseBinary.cpp - Broadcasting binary ops, cmp and where -----===//
//
// add sub mul div pow max min (numeric), and or (bool), cmp (-> bool) and
// where, all with numpy broadcasting. 16-bit floats compute in float;
// integers wrap on overflow rather than invoke undefined behaviour.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/ElementwiseMath.h"
#include "runtime/backends/cpu/KernelUtil.h"

#include <cmath>
#include <type_traits>

namespace colossal::rt::cpu {
namespace {

//===----------------------------------------------------------------------===//
// The run loop
//===----------------------------------------------------------------------===//

/// out = f(a, b) over a broadcast plan of two operands. The inner stride of
/// an operand is 1 (walks) or 0 (broadcast); the four cases get their own
/// loops so the compiler can vectorize them.
template <class TIn, class TOut, class F>
void runBinary(const BroadcastPlan &plan, const TIn *a, const TIn *b, TOut *out,
               F f) {
  const int64_t sa = plan.innerStride(0), sb = plan.innerStride(1);
  forEachRun(plan, [&](int64_t o, const int64_t *off, int64_t n) {
    const TIn *pa = a + off[0];
    const TIn *pb = b + off[1];
    TOut *po = out + o;
    if (sa == 1 && sb == 1) {
      for (int64_t i = 0; i < n; ++i)
        po[i] = f(pa[i], pb[i]);
    } else if (sa == 0 && sb == 1) {
      const TIn va = pa[0];
      for (int64_t i = 0; i < n; ++i)
        po[i] = f(va, pb[i]);
    } else if (sa == 1 && sb == 0) {
      const TIn vb = pb[0];
      for (int64_t i = 0; i < n; ++i)
        po[i] = f(pa[i], vb);
    } else {
      for (int64_t i = 0; i < n; ++i)
        po[i] = f(pa[i * sa], pb[i * sb]);
    }
  });
}

Status planBinary(std::string_view op, const std::vector<TensorRef> &inputs,
                  const std::vector<TensorRef> &outputs, BroadcastPlan &plan) {
  if (Status s = checkArity(op, inputs, outputs, 2, 2, 1); !s)
    return s;
  if (inputs[0].dtype != inputs[1].dtype)
    return Status::error(std::string(op) + ": operand dtypes differ (" +
                         dtypeName(inputs[0].dtype) + " and " +
                         dtypeName(inputs[1].dtype) + ")");
  return makeBroadcastPlan(op, outputs[0].shape,
                           {&inputs[0].shape, &inputs[1].shape}, plan);
}

//===----------------------------------------------------------------------===//
// Arithmetic
//===----------------------------------------------------------------------===//

template <Arith K>
Status arithKernel(const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &outputs,
                   const AttributeMap &) {
  constexpr const char *op = arithName(K);
  BroadcastPlan plan;
  if (Status s = planBinary(op, inputs, outputs, plan); !s)
    return s;
  if (Status s = checkDType(op, "result", outputs[0], inputs[0].dtype); !s)
    return s;
  if (K == Arith::Pow && !isFloat(inputs[0].dtype))
    return unsupported(op, inputs[0].dtype);
  return dispatchNumeric(op, inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using N = Num<T>;
    using C = typename N::C;
    if constexpr (K == Arith::Pow && std::is_integral_v<C>) {
      return unsupported(op, inputs[0].dtype);
    } else {
      runBinary(plan, inputs[0].as<T>(), inputs[1].as<T>(), outputs[0].as<T>(),
                [](T a, T b) {
                  return N::store(applyArith<K, C>(N::load(a), N::load(b)));
                });
      return Status::ok();
    }
  });
}

//===----------------------------------------------------------------------===//
// Logic and comparison
//===----------------------------------------------------------------------===//

template <bool IsAnd>
Status logicKernel(const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &outputs,
                   const AttributeMap &) {
  const char *op = IsAnd ? "and" : "or";
  BroadcastPlan plan;
  if (Status s = planBinary(op, inputs, outputs, plan); !s)
    return s;
  if (inputs[0].dtype != DType::Bool)
    return unsupported(op, inputs[0].dtype);
  if (Status s = checkDType(op, "result", outputs[0], DType::Bool); !s)
    return s;
  runBinary(plan, inputs[0].as<uint8_t>(), inputs[1].as<uint8_t>(),
            outputs[0].as<uint8_t>(), [](uint8_t a, uint8_t b) -> uint8_t {
              return IsAnd ? ((a != 0) & (b != 0)) : ((a != 0) | (b != 0));
            });
  return Status::ok();
}

enum class Pred { Eq, Ne, Lt, Le, Gt, Ge };

template <class T>
void runCmp(const BroadcastPlan &plan, const TensorRef &a, const TensorRef &b,
            uint8_t *out, Pred pred) {
  using N = Num<T>;
  const T *pa = a.as<T>(), *pb = b.as<T>();
  switch (pred) {
  case Pred::Eq:
    return runBinary(plan, pa, pb, out, [](T x, T y) -> uint8_t {
      return N::load(x) == N::load(y);
    });
  case Pred::Ne:
    return runBinary(plan, pa, pb, out, [](T x, T y) -> uint8_t {
      return N::load(x) != N::load(y);
    });
  case Pred::Lt:
    return runBinary(plan, pa, pb, out, [](T x, T y) -> uint8_t {
      return N::load(x) < N::load(y);
    });
  case Pred::Le:
    return runBinary(plan, pa, pb, out, [](T x, T y) -> uint8_t {
      return N::load(x) <= N::load(y);
    });
  case Pred::Gt:
    return runBinary(plan, pa, pb, out, [](T x, T y) -> uint8_t {
      return N::load(x) > N::load(y);
    });
  case Pred::Ge:
    return runBinary(plan, pa, pb, out, [](T x, T y) -> uint8_t {
      return N::load(x) >= N::load(y);
    });
  }
}

Status cmpKernel(const std::vector<TensorRef> &inputs,
                 const std::vector<TensorRef> &outputs,
                 const AttributeMap &attrs) {
  BroadcastPlan plan;
  if (Status s = planBinary("cmp", inputs, outputs, plan); !s)
    return s;
  if (Status s = checkDType("cmp", "result", outputs[0], DType::Bool); !s)
    return s;
  const std::string p = attrs.getString("predicate");
  Pred pred;
  if (p == "eq")
    pred = Pred::Eq;
  else if (p == "ne")
    pred = Pred::Ne;
  else if (p == "lt")
    pred = Pred::Lt;
  else if (p == "le")
    pred = Pred::Le;
  else if (p == "gt")
    pred = Pred::Gt;
  else if (p == "ge")
    pred = Pred::Ge;
  else
    return Status::error("cmp: unknown predicate '" + p +
                         "' (expected eq, ne, lt, le, gt or ge)");
  return dispatchAny("cmp", inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    runCmp<T>(plan, inputs[0], inputs[1], outputs[0].as<uint8_t>(), pred);
    return Status::ok();
  });
}

//===----------------------------------------------------------------------===//
// Where
//===----------------------------------------------------------------------===//

template <class T>
void runWhere(const BroadcastPlan &plan, const uint8_t *cond, const T *x,
              const T *y, T *out) {
  const int64_t sc = plan.innerStride(0), sx = plan.innerStride(1),
                sy = plan.innerStride(2);
  forEachRun(plan, [&](int64_t o, const int64_t *off, int64_t n) {
    const uint8_t *pc = cond + off[0];
    const T *px = x + off[1];
    const T *py = y + off[2];
    T *po = out + o;
    if (sc == 1 && sx == 1 && sy == 1) {
      for (int64_t i = 0; i < n; ++i)
        po[i] = pc[i] ? px[i] : py[i];
    } else {
      for (int64_t i = 0; i < n; ++i)
        po[i] = pc[i * sc] ? px[i * sx] : py[i * sy];
    }
  });
}

Status whereKernel(const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &outputs,
                   const AttributeMap &) {
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
  if (Status s = makeBroadcastPlan(
          "where", outputs[0].shape,
          {&inputs[0].shape, &inputs[1].shape, &inputs[2].shape}, plan);
      !s)
    return s;
  const uint8_t *cond = inputs[0].as<uint8_t>();
  // Selection only moves bytes: dispatch on the element size.
  switch (dtypeSize(outputs[0].dtype)) {
  case 1:
    runWhere(plan, cond, inputs[1].as<uint8_t>(), inputs[2].as<uint8_t>(),
             outputs[0].as<uint8_t>());
    break;
  case 2:
    runWhere(plan, cond, inputs[1].as<uint16_t>(), inputs[2].as<uint16_t>(),
             outputs[0].as<uint16_t>());
    break;
  case 4:
    runWhere(plan, cond, inputs[1].as<uint32_t>(), inputs[2].as<uint32_t>(),
             outputs[0].as<uint32_t>());
    break;
  case 8:
    runWhere(plan, cond, inputs[1].as<uint64_t>(), inputs[2].as<uint64_t>(),
             outputs[0].as<uint64_t>());
    break;
  default:
    return unsupported("where", outputs[0].dtype);
  }
  return Status::ok();
}

} // namespace

void appendElementwiseBinaryKernels(std::vector<KernelEntry> &table) {
  table.push_back({"add", &arithKernel<Arith::Add>});
  table.push_back({"sub", &arithKernel<Arith::Sub>});
  table.push_back({"mul", &arithKernel<Arith::Mul>});
  table.push_back({"div", &arithKernel<Arith::Div>});
  table.push_back({"pow", &arithKernel<Arith::Pow>});
  table.push_back({"max", &arithKernel<Arith::Max>});
  table.push_back({"min", &arithKernel<Arith::Min>});
  table.push_back({"and", &logicKernel<true>});
  table.push_back({"or", &logicKernel<false>});
  table.push_back({"cmp", &cmpKernel});
  table.push_back({"where", &whereKernel});
}

} // namespace colossal::rt::cpu
