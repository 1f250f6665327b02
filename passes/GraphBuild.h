//===- GraphBuild.h - Small builders shared by the graph passes -*- C++ -*-===//
//
// Constants and one-hot encodings written with cg ops, for passes that
// generate graph code (colossal-add-loss, colossal-autodiff).
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_PASSES_GRAPHBUILD_H
#define COLOSSAL_PASSES_GRAPHBUILD_H

#include "dialects/Graph/IR/GraphOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::colossal {

/// The op computing `func`'s result named "loss" (a training step's loss:
/// the backward follows it), or null when there is none.
Operation *lossOp(func::FuncOp func);

/// The ranked tensor type of a cg value.
inline RankedTensorType typeOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}

/// A rank-0 cg.constant of `element` (float or integer) holding `v`.
Value scalarConstant(OpBuilder &b, Location loc, Type element, double v);

/// `indices[..., None] == [0, classes)` cast to `element`: shaped
/// `indices.shape + [classes]`; an index outside the range matches nothing.
Value oneHot(OpBuilder &b, Location loc, Value indices, int64_t classes,
             Type element);

} // namespace mlir::colossal

#endif // COLOSSAL_PASSES_GRAPHBUILD_H
