//===- ParallelConfigTest.cpp - Parsing and validating parallel configs ---===//

#include "compiler/cost/ParallelConfig.h"

#include "compiler/cost/ClusterSpec.h"
#include "compiler/cost/Workload.h"

#include "TestCluster.h"

#include "gtest/gtest.h"

using namespace colossal::cost;
using colossal::cost::testing::handCluster;

static std::string parseError(const char *text) {
  auto r = parseParallelConfig(text);
  if (r)
    return "<no error>";
  return llvm::toString(r.takeError());
}

static std::string validateError(const char *text, const Workload &w,
                                 const ClusterSpec &c) {
  auto r = parseParallelConfig(text);
  if (!r)
    return "parse: " + llvm::toString(r.takeError());
  llvm::Error e = validateParallelConfig(*r, w, c);
  if (!e)
    return "<no error>";
  return llvm::toString(std::move(e));
}

TEST(ParallelConfig, ParsesEveryKey) {
  auto r = parseParallelConfig(
      "dp=4,tp=4,tp-mode=2.5d:1,tp-sp=0,pp=2,sp=2,sp-mode=ulysses,"
      "micro-batch=2,schedule=interleaved:3,recompute=selective,zero=2,"
      "offload=optimizer");
  ASSERT_TRUE(static_cast<bool>(r)) << llvm::toString(r.takeError());
  EXPECT_EQ(r->dp, 4);
  EXPECT_EQ(r->tp, 4);
  EXPECT_EQ(r->tp_mode, TpMode::TwoPointFiveD);
  EXPECT_EQ(r->tp_depth, 1);
  EXPECT_EQ(r->pp, 2);
  EXPECT_EQ(r->sp, 2);
  EXPECT_EQ(r->sp_mode, SpMode::Ulysses);
  EXPECT_EQ(r->micro_batch, 2);
  EXPECT_EQ(r->schedule, Schedule::Interleaved);
  EXPECT_EQ(r->virtual_stages, 3);
  EXPECT_EQ(r->recompute, Recompute::Selective);
  EXPECT_EQ(r->zero, 2);
  EXPECT_EQ(r->offload, Offload::Optimizer);
  EXPECT_EQ(r->devices(), 64);
  // Canonical form round-trips.
  auto again = parseParallelConfig(toString(*r));
  ASSERT_TRUE(static_cast<bool>(again));
  EXPECT_EQ(toString(*again), toString(*r));
}

TEST(ParallelConfig, DefaultsAndSpaces) {
  auto r = parseParallelConfig(" tp=8 , pp=2 ");
  ASSERT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(r->dp, 1);
  EXPECT_EQ(r->tp, 8);
  EXPECT_EQ(r->schedule, Schedule::OneFOneB);
  EXPECT_EQ(r->recompute, Recompute::None);
}

TEST(ParallelConfig, ParseErrorsNameTheField) {
  EXPECT_EQ(parseError("dp=2,foo=1"),
            "parallel config: unknown key 'foo' (known keys: dp, tp, tp-mode, "
            "tp-sp, pp, sp, sp-mode, micro-batch, schedule, recompute, zero, "
            "offload)");
  EXPECT_EQ(parseError("tp=0"),
            "parallel config: 'tp=0': tp must be a positive integer");
  EXPECT_EQ(parseError("micro-batch=two"),
            "parallel config: 'micro-batch=two': micro-batch must be a "
            "positive integer");
  EXPECT_EQ(parseError("tp-mode=4d"),
            "parallel config: 'tp-mode=4d': tp-mode must be one of 1d, 2d, "
            "2.5d:D, 3d");
  EXPECT_NE(parseError("tp-mode=2.5d").find("2.5d:D with a positive depth"),
            std::string::npos);
  EXPECT_NE(parseError("schedule=interleaved:1").find("V >= 2"),
            std::string::npos);
  EXPECT_NE(parseError("schedule=zb").find("schedule must be one of"),
            std::string::npos);
  EXPECT_NE(parseError("recompute=some").find("recompute must be one of"),
            std::string::npos);
  EXPECT_EQ(parseError("zero=4"),
            "parallel config: 'zero=4': zero must be 0, 1, 2 or 3");
  EXPECT_NE(parseError("offload=disk").find("offload must be one of"),
            std::string::npos);
  EXPECT_NE(parseError("tp-sp=yes").find("tp-sp must be 0 or 1"),
            std::string::npos);
  EXPECT_NE(parseError("dp").find("expected KEY=VALUE"), std::string::npos);
}

