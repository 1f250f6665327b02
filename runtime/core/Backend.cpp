//===- Backend.cpp - Memory accounting and the backend registry -----------===//

#include "runtime/core/Backend.h"

#include <algorithm>
#include <map>
#include <mutex>

namespace colossal::rt {

Status Backend::allocate(size_t bytes, size_t alignment, void **out) {
  *out = nullptr;
  if (bytes == 0)
    return Status::ok();
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    return Status::error("internal error: allocation alignment " +
                         std::to_string(alignment) + " is not a power of two");
  Status s = allocateImpl(bytes, alignment, out);
  if (!s)
    return s;
  live_.emplace_back(*out, bytes);
  allocated_ += bytes;
  peak_ = std::max(peak_, allocated_);
  return Status::ok();
}

void Backend::release(void *ptr) {
  if (!ptr)
    return;
  auto it = std::find_if(live_.begin(), live_.end(),
                         [&](const auto &entry) { return entry.first == ptr; });
  if (it != live_.end()) {
    allocated_ -= it->second;
    live_.erase(it);
  }
  releaseImpl(ptr);
}

namespace {
struct Registry {
  std::mutex mutex;
  std::map<std::string, BackendFactory> factories;
};

Registry &registry() {
  static Registry *r = [] {
    auto *reg = new Registry;
    reg->factories["cpu"] = [](const BackendOptions &options,
                               std::unique_ptr<Backend> &out) {
      out = createCpuBackend(options.threads);
      return Status::ok();
    };
    return reg;
  }();
  return *r;
}
} // namespace

void registerBackend(const std::string &name, BackendFactory factory) {
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.factories[name] = std::move(factory);
}

std::vector<std::string> backendNames() {
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto &entry : r.factories)
    names.push_back(entry.first);
  return names;
}

Status createBackend(const std::string &name, const BackendOptions &options,
                     std::unique_ptr<Backend> &out) {
  BackendFactory factory;
  {
    Registry &r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.factories.find(name);
    if (it != r.factories.end())
      factory = it->second;
  }
  if (!factory) {
    std::string known;
    for (const std::string &n : backendNames())
      known += (known.empty() ? "" : ", ") + n;
    return Status::error("unknown backend '" + name +
                         "'; this build has: " + known);
  }
  Status s = factory(options, out);
  if (s && !out)
    return Status::error("backend '" + name + "' could not be created");
  return s;
}

} // namespace colossal::rt
