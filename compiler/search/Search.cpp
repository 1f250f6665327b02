//===- Search.cpp - Choosing the fastest parallel plan that fits ----------===//
//
// Steps: (1) enumerate the parallel shapes the model and cluster admit
// (tensor parallel kept inside a node), (2) for each shape and micro-batch
// and schedule, score the plan without memory savers and, only when it does
// not fit, the savers in increasing order of cost, (3) keep the fastest
// that fits and the runners-up, (4) explain: why alternatives lost, or why
// nothing fits and what would.
//
//===----------------------------------------------------------------------===//

#include "compiler/search/Search.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <cmath>
#include <map>

using namespace colossal;
using namespace colossal::search;
using cost::ParallelConfig;

namespace {

llvm::Error searchError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

std::vector<int64_t> divisors(int64_t n) {
  std::vector<int64_t> d;
  for (int64_t i = 1; i * i <= n; ++i)
    if (n % i == 0) {
      d.push_back(i);
      if (i * i != n)
        d.push_back(n / i);
    }
  llvm::sort(d);
  return d;
}

bool isPowerOf(int64_t n, int exponent, int64_t &q) {
  q = static_cast<int64_t>(
      std::llround(std::pow(static_cast<double>(n), 1.0 / exponent)));
  int64_t p = 1;
  for (int i = 0; i < exponent; ++i)
    p *= q;
  return q >= 2 && p == n;
}

const char *const kNumericKeys[] = {"dp",          "tp",   "pp", "sp",
                                    "micro-batch", "zero", "v"};
const char *const kEnumKeys[] = {"tp-mode",  "tp-sp",     "sp-mode",
                                 "schedule", "recompute", "offload"};

int64_t numericValue(const ParallelConfig &c, llvm::StringRef key) {
  if (key == "dp")
    return c.dp;
  if (key == "tp")
    return c.tp;
  if (key == "pp")
    return c.pp;
  if (key == "sp")
    return c.sp;
  if (key == "micro-batch")
    return c.micro_batch;
  if (key == "zero")
    return c.zero;
  return c.schedule == cost::Schedule::Interleaved ? c.virtual_stages : 1;
}

std::string enumValue(const ParallelConfig &c, llvm::StringRef key) {
  if (key == "tp-mode")
    return cost::tpModeName(c.tp_mode).str();
  if (key == "tp-sp")
    return c.tp_sp ? "1" : "0";
  if (key == "sp-mode")
    return c.sp_mode == cost::SpMode::Ring ? "ring" : "ulysses";
  if (key == "schedule")
    return cost::scheduleName(c.schedule).str();
  if (key == "recompute")
    return cost::recomputeName(c.recompute).str();
  return cost::offloadName(c.offload).str();
}

bool satisfies(const ParallelConfig &c, const std::vector<Constraint> &cs) {
  for (const Constraint &k : cs) {
    if (llvm::is_contained(kNumericKeys, k.key)) {
      int64_t have = numericValue(c, k.key), want = std::stoll(k.value);
      bool ok = k.op == "="    ? have == want
                : k.op == "<=" ? have <= want
                : k.op == ">=" ? have >= want
                : k.op == "<"  ? have < want
                               : have > want;
      if (!ok)
        return false;
    } else {
      // "offload=none|optimizer": any of the listed values.
      llvm::SmallVector<llvm::StringRef> allowed;
      llvm::StringRef(k.value).split(allowed, '|');
      if (!llvm::is_contained(allowed, enumValue(c, k.key)))
        return false;
    }
  }
  return true;
}

/// The memory savers, cheapest first: what is tried when a plan does not fit.
struct Savers {
  cost::Recompute recompute;
  int zero;
  cost::Offload offload;
  int64_t layers = 0; ///< with Full: layers per chunk recomputed (0: all)
};
const Savers kSavers[] = {
    {cost::Recompute::None, 0, cost::Offload::None},
    {cost::Recompute::None, 1, cost::Offload::None},
    {cost::Recompute::None, 2, cost::Offload::None},
    {cost::Recompute::Selective, 1, cost::Offload::None},
    {cost::Recompute::Selective, 2, cost::Offload::None},
    {cost::Recompute::None, 3, cost::Offload::None},
    {cost::Recompute::Selective, 3, cost::Offload::None},
    {cost::Recompute::Full, 1, cost::Offload::None},
    {cost::Recompute::Full, 2, cost::Offload::None},
    {cost::Recompute::Full, 3, cost::Offload::None},
    {cost::Recompute::Selective, 2, cost::Offload::Optimizer},
    {cost::Recompute::Full, 2, cost::Offload::Optimizer},
    {cost::Recompute::Full, 3, cost::Offload::Optimizer},
    {cost::Recompute::Full, 3, cost::Offload::Params},
    {cost::Recompute::Selective, 2, cost::Offload::Activations},
    {cost::Recompute::Selective, 3, cost::Offload::Activations},
    {cost::Recompute::Full, 3, cost::Offload::Activations},
};

std::string shapeKey(const ParallelConfig &c) {
  return std::to_string(c.dp) + "," + std::to_string(c.tp) + "," +
         cost::tpModeName(c.tp_mode).str() + "," + std::to_string(c.pp) + "," +
         std::to_string(c.sp);
}

std::string gib(double bytes) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << llvm::format("%.1f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return os.str();
}

/// Why `alt` lost to `best`: the part of the step that grew the most.
std::string whyLost(const Candidate &alt, const Candidate &best) {
  const cost::TimeBreakdown &a = alt.estimate.time, &b = best.estimate.time;
  std::pair<const char *, double> parts[] = {
      {"compute", a.compute - b.compute},
      {"recomputation", a.recompute - b.recompute},
      {"tensor-parallel communication", a.tp_comm - b.tp_comm},
      {"sequence-parallel communication", a.sp_comm - b.sp_comm},
      {"exposed data-parallel communication",
       a.dp_comm_exposed - b.dp_comm_exposed},
      {"pipeline bubble", a.pp_bubble - b.pp_bubble},
      {"pipeline transfers", a.pp_p2p - b.pp_p2p},
      {"offload transfers", a.offload - b.offload},
      {"optimizer step", a.optimizer - b.optimizer}};
  auto worst = *llvm::max_element(
      parts, [](auto &x, auto &y) { return x.second < y.second; });
  std::string s;
  llvm::raw_string_ostream os(s);
  double slower = alt.estimate.step_time_s / best.estimate.step_time_s - 1;
  os << llvm::format("%.2f%% slower", 100 * slower);
  if (worst.second > 0)
    os << llvm::format(": %.3f s more ", worst.second) << worst.first;
  return os.str();
}

/// Layers per stage that balance the stages' times, from an even split's
/// estimate: a middle stage gives the time of a layer, the ends their extra
/// (embedding, head); the smallest T with sum_i floor((T - extra_i) / t)
/// >= layers is the balanced bottleneck. Empty when the even split is
/// already balanced.
std::vector<int64_t> balancedStages(const cost::Estimate &even, int64_t layers,
                                    int64_t pp) {
  const std::vector<double> &t = even.stage_times_s;
  if (static_cast<int64_t>(t.size()) != pp || layers < pp)
    return {};
  double n = static_cast<double>(layers / pp);
  double perLayer = pp >= 3 ? t[pp / 2] / n : std::min(t.front(), t.back()) / n;
  if (!(perLayer > 0))
    return {};
  std::vector<double> extra(pp);
  for (int64_t i = 0; i < pp; ++i)
    extra[i] = std::max(0.0, t[i] - n * perLayer);
  auto count = [&](double T, int64_t i) {
    return std::max<int64_t>(
        1, static_cast<int64_t>(std::floor((T - extra[i]) / perLayer + 1e-9)));
  };
  double lo = 0, hi = *llvm::max_element(t) + perLayer * layers;
  for (int iter = 0; iter < 60; ++iter) {
    double mid = (lo + hi) / 2;
    int64_t total = 0;
    for (int64_t i = 0; i < pp; ++i)
      total += count(mid, i);
    (total >= layers ? hi : lo) = mid;
  }
  std::vector<int64_t> split(pp);
  int64_t total = 0;
  for (int64_t i = 0; i < pp; ++i)
    total += split[i] = count(hi, i);
  // Take back the surplus from the slowest stages.
  while (total > layers) {
    int64_t worst = -1;
    for (int64_t i = 0; i < pp; ++i)
      if (split[i] > 1 &&
          (worst < 0 || split[i] * perLayer + extra[i] >
                            split[worst] * perLayer + extra[worst]))
        worst = i;
    if (worst < 0)
      return {};
    --split[worst];
    --total;
  }
  if (total != layers ||
      llvm::all_of(split, [&](int64_t k) { return k == layers / pp; }))
    return {};
  return split;
}

/// Scores every candidate of the space.
struct Searcher {
  const cost::Workload &w;
  const cost::ClusterSpec &c;
  const SearchOptions &o;
  double budget;
  int64_t evaluated = 0;
  std::vector<Candidate> fitting; // best per shape
  Candidate closest;
  double closestDeficit = INFINITY;
  /// The plan that fits device memory with the least host memory over the
  /// node's (offload plans refused for host memory alone).
  Candidate hostLimited;
  double hostLimitedDeficit = INFINITY;
  std::map<std::string, size_t> bestOfShape;

