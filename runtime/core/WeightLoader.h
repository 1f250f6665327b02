//===- WeightLoader.h - Parameter bytes for a rank's buffers ----*- C++ -*-===//
//
// Produces the host bytes of a plan parameter, or of the box of it that one
// rank holds, from wherever the plan says they live: embedded in the plan,
// a range of an external file, or an initializer of an ONNX model. Relative
// paths are resolved against the plan file's directory. A float32 source for
// a float16/bfloat16 parameter is rounded; any other type mismatch is an
// error.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_CORE_WEIGHTLOADER_H
#define COLOSSAL_RUNTIME_CORE_WEIGHTLOADER_H

#include "runtime/core/OnnxTensor.h"
#include "runtime/core/Types.h"
#include "runtime/proto/plan.pb.h"

#include <string>
#include <vector>

namespace colossal::rt {

class WeightLoader {
public:
  /// `planDir` is the directory of the plan file; `source` names the plan in
  /// messages. The plan must outlive the loader and be validated.
  WeightLoader(const plan::Plan &plan, std::string planDir, std::string source);

  /// The bytes of parameter `index` restricted to the box at `offsets` with
  /// `shape` (empty offsets: the whole tensor).
  Status loadSlice(int index, const std::vector<int64_t> &offsets,
                   const std::vector<int64_t> &shape, std::string &out);

private:
  Status loadWhole(int index, std::string &out);

  const plan::Plan &plan_;
  std::string planDir_;
  std::string source_;
  OnnxModelCache models_;
};

/// Copies the box at `offsets` with shape `box` out of a row-major tensor of
/// shape `full` whose elements are `elemSize` bytes. Inputs must be valid.
void copyBox(const char *src, const std::vector<int64_t> &full,
             const std::vector<int64_t> &offsets,
             const std::vector<int64_t> &box, size_t elemSize, char *dst);

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_CORE_WEIGHTLOADER_H
