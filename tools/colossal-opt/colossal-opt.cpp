//===- colossal-opt.cpp - Colossal's compiler driver ----------------------===//
//
// mlir-opt with Colossal's dialects and passes, which also reads ONNX
// models: `colossal-opt model.onnx --bind batch=8,seq=2048` imports the
// model and runs the requested passes on it. Every standard mlir-opt flag
// works on both kinds of input.
//
//===----------------------------------------------------------------------===//

#include "compiler/estimate/Estimate.h"
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
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
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

// Estimating a manual plan (issue 5): colossal-opt M.onnx --mode=train
// --cluster=SPEC --batch=B --parallel="dp=..,tp=.." --estimate
static llvm::cl::opt<bool> estimateOption(
    "estimate",
    llvm::cl::desc("Print the cost model's estimate of --parallel (JSON) "
                   "instead of the IR"),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> modeOption(
    "mode", llvm::cl::desc("Job kind: train or infer"),
    llvm::cl::value_desc("train|infer"), llvm::cl::init("train"),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> clusterOption(
    "cluster",
    llvm::cl::desc("Cluster spec: a preset (dgx-a100-80g, dgx-h100-80g, h200, "
                   "cpu) with overrides, e.g. dgx-a100-80g:nodes=4, or a JSON "
                   "file"),
    llvm::cl::value_desc("spec"), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<int64_t> batchOption(
    "batch", llvm::cl::desc("Global batch: samples (sequences) per step"),
    llvm::cl::init(0), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> parallelOption(
    "parallel",
    llvm::cl::desc("Manual plan: dp=..,tp=..,tp-mode=1d|2d|2.5d:D|3d,tp-sp=0|1,"
                   "pp=..,sp=..,micro-batch=..,schedule=1f1b|gpipe|"
                   "interleaved:V,recompute=none|selective|full,zero=0..3,"
                   "offload=none|optimizer|params"),
    llvm::cl::value_desc("key=value,..."), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> dtypeOption(
    "dtype", llvm::cl::desc("Compute dtype for estimates: bf16, fp16, tf32, fp32"),
    llvm::cl::init("bf16"), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<bool> flashOption(
    "flash-attention",
    llvm::cl::desc("Estimate with attention kernels that do not store scores"),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<bool> dropoutOption(
    "dropout",
    llvm::cl::desc("Estimate a training that applies dropout (attention, "
                   "hidden, embeddings), as Megatron-LM's GPT does"),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<bool> workloadOption(
    "estimate-workload",
    llvm::cl::desc("With --estimate: include the per-layer workload"),
    llvm::cl::cat(colossalCategory));

/// --estimate: imports or parses the input, fuses attention, and prints the
/// cost model's JSON for the requested plan.
static int runEstimate(StringRef path, std::unique_ptr<llvm::MemoryBuffer> input,
                       bool onnx, DialectRegistry &registry,
                       llvm::raw_ostream &os) {
  MLIRContext context(registry);
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler handler(sourceMgr, &context, llvm::errs());
  OwningOpRef<ModuleOp> module;
  if (onnx) {
    colossal::onnx::ImportOptions options;
    std::string error =
        colossal::onnx::parseBindings(bindOption, options.bindings);
    if (!error.empty()) {
      llvm::errs() << "colossal-opt: " << error << "\n";
      return 1;
    }
    // Costs are per sample: an unbound batch dimension imports as 1.
    options.bindings.try_emplace("batch", 1);
    module = colossal::onnx::importOnnxModel(context, input->getBuffer(), path,
                                             options);
  } else {
    sourceMgr.AddNewSourceBuffer(std::move(input), llvm::SMLoc());
    module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  }
  if (!module)
    return 1;
  PassManager pm(&context);
  pm.addPass(colossal::createFuseAttentionPass());
  pm.addPass(createCanonicalizerPass());
  if (failed(pm.run(*module)))
    return 1;
  colossal::EstimateRequest request;
  request.mode = modeOption;
  request.cluster = clusterOption;
  request.batch = batchOption;
  request.parallel = parallelOption;
  request.dtype = dtypeOption;
  request.flashAttention = flashOption;
  request.dropout = dropoutOption;
  request.includeWorkload = workloadOption;
  if (llvm::Error error = colossal::estimateModule(*module, request, os)) {
    llvm::errs() << "colossal-opt: error: " << llvm::toString(std::move(error))
                 << "\n";
    return 1;
  }
  return 0;
}

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
  bool onnx = colossal::onnx::looksLikeOnnx(inputFilename, bytes);
  if (estimateOption) {
    auto output = openOutputFile(outputFilename, &message);
    if (!output) {
      llvm::errs() << "colossal-opt: " << message << "\n";
      return 1;
    }
    int rc = runEstimate(inputFilename, std::move(input), onnx, registry,
                         output->os());
    if (rc == 0)
      output->keep();
    return rc;
  }
  if (onnx) {
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
