//===- Backend.cpp - Memory accounting and the backend registry -----------===//

#include "runtime/core/Backend.h"

#ifdef COLOSSAL_HAVE_CUDA_BACKEND
#include "runtime/backends/cuda/CudaBackend.h"
#endif

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
#ifdef COLOSSAL_HAVE_CUDA_BACKEND
    reg->factories["cuda"] = &cuda::createCudaBackend;
#endif
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

std::string defaultBackendName() {
#ifdef COLOSSAL_HAVE_CUDA_BACKEND
  if (cuda::deviceCount() > 0)
    return "cuda";
#endif
  return "cpu";
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
    if (name == "cuda")
      return Status::error("this build of Colossal has no CUDA backend (it was "
                           "configured without a CUDA toolkit or with "
                           "-DCOLOSSAL_ENABLE_CUDA=OFF); run with "
                           "--backend=cpu, or rebuild with the CUDA toolkit "
                           "installed");
    return Status::error("unknown backend '" + name +
                         "'; this build has: " + known);
  }
  Status s = factory(options, out);
  if (s && !out)
    return Status::error("backend '" + name + "' could not be created");
  return s;
}

} // namespace colossal::rt
