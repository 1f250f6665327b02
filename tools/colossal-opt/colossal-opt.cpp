//===- colossal-opt.cpp - Colossal's compiler driver ----------------------===//
//
// mlir-opt with Colossal's dialects and passes, which also reads ONNX
// models: `colossal-opt model.onnx --bind batch=8,seq=2048` imports the
// model and runs the requested passes on it. Every standard mlir-opt flag
// works on both kinds of input.
//
//===----------------------------------------------------------------------===//

#include "dialects/Dist/IR/DistOps.h"
#include "dialects/Graph/IR/GraphOps.h"
#include "frontends/onnx/OnnxImporter.h"
#include "passes/Passes.h"

#include "mlir/Bytecode/BytecodeWriter.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Mesh/IR/MeshDialect.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;

static llvm::cl::OptionCategory colossalCategory("Colossal options");

static llvm::cl::opt<std::string> bindOption(
    "bind",
    llvm::cl::desc("Sizes of the ONNX model's symbolic dimensions, e.g. "
                   "--bind batch=8,seq=2048"),
    llvm::cl::value_desc("name=size,..."), llvm::cl::init(""),
    llvm::cl::cat(colossalCategory));

/// Imports the ONNX model at `path` and returns it as MLIR bytecode, so that
/// the standard mlir-opt driver can take over from there.
static FailureOr<std::unique_ptr<llvm::MemoryBuffer>>
importToBuffer(StringRef path, StringRef bytes, DialectRegistry &registry) {
  colossal::onnx::ImportOptions options;
  std::string error = colossal::onnx::parseBindings(bindOption, options.bindings);
  if (!error.empty()) {
    llvm::errs() << "colossal-opt: " << error << "\n";
    return failure();
  }
  MLIRContext context(registry);
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler handler(sourceMgr, &context, llvm::errs());
  OwningOpRef<ModuleOp> module =
      colossal::onnx::importOnnxModel(context, bytes, path, options);
  if (!module)
    return failure();
  std::string data;
  llvm::raw_string_ostream os(data);
  if (failed(writeBytecodeToFile(*module, os)))
    return failure();
  os.flush();
  return llvm::MemoryBuffer::getMemBufferCopy(data, path);
}

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  registerTransformsPasses();
  colossal::registerColossalPasses();

  DialectRegistry registry;
  registry.insert<colossal::cg::CGDialect, colossal::cgd::CGDDialect,
                  func::FuncDialect, arith::ArithDialect,
                  tensor::TensorDialect, mesh::MeshDialect>();

  llvm::cl::SetVersionPrinter([](llvm::raw_ostream &os) {
    os << "colossal-opt " << COLOSSAL_VERSION << " (MLIR " << LLVM_VERSION_STRING
       << ")\n";
  });
  auto [inputFilename, outputFilename] = registerAndParseCLIOptions(
      argc, argv,
      "Colossal compiler driver: reads .mlir or .onnx, runs passes\n",
      registry);

  std::string message;
  auto input = openInputFile(inputFilename, &message);
  if (!input) {
    llvm::errs() << "colossal-opt: " << message << "\n";
    return 1;
  }
  StringRef bytes = input->getBuffer();
  if (colossal::onnx::looksLikeOnnx(inputFilename, bytes)) {
    auto imported = importToBuffer(inputFilename, bytes, registry);
    if (failed(imported))
      return 1;
    input = std::move(*imported);
  } else if (!bindOption.empty()) {
    llvm::errs() << "colossal-opt: --bind applies to ONNX input only\n";
    return 1;
  }

  auto output = openOutputFile(outputFilename, &message);
  if (!output) {
    llvm::errs() << "colossal-opt: " << message << "\n";
    return 1;
  }
  MlirOptMainConfig config = MlirOptMainConfig::createFromCLOptions();
  if (failed(MlirOptMain(output->os(), std::move(input), registry, config)))
    return 1;
  output->keep();
  return 0;
}
