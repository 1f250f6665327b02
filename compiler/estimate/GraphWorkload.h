//===- GraphWorkload.h - The cost model's view of an imported graph -*- C++
//-*-===//
//
// Builds a cost::Workload from a graph-dialect module: ops become GEMMs
// (with their Megatron tensor-parallel role found by following which values
// are split), attention, embeddings and fused elementwise regions; ops are
// grouped into layers by the repeated blocks of the dataflow graph
// (LayerStructure.h: cuts of the residual stream grouped by a structural
// hash, whatever the weights are named), and identical consecutive blocks
// are merged so that a 96-layer model costs one layer.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_COMPILER_ESTIMATE_GRAPHWORKLOAD_H
#define COLOSSAL_COMPILER_ESTIMATE_GRAPHWORKLOAD_H

#include "compiler/cost/Workload.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LogicalResult.h"
#include "llvm/ADT/DenseMap.h"

#include <string>

namespace mlir::colossal {

struct WorkloadOptions {
  /// Sequences (samples) per optimizer step.
  int64_t globalBatch = 1;
  /// Element type of activations and weights during compute.
  ::colossal::cost::DType dtype = ::colossal::cost::DType::BF16;
  /// Training adds the loss over the first output and backward passes.
  bool training = true;
  /// Attention kernels that never store the score matrix (flash attention).
  bool flashAttention = false;
  /// Training applies dropout as Megatron's GPT does: on the attention
  /// probabilities, on the outputs of the row-parallel projections (before
  /// the residual add), and on the embeddings. Each costs a 1-byte mask per
  /// element, written in forward, kept, and read in backward.
  bool dropout = false;
};

/// Builds the workload of the single function of `module`. Quantities are
/// per sample: the leading dimension of the first input is the batch the
/// module was imported with, and is divided out. Emits a diagnostic and fails
/// when the module holds no function or something the model cannot cost.
FailureOr<::colossal::cost::Workload>
buildWorkload(ModuleOp module, const WorkloadOptions &options);

/// The layer of every compute op, as the workload groups them: -1 before
/// the first block, 0 .. numBlocks-1 for the blocks (numbered by the names
/// of the parameters they use), numBlocks after the last block. Parameters
/// and constants have no entry.
llvm::DenseMap<Operation *, int> computeLayers(func::FuncOp func,
                                               int &numBlocks);

/// One line per layer (role, count, parameters, FLOPs, activation bytes,
/// ops), for tests and for --estimate's "workload" section.
std::string describeWorkload(const ::colossal::cost::Workload &workload);

} // namespace mlir::colossal

#endif // COLOSSAL_COMPILER_ESTIMATE_GRAPHWORKLOAD_H
