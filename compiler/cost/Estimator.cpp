//===- Estimator.cpp - Step time and peak memory of a training plan -------===//
//
// Steps: cost each distinct layer once for one micro-batch on one device;
// cut the Block layers into pp * v chunks and sum per pipeline stage; combine
// stages through the schedule; add the per-step terms (gradient reduction,
// optimizer, offload); take memory per stage and its maximum.
//
//===----------------------------------------------------------------------===//

#include "compiler/cost/Estimator.h"

#include "compiler/cost/Compute.h"
#include "compiler/cost/Memory.h"
#include "compiler/cost/Pipeline.h"
#include "compiler/cost/TensorParallel.h"

#include "llvm/ADT/SmallVector.h"

#include <algorithm>

using namespace colossal::cost;

namespace {

/// Everything the per-op costing needs, resolved once per estimate.
struct Ctx {
  const ClusterSpec &c;
  const ParallelConfig &cfg;
  const EstimateOptions &opts;
  DType dt;
  double e;  ///< bytes per element
  double mb; ///< micro-batch
  double tp, sp;
  int64_t q; ///< TP mesh side
  CommGroup tpGroup, spGroup;
  double tpParamDiv; ///< divisor of split parameters
};

/// One layer, one micro-batch, one device.
struct LayerCost {
  double fwd = 0, bwd = 0;     ///< kernels
  double coreFwd = 0;          ///< attention-core forward (selective)
  double tpFwd = 0, tpBwd = 0; ///< TP collectives
  double spFwd = 0, spBwd = 0; ///< context-parallel exchange, exposed
  double params = 0;           ///< parameters held (after TP)
  double replicatedParams = 0; ///< of which every TP rank holds whole
  double actStored = 0;        ///< bytes kept for backward
  double actKept = 0;          ///< bytes kept without recomputation
  double actFull = 0;          ///< bytes materialised by recompute
  double actCore = 0;          ///< attention-core bytes (selective)
};

/// Per pipeline stage sums.
struct StageCost {
  double fwd = 0, bwd = 0, recompute = 0, tp = 0, tpBwd = 0, sp = 0;
  double params = 0, largestLayerParams = 0, replicatedParams = 0;
  double actStored = 0, actWorking = 0;
  double blockLayers = 0; ///< transformer layers on the stage
  double paramLayers = 0; ///< layers with parameters (ZeRO-3 gather units)
  double total() const { return fwd + bwd + recompute + tp + sp; }
};

} // namespace

static double collective(const Ctx &x, CollectiveKind k, double bytes,
                         const CommGroup &g) {
  return collectiveTime(x.c, k, bytes, g, x.opts.collective_algo);
}

/// 1D TP collectives of a role'd GEMM: Megatron's f/g operators. With tp-sp
/// the all-reduce becomes reduce-scatter + all-gather (same volume).
static void oneDTpComm(const Ctx &x, TpRole role, double inBytes,
                       double outBytes, LayerCost &lc) {
  if (x.tp <= 1)
    return;
  auto ar = [&](double b) {
    return collective(x, CollectiveKind::AllReduce, b, x.tpGroup);
  };
  auto ag = [&](double b) {
    return collective(x, CollectiveKind::AllGather, b, x.tpGroup);
  };
  auto rs = [&](double b) {
    return collective(x, CollectiveKind::ReduceScatter, b, x.tpGroup);
  };
  if (role == TpRole::Column) {
    lc.tpFwd += x.cfg.tp_sp ? ag(inBytes) : 0;
    lc.tpBwd += x.cfg.tp_sp ? rs(inBytes) : ar(inBytes);
  } else if (role == TpRole::Row) {
    lc.tpFwd += x.cfg.tp_sp ? rs(outBytes) : ar(outBytes);
    lc.tpBwd += x.cfg.tp_sp ? ag(outBytes) : 0;
  }
}

