//===- CudaKernelParityTest.cpp - Every CUDA kernel against the CPU's -----===//
//
// Each case runs one op on random inputs through the CPU kernel and through
// the CUDA backend (device tensors, copies both ways) and compares the
// results: fp32 within 1e-5 relative, fp16/bf16 within their rounding.
// Outputs start from the same random bytes on both sides, so ops that read
// their outputs (the ring attention blocks) see the same state.
//
// Run with --gpu for the CudaKernels suite; without a CUDA device it exits
// 77 (ctest: skipped) after saying so.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/CpuKernels.h"
#include "runtime/backends/cuda/CudaBackend.h"
#include "runtime/backends/cuda/CudaKernels.h"
#include "runtime/core/Float16.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace colossal::rt {
namespace {

//===----------------------------------------------------------------------===//
// Tensors
//===----------------------------------------------------------------------===//

struct Tensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;

  Tensor() = default;
  Tensor(DType t, std::vector<int64_t> s) : dtype(t), shape(std::move(s)) {
    bytes.assign(size_t(numElements(shape)) * dtypeSize(t), 0);
  }
  int64_t numel() const { return numElements(shape); }
  TensorRef ref() const {
    return TensorRef{const_cast<uint8_t *>(bytes.data()), dtype, shape};
  }
  double at(int64_t i) const {
    const uint8_t *p = bytes.data() + size_t(i) * dtypeSize(dtype);
    switch (dtype) {
    case DType::F32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::F16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return halfToFloat(v);
    }
    case DType::BF16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return bf16ToFloat(v);
    }
    case DType::I64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      return double(v);
    }
    case DType::I32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::Bool:
      return p[0];
    }
    return 0;
  }
  void set(int64_t i, double v) {
    uint8_t *p = bytes.data() + size_t(i) * dtypeSize(dtype);
    switch (dtype) {
    case DType::F32: {
      float f = float(v);
      std::memcpy(p, &f, 4);
      break;
    }
    case DType::F16: {
      uint16_t h = floatToHalf(float(v));
      std::memcpy(p, &h, 2);
      break;
    }
    case DType::BF16: {
      uint16_t h = floatToBf16(float(v));
      std::memcpy(p, &h, 2);
      break;
    }
    case DType::I64: {
      int64_t x = int64_t(v);
      std::memcpy(p, &x, 8);
      break;
    }
    case DType::I32: {
      int32_t x = int32_t(v);
      std::memcpy(p, &x, 4);
      break;
    }
    case DType::Bool:
      p[0] = v != 0;
      break;
    }
  }
};

/// Random values: floats uniform in [lo, hi), integers in [lo, hi), bools
/// half true.
Tensor random(DType t, std::vector<int64_t> shape, unsigned seed,
              double lo = -1, double hi = 1) {
  Tensor r(t, std::move(shape));
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  for (int64_t i = 0; i < r.numel(); ++i) {
    double v = dist(gen);
    if (t == DType::I64 || t == DType::I32)
      v = std::floor(v);
    if (t == DType::Bool)
      v = v > (lo + hi) / 2;
    r.set(i, v);
  }
  return r;
}

//===----------------------------------------------------------------------===//
// Cases
//===----------------------------------------------------------------------===//

struct Case {
  std::string op;
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs; // shapes and dtypes; random initial bytes
  AttributeMap attrs;
  std::string label;
};

double tolerance(DType t) {
  return t == DType::F16 ? 4e-3 : t == DType::BF16 ? 2e-2 : 1e-5;
}

