//===- FusedElementwise.cpp - A chain of float32 elementwise ops, one loop ===//
//
// fused_elementwise (colossal-fuse-elementwise): `steps` ("mul,add,sqrt"),
// `args` (two per step: an input's index, or number-of-inputs + an earlier
// step's; -1 for a unary step's second) and `yields` (the step each
// result is). Every input has the region's element count or one element (a
// scalar); the steps run over blocks of the region that stay in L1, so the
// values between them are never written to memory. Each step computes as
// the op's own kernel does (the same VecMath functions and libm calls).
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/KernelUtil.h"
#include "runtime/backends/cpu/VecMath.h"

#include <cmath>
#include <sstream>

namespace colossal::rt::cpu {
namespace {

enum class Code {
  Add,
  Sub,
  Mul,
  Div,
  Pow,
  Max,
  Min,
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
  Floor,
  Ceil,
  Round,
  Sigmoid,
  Silu,
};

struct OpName {
  const char *name;
  Code code;
};

constexpr OpName kOps[] = {
    {"add", Code::Add},
    {"sub", Code::Sub},
    {"mul", Code::Mul},
    {"div", Code::Div},
    {"pow", Code::Pow},
    {"max", Code::Max},
    {"min", Code::Min},
    {"neg", Code::Neg},
    {"abs", Code::Abs},
    {"relu", Code::Relu},
    {"sqrt", Code::Sqrt},
    {"rsqrt", Code::Rsqrt},
    {"exp", Code::Exp},
    {"log", Code::Log},
    {"tanh", Code::Tanh},
    {"erf", Code::Erf},
    {"sin", Code::Sin},
    {"cos", Code::Cos},
    {"reciprocal", Code::Reciprocal},
    {"floor", Code::Floor},
    {"ceil", Code::Ceil},
    {"round", Code::Round},
    {"sigmoid", Code::Sigmoid},
    {"silu", Code::Silu},
};

constexpr bool isBinary(Code c) { return c <= Code::Min; }

float binary(Code c, float a, float b) {
  switch (c) {
  case Code::Add:
    return a + b;
  case Code::Sub:
    return a - b;
  case Code::Mul:
    return a * b;
  case Code::Div:
    return a / b;
  case Code::Pow:
    return std::pow(a, b);
  case Code::Max: // NaN propagates, as in the max kernel
    return (a > b || a != a) ? a : b;
  default:
    return (a < b || a != a) ? a : b;
  }
}

VecFn vectorized(Code c) {
  switch (c) {
  case Code::Exp:
    return &vecExp;
  case Code::Tanh:
    return &vecTanh;
  case Code::Erf:
    return &vecErf;
  case Code::Sigmoid:
    return &vecSigmoid;
  case Code::Silu:
    return &vecSilu;
  default:
    return nullptr;
  }
}

/// y[i] = f(x[i]) with the op chosen outside the loop, so it vectorizes.
template <class F> void loop1(const float *x, float *y, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = f(x[i]);
}

void unary(Code c, const float *x, float *y, int64_t n) {
  switch (c) {
  case Code::Neg:
    return loop1(x, y, n, [](float v) { return -v; });
  case Code::Abs:
    return loop1(x, y, n, [](float v) { return std::abs(v); });
  case Code::Relu:
    return loop1(x, y, n, [](float v) { return v < 0 ? 0.0f : v; });
  case Code::Sqrt:
    return loop1(x, y, n, [](float v) { return std::sqrt(v); });
  case Code::Rsqrt:
    return loop1(x, y, n, [](float v) { return 1.0f / std::sqrt(v); });
  case Code::Log:
    return loop1(x, y, n, [](float v) { return std::log(v); });
  case Code::Sin:
    return loop1(x, y, n, [](float v) { return std::sin(v); });
  case Code::Cos:
    return loop1(x, y, n, [](float v) { return std::cos(v); });
  case Code::Reciprocal:
    return loop1(x, y, n, [](float v) { return 1.0f / v; });
  case Code::Floor:
    return loop1(x, y, n, [](float v) { return std::floor(v); });
  case Code::Ceil:
    return loop1(x, y, n, [](float v) { return std::ceil(v); });
  default:
    return loop1(x, y, n, [](float v) { return std::nearbyint(v); });
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

void runBinary(Code c, const Operand &x, const Operand &y, float *out,
               int64_t n) {
  switch (c) {
  case Code::Add:
    return loop2(x, y, out, n, [](float a, float b) { return a + b; });
  case Code::Sub:
    return loop2(x, y, out, n, [](float a, float b) { return a - b; });
  case Code::Mul:
    return loop2(x, y, out, n, [](float a, float b) { return a * b; });
  case Code::Div:
    return loop2(x, y, out, n, [](float a, float b) { return a / b; });
  case Code::Pow:
    return loop2(x, y, out, n, [](float a, float b) { return std::pow(a, b); });
  case Code::Max:
    return loop2(x, y, out, n,
                 [](float a, float b) { return binary(Code::Max, a, b); });
  default:
    return loop2(x, y, out, n,
                 [](float a, float b) { return binary(Code::Min, a, b); });
  }
}

void runUnary(Code c, const Operand &x, float *out, int64_t n) {
  if (x.scalar)
    for (int64_t i = 0; i < n; ++i)
      out[i] = x.p[0];
  const float *in = x.scalar ? out : x.p;
  if (VecFn f = vectorized(c))
    return f(in, out, n);
  unary(c, in, out, n);
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
      const OpName *found = nullptr;
      for (const OpName &o : kOps)
        if (name == o.name)
          found = &o;
      if (!found)
        return Status::error(std::string(op) + ": unknown step '" + name +
                             "'; the plan was compiled by a newer "
                             "colossal-opt: recompile it with this one");
      steps.push_back({found->code, 0, 0});
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
              (isBinary(steps[s].code) ? steps[s].b >= 0 && steps[s].b < limit
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
        if (isBinary(steps[s].code))
          runBinary(steps[s].code, operand(steps[s].a), operand(steps[s].b),
                    out, len);
        else
          runUnary(steps[s].code, operand(steps[s].a), out, len);
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
