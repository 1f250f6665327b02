//===- OnnxImporter.h - ONNX models to the cg dialect -----------*- C++ -*-===//
//
// Imports an ONNX ModelProto (opsets 13-21) into a module holding one
// `func.func @main` in the graph dialect. Initializers become `cg.param`s
// that reference their bytes (external data or the ONNX file) instead of
// copying them; symbolic dimensions are bound by name; shape arithmetic that
// exporters emit is folded, so every shape in the result is static.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_FRONTENDS_ONNX_ONNXIMPORTER_H
#define COLOSSAL_FRONTENDS_ONNX_ONNXIMPORTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>

namespace mlir::colossal::onnx {

struct ImportOptions {
  /// Sizes for symbolic dimensions (`dim_param`), by name.
  llvm::StringMap<int64_t> bindings;
  /// Name of the function the graph becomes.
  std::string functionName = "main";
  /// Accept BatchNormalization with training_mode=1 (torch's TRAINING
  /// export) as a batch norm, for a training step that normalizes with
  /// batch statistics anyway (colossal-batch-norm-training).
  bool batchNormTrainingMode = false;
  /// Import Dropout in training mode as cg.dropout (a training step lowers
  /// it to random masks) instead of refusing it.
  bool dropoutTrainingMode = false;
  /// Import one-element float initializers named like model parameters
  /// (not "onnx::...", "/...", "const....": exporter-made constants) as
  /// parameters, so a training step trains them (a Linear(n, 1)'s bias, a
  /// learnable scale). Otherwise every scalar is a constant.
  bool scalarParameters = false;
  /// Identity nodes on weights (how torch's exporter shares initializers of
  /// equal value between distinct parameters) make a parameter of their
  /// own, named after their output, so training keeps them apart.
  bool untieIdentityWeights = false;
  /// The model is imported for a training step: float64 weights are then
  /// refused (the optimizers and gradient kernels run in float32/16).
  bool forTraining = false;
  /// Graph inputs that are constants at compile time ("NAME=FILE.npy" or
  /// "NAME=v1,v2,..."), as onnxsim's input overwriting makes them: a
  /// Reshape's shape, a Slice's starts, ReduceSum's axes that arrive as
  /// inputs. Each becomes a Constant of the input's type and leaves the
  /// graph's inputs.
  std::vector<std::string> constInputs;
};

/// Parses "batch=8,seq=2048" into `bindings`; returns an error message on
/// malformed input, or an empty string.
std::string parseBindings(llvm::StringRef text,
                          llvm::StringMap<int64_t> &bindings);

/// Imports the ONNX model in `bytes` (read from `path`, which locates
/// external data and names the model in messages). Errors are emitted as
/// diagnostics on `context`; returns null on failure.
OwningOpRef<ModuleOp> importOnnxModel(MLIRContext &context,
                                      llvm::StringRef bytes,
                                      llvm::StringRef path,
                                      const ImportOptions &options);

/// Reads `path` and imports it.
OwningOpRef<ModuleOp> importOnnxFile(MLIRContext &context, llvm::StringRef path,
                                     const ImportOptions &options);

/// True when `bytes` look like a serialized ONNX model rather than MLIR
/// text or bytecode (used to pick the input format).
bool looksLikeOnnx(llvm::StringRef path, llvm::StringRef bytes);

} // namespace mlir::colossal::onnx

#endif // COLOSSAL_FRONTENDS_ONNX_ONNXIMPORTER_H
