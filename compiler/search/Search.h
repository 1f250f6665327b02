//===- Search.h - Choosing the fastest parallel plan that fits --*- C++ -*-===//
//
// The plan-level auto-parallel search: over the cluster's device count it
// enumerates data, tensor (1D/2D/2.5D/3D, with or without sequence
// parallelism), pipeline (1F1B, interleaved; GPipe, which 1F1B dominates,
// only when asked for) and context parallel
// degrees and micro-batch sizes that the model admits, and for each the
// memory savers (ZeRO stage, selective/full recomputation, offload) in
// increasing order of cost, scoring every candidate with the cost model's
// estimator. Returns the fastest plan that fits, the best alternatives with
// why they lost, or, when nothing fits, the smallest deficit and what would
// make it fit.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_COMPILER_SEARCH_SEARCH_H
#define COLOSSAL_COMPILER_SEARCH_SEARCH_H

#include "compiler/cost/ClusterSpec.h"
#include "compiler/cost/Estimator.h"
#include "compiler/cost/ParallelConfig.h"
#include "compiler/cost/Workload.h"

#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <string>
#include <vector>

namespace colossal {
namespace search {

/// Limits on the space, from "--constrain=tp<=8,pp=1,zero>=1,schedule=1f1b".
struct Constraint {
  std::string key; ///< dp tp pp sp micro-batch zero v tp-mode tp-sp sp-mode
                   ///< schedule recompute offload
  std::string op;  ///< = <= >= < >
  std::string value;
};
llvm::Expected<std::vector<Constraint>> parseConstraints(llvm::StringRef text);

struct SearchOptions {
  /// Bytes a device may use; 0 means the cluster's usable device memory.
  double memoryBudgetBytes = 0;
  std::vector<Constraint> constraints;
  /// How many rejected alternatives to report.
  int alternatives = 3;
  /// Largest micro-batch tried.
  int64_t maxMicroBatch = 64;
  /// When nothing fits, look for the smallest cluster (more nodes) that fits.
  bool suggestDevices = true;
  /// Only plans the runtime executes today (cost::notYetExecutable).
  bool executableOnly = false;
};

struct Candidate {
  cost::ParallelConfig config;
  cost::Estimate estimate;
  bool fits = false;
  std::string why; ///< for alternatives: why it lost to the best
};

struct SearchResult {
  bool feasible = false;
  Candidate best;                      ///< fastest that fits (when feasible)
  std::vector<Candidate> alternatives; ///< best rejected ones
  /// When infeasible: the candidate closest to fitting and its deficit.
  Candidate closest;
  double deficitBytes = 0;     ///< device bytes over the budget
  double hostDeficitBytes = 0; ///< host bytes per node over the node's
  /// Of the plans that fit device memory but not host memory, the least
  /// host bytes per node over the node's (0 when there is none).
  double hostLimitedDeficitBytes = 0;
  std::vector<std::string> suggestions;
  int64_t evaluated = 0; ///< estimates computed
  double searchSeconds = 0;
  double budgetBytes = 0;
};

/// Searches the plan space for `workload` on `cluster`.
llvm::Expected<SearchResult> searchPlan(const cost::Workload &workload,
                                        const cost::ClusterSpec &cluster,
                                        const SearchOptions &options);

/// The report: chosen mesh and axis roles, the plan, predicted step time,
/// TFLOP/s, MFU, peak memory with breakdowns, search time, alternatives.
llvm::json::Value reportJSON(const SearchResult &result,
                             const cost::Workload &workload,
                             const cost::ClusterSpec &cluster);

/// The same report as readable text.
std::string reportText(const SearchResult &result,
                       const cost::Workload &workload,
                       const cost::ClusterSpec &cluster);

} // namespace search
} // namespace colossal

#endif // COLOSSAL_COMPILER_SEARCH_SEARCH_H
