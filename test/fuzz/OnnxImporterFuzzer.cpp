//===- OnnxImporterFuzzer.cpp - libFuzzer target for the ONNX importer ----===//
//
// Feeds arbitrary bytes to the importer, which must answer every input with
// a module or a diagnostic: never a crash, hang or sanitizer report.
// Built by scripts/fuzz.sh with clang and -fsanitize=fuzzer.
//
//===----------------------------------------------------------------------===//

#include "dialects/Graph/IR/GraphOps.h"
#include "frontends/onnx/OnnxImporter.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mlir::DialectRegistry registry;
  registry.insert<mlir::colossal::cg::CGDialect, mlir::func::FuncDialect>();
  mlir::MLIRContext context(registry, mlir::MLIRContext::Threading::DISABLED);
  // Diagnostics are the expected outcome for most inputs; keep them quiet.
  mlir::ScopedDiagnosticHandler quiet(
      &context, [](mlir::Diagnostic &) { return mlir::success(); });
  mlir::colossal::onnx::ImportOptions options;
  options.bindings["batch"] = 2;
  options.bindings["seq"] = 4;
  llvm::StringRef bytes(reinterpret_cast<const char *>(data), size);
  (void)mlir::colossal::onnx::importOnnxModel(context, bytes, "fuzz.onnx",
                                              options);
  return 0;
}