static void costGemm(const Ctx &x, const OpSpec &op, LayerCost &lc) {
  double tokens = op.m * x.mb / x.sp;
  double m = tokens, n = op.n, k = op.k, steps = 1;
  if (op.tp_role != TpRole::Replicated && x.tp > 1) {
    double q = static_cast<double>(x.q);
    switch (x.cfg.tp_mode) {
    case TpMode::OneD:
      (op.tp_role == TpRole::Column ? n : k) /= x.tp;
      break;
    case TpMode::TwoD: // SUMMA: q steps of (m/q x k/q) * (k/q x n/q)
      m /= q, n /= q, k /= q, steps = q;
      break;
    case TpMode::TwoPointFiveD:
      m /= q * static_cast<double>(x.cfg.tp_depth), n /= q, k /= q, steps = q;
      break;
    case TpMode::ThreeD: // all-gather to X_il (m/q x k/q), A_lj (k/q x n/q)
      m /= q, n /= q, k /= q;
      break;
    }
  } else if (x.cfg.tp_mode != TpMode::OneD) {
    m /= x.tp; // activations are split over the whole mesh
  }
  lc.fwd += steps * gemmTime(x.c, m, n, k, op.batch, x.dt);
  lc.bwd += steps * (gemmTime(x.c, m, k, n, op.batch, x.dt) + // dgrad
                     gemmTime(x.c, k, n, m, op.batch, x.dt)); // wgrad
  if (op.tp_role == TpRole::Replicated || x.tp <= 1)
    return;
  double inBytes = tokens * op.k * op.batch * x.e;
  double outBytes = tokens * op.n * op.batch * x.e;
  if (x.cfg.tp_mode == TpMode::OneD) {
    oneDTpComm(x, op.tp_role, inBytes, outBytes, lc);
    return;
  }
  double t =
      tpLinearCommTime(x.c, x.cfg.tp_mode, x.cfg.tp, x.cfg.tp_depth, inBytes);
  lc.tpFwd += t * kTpForwardShare;
  lc.tpBwd += t * (1 - kTpForwardShare);
}

static void costAttention(const Ctx &x, const OpSpec &op, LayerCost &lc) {
  AttentionShape a;
  a.batch = x.mb;
  a.heads = op.heads / x.tp;
  a.s_q = op.s_q;
  a.s_kv = op.s_kv;
  a.head_dim = op.head_dim;
  a.fused = op.fused;
  a.dropout = op.dropout;
  a.causal = op.causal;
  bool ring = x.sp > 1 && x.cfg.sp_mode == SpMode::Ring;
  if (x.sp > 1) {
    if (ring) { // sp blocks of (s_q/sp) x (s_kv/sp) per device
      a.s_q /= x.sp;
      a.s_kv /= x.sp;
      a.batch *= x.sp;
    } else {
      a.heads /= x.sp;
    }
  }
  double f = attentionForwardTime(x.c, a, x.dt);
  double b = attentionBackwardTime(x.c, a, x.dt);
  lc.fwd += f;
  lc.bwd += b;
  if (op.attention_core)
    lc.coreFwd += f;
  if (x.sp <= 1)
    return;
  double localHidden = op.heads / x.tp * op.head_dim;
  double localTokens = op.s_q * x.mb / x.sp;
  if (ring) {
    // Each of sp-1 steps passes a K and a V block to the next rank, hidden
    // behind the block attention computed meanwhile (backward also returns
    // dK, dV: twice the traffic).
    double blk = 2 * localTokens * localHidden * x.e;
    double step = p2pTime(x.c, blk, x.spGroup.nodes() > 1);
    double hops = x.sp - 1;
    double hide = (x.sp - 1) / x.sp;
    lc.spFwd += std::max(0.0, hops * step - f * hide);
    lc.spBwd += std::max(0.0, 2 * hops * step - b * hide);
  } else {
    // Ulysses: all-to-all Q, K, V to head-split and the output back; each
    // rank sends its (s/sp x h/tp) slice.
    double bytes = localTokens * localHidden * x.e;
    double t = collective(x, CollectiveKind::AllToAll, bytes, x.spGroup);
    lc.spFwd += 4 * t;
    lc.spBwd += 4 * t;
  }
}

