//===- EstimatorTest.cpp - Whole-plan estimates ---------------------------===//

#include "compiler/cost/Estimator.h"

#include "compiler/cost/Compute.h"

#include "TestCluster.h"

#include "gtest/gtest.h"

#include <cmath>

using namespace colossal::cost;
using colossal::cost::testing::handCluster;

namespace {
GptDims gpt1T() {
  GptDims d;
  d.layers = 128;
  d.hidden = 25600;
  d.heads = 160;
  d.seq = 2048;
  d.vocab = 51200;
  d.global_batch = 3072;
  return d;
}

Estimate mustEstimate(const Workload &w, const char *cfgText,
                      const ClusterSpec &c, EstimateOptions opts = {}) {
  auto cfg = parseParallelConfig(cfgText);
  EXPECT_TRUE(static_cast<bool>(cfg)) << llvm::toString(cfg.takeError());
  if (!cfg)
    return {};
  auto e = estimate(w, *cfg, c, opts);
  EXPECT_TRUE(static_cast<bool>(e))
      << cfgText << ": " << llvm::toString(e.takeError());
  return e ? *e : Estimate{};
}

ClusterSpec a100(int64_t nodes) {
  auto c = parseClusterArg("dgx-a100-80g:nodes=" + std::to_string(nodes));
  EXPECT_TRUE(static_cast<bool>(c));
  return c ? *c : ClusterSpec{};
}

double sumOfTimes(const Estimate &e) {
  const TimeBreakdown &t = e.time;
  return t.compute + t.recompute + t.tp_comm + t.sp_comm + t.dp_comm_exposed +
         t.pp_bubble + t.pp_p2p + t.offload + t.optimizer;
}
} // namespace

// FLOPs counted from the workload equal Megatron's closed forms:
// model 72 B s l h^2 (1 + s/6h + V/(12 l h)); with full recompute
// 96 B s l h^2 (1 + s/6h + V/(16 l h)).
TEST(Estimator, FlopsMatchMegatronFormulas) {
  GptDims d = gpt1T();
  Workload w = makeGptWorkload(d);
  Estimate e = mustEstimate(
      w, "dp=6,tp=8,pp=64,schedule=interleaved:2,recompute=full", a100(384));
  double B = 3072, s = 2048, l = 128, h = 25600, V = 51200;
  double base = B * s * l * h * h;
  EXPECT_NEAR(e.model_flops /
                  (72 * base * (1 + s / (6 * h) + V / (12 * l * h))),
              1.0, 1e-12);
  EXPECT_NEAR(e.hardware_flops /
                  (96 * base * (1 + s / (6 * h) + V / (16 * l * h))),
              1.0, 1e-12);
  EXPECT_NEAR(e.tflops_per_gpu * 1e12 * e.step_time_s * 3072, e.model_flops,
              e.model_flops * 1e-12);
  EXPECT_NEAR(e.mfu, e.tflops_per_gpu / 312, 1e-12);
  EXPECT_TRUE(e.fits_in_memory);
}

// Calibration guard: Megatron-LM SC'21 Table 1, hardware TFLOP/s per GPU,
// each row within 10%, mean absolute error within 5%.
TEST(Estimator, MegatronTable1WithinTenPercent) {
  struct Row {
    double billions;
    int64_t heads, hidden, layers, tp, pp, gpus, batch, micro;
    double tflops;
  } rows[] = {{1.7, 24, 2304, 24, 1, 1, 32, 512, 16, 137},
              {3.6, 32, 3072, 30, 2, 1, 64, 512, 16, 138},
              {7.5, 32, 4096, 36, 4, 1, 128, 512, 16, 142},
              {18.4, 48, 6144, 40, 8, 1, 256, 1024, 8, 135},
              {39.1, 64, 8192, 48, 8, 2, 512, 1536, 4, 138},
              {76.1, 80, 10240, 60, 8, 4, 1024, 1792, 2, 140},
              {145.6, 96, 12288, 80, 8, 8, 1536, 2304, 2, 148},
              {310.1, 128, 16384, 96, 8, 16, 1920, 2160, 1, 155},
              {529.6, 128, 20480, 105, 8, 35, 2520, 2520, 1, 163},
              {1008.0, 160, 25600, 128, 8, 64, 3072, 3072, 1, 163}};
  double sumAbs = 0;
  for (const Row &r : rows) {
    GptDims d;
    d.layers = r.layers;
    d.hidden = r.hidden;
    d.heads = r.heads;
    d.seq = 2048;
    d.vocab = 51200;
    d.global_batch = r.batch;
    Workload w = makeGptWorkload(d);
    ParallelConfig cfg;
    cfg.tp = r.tp;
    cfg.pp = r.pp;
    cfg.dp = r.gpus / (r.tp * r.pp);
    cfg.micro_batch = r.micro;
    cfg.recompute = Recompute::Full;
    if (r.billions >= 76)
      for (int64_t v : {4, 3, 2})
        if ((r.layers / r.pp) % v == 0) {
          cfg.schedule = Schedule::Interleaved;
          cfg.virtual_stages = v;
          break;
        }
    auto e = estimate(w, cfg, a100(r.gpus / 8));
    ASSERT_TRUE(static_cast<bool>(e)) << llvm::toString(e.takeError());
    double err = (e->hardware_tflops_per_gpu - r.tflops) / r.tflops;
    EXPECT_LT(std::fabs(err), 0.10)
        << r.billions << "B: predicted " << e->hardware_tflops_per_gpu;
    EXPECT_TRUE(e->fits_in_memory) << r.billions << "B";
    sumAbs += std::fabs(err);
  }
  EXPECT_LE(sumAbs / 10, 0.05);
}