  Searcher(const cost::Workload &w, const cost::ClusterSpec &c,
           const SearchOptions &o)
      : w(w), c(c), o(o) {}

  bool fits(const cost::Estimate &e) const {
    return e.peak_memory_bytes <= budget && e.fits_in_host_memory;
  }
  /// How far `e` is from fitting: device bytes over the budget, plus host
  /// bytes over the node's host memory shared out per device.
  double deficit(const cost::Estimate &e) const {
    double host = e.fits_in_host_memory
                      ? 0
                      : (e.host_memory_bytes_per_node -
                         e.usable_host_memory_bytes_per_node) /
                            static_cast<double>(c.gpus_per_node);
    return std::max(0.0, e.peak_memory_bytes - budget) + host;
  }

  /// Scores `cfg`; true when it is valid and fits.
  bool consider(const ParallelConfig &cfg) {
    if (!satisfies(cfg, o.constraints))
      return false;
    if (o.executableOnly && !cost::notYetExecutable(cfg).empty())
      return false;
    auto e = cost::estimate(w, cfg, c);
    ++evaluated;
    if (!e) {
      llvm::consumeError(e.takeError());
      return false;
    }
    if (!fits(*e)) {
      if (e->peak_memory_bytes <= budget) {
        double h = e->host_memory_bytes_per_node -
                   e->usable_host_memory_bytes_per_node;
        if (h < hostLimitedDeficit) {
          hostLimitedDeficit = h;
          hostLimited = Candidate{cfg, *e, false, ""};
        }
      }
      double d = deficit(*e);
      if (d < closestDeficit ||
          (d == closestDeficit &&
           e->step_time_s < closest.estimate.step_time_s)) {
        closestDeficit = d;
        closest = Candidate{cfg, *e, false, ""};
      }
      return false;
    }
    // Pipeline stages: the first holds the embedding and the last the head,
    // so an even split of the layers leaves them slower. Try the split that
    // balances the stages (optimal for identical layers).
    if (cfg.pp > 1 && cfg.schedule != cost::Schedule::Interleaved &&
        cfg.stage_layers.empty()) {
      ParallelConfig balanced = cfg;
      balanced.stage_layers = balancedStages(*e, w.blockLayerCount(), cfg.pp);
      if (!balanced.stage_layers.empty())
        consider(balanced);
    }
    std::string key = shapeKey(cfg);
    auto it = bestOfShape.find(key);
    if (it == bestOfShape.end()) {
      bestOfShape[key] = fitting.size();
      fitting.push_back(Candidate{cfg, *e, true, ""});
    } else if (e->step_time_s < fitting[it->second].estimate.step_time_s) {
      fitting[it->second] = Candidate{cfg, *e, true, ""};
    }
    return true;
  }

