//===- CpuKernelsTest.cpp - Elementwise, cast and normalization kernels ---===//
//
// Hand-computed cases and double-precision references for the registry,
// broadcasting elementwise ops, cast, 16-bit floats, softmax and the norms.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/KernelUtil.h"
#include "test/unit/runtime/CpuKernelTestUtil.h"

#include <algorithm>
#include <limits>

namespace colossal::rt::cpu::test {
namespace {

TEST(CpuRegistry, KnowsEveryGraphOp) {
  for (const char *op :
       {"add",         "sub",        "mul",        "div",        "pow",
        "max",         "min",        "and",        "or",         "cmp",
        "where",       "cast",       "neg",        "abs",        "sqrt",
        "rsqrt",       "exp",        "log",        "tanh",       "erf",
        "sin",         "cos",        "reciprocal", "relu",       "sigmoid",
        "silu",        "not",        "gelu",       "softmax",    "log_softmax",
        "layer_norm",  "rms_norm",   "batch_norm", "matmul",     "linear",
        "attention",   "conv2d",     "max_pool2d", "avg_pool2d", "reduce_sum",
        "reduce_mean", "reduce_max", "reshape",    "transpose",  "slice",
        "concat",      "split",      "gather",     "expand",     "trilu",
        "floor",       "ceil",       "round",      "topk"})
    EXPECT_NE(findKernel(op), nullptr) << op;
  // Gradient ops that colossal-autodiff emits.
  for (const char *op : {"conv2d_backward_input", "conv2d_backward_weight",
                         "max_pool2d_backward", "scatter_add_rows",
                         "random_keep", "attention_backward"})
    EXPECT_NE(findKernel(op), nullptr) << op;
  // The blocks ring attention is made of (runtime/core/Executor.cpp).
  for (const char *op : {"attention_block", "attention_block_finish",
                         "attention_delta", "attention_block_backward"})
    EXPECT_NE(findKernel(op), nullptr) << op;
  // The compiler's fused chains (colossal-fuse-elementwise).
  EXPECT_NE(findKernel("fused_elementwise"), nullptr);
  EXPECT_EQ(findKernel("constant"), nullptr);
  EXPECT_EQ(findKernel("no_such_op"), nullptr);
  std::vector<std::string> names = kernelNames();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(names.size(), 65u);
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

TEST(CpuElementwise, AddBroadcasts) {
  // [2,1,3] + [4,1] -> [2,4,3]: out[i,j,k] = a[i,0,k] + b[j,0].
  Tensor a = f32({2, 1, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = f32({4, 1}, {10, 20, 30, 40});
  Tensor out(DType::F32, {2, 4, 3});
  ASSERT_OK(run("add", {&a, &b}, {&out}));
  std::vector<double> expected;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 3; ++k)
        expected.push_back(a.as<float>()[i * 3 + k] + b.as<float>()[j]);
  expectClose(out.values<float>(), expected, 0, 0);
}

TEST(CpuElementwise, LargeBroadcastSplitsAcrossThreadsCorrectly) {
  // Big enough to be split across threads mid-row.
  Tensor a = randomF32({37, 129, 31}, 1);
  Tensor b = randomF32({129, 1}, 2);
  Tensor out(DType::F32, {37, 129, 31});
  ASSERT_OK(run("mul", {&a, &b}, {&out}));
  std::vector<double> expected(out.numel());
  for (int64_t i = 0; i < out.numel(); ++i)
    expected[i] = double(a.as<float>()[i]) * b.as<float>()[(i / 31) % 129];
  expectClose(out.values<float>(), expected);
}

TEST(CpuElementwise, IntegerDivisionTruncatesAndZeroDivisorGivesZero) {
  Tensor a = i64({6}, {7, -7, 7, -7, 5, std::numeric_limits<int64_t>::min()});
  Tensor b = i64({6}, {2, 2, -2, -2, 0, -1});
  Tensor out(DType::I64, {6});
  ASSERT_OK(run("div", {&a, &b}, {&out}));
  EXPECT_EQ(out.values<int64_t>(),
            (std::vector<int64_t>{3, -3, -3, 3, 0,
                                  std::numeric_limits<int64_t>::min()}));
  Tensor c = i32({4}, {9, -9, 1, 0});
  Tensor d = i32({1}, {-4});
  Tensor out32(DType::I32, {4});
  ASSERT_OK(run("div", {&c, &d}, {&out32}));
  EXPECT_EQ(out32.values<int32_t>(), (std::vector<int32_t>{-2, 2, 0, 0}));
}

TEST(CpuElementwise, MaxMinAndPow) {
  Tensor a = f32({4}, {1, -2, 3, NAN});
  Tensor b = f32({4}, {2, -3, 3, 0});
  Tensor mx(DType::F32, {4}), mn(DType::F32, {4}), pw(DType::F32, {4});
  ASSERT_OK(run("max", {&a, &b}, {&mx}));
  ASSERT_OK(run("min", {&a, &b}, {&mn}));
  ASSERT_OK(run("pow", {&a, &b}, {&pw}));
  expectClose(mx.values<float>(), {2, -2, 3, NAN}, 0, 0);
  expectClose(mn.values<float>(), {1, -3, 3, NAN}, 0, 0);
  expectClose(pw.values<float>(), {1, 1.0 / -8.0, 27, 1});
}

TEST(CpuElementwise, CmpAndWhere) {
  Tensor a = f32({2, 3}, {1, 5, 3, -1, 0, 2});
  Tensor b = f32({3}, {2, 2, 3});
  Tensor lt(DType::Bool, {2, 3}), ge(DType::Bool, {2, 3}),
      eq(DType::Bool, {2, 3});
  ASSERT_OK(run("cmp", {&a, &b}, {&lt}, attrs({{"predicate", "lt"}})));
  ASSERT_OK(run("cmp", {&a, &b}, {&ge}, attrs({{"predicate", "ge"}})));
  ASSERT_OK(run("cmp", {&a, &b}, {&eq}, attrs({{"predicate", "eq"}})));
  EXPECT_EQ(lt.values<uint8_t>(), (std::vector<uint8_t>{1, 0, 0, 1, 1, 1}));
  EXPECT_EQ(ge.values<uint8_t>(), (std::vector<uint8_t>{0, 1, 1, 0, 0, 0}));
  EXPECT_EQ(eq.values<uint8_t>(), (std::vector<uint8_t>{0, 0, 1, 0, 0, 0}));
  EXPECT_FALSE(run("cmp", {&a, &b}, {&lt}, attrs({{"predicate", "lte"}})));

  // where(cond [2,1], x [2,3], y scalar [1]).
  Tensor cond = boolean({2, 1}, {1, 0});
  Tensor y = f32({1}, {-9});
  Tensor out(DType::F32, {2, 3});
  ASSERT_OK(run("where", {&cond, &a, &y}, {&out}));
  expectClose(out.values<float>(), {1, 5, 3, -9, -9, -9}, 0, 0);

  Tensor ia = i64({3}, {1, 2, 3}), ib = i64({3}, {3, 2, 1});
  Tensor ne(DType::Bool, {3});
  ASSERT_OK(run("cmp", {&ia, &ib}, {&ne}, attrs({{"predicate", "ne"}})));
  EXPECT_EQ(ne.values<uint8_t>(), (std::vector<uint8_t>{1, 0, 1}));
}

TEST(CpuElementwise, LogicOps) {
  Tensor a = boolean({4}, {0, 0, 1, 1}), b = boolean({4}, {0, 1, 0, 1});
  Tensor andOut(DType::Bool, {4}), orOut(DType::Bool, {4}),
      notOut(DType::Bool, {4});
  ASSERT_OK(run("and", {&a, &b}, {&andOut}));
  ASSERT_OK(run("or", {&a, &b}, {&orOut}));
  ASSERT_OK(run("not", {&a}, {&notOut}));
  EXPECT_EQ(andOut.values<uint8_t>(), (std::vector<uint8_t>{0, 0, 0, 1}));
  EXPECT_EQ(orOut.values<uint8_t>(), (std::vector<uint8_t>{0, 1, 1, 1}));
  EXPECT_EQ(notOut.values<uint8_t>(), (std::vector<uint8_t>{1, 1, 0, 0}));
}

TEST(CpuElementwise, UnaryMathMatchesLibm) {
  Tensor x = f32({6}, {-2.5f, -0.5f, 0.0f, 0.25f, 1.0f, 3.0f});
  Tensor p = f32({4}, {0.25f, 1.0f, 2.0f, 9.0f});
  auto check = [&](const char *op, const Tensor &in, auto f) {
    Tensor out(DType::F32, in.shape);
    ASSERT_OK(run(op, {&in}, {&out}));
    std::vector<double> expected;
    for (float v : in.values<float>())
      expected.push_back(f(double(v)));
    SCOPED_TRACE(op);
    expectClose(out.values<float>(), expected);
  };
  check("neg", x, [](double v) { return -v; });
  check("abs", x, [](double v) { return std::abs(v); });
  check("relu", x, [](double v) { return v > 0 ? v : 0; });
  check("exp", x, [](double v) { return std::exp(v); });
  check("tanh", x, [](double v) { return std::tanh(v); });
  check("erf", x, [](double v) { return std::erf(v); });
  check("sin", x, [](double v) { return std::sin(v); });
  check("cos", x, [](double v) { return std::cos(v); });
  check("floor", x, [](double v) { return std::floor(v); });
  check("ceil", x, [](double v) { return std::ceil(v); });
  check("round", x, [](double v) { return std::nearbyint(v); });
  check("sigmoid", x, [](double v) { return 1 / (1 + std::exp(-v)); });
  check("silu", x, [](double v) { return v / (1 + std::exp(-v)); });
  check("sqrt", p, [](double v) { return std::sqrt(v); });
  check("rsqrt", p, [](double v) { return 1 / std::sqrt(v); });
  check("log", p, [](double v) { return std::log(v); });
  check("reciprocal", p, [](double v) { return 1 / v; });

  Tensor big = f32({2}, {-200.0f, 200.0f});
  Tensor sig(DType::F32, {2});
  ASSERT_OK(run("sigmoid", {&big}, {&sig}));
  expectClose(sig.values<float>(), {0, 1});

  Tensor ints = i32({3}, {-3, 0, 4});
  Tensor absOut(DType::I32, {3}), reluOut(DType::I32, {3});
  ASSERT_OK(run("abs", {&ints}, {&absOut}));
  ASSERT_OK(run("relu", {&ints}, {&reluOut}));
  EXPECT_EQ(absOut.values<int32_t>(), (std::vector<int32_t>{3, 0, 4}));
  EXPECT_EQ(reluOut.values<int32_t>(), (std::vector<int32_t>{0, 0, 4}));
}

TEST(CpuElementwise, GeluBothForms) {
  Tensor x = randomF32({1000}, 3, -6.0f, 6.0f);
  Tensor exact(DType::F32, {1000}), approx(DType::F32, {1000});
  ASSERT_OK(run("gelu", {&x}, {&exact}, attrs({{"approximate", "none"}})));
  ASSERT_OK(run("gelu", {&x}, {&approx}, attrs({{"approximate", "tanh"}})));
  std::vector<double> e1, e2;
  for (float f : x.values<float>()) {
    const double v = f;
    e1.push_back(v * 0.5 * (1 + std::erf(v / std::sqrt(2.0))));
    e2.push_back(
        0.5 * v *
        (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))));
  }
  expectClose(exact.values<float>(), e1);
  expectClose(approx.values<float>(), e2);
  Tensor none(DType::F32, {1000});
  ASSERT_OK(run("gelu", {&x}, {&none})); // default: exact
  EXPECT_EQ(none.values<float>(), exact.values<float>());
  EXPECT_FALSE(run("gelu", {&x}, {&none}, attrs({{"approximate", "fast"}})));
}

TEST(CpuElementwise, UnsupportedDTypesAreErrors) {
  Tensor ints = i64({2}, {1, 2});
  Tensor out(DType::I64, {2});
  Status s = run("sqrt", {&ints}, {&out});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.message(), "sqrt: int64 is not supported");
  s = run("pow", {&ints, &ints}, {&out});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.message(), "pow: int64 is not supported");
  Tensor flags = boolean({2}, {1, 0});
  Tensor bout(DType::Bool, {2});
  s = run("add", {&flags, &flags}, {&bout});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.message(), "add: bool is not supported");
  Tensor f = f32({2}, {1, 2});
  Tensor fout(DType::F32, {2});
  s = run("reduce_sum", {&flags}, {&bout},
          attrs({{"axes", std::vector<int64_t>{}}}));
  EXPECT_FALSE(s);
  // Mismatched broadcast shapes are errors, not out-of-bounds reads.
  Tensor three = f32({3}, {1, 2, 3});
  EXPECT_FALSE(run("add", {&f, &three}, {&fout}));
}

