//===- CudaBackend.cpp - Device memory, copies and launches on one GPU ----===//
//
// Kernels are launched asynchronously on one compute stream; copies between
// host and device go on the same stream and wait for it, because the host
// memory they read or write belongs to the caller once they return.
// synchronize() waits for the stream and turns an asynchronous fault (an
// illegal address in some earlier kernel) into an error.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cuda/CudaBackend.h"
#include "runtime/backends/cuda/CudaKernels.h"

#include <cuda_runtime_api.h>

#include <algorithm>

namespace colossal::rt::cuda {
namespace {

Status cudaStatus(const char *what, cudaError_t e) {
  if (e == cudaSuccess)
    return Status::ok();
  return Status::error(std::string("cuda: ") + what +
                       " failed: " + cudaGetErrorName(e) + " (" +
                       cudaGetErrorString(e) + ")");
}

class CudaBackend final : public Backend {
public:
  ~CudaBackend() override {
    if (ctx_.ltHandle)
      ctx_.lt->cublasLtDestroy(ctx_.ltHandle);
    if (ctx_.stream)
      cudaStreamDestroy(ctx_.stream);
    if (hostErrorWord_)
      cudaFreeHost(hostErrorWord_);
  }

  Status init(const BackendOptions &options) {
    device_ = options.device;
    if (Status s = cudaStatus("cudaSetDevice", cudaSetDevice(device_)); !s)
      return s;
    cudaDeviceProp props;
    if (Status s = cudaStatus("cudaGetDeviceProperties",
                              cudaGetDeviceProperties(&props, device_));
        !s)
      return s;
    deviceName_ = props.name;
    ctx_.multiprocessors = std::max(1, props.multiProcessorCount);
    ctx_.maxSharedBytes = static_cast<int>(props.sharedMemPerBlockOptin);
    if (Status s = cudaStatus(
            "cudaStreamCreate",
            cudaStreamCreateWithFlags(&ctx_.stream, cudaStreamNonBlocking));
        !s)
      return s;
    if (Status s =
            cudaStatus("cudaHostAlloc (the kernels' error word)",
                       cudaHostAlloc(reinterpret_cast<void **>(&hostErrorWord_),
                                     sizeof(int), cudaHostAllocMapped));
        !s)
      return s;
    *hostErrorWord_ = kNoError;
    if (Status s = cudaStatus(
            "cudaHostGetDevicePointer",
            cudaHostGetDevicePointer(reinterpret_cast<void **>(&ctx_.errorWord),
                                     hostErrorWord_, 0));
        !s)
      return s;
    if (Status s = loadCublasLt(ctx_.lt); !s)
      return s;
    if (ctx_.lt->cublasLtCreate(&ctx_.ltHandle) != CUBLAS_STATUS_SUCCESS) {
      ctx_.ltHandle = nullptr;
      return Status::error("cuda: cublasLtCreate failed on device " +
                           std::to_string(device_) + " (" + deviceName_ + ")");
    }
    // Everything the backend itself needs is allocated: what the device
    // loses from here on is the plan's.
    size_t totalBytes = 0;
    if (Status s = cudaStatus("cudaMemGetInfo",
                              cudaMemGetInfo(&freeAtStart_, &totalBytes));
        !s)
      return s;
    return Status::ok();
  }

  const char *name() const override { return "cuda"; }
  int64_t measuredDeviceBytes() const override {
    size_t freeBytes = 0, totalBytes = 0;
    if (cudaMemGetInfo(&freeBytes, &totalBytes) != cudaSuccess)
      return -1;
    return static_cast<int64_t>(freeAtStart_) - static_cast<int64_t>(freeBytes);
  }
  bool hostAccessible() const override { return false; }

  Status copyToDevice(void *dst, const void *src, size_t bytes) override {
    return copy(dst, src, bytes, cudaMemcpyHostToDevice, true);
  }
  Status copyToHost(void *dst, const void *src, size_t bytes) override {
    return copy(dst, src, bytes, cudaMemcpyDeviceToHost, true);
  }
  Status copyOnDevice(void *dst, const void *src, size_t bytes) override {
    if (dst == src)
      return Status::ok();
    return copy(dst, src, bytes, cudaMemcpyDeviceToDevice, false);
  }

