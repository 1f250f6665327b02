//===- OnnxTensor.h - Tensors from ONNX files -------------------*- C++ -*-===//
//
// Reads ONNX TensorProto data into runtime tensors: single tensors in .pb
// files (ONNX test data, accepted by colossal-run) and initializers inside a
// model file (plan parameters that point into the original model). Raw,
// typed-field and external data are all understood. ONNX types stay out of
// this header, so users need no ONNX definitions.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_CORE_ONNXTENSOR_H
#define COLOSSAL_RUNTIME_CORE_ONNXTENSOR_H

#include "runtime/core/HostTensor.h"

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace colossal::rt {

/// Which element type the caller wants for the tensor named `name` (the
/// tensor's own name); false if it has no preference.
using WantedDType = std::function<bool(const std::string &name, DType &want)>;

/// Reads a serialized onnx.TensorProto (`name` is the tensor's own name).
/// When `wanted` names a type that differs from the file's, integers of any
/// width and signedness are converted to an integer type if every value fits,
/// and UINT16 data are taken as float16/bfloat16 bit patterns (ONNX test data
/// store bfloat16 that way); otherwise the file's type is kept.
Status readOnnxTensorFile(const std::string &path, HostTensor &out,
                          const WantedDType &wanted = {});

/// Parsed ONNX models, kept so that many initializers of one model parse it
/// once.
class OnnxModelCache {
public:
  OnnxModelCache();
  ~OnnxModelCache();

  /// Initializer `name` of the model at `modelPath`. On failure `why` says
  /// what is wrong (missing file, parse error, no such initializer) without
  /// saying what to do; the caller knows that.
  bool initializer(const std::string &modelPath, const std::string &name,
                   HostTensor &out, std::string &why);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Writes a copy of the ONNX model at `sourceModel` to `outPath` with the
/// initializers named in `weights` replaced by those values (same shape and
/// type as before). Every initializer of the copy holds its bytes itself, or,
/// when they total more than `externalAbove` bytes, in `outPath`.data next to
/// it (ONNX external data), so the copy does not depend on the source's
/// files. Training-mode BatchNormalization and Dropout nodes become their
/// inference forms. The file appears atomically. `replaced` counts the
/// initializers replaced; a weight that names no initializer is an error.
/// `derived` names initializers that are functions of weights
/// ("transpose:<weight>": a 2-D transpose), rewritten from them too.
Status exportOnnxModel(const std::string &sourceModel,
                       const std::map<std::string, const HostTensor *> &weights,
                       const std::string &outPath, int64_t &replaced,
                       int64_t externalAbove = int64_t(1) << 30,
                       const std::map<std::string, std::string> &derived = {});

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_CORE_ONNXTENSOR_H