static LayerCost costLayer(const Ctx &x, const LayerSpec &l) {
  LayerCost lc;
  for (const OpSpec &op : l.ops) {
    switch (op.kind) {
    case OpKind::Gemm:
      costGemm(x, op, lc);
      break;
    case OpKind::Attention:
      costAttention(x, op, lc);
      break;
    case OpKind::MemoryBound:
    case OpKind::Embedding: {
      double div = shardDivisor(x.cfg, op.shard);
      double f = memoryBoundTime(x.c, op.fwd_bytes * x.mb / div);
      lc.fwd += f;
      lc.bwd += memoryBoundTime(x.c, op.bwd_bytes * x.mb / div);
      if (op.attention_core)
        lc.coreFwd += f;
      if (op.kind == OpKind::Embedding && x.tp > 1) {
        double out = op.m * x.mb / x.sp * op.n * x.e;
        oneDTpComm(x, TpRole::Row, 0, out, lc);
      }
      break;
    }
    }
  }
  lc.params = l.params_split / x.tpParamDiv + l.params_replicated;
  lc.replicatedParams = l.params_replicated;
  ParallelConfig keepAll = x.cfg;
  if (l.role != LayerRole::Block) // Megatron checkpoints transformer layers
    keepAll.recompute = Recompute::None;
  lc.actStored = storedActivationBytes(l.activations, keepAll);
  keepAll.recompute = Recompute::None;
  lc.actKept = storedActivationBytes(l.activations, keepAll);
  lc.actFull = fullActivationBytes(l.activations, x.cfg);
  ActivationDivisors d = activationDivisors(x.cfg);
  lc.actCore = l.activations.attention_core / d.split / d.context * x.mb;
  return lc;
}

/// Adds `count` copies of layer `li` to stage `s`; `withParams` false for
/// a tied weight whose owner already lives on this stage.
static void addToStage(const Ctx &x, const Workload &w, size_t li,
                       const LayerCost &lc, double count, StageCost &s,
                       bool withParams = true) {
  const LayerSpec &l = w.layers[li];
  bool block = l.role == LayerRole::Block;
  s.fwd += count * lc.fwd;
  s.bwd += count * lc.bwd;
  s.tp += count * (lc.tpFwd + lc.tpBwd);
  s.tpBwd += count * lc.tpBwd;
  s.sp += count * (lc.spFwd + lc.spBwd);
  double stored = count * lc.actStored;
  if (block && x.cfg.recompute == Recompute::Full) {
    // recompute=full:K recomputes K layers of each of the stage's chunks.
    double chunks = x.cfg.schedule == Schedule::Interleaved
                        ? static_cast<double>(x.cfg.virtual_stages)
                        : 1.0;
    double redone = x.cfg.recompute_layers > 0
                        ? std::min(count, x.cfg.recompute_layers * chunks)
                        : count;
    s.recompute += redone * lc.fwd;
    s.tp += redone * lc.tpFwd;
    s.sp += redone * lc.spFwd;
    s.actWorking = std::max(s.actWorking, lc.actFull);
    stored = redone * lc.actStored + (count - redone) * lc.actKept;
  } else if (block && x.cfg.recompute == Recompute::Selective) {
    s.recompute += count * lc.coreFwd;
    s.actWorking = std::max(s.actWorking, lc.actCore);
  }
  if (withParams) {
    s.params += count * lc.params;
    s.replicatedParams += count * lc.replicatedParams;
    s.largestLayerParams = std::max(s.largestLayerParams, lc.params);
    if (lc.params > 0)
      s.paramLayers += count;
  }
  s.actStored += stored;
  if (block)
    s.blockLayers += count;
}

