//===- HostTensor.h - A tensor that owns its host bytes ---------*- C++ -*-===//
//
// What readers of tensor files (.npy, ONNX TensorProto) and the weight loader
// produce: a name, an element type, a shape and the row-major little-endian
// bytes, owned.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_CORE_HOSTTENSOR_H
#define COLOSSAL_RUNTIME_CORE_HOSTTENSOR_H

#include "runtime/core/Types.h"

#include <string>
#include <vector>

namespace colossal::rt {

struct HostTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::string data;

  /// A view for APIs that take TensorRef (data stays owned here).
  TensorRef ref() {
    return TensorRef{data.empty() ? nullptr : &data[0], dtype, shape};
  }
};

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_CORE_HOSTTENSOR_H
