//===- Safetensors.cpp - Reading and writing .safetensors files -----------===//
//
// Layout: a u64 little-endian header length N, N bytes of JSON padded with
// spaces so that the data starts 8-byte aligned, then the data region. Each
// header entry is {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]}
// with offsets relative to the data region; "__metadata__" maps strings to
// strings.
//
//===----------------------------------------------------------------------===//

#include "runtime/core/Safetensors.h"

#include "runtime/core/FileIO.h"
#include "runtime/core/PlanTypes.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <new>
#include <set>
#include <stdexcept>
#include <tuple>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace colossal::rt {
namespace {

using Json = nlohmann::json;

// The Hugging Face reader refuses larger headers; refusing them too means a
// garbage length is reported before anything is allocated for it.
constexpr uint64_t kMaxHeaderBytes = 100000000;

const char kCorrupt[] = "; the file is corrupt or not a safetensors file: "
                        "restore it from a copy or save it again";
const char kCutShort[] = "; the file was cut short (an interrupted copy or "
                         "save?): restore it from a copy or save it again";

const char *tagOf(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return "F32";
  case DType::F16:
    return "F16";
  case DType::BF16:
    return "BF16";
  case DType::I64:
    return "I64";
  case DType::I32:
    return "I32";
  case DType::Bool:
    return "BOOL";
  case DType::F64:
    return "F64";
  }
  return nullptr;
}

// The runtime dtype of a header's dtype string, or why it is refused.
bool dtypeOfTag(const std::string &tag, const std::string &tensor, DType &out,
                std::string &why) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32,
                  DType::Bool, DType::F64})
    if (tag == tagOf(t)) {
      out = t;
      return true;
    }
  static const char *const kForeign[] = {
      "I8",      "U8", "I16",     "U16",     "U32",     "U64", "F8_E4M3",
      "F8_E5M2", "F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "C64"};
  for (const char *f : kForeign)
    if (tag == f) {
      why = "has tensor '" + tensor + "' of dtype " + tag +
            ", which the runtime does not support (it reads F32, F16, BF16, "
            "F64, I64, I32, BOOL); convert it before saving, e.g. "
            "tensor.to(torch.float32)";
      return false;
    }
  why = "has tensor '" + tensor + "' of unknown dtype '" + tag +
        "' (known: F32, F16, BF16, F64, I64, I32, BOOL)" + kCorrupt;
  return false;
}

std::string formatOffsets(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + "," + std::to_string(end) + "]";
}

// Closes the descriptor on every path out.
struct Fd {
  int fd = -1;
  Fd() = default;
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
  ~Fd() { reset(); }
  int reset() {
    int rc = fd >= 0 ? ::close(fd) : 0;
    fd = -1;
    return rc;
  }
};

