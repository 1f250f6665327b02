//===- CpuKernels.h - The CPU backend's kernels -----------------*- C++ -*-===//
//
// One kernel per graph-dialect op, over contiguous row-major tensors. Input
// and output shapes and dtypes are those the compiler planned (the verifier
// guarantees they are consistent); kernels still check what they rely on and
// return an error rather than read out of bounds. GEMMs go to OpenBLAS; the
// rest is multithreaded with OpenMP where the work is large enough.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_BACKENDS_CPU_CPUKERNELS_H
#define COLOSSAL_RUNTIME_BACKENDS_CPU_CPUKERNELS_H

#include "runtime/core/Types.h"

#include <string>
#include <string_view>
#include <vector>

namespace colossal::rt::cpu {

using KernelFn = Status (*)(const std::vector<TensorRef> &inputs,
                            const std::vector<TensorRef> &outputs,
                            const AttributeMap &attributes);

/// The kernel for graph op `op` ("add", "matmul", ...); null if none.
KernelFn findKernel(std::string_view op);

/// Names of all ops the CPU backend implements.
std::vector<std::string> kernelNames();

} // namespace colossal::rt::cpu

#endif // COLOSSAL_RUNTIME_BACKENDS_CPU_CPUKERNELS_H
