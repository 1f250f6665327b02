//===- Train.h - colossal-run's training loop -------------------*- C++ -*-===//
//
// `colossal-run M.cplan --train --steps N --data PATH ...` drives a train
// plan (colossal-opt --mode=train --optimizer=...): each run of the plan
// consumes one micro-batch and the plan updates its own parameters; this
// loop feeds batches, reports progress and metrics, and saves and resumes
// checkpoints. `--export-onnx` writes trained weights into a copy of the
// ONNX model the plan came from.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_TOOLS_COLOSSAL_RUN_TRAIN_H
#define COLOSSAL_TOOLS_COLOSSAL_RUN_TRAIN_H

#include "runtime/include/colossal/Runtime.h"

#include <cstdint>
#include <string>

namespace colossal::tools {

struct TrainOptions {
  int64_t steps = 0; // train until this optimizer step
  std::string data;  // token file or directory of .npy batches
  std::string dataDtype = "uint16";
  std::string dataOrder = "random"; // token files: random or sequential
  int64_t logEvery = 10;
  std::string metrics; // JSONL file
  std::string checkpointDir;
  int64_t checkpointEvery = 0; // 0: only at the end
  int keepCheckpoints = 3;
  bool resume = false;
  uint64_t seed = 1337;
  bool seedGiven = false;
  std::string exportOnnx; // write trained weights into a copy
  std::string profile;    // --profile: Chrome trace per rank
};

/// Trains `plan` as `opts` say (opts.steps > 0), then exports if asked.
Status train(std::shared_ptr<Plan> plan, const SessionOptions &session,
             const TrainOptions &opts);

/// Without training: exports the newest checkpoint in opts.checkpointDir
/// (or, without one, the plan's initial weights) to opts.exportOnnx.
/// --profile FILE: writes this rank's Chrome trace (FILE itself on one
/// rank; FILE with ".rankR" before its extension on several) and, on rank
/// 0, prints where a run's time went and, for a pipeline, its measured idle
/// share beside the schedule's bubble.
Status writeRankProfile(const Session &session, const std::string &file,
                        int rank);

Status exportOnly(std::shared_ptr<Plan> plan, const SessionOptions &session,
                  const TrainOptions &opts);

} // namespace colossal::tools

#endif // COLOSSAL_TOOLS_COLOSSAL_RUN_TRAIN_H