//===----------------------------------------------------------------------===//
// Cast and 16-bit floats
//===----------------------------------------------------------------------===//

TEST(CpuCast, FloatToIntTruncatesTowardZeroAndToBoolIsNonzero) {
  Tensor x = f32({6}, {-1.7f, 1.7f, -0.5f, 2.5f, -0.0f, NAN});
  Tensor asI64(DType::I64, {6}), asI32(DType::I32, {6}),
      asBool(DType::Bool, {6});
  ASSERT_OK(run("cast", {&x}, {&asI64}));
  ASSERT_OK(run("cast", {&x}, {&asI32}));
  ASSERT_OK(run("cast", {&x}, {&asBool}));
  EXPECT_EQ(asI64.values<int64_t>(), (std::vector<int64_t>{-1, 1, 0, 2, 0, 0}));
  EXPECT_EQ(asI32.values<int32_t>(), (std::vector<int32_t>{-1, 1, 0, 2, 0, 0}));
  EXPECT_EQ(asBool.values<uint8_t>(), (std::vector<uint8_t>{1, 1, 1, 1, 0, 1}));

  Tensor flags = boolean({3}, {1, 0, 1});
  Tensor asF32(DType::F32, {3}), flagsI64(DType::I64, {3});
  ASSERT_OK(run("cast", {&flags}, {&asF32}));
  ASSERT_OK(run("cast", {&flags}, {&flagsI64}));
  expectClose(asF32.values<float>(), {1, 0, 1}, 0, 0);
  EXPECT_EQ(flagsI64.values<int64_t>(), (std::vector<int64_t>{1, 0, 1}));

  Tensor wide = i64({3}, {-5, (int64_t(1) << 32) + 7, 0});
  Tensor narrow(DType::I32, {3}), wideBool(DType::Bool, {3});
  ASSERT_OK(run("cast", {&wide}, {&narrow}));
  ASSERT_OK(run("cast", {&wide}, {&wideBool}));
  EXPECT_EQ(narrow.values<int32_t>(), (std::vector<int32_t>{-5, 7, 0}));
  EXPECT_EQ(wideBool.values<uint8_t>(), (std::vector<uint8_t>{1, 1, 0}));

  Tensor huge = f32({2}, {1e20f, -1e20f});
  Tensor sat(DType::I32, {2});
  ASSERT_OK(run("cast", {&huge}, {&sat}));
  EXPECT_EQ(sat.values<int32_t>(),
            (std::vector<int32_t>{std::numeric_limits<int32_t>::max(),
                                  std::numeric_limits<int32_t>::min()}));
}

