//===- Safetensors.h - Reading and writing .safetensors files ---*- C++ -*-===//
//
// The checkpoint format of training runs, shared with the Hugging Face
// `safetensors` library: an 8-byte header length, a JSON header, then the raw
// little-endian tensor bytes. Writes are atomic and reads validate everything,
// so a crash mid-save never leaves a checkpoint that loads as garbage.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_CORE_SAFETENSORS_H
#define COLOSSAL_RUNTIME_CORE_SAFETENSORS_H

#include "runtime/core/HostTensor.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace colossal::rt {

/// One named tensor of a safetensors file; `data` holds its raw row-major
/// little-endian bytes (numel * dtypeSize(dtype) of them).
using SafetensorsEntry = HostTensor;

/// Writes `tensors` (in the order given) and `metadata` (the "__metadata__"
/// map, omitted when empty) as a safetensors file at `path`, atomically: a
/// temporary file in the same directory (path + ".tmp-<pid>"), fully written
/// and fsync'ed, then renamed over `path`, then the directory fsync'ed. A
/// crash or SIGKILL at any moment leaves either the old file at `path` or the
/// new one, never a partial one. On failure the temporary is removed and
/// `path` is untouched. Two writers of one path in the same process must not
/// run at once (they would share the temporary).
Status writeSafetensors(const std::string &path,
                        const std::vector<const SafetensorsEntry *> &tensors,
                        const std::map<std::string, std::string> &metadata);

/// The layout of a safetensors file that several processes write together,
/// each the bytes it owns: `prefix` is everything before the data region
/// (the length and the header), `offsets[i]` where tensor i's data starts
/// in the file, `fileBytes` the whole size. Only names, dtypes and shapes of
/// `tensors` are used (their data may be empty).
Status planSafetensors(const std::vector<const SafetensorsEntry *> &tensors,
                       const std::map<std::string, std::string> &metadata,
                       std::string &prefix, std::vector<uint64_t> &offsets,
                       uint64_t &fileBytes);

/// Reads and fully validates the safetensors file at `path`: header length
/// within the file, well-formed JSON, a known dtype, shape and in-range
/// data_offsets for every tensor, sizes equal to numel * dtype size, and
/// tensors that cover the data region exactly, without overlap or gaps.
/// `tensors` come in the order of their data in the file; BOOL bytes are
/// normalized to 0/1. On failure the Status names the file, what is wrong and
/// what to do, and `tensors` and `metadata` are left empty.
Status readSafetensors(const std::string &path,
                       std::vector<SafetensorsEntry> &tensors,
                       std::map<std::string, std::string> &metadata);

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_CORE_SAFETENSORS_H
