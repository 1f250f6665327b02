//===- CpuContractionTest.cpp - matmul, linear, attention, conv, pools ----===//
//
// Each kernel against a naive loop in double, over shapes that reach both
// the threaded-GEMM and the threads-over-batches paths.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/KernelUtil.h"
#include "test/unit/runtime/CpuKernelTestUtil.h"

#include <limits>

namespace colossal::rt::cpu::test {
namespace {

//===----------------------------------------------------------------------===//
// matmul and linear
//===----------------------------------------------------------------------===//

/// numpy.matmul for inputs of rank >= 2 (batch dims broadcast).
std::vector<double> matmulRef(const Tensor &a, const Tensor &b,
                              const std::vector<int64_t> &outShape) {
  const size_t r = outShape.size();
  const int64_t m = outShape[r - 2], n = outShape[r - 1];
  const int64_t k = a.shape.back();
  std::vector<double> out(static_cast<size_t>(numElements(outShape)));
  const std::vector<int64_t> as = stridesOf(a.shape), bs = stridesOf(b.shape);
  for (size_t o = 0; o < out.size(); ++o) {
    int64_t rest = int64_t(o) / (m * n), i = (int64_t(o) / n) % m,
            j = int64_t(o) % n;
    int64_t aOff = 0, bOff = 0;
    for (size_t d = r - 2; d-- > 0;) {
      const int64_t idx = rest % outShape[d];
      rest /= outShape[d];
      const int64_t da = int64_t(d) - int64_t(r - a.shape.size());
      const int64_t db = int64_t(d) - int64_t(r - b.shape.size());
      if (da >= 0 && a.shape[da] != 1)
        aOff += idx * as[da];
      if (db >= 0 && b.shape[db] != 1)
        bOff += idx * bs[db];
    }
    double sum = 0;
    for (int64_t p = 0; p < k; ++p)
      sum += double(a.as<float>()[aOff + i * k + p]) *
             b.as<float>()[bOff + p * n + j];
    out[o] = sum;
  }
  return out;
}

TEST(CpuMatmul, BatchBroadcasting) {
  Tensor a = randomF32({2, 1, 3, 4}, 20), b = randomF32({5, 4, 2}, 21);
  Tensor c(DType::F32, {2, 5, 3, 2});
  ASSERT_OK(run("matmul", {&a, &b}, {&c}));
  expectClose(c.values<float>(), matmulRef(a, b, c.shape));

  // Shared rhs: the batch folds into one GEMM (big enough to be threaded).
  Tensor x = randomF32({4, 64, 96}, 22), w = randomF32({96, 80}, 23);
  Tensor y(DType::F32, {4, 64, 80});
  ASSERT_OK(run("matmul", {&x, &w}, {&y}));
  expectClose(y.values<float>(), matmulRef(x, w, y.shape));

  // Many batches: threads over batches.
  Tensor p = randomF32({12, 16, 8}, 24), q = randomF32({12, 8, 16}, 25);
  Tensor pq(DType::F32, {12, 16, 16});
  ASSERT_OK(run("matmul", {&p, &q}, {&pq}));
  expectClose(pq.values<float>(), matmulRef(p, q, pq.shape));

  Tensor bad(DType::F32, {2, 5, 3, 3});
  EXPECT_FALSE(run("matmul", {&a, &b}, {&bad}));
}

/// `t` with its last two dimensions swapped.
Tensor swapLastTwo(const Tensor &t) {
  std::vector<int64_t> shape = t.shape;
  const size_t r = shape.size();
  std::swap(shape[r - 1], shape[r - 2]);
  Tensor out(DType::F32, shape);
  const int64_t rows = t.shape[r - 2], cols = t.shape[r - 1];
  const int64_t batches = numElements(t.shape) / (rows * cols);
  for (int64_t b = 0; b < batches; ++b)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        out.as<float>()[(b * cols + j) * rows + i] =
            t.as<float>()[(b * rows + i) * cols + j];
  return out;
}

TEST(CpuMatmul, TransposedOperandsMatchExplicitTransposes) {
  // Batched both ways, a shared transposed weight (the batch folded into
  // rows), a transposed lhs over a shared rhs (one GEMM per batch), and
  // the batch sum's 2-D form.
  struct Case {
    std::vector<int64_t> a, b;
    bool ta, tb;
  };
  for (const Case &c : {Case{{3, 5, 7}, {3, 7, 4}, true, true},
                        Case{{3, 5, 7}, {7, 4}, false, true},
                        Case{{2, 6, 5}, {5, 4}, true, false},
                        Case{{24, 40}, {40, 16}, true, false},
                        Case{{12, 16, 8}, {12, 8, 16}, true, false}}) {
    Tensor a = randomF32(c.a, 40), b = randomF32(c.b, 41);
    Tensor as = c.ta ? swapLastTwo(a) : a, bs = c.tb ? swapLastTwo(b) : b;
    std::vector<int64_t> out = c.a.size() >= c.b.size() ? c.a : c.b;
    out[out.size() - 2] = a.shape[a.shape.size() - 2];
    out.back() = b.shape.back();
    Tensor y(DType::F32, out);
    ASSERT_OK(run("matmul", {&as, &bs}, {&y},
                  attrs({{"transpose_lhs", int64_t(c.ta)},
                         {"transpose_rhs", int64_t(c.tb)}})));
    expectClose(y.values<float>(), matmulRef(a, b, y.shape));
  }
  // A rank-1 operand cannot be transposed; integers do not take the flags.
  Tensor v = randomF32({4}, 42), m = randomF32({4, 3}, 43);
  Tensor vm(DType::F32, {3});
  EXPECT_FALSE(
      run("matmul", {&v, &m}, {&vm}, attrs({{"transpose_lhs", int64_t(1)}})));
  Tensor ia = i64({2, 2}, {1, 2, 3, 4}), ic(DType::I64, {2, 2});
  EXPECT_FALSE(
      run("matmul", {&ia, &ia}, {&ic}, attrs({{"transpose_rhs", int64_t(1)}})));
}

TEST(CpuMatmul, OneDimensionalOperands) {
  Tensor v = f32({3}, {1, 2, 3});
  Tensor m = f32({3, 2}, {1, 2, 3, 4, 5, 6});
  Tensor vm(DType::F32, {2});
  ASSERT_OK(run("matmul", {&v, &m}, {&vm}));
  expectClose(vm.values<float>(), {22, 28}, 0, 0);

  Tensor bm = f32({2, 2, 3}, {1, 0, 0, 0, 1, 0, 1, 1, 1, 2, 0, 1});
  Tensor mv(DType::F32, {2, 2});
  ASSERT_OK(run("matmul", {&bm, &v}, {&mv}));
  expectClose(mv.values<float>(), {1, 2, 6, 5}, 0, 0);

  Tensor dot(DType::F32, {});
  ASSERT_OK(run("matmul", {&v, &v}, {&dot}));
  expectClose(dot.values<float>(), {14}, 0, 0);
}

TEST(CpuMatmul, Integers) {
  Tensor a = i64({2, 3}, {1, -2, 3, 4, 5, -6});
  Tensor b = i64({3, 2}, {7, 8, 9, 10, 11, 12});
  Tensor c(DType::I64, {2, 2});
  ASSERT_OK(run("matmul", {&a, &b}, {&c}));
  EXPECT_EQ(c.values<int64_t>(), (std::vector<int64_t>{22, 24, 7, 10}));
  Tensor a32 = i32({1, 2}, {3, -1}), b32 = i32({2, 1}, {2, 5});
  Tensor c32(DType::I32, {1, 1});
  ASSERT_OK(run("matmul", {&a32, &b32}, {&c32}));
  EXPECT_EQ(c32.values<int32_t>(), (std::vector<int32_t>{1}));
}

TEST(CpuLinear, TransposedAndNotAgree) {
  const int64_t rows = 256, in = 128, out = 96;
  Tensor x = randomF32({2, rows / 2, in}, 30);
  Tensor w = randomF32({in, out}, 31);
  Tensor wt(DType::F32, {out, in});
  for (int64_t i = 0; i < in; ++i)
    for (int64_t j = 0; j < out; ++j)
      wt.as<float>()[j * in + i] = w.as<float>()[i * out + j];
  Tensor bias = randomF32({out}, 32);
  Tensor y(DType::F32, {2, rows / 2, out}), yt(DType::F32, {2, rows / 2, out});
  ASSERT_OK(run("linear", {&x, &w, &bias}, {&y},
                attrs({{"transpose_weight", int64_t(0)}})));
  ASSERT_OK(run("linear", {&x, &wt, &bias}, {&yt},
                attrs({{"transpose_weight", int64_t(1)}})));
  std::vector<double> expected = matmulRef(x, w, y.shape);
  for (size_t i = 0; i < expected.size(); ++i)
    expected[i] += bias.as<float>()[i % out];
  expectClose(y.values<float>(), expected);
  expectClose(yt.values<float>(), expected);

  // A bias of shape [1] is broadcast; no bias at all works too.
  Tensor one = f32({1}, {2.5f});
  Tensor y1(DType::F32, {2, rows / 2, out}), y0(DType::F32, {2, rows / 2, out});
  ASSERT_OK(run("linear", {&x, &w, &one}, {&y1}));
  ASSERT_OK(run("linear", {&x, &w}, {&y0}));
  std::vector<double> plain = matmulRef(x, w, y.shape), shifted = plain;
  for (double &v : shifted)
    v += 2.5;
  expectClose(y0.values<float>(), plain);
  expectClose(y1.values<float>(), shifted);

  Tensor wrong = randomF32({out, in}, 33);
  EXPECT_FALSE(run("linear", {&x, &wrong}, {&y0}));
}

TEST(CpuLinear, Float16GoesThroughF32) {
  Tensor x = make(DType::F16, {1, 2},
                  std::vector<uint16_t>{floatToHalf(1.0f), floatToHalf(2.0f)});
  Tensor w = make(DType::F16, {2, 2},
                  std::vector<uint16_t>{floatToHalf(1.0f), floatToHalf(0.5f),
                                        floatToHalf(-1.0f), floatToHalf(3.0f)});
  Tensor y(DType::F16, {1, 2});
  ASSERT_OK(run("linear", {&x, &w}, {&y}));
  EXPECT_EQ(halfToFloat(y.as<uint16_t>()[0]), -1.0f);
  EXPECT_EQ(halfToFloat(y.as<uint16_t>()[1]), 6.5f);
}

//===----------------------------------------------------------------------===//
// attention
//===----------------------------------------------------------------------===//

/// Naive attention on [b, sq, d] x [b, skv, d] x [b, skv, dv]; mask (if any)
/// is [b, sq, skv], float or bool.
std::vector<double> attentionRef(const Tensor &q, const Tensor &k,
                                 const Tensor &v, const Tensor *mask,
                                 double scale, bool causal) {
  const size_t r = q.shape.size();
  const int64_t sq = q.shape[r - 2], d = q.shape[r - 1], skv = k.shape[r - 2],
                dv = v.shape[r - 1];
  const int64_t batches = q.numel() / (sq * d);
  std::vector<double> out;
  for (int64_t b = 0; b < batches; ++b)
    for (int64_t i = 0; i < sq; ++i) {
      std::vector<double> s(skv);
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < skv; ++j) {
        double dot = 0;
        for (int64_t p = 0; p < d; ++p)
          dot += double(q.as<float>()[(b * sq + i) * d + p]) *
                 k.as<float>()[(b * skv + j) * d + p];
        s[j] = dot * scale;
        if (causal && j > i + (skv - sq))
          s[j] = -std::numeric_limits<double>::infinity();
        if (mask) {
          const int64_t mi = (b * sq + i) * skv + j;
          if (mask->dtype == DType::Bool) {
            if (!mask->as<uint8_t>()[mi])
              s[j] = -std::numeric_limits<double>::infinity();
          } else {
            s[j] += mask->as<float>()[mi];
          }
        }
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j < skv; ++j) {
        s[j] = std::isinf(mx) ? 0 : std::exp(s[j] - mx);
        sum += s[j];
      }
      for (int64_t c = 0; c < dv; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < skv; ++j)
          acc += s[j] * v.as<float>()[(b * skv + j) * dv + c];
        out.push_back(sum > 0 ? acc / sum : 0);
      }
    }
  return out;
}