TEST(CpuHalf, EveryHalfRoundTripsThroughFloat) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = halfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f))
      continue;
    ASSERT_EQ(floatToHalf(f), h) << "half bits " << h;
  }
  EXPECT_EQ(halfToFloat(0x3C00), 1.0f);
  EXPECT_EQ(halfToFloat(0x0001), std::ldexp(1.0f, -24)); // smallest subnormal
  // Ties round to even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
  EXPECT_EQ(floatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  EXPECT_EQ(floatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  EXPECT_EQ(floatToHalf(70000.0f), 0x7C00); // overflow to infinity
  EXPECT_TRUE(std::isnan(halfToFloat(floatToHalf(NAN))));
}

TEST(CpuHalf, BFloat16RoundsToNearestEven) {
  EXPECT_EQ(floatToBf16(1.0f), 0x3F80);
  // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: even wins.
  EXPECT_EQ(floatToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);
  EXPECT_EQ(floatToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
  EXPECT_EQ(floatToBf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)),
            0x3F81);
  EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBf16(NAN))));
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float f = bf16ToFloat(static_cast<uint16_t>(b));
    if (std::isnan(f))
      continue;
    ASSERT_EQ(floatToBf16(f), b);
  }
}

TEST(CpuHalf, F16AndBf16AddRoundTrip) {
  const std::vector<float> av = {1.5f, -2.25f, 100.0f, 0.125f};
  const std::vector<float> bv = {0.5f, 0.25f, -36.0f, 1.0f};
  for (DType t : {DType::F16, DType::BF16}) {
    SCOPED_TRACE(dtypeName(t));
    auto enc = [&](float f) {
      return t == DType::F16 ? floatToHalf(f) : floatToBf16(f);
    };
    auto dec = [&](uint16_t h) {
      return t == DType::F16 ? halfToFloat(h) : bf16ToFloat(h);
    };
    std::vector<uint16_t> a, b;
    for (size_t i = 0; i < av.size(); ++i) {
      a.push_back(enc(av[i]));
      b.push_back(enc(bv[i]));
    }
    Tensor ta = make(t, {4}, a), tb = make(t, {1, 4}, b);
    Tensor out(t, {1, 4});
    ASSERT_OK(run("add", {&ta, &tb}, {&out}));
    std::vector<double> got;
    for (uint16_t h : out.values<uint16_t>())
      got.push_back(dec(h));
    // All sums are exactly representable in both formats.
    EXPECT_EQ(got, (std::vector<double>{2.0, -2.0, 64.0, 1.125}));
    // Cast to f32 and back.
    Tensor wide(DType::F32, {1, 4}), back(t, {1, 4});
    ASSERT_OK(run("cast", {&out}, {&wide}));
    ASSERT_OK(run("cast", {&wide}, {&back}));
    EXPECT_EQ(back.values<uint16_t>(), out.values<uint16_t>());
  }
}

