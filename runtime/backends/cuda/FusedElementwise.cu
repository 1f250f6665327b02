//===- FusedElementwise.cu - A chain of fp32 elementwise ops, one kernel --===//
//
// fused_elementwise (colossal-fuse-elementwise): `steps` ("mul,add,sqrt"),
// `args` (two per step: an input's index, or number-of-inputs + an earlier
// step's; -1 for a unary step's second) and `yields` (the step each result
// is). The chain travels to the kernel as a small program by value; every
// thread evaluates it for its elements in registers and writes only the
// results, so the values between the steps never reach memory. Inputs
// have the region's element count or one element (a scalar). A result may
// overwrite an input (the memory plan's in-place rule): each element is
// read before it is written, by the same thread.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cuda/DeviceUtil.cuh"
#include "runtime/backends/cuda/ElementwiseMath.cuh"

#include <sstream>

namespace colossal::rt::cuda {
namespace {

constexpr int kMaxSteps = 64;
constexpr int kMaxInputs = 32;
constexpr int kMaxResults = 16;

struct Program {
  int numSteps = 0, numInputs = 0, numResults = 0;
  uint8_t binary[kMaxSteps];
  uint8_t code[kMaxSteps]; // an Arith when binary, else a Unary
  int16_t a[kMaxSteps], b[kMaxSteps];
  int16_t yields[kMaxResults];
  const float *inputs[kMaxInputs];
  bool scalar[kMaxInputs];
  float *results[kMaxResults];
};

// Every value index was checked on the host to name an earlier step.
#pragma nv_diag_suppress 549
__global__ void fusedKernel(const __grid_constant__ Program p, int64_t n) {
  COLOSSAL_GRID_STRIDE(i, n) {
    float values[kMaxSteps];
    auto value = [&](int v) -> float {
      if (v < p.numInputs)
        return p.inputs[v][p.scalar[v] ? 0 : i];
      return values[v - p.numInputs];
    };
    for (int s = 0; s < p.numSteps; ++s) {
      const float x = value(p.a[s]);
      values[s] = p.binary[s]
                      ? arithAt(static_cast<Arith>(p.code[s]), x, value(p.b[s]))
                      : unaryAt(static_cast<Unary>(p.code[s]), x);
    }
    for (int o = 0; o < p.numResults; ++o)
      p.results[o][i] = values[p.yields[o]];
  }
}

/// The step named `name`: a binary arithmetic op or a unary one (gelu,
/// which takes an attribute, is never a step).
bool codeNamed(const std::string &name, bool &binary, uint8_t &code) {
  for (int k = 0; k <= static_cast<int>(Arith::Min); ++k)
    if (name == cpu::arithName(static_cast<Arith>(k))) {
      binary = true;
      code = static_cast<uint8_t>(k);
      return true;
    }
  for (int k = 0; k <= static_cast<int>(Unary::Round); ++k) {
    const Unary u = static_cast<Unary>(k);
    if (u != Unary::GeluErf && u != Unary::GeluTanh &&
        name == cpu::unaryName(u)) {
      binary = false;
      code = static_cast<uint8_t>(k);
      return true;
    }
  }
  return false;
}

Status fusedOp(const KernelContext &ctx, const std::vector<TensorRef> &inputs,
               const std::vector<TensorRef> &outputs,
               const AttributeMap &attrs) {
  const char *op = "fused_elementwise";
  Program p;
  {
    std::stringstream names(attrs.getString("steps"));
    std::string name;
    while (std::getline(names, name, ',')) {
      if (p.numSteps == kMaxSteps)
        return Status::error(std::string(op) + ": more than " +
                             std::to_string(kMaxSteps) +
                             " steps in one chain; recompile with a smaller "
                             "colossal-fuse-elementwise{max-span=...}");
      bool binary = false;
      uint8_t code = 0;
      if (!codeNamed(name, binary, code))
        return Status::error(std::string(op) + ": unknown step '" + name +
                             "'; the plan was compiled by a newer "
                             "colossal-opt: recompile it with this one");
      p.binary[p.numSteps] = binary;
      p.code[p.numSteps] = code;
      ++p.numSteps;
    }
  }
  const std::vector<int64_t> args = attrs.getInts("args");
  const std::vector<int64_t> outs = attrs.getInts("yields");
  const int64_t numInputs = static_cast<int64_t>(inputs.size());
  if (p.numSteps == 0 || args.size() != 2 * size_t(p.numSteps) ||
      outs.size() != outputs.size() || outputs.empty())
    return Status::error(std::string(op) + ": " + std::to_string(p.numSteps) +
                         " steps need 2 args each and one output index per "
                         "result (got " +
                         std::to_string(args.size()) + " args, " +
                         std::to_string(outs.size()) + " output indices for " +
                         std::to_string(outputs.size()) + " results)");
  if (numInputs > kMaxInputs || outputs.size() > size_t(kMaxResults))
    return Status::error(std::string(op) + ": a chain of " +
                         std::to_string(numInputs) + " inputs and " +
                         std::to_string(outputs.size()) +
                         " results is more than the cuda kernel takes (" +
                         std::to_string(kMaxInputs) + " and " +
                         std::to_string(kMaxResults) + ")");
  p.numInputs = static_cast<int>(numInputs);
  p.numResults = static_cast<int>(outputs.size());
  const int64_t n = outputs[0].numel();
  for (int s = 0; s < p.numSteps; ++s) {
    const int64_t limit = numInputs + s;
    const int64_t a = args[2 * s], b = args[2 * s + 1];
    const bool ok =
        a >= 0 && a < limit && (p.binary[s] ? b >= 0 && b < limit : b == -1);
    if (!ok)
      return Status::error(std::string(op) + ": step " + std::to_string(s) +
                           " reads a value that is not an input or an "
                           "earlier step");
    p.a[s] = static_cast<int16_t>(a);
    p.b[s] = static_cast<int16_t>(b < 0 ? 0 : b);
  }
  for (int64_t k = 0; k < numInputs; ++k) {
    const TensorRef &in = inputs[k];
    if (in.dtype != DType::F32)
      return unsupported(op, in.dtype);
    if (in.numel() != n && in.numel() != 1)
      return Status::error(std::string(op) + ": input " +
                           shapeString(in.shape) + " has neither the " +
                           std::to_string(n) + " elements of the region nor 1");
    p.inputs[k] = in.as<float>();
    p.scalar[k] = in.numel() == 1 && n != 1;
  }
  for (size_t o = 0; o < outputs.size(); ++o) {
    if (outputs[o].dtype != DType::F32)
      return unsupported(op, outputs[o].dtype);
    if (outputs[o].numel() != n || outs[o] < 0 || outs[o] >= p.numSteps)
      return Status::error(std::string(op) + ": result " + std::to_string(o) +
                           " must be a step's value over the region's " +
                           std::to_string(n) + " elements");
    p.results[o] = outputs[o].as<float>();
    p.yields[o] = static_cast<int16_t>(outs[o]);
  }
  if (n == 0)
    return Status::ok();
  fusedKernel<<<gridFor(ctx, n), kThreads, 0, ctx.stream>>>(p, n);
  return launched(op);
}

} // namespace

void appendFusedKernels(std::vector<KernelEntry> &table) {
  table.push_back({"fused_elementwise", &fusedOp});
}

} // namespace colossal::rt::cuda
