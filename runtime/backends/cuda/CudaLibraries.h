//===- CudaLibraries.h - cuBLASLt and NCCL, loaded at run time --*- C++ -*-===//
//
// The CUDA libraries the backend calls, as one table of entry points
// filled by dlopen/dlsym on first use (the way IREE's CUDA driver keeps its
// dynamic_symbols.h), so a colossal-run built with CUDA starts and runs its
// CPU backend on machines without the libraries, a driver or a GPU. The
// CUDA runtime itself is linked statically (cudart_static), which loads the
// driver only when asked and reports its absence as an error.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_BACKENDS_CUDA_CUDALIBRARIES_H
#define COLOSSAL_RUNTIME_BACKENDS_CUDA_CUDALIBRARIES_H

#include "runtime/core/Types.h"

#include <cublasLt.h>
#include <nccl.h>

namespace colossal::rt::cuda {

#define COLOSSAL_CUBLASLT_SYMBOLS(X)                                           \
  X(cublasLtCreate)                                                            \
  X(cublasLtDestroy)                                                           \
  X(cublasLtGetStatusString)                                                   \
  X(cublasLtMatmul)                                                            \
  X(cublasLtMatmulAlgoGetHeuristic)                                            \
  X(cublasLtMatmulDescCreate)                                                  \
  X(cublasLtMatmulDescDestroy)                                                 \
  X(cublasLtMatmulDescSetAttribute)                                            \
  X(cublasLtMatmulPreferenceCreate)                                            \
  X(cublasLtMatmulPreferenceDestroy)                                           \
  X(cublasLtMatmulPreferenceSetAttribute)                                      \
  X(cublasLtMatrixLayoutCreate)                                                \
  X(cublasLtMatrixLayoutDestroy)                                               \
  X(cublasLtMatrixLayoutSetAttribute)

#define COLOSSAL_NCCL_SYMBOLS(X)                                               \
  X(ncclGetVersion)                                                            \
  X(ncclGetUniqueId)                                                           \
  X(ncclCommInitRank)                                                          \
  X(ncclCommDestroy)                                                           \
  X(ncclCommAbort)                                                             \
  X(ncclCommGetAsyncError)                                                     \
  X(ncclGetErrorString)                                                        \
  X(ncclAllReduce)                                                             \
  X(ncclAllGather)                                                             \
  X(ncclReduceScatter)                                                         \
  X(ncclSend)                                                                  \
  X(ncclRecv)                                                                  \
  X(ncclGroupStart)                                                            \
  X(ncclGroupEnd)

/// cuBLASLt's entry points; every pointer is set once load() succeeds.
struct CublasLt {
#define COLOSSAL_DECLARE(name) decltype(&::name) name = nullptr;
  COLOSSAL_CUBLASLT_SYMBOLS(COLOSSAL_DECLARE)
#undef COLOSSAL_DECLARE
};

/// NCCL's entry points.
struct Nccl {
#define COLOSSAL_DECLARE(name) decltype(&::name) name = nullptr;
  COLOSSAL_NCCL_SYMBOLS(COLOSSAL_DECLARE)
#undef COLOSSAL_DECLARE
};

/// Loads cuBLASLt (libcublasLt.so.13, else libcublasLt.so) once per
/// process; the error names the library, what dlopen said and what to
/// install. Thread-safe.
Status loadCublasLt(const CublasLt *&out);

/// Loads NCCL (libnccl.so.2, else libnccl.so) once per process.
Status loadNccl(const Nccl *&out);

} // namespace colossal::rt::cuda

#endif // COLOSSAL_RUNTIME_BACKENDS_CUDA_CUDALIBRARIES_H
