//===- CpuDataMovementTest.cpp - Reductions and data movement kernels -----===//
//
// Reductions over negative axes with and without keepdims, and the byte
// movers (transpose, slice, concat/split, gather, expand, trilu) and topk
// against hand-computed results.
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/CpuKernelTestUtil.h"

#include <cmath>
#include <limits>
#include <numeric>

namespace colossal::rt::cpu::test {
namespace {

Tensor iota(std::vector<int64_t> shape) {
  Tensor t(DType::F32, std::move(shape));
  std::iota(t.as<float>(), t.as<float>() + t.numel(), 0.0f);
  return t;
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

TEST(CpuReduce, NegativeAxesAndKeepdims) {
  Tensor x = iota({2, 3, 4}); // x[i,j,k] = 12i + 4j + k
  // Sum over axes {-1, 0}: out[j] = sum_i,k (12i + 4j + k) = 8*4j + 12*4 + 2*6.
  Tensor s(DType::F32, {3}), sk(DType::F32, {1, 3, 1});
  ASSERT_OK(run("reduce_sum", {&x}, {&s},
                attrs({{"axes", std::vector<int64_t>{-1, 0}},
                       {"keepdims", int64_t(0)}})));
  ASSERT_OK(run("reduce_sum", {&x}, {&sk},
                attrs({{"axes", std::vector<int64_t>{-1, 0}},
                       {"keepdims", int64_t(1)}})));
  expectClose(s.values<float>(), {60, 92, 124}, 0, 0);
  EXPECT_EQ(sk.values<float>(), s.values<float>());

  // Mean over the middle axis: innermost run kept.
  Tensor m(DType::F32, {2, 1, 4});
  ASSERT_OK(run(
      "reduce_mean", {&x}, {&m},
      attrs({{"axes", std::vector<int64_t>{-2}}, {"keepdims", int64_t(1)}})));
  expectClose(m.values<float>(), {4, 5, 6, 7, 16, 17, 18, 19}, 0, 0);

  // Max over everything.
  Tensor mx(DType::F32, {});
  ASSERT_OK(run("reduce_max", {&x}, {&mx},
                attrs({{"axes", std::vector<int64_t>{0, 1, 2}}})));
  EXPECT_EQ(mx.as<float>()[0], 23.0f);

  // No axes: identity.
  Tensor same(DType::F32, {2, 3, 4});
  ASSERT_OK(run("reduce_sum", {&x}, {&same},
                attrs({{"axes", std::vector<int64_t>{}}})));
  EXPECT_EQ(same.values<float>(), x.values<float>());

  EXPECT_FALSE(run("reduce_sum", {&x}, {&s},
                   attrs({{"axes", std::vector<int64_t>{0, -3}}})));
}

TEST(CpuTopK, OrderTiesNaNAndStridedRows) {
  // Rows along the middle axis of [1, 5, 2]: column 0 has a tie and a NaN.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = f32({1, 5, 2}, {3, 1, 7, 9, nan, 4, 7, 2, -1, 8});
  Tensor v(DType::F32, {1, 3, 2}), i(DType::I64, {1, 3, 2});
  ASSERT_OK(run("topk", {&x}, {&v, &i},
                attrs({{"k", int64_t(3)}, {"axis", int64_t(1)}})));
  // Column 0: 3, 7, nan, 7, -1 -> nan (2), 7 (1, the lower position), 7 (3).
  // Column 1: 1, 9, 4, 2, 8 -> 9 (1), 8 (4), 4 (2).
  std::vector<float> got = v.values<float>();
  EXPECT_TRUE(std::isnan(got[0]));
  EXPECT_EQ(got[1], 9);
  EXPECT_EQ(got[2], 7);
  EXPECT_EQ(got[3], 8);
  EXPECT_EQ(got[4], 7);
  EXPECT_EQ(got[5], 4);
  EXPECT_EQ(i.values<int64_t>(), (std::vector<int64_t>{2, 1, 1, 4, 3, 2}));

  Tensor s(DType::F32, {1, 2, 2}), si(DType::I64, {1, 2, 2});
  ASSERT_OK(run("topk", {&x}, {&s, &si},
                attrs({{"k", int64_t(2)},
                       {"axis", int64_t(1)},
                       {"smallest", int64_t(1)}})));
  EXPECT_EQ(s.values<float>(), (std::vector<float>{-1, 1, 3, 2}));
  EXPECT_EQ(si.values<int64_t>(), (std::vector<int64_t>{4, 0, 0, 3}));

  Tensor wrong(DType::I32, {1, 2, 2});
  EXPECT_FALSE(run("topk", {&x}, {&s, &wrong},
                   attrs({{"k", int64_t(2)}, {"axis", int64_t(1)}})));
}

TEST(CpuReduce, IntegersAndLargeRowsInDouble) {
  Tensor x = i64({2, 3}, {1, -5, 7, 2, 2, 2});
  Tensor s(DType::I64, {2}), mx(DType::I64, {3});
  ASSERT_OK(run("reduce_sum", {&x}, {&s},
                attrs({{"axes", std::vector<int64_t>{1}}})));
  ASSERT_OK(run("reduce_max", {&x}, {&mx},
                attrs({{"axes", std::vector<int64_t>{0}}})));
  EXPECT_EQ(s.values<int64_t>(), (std::vector<int64_t>{3, 6}));
  EXPECT_EQ(mx.values<int64_t>(), (std::vector<int64_t>{2, 2, 7}));

  Tensor x32 = i32({4}, {3, 4, -10, 1});
  Tensor m32(DType::I32, {});
  ASSERT_OK(run("reduce_max", {&x32}, {&m32},
                attrs({{"axes", std::vector<int64_t>{0}}})));
  EXPECT_EQ(m32.as<int32_t>()[0], 4);

  // A million values of 0.1: a float accumulator would drift far away.
  Tensor big(DType::F32, {1 << 20});
  std::fill(big.as<float>(), big.as<float>() + big.numel(), 0.1f);
  Tensor total(DType::F32, {1});
  ASSERT_OK(run(
      "reduce_sum", {&big}, {&total},
      attrs({{"axes", std::vector<int64_t>{0}}, {"keepdims", int64_t(1)}})));
  expectClose(total.values<float>(), {double(0.1f) * (1 << 20)}, 1e-6, 0);
}

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

TEST(CpuDataMovement, Transpose3D) {
  Tensor x = iota({2, 3, 4});
  Tensor y(DType::F32, {4, 2, 3});
  ASSERT_OK(run("transpose", {&x}, {&y},
                attrs({{"permutation", std::vector<int64_t>{2, 0, 1}}})));
  std::vector<double> expected;
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j)
        expected.push_back(12 * i + 4 * j + k);
  expectClose(y.values<float>(), expected, 0, 0);

  // Same on int64 (moves bytes, not floats) with a partly-identity perm.
  Tensor xi = i64({2, 3, 2}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  Tensor yi(DType::I64, {3, 2, 2});
  ASSERT_OK(run("transpose", {&xi}, {&yi},
                attrs({{"permutation", std::vector<int64_t>{1, 0, 2}}})));
  EXPECT_EQ(yi.values<int64_t>(),
            (std::vector<int64_t>{0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11}));

  Tensor wrong(DType::F32, {4, 3, 2});
  EXPECT_FALSE(run("transpose", {&x}, {&wrong},
                   attrs({{"permutation", std::vector<int64_t>{2, 0, 1}}})));
}

TEST(CpuDataMovement, SliceWithNegativeStep) {
  Tensor x = iota({3, 5});
  // Rows 2, 1, 0 (limit -1 runs through index 0); columns 4, 2.
  Tensor y(DType::F32, {3, 2});
  ASSERT_OK(run("slice", {&x}, {&y},
                attrs({{"starts", std::vector<int64_t>{2, 4}},
                       {"limits", std::vector<int64_t>{-1, 1}},
                       {"steps", std::vector<int64_t>{-1, -2}}})));
  expectClose(y.values<float>(), {14, 12, 9, 7, 4, 2}, 0, 0);

  // Positive steps: rows 0..1, columns 1, 3.
  Tensor z(DType::F32, {2, 2});
  ASSERT_OK(run("slice", {&x}, {&z},
                attrs({{"starts", std::vector<int64_t>{0, 1}},
                       {"limits", std::vector<int64_t>{2, 5}},
                       {"steps", std::vector<int64_t>{1, 2}}})));
  expectClose(z.values<float>(), {1, 3, 6, 8}, 0, 0);

  // Bounds that would read past the input are an error.
  EXPECT_FALSE(run("slice", {&x}, {&z},
                   attrs({{"starts", std::vector<int64_t>{2, 1}},
                          {"limits", std::vector<int64_t>{4, 5}},
                          {"steps", std::vector<int64_t>{1, 2}}})));
}

TEST(CpuDataMovement, ConcatSplitRoundTrip) {
  Tensor a = iota({2, 1, 3}), b = randomF32({2, 4, 3}, 90);
  Tensor c(DType::F32, {2, 5, 3});
  ASSERT_OK(run("concat", {&a, &b}, {&c}, attrs({{"axis", int64_t(-2)}})));
  EXPECT_EQ(c.as<float>()[0], 0.0f);
  EXPECT_EQ(c.as<float>()[3], b.as<float>()[0]);
  EXPECT_EQ(c.as<float>()[15], 3.0f);
  Tensor a2(DType::F32, {2, 1, 3}), b2(DType::F32, {2, 4, 3});
  ASSERT_OK(run(
      "split", {&c}, {&a2, &b2},
      attrs({{"axis", int64_t(1)}, {"sizes", std::vector<int64_t>{1, 4}}})));
  EXPECT_EQ(a2.values<float>(), a.values<float>());
  EXPECT_EQ(b2.values<float>(), b.values<float>());

  Tensor bad(DType::F32, {2, 6, 3});
  EXPECT_FALSE(run("concat", {&a, &b}, {&bad}, attrs({{"axis", int64_t(1)}})));
}

TEST(CpuDataMovement, ScatterAddRowsSumsRepeatedRows) {
  // Rows 0, 3, 3 (repeated: summed) of a 4x2 zero result; -1 adds nothing.
  Tensor idx = i64({4}, {3, 0, 3, -1});
  Tensor upd = f32({4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  Tensor out(DType::F32, {4, 2});
  std::fill(out.as<float>(), out.as<float>() + 8, 99.0f); // overwritten
  ASSERT_OK(run("scatter_add_rows", {&idx, &upd}, {&out}));
  expectClose(out.values<float>(), {3, 4, 0, 0, 0, 0, 6, 8}, 0, 0);
  // int32 indices, bfloat16 values through float32.
  Tensor idx32 = i32({2}, {1, 1});
  Tensor bf = make<uint16_t>(DType::BF16, {2, 1}, {0x3F80, 0x4000}); // 1, 2
  Tensor outBf(DType::BF16, {2, 1});
  ASSERT_OK(run("scatter_add_rows", {&idx32, &bf}, {&outBf}));
  EXPECT_EQ(outBf.as<uint16_t>()[0], 0u);
  EXPECT_EQ(outBf.as<uint16_t>()[1], 0x4040u); // 3
  Tensor wrong(DType::F32, {4, 3});
  Status bad = run("scatter_add_rows", {&idx, &upd}, {&wrong});
  EXPECT_NE(bad.message().find("disagree"), std::string::npos) << bad.message();
}

TEST(CpuDataMovement, RandomKeepIsABernoulliMaskOfTheCounter) {
  auto draw = [&](int64_t counter, int64_t stream, double ratio) {
    Tensor c = i64({}, {counter});
    Tensor out(DType::Bool, {100000});
    EXPECT_TRUE(
        run("random_keep", {&c}, {&out},
            attrs({{"ratio", ratio}, {"seed", int64_t(7)}, {"stream", stream}}))
            .isOk());
    return std::vector<uint8_t>(out.as<uint8_t>(),
                                out.as<uint8_t>() + out.numel());
  };
  std::vector<uint8_t> a = draw(3, 0, 0.3), again = draw(3, 0, 0.3);
  EXPECT_EQ(a, again); // a function of its inputs: resumes repeat it
  double kept = std::count(a.begin(), a.end(), 1) / 100000.0;
  EXPECT_NEAR(kept, 0.7, 0.01);  // 1 - ratio (sd ~0.0015)
  EXPECT_NE(a, draw(4, 0, 0.3)); // the next run
  EXPECT_NE(a, draw(3, 1, 0.3)); // another dropout site
  std::vector<uint8_t> all = draw(3, 0, 0.0);
  EXPECT_EQ(std::count(all.begin(), all.end(), 1), 100000);
  // Same-position agreement of two runs is that of independent draws.
  std::vector<uint8_t> b = draw(4, 0, 0.3);
  int64_t same = 0;
  for (size_t i = 0; i < a.size(); ++i)
    same += a[i] == b[i];
  EXPECT_NEAR(same / 100000.0, 0.7 * 0.7 + 0.3 * 0.3, 0.01);
}

TEST(CpuDataMovement, GatherNegativeIndexAndOutOfRange) {
  Tensor table = iota({5, 2});
  Tensor idx = i64({2, 2}, {0, -1, 3, -5});
  Tensor out(DType::F32, {2, 2, 2});
  ASSERT_OK(
      run("gather", {&table, &idx}, {&out}, attrs({{"axis", int64_t(0)}})));
  expectClose(out.values<float>(), {0, 1, 8, 9, 6, 7, 0, 1}, 0, 0);

  // Along axis 1 with int32 indices.
  Tensor cols = i32({3}, {1, 0, -1});
  Tensor out1(DType::F32, {5, 3});
  ASSERT_OK(
      run("gather", {&table, &cols}, {&out1}, attrs({{"axis", int64_t(1)}})));
  EXPECT_EQ(out1.as<float>()[0], 1.0f);
  EXPECT_EQ(out1.as<float>()[4], 2.0f);
  EXPECT_EQ(out1.as<float>()[14], 9.0f);

  Tensor bad = i64({2}, {1, 7});
  Tensor badOut(DType::F32, {2, 2});
  Status s =
      run("gather", {&table, &bad}, {&badOut}, attrs({{"axis", int64_t(0)}}));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.message(), "gather: index 7 out of range [-5, 5) on axis 0");
}

TEST(CpuDataMovement, Expand) {
  Tensor x = f32({3, 1}, {1, 2, 3});
  Tensor y(DType::F32, {2, 3, 4});
  ASSERT_OK(run("expand", {&x}, {&y}));
  std::vector<double> expected;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k)
        expected.push_back(j + 1);
  expectClose(y.values<float>(), expected, 0, 0);

  Tensor flags = boolean({1, 2}, {1, 0});
  Tensor fy(DType::Bool, {2, 2});
  ASSERT_OK(run("expand", {&flags}, {&fy}));
  EXPECT_EQ(fy.values<uint8_t>(), (std::vector<uint8_t>{1, 0, 1, 0}));

  Tensor bad(DType::F32, {2, 4, 4});
  EXPECT_FALSE(run("expand", {&x}, {&bad}));
}

TEST(CpuDataMovement, TriluUpperAndLowerWithDiagonal) {
  Tensor x = iota({2, 3, 4});
  auto trilu = [&](bool upper, int64_t diag) {
    Tensor y(DType::F32, {2, 3, 4});
    EXPECT_TRUE(run("trilu", {&x}, {&y},
                    attrs({{"upper", int64_t(upper)}, {"diagonal", diag}}))
                    .isOk());
    return y.values<float>();
  };
  auto ref = [&](bool upper, int64_t diag) {
    std::vector<float> r;
    for (int b = 0; b < 2; ++b)
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 4; ++j) {
          const bool keep = upper ? j >= i + diag : j <= i + diag;
          r.push_back(keep ? float(12 * b + 4 * i + j) : 0.0f);
        }
    return r;
  };
  for (int64_t diag : {-1, 0, 1, 5, -4})
    for (bool upper : {false, true}) {
      SCOPED_TRACE((upper ? "upper " : "lower ") + std::to_string(diag));
      EXPECT_EQ(trilu(upper, diag), ref(upper, diag));
    }

  // Bool masks: the causal pattern.
  Tensor ones = boolean({3, 3}, std::vector<uint8_t>(9, 1));
  Tensor causal(DType::Bool, {3, 3});
  ASSERT_OK(run("trilu", {&ones}, {&causal}, attrs({{"upper", int64_t(0)}})));
  EXPECT_EQ(causal.values<uint8_t>(),
            (std::vector<uint8_t>{1, 0, 0, 1, 1, 0, 1, 1, 1}));
}

TEST(CpuDataMovement, Reshape) {
  Tensor x = iota({2, 3});
  Tensor y(DType::F32, {3, 2});
  ASSERT_OK(run("reshape", {&x}, {&y}));
  EXPECT_EQ(y.values<float>(), x.values<float>());
  Tensor bad(DType::F32, {4});
  EXPECT_FALSE(run("reshape", {&x}, {&bad}));
}

TEST(CpuEdgeCases, EmptyTensors) {
  // Zero-element tensors carry no data pointer; nothing may be touched.
  auto empty = [](DType t, std::vector<int64_t> shape) {
    Tensor e(t, std::move(shape));
    return e;
  };
  Tensor a = empty(DType::F32, {0, 3}), b = f32({3}, {1, 2, 3});
  Tensor sum = empty(DType::F32, {0, 3});
  ASSERT_OK(run("add", {&a, &b}, {&sum}));
  Tensor w = randomF32({3, 2}, 100);
  Tensor mm = empty(DType::F32, {0, 2});
  ASSERT_OK(run("matmul", {&a, &w}, {&mm}));
  ASSERT_OK(run("softmax", {&a}, {&sum}, attrs({{"axis", int64_t(1)}})));
  Tensor scale = f32({3}, {1, 1, 1});
  ASSERT_OK(run("layer_norm", {&a, &scale}, {&sum},
                attrs({{"axis", int64_t(1)}, {"epsilon", 1e-5}})));
  Tensor t = empty(DType::F32, {3, 0});
  ASSERT_OK(run("transpose", {&a}, {&t},
                attrs({{"permutation", std::vector<int64_t>{1, 0}}})));

  // An empty contraction gives zeros; an empty reduction its identity.
  Tensor k0a = empty(DType::F32, {2, 0}), k0b = empty(DType::F32, {0, 3});
  Tensor zeros = f32({2, 3}, {9, 9, 9, 9, 9, 9});
  ASSERT_OK(run("matmul", {&k0a, &k0b}, {&zeros}));
  expectClose(zeros.values<float>(), {0, 0, 0, 0, 0, 0}, 0, 0);
  Tensor red = f32({3}, {9, 9, 9});
  ASSERT_OK(run("reduce_sum", {&t}, {&red},
                attrs({{"axes", std::vector<int64_t>{1}}})));
  expectClose(red.values<float>(), {0, 0, 0}, 0, 0);

  Tensor idx = empty(DType::I64, {0});
  Tensor g = empty(DType::F32, {0});
  ASSERT_OK(run("gather", {&b, &idx}, {&g}, attrs({{"axis", int64_t(0)}})));
  Tensor cat = f32({3}, {0, 0, 0});
  Tensor none = empty(DType::F32, {0});
  ASSERT_OK(
      run("concat", {&none, &b, &none}, {&cat}, attrs({{"axis", int64_t(0)}})));
  expectClose(cat.values<float>(), {1, 2, 3}, 0, 0);
}

} // namespace
} // namespace colossal::rt::cpu::test