  /// One shape at one micro-batch and schedule: no savers, then savers in
  /// order of cost until one fits. ZeRO-1 is always tried as well: it
  /// shards optimizer state for nearly no time.
  void withSavers(ParallelConfig cfg) {
    // Before recomputing every layer, try recomputing some of each model
    // chunk's layers (a quarter, half, three quarters): per-layer
    // checkpointing that keeps the rest.
    int64_t chunks =
        cfg.pp *
        (cfg.schedule == cost::Schedule::Interleaved ? cfg.virtual_stages : 1);
    int64_t perChunk = w.blockLayerCount() / std::max<int64_t>(1, chunks);
    std::vector<Savers> savers;
    for (const Savers &s : kSavers) {
      if (s.recompute == cost::Recompute::Full && s.zero == 1 &&
          s.offload == cost::Offload::None)
        for (int64_t k : {perChunk / 4, perChunk / 2, 3 * perChunk / 4}) {
          if (k < 1 || k >= perChunk ||
              (!savers.empty() && savers.back().layers == k))
            continue;
          for (int zero : {1, 2, 3})
            savers.push_back(
                {cost::Recompute::Full, zero, cost::Offload::None, k});
        }
      savers.push_back(s);
    }
    bool baseFits = false;
    for (size_t i = 0; i < savers.size(); ++i) {
      const Savers &s = savers[i];
      cfg.recompute = s.recompute;
      cfg.recompute_layers = s.layers;
      cfg.zero = s.zero;
      cfg.offload = s.offload;
      bool fit = consider(cfg);
      if (i == 0)
        baseFits = fit;
      // A plan that fits as it is only adds cost with savers past ZeRO-1;
      // one that does not tries them all (offloading activations can beat
      // recomputing them), and the fastest that fits is kept.
      if (baseFits && s.zero >= 1)
        break;
    }
  }