bool writeAll(int fd, const char *data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Reads `size` bytes at `offset`; a short file sets errno to 0.
bool readAllAt(int fd, char *data, size_t size, uint64_t offset) {
  while (size > 0) {
    ssize_t n = ::pread(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (n == 0)
        errno = 0;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

std::string readError(const std::string &path) {
  if (errno == 0)
    return "'" + path +
           "' changed size while being read; is another "
           "process writing it without writeSafetensors?";
  return "cannot read '" + path + "': " + std::strerror(errno);
}

// The message of a nlohmann exception without its "[json.exception...] ".
std::string jsonWhat(const std::exception &e) {
  std::string what = e.what();
  size_t end = what.find("] ");
  return end == std::string::npos ? what : what.substr(end + 2);
}

// The JSON header (padded) of `tensors`, or why they cannot be written.
bool encodeHeader(const std::vector<const SafetensorsEntry *> &tensors,
                  const std::map<std::string, std::string> &metadata,
                  std::string &out, std::string &why,
                  bool withData = true) try {
  // Assembled piece by piece: a json object would sort the tensors by name,
  // and nlohmann's ordered_json finds keys by linear search.
  out = "{";
  if (!metadata.empty())
    out += "\"__metadata__\":" + Json(metadata).dump();
  std::set<std::string> names;
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const SafetensorsEntry *t = tensors[i];
    if (!t) {
      why = "tensor #" + std::to_string(i) + " is a null pointer";
      return false;
    }
    const char *tag = tagOf(t->dtype);
    int64_t need;
    if (t->name == "__metadata__") {
      why = "a tensor is named '__metadata__', which safetensors reserves for "
            "the metadata map; rename it";
    } else if (!names.insert(t->name).second) {
      why = "two tensors are named '" + t->name + "'; names must be unique";
    } else if (!tag) {
      why = "tensor '" + t->name + "' has an invalid dtype value " +
            std::to_string(static_cast<int>(t->dtype));
    } else if (!tensorBytes(t->shape, t->dtype, need)) {
      why = "tensor '" + t->name + "' has an invalid shape " +
            formatShape(t->shape) + " (a negative or too large dimension)";
    } else if (withData && t->data.size() != static_cast<uint64_t>(need)) {
      why = "tensor '" + t->name + "' holds " + std::to_string(t->data.size()) +
            " bytes, but " + tag + formatShape(t->shape) + " needs " +
            std::to_string(need);
    } else {
      uint64_t end = offset + static_cast<uint64_t>(need);
      if (out.size() > 1)
        out += ",";
      out += Json(t->name).dump() + ":{\"dtype\":\"" + tag +
             "\",\"shape\":" + Json(t->shape).dump() + ",\"data_offsets\":[" +
             std::to_string(offset) + "," + std::to_string(end) + "]}";
      offset = end;
      continue;
    }
    return false;
  }
  out += "}";
  out.append((8 - out.size() % 8) % 8, ' ');
  return true;
} catch (const Json::type_error &e) {
  why = "a tensor name or metadata string is not valid UTF-8 (" + jsonWhat(e) +
        ")";
  return false;
}

// Writes the file to the open temporary `fd`; false with errno set on error.
bool writeContents(int fd, const std::string &header,
                   const std::vector<const SafetensorsEntry *> &tensors) {
  char prefix[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i)
    prefix[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  if (!writeAll(fd, prefix, 8) || !writeAll(fd, header.data(), header.size()))
    return false;
  for (const SafetensorsEntry *t : tensors)
    if (!writeAll(fd, t->data.data(), t->data.size()))
      return false;
  return ::fsync(fd) == 0;
}

// A non-negative JSON integer.
bool asCount(const Json &j, uint64_t &out) {
  if (j.is_number_unsigned()) {
    out = j.get<uint64_t>();
    return true;
  }
  if (j.is_number_integer() && j.get<int64_t>() >= 0) {
    out = static_cast<uint64_t>(j.get<int64_t>());
    return true;
  }
  return false;
}

// Where a tensor's bytes lie in the data region.
struct Slot {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
  size_t position; // in the header
};

// Checks one tensor's header entry; `why` continues "'<path>' ...".
bool parseEntry(const std::string &name, const Json &value, uint64_t dataSize,
                Slot &slot, std::string &why) {
  slot.name = name;
  std::string quoted = "tensor '" + name + "'";
  if (!value.is_object()) {
    why = "has a header entry for " + quoted + " that is not an object" +
          kCorrupt;
    return false;
  }
  auto dtype = value.find("dtype");
  auto shape = value.find("shape");
  auto offsets = value.find("data_offsets");
  if (dtype == value.end() || shape == value.end() || offsets == value.end()) {
    why = "has a header entry for " + quoted +
          " without 'dtype', 'shape' or 'data_offsets'" + kCorrupt;
    return false;
  }
  if (!dtype->is_string()) {
    why = "has a non-string dtype for " + quoted + kCorrupt;
    return false;
  }
  if (!dtypeOfTag(dtype->get<std::string>(), name, slot.dtype, why))
    return false;
  if (!shape->is_array()) {
    why = "has a shape for " + quoted + " that is not a list" + kCorrupt;
    return false;
  }
  slot.shape.clear();
  for (const Json &d : *shape) {
    uint64_t dim;
    if (!asCount(d, dim) ||
        dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      why = "has an invalid shape " + shape->dump() + " for " + quoted +
            " (dimensions must be non-negative integers)" + kCorrupt;
      return false;
    }
    slot.shape.push_back(static_cast<int64_t>(dim));
  }
  if (!offsets->is_array() || offsets->size() != 2 ||
      !asCount((*offsets)[0], slot.begin) ||
      !asCount((*offsets)[1], slot.end) || slot.begin > slot.end) {
    why = "has invalid data_offsets " + offsets->dump() + " for " + quoted +
          " (expected [begin, end] with 0 <= begin <= end)" + kCorrupt;
    return false;
  }
  int64_t need;
  if (!tensorBytes(slot.shape, slot.dtype, need)) {
    why = "has shape " + formatShape(slot.shape) + " for " + quoted +
          ", which is too large" + kCorrupt;
    return false;
  }
  std::string spanned = tagOf(slot.dtype) + formatShape(slot.shape);
  if (slot.end > dataSize) {
    why = "has data_offsets " + formatOffsets(slot.begin, slot.end) + " for " +
          quoted + " out of range: the data region holds only " +
          std::to_string(dataSize) + " bytes (truncated or corrupt)" +
          kCutShort;
    return false;
  }
  if (slot.end - slot.begin != static_cast<uint64_t>(need)) {
    why = "has a size mismatch for " + quoted + ": " + spanned + " needs " +
          std::to_string(need) + " bytes, but its data_offsets " +
          formatOffsets(slot.begin, slot.end) + " span " +
          std::to_string(slot.end - slot.begin) + kCorrupt;
    return false;
  }
  return true;
}

Status readValidated(const std::string &path,
                     std::vector<SafetensorsEntry> &tensors,
                     std::map<std::string, std::string> &metadata) {
  auto bad = [&](const std::string &what) {
    return Status::error("'" + path + "' " + what);
  };
  Fd fd;
  fd.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd.fd < 0)
    return Status::error("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd.fd, &st) != 0)
    return Status::error(readError(path));
  if (!S_ISREG(st.st_mode))
    return bad("is not a regular file; pass the path of a .safetensors file");
  uint64_t fileSize = static_cast<uint64_t>(st.st_size);

  // Step 1: the header length, checked against the file before trusting it.
  if (fileSize < 8)
    return bad("is truncated: it has " + std::to_string(fileSize) +
               " bytes, fewer than the 8-byte header length" + kCutShort);
  unsigned char prefix[8];
  if (!readAllAt(fd.fd, reinterpret_cast<char *>(prefix), 8, 0))
    return Status::error(readError(path));
  uint64_t headerSize = 0;
  for (int i = 0; i < 8; ++i)
    headerSize |= static_cast<uint64_t>(prefix[i]) << (8 * i);
  if (headerSize > kMaxHeaderBytes)
    return bad("has a header length of " + std::to_string(headerSize) +
               " bytes, more than the " + std::to_string(kMaxHeaderBytes) +
               " safetensors allows" + kCorrupt);
  if (headerSize > fileSize - 8)
    return bad("is truncated: header says " + std::to_string(headerSize) +
               " bytes but file has " + std::to_string(fileSize) + " (8 + " +
               std::to_string(headerSize) + " needed)" + kCutShort);
  uint64_t dataSize = fileSize - 8 - headerSize;

  // Step 2: the JSON, rejecting names listed twice (which a DOM would hide).
  std::string header(headerSize, '\0');
  if (!readAllAt(fd.fd, &header[0], header.size(), 8))
    return Status::error(readError(path));
  // The DOM sorts keys, so the callback also notes the header's order.
  std::map<std::string, size_t> position;
  std::string duplicate;
  Json::parser_callback_t noteKeys = [&](int depth, Json::parse_event_t event,
                                         Json &parsed) {
    if (event == Json::parse_event_t::key && depth == 1 &&
        !position.emplace(parsed.get<std::string>(), position.size()).second &&
        duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  Json root;
  try {
    root = Json::parse(header, noteKeys);
  } catch (const Json::parse_error &e) {
    return bad("has a malformed JSON header (" + jsonWhat(e) + ")" + kCorrupt);
  }
  if (!root.is_object())
    return bad("has a JSON header that is not an object" +
               std::string(kCorrupt));
  if (!duplicate.empty())
    return bad("lists '" + duplicate + "' twice in its header" + kCorrupt);

  // Step 3: every entry on its own.
  std::vector<Slot> slots;
  for (const auto &[key, value] : root.items()) {
    if (key == "__metadata__") {
      if (value.is_null())
        continue;
      if (!value.is_object())
        return bad("has a '__metadata__' entry that is not a map" +
                   std::string(kCorrupt));
      for (const auto &[k, v] : value.items()) {
        if (!v.is_string())
          return bad("has metadata '" + k + "' whose value " + v.dump() +
                     " is not a string (safetensors metadata maps strings to "
                     "strings)" +
                     kCorrupt);
        metadata[k] = v.get<std::string>();
      }
      continue;
    }
    Slot slot;
    slot.position = position[key];
    std::string why;
    if (!parseEntry(key, value, dataSize, slot, why))
      return bad(why);
    slots.push_back(std::move(slot));
  }

  // Step 4: the entries tile the data region, as the writer lays them out.
  std::sort(slots.begin(), slots.end(), [](const Slot &a, const Slot &b) {
    return std::tie(a.begin, a.end, a.position) <
           std::tie(b.begin, b.end, b.position);
  });
  uint64_t at = 0;
  for (size_t i = 0; i < slots.size(); ++i) {
    const Slot &s = slots[i];
    if (s.begin < at)
      return bad("has overlapping entries: tensor '" + slots[i - 1].name +
                 "' " + formatOffsets(slots[i - 1].begin, slots[i - 1].end) +
                 " and tensor '" + s.name + "' " +
                 formatOffsets(s.begin, s.end) + kCorrupt);
    if (s.begin > at)
      return bad("has " + std::to_string(s.begin - at) +
                 " bytes before tensor '" + s.name + "' " +
                 formatOffsets(s.begin, s.end) +
                 " that no entry covers (entries must cover the data region "
                 "exactly)" +
                 kCorrupt);
    at = s.end;
  }
  if (at != dataSize)
    return bad("has " + std::to_string(dataSize - at) +
               " bytes after the last tensor that no entry covers (entries "
               "must cover the data region exactly)" +
               kCorrupt);

  // Step 5: the bytes.
  tensors.reserve(slots.size());
  for (Slot &s : slots) {
    SafetensorsEntry t;
    t.name = std::move(s.name);
    t.dtype = s.dtype;
    t.shape = std::move(s.shape);
    t.data.resize(s.end - s.begin);
    if (!t.data.empty() &&
        !readAllAt(fd.fd, &t.data[0], t.data.size(), 8 + headerSize + s.begin))
      return Status::error(readError(path));
    if (t.dtype == DType::Bool)
      for (char &c : t.data)
        c = c ? 1 : 0;
    tensors.push_back(std::move(t));
  }
  return Status::ok();
}

} // namespace

Status writeSafetensors(const std::string &path,
                        const std::vector<const SafetensorsEntry *> &tensors,
                        const std::map<std::string, std::string> &metadata) {
  auto fail = [&](const std::string &what) {
    return Status::error("cannot write '" + path + "': " + what);
  };
  std::string header, why;
  try {
    if (!encodeHeader(tensors, metadata, header, why))
      return fail(why + "; nothing was written");
  } catch (const std::bad_alloc &) {
    return fail("out of host memory building the header; nothing was written");
  } catch (const std::exception &e) {
    return fail(std::string(e.what()) + "; nothing was written");
  }

  std::string tmp;
  try {
    tmp = path + ".tmp-" + std::to_string(::getpid());
  } catch (const std::bad_alloc &) {
    return fail("out of host memory; nothing was written");
  }
  Fd fd;
  fd.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd.fd < 0)
    return fail("cannot create the temporary file '" + tmp +
                "': " + std::strerror(errno) +
                "; check that the directory exists and is writable (the "
                "previous file, if any, is unchanged)");
  // From here on every failure removes the temporary.
  auto abandon = [&](const std::string &what) {
    int err = errno;
    fd.reset();
    ::unlink(tmp.c_str());
    return fail(what + ": " + std::strerror(err) +
                " (the previous file, if any, is unchanged)");
  };
  if (!writeContents(fd.fd, header, tensors))
    return abandon("writing the temporary file '" + tmp +
                   "' failed (disk full or over quota?)");
  if (fd.reset() != 0)
    return abandon("closing the temporary file '" + tmp + "' failed");
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return abandon("cannot rename '" + tmp + "' over it");

  // The rename is durable only once the directory entry is on disk.
  Fd dir;
  dir.fd =
      ::open(directoryOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir.fd < 0 || (::fsync(dir.fd) != 0 && errno != EINVAL))
    return fail(std::string("the new file is in place, but syncing its "
                            "directory failed: ") +
                std::strerror(errno) +
                "; it may not survive a power failure, so save again");
  return Status::ok();
}

Status planSafetensors(const std::vector<const SafetensorsEntry *> &tensors,
                       const std::map<std::string, std::string> &metadata,
                       std::string &prefix, std::vector<uint64_t> &offsets,
                       uint64_t &fileBytes) {
  std::string header, why;
  try {
    if (!encodeHeader(tensors, metadata, header, why, /*withData=*/false))
      return Status::error(why);
    prefix.assign(8, '\0');
    for (int i = 0; i < 8; ++i)
      prefix[i] =
          static_cast<char>((uint64_t(header.size()) >> (8 * i)) & 0xff);
    prefix += header;
    offsets.clear();
    uint64_t at = prefix.size();
    for (const SafetensorsEntry *t : tensors) {
      offsets.push_back(at);
      int64_t need = 0;
      tensorBytes(t->shape, t->dtype, need);
      at += static_cast<uint64_t>(need);
    }
    fileBytes = at;
    return Status::ok();
  } catch (const std::bad_alloc &) {
    return Status::error("out of host memory planning a checkpoint");
  }
}

Status readSafetensors(const std::string &path,
                       std::vector<SafetensorsEntry> &tensors,
                       std::map<std::string, std::string> &metadata) {
  tensors.clear();
  metadata.clear();
  Status s;
  try {
    s = readValidated(path, tensors, metadata);
  } catch (const std::bad_alloc &) {
    s = Status::error("out of host memory reading '" + path +
                      "'; free memory or load a smaller checkpoint");
  } catch (const std::exception &e) {
    s = Status::error("cannot read '" + path + "': " + e.what());
  }
  if (!s) {
    tensors.clear();
    metadata.clear();
  }
  return s;
}

} // namespace colossal::rt