// One replicated GEMM layer, data parallel only: compute is m micro-batches of
// forward + dgrad + wgrad; model state is 2 + 2 + 12 bytes per parameter.
TEST(Estimator, SmallWorkloadByHand) {
  Workload w;
  w.global_batch = 64;
  w.seq_len = 1024;
  LayerSpec l;
  l.count = 2;
  l.ops.push_back(OpSpec::gemm("mm", 1024, 4096, 4096, TpRole::Replicated));
  l.params_replicated = 4096.0 * 4096;
  w.layers.push_back(l);
  ClusterSpec c = handCluster(1);
  Estimate e = mustEstimate(w, "dp=8,micro-batch=2", c);
  EXPECT_EQ(e.micro_batches, 4);
  double fwd = gemmTime(c, 2048, 4096, 4096, 1, DType::BF16);
  double bwd = gemmTime(c, 2048, 4096, 4096, 1, DType::BF16) +
               gemmTime(c, 4096, 4096, 2048, 1, DType::BF16);
  EXPECT_NEAR(e.time.compute, 4 * 2 * (fwd + bwd), 1e-15);
  EXPECT_EQ(e.time.tp_comm, 0);
  EXPECT_EQ(e.time.pp_bubble, 0);
  double P = 2 * 4096.0 * 4096;
  EXPECT_DOUBLE_EQ(e.memory.params, 2 * P);
  EXPECT_DOUBLE_EQ(e.memory.grads, 2 * P);
  EXPECT_DOUBLE_EQ(e.memory.optimizer, 12 * P);
  // The gradient all-reduce (67 MB over NVLink) hides behind backward except
  // the last 40 MB bucket.
  double bucket = collectiveTime(c, CollectiveKind::AllReduce, 40e6, {8, 8});
  EXPECT_NEAR(e.time.dp_comm_exposed, bucket, 1e-15);
  EXPECT_NEAR(sumOfTimes(e), e.step_time_s, 1e-15);
}

TEST(Estimator, BreakdownSumsAndJson) {
  Workload w = makeGptWorkload(gpt1T());
  Estimate e = mustEstimate(
      w, "dp=6,tp=8,pp=64,schedule=interleaved:2,recompute=full", a100(384));
  EXPECT_NEAR(sumOfTimes(e), e.step_time_s, e.step_time_s * 1e-12);
  EXPECT_GT(e.time.recompute, 0);
  EXPECT_GT(e.time.tp_comm, 0);
  EXPECT_GT(e.time.pp_bubble, 0);
  EXPECT_GT(e.time.pp_p2p, 0);
  EXPECT_NEAR(e.memory.total(), e.peak_memory_bytes, 1);
  llvm::json::Value v = e.toJSON();
  const llvm::json::Object *o = v.getAsObject();
  ASSERT_NE(o, nullptr);
  for (const char *k :
       {"step_time_s", "tflops_per_gpu", "hardware_tflops_per_gpu", "mfu",
        "peak_memory_bytes", "config", "time", "memory"})
    EXPECT_NE(o->get(k), nullptr) << k;
  const llvm::json::Object *t = o->getObject("time");
  ASSERT_NE(t, nullptr);
  for (const char *k : {"compute", "recompute", "tp_comm", "dp_comm_exposed",
                        "pp_bubble", "pp_p2p", "offload"})
    EXPECT_NE(t->get(k), nullptr) << k;
  const llvm::json::Object *m = o->getObject("memory");
  ASSERT_NE(m, nullptr);
  for (const char *k :
       {"params", "grads", "optimizer", "activations", "comm_buffers"})
    EXPECT_NE(m->get(k), nullptr) << k;
}

