//===- Estimate.cpp - Estimating a manual parallel plan of a graph --------===//

#include "compiler/estimate/Estimate.h"
#include "compiler/estimate/GraphWorkload.h"

#include "compiler/cost/ClusterSpec.h"
#include "compiler/cost/Estimator.h"
#include "compiler/cost/ParallelConfig.h"
#include "compiler/search/IntraOp.h"
#include "compiler/search/Search.h"
#include "dialects/Graph/IR/GraphOps.h"

#include "mlir/IR/Builders.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/JSON.h"

#include <chrono>

using namespace mlir;
using namespace mlir::colossal;
namespace cost = ::colossal::cost;

static llvm::Error usageError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

llvm::Expected<llvm::json::Object>
mlir::colossal::estimateModule(ModuleOp module, const EstimateRequest &request,
                               DictionaryAttr program) {
  if (request.mode != "train")
    return usageError("--estimate models training steps; use --mode=train "
                      "(inference estimates come with the runtime issue)");
  if (request.cluster.empty())
    return usageError("--estimate needs --cluster=SPEC, e.g. "
                      "--cluster=dgx-a100-80g:nodes=4 (presets: " +
                      llvm::join(cost::presetClusterNames(), ", ") + ")");
  if (request.batch <= 0)
    return usageError("--estimate needs --batch=B, the global batch in "
                      "sequences (samples) per step");
  std::optional<cost::DType> dtype = cost::parseDType(request.dtype);
  if (!dtype)
    return usageError("--dtype must be one of fp32, tf32, bf16, fp16; got '" +
                      request.dtype + "'");

  auto start = std::chrono::steady_clock::now();
  auto cluster = cost::parseClusterArg(request.cluster);
  if (!cluster)
    return cluster.takeError();

  WorkloadOptions options;
  options.globalBatch = request.batch;
  options.dtype = *dtype;
  options.training = true;
  options.flashAttention = request.flashAttention;
  options.dropout = request.dropout;
  std::string diagnostics;
  FailureOr<cost::Workload> workload;
  {
    ScopedDiagnosticHandler capture(module.getContext(), [&](Diagnostic &d) {
      diagnostics += d.str();
      return success();
    });
    workload = buildWorkload(module, options);
  }
  if (failed(workload))
    return usageError(diagnostics);

  int64_t devices = cluster->nodes * cluster->gpus_per_node;
  std::string parallel = request.parallel;
  if (parallel.empty())
    parallel = "dp=" + std::to_string(devices);
  auto config = cost::parseParallelConfig(parallel);
  if (!config)
    return config.takeError();
  auto estimate = cost::estimate(*workload, *config, *cluster);
  if (!estimate)
    return estimate.takeError();
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();

  llvm::json::Object result = std::move(*estimate->toJSON().getAsObject());
  result["model"] = llvm::json::Object{
      {"name", workload->name},
      {"parameters", workload->parameterCount()},
      {"blocks", workload->blockLayerCount()},
      {"structure", workload->structure},
      {"forward_flops_per_sample", workload->forwardFlopsPerSample()},
      {"hidden", workload->hidden},
      {"heads", workload->heads},
      {"seq_len", workload->seq_len},
      {"vocab", workload->vocab},
  };
  result["cluster"] = llvm::json::Object{
      {"spec", request.cluster},
      {"devices", devices},
  };
  result["global_batch"] = request.batch;
  result["dtype"] = request.dtype;
  result["estimate_time_s"] = seconds;
  if (request.includeWorkload)
    result["workload"] = describeWorkload(*workload);
  result["memory_source"] = program ? "program" : "analytic";
  if (program) {
    // The compiled program's buffers, added up op by op, are the
    // prediction; the per-layer model used by the search stands beside it.
    llvm::json::Object memory;
    int64_t peak = 0;
    for (NamedAttribute field : program) {
      if (auto i = dyn_cast<IntegerAttr>(field.getValue()))
        memory[field.getName().str()] = i.getInt();
      else if (auto s = dyn_cast<StringAttr>(field.getValue()))
        memory[field.getName().str()] = s.str();
      if (field.getName() == "peak_bytes")
        peak = cast<IntegerAttr>(field.getValue()).getInt();
    }
    result["analytic_peak_memory_bytes"] = estimate->peak_memory_bytes;
    result["peak_memory_bytes"] = peak;
    result["fits_in_memory"] =
        static_cast<double>(peak) <= estimate->usable_memory_bytes;
    result["program_memory"] = std::move(memory);
  }
  return result;
}

/// "80e9", "40GiB", "512MiB", "1.5G" -> bytes.
static std::optional<double> parseBytes(llvm::StringRef text) {
  text = text.trim();
  struct Unit {
    const char *suffix;
    double scale;
  };
  const Unit units[] = {{"KiB", 1024.0},
                        {"MiB", 1024.0 * 1024},
                        {"GiB", 1024.0 * 1024 * 1024},
                        {"TiB", 1099511627776.0},
                        {"K", 1e3},
                        {"M", 1e6},
                        {"G", 1e9},
                        {"T", 1e12},
                        {"B", 1.0}};
  double scale = 1;
  for (const Unit &u : units)
    if (text.consume_back(u.suffix)) {
      scale = u.scale;
      break;
    }
  double value;
  if (text.trim().getAsDouble(value) || !(value > 0))
    return std::nullopt;
  return value * scale;
}

