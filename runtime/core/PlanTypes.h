//===- PlanTypes.h - Converting plan types to runtime types -----*- C++ -*-===//
//
// Small helpers shared by the validator, the weight loader and the executor:
// plan dtypes to runtime dtypes, shapes to text for messages, and byte sizes
// computed without overflow (a corrupt plan may hold any numbers).
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_CORE_PLANTYPES_H
#define COLOSSAL_RUNTIME_CORE_PLANTYPES_H

#include "runtime/core/Types.h"
#include "runtime/proto/plan.pb.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace colossal::rt {

/// The runtime dtype of a plan dtype; false if unspecified or unknown.
inline bool toDType(int planDType, DType &out) {
  if (planDType < static_cast<int>(DType::F32) ||
      planDType > static_cast<int>(DType::F64))
    return false;
  out = static_cast<DType>(planDType);
  return true;
}

inline std::vector<int64_t> shapeOf(const plan::TensorType &type) {
  return std::vector<int64_t>(type.shape().begin(), type.shape().end());
}

/// "[2,3]"; "[]" for a scalar.
inline std::string formatShape(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

/// Bytes of a tensor of `shape` and `dtype`; false if a dimension is negative
/// or the size overflows int64.
inline bool tensorBytes(const std::vector<int64_t> &shape, DType dtype,
                        int64_t &bytes) {
  int64_t n = static_cast<int64_t>(dtypeSize(dtype));
  for (int64_t d : shape) {
    if (d < 0)
      return false;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      return false;
    n *= d;
  }
  bytes = n;
  return true;
}

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_CORE_PLANTYPES_H