/// Runs `c` on both backends; an empty string when they agree.
std::string compare(Backend &cuda, Case c) {
  // The same starting bytes in the outputs on both sides.
  for (size_t o = 0; o < c.outputs.size(); ++o)
    c.outputs[o] = random(c.outputs[o].dtype, c.outputs[o].shape,
                          1000 + unsigned(o), -1, 1);
  std::vector<Tensor> cpuOut = c.outputs;
  std::vector<TensorRef> in, out;
  for (const Tensor &t : c.inputs)
    in.push_back(t.ref());
  for (const Tensor &t : cpuOut)
    out.push_back(t.ref());
  cpu::KernelFn cpuKernel = cpu::findKernel(c.op);
  if (!cpuKernel)
    return "no cpu kernel";
  if (Status s = cpuKernel(in, out, c.attrs); !s)
    return "cpu: " + s.message();

  std::vector<void *> buffers;
  auto device = [&](const Tensor &t, TensorRef &ref) -> Status {
    ref = t.ref();
    void *p = nullptr;
    if (Status s = cuda.allocate(std::max<size_t>(t.bytes.size(), 1), 256, &p);
        !s)
      return s;
    buffers.push_back(p);
    ref.data = p;
    return cuda.copyToDevice(p, t.bytes.data(), t.bytes.size());
  };
  std::vector<TensorRef> din(c.inputs.size()), dout(c.outputs.size());
  std::string failure;
  for (size_t i = 0; i < c.inputs.size() && failure.empty(); ++i)
    if (Status s = device(c.inputs[i], din[i]); !s)
      failure = s.message();
  for (size_t o = 0; o < c.outputs.size() && failure.empty(); ++o)
    if (Status s = device(c.outputs[o], dout[o]); !s)
      failure = s.message();
  if (failure.empty())
    if (Status s = cuda.launch(c.op, din, dout, c.attrs); !s)
      failure = s.message();
  if (failure.empty())
    if (Status s = cuda.synchronize(); !s)
      failure = s.message();
  std::vector<Tensor> gpuOut = c.outputs;
  for (size_t o = 0; o < gpuOut.size() && failure.empty(); ++o)
    if (Status s = cuda.copyToHost(gpuOut[o].bytes.data(), dout[o].data,
                                   gpuOut[o].bytes.size());
        !s)
      failure = s.message();
  for (void *p : buffers)
    cuda.release(p);
  if (!failure.empty())
    return "cuda: " + failure;

  for (size_t o = 0; o < gpuOut.size(); ++o) {
    const double tol = tolerance(gpuOut[o].dtype);
    double scale = 0;
    for (int64_t i = 0; i < cpuOut[o].numel(); ++i)
      if (std::isfinite(cpuOut[o].at(i)))
        scale = std::max(scale, std::fabs(cpuOut[o].at(i)));
    for (int64_t i = 0; i < cpuOut[o].numel(); ++i) {
      const double want = cpuOut[o].at(i), got = gpuOut[o].at(i);
      if (std::isnan(want) && std::isnan(got))
        continue;
      if (want == got)
        continue;
      // Relative to the element, with a floor at the output's scale for
      // values that cancel to near zero.
      const double err = std::fabs(got - want);
      if (!(err <= tol * std::max(std::fabs(want), 1e-3 * scale) + 1e-30) &&
          !(err <= tol * 1e-2 * std::max(scale, 1.0)))
        return "output " + std::to_string(o) + " element " + std::to_string(i) +
               ": cuda " + std::to_string(got) + ", cpu " +
               std::to_string(want);
    }
  }
  return "";
}

AttributeMap
attrs(std::initializer_list<std::pair<const char *, Attribute>> l) {
  AttributeMap m;
  for (const auto &[k, v] : l)
    m.set(k, v);
  return m;
}

const DType kFloats[] = {DType::F32, DType::F16, DType::BF16};

