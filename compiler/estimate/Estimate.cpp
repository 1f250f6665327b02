//===- Estimate.cpp - Estimating a manual parallel plan of a graph --------===//

#include "compiler/estimate/Estimate.h"
#include "compiler/estimate/GraphWorkload.h"

#include "compiler/cost/ClusterSpec.h"
#include "compiler/cost/Estimator.h"
#include "compiler/cost/ParallelConfig.h"

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

llvm::Error mlir::colossal::estimateModule(ModuleOp module,
                                           const EstimateRequest &request,
                                           llvm::raw_ostream &os) {
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
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(result))) << "\n";
  return llvm::Error::success();
}
