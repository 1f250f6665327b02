//===- CudaKernels.h - The CUDA backend's kernels ---------------*- C++ -*-===//
//
// One kernel per graph-dialect op, over contiguous row-major tensors in
// device memory, launched asynchronously on the context's stream. They take
// the same operands, attributes and dtypes as the CPU kernels
// (runtime/backends/cpu) and compute the same values; fp16/bf16 are
// computed in fp32 and rounded once. Host-side shape checks are the CPU
// kernels' own helpers, so both backends refuse the same inputs.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_BACKENDS_CUDA_CUDAKERNELS_H
#define COLOSSAL_RUNTIME_BACKENDS_CUDA_CUDAKERNELS_H

#include "runtime/backends/cuda/CudaLibraries.h"
#include "runtime/core/Types.h"

#include <cuda_runtime_api.h>

#include <string>
#include <string_view>
#include <vector>

namespace colossal::rt::cuda {

/// What a launch needs beyond its tensors.
struct KernelContext {
  cudaStream_t stream = nullptr;
  /// Streaming multiprocessors of the device, for grid sizes.
  int multiprocessors = 1;
  /// Shared memory one block may use once it opts in.
  int maxSharedBytes = 48 * 1024;
  const CublasLt *lt = nullptr;
  cublasLtHandle_t ltHandle = nullptr;
  /// A device-visible word in pinned host memory that kernels set to a
  /// KernelError when their data is invalid (an index out of range);
  /// synchronize() reports and clears it.
  int *errorWord = nullptr;
};

/// What a kernel found wrong in its data, in the error word.
enum KernelError : int { kNoError = 0, kIndexOutOfRange = 1 };

using KernelFn = Status (*)(const KernelContext &ctx,
                            const std::vector<TensorRef> &inputs,
                            const std::vector<TensorRef> &outputs,
                            const AttributeMap &attributes);

/// The kernel for graph op `op`; null if none.
KernelFn findKernel(std::string_view op);

/// Names of all ops the CUDA backend implements, sorted.
std::vector<std::string> kernelNames();

} // namespace colossal::rt::cuda

#endif // COLOSSAL_RUNTIME_BACKENDS_CUDA_CUDAKERNELS_H