TEST(Estimator, InvalidConfigIsAnError) {
  Workload w = makeGptWorkload(gpt1T());
  auto cfg = parseParallelConfig("dp=8,tp=8,pp=64");
  ASSERT_TRUE(static_cast<bool>(cfg));
  auto e = estimate(w, *cfg, a100(384));
  ASSERT_FALSE(static_cast<bool>(e));
  EXPECT_NE(llvm::toString(e.takeError())
                .find("does not match the cluster's "
                      "3072 devices"),
            std::string::npos);
}

TEST(Estimator, MemoryRespondsToZeroRecomputeAndSequenceParallel) {
  GptDims d;
  d.layers = 32;
  d.hidden = 4096;
  d.heads = 32;
  d.seq = 4096;
  d.vocab = 50304;
  d.global_batch = 256;
  Workload w = makeGptWorkload(d);
  ClusterSpec c = a100(4);
  Estimate z0 = mustEstimate(w, "dp=8,tp=4,micro-batch=1", c);
  Estimate z1 = mustEstimate(w, "dp=8,tp=4,micro-batch=1,zero=1", c);
  Estimate z3 = mustEstimate(w, "dp=8,tp=4,micro-batch=1,zero=3", c);
  EXPECT_DOUBLE_EQ(z1.memory.optimizer, z0.memory.optimizer / 8);
  EXPECT_DOUBLE_EQ(z3.memory.params, z0.memory.params / 8);
  EXPECT_LT(z3.peak_memory_bytes, z1.peak_memory_bytes);
  EXPECT_LT(z1.peak_memory_bytes, z0.peak_memory_bytes);

  Estimate sp = mustEstimate(w, "dp=8,tp=4,tp-sp=1,micro-batch=1", c);
  Estimate full = mustEstimate(w, "dp=8,tp=4,micro-batch=1,recompute=full", c);
  Estimate sel =
      mustEstimate(w, "dp=8,tp=4,micro-batch=1,recompute=selective", c);
  EXPECT_LT(sp.memory.activations, z0.memory.activations);
  EXPECT_LT(sel.memory.activations, z0.memory.activations);
  EXPECT_LT(full.memory.activations, sel.memory.activations);
  EXPECT_GT(full.time.recompute, sel.time.recompute);
  EXPECT_GT(sel.time.recompute, 0);
  EXPECT_EQ(z0.time.recompute, 0);
  // Recompute is paid in time, not in model FLOPs.
  EXPECT_DOUBLE_EQ(full.model_flops, z0.model_flops);
  EXPECT_GT(full.hardware_flops, z0.hardware_flops);
  EXPECT_LT(full.tflops_per_gpu, z0.tflops_per_gpu);
}

TEST(Estimator, DataParallelOverlapHidesGradientReduction) {
  GptDims d;
  d.layers = 24;
  d.hidden = 2048;
  d.heads = 16;
  d.seq = 2048;
  d.vocab = 50304;
  d.global_batch = 512;
  Workload w = makeGptWorkload(d);
  ClusterSpec c = a100(8);
  EstimateOptions noOverlap;
  noOverlap.overlap_dp_comm = false;
  Estimate on = mustEstimate(w, "dp=64,micro-batch=8", c);
  Estimate off = mustEstimate(w, "dp=64,micro-batch=8", c, noOverlap);
  EXPECT_GT(off.time.dp_comm_exposed, on.time.dp_comm_exposed);
  EXPECT_GT(on.time.dp_comm_exposed, 0); // the last bucket
  EXPECT_LT(on.step_time_s, off.step_time_s);
}