/// Every case: each op in each dtype it takes, with broadcasting, odd
/// sizes (not multiples of a warp or block) and the attribute variants.
std::vector<Case> allCases() {
  std::vector<Case> cases;
  unsigned seed = 1;
  auto add = [&](std::string op, std::vector<Tensor> in,
                 std::vector<Tensor> out, AttributeMap a = {},
                 std::string label = "") {
    cases.push_back({std::move(op), std::move(in), std::move(out), std::move(a),
                     std::move(label)});
  };
  auto rnd = [&](DType t, std::vector<int64_t> s, double lo = -1,
                 double hi = 1) {
    return random(t, std::move(s), seed++, lo, hi);
  };
  auto out = [](DType t, std::vector<int64_t> s) {
    return Tensor(t, std::move(s));
  };

  // Unary.
  for (DType t : kFloats) {
    for (const char *op : {"neg", "abs", "relu", "exp", "tanh", "erf", "sin",
                           "cos", "sigmoid", "silu", "floor", "ceil", "round"})
      add(op, {rnd(t, {3, 333}, -3, 3)}, {out(t, {3, 333})});
    for (const char *op : {"sqrt", "rsqrt", "log", "reciprocal"})
      add(op, {rnd(t, {1001}, 0.1, 4)}, {out(t, {1001})});
    add("gelu", {rnd(t, {777}, -4, 4)}, {out(t, {777})},
        attrs({{"approximate", std::string("none")}}), "erf");
    add("gelu", {rnd(t, {777}, -4, 4)}, {out(t, {777})},
        attrs({{"approximate", std::string("tanh")}}), "tanh");
  }
  for (DType t : {DType::I64, DType::I32})
    for (const char *op : {"neg", "abs", "relu"})
      add(op, {rnd(t, {257}, -100, 100)}, {out(t, {257})});
  add("not", {rnd(DType::Bool, {513})}, {out(DType::Bool, {513})});
  const DType all[] = {DType::F32, DType::F16, DType::BF16,
                       DType::I64, DType::I32, DType::Bool};
  for (DType from : all)
    for (DType to : all)
      if (from != to)
        add("cast", {rnd(from, {301}, -300, 300)}, {out(to, {301})});

  // Binary, with broadcasting.
  for (DType t : kFloats) {
    for (const char *op : {"add", "sub", "mul", "div", "max", "min"}) {
      add(op, {rnd(t, {4, 5, 67}), rnd(t, {4, 5, 67}, 0.5, 2)},
          {out(t, {4, 5, 67})}, {}, "same shape");
      add(op, {rnd(t, {4, 1, 67}), rnd(t, {5, 1}, 0.5, 2)},
          {out(t, {4, 5, 67})}, {}, "broadcast");
    }
    add("pow", {rnd(t, {3, 129}, 0.1, 3), rnd(t, {129}, -2, 2)},
        {out(t, {3, 129})});
    for (const char *p : {"eq", "ne", "lt", "le", "gt", "ge"})
      add("cmp", {rnd(t, {6, 45}), rnd(t, {1, 45})},
          {out(DType::Bool, {6, 45})}, attrs({{"predicate", std::string(p)}}),
          p);
    add("where",
        {rnd(DType::Bool, {7, 1, 33}), rnd(t, {7, 9, 33}), rnd(t, {9, 1})},
        {out(t, {7, 9, 33})});
  }
  for (DType t : {DType::I64, DType::I32})
    for (const char *op : {"add", "sub", "mul", "div", "max", "min"})
      add(op, {rnd(t, {3, 50}, -9, 9), rnd(t, {50}, -9, 9)}, {out(t, {3, 50})});
  for (const char *op : {"and", "or"})
    add(op, {rnd(DType::Bool, {5, 40}), rnd(DType::Bool, {40})},
        {out(DType::Bool, {5, 40})});

  // fused_elementwise: an AdamW-like chain with scalars and two results.
  add("fused_elementwise",
      {rnd(DType::F32, {1000}), rnd(DType::F32, {1000}, 0.1, 1),
       rnd(DType::F32, {1}, 0.5, 1)},
      {out(DType::F32, {1000}), out(DType::F32, {1000})},
      attrs({{"steps", std::string("mul,add,sqrt,div,exp,neg")},
             {"args",
              std::vector<int64_t>{0, 2, 3, 1, 4, -1, 0, 5, 6, -1, 7, -1}},
             {"yields", std::vector<int64_t>{3, 5}}}));

  // Reductions.
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::I64}) {
    for (const char *op : {"reduce_sum", "reduce_mean", "reduce_max"}) {
      add(op, {rnd(t, {6, 300, 5}, -5, 5)}, {out(t, {6, 5})},
          attrs({{"axes", std::vector<int64_t>{1}}}), "middle axis, by block");
      add(op, {rnd(t, {6, 7, 5}, -5, 5)}, {out(t, {7})},
          attrs({{"axes", std::vector<int64_t>{0, 2}}}),
          "outer axes, by thread");
      add(op, {rnd(t, {3, 4}, -5, 5)}, {out(t, {})},
          attrs({{"axes", std::vector<int64_t>{0, 1}}}), "all");
    }
    add("topk", {rnd(t, {6, 300, 5}, -5, 5)},
        {out(t, {6, 7, 5}), out(DType::I64, {6, 7, 5})},
        attrs({{"k", int64_t(7)}, {"axis", int64_t(1)}}),
        "largest, middle axis");
    add("topk", {rnd(t, {4, 9}, -5, 5)},
        {out(t, {4, 3}), out(DType::I64, {4, 3})},
        attrs({{"k", int64_t(3)},
               {"axis", int64_t(-1)},
               {"smallest", int64_t(1)}}),
        "smallest, last axis");
  }

  // Softmax and the norms.
  for (DType t : kFloats) {
    add("softmax", {rnd(t, {5, 777}, -8, 8)}, {out(t, {5, 777})},
        attrs({{"axis", int64_t(-1)}}), "last axis");
    add("softmax", {rnd(t, {3, 40, 6}, -8, 8)}, {out(t, {3, 40, 6})},
        attrs({{"axis", int64_t(1)}}), "strided axis");
    add("log_softmax", {rnd(t, {9, 130}, -8, 8)}, {out(t, {9, 130})},
        attrs({{"axis", int64_t(-1)}}));
    add("layer_norm", {rnd(t, {11, 96}, -3, 5), rnd(t, {96}), rnd(t, {96})},
        {out(t, {11, 96})}, attrs({{"axis", int64_t(-1)}, {"epsilon", 1e-5}}),
        "scale and bias");
    add("layer_norm", {rnd(t, {4, 3, 50}), rnd(t, {3, 50})},
        {out(t, {4, 3, 50})}, attrs({{"axis", int64_t(1)}, {"epsilon", 1e-5}}),
        "two dims, no bias");
    add("rms_norm", {rnd(t, {7, 1000}), rnd(t, {1000})}, {out(t, {7, 1000})},
        attrs({{"axis", int64_t(-1)}, {"epsilon", 1e-6}}));
    add("batch_norm",
        {rnd(t, {2, 5, 7, 9}), rnd(t, {5}), rnd(t, {5}), rnd(t, {5}),
         rnd(t, {5}, 0.5, 2)},
        {out(t, {2, 5, 7, 9})}, attrs({{"epsilon", 1e-5}}));
  }

  // Contractions.
  for (DType t : kFloats) {
    add("matmul", {rnd(t, {37, 65}), rnd(t, {65, 29})}, {out(t, {37, 29})}, {},
        "2-D");
    add("matmul", {rnd(t, {3, 4, 17, 33}), rnd(t, {3, 4, 33, 9})},
        {out(t, {3, 4, 17, 9})}, {}, "batched");
    add("matmul", {rnd(t, {6, 17, 33}), rnd(t, {33, 9})}, {out(t, {6, 17, 9})},
        {}, "shared rhs");
    add("matmul", {rnd(t, {2, 1, 5, 8}), rnd(t, {1, 3, 8, 4})},
        {out(t, {2, 3, 5, 4})}, {}, "cross broadcast");
    add("matmul", {rnd(t, {4, 33, 17}), rnd(t, {4, 9, 33})},
        {out(t, {4, 17, 9})},
        attrs({{"transpose_lhs", int64_t(1)}, {"transpose_rhs", int64_t(1)}}),
        "transposed operands");
    add("matmul", {rnd(t, {33}), rnd(t, {33, 9})}, {out(t, {9})}, {},
        "vector lhs");
    add("linear", {rnd(t, {5, 7, 48}), rnd(t, {48, 40}), rnd(t, {40})},
        {out(t, {5, 7, 40})}, {}, "bias epilogue");
    add("linear", {rnd(t, {9, 48}), rnd(t, {40, 48})}, {out(t, {9, 40})},
        attrs({{"transpose_weight", int64_t(1)}}), "transposed weight");
    add("linear", {rnd(t, {9, 48}), rnd(t, {48, 40}), rnd(t, {1})},
        {out(t, {9, 40})}, {}, "scalar bias");
  }
  add("matmul",
      {rnd(DType::I64, {2, 5, 7}, -5, 5), rnd(DType::I64, {7, 3}, -5, 5)},
      {out(DType::I64, {2, 5, 3})}, {}, "integer");

  // Data movement.
  for (DType t : {DType::F32, DType::BF16, DType::I64, DType::Bool}) {
    add("reshape", {rnd(t, {6, 10})}, {out(t, {3, 20})});
    add("transpose", {rnd(t, {4, 5, 6, 7})}, {out(t, {6, 4, 7, 5})},
        attrs({{"permutation", std::vector<int64_t>{2, 0, 3, 1}}}));
    add("slice", {rnd(t, {9, 12})}, {out(t, {3, 4})},
        attrs({{"starts", std::vector<int64_t>{1, 11}},
               {"limits", std::vector<int64_t>{8, -1}},
               {"steps", std::vector<int64_t>{3, -3}}}),
        "strided and reversed");
    add("expand", {rnd(t, {3, 1, 5})}, {out(t, {2, 3, 4, 5})});
    add("concat", {rnd(t, {2, 3, 4}), rnd(t, {2, 5, 4}), rnd(t, {2, 1, 4})},
        {out(t, {2, 9, 4})}, attrs({{"axis", int64_t(1)}}));
    add("split", {rnd(t, {2, 9, 4})},
        {out(t, {2, 3, 4}), out(t, {2, 5, 4}), out(t, {2, 1, 4})},
        attrs({{"axis", int64_t(1)}}));
    add("trilu", {rnd(t, {2, 6, 7})}, {out(t, {2, 6, 7})},
        attrs({{"upper", int64_t(0)}, {"diagonal", int64_t(1)}}), "lower");
    add("trilu", {rnd(t, {2, 6, 7})}, {out(t, {2, 6, 7})},
        attrs({{"upper", int64_t(1)}, {"diagonal", int64_t(-2)}}), "upper");
  }
  for (DType t : kFloats) {
    add("gather", {rnd(t, {50, 16}), rnd(DType::I64, {4, 7}, -50, 50)},
        {out(t, {4, 7, 16})}, attrs({{"axis", int64_t(0)}}), "embedding");
    add("gather", {rnd(t, {3, 10, 4}), rnd(DType::I32, {6}, 0, 10)},
        {out(t, {3, 6, 4})}, attrs({{"axis", int64_t(1)}}), "middle axis");
  }
  for (DType t : {DType::F32}) // 16-bit adds round per atomic on cuda
    add("scatter_add_rows", {rnd(DType::I64, {300}, 0, 20), rnd(t, {300, 24})},
        {out(t, {20, 24})});
  {
    Tensor counter(DType::I64, {});
    counter.set(0, 12345);
    add("random_keep", {counter}, {out(DType::Bool, {4, 999})},
        attrs({{"ratio", 0.3}, {"seed", int64_t(7)}, {"stream", int64_t(3)}}));
  }

  // Attention: causal and masked, forward and backward, and the ring
  // blocks.
  for (DType t : kFloats) {
    const int64_t B = 2, H = 3, S = 37, D = 40;
    auto qkv = [&] { return rnd(t, {B, H, S, D}); };
    add("attention", {qkv(), qkv(), qkv()}, {out(t, {B, H, S, D})},
        attrs({{"causal", int64_t(1)}}), "causal");
    add("attention", {qkv(), qkv(), qkv(), rnd(DType::Bool, {B, 1, S, S})},
        {out(t, {B, H, S, D})}, attrs({{"scale", 0.3}}), "bool mask");
    add("attention",
        {rnd(t, {B, H, 5, D}), qkv(), qkv(), rnd(DType::F32, {5, S}, -2, 0)},
        {out(t, {B, H, 5, D})}, {}, "float mask, short queries");
    // The backward: out must be the forward's for the identity to hold;
    // the CPU computes it here first.
    Tensor q = qkv(), k = qkv(), v = qkv(), o(t, {B, H, S, D});
    {
      std::vector<TensorRef> in = {q.ref(), k.ref(), v.ref()}, res = {o.ref()};
      cpu::findKernel("attention")(in, res, attrs({{"causal", int64_t(1)}}));
    }
    add("attention_backward", {q, k, v, o, qkv()},
        {out(t, {B, H, S, D}), out(t, {B, H, S, D}), out(t, {B, H, S, D})},
        attrs({{"causal", int64_t(1)}}), "causal");
  }
  {
    const int64_t B = 2, S = 16, D = 32, N = 3 * S;
    auto r = [&](std::vector<int64_t> s) { return rnd(DType::F32, s); };
    add("attention_block", {r({B, S, D}), r({B, S, D}), r({B, S, D})},
        {out(DType::F32, {B, S, D}), out(DType::F32, {B, S}),
         out(DType::F32, {B, S})},
        attrs({{"causal", int64_t(1)},
               {"q_offset", int64_t(S)},
               {"k_offset", int64_t(0)},
               {"init", int64_t(1)},
               {"kv_length", int64_t(N)}}),
        "first block");
    Tensor l = random(DType::F32, {B, S}, 99, 0.5, 2);
    add("attention_block_finish", {r({B, S, D}), r({B, S}), l},
        {out(DType::F32, {B, S, D}), out(DType::F32, {B, S})});
    add("attention_delta", {r({B, S, D}), r({B, S, D})},
        {out(DType::F32, {B, S})});
    add("attention_block_backward",
        {r({B, S, D}), r({B, S, D}), r({B, S, D}), r({B, S, D}),
         random(DType::F32, {B, S}, 98, 1, 3), r({B, S})},
        {out(DType::F32, {B, S, D}), out(DType::F32, {B, S, D}),
         out(DType::F32, {B, S, D})},
        attrs({{"causal", int64_t(1)},
               {"q_offset", int64_t(2 * S)},
               {"k_offset", int64_t(S)},
               {"init_q", int64_t(0)},
               {"init_kv", int64_t(1)},
               {"kv_length", int64_t(N)}}),
        "accumulating");
  }
  // Convolutions and pools: groups, strides, dilations, asymmetric pads.
  for (DType t : kFloats) {
    const AttributeMap conv =
        attrs({{"strides", std::vector<int64_t>{2, 1}},
               {"padding", std::vector<int64_t>{1, 0, 2, 1}},
               {"dilations", std::vector<int64_t>{1, 2}},
               {"groups", int64_t(2)}});
    // x [2, 4, 9, 8], w [6, 2, 3, 3]: oh = (9+3-3)/2+1 = 5, ow = (8+1-5)+1 = 5.
    add("conv2d", {rnd(t, {2, 4, 9, 8}), rnd(t, {6, 2, 3, 3}), rnd(t, {6})},
        {out(t, {2, 6, 5, 5})}, conv, "grouped, strided, dilated");
    add("conv2d_backward_input", {rnd(t, {2, 6, 5, 5}), rnd(t, {6, 2, 3, 3})},
        {out(t, {2, 4, 9, 8})}, conv);
    add("conv2d_backward_weight", {rnd(t, {2, 4, 9, 8}), rnd(t, {2, 6, 5, 5})},
        {out(t, {6, 2, 3, 3})}, conv);
    const AttributeMap pool =
        attrs({{"kernel", std::vector<int64_t>{3, 2}},
               {"strides", std::vector<int64_t>{2, 2}},
               {"padding", std::vector<int64_t>{1, 0, 1, 1}}});
    // x [2, 3, 9, 8]: oh = (9+2-3)/2+1 = 5, ow = (8+1-2)/2+1 = 4.
    add("max_pool2d", {rnd(t, {2, 3, 9, 8})}, {out(t, {2, 3, 5, 4})}, pool);
    add("max_pool2d_backward", {rnd(t, {2, 3, 9, 8}), rnd(t, {2, 3, 5, 4})},
        {out(t, {2, 3, 9, 8})}, pool);
    for (int64_t include : {0, 1}) {
      AttributeMap a = pool;
      a.set("count_include_pad", include);
      add("avg_pool2d", {rnd(t, {2, 3, 9, 8})}, {out(t, {2, 3, 5, 4})}, a,
          include ? "padding counted" : "padding not counted");
    }
  }
  return cases;
}