TEST(CpuAttention, CausalWithLongerKeysThanQueries) {
  // 2 x 3 batch-heads (threads over heads), seq_q 5 aligned to the end of
  // seq_kv 9.
  Tensor q = randomF32({2, 3, 5, 8}, 40), k = randomF32({2, 3, 9, 8}, 41),
         v = randomF32({2, 3, 9, 6}, 42);
  Tensor o(DType::F32, {2, 3, 5, 6});
  const double scale = 1 / std::sqrt(8.0);
  ASSERT_OK(run("attention", {&q, &k, &v}, {&o},
                attrs({{"scale", scale}, {"causal", int64_t(1)}})));
  expectClose(o.values<float>(), attentionRef(q, k, v, nullptr, scale, true));

  // A single head: the GEMMs are threaded instead.
  Tensor q1 = randomF32({1, 70, 64}, 43), k1 = randomF32({1, 70, 64}, 44),
         v1 = randomF32({1, 70, 64}, 45);
  Tensor o1(DType::F32, {1, 70, 64});
  ASSERT_OK(run("attention", {&q1, &k1, &v1}, {&o1},
                attrs({{"scale", 0.125}, {"causal", int64_t(1)}})));
  expectClose(o1.values<float>(),
              attentionRef(q1, k1, v1, nullptr, 0.125, true));
}