//===----------------------------------------------------------------------===//
// Softmax and normalization
//===----------------------------------------------------------------------===//

std::vector<double> softmaxRef(const Tensor &x, int64_t rows, int64_t len,
                               bool log) {
  std::vector<double> r;
  for (int64_t i = 0; i < rows; ++i) {
    const float *p = x.as<float>() + i * len;
    double m = *std::max_element(p, p + len), sum = 0;
    for (int64_t j = 0; j < len; ++j)
      sum += std::exp(p[j] - m);
    for (int64_t j = 0; j < len; ++j)
      r.push_back(log ? p[j] - m - std::log(sum) : std::exp(p[j] - m) / sum);
  }
  return r;
}

TEST(CpuNormalization, SoftmaxIsStableAndRowsSumToOne) {
  Tensor x = f32({2, 3}, {1000, 1001, 1002, -1000, 0, 1000});
  Tensor y(DType::F32, {2, 3}), ly(DType::F32, {2, 3});
  ASSERT_OK(run("softmax", {&x}, {&y}, attrs({{"axis", int64_t(-1)}})));
  ASSERT_OK(run("log_softmax", {&x}, {&ly}, attrs({{"axis", int64_t(1)}})));
  expectClose(y.values<float>(), softmaxRef(x, 2, 3, false));
  expectClose(ly.values<float>(), softmaxRef(x, 2, 3, true));
  for (int i = 0; i < 2; ++i) {
    double sum = 0;
    for (int j = 0; j < 3; ++j)
      sum += y.as<float>()[i * 3 + j];
    EXPECT_NEAR(sum, 1.0, 1e-6);
  }

  Tensor big = randomF32({64, 1000}, 4, -20, 20);
  Tensor out(DType::F32, {64, 1000});
  ASSERT_OK(run("softmax", {&big}, {&out}, attrs({{"axis", int64_t(1)}})));
  expectClose(out.values<float>(), softmaxRef(big, 64, 1000, false));
}

