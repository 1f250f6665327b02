//===- FusedElementwise.cpp - A chain of float32 elementwise ops, one loop ===//
//
// fused_elementwise (colossal-fuse-elementwise): `steps` ("mul,add,sqrt"),
// `args` (two per step: an input's index, or number-of-inputs + an earlier
// step's; -1 for a unary step's second) and `yields` (the step each
// result is). Every input has the region's element count or one element (a
// scalar); the steps run over blocks of the region that stay in L1, so the
// values between them are never written to memory. Each step computes as
// the op's own kernel does: the arithmetic is theirs (ElementwiseMath.h).
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/ElementwiseMath.h"
#include "runtime/backends/cpu/KernelUtil.h"

#include <cmath>
#include <sstream>

namespace colossal::rt::cpu {
namespace {

/// A step's op: one of the binary arithmetic ops or of the unary ones
/// (gelu, which takes an attribute, is not a step).
struct Code {
  bool binary;
  Arith arith;
  Unary unary;
};

bool codeNamed(const std::string &name, Code &code) {
  for (int k = 0; k <= static_cast<int>(Arith::Min); ++k)
    if (name == arithName(static_cast<Arith>(k))) {
      code = {true, static_cast<Arith>(k), Unary::Neg};
      return true;
    }
  for (int k = 0; k <= static_cast<int>(Unary::Round); ++k) {
    Unary u = static_cast<Unary>(k);
    if (u != Unary::GeluErf && u != Unary::GeluTanh && name == unaryName(u)) {
      code = {false, Arith::Add, u};
      return true;
    }
  }
  return false;
}

/// y[i] = K(x[i]), through VecMath where the op's kernel uses it.
template <Unary K> void unaryLoop(const float *x, float *y, int64_t n) {
  if constexpr (isVectorized(K)) {
    vectorized(K)(x, y, n);
  } else {
    for (int64_t i = 0; i < n; ++i)
      y[i] = applyUnary<K, float>(x[i]);
  }
}

void unary(Unary k, const float *x, float *y, int64_t n) {
  switch (k) {
#define COLOSSAL_UNARY_CASE(K)                                                 \
  case Unary::K:                                                               \
    return unaryLoop<Unary::K>(x, y, n);
    COLOSSAL_UNARY_CASE(Neg)
    COLOSSAL_UNARY_CASE(Abs)
    COLOSSAL_UNARY_CASE(Relu)
    COLOSSAL_UNARY_CASE(Sqrt)
    COLOSSAL_UNARY_CASE(Rsqrt)
    COLOSSAL_UNARY_CASE(Exp)
    COLOSSAL_UNARY_CASE(Log)
    COLOSSAL_UNARY_CASE(Tanh)
    COLOSSAL_UNARY_CASE(Erf)
    COLOSSAL_UNARY_CASE(Sin)
    COLOSSAL_UNARY_CASE(Cos)
    COLOSSAL_UNARY_CASE(Reciprocal)
    COLOSSAL_UNARY_CASE(Sigmoid)
    COLOSSAL_UNARY_CASE(Silu)
    COLOSSAL_UNARY_CASE(Floor)
    COLOSSAL_UNARY_CASE(Ceil)
    COLOSSAL_UNARY_CASE(Round)
#undef COLOSSAL_UNARY_CASE
  default: // gelu is never a step (codeNamed)
    return;
  }
}

/// One step of the chain: the op and where its operands come from.
struct Step {
  Code code;
  int64_t a, b; // value indices: inputs first, then steps
};

/// A value of one block: `n` floats at `p` (stride 1), or a scalar.
struct Operand {
  const float *p;
  bool scalar;
};

template <class F>
void loop2(const Operand &x, const Operand &y, float *out, int64_t n, F f) {
  if (!x.scalar && !y.scalar) {
    for (int64_t i = 0; i < n; ++i)
      out[i] = f(x.p[i], y.p[i]);
  } else if (x.scalar && !y.scalar) {
    const float v = x.p[0];
    for (int64_t i = 0; i < n; ++i)
      out[i] = f(v, y.p[i]);
  } else if (!x.scalar) {
    const float v = y.p[0];
    for (int64_t i = 0; i < n; ++i)
      out[i] = f(x.p[i], v);
  } else {
    const float v = f(x.p[0], y.p[0]);
    for (int64_t i = 0; i < n; ++i)
      out[i] = v;
  }
}

template <Arith K>
void binaryLoop(const Operand &x, const Operand &y, float *out, int64_t n) {
  loop2(x, y, out, n,
        [](float a, float b) { return applyArith<K, float>(a, b); });
}

void runBinary(Arith k, const Operand &x, const Operand &y, float *out,
               int64_t n) {
  switch (k) {
  case Arith::Add:
    return binaryLoop<Arith::Add>(x, y, out, n);
  case Arith::Sub:
    return binaryLoop<Arith::Sub>(x, y, out, n);
  case Arith::Mul:
    return binaryLoop<Arith::Mul>(x, y, out, n);
  case Arith::Div:
    return binaryLoop<Arith::Div>(x, y, out, n);
  case Arith::Pow:
    return binaryLoop<Arith::Pow>(x, y, out, n);
  case Arith::Max:
    return binaryLoop<Arith::Max>(x, y, out, n);
  case Arith::Min:
    return binaryLoop<Arith::Min>(x, y, out, n);
  }
}

void runUnary(Unary k, const Operand &x, float *out, int64_t n) {
  if (x.scalar)
    for (int64_t i = 0; i < n; ++i)
      out[i] = x.p[0];
  unary(k, x.scalar ? out : x.p, out, n);
}

constexpr int64_t kBlock = 512;

Status fusedElementwiseKernel(const std::vector<TensorRef> &inputs,
                              const std::vector<TensorRef> &outputs,
                              const AttributeMap &attrs) {
  const char *op = "fused_elementwise";
  std::vector<Step> steps;
  {
    std::stringstream names(attrs.getString("steps"));
    std::string name;
    while (std::getline(names, name, ',')) {
      Code code;
      if (!codeNamed(name, code))
        return Status::error(std::string(op) + ": unknown step '" + name +
                             "'; the plan was compiled by a newer "
                             "colossal-opt: recompile it with this one");
      steps.push_back({code, 0, 0});
    }
  }
  const std::vector<int64_t> args = attrs.getInts("args");
  const std::vector<int64_t> outs = attrs.getInts("yields");
  const int64_t numInputs = static_cast<int64_t>(inputs.size());
  if (steps.empty() || args.size() != 2 * steps.size() ||
      outs.size() != outputs.size() || outputs.empty())
    return Status::error(std::string(op) + ": " + std::to_string(steps.size()) +
                         " steps need 2 args each and one output index per "
                         "result (got " +
                         std::to_string(args.size()) + " args, " +
                         std::to_string(outs.size()) + " output indices for " +
                         std::to_string(outputs.size()) + " results)");
  const int64_t n = outputs[0].numel();
  for (size_t s = 0; s < steps.size(); ++s) {
    const int64_t limit = numInputs + static_cast<int64_t>(s);
    steps[s].a = args[2 * s];
    steps[s].b = args[2 * s + 1];
    bool ok = steps[s].a >= 0 && steps[s].a < limit &&
              (steps[s].code.binary ? steps[s].b >= 0 && steps[s].b < limit
                                    : steps[s].b == -1);
    if (!ok)
      return Status::error(std::string(op) + ": step " + std::to_string(s) +
                           " reads a value that is not an input or an "
                           "earlier step");
  }
  for (const TensorRef &in : inputs) {
    if (in.dtype != DType::F32)
      return unsupported(op, in.dtype);
    if (in.numel() != n && in.numel() != 1)
      return Status::error(std::string(op) + ": input " +
                           shapeString(in.shape) + " has neither the " +
                           std::to_string(n) + " elements of the region nor 1");
  }
  for (size_t o = 0; o < outputs.size(); ++o) {
    if (outputs[o].dtype != DType::F32)
      return unsupported(op, outputs[o].dtype);
    if (outputs[o].numel() != n || outs[o] < 0 ||
        outs[o] >= static_cast<int64_t>(steps.size()))
      return Status::error(std::string(op) + ": result " + std::to_string(o) +
                           " must be a step's value over the region's " +
                           std::to_string(n) + " elements");
  }
  const int64_t work = n * static_cast<int64_t>(steps.size());
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  parallelRange(blocks, work, [&](int64_t lo, int64_t hi) {
    std::vector<float> values(steps.size() * kBlock);
    for (int64_t blk = lo; blk < hi; ++blk) {
      const int64_t begin = blk * kBlock;
      const int64_t len = std::min(kBlock, n - begin);
      auto operand = [&](int64_t v) -> Operand {
        if (v < numInputs) {
          const TensorRef &in = inputs[v];
          return in.numel() == 1 && n != 1
                     ? Operand{in.as<float>(), true}
                     : Operand{in.as<float>() + begin, false};
        }
        return Operand{values.data() + (v - numInputs) * kBlock, false};
      };
      for (size_t s = 0; s < steps.size(); ++s) {
        float *out = values.data() + s * kBlock;
        const Code &code = steps[s].code;
        if (code.binary)
          runBinary(code.arith, operand(steps[s].a), operand(steps[s].b), out,
                    len);
        else
          runUnary(code.unary, operand(steps[s].a), out, len);
      }
      for (size_t o = 0; o < outputs.size(); ++o)
        std::memcpy(outputs[o].as<float>() + begin,
                    values.data() + outs[o] * kBlock,
                    static_cast<size_t>(len) * sizeof(float));
    }
  });
  return Status::ok();
}

} // namespace

void appendFusedElementwiseKernels(std::vector<KernelEntry> &table) {
  table.push_back({"fused_elementwise", &fusedElementwiseKernel});
}

} // namespace colossal::rt::cpu