  bool supports(const std::string &op) const override {
    return findKernel(op) != nullptr;
  }
  std::vector<std::string> supportedOps() const override {
    return kernelNames();
  }
  Status launch(const std::string &op, const std::vector<TensorRef> &inputs,
                const std::vector<TensorRef> &outputs,
                const AttributeMap &attributes) override {
    KernelFn kernel = findKernel(op);
    if (!kernel)
      return Status::error("the cuda backend has no kernel for op '" + op +
                           "'");
    return kernel(ctx_, inputs, outputs, attributes);
  }
  Status synchronize() override {
    if (Status s =
            cudaStatus("cudaStreamSynchronize (a kernel launched earlier)",
                       cudaStreamSynchronize(ctx_.stream));
        !s)
      return s;
    const int error = *static_cast<volatile int *>(hostErrorWord_);
    if (error == kNoError)
      return Status::ok();
    *hostErrorWord_ = kNoError;
    return Status::error(
        "gather: an index is outside the gathered dimension (for an "
        "embedding: a token id not below the vocabulary size); check the "
        "input data");
  }

protected:
  Status allocateImpl(size_t bytes, size_t alignment, void **out) override {
    // cudaMalloc aligns to 256 bytes; the plans ask for at most that.
    if (alignment > 256)
      return Status::error("cuda: the plan asks for " +
                           std::to_string(alignment) +
                           "-byte alignment; device memory gives 256");
    cudaError_t e = cudaMalloc(out, bytes);
    if (e == cudaSuccess)
      return Status::ok();
    *out = nullptr;
    size_t freeBytes = 0, totalBytes = 0;
    cudaMemGetInfo(&freeBytes, &totalBytes);
    return Status::error(
        "out of device memory on cuda:" + std::to_string(device_) + " (" +
        deviceName_ + "): cannot allocate " + std::to_string(bytes) +
        " bytes for the arena, " + std::to_string(freeBytes) + " of " +
        std::to_string(totalBytes) +
        " bytes are free; recompile for this GPU's memory (--cluster) or "
        "free the device");
  }
  void releaseImpl(void *ptr) override { cudaFree(ptr); }

private:
  Status copy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
              bool wait) {
    if (!bytes)
      return Status::ok();
    if (Status s =
            cudaStatus("cudaMemcpyAsync",
                       cudaMemcpyAsync(dst, src, bytes, kind, ctx_.stream));
        !s)
      return s;
    return wait ? synchronize() : Status::ok();
  }

  int device_ = 0;
  std::string deviceName_;
  int *hostErrorWord_ = nullptr;
  size_t freeAtStart_ = 0;
  KernelContext ctx_;
};

} // namespace

int deviceCount(std::string *why) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    if (why)
      *why = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
    cudaGetLastError(); // not sticky: clear it
    return 0;
  }
  if (count == 0 && why)
    *why = "the CUDA runtime reports 0 devices";
  return count;
}

Status createCudaBackend(const BackendOptions &options,
                         std::unique_ptr<Backend> &out) {
  std::string why;
  const int count = deviceCount(&why);
  if (count == 0)
    return Status::error("no CUDA device was found (" + why +
                         "); run with --backend=cpu, or on a machine with an "
                         "NVIDIA GPU and its driver");
  if (options.device < 0 || options.device >= count)
    return Status::error("CUDA device " + std::to_string(options.device) +
                         " does not exist: this machine has " +
                         std::to_string(count) + " (0.." +
                         std::to_string(count - 1) +
                         "); pass --device N or set LOCAL_RANK within it");
  auto backend = std::make_unique<CudaBackend>();
  if (Status s = backend->init(options); !s)
    return s;
  out = std::move(backend);
  return Status::ok();
}

} // namespace colossal::rt::cuda