  void run() {
    int64_t devices = c.numDevices();
    int64_t blocks = w.blockLayerCount();
    for (int64_t tp : divisors(devices)) {
      if (tp > c.gpus_per_node)
        continue;
      struct Mode {
        cost::TpMode mode;
        int64_t depth;
      };
      std::vector<Mode> modes = {{cost::TpMode::OneD, 1}};
      int64_t q;
      if (isPowerOf(tp, 2, q))
        modes.push_back({cost::TpMode::TwoD, 1});
      if (isPowerOf(tp, 3, q))
        modes.push_back({cost::TpMode::ThreeD, 1});
      for (int64_t d = 2; d * 4 <= tp; ++d)
        if (tp % d == 0 && isPowerOf(tp / d, 2, q))
          modes.push_back({cost::TpMode::TwoPointFiveD, d});
      for (int64_t sp : divisors(devices / tp)) {
        if (w.seq_len % sp != 0)
          continue;
        for (int64_t pp : divisors(devices / (tp * sp))) {
          if (pp > 1 && (blocks % pp != 0 || pp > blocks))
            continue;
          int64_t dp = devices / (tp * sp * pp);
          if (w.global_batch % dp != 0)
            continue;
          for (const Mode &mode : modes)
            for (int tpSp = 0;
                 tpSp <= (tp > 1 && mode.mode == cost::TpMode::OneD); ++tpSp)
              for (int spMode = 0; spMode <= (sp > 1); ++spMode)
                shape(dp, tp, mode.mode, mode.depth, tpSp, pp, sp, spMode);
        }
      }
    }
  }

