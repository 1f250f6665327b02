//===- Launcher.h - colossal-run --ranks N: ranks as child processes -*- C++
//-*-===//
//
// `colossal-run P.cplan --ranks N ...` runs the plan on N ranks of this
// machine by itself: it starts N copies of itself with the environment
// torchrun would set (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
// MASTER_PORT), so every launch path meets in the same rendezvous, and
// watches them: a rank that fails is named, and ranks left hanging after it
// are stopped once the communication timeout has passed.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_TOOLS_COLOSSAL_RUN_LAUNCHER_H
#define COLOSSAL_TOOLS_COLOSSAL_RUN_LAUNCHER_H

#include "runtime/core/Types.h"

#include <string>
#include <vector>

namespace colossal::tools {

/// Runs `args` (colossal-run's own arguments, without --ranks) as `ranks`
/// child processes and waits for them. Succeeds when every rank exits 0;
/// otherwise the error names the first rank that failed and how.
/// `timeoutSeconds` bounds how long the others may take to notice.
rt::Status launchRanks(int ranks, const std::vector<std::string> &args,
                       int timeoutSeconds);

} // namespace colossal::tools

#endif // COLOSSAL_TOOLS_COLOSSAL_RUN_LAUNCHER_H
