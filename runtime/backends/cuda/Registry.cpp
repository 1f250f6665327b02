//===- Registry.cpp - Op name to CUDA kernel ------------------------------===//

#include "runtime/backends/cuda/KernelTable.h"
#include "runtime/core/SortedKernelTable.h"

namespace colossal::rt::cuda {

static const SortedKernelTable<KernelEntry> &table() {
  static const SortedKernelTable<KernelEntry> entries = [] {
    std::vector<KernelEntry> t;
    appendAttentionKernels(t);
    appendContractionKernels(t);
    appendConvKernels(t);
    appendElementwiseKernels(t);
    appendFusedKernels(t);
    appendDataMovementKernels(t);
    appendNormalizationKernels(t);
    appendReductionKernels(t);
    return SortedKernelTable<KernelEntry>(std::move(t));
  }();
  return entries;
}

KernelFn findKernel(std::string_view op) { return table().find(op); }

std::vector<std::string> kernelNames() { return table().names(); }

} // namespace colossal::rt::cuda
