//===- LayerStructure.h - Blocks found from the graph -----*- C++ -*-===//
//
// Finds the layers of an imported model from its dataflow alone, so that
// the planner sees the same blocks whatever the exporter named the weights
// ("h.3.attn.c_attn.weight", "l3.qkv.w", "onnx::MatMul_243", or one
// initializer shared by equal layers):
//
//   1. The residual stream: values computed from a weight-carrying op
//      (linear, matmul or convolution with a weight, an embedding lookup)
//      or from such values. Masks, position tables and rotary tables are
//      built from inputs and constants only, and are side values.
//   2. Cuts: the points in program order where exactly one stream value is
//      live (the articulation points of the residual stream: every later op
//      depends on it). The ops between two cuts form a segment.
//   3. Segments are keyed by a structural hash: op kinds, attributes,
//      operand and result types, weight shapes, and where each operand
//      comes from within the segment -- never names.
//   4. The repeated block is the run of consecutive equal segment groups
//      that covers the most segments (a GPT block is two segments, the
//      attention half and the MLP half; a post-norm BERT layer four). The
//      run is then extended over neighbouring groups with the same kinds
//      of compute (ResNet stages whose widths differ, their downsampling
//      first blocks). What precedes the blocks is the "pre" layer, what
//      follows them the "post" layer.
//
// Names serve only as labels in reports: a block's label is the common
// prefix of its weights' names, or "block N" when they have none.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_COMPILER_ESTIMATE_LAYERSTRUCTURE_H
#define COLOSSAL_COMPILER_ESTIMATE_LAYERSTRUCTURE_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"

#include <string>
#include <vector>

namespace mlir::colossal {

struct LayerStructure {
  /// The layer of every compute op of the function's body: -1 before the
  /// first block, 0 .. numBlocks-1 for the blocks, numBlocks after the
  /// last. Parameters, constants and the terminator have no entry.
  llvm::DenseMap<Operation *, int> layerOf;
  int numBlocks = 0;
  /// Segments of the residual stream in the whole model, and in the
  /// repeated unit (0 when nothing repeats).
  int numSegments = 0;
  int segmentsPerBlock = 0;
  /// A label per block, for reports.
  std::vector<std::string> labels;
  /// One sentence on what was found ("12 repeated blocks of 2 segments
  /// ..." or "no repeated structure ...").
  std::string summary;
};

/// `v` with reshapes, transposes, casts, broadcasts and shard annotations
/// stripped: the value they only rearrange.
Value stripViews(Value v);

/// Finds the blocks of `func` (see the file comment). A function without
/// repeated structure gets numBlocks = 0: every op is in layer -1, and the
/// summary says so.
LayerStructure findLayerStructure(func::FuncOp func);

} // namespace mlir::colossal

#endif // COLOSSAL_COMPILER_ESTIMATE_LAYERSTRUCTURE_H
