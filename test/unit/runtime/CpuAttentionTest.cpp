//===- CpuAttentionTest.cpp - attention's fused backward and ring blocks --===//
//
// attention_backward against gradients computed naively in double (the
// probabilities materialized, dS from rowsum(dP * P)), and the ring
// kernels composed the way runtime/core/Executor.cpp composes them — every
// query block meeting every key/value block in ring order — against whole
// attention and its gradients.
//
//===----------------------------------------------------------------------===//

#include "CpuKernelTestUtil.h"

#include <limits>

namespace colossal::rt::cpu::test {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

/// Whole attention on [b, s, d] blocks (one batch dimension), in double:
/// its output, the log-sum-exp of every row and the gradients of
/// sum(out * g). `mask` (float, [b, s, s]) may be null.
struct Reference {
  std::vector<double> out, lse, dq, dk, dv;
};

Reference reference(const Tensor &q, const Tensor &k, const Tensor &v,
                    const Tensor &g, const Tensor *mask, double scale,
                    bool causal) {
  const int64_t b = q.shape[0], sq = q.shape[1], d = q.shape[2],
                skv = k.shape[1], dv = v.shape[2];
  Reference r;
  r.out.assign(b * sq * dv, 0);
  r.lse.assign(b * sq, -kInf);
  r.dq.assign(b * sq * d, 0);
  r.dk.assign(b * skv * d, 0);
  r.dv.assign(b * skv * dv, 0);
  auto Q = [&](int64_t h, int64_t i, int64_t p) {
    return double(q.as<float>()[(h * sq + i) * d + p]);
  };
  auto K = [&](int64_t h, int64_t j, int64_t p) {
    return double(k.as<float>()[(h * skv + j) * d + p]);
  };
  auto V = [&](int64_t h, int64_t j, int64_t c) {
    return double(v.as<float>()[(h * skv + j) * dv + c]);
  };
  auto G = [&](int64_t h, int64_t i, int64_t c) {
    return double(g.as<float>()[(h * sq + i) * dv + c]);
  };
  for (int64_t h = 0; h < b; ++h) {
    std::vector<double> P(sq * skv, 0);
    for (int64_t i = 0; i < sq; ++i) {
      double mx = -kInf;
      std::vector<double> s(skv);
      for (int64_t j = 0; j < skv; ++j) {
        double dot = 0;
        for (int64_t p = 0; p < d; ++p)
          dot += Q(h, i, p) * K(h, j, p);
        s[j] = dot * scale;
        if (mask)
          s[j] += mask->as<float>()[(h * sq + i) * skv + j];
        if (causal && j > i + (skv - sq))
          s[j] = -kInf;
        mx = std::max(mx, s[j]);
      }
      if (mx == -kInf)
        continue;
      double sum = 0;
      for (int64_t j = 0; j < skv; ++j)
        sum += std::exp(s[j] - mx);
      r.lse[h * sq + i] = mx + std::log(sum);
      for (int64_t j = 0; j < skv; ++j)
        P[i * skv + j] = std::exp(s[j] - mx) / sum;
    }
    for (int64_t i = 0; i < sq; ++i)
      for (int64_t c = 0; c < dv; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < skv; ++j)
          acc += P[i * skv + j] * V(h, j, c);
        r.out[(h * sq + i) * dv + c] = acc;
      }
    for (int64_t i = 0; i < sq; ++i) {
      std::vector<double> dP(skv);
      double rowsum = 0;
      for (int64_t j = 0; j < skv; ++j) {
        for (int64_t c = 0; c < dv; ++c)
          dP[j] += G(h, i, c) * V(h, j, c);
        rowsum += dP[j] * P[i * skv + j];
      }
      for (int64_t j = 0; j < skv; ++j) {
        const double pij = P[i * skv + j];
        const double ds = pij * (dP[j] - rowsum) * scale;
        for (int64_t c = 0; c < dv; ++c)
          r.dv[(h * skv + j) * dv + c] += pij * G(h, i, c);
        for (int64_t p = 0; p < d; ++p) {
          r.dq[(h * sq + i) * d + p] += ds * K(h, j, p);
          r.dk[(h * skv + j) * d + p] += ds * Q(h, i, p);
        }
      }
    }
  }
  return r;
}

/// Rows [first, first + count) of [b, s, w] as a tensor [b, count, w].
Tensor rows(const Tensor &t, int64_t first, int64_t count) {
  const int64_t b = t.shape[0], s = t.shape[1], w = t.shape[2];
  Tensor r(DType::F32, {b, count, w});
  for (int64_t h = 0; h < b; ++h)
    std::memcpy(r.as<float>() + h * count * w,
                t.as<float>() + (h * s + first) * w, count * w * sizeof(float));
  return r;
}