TEST(Estimator, EveryModeGivesAFinitePositiveEstimate) {
  GptDims d;
  d.layers = 32;
  d.hidden = 4096;
  d.heads = 32;
  d.seq = 8192;
  d.vocab = 50304;
  d.global_batch = 64;
  Workload w = makeGptWorkload(d);
  ClusterSpec c = a100(8); // 64 GPUs
  for (const char *cfg :
       {"dp=4,tp=16,tp-mode=2d,micro-batch=1",
        "dp=8,tp=8,tp-mode=2.5d:2,micro-batch=1",
        "dp=8,tp=8,tp-mode=3d,micro-batch=1",
        "dp=2,tp=8,sp=4,sp-mode=ring,tp-sp=1,micro-batch=1",
        "dp=2,tp=4,sp=8,sp-mode=ulysses,micro-batch=1",
        "dp=4,tp=8,pp=2,schedule=gpipe,micro-batch=1",
        "dp=64,zero=3,offload=params,micro-batch=1,recompute=full",
        "dp=64,zero=2,offload=optimizer,micro-batch=1,recompute=full"}) {
    Estimate e = mustEstimate(w, cfg, c);
    EXPECT_TRUE(std::isfinite(e.step_time_s) && e.step_time_s > 0) << cfg;
    EXPECT_TRUE(std::isfinite(e.peak_memory_bytes) && e.peak_memory_bytes > 0)
        << cfg;
    EXPECT_GT(e.mfu, 0.05) << cfg;
    EXPECT_LT(e.mfu, 0.9) << cfg;
    EXPECT_NEAR(sumOfTimes(e), e.step_time_s, e.step_time_s * 1e-12) << cfg;
  }
  Estimate off = mustEstimate(
      w, "dp=64,zero=2,offload=optimizer,micro-batch=1,recompute=full", c);
  EXPECT_EQ(off.memory.optimizer, 0);
  EXPECT_GT(off.time.offload, 0);
  EXPECT_GT(off.host_memory_bytes_per_node, 0);
  Estimate ring =
      mustEstimate(w, "dp=2,tp=8,sp=4,sp-mode=ring,tp-sp=1,micro-batch=1", c);
  Estimate uly =
      mustEstimate(w, "dp=2,tp=4,sp=8,sp-mode=ulysses,micro-batch=1", c);
  EXPECT_GE(ring.time.sp_comm, 0);
  EXPECT_GT(uly.time.sp_comm, 0);
}

TEST(Estimator, DoesNotFitIsReportedNotAnError) {
  Workload w = makeGptWorkload(gpt1T());
  // 1T on 8 nodes with pp = 8: 1T * 16 B / 64 = 250 GB per device.
  Estimate e = mustEstimate(w, "dp=1,tp=8,pp=8,micro-batch=1", a100(8));
  EXPECT_FALSE(e.fits_in_memory);
  EXPECT_GT(e.peak_memory_bytes, 200e9);
}

// The LM head shares the word embedding: one copy without pipelining, a
// second one on the last stage with it.
TEST(Estimator, TiedEmbeddingIsStoredOncePerStage) {
  GptDims d;
  d.layers = 8;
  d.hidden = 1024;
  d.heads = 16;
  d.seq = 1024;
  d.vocab = 32000;
  d.global_batch = 64;
  Workload w = makeGptWorkload(d);
  ClusterSpec c = handCluster(1);
  Estimate one = mustEstimate(w, "dp=8,micro-batch=1", c);
  EXPECT_DOUBLE_EQ(one.memory.params, 2 * w.parameterCount());

  double h = 1024, s = 1024, V = 32000;
  double block = 12 * h * h + 13 * h;
  Estimate two = mustEstimate(w, "dp=4,pp=2,micro-batch=1", c);
  EXPECT_EQ(two.peak_memory_stage, 0);
  EXPECT_DOUBLE_EQ(two.memory.params, 2 * (4 * block + V * h + s * h));
  // Both stages together hold the tied weight twice.
  EXPECT_DOUBLE_EQ(2 * w.parameterCount() + 2 * V * h,
                   2 * (8 * block + 2 * V * h + s * h + 2 * h));
}

// Recomputing K of the layers sits between keeping everything and
// recomputing everything, in both memory and time: with 2 of 4 layers
// recomputed, half the recomputation time of full recompute.
TEST(Estimator, PerLayerRecomputeIsBetweenNoneAndFull) {
  GptDims d;
  d.layers = 4;
  d.hidden = 2048;
  d.heads = 16;
  d.seq = 2048;
  d.vocab = 51200;
  d.global_batch = 8;
  Workload w = makeGptWorkload(d);
  ClusterSpec c = cantFail(getPresetCluster("dgx-a100-80g"));
  auto run = [&](const char *recompute) {
    ParallelConfig cfg = cantFail(parseParallelConfig(
        std::string("dp=8,micro-batch=1,recompute=") + recompute));
    return cantFail(estimate(w, cfg, c));
  };
  Estimate none = run("none"), half = run("full:2"), full = run("full");
  EXPECT_LT(full.peak_memory_bytes, half.peak_memory_bytes);
  EXPECT_LT(half.peak_memory_bytes, none.peak_memory_bytes);
  EXPECT_NEAR(half.time.recompute, full.time.recompute / 2, 1e-12);
  EXPECT_EQ(none.time.recompute, 0);
  EXPECT_NEAR(half.hardware_flops - half.model_flops,
              (full.hardware_flops - full.model_flops) / 2,
              1e-6 * full.hardware_flops);
}

