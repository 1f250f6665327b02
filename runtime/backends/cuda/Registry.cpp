//===- Registry.cpp - Op name to CUDA kernel ------------------------------===//

#include "runtime/backends/cuda/KernelTable.h"

#include <string>
#include <string_view>

#include <algorithm>

namespace colossal::rt::cuda {

static const std::vector<KernelEntry> &table() {
  static const std::vector<KernelEntry> entries = [] {
    std::vector<KernelEntry> t;
    appendAttentionKernels(t);
    appendContractionKernels(t);
    appendConvKernels(t);
    appendElementwiseKernels(t);
    appendFusedKernels(t);
    appendDataMovementKernels(t);
    appendNormalizationKernels(t);
    appendReductionKernels(t);
    std::sort(t.begin(), t.end(),
              [](const KernelEntry &a, const KernelEntry &b) {
                return std::string_view(a.name) < std::string_view(b.name);
              });
    return t;
  }();
  return entries;
}

KernelFn findKernel(std::string_view op) {
  const auto &t = table();
  auto it = std::lower_bound(t.begin(), t.end(), op,
                             [](const KernelEntry &e, std::string_view name) {
                               return std::string_view(e.name) < name;
                             });
  if (it == t.end() || std::string_view(it->name) != op)
    return nullptr;
  return it->fn;
}

std::vector<std::string> kernelNames() {
  std::vector<std::string> names;
  for (const KernelEntry &e : table())
    names.emplace_back(e.name);
  return names;
}

} // namespace colossal::rt::cuda
