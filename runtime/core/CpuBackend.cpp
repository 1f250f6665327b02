//===- CpuBackend.cpp - The CPU backend: host memory and CPU kernels ------===//
//
// Device memory is host memory, copies are memcpy, and kernels run
// synchronously, so synchronize() has nothing to wait for. The kernels come
// from runtime/backends/cpu when that library is part of the build
// (COLOSSAL_HAVE_CPU_KERNELS); without it the backend supports no op and
// sessions report which ops are missing.
//
//===----------------------------------------------------------------------===//

#include "runtime/core/Backend.h"

#ifdef COLOSSAL_HAVE_CPU_KERNELS
#include "runtime/backends/cpu/CpuKernels.h"
#endif

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

namespace colossal::rt {
namespace {

using CpuKernelFn = Status (*)(const std::vector<TensorRef> &,
                               const std::vector<TensorRef> &,
                               const AttributeMap &);

class CpuBackend final : public Backend {
public:
  explicit CpuBackend(int threads) {
    if (threads > 0) {
      omp_set_num_threads(threads);
      openblas_set_num_threads(threads);
    }
#ifdef COLOSSAL_HAVE_CPU_KERNELS
    for (const std::string &op : cpu::kernelNames())
      if (CpuKernelFn fn = cpu::findKernel(op))
        kernels_.emplace(op, fn);
#endif
  }

  const char *name() const override { return "cpu"; }
  bool hostAccessible() const override { return true; }

  Status copyToDevice(void *dst, const void *src, size_t bytes) override {
    if (bytes)
      std::memcpy(dst, src, bytes);
    return Status::ok();
  }
  Status copyToHost(void *dst, const void *src, size_t bytes) override {
    if (bytes)
      std::memcpy(dst, src, bytes);
    return Status::ok();
  }
  Status copyOnDevice(void *dst, const void *src, size_t bytes) override {
    if (bytes && dst != src)
      std::memmove(dst, src, bytes);
    return Status::ok();
  }

  bool supports(const std::string &op) const override {
    return kernels_.count(op) != 0;
  }
  std::vector<std::string> supportedOps() const override {
    std::vector<std::string> ops;
    for (const auto &entry : kernels_)
      ops.push_back(entry.first);
    std::sort(ops.begin(), ops.end());
    return ops;
  }
  Status launch(const std::string &op, const std::vector<TensorRef> &inputs,
                const std::vector<TensorRef> &outputs,
                const AttributeMap &attributes) override {
    auto it = kernels_.find(op);
    if (it == kernels_.end())
      return Status::error("the cpu backend has no kernel for op '" + op + "'");
    return it->second(inputs, outputs, attributes);
  }
  Status synchronize() override { return Status::ok(); }

protected:
  Status allocateImpl(size_t bytes, size_t alignment, void **out) override {
    // aligned_alloc wants a size that is a multiple of the alignment.
    size_t rounded = (bytes + alignment - 1) / alignment * alignment;
    *out = std::aligned_alloc(alignment, rounded);
    if (!*out)
      return Status::error("out of host memory: cannot allocate " +
                           std::to_string(bytes) + " bytes for the arena");
    return Status::ok();
  }
  void releaseImpl(void *ptr) override { std::free(ptr); }

private:
  std::unordered_map<std::string, CpuKernelFn> kernels_;
};

} // namespace

std::unique_ptr<Backend> createCpuBackend(int threads) {
  return std::make_unique<CpuBackend>(threads);
}

} // namespace colossal::rt
