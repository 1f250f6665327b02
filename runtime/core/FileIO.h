//===- FileIO.h - Reading files and resolving relative paths ----*- C++ -*-===//
//
// Plans, weights and tensor files are read through these helpers, which
// report errors as text (the reason from the OS, or how short a file was)
// for callers to wrap into a message that says what to do.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_CORE_FILEIO_H
#define COLOSSAL_RUNTIME_CORE_FILEIO_H

#include <cstdint>
#include <string>

namespace colossal::rt {

/// The directory holding `path` ("." if it has none).
std::string directoryOf(const std::string &path);

/// `location` if absolute, else `baseDir`/`location`.
std::string resolvePath(const std::string &baseDir,
                        const std::string &location);

/// Reads all of `path` into `out`; on failure returns false with `why` set.
bool readWholeFile(const std::string &path, std::string &out, std::string &why);

/// Reads `length` bytes at `offset`; fails (with `why`) if the file is
/// missing or shorter than offset + length.
bool readFileRange(const std::string &path, int64_t offset, int64_t length,
                   std::string &out, std::string &why);

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_CORE_FILEIO_H