  void shape(int64_t dp, int64_t tp, cost::TpMode mode, int64_t depth,
             bool tpSp, int64_t pp, int64_t sp, int spMode) {
    ParallelConfig cfg;
    cfg.dp = dp;
    cfg.tp = tp;
    cfg.tp_mode = mode;
    cfg.tp_depth = depth;
    cfg.tp_sp = tpSp;
    cfg.pp = pp;
    cfg.sp = sp;
    cfg.sp_mode = spMode ? cost::SpMode::Ulysses : cost::SpMode::Ring;
    int64_t perReplica = w.global_batch / dp;
    int64_t blocks = w.blockLayerCount();
    for (int64_t mb : divisors(perReplica)) {
      if (mb > o.maxMicroBatch)
        break;
      // 2D/2.5D/3D tensor parallelism splits each micro-batch's batch
      // over the rows of its mesh (as Colossal-AI requires).
      if (mb % cfg.tpBatchSplit() != 0)
        continue;
      cfg.micro_batch = mb;
      int64_t m = perReplica / mb;
      if (pp == 1) {
        cfg.schedule = cost::Schedule::OneFOneB;
        cfg.virtual_stages = 1;
        withSavers(cfg);
        continue;
      }
      // GPipe is not enumerated: it has 1F1B's bubble ((p-1)/m), keeps all
      // m micro-batches' activations in flight instead of at most
      // p - stage, and where the played-out schedule lets it hide hops it
      // measured slower than 1F1B anyway (docs/auto-parallel.md);
      // --parallel=...,schedule=gpipe still estimates it.
      cfg.schedule = cost::Schedule::OneFOneB;
      cfg.virtual_stages = 1;
      withSavers(cfg);
      for (int64_t v : {2, 3, 4}) {
        if (blocks % (pp * v) != 0 || m % pp != 0)
          continue;
        cfg.schedule = cost::Schedule::Interleaved;
        cfg.virtual_stages = v;
        withSavers(cfg);
      }
      cfg.virtual_stages = 1;
    }
  }
};

} // namespace

llvm::Expected<std::vector<Constraint>>
colossal::search::parseConstraints(llvm::StringRef text) {
  std::vector<Constraint> out;
  llvm::SmallVector<llvm::StringRef> items;
  text.split(items, ',', -1, false);
  for (llvm::StringRef item : items) {
    item = item.trim();
    size_t at = item.find_first_of("<>=");
    if (at == llvm::StringRef::npos || at == 0)
      return searchError("constraint '" + item +
                         "': expected KEY OP VALUE with OP one of = <= >= < >, "
                         "e.g. tp<=8");
    Constraint k;
    k.key = item.take_front(at).trim().str();
    llvm::StringRef rest = item.drop_front(at);
    k.op = rest.starts_with("<=") || rest.starts_with(">=")
               ? rest.take_front(2).str()
               : rest.take_front(1).str();
    k.value = rest.drop_front(k.op.size()).trim().str();
    bool numeric = llvm::is_contained(kNumericKeys, k.key);
    if (!numeric && !llvm::is_contained(kEnumKeys, k.key))
      return searchError(
          "constraint '" + item + "': unknown key '" + k.key +
          "' (known: dp, tp, pp, sp, micro-batch, zero, v, "
          "tp-mode, tp-sp, sp-mode, schedule, recompute, offload)");
    int64_t n;
    if (numeric && llvm::StringRef(k.value).getAsInteger(10, n))
      return searchError("constraint '" + item + "': '" + k.value +
                         "' is not an integer");
    if (!numeric && k.op != "=")
      return searchError("constraint '" + item + "': " + k.key +
                         " takes '=' only");
    out.push_back(k);
  }
  return out;
}

