//===- IntraOp.h - Per-op sharding over the tensor-parallel axis -*- C++
//-*-===//
//
// After the plan-level search fixed the mesh, each op chooses how it runs
// over the `tp` axis: replicated, or split along one of its dimensions (a
// weight GEMM: column-parallel, row-parallel with a pending sum, or split on
// a batch dimension). Choices are joined by resharding collectives; one
// choice per op is picked by an integer program (CBC) minimizing compute
// plus resharding time. Identical blocks are solved once. The result is
// written into the IR as `cg.sharding` on values and weights, `cg.stage` on
// ops, and `cg.remat` on recomputed ops.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_COMPILER_SEARCH_INTRAOP_H
#define COLOSSAL_COMPILER_SEARCH_INTRAOP_H

#include "compiler/cost/ClusterSpec.h"
#include "compiler/cost/ParallelConfig.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

namespace mlir::colossal {

struct IntraOpResult {
  int64_t ops = 0; ///< ops in the integer program
  int64_t variables = 0, constraints = 0;
  double objective = 0; ///< seconds per micro-batch (fwd + bwd)
  double gap = 0;
  bool optimal = false;
  double seconds = 0;
  /// The weights' memory budget could not be met per op and was dropped.
  bool memoryRelaxed = false;
  /// Weight GEMMs and their roles ("column", "row", "replicated", ...).
  std::vector<std::pair<std::string, std::string>> roles;

  llvm::json::Value toJSON() const;
};

/// Chooses and annotates per-op shardings of `module` (one function, mesh
/// symbol @mesh with a "tp" axis already inserted) for `config`;
/// `batchPerReplica` is the global batch over the data-parallel degree;
/// `memoryBudget` bounds the model-state bytes of the weights on a device
/// (<= 0: unbounded).
llvm::Expected<IntraOpResult> annotateShardings(
    ModuleOp module, const ::colossal::cost::ParallelConfig &config,
    const ::colossal::cost::ClusterSpec &cluster, ::colossal::cost::DType dtype,
    int64_t batchPerReplica, double memoryBudget);

} // namespace mlir::colossal

#endif // COLOSSAL_COMPILER_SEARCH_INTRAOP_H
