//===- CheckpointDir.h - The checkpoints of a training run ------*- C++ -*-===//
//
// A training run saves its state as step-<8-digit step>.safetensors files in
// one directory. These helpers name, list, prune and resume from them, so that
// a run killed mid-save restarts from the newest checkpoint that is intact.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_CORE_CHECKPOINTDIR_H
#define COLOSSAL_RUNTIME_CORE_CHECKPOINTDIR_H

#include "runtime/core/Safetensors.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace colossal::rt {

/// Path of the checkpoint for `step` (>= 0) in `dir`:
/// dir/step-00001200.safetensors (more digits past 99999999).
std::string checkpointPath(const std::string &dir, int64_t step);

/// Steps of the checkpoints in `dir`, ascending. Only regular files named
/// exactly as checkpointPath names them count; temporaries and other files
/// are ignored. A missing `dir` gives an empty list and an ok status.
Status listCheckpoints(const std::string &dir, std::vector<int64_t> &steps);

/// Loads the newest checkpoint in `dir` that reads and validates. Each newer
/// one that fails adds a line to `warnings` (which file, why, that it was
/// skipped) and the next older one is tried. `found` is false, with an ok
/// status, if `dir` holds no checkpoint; the status is an error only if some
/// exist and none loads. `warnings` is appended to, not cleared.
Status loadLatestCheckpoint(const std::string &dir, int64_t &step,
                            std::vector<SafetensorsEntry> &tensors,
                            std::map<std::string, std::string> &metadata,
                            std::vector<std::string> &warnings, bool &found);

/// Creates `dir` and its parents if needed; fails, saying what is in the way,
/// if it cannot (a file where a directory should be, no permission, ...).
Status ensureDirectory(const std::string &dir);

/// Deletes all but the newest `keep` checkpoints among those with a step up
/// to `newest` (keep <= 0: keeps all; later steps are left alone: they are
/// not this run's, or are files a resume skipped as corrupt), and stale
/// temporaries: files named `*.tmp-<pid>` whose writing process is no
/// longer alive (a live writer's temporary is left alone).
Status pruneCheckpoints(const std::string &dir, int keep,
                        int64_t newest = INT64_MAX);

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_CORE_CHECKPOINTDIR_H