llvm::Expected<SearchResult>
colossal::search::searchPlan(const cost::Workload &w,
                             const cost::ClusterSpec &c,
                             const SearchOptions &o) {
  auto start = std::chrono::steady_clock::now();
  Searcher s(w, c, o);
  s.budget = o.memoryBudgetBytes > 0
                 ? o.memoryBudgetBytes
                 : c.device.memory_bytes - c.device.reserved_bytes;
  s.run();
  SearchResult r;
  r.budgetBytes = s.budget;
  r.evaluated = s.evaluated;
  if (!s.fitting.empty()) {
    llvm::sort(s.fitting, [](const Candidate &a, const Candidate &b) {
      return a.estimate.step_time_s < b.estimate.step_time_s;
    });
    r.feasible = true;
    r.best = s.fitting.front();
    for (size_t i = 1;
         i < s.fitting.size() &&
         r.alternatives.size() < static_cast<size_t>(o.alternatives);
         ++i) {
      Candidate alt = s.fitting[i];
      alt.why = whyLost(alt, r.best);
      r.alternatives.push_back(alt);
    }
    // A faster plan that did not fit is worth saying.
    if (!std::isinf(s.closestDeficit) &&
        s.closest.estimate.step_time_s < r.best.estimate.step_time_s) {
      Candidate alt = s.closest;
      alt.why = alt.estimate.peak_memory_bytes > s.budget
                    ? "would be faster but needs " +
                          gib(alt.estimate.peak_memory_bytes) +
                          " per device, over the " + gib(s.budget) + " budget"
                    : "would be faster but needs " +
                          gib(alt.estimate.host_memory_bytes_per_node) +
                          " of host memory per node, over the node's " +
                          gib(alt.estimate.usable_host_memory_bytes_per_node);
      r.alternatives.push_back(alt);
    }
  } else if (std::isinf(s.closestDeficit)) {
    return searchError(
        "no parallel configuration is valid for this model on " +
        std::to_string(c.numDevices()) +
        " devices under the constraints (check that the batch, heads, hidden "
        "size and layers divide" +
        (o.executableOnly ? "; only plans colossal-run executes were "
                            "searched"
                          : "") +
        ")");
  } else {
    r.closest = s.closest;
    const cost::Estimate &ce = r.closest.estimate;
    r.deficitBytes = std::max(0.0, ce.peak_memory_bytes - s.budget);
    r.hostDeficitBytes = ce.fits_in_host_memory
                             ? 0
                             : ce.host_memory_bytes_per_node -
                                   ce.usable_host_memory_bytes_per_node;
    if (!std::isinf(s.hostLimitedDeficit) &&
        cost::toString(s.hostLimited.config) !=
            cost::toString(r.closest.config)) {
      const cost::Estimate &he = s.hostLimited.estimate;
      r.suggestions.push_back(
          "host memory: " + cost::toString(s.hostLimited.config) +
          " fits device memory but offloads " +
          gib(he.host_memory_bytes_per_node) + " per node, " +
          gib(s.hostLimitedDeficit) + " more than the node's " +
          gib(he.usable_host_memory_bytes_per_node) +
          " (cluster spec host.memory_bytes); nodes with more host memory "
          "would run it");
      r.hostLimitedDeficitBytes = s.hostLimitedDeficit;
    }
    if (r.hostDeficitBytes > 0)
      r.suggestions.push_back(
          "host memory: " + cost::toString(r.closest.config) + " offloads " +
          gib(ce.host_memory_bytes_per_node) + " per node, " +
          gib(r.hostDeficitBytes) + " more than the node's " +
          gib(ce.usable_host_memory_bytes_per_node) +
          " (cluster spec host.memory_bytes); offload less, use more nodes, "
          "or raise host.memory_bytes if the nodes have more");
    const cost::MemoryBreakdown &m = r.closest.estimate.memory;
    std::pair<const char *, double> parts[] = {
        {"parameters", m.params},
        {"gradients", m.grads},
        {"optimizer state", m.optimizer},
        {"activations", m.activations},
        {"communication buffers", m.comm_buffers}};
    auto largest = *llvm::max_element(
        parts, [](auto &a, auto &b) { return a.second < b.second; });
    r.suggestions.push_back(
        std::string(largest.first) + " take " + gib(largest.second) +
        " of the " + gib(r.closest.estimate.peak_memory_bytes) +
        " peak even with " + cost::toString(r.closest.config) +
        " (the closest plan)");
    if (r.closest.config.micro_batch > 1)
      r.suggestions.push_back("use a smaller micro-batch (the closest plan "
                              "uses " +
                              std::to_string(r.closest.config.micro_batch) +
                              ")");
    if (o.suggestDevices) {
      for (int64_t factor = 2; factor <= 1024; factor *= 2) {
        cost::ClusterSpec bigger = c;
        bigger.nodes = c.nodes * factor;
        SearchOptions quick = o;
        quick.suggestDevices = false;
        quick.maxMicroBatch = 1;
        auto more = searchPlan(w, bigger, quick);
        if (!more) {
          llvm::consumeError(more.takeError());
          continue;
        }
        r.evaluated += more->evaluated;
        if (more->feasible) {
          r.suggestions.push_back(
              "more devices: " + std::to_string(bigger.nodes) + " nodes (" +
              std::to_string(bigger.numDevices()) + " devices) fit, e.g. " +
              cost::toString(more->best.config));
          break;
        }
      }
    }
    if (r.hostDeficitBytes == 0 && r.hostLimitedDeficitBytes == 0)
      r.suggestions.push_back("offload more to host memory, or raise the "
                              "memory budget if the devices have more");
  }
  r.searchSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return r;
}