/// `piece` [b, count, w] written into rows [first, ...) of `whole`.
void putRows(std::vector<double> &whole, const Tensor &piece, int64_t s,
             int64_t first) {
  const int64_t b = piece.shape[0], count = piece.shape[1], w = piece.shape[2];
  for (int64_t h = 0; h < b; ++h)
    for (int64_t i = 0; i < count * w; ++i)
      whole[(h * s + first) * w + i] = piece.as<float>()[h * count * w + i];
}

TEST(CpuAttentionBackward, MatchesNaiveGradients) {
  for (bool causal : {false, true}) {
    // 6 heads (threads over heads); seq_q 5 aligned to the end of seq_kv 7.
    Tensor q = randomF32({6, 5, 8}, 1), k = randomF32({6, 7, 8}, 2),
           v = randomF32({6, 7, 4}, 3), g = randomF32({6, 5, 4}, 4);
    const double scale = 0.35;
    Reference want = reference(q, k, v, g, nullptr, scale, causal);
    Tensor o(DType::F32, {6, 5, 4});
    AttributeMap a =
        attrs({{"scale", scale}, {"causal", int64_t(causal ? 1 : 0)}});
    ASSERT_OK(run("attention", {&q, &k, &v}, {&o}, a));
    expectClose(o.values<float>(), want.out);
    Tensor dq(DType::F32, {6, 5, 8}), dk(DType::F32, {6, 7, 8}),
        dv(DType::F32, {6, 7, 4});
    ASSERT_OK(
        run("attention_backward", {&q, &k, &v, &o, &g}, {&dq, &dk, &dv}, a));
    expectClose(dq.values<float>(), want.dq);
    expectClose(dk.values<float>(), want.dk);
    expectClose(dv.values<float>(), want.dv);
  }
}

TEST(CpuAttentionBackward, FloatMaskAndOneHeadOfManyRows) {
  // One head of 70 rows: the SGEMMs are threaded and the rows blocked.
  Tensor q = randomF32({1, 70, 16}, 5), k = randomF32({1, 70, 16}, 6),
         v = randomF32({1, 70, 16}, 7), g = randomF32({1, 70, 16}, 8);
  Tensor mask = randomF32({1, 70, 70}, 9, -2, 0);
  Reference want = reference(q, k, v, g, &mask, 0.25, false);
  Tensor o(DType::F32, {1, 70, 16});
  AttributeMap a = attrs({{"scale", 0.25}});
  ASSERT_OK(run("attention", {&q, &k, &v, &mask}, {&o}, a));
  Tensor dq(DType::F32, {1, 70, 16}), dk(DType::F32, {1, 70, 16}),
      dv(DType::F32, {1, 70, 16});
  ASSERT_OK(run("attention_backward", {&q, &k, &v, &o, &g, &mask},
                {&dq, &dk, &dv}, a));
  expectClose(dq.values<float>(), want.dq);
  expectClose(dk.values<float>(), want.dk);
  expectClose(dv.values<float>(), want.dv);
}

TEST(CpuAttentionBackward, RefusesMismatchedGradientShapes) {
  Tensor q = randomF32({2, 4, 8}, 1), k = randomF32({2, 4, 8}, 2),
         v = randomF32({2, 4, 8}, 3), o = randomF32({2, 4, 8}, 4),
         g = randomF32({2, 4, 8}, 5);
  Tensor dq(DType::F32, {2, 4, 8}), dk(DType::F32, {2, 3, 8}),
      dv(DType::F32, {2, 4, 8});
  Status s =
      run("attention_backward", {&q, &k, &v, &o, &g}, {&dq, &dk, &dv}, {});
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("key gradient"), std::string::npos) << s.message();
}

