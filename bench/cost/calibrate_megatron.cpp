//===- calibrate_megatron.cpp - Cost model vs Megatron-LM SC'21 Table 1 ---===//
//
// Estimates every row of Narayanan et al., SC'21, Table 1 (GPT weak scaling on
// DGX A100 80GB) in its published configuration and prints predicted vs
// measured hardware TFLOP/s per GPU. Reports; asserts nothing.
//
//   colossal-bench-calibrate ../shared/anchors/megatron_sc21_table1.csv
//       [--cluster=dgx-a100-80g[:k=v,...]] [--breakdown] [--fit]
//
// --fit searches gemm_peak_fraction, gemm_half_saturation_dim and
// memory_bandwidth_fraction on a grid (minimising mean + 0.3 x max absolute
// error) and prints the best triple for each half-saturation dimension; the
// chosen values go into compiler/cost/clusters/dgx-a100-80g.json.
//
// Per row: tp, pp as published, dp = gpus / (tp * pp), sequence 2048,
// vocabulary 51200, bf16, full recomputation, nodes = gpus / 8. Rows with
// >= 76B parameters use the interleaved schedule with v = the largest of
// 4, 3, 2 that divides layers / pp (Megatron used 2-4 chunks per stage).
//
//===----------------------------------------------------------------------===//

#include "compiler/cost/ClusterSpec.h"
#include "compiler/cost/Estimator.h"
#include "compiler/cost/Workload.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <string>
#include <vector>

using namespace colossal::cost;
using llvm::StringRef;

namespace {
struct Row {
  double paramsBillion = 0;
  int64_t heads = 0, hidden = 0, layers = 0, tp = 0, pp = 0, gpus = 0;
  int64_t globalBatch = 0, microBatch = 0;
  double tflops = 0, percentOfPeak = 0;
};

/// A row as the cost model sees it.
struct Case {
  Row row;
  Workload workload;
  ParallelConfig config;
};
} // namespace

static bool parseRow(StringRef line, Row &r) {
  llvm::SmallVector<StringRef, 12> f;
  line.split(f, ',');
  if (f.size() != 11)
    return false;
  auto i64 = [&](int idx, int64_t &out) {
    return !f[idx].trim().getAsInteger(10, out);
  };
  auto dbl = [&](int idx, double &out) {
    return !f[idx].trim().getAsDouble(out);
  };
  return dbl(0, r.paramsBillion) && i64(1, r.heads) && i64(2, r.hidden) &&
         i64(3, r.layers) && i64(4, r.tp) && i64(5, r.pp) && i64(6, r.gpus) &&
         i64(7, r.globalBatch) && i64(8, r.microBatch) && dbl(9, r.tflops) &&
         dbl(10, r.percentOfPeak);
}

/// The published configuration of a row (see the file comment).
static Case makeCase(const Row &r) {
  GptDims d;
  d.layers = r.layers;
  d.hidden = r.hidden;
  d.heads = r.heads;
  d.seq = 2048;
  d.vocab = 51200;
  d.global_batch = r.globalBatch;
  d.dtype = DType::BF16;
  Case c{r, makeGptWorkload(d), ParallelConfig{}};
  ParallelConfig &cfg = c.config;
  cfg.tp = r.tp;
  cfg.pp = r.pp;
  cfg.dp = r.gpus / (r.tp * r.pp);
  cfg.micro_batch = r.microBatch;
  cfg.recompute = Recompute::Full;
  cfg.schedule = Schedule::OneFOneB;
  if (r.paramsBillion >= 76 && r.pp > 1) {
    int64_t perStage = r.layers / r.pp;
    for (int64_t v : {4, 3, 2})
      if (perStage % v == 0) {
        cfg.schedule = Schedule::Interleaved;
        cfg.virtual_stages = v;
        break;
      }
  }
  return c;
}

static llvm::Expected<Estimate> estimateCase(const Case &c,
                                             const ClusterSpec &base) {
  ClusterSpec cluster = base;
  cluster.nodes = c.row.gpus / base.gpus_per_node;
  return estimate(c.workload, c.config, cluster);
}

/// Mean and max absolute percentage error over all rows, or false when a row
/// cannot be estimated.
static bool scoreCases(const std::vector<Case> &cases, const ClusterSpec &base,
                       double &mae, double &maxAbs) {
  mae = maxAbs = 0;
  for (const Case &c : cases) {
    auto e = estimateCase(c, base);
    if (!e) {
      llvm::consumeError(e.takeError());
      return false;
    }
    double err = std::fabs(e->hardware_tflops_per_gpu - c.row.tflops) /
                 c.row.tflops * 100;
    mae += err;
    maxAbs = std::max(maxAbs, err);
  }
  mae /= static_cast<double>(cases.size());
  return true;
}

static void fit(const std::vector<Case> &cases, const ClusterSpec &base) {
  llvm::outs() << "grid fit of the GEMM and memory-bound efficiencies "
                  "(score = MAE + 0.3 * max)\n";
  for (double halfDim : {0.0, 16.0, 32.0, 48.0, 64.0, 96.0, 128.0}) {
    double best = 1e300, bestG = 0, bestM = 0, bestMae = 0, bestMax = 0;
    for (int gi = 0; gi <= 74; ++gi) {  // 0.50 .. 0.87
      for (int mi = 0; mi <= 6; ++mi) { // 0.60 .. 0.90
        ClusterSpec c = base;
        c.efficiency.gemm_peak_fraction = 0.50 + 0.005 * gi;
        c.efficiency.gemm_half_saturation_dim = halfDim;
        c.efficiency.memory_bandwidth_fraction = 0.60 + 0.05 * mi;
        double mae, mx;
        if (!scoreCases(cases, c, mae, mx))
          continue;
        if (mae + 0.3 * mx < best) {
          best = mae + 0.3 * mx;
          bestG = c.efficiency.gemm_peak_fraction;
          bestM = c.efficiency.memory_bandwidth_fraction;
          bestMae = mae;
          bestMax = mx;
        }
      }
    }
    llvm::outs() << llvm::format(
        "gemm_half_saturation_dim %5.0f: gemm_peak_fraction %.3f "
        "memory_bandwidth_fraction %.2f -> MAE %.2f%%, max %.2f%%\n",
        halfDim, bestG, bestM, bestMae, bestMax);
  }
}