static llvm::json::Object candidateJSON(const Candidate &c) {
  llvm::json::Object o = std::move(*c.estimate.toJSON().getAsObject());
  o["config"] = cost::toString(c.config);
  if (!c.why.empty())
    o["why_not"] = c.why;
  return o;
}

static llvm::json::Object meshJSON(const ParallelConfig &cfg) {
  // Outermost to innermost, as ranks are laid out: pp, dp, sp, tp.
  return llvm::json::Object{
      {"axes",
       llvm::json::Array{
           llvm::json::Object{
               {"name", "pp"}, {"size", cfg.pp}, {"role", "pipeline stages"}},
           llvm::json::Object{{"name", "dp"},
                              {"size", cfg.dp},
                              {"role", "data parallel replicas"}},
           llvm::json::Object{{"name", "sp"},
                              {"size", cfg.sp},
                              {"role", "sequence (context) parallel"}},
           llvm::json::Object{{"name", "tp"},
                              {"size", cfg.tp},
                              {"role", "tensor parallel, inside a node"}}}}};
}

llvm::json::Value colossal::search::reportJSON(const SearchResult &r,
                                               const cost::Workload &w,
                                               const cost::ClusterSpec &c) {
  llvm::json::Object o{
      {"feasible", r.feasible},
      {"devices", c.numDevices()},
      {"memory_budget_bytes", r.budgetBytes},
      {"search_time_s", r.searchSeconds},
      {"candidates_evaluated", r.evaluated},
      {"model", llvm::json::Object{{"parameters", w.parameterCount()},
                                   {"blocks", w.blockLayerCount()},
                                   {"structure", w.structure},
                                   {"global_batch", w.global_batch},
                                   {"seq_len", w.seq_len}}},
  };
  if (r.feasible) {
    const ParallelConfig &cfg = r.best.config;
    llvm::json::Object plan = candidateJSON(r.best);
    plan["mesh"] = meshJSON(cfg);
    int64_t chunks =
        cfg.pp *
        (cfg.schedule == cost::Schedule::Interleaved ? cfg.virtual_stages : 1);
    plan["layers_per_stage"] = w.blockLayerCount() / cfg.pp;
    plan["model_chunks"] = chunks;
    plan["remat"] = cost::recomputeName(cfg.recompute);
    plan["offload"] = cost::offloadName(cfg.offload);
    // Every configuration of the space is scored, so the plan is the
    // space's optimum under the cost model; the per-op integer program's
    // proven gap is reported with it (intra_op.gap) when it runs.
    plan["search"] =
        "exhaustive over the plan space: " + std::to_string(r.evaluated) +
        " configurations scored, the fastest that fits chosen";
    o["plan"] = std::move(plan);
    llvm::json::Array alts;
    for (const Candidate &a : r.alternatives)
      alts.push_back(candidateJSON(a));
    o["alternatives"] = std::move(alts);
  } else {
    o["closest"] = candidateJSON(r.closest);
    o["deficit_bytes"] = r.deficitBytes;
    o["host_deficit_bytes_per_node"] = r.hostDeficitBytes;
    if (r.hostLimitedDeficitBytes > 0)
      o["host_limited_deficit_bytes_per_node"] = r.hostLimitedDeficitBytes;
    o["deficit_stage"] = r.closest.estimate.peak_memory_stage;
    llvm::json::Array s;
    for (const std::string &x : r.suggestions)
      s.push_back(x);
    o["suggestions"] = std::move(s);
  }
  return o;
}