TEST(CpuNormalization, SoftmaxOverAnInnerAxis) {
  // Axis 0 of [3, 2]: columns are the rows.
  Tensor x = f32({3, 2}, {1, 4, 2, 5, 3, 9});
  Tensor y(DType::F32, {3, 2});
  ASSERT_OK(run("softmax", {&x}, {&y}, attrs({{"axis", int64_t(0)}})));
  Tensor xt = f32({2, 3}, {1, 2, 3, 4, 5, 9});
  std::vector<double> r = softmaxRef(xt, 2, 3, false);
  expectClose(y.values<float>(), {r[0], r[3], r[1], r[4], r[2], r[5]});
}

TEST(CpuNormalization, LayerNormMatchesDoubleReference) {
  // A large common offset stresses the variance computation.
  const int64_t rows = 6, len = 768;
  Tensor x = randomF32({2, 3, len}, 5, 1000.0f, 1000.5f);
  Tensor scale = randomF32({len}, 6, 0.5f, 1.5f);
  Tensor bias = randomF32({len}, 7);
  Tensor y(DType::F32, {2, 3, len});
  ASSERT_OK(run("layer_norm", {&x, &scale, &bias}, {&y},
                attrs({{"axis", int64_t(2)}, {"epsilon", 1e-5}})));
  std::vector<double> expected;
  for (int64_t r = 0; r < rows; ++r) {
    const float *p = x.as<float>() + r * len;
    double mean = 0, var = 0;
    for (int64_t j = 0; j < len; ++j)
      mean += p[j];
    mean /= len;
    for (int64_t j = 0; j < len; ++j)
      var += (p[j] - mean) * (p[j] - mean);
    var /= len;
    for (int64_t j = 0; j < len; ++j)
      expected.push_back((p[j] - mean) / std::sqrt(var + 1e-5) *
                             scale.as<float>()[j] +
                         bias.as<float>()[j]);
  }
  expectClose(y.values<float>(), expected, 1e-4, 1e-4);

  // Normalizing over the last two dims, no bias, negative axis.
  Tensor x2 = randomF32({2, 3, 4}, 8);
  Tensor s2 = randomF32({3, 4}, 9);
  Tensor y2(DType::F32, {2, 3, 4});
  ASSERT_OK(run("layer_norm", {&x2, &s2}, {&y2},
                attrs({{"axis", int64_t(-2)}, {"epsilon", 1e-3}})));
  std::vector<double> e2;
  for (int r = 0; r < 2; ++r) {
    const float *p = x2.as<float>() + r * 12;
    double mean = 0, var = 0;
    for (int j = 0; j < 12; ++j)
      mean += p[j] / 12.0;
    for (int j = 0; j < 12; ++j)
      var += (p[j] - mean) * (p[j] - mean) / 12.0;
    for (int j = 0; j < 12; ++j)
      e2.push_back((p[j] - mean) / std::sqrt(var + 1e-3) * s2.as<float>()[j]);
  }
  expectClose(y2.values<float>(), e2);
}