TEST(ParallelConfig, ValidationErrorsNameTheConstraint) {
  GptDims d;
  d.layers = 24;
  d.hidden = 2304;
  d.heads = 24;
  d.seq = 2048;
  d.vocab = 51200;
  d.global_batch = 512;
  Workload w = makeGptWorkload(d);
  ClusterSpec c = handCluster(4); // 32 devices

  EXPECT_EQ(validateError("dp=32", w, c), "<no error>");
  EXPECT_EQ(validateError("dp=8,tp=2", w, c),
            "parallel config: dp*tp*pp*sp = 8*2*1*1 = 16 does not match the "
            "cluster's 32 devices (4 nodes x 8)");
  EXPECT_EQ(validateError("dp=2,tp=16", w, c),
            "parallel config: tp=16 does not divide the number of heads (24)");
  EXPECT_EQ(validateError("dp=2,tp=4,pp=5", w, handCluster(5)),
            "parallel config: layers (24) not divisible by pp*v = 5*1 = 5");
  EXPECT_EQ(validateError("dp=4,tp=4,pp=2,schedule=interleaved:5", w, c),
            "parallel config: layers (24) not divisible by pp*v = 2*5 = 10");
  EXPECT_EQ(validateError("dp=32,micro-batch=3", w, c),
            "parallel config: global batch 512 not divisible by "
            "dp*micro_batch = 32*3 = 96");
  EXPECT_EQ(validateError("dp=4,tp=8,tp-mode=2d", w, c),
            "parallel config: tp=8 with tp-mode=2d must be a square (q^2)");
  EXPECT_EQ(validateError("dp=8,tp=4,tp-mode=2d,tp-sp=1", w, c),
            "parallel config: tp-sp=1 applies to tp-mode=1d only (2d/2.5d/3d "
            "already split activations)");
  EXPECT_EQ(
      validateError("dp=16,pp=2,micro-batch=4,schedule=interleaved:2", w, c),
      "<no error>");
  // 512 / (16 * 32) = 1 micro-batch, not a multiple of pp = 2.
  EXPECT_EQ(
      validateError("dp=16,pp=2,micro-batch=32,schedule=interleaved:2", w, c),
      "parallel config: schedule=interleaved needs the micro-batch "
      "count (1 = global batch / (dp*micro_batch)) to be a multiple of "
      "pp (2)");
  EXPECT_EQ(validateError("dp=32,offload=params", w, c),
            "parallel config: offload=params needs zero=3 (parameters are "
            "partitioned and fetched per layer)");
  EXPECT_EQ(validateError("dp=2,sp=16,sp-mode=ulysses", w, c),
            "parallel config: tp*sp = 16 does not divide the number of heads "
            "(24)");
  EXPECT_EQ(validateError("dp=2,tp=8,sp=2,tp-sp=1", w, c), "<no error>");
}

// recompute=full:K parses, prints back, and rejects K < 1.
TEST(ParallelConfig, PerLayerRecompute) {
  auto cfg = parseParallelConfig("dp=8,recompute=full:6");
  ASSERT_TRUE(static_cast<bool>(cfg)) << llvm::toString(cfg.takeError());
  EXPECT_EQ(cfg->recompute, Recompute::Full);
  EXPECT_EQ(cfg->recompute_layers, 6);
  EXPECT_NE(toString(*cfg).find("recompute=full:6"), std::string::npos);
  auto bad = parseParallelConfig("recompute=full:0");
  ASSERT_FALSE(static_cast<bool>(bad));
  EXPECT_NE(llvm::toString(bad.takeError()).find("full:K with K >= 1"),
            std::string::npos);
}