//===----------------------------------------------------------------------===//
// Tests
//===----------------------------------------------------------------------===//

/// CPU ops the CUDA backend does not have yet; a new CPU op must be added
/// to the CUDA backend or here.
const std::set<std::string> kNotYetOnCuda = {};

TEST(CudaNoGpu, EveryCpuOpHasACudaKernelButTheListedOnes) {
  std::set<std::string> cuda;
  for (const std::string &op : cuda::kernelNames())
    cuda.insert(op);
  for (const std::string &op : cpu::kernelNames()) {
    if (!kNotYetOnCuda.count(op)) {
      EXPECT_TRUE(cuda.count(op)) << "no cuda kernel for '" << op << "'";
    }
  }
  for (const std::string &op : kNotYetOnCuda)
    EXPECT_FALSE(cuda.count(op))
        << op << " is on cuda now: drop it from the list";
}

TEST(CudaNoGpu, EveryCudaKernelHasAParityCase) {
  std::set<std::string> covered;
  for (const Case &c : allCases())
    covered.insert(c.op);
  for (const std::string &op : cuda::kernelNames())
    EXPECT_TRUE(covered.count(op)) << "no parity case for '" << op << "'";
}

// The cases themselves are valid: the CPU kernels accept every one (so a
// failure on the GPU is the CUDA kernel's).
TEST(CudaNoGpu, EveryCaseRunsOnTheCpu) {
  for (const Case &c : allCases()) {
    std::vector<Tensor> outs = c.outputs;
    std::vector<TensorRef> in, out;
    for (const Tensor &t : c.inputs)
      in.push_back(t.ref());
    for (const Tensor &t : outs)
      out.push_back(t.ref());
    Status s = cpu::findKernel(c.op)(in, out, c.attrs);
    EXPECT_TRUE(s) << c.op << " (" << c.label << "): " << s.message();
  }
}

