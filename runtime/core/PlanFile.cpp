//===- PlanFile.cpp - Reading and writing .cplan files --------------------===//

#include "runtime/core/PlanFile.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <unistd.h>

namespace colossal::rt {

static const char kMagic[8] = {'C', 'P', 'L', 'A', 'N', '\0', '\r', '\n'};
static constexpr size_t kHeaderSize = 32;

uint64_t fnv1a64(const void *data, size_t size) {
  const auto *p = static_cast<const unsigned char *>(data);
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

static void putLE(std::string &out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

static uint64_t getLE(const std::string &in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(in[at + i]))
         << (8 * i);
  return v;
}

Status writePlanFile(const plan::Plan &planIn, const std::string &path) {
  plan::Plan plan = planIn;
  plan.set_version(kPlanFormatVersion);
  std::string body;
  if (!plan.SerializeToString(&body))
    return Status::error("cannot serialize the plan for '" + path +
                         "' (is it larger than 2 GiB? keep weights external)");
  std::string header(kMagic, sizeof(kMagic));
  putLE(header, kPlanFormatVersion, 4);
  putLE(header, 0, 4);
  putLE(header, body.size(), 8);
  putLE(header, fnv1a64(body.data(), body.size()), 8);

  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      return Status::error("cannot write '" + tmp +
                           "': " + std::strerror(errno));
    out.write(header.data(), header.size());
    out.write(body.data(), body.size());
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return Status::error("cannot write '" + tmp +
                           "' (disk full?): " + std::strerror(errno));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    return Status::error("cannot move the plan into place at '" + path +
                         "': " + why);
  }
  return Status::ok();
}

Status parsePlanBytes(const std::string &bytes, const std::string &source,
                      plan::Plan &plan) {
  if (bytes.size() < kHeaderSize || std::memcmp(bytes.data(), kMagic, 8) != 0)
    return Status::error("'" + source +
                         "' is not a Colossal plan (bad magic); produce one "
                         "with colossal-opt --emit=plan");
  uint32_t version = static_cast<uint32_t>(getLE(bytes, 8, 4));
  if (version != kPlanFormatVersion)
    return Status::error(
        "'" + source + "' has plan format version " + std::to_string(version) +
        ", this runtime reads " + std::to_string(kPlanFormatVersion) +
        "; recompile the model with this release's colossal-opt");
  uint64_t length = getLE(bytes, 16, 8);
  uint64_t checksum = getLE(bytes, 24, 8);
  if (bytes.size() - kHeaderSize != length)
    return Status::error("'" + source +
                         "' is truncated or has trailing bytes: "
                         "the header says " +
                         std::to_string(length) +
                         " bytes of plan, the file holds " +
                         std::to_string(bytes.size() - kHeaderSize));
  if (fnv1a64(bytes.data() + kHeaderSize, length) != checksum)
    return Status::error("'" + source +
                         "' is corrupt: checksum mismatch; "
                         "recompile it or copy it again");
  if (length > static_cast<uint64_t>(INT32_MAX) ||
      !plan.ParseFromArray(bytes.data() + kHeaderSize,
                           static_cast<int>(length)))
    return Status::error("'" + source +
                         "' is corrupt: the plan body does not parse");
  if (plan.version() != kPlanFormatVersion)
    return Status::error("'" + source + "' declares plan version " +
                         std::to_string(plan.version()) + " in its body");
  return Status::ok();
}

Status readPlanFile(const std::string &path, plan::Plan &plan) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error("cannot open plan '" + path +
                         "': " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return parsePlanBytes(ss.str(), path, plan);
}

} // namespace colossal::rt
