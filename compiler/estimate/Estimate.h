//===- Estimate.h - Estimating a manual parallel plan of a graph -*- C++
//-*-===//
//
// What `colossal-opt M.onnx --estimate` does: build the workload of the
// imported graph, parse the cluster and the parallel configuration, run the
// cost model, and print one JSON object. Errors (bad cluster spec, bad
// parallel configuration, a configuration that does not fit the model or the
// cluster) come back as messages naming the field.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_COMPILER_ESTIMATE_ESTIMATE_H
#define COLOSSAL_COMPILER_ESTIMATE_ESTIMATE_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace mlir::colossal {

struct EstimateRequest {
  std::string mode = "train";   ///< only "train" is estimated for now
  std::string cluster;          ///< preset[:overrides] or a JSON file
  int64_t batch = 0;            ///< global batch (sequences per step)
  std::string parallel;         ///< "dp=..,tp=..,..."; empty: all data parallel
  std::string dtype = "bf16";   ///< compute dtype
  bool flashAttention = false;  ///< attention without stored scores
  bool dropout = false;         ///< training applies dropout (Megatron's GPT)
  bool includeWorkload = false; ///< add the layer-by-layer workload to the JSON
};

/// Estimates `module` under `request`: the report, one JSON object.
/// `program`, when given, is the memory estimate of the compiled per-rank
/// program of the same job (colossal-estimate-memory's cg.memory_estimate):
/// it is the predicted peak, and the cost model's own figure is reported
/// beside it as analytic_peak_memory_bytes.
llvm::Expected<llvm::json::Object>
estimateModule(ModuleOp module, const EstimateRequest &request,
               DictionaryAttr program = nullptr);

struct AutoParallelRequest {
  EstimateRequest job;      ///< mode, cluster, batch, dtype, ...
  std::string memoryBudget; ///< bytes, or with K/M/G/KiB/MiB/GiB; "" = device
  std::string constraints;  ///< "tp<=8,pp=1,..."
  std::string reportPath;   ///< JSON report file ("" = none)
  bool reportText = false;  ///< also print the readable report to stderr
  bool executable = false;  ///< only plans colossal-run executes today
};

/// Searches the fastest plan that fits, annotates `module` with it (a
/// cg.mesh with named axes and the chosen configuration), and writes the
/// report. An infeasible job returns an error holding the explanation (the
/// report, when asked for, is still written).
llvm::Error autoParallelModule(ModuleOp module,
                               const AutoParallelRequest &request);

} // namespace mlir::colossal

#endif // COLOSSAL_COMPILER_ESTIMATE_ESTIMATE_H
