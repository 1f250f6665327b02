//===- DType.h - Element types known to the cost model ----------*- C++ -*-===//
//
// The element types whose peak throughput a cluster spec lists, with their
// sizes. Kept apart so that cluster specs, workloads and estimators share one
// spelling ("fp32", "tf32", "bf16", "fp16").
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_COMPILER_COST_DTYPE_H
#define COLOSSAL_COMPILER_COST_DTYPE_H

#include "llvm/ADT/StringRef.h"

#include <optional>

namespace colossal {
namespace cost {

/// Compute types. TF32 stores fp32 (4 bytes) but multiplies on tensor cores.
enum class DType { FP32 = 0, TF32 = 1, BF16 = 2, FP16 = 3 };
constexpr int kNumDTypes = 4;

/// Bytes per element as stored in memory.
inline double dtypeBytes(DType t) {
  return (t == DType::BF16 || t == DType::FP16) ? 2.0 : 4.0;
}

inline llvm::StringRef dtypeName(DType t) {
  switch (t) {
  case DType::FP32:
    return "fp32";
  case DType::TF32:
    return "tf32";
  case DType::BF16:
    return "bf16";
  case DType::FP16:
    return "fp16";
  }
  return "?";
}

inline std::optional<DType> parseDType(llvm::StringRef s) {
  if (s == "fp32")
    return DType::FP32;
  if (s == "tf32")
    return DType::TF32;
  if (s == "bf16")
    return DType::BF16;
  if (s == "fp16")
    return DType::FP16;
  return std::nullopt;
}

} // namespace cost
} // namespace colossal

#endif // COLOSSAL_COMPILER_COST_DTYPE_H
