//===- KernelTable.h - How the CUDA kernel families register ----*- C++ -*-===//
//
// Each family (one .cu file) appends its kernels; Registry.cpp sorts them
// into the table findKernel searches. Internal to runtime/backends/cuda.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_BACKENDS_CUDA_KERNELTABLE_H
#define COLOSSAL_RUNTIME_BACKENDS_CUDA_KERNELTABLE_H

#include "runtime/backends/cuda/CudaKernels.h"

#include <vector>

namespace colossal::rt::cuda {

struct KernelEntry {
  const char *name;
  KernelFn fn;
};

void appendElementwiseKernels(std::vector<KernelEntry> &table);
void appendFusedKernels(std::vector<KernelEntry> &table);
void appendNormalizationKernels(std::vector<KernelEntry> &table);
void appendConvKernels(std::vector<KernelEntry> &table);
void appendContractionKernels(std::vector<KernelEntry> &table);
void appendReductionKernels(std::vector<KernelEntry> &table);
void appendDataMovementKernels(std::vector<KernelEntry> &table);
void appendAttentionKernels(std::vector<KernelEntry> &table);

} // namespace colossal::rt::cuda

#endif // COLOSSAL_RUNTIME_BACKENDS_CUDA_KERNELTABLE_H
