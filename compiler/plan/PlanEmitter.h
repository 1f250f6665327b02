//===- PlanEmitter.h - Graph dialect to a .cplan file -----------*- C++ -*-===//
//
// Turns a memory-planned single-device graph (colossal-plan-memory has run)
// into the runtime's plan: parameters with their byte sources, constants,
// buffers at their arena offsets, and one kernel per op in program order.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_COMPILER_PLAN_PLANEMITTER_H
#define COLOSSAL_COMPILER_PLAN_PLANEMITTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LogicalResult.h"

#include <string>

namespace colossal::plan {
class Plan;
} // namespace colossal::plan

namespace mlir::colossal {

/// Builds the plan of `module` into `plan`. Paths of external weights are
/// written relative to `planDir` (where the plan file goes) when they can
/// be. Emits diagnostics on failure (an op with no kernel, no memory plan).
LogicalResult buildPlan(ModuleOp module, llvm::StringRef planDir,
                        llvm::StringRef producer, ::colossal::plan::Plan &plan);

/// buildPlan + writing the file atomically.
LogicalResult emitPlanFile(ModuleOp module, llvm::StringRef path,
                           llvm::StringRef producer);

} // namespace mlir::colossal

#endif // COLOSSAL_COMPILER_PLAN_PLANEMITTER_H
