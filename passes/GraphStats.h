//===- GraphStats.h - FLOPs and bytes of graph ops --------------*- C++ -*-===//
//
// Forward FLOPs of the contractions of the graph dialect, shared by the
// summary pass and the workload extraction of the cost model.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_PASSES_GRAPHSTATS_H
#define COLOSSAL_PASSES_GRAPHSTATS_H

#include "mlir/IR/Operation.h"
#include "mlir/IR/Value.h"

#include <cstdint>

namespace mlir::colossal {

/// Forward FLOPs of `op` (2 per multiply-add) for matmul, linear, conv2d and
/// attention; 0 for every other op.
double forwardFlops(Operation *op);

/// Bytes of a tensor value.
int64_t tensorBytes(Value value);

} // namespace mlir::colossal

#endif // COLOSSAL_PASSES_GRAPHSTATS_H