TEST(CpuNormalization, RmsNormAndBatchNorm) {
  Tensor x = randomF32({3, 16}, 10);
  Tensor scale = randomF32({16}, 11);
  Tensor y(DType::F32, {3, 16});
  ASSERT_OK(run("rms_norm", {&x, &scale}, {&y},
                attrs({{"axis", int64_t(1)}, {"epsilon", 1e-6}})));
  std::vector<double> expected;
  for (int r = 0; r < 3; ++r) {
    double ms = 0;
    for (int j = 0; j < 16; ++j)
      ms += double(x.as<float>()[r * 16 + j]) * x.as<float>()[r * 16 + j] / 16;
    for (int j = 0; j < 16; ++j)
      expected.push_back(x.as<float>()[r * 16 + j] / std::sqrt(ms + 1e-6) *
                         scale.as<float>()[j]);
  }
  expectClose(y.values<float>(), expected);

  Tensor bx = randomF32({2, 3, 2, 2}, 12);
  Tensor bs = f32({3}, {1, 2, 0.5}), bb = f32({3}, {0, 1, -1});
  Tensor bm = f32({3}, {0.1f, -0.2f, 0.3f}), bv = f32({3}, {1, 0.5f, 2});
  Tensor by(DType::F32, {2, 3, 2, 2});
  ASSERT_OK(run("batch_norm", {&bx, &bs, &bb, &bm, &bv}, {&by},
                attrs({{"epsilon", 1e-5}})));
  std::vector<double> be;
  for (int64_t i = 0; i < bx.numel(); ++i) {
    const int c = (i / 4) % 3;
    be.push_back((bx.as<float>()[i] - bm.as<float>()[c]) /
                     std::sqrt(bv.as<float>()[c] + 1e-5) * bs.as<float>()[c] +
                 bb.as<float>()[c]);
  }
  expectClose(by.values<float>(), be);
}