llvm::Error
mlir::colossal::autoParallelModule(ModuleOp module,
                                   const AutoParallelRequest &request) {
  const EstimateRequest &job = request.job;
  if (job.mode != "train")
    return usageError("--auto-parallel plans training steps; use --mode=train");
  if (job.cluster.empty())
    return usageError("--auto-parallel needs --cluster=SPEC, e.g. "
                      "--cluster=dgx-a100-80g:nodes=4");
  if (job.batch <= 0)
    return usageError("--auto-parallel needs --batch=B, the global batch in "
                      "sequences (samples) per step");
  std::optional<cost::DType> dtype = cost::parseDType(job.dtype);
  if (!dtype)
    return usageError("--dtype must be one of fp32, tf32, bf16, fp16; got '" +
                      job.dtype + "'");
  auto cluster = cost::parseClusterArg(job.cluster);
  if (!cluster)
    return cluster.takeError();
  ::colossal::search::SearchOptions options;
  if (!request.memoryBudget.empty()) {
    auto bytes = parseBytes(request.memoryBudget);
    if (!bytes)
      return usageError("--memory-budget='" + request.memoryBudget +
                        "' is not a size; use bytes or a unit, e.g. 40GiB");
    options.memoryBudgetBytes = *bytes;
  }
  auto constraints = ::colossal::search::parseConstraints(request.constraints);
  if (!constraints)
    return constraints.takeError();
  options.constraints = std::move(*constraints);
  options.executableOnly = request.executable;

  WorkloadOptions wopts;
  wopts.globalBatch = job.batch;
  wopts.dtype = *dtype;
  wopts.flashAttention = job.flashAttention;
  wopts.dropout = job.dropout;
  std::string diagnostics;
  FailureOr<cost::Workload> workload;
  {
    ScopedDiagnosticHandler capture(module.getContext(), [&](Diagnostic &d) {
      diagnostics += d.str();
      return success();
    });
    workload = buildWorkload(module, wopts);
  }
  if (failed(workload))
    return usageError(diagnostics);
  auto result = ::colossal::search::searchPlan(*workload, *cluster, options);
  if (!result)
    return result.takeError();

  llvm::json::Value report =
      ::colossal::search::reportJSON(*result, *workload, *cluster);
  auto writeReport = [&]() -> llvm::Error {
    if (request.reportPath.empty())
      return llvm::Error::success();
    std::error_code ec;
    llvm::raw_fd_ostream out(request.reportPath, ec);
    if (ec)
      return usageError("cannot write the report '" + request.reportPath +
                        "': " + ec.message());
    out << llvm::formatv("{0:2}", report) << "\n";
    return llvm::Error::success();
  };
  std::string text =
      ::colossal::search::reportText(*result, *workload, *cluster);
  if (request.reportText || !result->feasible)
    llvm::errs() << text;
  if (!result->feasible) {
    if (llvm::Error e = writeReport())
      return e;
    return usageError("the job does not fit on " +
                      std::to_string(cluster->numDevices()) +
                      " devices; see the explanation above");
  }

  // Annotate: the mesh with named axes, and the plan.
  const cost::ParallelConfig &cfg = result->best.config;
  if (Operation *existing = module.lookupSymbol("mesh"))
    existing->erase(); // the plan's mesh replaces one given in the input
  OpBuilder b(module.getContext());
  b.setInsertionPointToStart(module.getBody());
  SmallVector<StringAttr> names;
  SmallVector<int64_t> sizes;
  for (auto [name, size] : {std::pair<const char *, int64_t>{"pp", cfg.pp},
                            {"dp", cfg.dp},
                            {"sp", cfg.sp},
                            {"tp", cfg.tp}}) {
    names.push_back(b.getStringAttr(name));
    sizes.push_back(size);
  }
  b.create<cg::MeshOp>(module.getLoc(), "mesh",
                       cg::MeshAttr::get(module.getContext(), names, sizes));
  module->setAttr("cg.plan", b.getStringAttr(cost::toString(cfg)));
  module->setAttr("cg.predicted_step_time_s",
                  b.getF64FloatAttr(result->best.estimate.step_time_s));
  module->setAttr("cg.predicted_peak_memory_bytes",
                  b.getI64IntegerAttr(static_cast<int64_t>(
                      result->best.estimate.peak_memory_bytes)));

  // Per-op choices over the tensor-parallel axis (integer program), stages
  // and recomputation marks.
  // The weights may use what the plan leaves after activations and buffers.
  const cost::Estimate &best = result->best.estimate;
  double weightBudget =
      result->budgetBytes - best.memory.activations - best.memory.comm_buffers;
  auto intra = annotateShardings(module, cfg, *cluster, *dtype,
                                 job.batch / (cfg.dp * cfg.sp), weightBudget);
  if (!intra)
    return intra.takeError();
  if (auto *o = report.getAsObject()) {
    o->insert({"intra_op", intra->toJSON()});
    // The integer program's proven relative gap (0 when CBC proved its
    // choice optimal; what is left between its bound and its choice when
    // it stopped at the time limit).
    if (auto *plan = o->getObject("plan"))
      (*plan)["optimality_gap"] = intra->gap;
  }
  if (request.reportText && cfg.tp > 1) {
    llvm::errs() << "per-op tensor parallelism (integer program: " << intra->ops
                 << " ops, " << intra->variables << " variables, "
                 << (intra->optimal ? "optimal" : "not proven optimal")
                 << "):\n";
    for (auto &[weight, role] : intra->roles)
      llvm::errs() << "  " << weight << ": " << role << "\n";
  }
  return writeReport();
}
