//===- TrainData.h - Batches for colossal-run's training loop ---*- C++ -*-===//
//
// Where a training run's micro-batches come from: a flat token file (uint16
// or uint32 ids, as nanoGPT writes them, or llm.c's files with their header)
// cut into (tokens, next tokens) windows, or a directory of .npy batches.
// Micro-batch `index` is a pure function of the index (and the seed), so a
// resumed run reads exactly what an uninterrupted one would.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_TOOLS_COLOSSAL_RUN_TRAINDATA_H
#define COLOSSAL_TOOLS_COLOSSAL_RUN_TRAINDATA_H

#include "runtime/core/HostTensor.h"
#include "runtime/include/colossal/Runtime.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace colossal::tools {

class BatchSource {
public:
  virtual ~BatchSource() = default;
  /// The inputs of micro-batch number `index` (0-based over the whole run).
  virtual Status batch(int64_t index, std::vector<rt::HostTensor> &out) = 0;
  virtual std::string describe() const = 0;
  /// Where micro-batch `index`'s `input` came from, for messages.
  virtual std::string origin(int64_t index, const std::string &input) const = 0;
  int64_t tokensPerBatch = 0; // 0: report samples/s instead
  int64_t samplesPerBatch = 1;
};

/// Opens `path` for `plan`: a directory of batches DIR/<batch>/<input>.npy,
/// or a token file (`dtype` uint16|uint32 unless its llm.c header says,
/// `order` random|sequential windows, `seed` for random ones).
Status openBatchSource(const std::string &path, const std::string &dtype,
                       const std::string &order, uint64_t seed,
                       const Plan &plan, std::unique_ptr<BatchSource> &out);

} // namespace colossal::tools

#endif // COLOSSAL_TOOLS_COLOSSAL_RUN_TRAINDATA_H
