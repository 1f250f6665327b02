//===- FileIO.cpp - Reading files and resolving relative paths ------------===//

#include "runtime/core/FileIO.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <new>

namespace colossal::rt {

std::string directoryOf(const std::string &path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  return dir.empty() ? "." : dir.string();
}

std::string resolvePath(const std::string &baseDir,
                        const std::string &location) {
  std::filesystem::path p(location);
  if (p.is_absolute() || baseDir.empty() || baseDir == ".")
    return location;
  return (std::filesystem::path(baseDir) / p).string();
}

namespace {
// Closes the FILE on every path out.
struct File {
  explicit File(const std::string &path) : f(std::fopen(path.c_str(), "rb")) {}
  ~File() {
    if (f)
      std::fclose(f);
  }
  std::FILE *f;
};

bool fileSize(std::FILE *f, int64_t &size) {
  if (std::fseek(f, 0, SEEK_END) != 0)
    return false;
  long end = std::ftell(f);
  if (end < 0)
    return false;
  size = end;
  return std::fseek(f, 0, SEEK_SET) == 0;
}

bool readRange(std::FILE *f, const std::string &path, int64_t offset,
               int64_t length, std::string &out, std::string &why) {
  try {
    out.resize(static_cast<size_t>(length));
  } catch (const std::bad_alloc &) {
    why = "out of host memory reading " + std::to_string(length) +
          " bytes from '" + path + "'";
    return false;
  } catch (const std::length_error &) {
    why = "cannot hold " + std::to_string(length) + " bytes in memory";
    return false;
  }
  if (std::fseek(f, static_cast<long>(offset), SEEK_SET) != 0 ||
      (length > 0 && std::fread(&out[0], 1, out.size(), f) != out.size())) {
    why = "cannot read '" + path + "': " + std::strerror(errno);
    return false;
  }
  return true;
}

/// Checks that `file` (opened from `path`) is open and measures it.
bool openedSize(const File &file, const std::string &path, int64_t &size,
                std::string &why) {
  if (!file.f) {
    why = "cannot open '" + path + "': " + std::strerror(errno);
    return false;
  }
  if (!fileSize(file.f, size)) {
    why = "cannot read '" + path + "' (is it a directory?)";
    return false;
  }
  return true;
}
} // namespace

bool readWholeFile(const std::string &path, std::string &out,
                   std::string &why) {
  File file(path);
  int64_t size;
  if (!openedSize(file, path, size, why))
    return false;
  return readRange(file.f, path, 0, size, out, why);
}

bool readFileRange(const std::string &path, int64_t offset, int64_t length,
                   std::string &out, std::string &why) {
  File file(path);
  int64_t size;
  if (!openedSize(file, path, size, why))
    return false;
  if (offset < 0 || length < 0 || offset > size || length > size - offset) {
    why = "'" + path + "' holds " + std::to_string(size) + " bytes, but " +
          std::to_string(length) + " bytes at offset " +
          std::to_string(offset) +
          " are needed (the file is truncated or "
          "is not the one the plan was compiled with)";
    return false;
  }
  return readRange(file.f, path, offset, length, out, why);
}

} // namespace colossal::rt
