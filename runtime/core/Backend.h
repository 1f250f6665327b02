//===- Backend.h - Device memory, copies and kernel launches ----*- C++ -*-===//
//
// A backend is one device as the executor sees it: it allocates and releases
// device memory (tracking the peak, so the runtime can prove it used exactly
// the memory the plan predicted), copies between host and device, and
// launches kernels by graph-op name. The CPU backend is built in; a CUDA
// backend implements the same interface and registers itself by name.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_CORE_BACKEND_H
#define COLOSSAL_RUNTIME_CORE_BACKEND_H

#include "runtime/core/Types.h"

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace colossal::rt {

/// How a backend is created.
struct BackendOptions {
  /// Worker threads for kernels (OpenMP, OpenBLAS); <= 0 keeps the defaults.
  int threads = 0;
  /// Which device of the backend's kind (CUDA ordinal); 0 for the CPU.
  int device = 0;
};

/// One device. Not thread-safe: a session drives its backend from one thread.
class Backend {
public:
  virtual ~Backend() = default;

  /// "cpu", "cuda", ...
  virtual const char *name() const = 0;

  /// Allocates `bytes` of device memory aligned to `alignment` (a power of
  /// two); counts it toward the peak. Zero bytes gives a null pointer.
  Status allocate(size_t bytes, size_t alignment, void **out);
  /// Releases memory from allocate(); null is ignored.
  void release(void *ptr);
  /// Bytes currently allocated, and the most ever allocated at once.
  size_t allocatedBytes() const { return allocated_; }
  size_t peakAllocatedBytes() const { return peak_; }

  /// Device memory this backend holds as the device itself reports it
  /// (CUDA: the drop in cudaMemGetInfo's free bytes since the backend was
  /// made), or -1 where the device reports nothing beyond allocate().
  virtual int64_t measuredDeviceBytes() const { return -1; }

  /// Whether device pointers may be dereferenced on the host (CPU: yes).
  virtual bool hostAccessible() const = 0;
  virtual Status copyToDevice(void *dst, const void *src, size_t bytes) = 0;
  virtual Status copyToHost(void *dst, const void *src, size_t bytes) = 0;
  virtual Status copyOnDevice(void *dst, const void *src, size_t bytes) = 0;

  /// Whether a kernel for graph op `op` exists.
  virtual bool supports(const std::string &op) const = 0;
  /// Names of all ops this backend implements (for error messages).
  virtual std::vector<std::string> supportedOps() const = 0;
  /// Launches (possibly asynchronously) the kernel for `op` over device
  /// tensors.
  virtual Status launch(const std::string &op,
                        const std::vector<TensorRef> &inputs,
                        const std::vector<TensorRef> &outputs,
                        const AttributeMap &attributes) = 0;
  /// Waits for everything launched so far.
  virtual Status synchronize() = 0;

protected:
  virtual Status allocateImpl(size_t bytes, size_t alignment, void **out) = 0;
  virtual void releaseImpl(void *ptr) = 0;

private:
  // Sizes by pointer, so release() can keep the count exact.
  std::vector<std::pair<void *, size_t>> live_;
  size_t allocated_ = 0;
  size_t peak_ = 0;
};

/// The CPU backend: host memory, kernels from runtime/backends/cpu.
/// `threads` > 0 sets the OpenMP and OpenBLAS thread counts (these are
/// process-wide settings).
std::unique_ptr<Backend> createCpuBackend(int threads);

/// Makes a backend; registered under a name so sessions can pick one.
using BackendFactory =
    std::function<Status(const BackendOptions &, std::unique_ptr<Backend> &)>;

/// Registers (or replaces) the backend `name`. "cpu" is registered already.
void registerBackend(const std::string &name, BackendFactory factory);

/// Creates the backend `name`; an unknown name is an error listing the known
/// ones.
Status createBackend(const std::string &name, const BackendOptions &options,
                     std::unique_ptr<Backend> &out);

/// The backend a session uses when none is named: "cuda" when this build
/// has the CUDA backend and the machine a CUDA device, else "cpu".
std::string defaultBackendName();

/// Names of the registered backends, sorted.
std::vector<std::string> backendNames();

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_CORE_BACKEND_H