TEST(CpuAttention, FloatMaskBroadcastsOverHeads) {
  Tensor q = randomF32({2, 4, 3, 8}, 50), k = randomF32({2, 4, 7, 8}, 51),
         v = randomF32({2, 4, 7, 8}, 52);
  Tensor mask = randomF32({2, 1, 3, 7}, 53, -3, 0);
  Tensor o(DType::F32, {2, 4, 3, 8});
  ASSERT_OK(run("attention", {&q, &k, &v, &mask}, {&o},
                attrs({{"scale", 0.3}, {"causal", int64_t(0)}})));
  // Reference with the mask expanded to every head.
  Tensor full(DType::F32, {2, 4, 3, 7});
  for (int64_t i = 0; i < full.numel(); ++i)
    full.as<float>()[i] = mask.as<float>()[(i / (4 * 21)) * 21 + i % 21];
  expectClose(o.values<float>(), attentionRef(q, k, v, &full, 0.3, false));
}

TEST(CpuAttention, BoolMaskWithFullyMaskedRowGivesZeros) {
  Tensor q = randomF32({1, 3, 4}, 60), k = randomF32({1, 5, 4}, 61),
         v = randomF32({1, 5, 2}, 62);
  Tensor mask = boolean({1, 3, 5}, {1, 0, 1, 0, 1, //
                                    0, 0, 0, 0, 0, // nothing to attend to
                                    0, 0, 0, 0, 1});
  Tensor o(DType::F32, {1, 3, 2});
  ASSERT_OK(
      run("attention", {&q, &k, &v, &mask}, {&o}, attrs({{"scale", 0.5}})));
  std::vector<double> expected = attentionRef(q, k, v, &mask, 0.5, false);
  expected[2] = expected[3] = 0;
  expectClose(o.values<float>(), expected);
  EXPECT_EQ(o.as<float>()[2], 0.0f);
  EXPECT_EQ(o.as<float>()[3], 0.0f);
  // Row 2 attends to key 4 alone.
  EXPECT_NEAR(o.as<float>()[4], v.as<float>()[8], 1e-6);
}