TEST(CudaNoGpu, WithoutADeviceTheBackendSaysSo) {
  if (cuda::deviceCount() > 0)
    GTEST_SKIP() << "this machine has a CUDA device";
  std::unique_ptr<Backend> backend;
  Status s = createBackend("cuda", BackendOptions{}, backend);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("no CUDA device was found"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("--backend=cpu"), std::string::npos);
  EXPECT_EQ(defaultBackendName(), "cpu");
}

TEST(CudaKernels, MatchTheCpuKernels) {
  std::unique_ptr<Backend> backend;
  Status s = createBackend("cuda", BackendOptions{}, backend);
  ASSERT_TRUE(s) << s.message();
  int failures = 0;
  const std::vector<Case> cases = allCases();
  for (const Case &c : cases) {
    std::string dtypes;
    for (const Tensor &t : c.inputs)
      dtypes += std::string(dtypes.empty() ? "" : ",") + dtypeName(t.dtype);
    const std::string what =
        c.op + " (" + dtypes + (c.label.empty() ? "" : "; " + c.label) + ")";
    const std::string why = compare(*backend, c);
    if (!why.empty()) {
      ++failures;
      ADD_FAILURE() << what << ": " << why;
    }
  }
  std::printf("%zu cases, %d differ\n", cases.size(), failures);
  EXPECT_EQ(backend->allocatedBytes(), 0u);
}