static const char *kUsage = "usage: colossal-bench-calibrate TABLE.csv "
                            "[--cluster=NAME[:k=v,...]] [--breakdown] "
                            "[--fit]\n";

int main(int argc, char **argv) {
  StringRef csvPath;
  std::string clusterArg = "dgx-a100-80g";
  bool breakdown = false, fitMode = false;
  for (int i = 1; i < argc; ++i) {
    StringRef a = argv[i];
    if (a.consume_front("--cluster="))
      clusterArg = a.str();
    else if (a == "--breakdown")
      breakdown = true;
    else if (a == "--fit")
      fitMode = true;
    else if (!a.starts_with("--") && csvPath.empty())
      csvPath = a;
    else {
      llvm::errs() << "error: unknown argument '" << a << "'\n" << kUsage;
      return 2;
    }
  }
  if (csvPath.empty()) {
    llvm::errs() << kUsage;
    return 2;
  }
  auto buf = llvm::MemoryBuffer::getFile(csvPath, /*IsText=*/true);
  if (!buf) {
    llvm::errs() << "error: cannot read '" << csvPath
                 << "': " << buf.getError().message() << "\n";
    return 1;
  }
  auto base = parseClusterArg(clusterArg);
  if (!base) {
    llvm::errs() << "error: " << llvm::toString(base.takeError()) << "\n";
    return 1;
  }

  std::vector<Case> cases;
  llvm::SmallVector<StringRef, 16> lines;
  (*buf)->getBuffer().split(lines, '\n');
  bool headerSeen = false;
  for (StringRef line : lines) {
    line = line.trim();
    if (line.empty() || line.starts_with("#"))
      continue;
    if (!headerSeen) {
      headerSeen = true;
      if (line.starts_with("params"))
        continue;
    }
    Row r;
    if (!parseRow(line, r) || r.tp < 1 || r.pp < 1 ||
        r.gpus % (r.tp * r.pp) != 0 || r.gpus % base->gpus_per_node != 0) {
      llvm::errs() << "error: '" << csvPath << "': cannot use row '" << line
                   << "' (expected 11 comma-separated numbers, gpus a "
                      "multiple of tp*pp and of the GPUs per node)\n";
      return 1;
    }
    cases.push_back(makeCase(r));
  }
  if (cases.empty()) {
    llvm::errs() << "error: '" << csvPath << "': no data rows\n";
    return 1;
  }
  if (fitMode) {
    fit(cases, *base);
    return 0;
  }

  llvm::outs() << "Megatron-LM SC'21 Table 1 vs the cost model (cluster "
               << clusterArg << ", hardware TFLOP/s per GPU, full recompute)\n";
  llvm::outs() << "row  params_B model_B   tp  pp   v    dp schedule        "
                  "predicted  measured   error%\n";
  double sumAbs = 0, maxAbs = 0;
  int rowNo = 0;
  for (const Case &c : cases) {
    ++rowNo;
    auto est = estimateCase(c, *base);
    if (!est) {
      llvm::errs() << "error: row " << rowNo << ": "
                   << llvm::toString(est.takeError()) << "\n";
      return 1;
    }
    const Row &r = c.row;
    const ParallelConfig &cfg = c.config;
    double pred = est->hardware_tflops_per_gpu;
    double err = (pred - r.tflops) / r.tflops * 100;
    sumAbs += std::fabs(err);
    maxAbs = std::max(maxAbs, std::fabs(err));
    const char *sched =
        cfg.schedule == Schedule::Interleaved ? "interleaved" : "1f1b";
    llvm::outs() << llvm::format(
        "%-4d %8.1f %7.1f %4lld %3lld %3lld %5lld %-15s %9.1f %9.1f %+8.1f\n",
        rowNo, r.paramsBillion, c.workload.parameterCount() / 1e9,
        (long long)cfg.tp, (long long)cfg.pp, (long long)cfg.virtual_stages,
        (long long)cfg.dp, sched, pred, r.tflops, err);
    if (breakdown) {
      const TimeBreakdown &t = est->time;
      double s = est->step_time_s;
      llvm::outs() << llvm::format(
          "     step %.3fs: compute %.1f%% recompute %.1f%% tp %.1f%% "
          "bubble %.1f%% p2p %.1f%% dp %.1f%% opt %.1f%%; peak mem %.1f GiB"
          " (fits: %s)\n",
          s, 100 * t.compute / s, 100 * t.recompute / s, 100 * t.tp_comm / s,
          100 * t.pp_bubble / s, 100 * t.pp_p2p / s,
          100 * t.dp_comm_exposed / s, 100 * t.optimizer / s,
          est->peak_memory_bytes / double(1ull << 30),
          est->fits_in_memory ? "yes" : "no");
    }
  }
  llvm::outs() << llvm::format(
      "mean absolute error: %.2f%%  (max %.2f%%, %d rows)\n", sumAbs / rowNo,
      maxAbs, rowNo);
  return 0;
}
