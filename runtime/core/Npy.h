//===- Npy.h - Reading and writing NumPy .npy files -------------*- C++ -*-===//
//
// colossal-run's tensor file format (and handy in tests): format versions
// 1.0-3.0, little-endian, C order, with the element types the runtime has
// (<f4 <f2 <i8 <i4 |b1). Other NumPy types are recognized and refused with
// the conversion to make; bfloat16 has no NumPy type, so it is not read or
// written here.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_CORE_NPY_H
#define COLOSSAL_RUNTIME_CORE_NPY_H

#include "runtime/core/HostTensor.h"

#include <string>
#include <vector>

namespace colossal::rt {

/// Parses .npy bytes; `source` names them in messages. `out.name` is left
/// unchanged.
Status parseNpy(const std::string &bytes, const std::string &source,
                HostTensor &out);

/// Reads the .npy file at `path`.
Status readNpy(const std::string &path, HostTensor &out);

/// The .npy bytes (format 1.0, or 2.0 for very long headers) of a tensor.
/// Fails for bfloat16.
Status encodeNpy(DType dtype, const std::vector<int64_t> &shape,
                 const void *data, size_t bytes, std::string &out);

/// Writes a tensor to `path` as .npy.
Status writeNpy(const std::string &path, DType dtype,
                const std::vector<int64_t> &shape, const void *data,
                size_t bytes);

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_CORE_NPY_H
