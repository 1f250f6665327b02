//===- PlanValidator.h - Checking a plan before running it ------*- C++ -*-===//
//
// A plan comes from a file and may be inconsistent (hand-edited, from another
// compiler version, or a compiler bug). Everything the executor relies on is
// checked here once, at load time, so running never reads outside the arena
// or indexes past a list; each failure names the item and what to do.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_CORE_PLANVALIDATOR_H
#define COLOSSAL_RUNTIME_CORE_PLANVALIDATOR_H

#include "runtime/core/Types.h"
#include "runtime/proto/plan.pb.h"

#include <string>

namespace colossal::rt {

class Backend;

/// Checks the plan's structure: bindings, parameters, and for every rank its
/// buffers (inside the arena, sizes matching types), parameter slices,
/// constants, IO bindings and instructions (referenced buffers exist).
/// `source` names the plan in messages.
Status validatePlan(const plan::Plan &plan, const std::string &source);

/// Checks that this runtime can run the plan: a valid mesh, every rank of it
/// covered by exactly one program, collectives it knows over the mesh's
/// axes, shardings that split whole shapes into the pieces the buffers hold
/// (no sends, receives or host copies yet).
Status checkRunnable(const plan::Plan &plan, const std::string &source);

/// The program rank `rank` runs, or -1.
int programIndexFor(const plan::Plan &plan, int rank);

/// Checks that `backend` implements every kernel op of `program`; the error
/// lists the missing ops with the location of their first use.
Status checkBackendSupport(const plan::RankProgram &program,
                           const Backend &backend, const std::string &source);

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_CORE_PLANVALIDATOR_H