std::string colossal::search::reportText(const SearchResult &r,
                                         const cost::Workload &w,
                                         const cost::ClusterSpec &c) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << llvm::format(
      "searched %lld plans in %.3f s for %.3g parameters on %lld devices\n",
      static_cast<long long>(r.evaluated), r.searchSeconds, w.parameterCount(),
      static_cast<long long>(c.numDevices()));
  if (!r.feasible) {
    os << "no plan fits: the closest, " << cost::toString(r.closest.config)
       << ", needs " << gib(r.closest.estimate.peak_memory_bytes)
       << " on pipeline stage " << r.closest.estimate.peak_memory_stage;
    if (r.deficitBytes > 0)
      os << ", " << gib(r.deficitBytes) << " over the " << gib(r.budgetBytes)
         << " budget";
    else
      os << " (within the " << gib(r.budgetBytes) << " budget)";
    if (r.hostDeficitBytes > 0)
      os << ", and " << gib(r.closest.estimate.host_memory_bytes_per_node)
         << " of host memory per node, " << gib(r.hostDeficitBytes)
         << " over the node's "
         << gib(r.closest.estimate.usable_host_memory_bytes_per_node);
    os << "\nwhat would make it fit:\n";
    for (const std::string &x : r.suggestions)
      os << "  - " << x << "\n";
    return os.str();
  }
  const cost::Estimate &e = r.best.estimate;
  os << "plan: " << cost::toString(r.best.config) << "\n"
     << llvm::format(
            "  step %.3f s, %.1f TFLOP/s per device, MFU %.1f%%, peak %s\n",
            e.step_time_s, e.tflops_per_gpu, 100 * e.mfu,
            gib(e.peak_memory_bytes).c_str())
     << llvm::format("  time: compute %.3f, recompute %.3f, tp %.3f, sp %.3f, "
                     "dp %.3f, bubble %.3f, p2p %.3f, offload %.3f s\n",
                     e.time.compute, e.time.recompute, e.time.tp_comm,
                     e.time.sp_comm, e.time.dp_comm_exposed, e.time.pp_bubble,
                     e.time.pp_p2p, e.time.offload)
     << "  memory: params " << gib(e.memory.params) << ", grads "
     << gib(e.memory.grads) << ", optimizer " << gib(e.memory.optimizer)
     << ", activations " << gib(e.memory.activations) << "\n";
  if (e.offload_bytes_per_device > 0)
    os << llvm::format("  offload: %.1f GB per device per step over PCIe at "
                       "%.1f GB/s (its share when every device copies), "
                       "copies take %.3f s under %.3f s of compute; host "
                       "memory %s of the node's %s\n",
                       e.offload_bytes_per_device / 1e9,
                       e.offload_bandwidth_per_device / 1e9, e.offload_copy_s,
                       e.offload_compute_s,
                       gib(e.host_memory_bytes_per_node).c_str(),
                       gib(e.usable_host_memory_bytes_per_node).c_str());
  os << "alternatives:\n";
  for (const Candidate &a : r.alternatives)
    os << "  " << cost::toString(a.config) << ": " << a.why << "\n";
  return os.str();
}
