//===- Registry.cpp - Op name to CPU kernel -------------------------------===//
//
// Collects every family's kernels once into a sorted table.
//
//===----------------------------------------------------------------------===//

#include "runtime/backends/cpu/KernelUtil.h"
#include "runtime/core/SortedKernelTable.h"

namespace colossal::rt::cpu {

static const SortedKernelTable<KernelEntry> &table() {
  static const SortedKernelTable<KernelEntry> entries = [] {
    std::vector<KernelEntry> t;
    appendElementwiseBinaryKernels(t);
    appendElementwiseUnaryKernels(t);
    appendFusedElementwiseKernels(t);
    appendNormalizationKernels(t);
    appendContractionKernels(t);
    appendAttentionKernels(t);
    appendConvKernels(t);
    appendConvBackwardKernels(t);
    appendReductionKernels(t);
    appendDataMovementKernels(t);
    return SortedKernelTable<KernelEntry>(std::move(t));
  }();
  return entries;
}

KernelFn findKernel(std::string_view op) { return table().find(op); }

std::vector<std::string> kernelNames() { return table().names(); }

} // namespace colossal::rt::cpu