TEST(CpuNormalization, LayerNormInBFloat16) {
  std::vector<uint16_t> xs;
  std::vector<float> xf = {1, 2, 3, 4, -1, 0, 1, 2};
  for (float f : xf)
    xs.push_back(floatToBf16(f));
  Tensor x = make(DType::BF16, {2, 4}, xs);
  Tensor s =
      make(DType::BF16, {4}, std::vector<uint16_t>(4, floatToBf16(1.0f)));
  Tensor y(DType::BF16, {2, 4});
  ASSERT_OK(run("layer_norm", {&x, &s}, {&y},
                attrs({{"axis", int64_t(1)}, {"epsilon", 0.0}})));
  const double k = 1 / std::sqrt(1.25);
  std::vector<double> expected = {-1.5 * k, -0.5 * k, 0.5 * k, 1.5 * k,
                                  -1.5 * k, -0.5 * k, 0.5 * k, 1.5 * k};
  std::vector<float> got;
  for (uint16_t h : y.values<uint16_t>())
    got.push_back(bf16ToFloat(h));
  expectClose(got, expected, 1e-2, 1e-2);
}

//===----------------------------------------------------------------------===//
// fused_elementwise
//===----------------------------------------------------------------------===//

TEST(CpuFusedElementwise, MatchesTheOpsOneByOne) {
  // m2 = m * b + g * (1 - b); u = m2 / (sqrt(v * v / s) + 1e-3); e = exp(u)
  // over 3000 elements (several blocks and a ragged last one, threaded),
  // with scalars b, s, one and eps. Every step is the op's own kernel's
  // arithmetic, so the results are bit-identical.
  const int64_t n = 3000;
  Tensor m = randomF32({n}, 50), g = randomF32({n}, 51), v = randomF32({n}, 52);
  Tensor b = f32({}, {0.9f}), s = f32({}, {1.7f}), one = f32({}, {1.0f}),
         eps = f32({}, {1e-3f});
  auto step = [&](const char *op, std::vector<const Tensor *> in) {
    Tensor out(DType::F32, {n});
    EXPECT_TRUE(run(op, in, {&out}));
    return out;
  };
  Tensor mb = step("mul", {&m, &b}), omb = step("sub", {&one, &b});
  Tensor gomb = step("mul", {&g, &omb}), m2 = step("add", {&mb, &gomb});
  Tensor vv = step("mul", {&v, &v}), vs = step("div", {&vv, &s});
  Tensor r = step("sqrt", {&vs}), re = step("add", {&r, &eps});
  Tensor u = step("div", {&m2, &re}), e = step("exp", {&u});
  // Inputs 0..6: m g v b s one eps; steps from 7.
  Tensor fm2(DType::F32, {n}), fe(DType::F32, {n});
  ASSERT_OK(run("fused_elementwise", {&m, &g, &v, &b, &s, &one, &eps},
                {&fm2, &fe},
                attrs({{"steps", std::string("mul,sub,mul,add,mul,div,sqrt,"
                                             "add,div,exp")},
                       {"args", std::vector<int64_t>{0,  3, 5,  3,  1,  8,  7,
                                                     9,  2, 2,  11, 4,  12, -1,
                                                     13, 6, 10, 14, 15, -1}},
                       {"yields", std::vector<int64_t>{3, 9}}})));
  EXPECT_EQ(fm2.values<float>(), m2.values<float>());
  EXPECT_EQ(fe.values<float>(), e.values<float>());

  // Malformed programs are errors, not crashes.
  Tensor out(DType::F32, {n});
  EXPECT_FALSE(run("fused_elementwise", {&m}, {&out},
                   attrs({{"steps", std::string("mul")},
                          {"args", std::vector<int64_t>{0, 1}},
                          {"yields", std::vector<int64_t>{0}}})));
  EXPECT_FALSE(run("fused_elementwise", {&m}, {&out},
                   attrs({{"steps", std::string("frobnicate")},
                          {"args", std::vector<int64_t>{0, -1}},
                          {"yields", std::vector<int64_t>{0}}})));
  Tensor small = randomF32({7}, 53);
  EXPECT_FALSE(run("fused_elementwise", {&m, &small}, {&out},
                   attrs({{"steps", std::string("add")},
                          {"args", std::vector<int64_t>{0, 1}},
                          {"yields", std::vector<int64_t>{0}}})));
}

} // namespace
} // namespace colossal::rt::cpu::test