llvm::Expected<Estimate> colossal::cost::estimate(const Workload &w,
                                                  const ParallelConfig &cfg,
                                                  const ClusterSpec &c,
                                                  const EstimateOptions &opts) {
  if (llvm::Error err = validateParallelConfig(cfg, w, c))
    return std::move(err);

  Ctx x{c,
        cfg,
        opts,
        w.dtype,
        dtypeBytes(w.dtype),
        static_cast<double>(cfg.micro_batch),
        static_cast<double>(cfg.tp),
        static_cast<double>(cfg.sp),
        cfg.tpMeshSide(),
        CommGroup::strided(c, cfg.tp, 1),
        CommGroup::strided(c, cfg.sp, cfg.tp),
        1.0 / tpLinearCost(cfg.tp_mode, cfg.tp, cfg.tp_depth).params};
  const int64_t p = cfg.pp;
  const int64_t v =
      cfg.schedule == Schedule::Interleaved ? cfg.virtual_stages : 1;
  const int64_t m = w.global_batch / (cfg.dp * cfg.micro_batch);
  const int64_t dpSize = cfg.dp * cfg.sp; // ranks holding the same weights
  const CommGroup dpGroup = CommGroup::strided(c, dpSize, cfg.tp);

  // Cost each distinct layer once.
  llvm::SmallVector<LayerCost, 8> layerCosts;
  layerCosts.reserve(w.layers.size());
  for (const LayerSpec &l : w.layers)
    layerCosts.push_back(costLayer(x, l));

  // Cut the Block layers into pp * v chunks; chunk k runs on stage k % pp.
  llvm::SmallVector<StageCost, 16> stages(p);
  llvm::SmallVector<int64_t, 8> stageOfLayer(w.layers.size(), -1);
  const int64_t chunkSize = w.blockLayerCount() / (p * v);
  // Chunk boundaries: even, or as stage-layers says (v == 1).
  llvm::SmallVector<int64_t, 16> chunkEnd;
  for (int64_t k = 0, acc = 0; k < p * v; ++k) {
    acc += cfg.stage_layers.empty() ? chunkSize : cfg.stage_layers[k];
    chunkEnd.push_back(acc);
  }
  auto chunkOf = [&](int64_t position) {
    return static_cast<int64_t>(llvm::upper_bound(chunkEnd, position) -
                                chunkEnd.begin());
  };
  int64_t pos = 0;
  for (size_t li = 0; li < w.layers.size(); ++li) {
    const LayerSpec &l = w.layers[li];
    if (l.role != LayerRole::Block) {
      stageOfLayer[li] = l.role == LayerRole::Pre ? 0 : p - 1;
      continue;
    }
    int64_t end = pos + l.count;
    while (pos < end) {
      int64_t chunk = chunkOf(pos);
      int64_t take = std::min(end, chunkEnd[chunk]) - pos;
      addToStage(x, w, li, layerCosts[li], static_cast<double>(take),
                 stages[chunk % p]);
      stageOfLayer[li] = chunk % p; // used for tied weights: any stage will do
      pos += take;
    }
  }
  for (size_t li = 0; li < w.layers.size(); ++li) {
    const LayerSpec &l = w.layers[li];
    if (l.role == LayerRole::Block)
      continue;
    // A tied weight is stored again only on a stage without its owner.
    bool ownCopy = l.params_shared_with < 0 ||
                   stageOfLayer[l.params_shared_with] != stageOfLayer[li];
    addToStage(x, w, li, layerCosts[li], static_cast<double>(l.count),
               stages[stageOfLayer[li]], ownCopy);
  }

  // Combine stages through the schedule.
  llvm::SmallVector<double, 16> stageTimes;
  int64_t critical = 0;
  for (int64_t i = 0; i < p; ++i) {
    stageTimes.push_back(stages[i].total());
    if (stageTimes[i] > stageTimes[critical])
      critical = i;
  }
  PipelineTime pt = pipelineTime(stageTimes, m, v);

  Estimate est;
  est.config = toString(cfg);
  est.micro_batches = m;
  est.critical_stage = critical;
  est.stage_times_s.assign(stageTimes.begin(), stageTimes.end());
  TimeBreakdown &tb = est.time;
  const StageCost &cs = stages[critical];
  double md = static_cast<double>(m);
  tb.compute = md * (cs.fwd + cs.bwd);
  tb.recompute = md * cs.recompute;
  tb.tp_comm = md * cs.tp;
  tb.sp_comm = md * cs.sp;
  tb.pp_bubble = pt.bubble;

  // Pipeline sends: per micro-batch and chunk one activation forward and one
  // gradient backward. A send does not hold its stage: the schedule is
  // played out (simulateSchedule) with each hop between the stages, and
  // what the critical stage waits beyond its own work is the pipeline's
  // cost: the bubble (the same schedule without hops) and the transfers
  // (the rest: the fill and drain's hops, and steady-state hops a stage
  // with less work than the critical one cannot hide).
  double msg = 0;
  if (p > 1) {
    msg = w.stage_boundary_bytes * x.mb / x.sp / (cfg.tp_sp ? x.tp : 1.0);
    bool cross = CommGroup::strided(c, 2, cfg.tp * cfg.sp * cfg.dp).nodes() > 1;
    double t;
    if (opts.pp_scatter_gather && cfg.tp > 1 && !cfg.tp_sp &&
        cfg.tp_mode == TpMode::OneD)
      t = p2pTime(c, msg / x.tp, cross) +
          collective(x, CollectiveKind::AllGather, msg, x.tpGroup);
    else
      t = p2pTime(c, msg, cross);
    llvm::SmallVector<double, 16> fwd, bwd;
    for (int64_t i = 0; i < p; ++i) {
      const StageCost &st = stages[i];
      double work = st.fwd + st.bwd;
      double f = st.fwd + (st.tp - st.tpBwd) +
                 (work > 0 ? st.sp * st.fwd / work : 0.5 * st.sp);
      fwd.push_back(f);
      bwd.push_back(st.total() - f);
    }
    Schedule sched = v > 1 ? Schedule::Interleaved : cfg.schedule;
    // (The hop-free schedule's idle time is pipelineTime's bubble.)
    double own = md * stageTimes[critical];
    double waited = scheduleMakespan(sched, fwd, bwd, m, v, t) - own;
    tb.pp_p2p = std::max(0.0, waited - tb.pp_bubble);
  }

  // Per-step terms and memory, stage by stage.
  const double gpn = static_cast<double>(c.gpus_per_node);
  const double dpd = static_cast<double>(dpSize);
  // Host copies, when every device copies at once (they do: SPMD): each
  // device's PCIe link, its share of its switch's uplink, and its share of
  // its socket's memory bandwidth, whichever is least.
  const double link = c.host.pcie_bandwidth * c.efficiency.pcie_fraction;
  const double uplinkShare = c.host.uplinkBandwidth() *
                             c.efficiency.pcie_fraction /
                             static_cast<double>(c.host.gpus_per_pcie_switch);
  const double hostBw =
      c.host.memory_bandwidth * c.efficiency.memory_bandwidth_fraction / gpn;
  const double pcie = std::min({link, uplinkShare, hostBw});
  // Communication overlapped with compute: what is left over, plus the
  // compute slowed down while the collective runs beside it.
  const double slowdown = c.efficiency.comm_compute_slowdown;
  auto overlapped = [&](double comm, double compute) {
    return std::max(0.0, comm - compute) + slowdown * std::min(comm, compute);
  };
  // An offload copy behind compute: the same, with the copies' slowdown.
  auto hidden = [&](double copy, double compute) {
    return std::max(0.0, copy - compute) +
           c.efficiency.copy_compute_slowdown * std::min(copy, compute);
  };
  // Bytes a device sends to other nodes per micro-batch in the ZeRO-3
  // gathers and reduce-scatters; with NICs behind the PCIe switches they
  // cross the device's PCIe link, which offload copies use too.
  auto interNodePerMb = [&](const StageCost &s) {
    if (cfg.zero < 3 || dpSize <= 1 || !c.host.inter_node_over_pcie ||
        dpGroup.nodes() <= 1)
      return 0.0;
    double passes = cfg.recompute == Recompute::Full ? 3 : 2;
    double n = static_cast<double>(dpSize);
    return (passes * s.params * w.param_bytes + s.params * w.grad_bytes) *
           (n - 1) / n;
  };
  // Adam touches grad, master/moments (read + write) and the new weights.
  const double stepBytesPerParam =
      w.grad_bytes + 2 * w.optimizer_bytes + w.param_bytes;
  double peak = -1, hostPeak = 0;
  for (int64_t i = 0; i < p; ++i) {
    const StageCost &s = stages[i];
    double gradBytes = s.params * w.grad_bytes;
    double paramBytes = s.params * w.param_bytes;
    // Backward of the last micro-batch, during which buckets can be reduced.
    double window = s.bwd + s.recompute + s.tpBwd;

    // Data-parallel traffic.
    double exposed = 0;
    if (dpSize > 1) {
      auto hide = [&](double total, double bucketBytes, CollectiveKind k) {
        if (!opts.overlap_dp_comm)
          return total;
        double last = collective(
            x, k, std::min(bucketBytes, opts.dp_bucket_bytes), dpGroup);
        return std::min(total, overlapped(total - last, window) + last);
      };
      if (cfg.zero == 0) {
        double t = collective(x, CollectiveKind::AllReduce, gradBytes, dpGroup);
        exposed = hide(t, gradBytes, CollectiveKind::AllReduce);
      } else if (cfg.zero <= 2) {
        double rs =
            collective(x, CollectiveKind::ReduceScatter, gradBytes, dpGroup);
        exposed = hide(rs, gradBytes, CollectiveKind::ReduceScatter) +
                  collective(x, CollectiveKind::AllGather, paramBytes, dpGroup);
      } else {
        // ZeRO-3: gather weights for forward and backward (and recompute),
        // reduce-scatter gradients, every micro-batch; prefetched under the
        // stage's compute.
        // One gather and one reduce-scatter per layer (FSDP's units), so
        // each pays the collective's latency.
        double gathers = cfg.recompute == Recompute::Full ? 3 : 2;
        double units = std::max(1.0, s.paramLayers);
        double perMb =
            units * (gathers * collective(x, CollectiveKind::AllGather,
                                          paramBytes / units, dpGroup) +
                     collective(x, CollectiveKind::ReduceScatter,
                                gradBytes / units, dpGroup));
        // Each pass waits for its first layer's weights (nothing to hide
        // them under); the rest is prefetched a layer ahead under compute.
        double first = std::min(
            perMb, gathers * collective(x, CollectiveKind::AllGather,
                                        s.largestLayerParams * w.param_bytes,
                                        dpGroup));
        exposed = md * (first + overlapped(perMb - first, s.total()));
      }
    }
    // 2D/2.5D/3D tensor parallelism splits every op's rows over the whole
    // tp mesh, so the weights it leaves whole (norms, biases, convolutions)
    // see different rows on each tp rank: their gradients are all-reduced
    // over the tp group once per step, after the last backward (1D keeps
    // those rows whole on every tp rank and needs no such reduction).
    if (cfg.tp > 1 && cfg.tp_mode != TpMode::OneD && s.replicatedParams > 0)
      exposed += collective(x, CollectiveKind::AllReduce,
                            s.replicatedParams * w.grad_bytes, x.tpGroup);
    tb.dp_comm_exposed = std::max(tb.dp_comm_exposed, exposed);

    // Optimizer step, on the device or on the host.
    double shard = cfg.zero >= 1 ? s.params / dpd : s.params;
    double offload = 0;
    double copied = 0, copyTime = 0; // per device per step, over PCIe
    if (cfg.offload == Offload::None || cfg.offload == Offload::Activations) {
      tb.optimizer =
          std::max(tb.optimizer, memoryBoundTime(c, shard * stepBytesPerParam));
      if (cfg.offload == Offload::Activations) {
        // Each micro-batch's kept activations go to the host after forward
        // and come back before backward, overlapped with the stage's compute.
        double resident = std::min(1.0, 2.0 / std::max(1.0, s.blockLayers));
        double bytes = s.actStored * (1 - resident);
        double transfer =
            std::max(2 * bytes / pcie, (2 * bytes + interNodePerMb(s)) / link);
        offload = md * hidden(transfer, s.total());
        copied = md * 2 * bytes;
        copyTime = md * transfer;
      }
    } else {
      double d2h = shard * w.grad_bytes / pcie;
      double h2d = shard * w.param_bytes / pcie;
      copied = shard * (w.grad_bytes + w.param_bytes);
      copyTime = d2h + h2d;
      offload = hidden(d2h, window) + shard * stepBytesPerParam / hostBw + h2d;
      if (cfg.offload == Offload::Params) {
        // Each pass over the stage fetches this rank's weight shard.
        double passes = cfg.recompute == Recompute::Full ? 3 : 2;
        double bytes = passes * shard * w.param_bytes;
        double fetch =
            std::max(bytes / pcie, (bytes + interNodePerMb(s)) / link);
        offload += md * hidden(fetch, s.total());
        copied += md * bytes;
        copyTime += md * fetch;
      }
    }
    tb.offload = std::max(tb.offload, offload);
    if (copied > est.offload_bytes_per_device) {
      est.offload_bytes_per_device = copied;
      est.offload_copy_s = copyTime;
      est.offload_compute_s = md * s.total();
    }

    // Memory.
    ModelStateBytes ms =
        modelStateBytes(s.params, w, cfg.zero, dpSize, cfg.offload);
    MemoryBreakdown mem;
    mem.params = ms.params;
    if (cfg.offload == Offload::Params) // double-buffered layer prefetch
      mem.params = 2 * s.largestLayerParams * w.param_bytes;
    mem.grads = ms.grads;
    mem.optimizer = ms.optimizer;
    double inFlight = inFlightMicroBatches(cfg.schedule, p, m, v, i);
    mem.activations = inFlight * s.actStored + s.actWorking;
    double hostActivations = 0;
    if (cfg.offload == Offload::Activations) {
      // Each layer's kept activations leave after its forward and return
      // before its backward: on the device, two layers' worth (the one in
      // use and the one in transfer) of each micro-batch in flight.
      double resident = std::min(1.0, 2.0 / std::max(1.0, s.blockLayers));
      mem.activations = inFlight * s.actStored * resident + s.actWorking;
      hostActivations = inFlight * s.actStored * (1 - resident);
    }
    if (dpSize > 1)
      mem.comm_buffers += cfg.zero >= 3
                              ? 2 * s.largestLayerParams * w.param_bytes
                              : std::min(opts.dp_bucket_bytes, gradBytes);
    if (cfg.tp > 1) // one gathered / reduced activation
      mem.comm_buffers += w.stage_boundary_bytes * x.mb / x.sp;
    if (p > 1) // send + receive, forward + backward
      mem.comm_buffers += 4 * msg;
    double total = mem.total();
    if (total > peak) {
      peak = total;
      est.memory = mem;
      est.peak_memory_stage = i;
    }
    hostPeak = std::max(hostPeak, ms.host + hostActivations);
  }

  est.step_time_s = tb.compute + tb.recompute + tb.tp_comm + tb.sp_comm +
                    tb.pp_bubble + tb.pp_p2p + tb.dp_comm_exposed +
                    tb.optimizer + tb.offload;

  // FLOPs: 3x forward for the model; recomputation on top for hardware.
  double B = static_cast<double>(w.global_batch);
  double recomputeFlops = 0;
  for (const LayerSpec &l : w.layers) {
    if (l.role != LayerRole::Block)
      continue;
    if (cfg.recompute == Recompute::Full) {
      double chunks = static_cast<double>(
          cfg.pp *
          (cfg.schedule == Schedule::Interleaved ? cfg.virtual_stages : 1));
      double blocks = static_cast<double>(w.blockLayerCount());
      double fraction =
          cfg.recompute_layers > 0
              ? std::min(1.0, cfg.recompute_layers * chunks / blocks)
              : 1.0;
      recomputeFlops += fraction * l.count * l.forwardFlopsPerSample();
    } else if (cfg.recompute == Recompute::Selective)
      recomputeFlops += l.count * l.attentionCoreFlopsPerSample();
  }
  est.model_flops = 3 * w.forwardFlopsPerSample() * B;
  est.hardware_flops = est.model_flops + recomputeFlops * B;
  double G = static_cast<double>(cfg.devices());
  if (est.step_time_s > 0) { // a workload of no ops takes no time
    est.tflops_per_gpu = est.model_flops / est.step_time_s / G / 1e12;
    est.hardware_tflops_per_gpu =
        est.hardware_flops / est.step_time_s / G / 1e12;
    est.mfu =
        est.model_flops / (est.step_time_s * G * c.device.peakFlops(w.dtype));
  }
  est.peak_memory_bytes = peak;
  est.usable_memory_bytes = c.device.memory_bytes - c.device.reserved_bytes;
  est.fits_in_memory = peak <= est.usable_memory_bytes;
  est.host_memory_bytes_per_node = hostPeak * gpn;
  est.usable_host_memory_bytes_per_node = c.host.memory_bytes;
  est.offload_bandwidth_per_device = cfg.offload == Offload::None ? 0 : pcie;
  est.fits_in_host_memory =
      est.host_memory_bytes_per_node <= est.usable_host_memory_bytes_per_node ||
      est.host_memory_bytes_per_node == 0;
  return est;
}

