//===- Passes.h - Colossal's passes on the graph dialect --------*- C++ -*-===//
//
// Declarations and registration of the passes in Passes.td.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_PASSES_PASSES_H
#define COLOSSAL_PASSES_PASSES_H

#include "dialects/Dist/IR/DistOps.h"
#include "dialects/Graph/IR/GraphOps.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::colossal {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// Why `options` cannot configure colossal-optimizer ("" if they can): an
/// unknown optimizer or schedule, a non-positive lr, betas outside [0, 1),
/// fewer than one micro-batch, a negative clipping norm.
std::string checkOptimizerOptions(const OptimizerPassOptions &options);

} // namespace mlir::colossal

#endif // COLOSSAL_PASSES_PASSES_H