/// The ring of `n` blocks of a sequence, run in one process: each query
/// block p folds in key/value blocks p, p - 1, ... (skipping those wholly in
/// the future when causal), then the backward accumulates dk/dv per block.
void ringMatchesWhole(int64_t n, bool causal, bool withMask) {
  const int64_t b = 3, block = 4, s = n * block, d = 8, dvw = 6;
  Tensor q = randomF32({b, s, d}, 11), k = randomF32({b, s, d}, 12),
         v = randomF32({b, s, dvw}, 13), g = randomF32({b, s, dvw}, 14);
  Tensor mask = randomF32({b, s, s}, 15, -2, 0);
  const Tensor *m = withMask ? &mask : nullptr;
  const double scale = 0.3;
  Reference want = reference(q, k, v, g, m, scale, causal);

  std::vector<double> out(want.out.size()), lse(want.lse.size()),
      dq(want.dq.size()), dk(want.dk.size()), dv(want.dv.size());
  std::vector<Tensor> outs, lses, deltas, dks(n), dvs(n);
  for (int64_t p = 0; p < n; ++p) {
    Tensor qp = rows(q, p * block, block);
    Tensor acc(DType::F32, {b, block, dvw}), mm(DType::F32, {b, block}),
        l(DType::F32, {b, block}), lp(DType::F32, {b, block});
    Tensor maskRows = rows(mask, p * block, block); // [b, block, s]
    for (int64_t t = 0; t < n; ++t) {
      const int64_t j = (p - t + n) % n;
      if (causal && j > p)
        continue;
      Tensor kj = rows(k, j * block, block), vj = rows(v, j * block, block);
      std::vector<const Tensor *> in = {&qp, &kj, &vj};
      if (m)
        in.push_back(&maskRows);
      ASSERT_OK(run("attention_block", in, {&acc, &mm, &l},
                    attrs({{"scale", scale},
                           {"causal", int64_t(causal ? 1 : 0)},
                           {"q_offset", p * block},
                           {"k_offset", j * block},
                           {"kv_length", s},
                           {"init", int64_t(t == 0 ? 1 : 0)}})));
    }
    Tensor op(DType::F32, {b, block, dvw});
    ASSERT_OK(run("attention_block_finish", {&acc, &mm, &l}, {&op, &lp}));
    putRows(out, op, s, p * block);
    for (int64_t h = 0; h < b; ++h)
      for (int64_t i = 0; i < block; ++i)
        lse[h * s + p * block + i] = lp.as<float>()[h * block + i];
    outs.push_back(op);
    lses.push_back(lp);
  }
  expectClose(std::vector<float>(out.begin(), out.end()), want.out);
  expectClose(std::vector<float>(lse.begin(), lse.end()), want.lse);

  for (int64_t j = 0; j < n; ++j) {
    dks[j] = Tensor(DType::F32, {b, block, d});
    dvs[j] = Tensor(DType::F32, {b, block, dvw});
  }
  for (int64_t p = 0; p < n; ++p) {
    Tensor qp = rows(q, p * block, block), gp = rows(g, p * block, block);
    Tensor delta(DType::F32, {b, block});
    ASSERT_OK(run("attention_delta", {&outs[p], &gp}, {&delta}));
    Tensor dqp(DType::F32, {b, block, d});
    Tensor maskRows = rows(mask, p * block, block);
    for (int64_t t = 0; t < n; ++t) {
      const int64_t j = (p - t + n) % n;
      if (causal && j > p)
        continue;
      Tensor kj = rows(k, j * block, block), vj = rows(v, j * block, block);
      std::vector<const Tensor *> in = {&qp, &kj, &vj, &gp, &lses[p], &delta};
      if (m)
        in.push_back(&maskRows);
      // Block j's accumulators start at zero (as constructed).
      ASSERT_OK(run("attention_block_backward", in, {&dqp, &dks[j], &dvs[j]},
                    attrs({{"scale", scale},
                           {"causal", int64_t(causal ? 1 : 0)},
                           {"q_offset", p * block},
                           {"k_offset", j * block},
                           {"kv_length", s},
                           {"init_q", int64_t(t == 0 ? 1 : 0)},
                           {"init_kv", int64_t(0)}})));
    }
    putRows(dq, dqp, s, p * block);
  }
  for (int64_t j = 0; j < n; ++j) {
    putRows(dk, dks[j], s, j * block);
    putRows(dv, dvs[j], s, j * block);
  }
  expectClose(std::vector<float>(dq.begin(), dq.end()), want.dq);
  expectClose(std::vector<float>(dk.begin(), dk.end()), want.dk);
  expectClose(std::vector<float>(dv.begin(), dv.end()), want.dv);
}

TEST(CpuRingAttention, BlocksComposeToWholeAttention) {
  ringMatchesWhole(1, false, false);
  ringMatchesWhole(3, false, false);
}

TEST(CpuRingAttention, CausalSkipsFutureBlocks) {
  ringMatchesWhole(2, true, false);
  ringMatchesWhole(4, true, false);
}

TEST(CpuRingAttention, MaskCoversTheWholeKeySequence) {
  ringMatchesWhole(3, false, true);
  ringMatchesWhole(3, true, true);
}

TEST(CpuRingAttention, FinishOfNothingAttendedIsZeroWithInfiniteLse) {
  Tensor acc(DType::F32, {1, 2, 3}), m = f32({1, 2}, {-INFINITY, 0.5f}),
                                     l = f32({1, 2}, {0.0f, 2.0f});
  for (int i = 0; i < 6; ++i)
    acc.as<float>()[i] = float(i + 1);
  Tensor out(DType::F32, {1, 2, 3}), lse(DType::F32, {1, 2});
  ASSERT_OK(run("attention_block_finish", {&acc, &m, &l}, {&out, &lse}));
  EXPECT_EQ(out.as<float>()[0], 0.0f);
  EXPECT_EQ(lse.as<float>()[0], -INFINITY);
  EXPECT_FLOAT_EQ(out.as<float>()[3], 2.0f);
  EXPECT_FLOAT_EQ(lse.as<float>()[1], 0.5f + std::log(2.0f));
}

} // namespace
} // namespace colossal::rt::cpu::test