// Offloading activations keeps two layers' worth on the device and moves
// the rest through PCIe, exposed only when the transfer outlasts compute.
TEST(Estimator, ActivationOffload) {
  GptDims d;
  d.layers = 8;
  d.hidden = 2048;
  d.heads = 16;
  d.seq = 2048;
  d.vocab = 51200;
  d.global_batch = 8;
  Workload w = makeGptWorkload(d);
  ClusterSpec c = cantFail(getPresetCluster("dgx-a100-80g"));
  auto run = [&](const char *offload) {
    ParallelConfig cfg = cantFail(parseParallelConfig(
        std::string("dp=8,micro-batch=1,offload=") + offload));
    return cantFail(estimate(w, cfg, c));
  };
  Estimate kept = run("none"), moved = run("activations");
  // 8 layers on the stage: 2 stay, 6 of the stored activations move.
  EXPECT_LT(moved.memory.activations, kept.memory.activations);
  EXPECT_GT(moved.host_memory_bytes_per_node, 0);
  EXPECT_GE(moved.step_time_s, kept.step_time_s);
  EXPECT_GE(moved.time.offload, 0);
  auto bad = parseParallelConfig("offload=disk");
  ASSERT_FALSE(static_cast<bool>(bad));
  EXPECT_NE(llvm::toString(bad.takeError()).find("activations"),
            std::string::npos);
}

// ZeRO-3 gathers hide under compute only as far as the links carry them:
// with slow inter-node links the weights of every micro-batch's passes
// arrive late, and even on fast links the first layer's gather of each
// pass and the compute slowed by the collectives beside it are charged.
TEST(Estimator, ZeroThreeExposesWhatTheLinksCannotHide) {
  GptDims d;
  d.layers = 24;
  d.hidden = 2048;
  d.heads = 16;
  d.seq = 2048;
  d.vocab = 50304;
  d.global_batch = 64;
  Workload w = makeGptWorkload(d);
  ClusterSpec fast = a100(4);
  ClusterSpec slow = fast;
  slow.inter_node.bandwidth = 1.25e9; // 10 Gb/s Ethernet per GPU
  Estimate onFast = mustEstimate(w, "dp=32,micro-batch=2,zero=3", fast);
  Estimate onSlow = mustEstimate(w, "dp=32,micro-batch=2,zero=3", slow);
  EXPECT_GT(onFast.time.dp_comm_exposed, 0);
  EXPECT_GT(onSlow.time.dp_comm_exposed, 10 * onFast.time.dp_comm_exposed);
  EXPECT_GT(onSlow.time.dp_comm_exposed, onSlow.time.compute);
  // Without the slowdown of overlapped compute, less is exposed.
  ClusterSpec free = fast;
  free.efficiency.comm_compute_slowdown = 0;
  Estimate onFree = mustEstimate(w, "dp=32,micro-batch=2,zero=3", free);
  EXPECT_LT(onFree.time.dp_comm_exposed, onFast.time.dp_comm_exposed);
}

// Offload copies share what the hardware shares: two GPUs behind one PCIe
// switch split its uplink, and with NICs behind the same switches the
// ZeRO-3 traffic to other nodes crosses the same links.
TEST(Estimator, OffloadSharesPcieSwitchesAndNicTraffic) {
  GptDims d;
  d.layers = 16;
  d.hidden = 4096;
  d.heads = 32;
  d.seq = 2048;
  d.vocab = 51200;
  d.global_batch = 16;
  Workload w = makeGptWorkload(d);
  ClusterSpec shared = a100(2);
  ClusterSpec privateLinks = shared;
  privateLinks.host.gpus_per_pcie_switch = 1;
  privateLinks.host.pcie_switch_uplink_bandwidth = 0;
  privateLinks.host.inter_node_over_pcie = false;
  const char *cfg = "dp=16,micro-batch=1,zero=3,offload=activations";
  Estimate s = mustEstimate(w, cfg, shared);
  Estimate p = mustEstimate(w, cfg, privateLinks);
  EXPECT_GT(s.time.offload, p.time.offload);
  EXPECT_GT(s.step_time_s, p.step_time_s);
}