//===----------------------------------------------------------------------===//
// conv2d and pools
//===----------------------------------------------------------------------===//

std::vector<double> convRef(const Tensor &x, const Tensor &w, const Tensor *b,
                            const std::vector<int64_t> &outShape,
                            std::vector<int64_t> s, std::vector<int64_t> p,
                            std::vector<int64_t> dl, int64_t groups) {
  const int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3];
  const int64_t o = w.shape[0], cg = w.shape[1], kh = w.shape[2],
                kw = w.shape[3];
  const int64_t oh = outShape[2], ow = outShape[3], og = o / groups;
  std::vector<double> out;
  for (int64_t img = 0; img < n; ++img)
    for (int64_t oc = 0; oc < o; ++oc)
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t xo = 0; xo < ow; ++xo) {
          double acc = b ? b->as<float>()[oc] : 0;
          const int64_t g = oc / og;
          for (int64_t ic = 0; ic < cg; ++ic)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t iy = y * s[0] - p[0] + i * dl[0];
                const int64_t ix = xo * s[1] - p[1] + j * dl[1];
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd)
                  continue;
                acc +=
                    double(
                        x.as<float>()[((img * c + g * cg + ic) * h + iy) * wd +
                                      ix]) *
                    w.as<float>()[((oc * cg + ic) * kh + i) * kw + j];
              }
          out.push_back(acc);
        }
  return out;
}