TEST(CudaKernels, AnIndexOutOfRangeIsAnErrorNotAWrongAnswer) {
  std::unique_ptr<Backend> backend;
  ASSERT_TRUE(createBackend("cuda", BackendOptions{}, backend));
  Case c{"gather",
         {random(DType::F32, {10, 4}, 1), Tensor(DType::I64, {3})},
         {Tensor(DType::F32, {3, 4})},
         attrs({{"axis", int64_t(0)}}),
         ""};
  c.inputs[1].set(0, 2);
  c.inputs[1].set(1, 10); // out of range
  const std::string why = compare(*backend, c);
  EXPECT_NE(why.find("outside the gathered dimension"), std::string::npos)
      << why;
}

} // namespace
} // namespace colossal::rt

int main(int argc, char **argv) {
  bool gpu = false;
  std::vector<char *> args;
  for (int i = 0; i < argc; ++i) {
    if (std::string(argv[i]) == "--gpu")
      gpu = true;
    else
      args.push_back(argv[i]);
  }
  if (gpu) {
    std::string why;
    if (colossal::rt::cuda::deviceCount(&why) == 0) {
      std::printf("SKIPPED: the CUDA kernel tests need a GPU, and this "
                  "machine has none (%s)\n",
                  why.c_str());
      return 77;
    }
  }
  int count = static_cast<int>(args.size());
  ::testing::InitGoogleTest(&count, args.data());
  return RUN_ALL_TESTS();
}
