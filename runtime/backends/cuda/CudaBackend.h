//===- CudaBackend.h - The CUDA backend -------------------------*- C++ -*-===//
//
// One GPU as the executor sees it: the plan's arena is one cudaMalloc,
// kernels from this directory run on the backend's compute stream, GEMMs
// through cuBLASLt. Registered as "cuda" when the build has it.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_BACKENDS_CUDA_CUDABACKEND_H
#define COLOSSAL_RUNTIME_BACKENDS_CUDA_CUDABACKEND_H

#include "runtime/core/Backend.h"

#include <memory>
#include <string>

namespace colossal::rt::cuda {

/// CUDA devices this process can use; 0 without a GPU or driver (`why`
/// then says what the CUDA runtime reported).
int deviceCount(std::string *why = nullptr);

/// The backend on device `options.device`; an error naming what is missing
/// (no device, no driver, no cuBLASLt) and what to do otherwise.
Status createCudaBackend(const BackendOptions &options,
                         std::unique_ptr<Backend> &out);

} // namespace colossal::rt::cuda

#endif // COLOSSAL_RUNTIME_BACKENDS_CUDA_CUDABACKEND_H