TEST(CpuConv, GroupsStrideDilationPadding) {
  struct Case {
    int64_t n, c, h, w, o, k, groups;
    std::vector<int64_t> strides, padding, dilations;
  };
  for (const Case &t : {
           Case{2, 4, 9, 8, 6, 3, 2, {2, 1}, {1, 2, 0, 1}, {2, 1}},
           Case{1, 6, 11, 10, 4, 3, 1, {1, 2}, {2, 1, 2, 1}, {1, 2}},
           Case{1, 8, 7, 7, 8, 3, 8, {1, 1}, {1, 1, 1, 1}, {1, 1}}, // depthwise
           Case{1, 16, 12, 12, 32, 1, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}}, // 1x1
           Case{3, 3, 20, 20, 8, 5, 1, {3, 3}, {2, 2, 2, 2}, {1, 1}},
       }) {
    const int64_t oh =
        (t.h + t.padding[0] + t.padding[2] - t.dilations[0] * (t.k - 1) - 1) /
            t.strides[0] +
        1;
    const int64_t ow =
        (t.w + t.padding[1] + t.padding[3] - t.dilations[1] * (t.k - 1) - 1) /
            t.strides[1] +
        1;
    SCOPED_TRACE("channels " + std::to_string(t.c) + " groups " +
                 std::to_string(t.groups));
    Tensor x = randomF32({t.n, t.c, t.h, t.w}, 70);
    Tensor w = randomF32({t.o, t.c / t.groups, t.k, t.k}, 71);
    Tensor b = randomF32({t.o}, 72);
    Tensor y(DType::F32, {t.n, t.o, oh, ow});
    AttributeMap a = attrs({{"strides", t.strides},
                            {"padding", t.padding},
                            {"dilations", t.dilations},
                            {"groups", t.groups}});
    ASSERT_OK(run("conv2d", {&x, &w, &b}, {&y}, a));
    expectClose(y.values<float>(), convRef(x, w, &b, y.shape, t.strides,
                                           t.padding, t.dilations, t.groups));
    Tensor y0(DType::F32, {t.n, t.o, oh, ow});
    ASSERT_OK(run("conv2d", {&x, &w}, {&y0}, a));
    expectClose(y0.values<float>(), convRef(x, w, nullptr, y.shape, t.strides,
                                            t.padding, t.dilations, t.groups));
  }
}

