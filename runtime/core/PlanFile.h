//===- PlanFile.h - Reading and writing .cplan files ------------*- C++ -*-===//
//
// A plan file is a 32-byte header followed by a serialized colossal.plan.Plan:
//   bytes 0-7   magic "CPLAN\0\r\n"
//   bytes 8-11  format version (little-endian uint32, kPlanFormatVersion)
//   bytes 12-15 reserved (0)
//   bytes 16-23 body length in bytes (little-endian uint64)
//   bytes 24-31 FNV-1a 64-bit hash of the body (little-endian uint64)
// Reading checks each field and says which one is wrong, so a truncated,
// corrupted or too-new plan is reported instead of misread. Writing goes to a
// temporary file that is renamed into place: a crash never leaves a
// half-written plan under the final name.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_CORE_PLANFILE_H
#define COLOSSAL_RUNTIME_CORE_PLANFILE_H

#include "runtime/core/Types.h"
#include "runtime/proto/plan.pb.h"

#include <cstdint>
#include <string>

namespace colossal::rt {

constexpr uint32_t kPlanFormatVersion = 1;

/// FNV-1a 64-bit hash.
uint64_t fnv1a64(const void *data, size_t size);

/// Serializes `plan` (setting its version) and writes it atomically.
Status writePlanFile(const plan::Plan &plan, const std::string &path);

/// Reads and checks a plan file.
Status readPlanFile(const std::string &path, plan::Plan &plan);

/// Parses a plan file's bytes (`source` names it in messages).
Status parsePlanBytes(const std::string &bytes, const std::string &source,
                      plan::Plan &plan);

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_CORE_PLANFILE_H
