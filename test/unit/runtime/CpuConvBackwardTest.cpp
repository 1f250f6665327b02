//===- CpuConvBackwardTest.cpp - conv2d and max_pool2d gradient kernels ---===//
//
// Each gradient kernel against the derivative written out as a sum over the
// forward op's index map, computed in double.
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/CpuKernelTestUtil.h"

namespace colossal::rt::cpu::test {
namespace {

struct ConvCase {
  int64_t n, c, h, w, o, k, groups;
  std::vector<int64_t> strides, padding, dilations;

  int64_t outH() const {
    return (h + padding[0] + padding[2] - dilations[0] * (k - 1) - 1) /
               strides[0] +
           1;
  }
  int64_t outW() const {
    return (w + padding[1] + padding[3] - dilations[1] * (k - 1) - 1) /
               strides[1] +
           1;
  }
  AttributeMap attributes() const {
    return attrs({{"strides", strides},
                  {"padding", padding},
                  {"dilations", dilations},
                  {"groups", groups}});
  }
};

/// Calls `f(img, oc, y, xo, ic, i, j, iy, ix)` for every in-bounds term of
/// the convolution sum; ic counts within the group's input channels.
template <class F> void forEachTerm(const ConvCase &t, F &&f) {
  const int64_t og = t.o / t.groups, cg = t.c / t.groups;
  for (int64_t img = 0; img < t.n; ++img)
    for (int64_t oc = 0; oc < t.o; ++oc)
      for (int64_t y = 0; y < t.outH(); ++y)
        for (int64_t xo = 0; xo < t.outW(); ++xo)
          for (int64_t ic = 0; ic < cg; ++ic)
            for (int64_t i = 0; i < t.k; ++i)
              for (int64_t j = 0; j < t.k; ++j) {
                const int64_t iy =
                    y * t.strides[0] - t.padding[0] + i * t.dilations[0];
                const int64_t ix =
                    xo * t.strides[1] - t.padding[1] + j * t.dilations[1];
                if (iy >= 0 && iy < t.h && ix >= 0 && ix < t.w)
                  f(img, oc, y, xo, (oc / og) * cg + ic, ic, i, j, iy, ix);
              }
}

const ConvCase kConvCases[] = {
    {2, 4, 9, 8, 6, 3, 2, {2, 1}, {1, 2, 0, 1}, {2, 1}},
    {1, 6, 11, 10, 4, 3, 1, {1, 2}, {2, 1, 2, 1}, {1, 2}},
    {1, 8, 7, 7, 8, 3, 8, {1, 1}, {1, 1, 1, 1}, {1, 1}},   // depthwise
    {2, 16, 6, 6, 32, 1, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}}, // 1x1
    {3, 3, 20, 20, 8, 5, 1, {3, 3}, {2, 2, 2, 2}, {1, 1}}, // many units
    {4, 3, 8, 8, 4, 3, 1, {2, 2}, {1, 1, 1, 1}, {1, 1}},   // ResNet stem
};

TEST(CpuConvBackward, InputGradientIsTheTransposedConvolution) {
  for (const ConvCase &t : kConvCases) {
    SCOPED_TRACE("channels " + std::to_string(t.c) + " groups " +
                 std::to_string(t.groups));
    Tensor g = randomF32({t.n, t.o, t.outH(), t.outW()}, 90);
    Tensor w = randomF32({t.o, t.c / t.groups, t.k, t.k}, 91);
    Tensor dx(DType::F32, {t.n, t.c, t.h, t.w});
    ASSERT_OK(run("conv2d_backward_input", {&g, &w}, {&dx}, t.attributes()));
    std::vector<double> want(static_cast<size_t>(dx.numel()), 0.0);
    forEachTerm(t, [&](int64_t img, int64_t oc, int64_t y, int64_t xo,
                       int64_t c, int64_t ic, int64_t i, int64_t j, int64_t iy,
                       int64_t ix) {
      want[((img * t.c + c) * t.h + iy) * t.w + ix] +=
          double(g.as<float>()[((img * t.o + oc) * t.outH() + y) * t.outW() +
                               xo]) *
          w.as<float>()[((oc * (t.c / t.groups) + ic) * t.k + i) * t.k + j];
    });
    expectClose(dx.values<float>(), want);
  }
}

TEST(CpuConvBackward, WeightGradientSumsOverImages) {
  for (const ConvCase &t : kConvCases) {
    SCOPED_TRACE("channels " + std::to_string(t.c) + " groups " +
                 std::to_string(t.groups));
    Tensor x = randomF32({t.n, t.c, t.h, t.w}, 92);
    Tensor g = randomF32({t.n, t.o, t.outH(), t.outW()}, 93);
    Tensor dw(DType::F32, {t.o, t.c / t.groups, t.k, t.k});
    ASSERT_OK(run("conv2d_backward_weight", {&x, &g}, {&dw}, t.attributes()));
    std::vector<double> want(static_cast<size_t>(dw.numel()), 0.0);
    forEachTerm(t, [&](int64_t img, int64_t oc, int64_t y, int64_t xo,
                       int64_t c, int64_t ic, int64_t i, int64_t j, int64_t iy,
                       int64_t ix) {
      want[((oc * (t.c / t.groups) + ic) * t.k + i) * t.k + j] +=
          double(g.as<float>()[((img * t.o + oc) * t.outH() + y) * t.outW() +
                               xo]) *
          x.as<float>()[((img * t.c + c) * t.h + iy) * t.w + ix];
    });
    expectClose(dw.values<float>(), want, 1e-4, 1e-4);
  }
}

TEST(CpuConvBackward, ShapeMismatchIsAnError) {
  Tensor g(DType::F32, {1, 4, 5, 5}), w(DType::F32, {4, 3, 3, 3});
  Tensor dx(DType::F32, {1, 3, 9, 9}); // stride 1 would need 7x7
  Status s = run("conv2d_backward_input", {&g, &w}, {&dx},
                 attrs({{"groups", int64_t(1)}}));
  EXPECT_FALSE(s.isOk());
}

TEST(CpuMaxPoolBackward, RoutesToTheFirstMaximumOfEachWindow) {
  // 3x3 windows, stride 2, padding 1 over 8x8 (ResNet's stem pool), with
  // ceil mode too: overlapping windows add up at shared maxima.
  Tensor x = randomF32({2, 3, 8, 8}, 94, -5, 5);
  const std::vector<int64_t> k = {3, 3}, s = {2, 2}, p = {1, 1, 1, 1};
  for (bool ceil : {false, true}) {
    SCOPED_TRACE(ceil ? "ceil" : "floor");
    const int64_t o = ceil ? 5 : 4;
    Tensor g = randomF32({2, 3, o, o}, 95);
    Tensor dx(DType::F32, {2, 3, 8, 8});
    ASSERT_OK(run("max_pool2d_backward", {&x, &g}, {&dx},
                  attrs({{"kernel", k},
                         {"strides", s},
                         {"padding", p},
                         {"ceil_mode", int64_t(ceil)}})));
    std::vector<double> want(static_cast<size_t>(dx.numel()), 0.0);
    for (int64_t pl = 0; pl < 6; ++pl)
      for (int64_t i = 0; i < o; ++i)
        for (int64_t j = 0; j < o; ++j) {
          int64_t best = -1;
          for (int64_t a = 0; a < k[0]; ++a)
            for (int64_t b = 0; b < k[1]; ++b) {
              const int64_t y = i * s[0] - p[0] + a, xo = j * s[1] - p[1] + b;
              if (y < 0 || y >= 8 || xo < 0 || xo >= 8)
                continue;
              const int64_t at = pl * 64 + y * 8 + xo;
              if (best < 0 || x.as<float>()[at] > x.as<float>()[best])
                best = at;
            }
          want[best] += g.as<float>()[(pl * o + i) * o + j];
        }
    expectClose(dx.values<float>(), want);
  }
  // Ties: the whole gradient goes to the first position, not split.
  Tensor same = f32({1, 1, 2, 2}, {1, 1, 1, 1});
  Tensor g = f32({1, 1, 1, 1}, {3});
  Tensor dx(DType::F32, {1, 1, 2, 2});
  ASSERT_OK(run("max_pool2d_backward", {&same, &g}, {&dx},
                attrs({{"kernel", std::vector<int64_t>{2, 2}},
                       {"strides", std::vector<int64_t>{2, 2}}})));
  expectClose(dx.values<float>(), {3, 0, 0, 0}, 0, 0);
}

} // namespace
} // namespace colossal::rt::cpu::test