/// ONNX pooling over one plane set, ceil_mode already reflected in outShape.
std::vector<double> poolRef(const Tensor &x,
                            const std::vector<int64_t> &outShape,
                            std::vector<int64_t> k, std::vector<int64_t> s,
                            std::vector<int64_t> p, bool isMax,
                            bool includePad) {
  const int64_t planes = x.shape[0] * x.shape[1], h = x.shape[2],
                w = x.shape[3];
  std::vector<double> out;
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t i = 0; i < outShape[2]; ++i)
      for (int64_t j = 0; j < outShape[3]; ++j) {
        double m = -std::numeric_limits<double>::infinity(), sum = 0;
        int64_t inside = 0, padded = 0;
        for (int64_t a = 0; a < k[0]; ++a)
          for (int64_t b = 0; b < k[1]; ++b) {
            const int64_t y = i * s[0] - p[0] + a, xo = j * s[1] - p[1] + b;
            if (y < h + p[2] && xo < w + p[3])
              ++padded;
            if (y < 0 || y >= h || xo < 0 || xo >= w)
              continue;
            const double v = x.as<float>()[(pl * h + y) * w + xo];
            m = std::max(m, v);
            sum += v;
            ++inside;
          }
        out.push_back(isMax ? m : sum / (includePad ? padded : inside));
      }
  return out;
}

TEST(CpuPool, CeilModeAndCountIncludePad) {
  // 7x7, kernel 3, stride 2, pad 1: floor gives 4x4; ceil mode 5x5 would
  // need a window starting past the padding, so use 8x8 -> ceil 5x5 (the
  // last window starts inside the input and hangs past the padding).
  Tensor x = randomF32({2, 3, 8, 8}, 80, -5, 5);
  const std::vector<int64_t> k = {3, 3}, s = {2, 2}, p = {1, 1, 1, 1};
  for (bool ceil : {false, true}) {
    const int64_t o = ceil ? 5 : 4;
    SCOPED_TRACE(ceil ? "ceil" : "floor");
    Tensor mx(DType::F32, {2, 3, o, o});
    ASSERT_OK(run("max_pool2d", {&x}, {&mx},
                  attrs({{"kernel", k},
                         {"strides", s},
                         {"padding", p},
                         {"ceil_mode", int64_t(ceil)}})));
    expectClose(mx.values<float>(), poolRef(x, mx.shape, k, s, p, true, false));
    for (bool include : {false, true}) {
      SCOPED_TRACE(include ? "include pad" : "exclude pad");
      Tensor av(DType::F32, {2, 3, o, o});
      ASSERT_OK(run("avg_pool2d", {&x}, {&av},
                    attrs({{"kernel", k},
                           {"strides", s},
                           {"padding", p},
                           {"ceil_mode", int64_t(ceil)},
                           {"count_include_pad", int64_t(include)}})));
      expectClose(av.values<float>(),
                  poolRef(x, av.shape, k, s, p, false, include));
    }
  }
  // Padding never wins the max, even over all-negative inputs.
  Tensor neg = f32({1, 1, 2, 2}, {-4, -3, -2, -1});
  Tensor out(DType::F32, {1, 1, 2, 2});
  ASSERT_OK(run("max_pool2d", {&neg}, {&out},
                attrs({{"kernel", std::vector<int64_t>{2, 2}},
                       {"strides", std::vector<int64_t>{1, 1}},
                       {"padding", std::vector<int64_t>{1, 1, 0, 0}}})));
  expectClose(out.values<float>(), {-4, -3, -2, -1}, 0, 0);
}

} // namespace
} // namespace colossal::rt::cpu::test
