//===- ShardingStrategy.h - How an op can run over a tp axis ----*- C++ -*-===//
//
// The vocabulary of TensorParallelOpInterface: a layout of a value over the
// tensor-parallel axis (split along one dimension, or a pending sum), and a
// strategy (the layouts an op needs of its operands, the layout of its
// result, whether its compute is divided). Ops list their strategies; the
// auto-parallel search picks one per op. The helpers below serve the ops'
// implementations (GraphStrategies.cpp).
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_DIALECTS_GRAPH_IR_SHARDINGSTRATEGY_H
#define COLOSSAL_DIALECTS_GRAPH_IR_SHARDINGSTRATEGY_H

#include "mlir/IR/Operation.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"

#include <string>

namespace mlir::colossal::cg {

/// A value's layout over tp: split along `dim` (-1: whole on every rank),
/// or a pending sum over tp.
struct TensorLayout {
  int dim = -1;
  bool partial = false;
  bool operator==(const TensorLayout &o) const {
    return dim == o.dim && partial == o.partial;
  }
};

struct TpStrategy {
  std::string name;
  llvm::SmallVector<TensorLayout> operands; ///< one per operand
  TensorLayout result;                      ///< of every result
  bool split = false;                       ///< compute divided by tp
};

/// Dimension `d` of `v` exists and divides evenly over `tp`.
bool isSplittable(Value v, int d, int64_t tp);

/// Everything whole, nothing divided.
TpStrategy replicatedStrategy(Operation *op);

/// Elementwise with broadcasting: split any result dimension that divides;
/// operands follow (broadcast ones stay whole).
void broadcastingStrategies(Operation *op, int64_t tp,
                            llvm::SmallVectorImpl<TpStrategy> &out);

/// Split along dims `dims` of the first operand and the result alike; the
/// other operands stay whole.
void sameDimStrategies(Operation *op, llvm::ArrayRef<int> dims, int64_t tp,
                       llvm::SmallVectorImpl<TpStrategy> &out);

} // namespace mlir::colossal::cg

#endif // COLOSSAL_DIALECTS_GRAPH_IR_SHARDINGSTRATEGY_H