llvm::json::Value Estimate::toJSON() const {
  namespace json = llvm::json;
  return json::Object{
      {"config", config},
      {"step_time_s", step_time_s},
      {"tflops_per_gpu", tflops_per_gpu},
      {"hardware_tflops_per_gpu", hardware_tflops_per_gpu},
      {"mfu", mfu},
      {"peak_memory_bytes", peak_memory_bytes},
      {"usable_memory_bytes", usable_memory_bytes},
      {"fits_in_memory", fits_in_memory},
      {"host_memory_bytes_per_node", host_memory_bytes_per_node},
      {"usable_host_memory_bytes_per_node", usable_host_memory_bytes_per_node},
      {"fits_in_host_memory", fits_in_host_memory},
      {"offload_traffic",
       json::Object{{"bytes_per_device", offload_bytes_per_device},
                    {"copy_s", offload_copy_s},
                    {"compute_s", offload_compute_s},
                    {"bandwidth_per_device", offload_bandwidth_per_device}}},
      {"model_flops", model_flops},
      {"hardware_flops", hardware_flops},
      {"micro_batches", micro_batches},
      {"critical_stage", critical_stage},
      {"stage_times_s", json::Array(stage_times_s)},
      {"peak_memory_stage", peak_memory_stage},
      {"time", json::Object{{"compute", time.compute},
                            {"recompute", time.recompute},
                            {"tp_comm", time.tp_comm},
                            {"sp_comm", time.sp_comm},
                            {"dp_comm_exposed", time.dp_comm_exposed},
                            {"pp_bubble", time.pp_bubble},
                            {"pp_p2p", time.pp_p2p},
                            {"offload", time.offload},
                            {"optimizer", time.optimizer}}},
      {"memory", json::Object{{"params", memory.params},
                              {"grads", memory.grads},
                              {"optimizer", memory.optimizer},
                              {"activations", memory.activations},
                              {"comm_buffers", memory.comm_buffers},
                              {"total", memory.total()}}},
  };
}
