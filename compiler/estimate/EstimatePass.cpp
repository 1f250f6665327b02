//===- EstimatePass.cpp - colossal-estimate: a plan's predicted step ------===//
//
// The pass form of estimateModule (Estimate.h): the options make the
// request, the report goes where `report` says, and the prediction is
// recorded on the module.
//
//===----------------------------------------------------------------------===//

#include "compiler/estimate/Estimate.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/ToolOutputFile.h"

namespace mlir::colossal {
#define GEN_PASS_DEF_ESTIMATEPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;

namespace {

struct EstimatePass : mlir::colossal::impl::EstimatePassBase<EstimatePass> {
  using EstimatePassBase::EstimatePassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    EstimateRequest job;
    job.cluster = cluster;
    job.batch = batch;
    job.parallel = parallel;
    job.dtype = dtype;
    job.flashAttention = flashAttention;
    job.dropout = dropout;
    job.includeWorkload = workload;
    auto program = module->getAttrOfType<DictionaryAttr>("cg.program_memory");
    llvm::Expected<llvm::json::Object> result =
        estimateModule(module, job, program);
    if (!result) {
      module.emitError(llvm::toString(result.takeError()));
      return signalPassFailure();
    }
    OpBuilder b(module.getContext());
    if (auto t = result->getNumber("step_time_s"))
      module->setAttr("cg.predicted_step_time_s", b.getF64FloatAttr(*t));
    if (auto m = result->getNumber("peak_memory_bytes"))
      module->setAttr("cg.predicted_peak_memory_bytes",
                      b.getI64IntegerAttr(static_cast<int64_t>(*m)));
    if (report.empty())
      return;
    std::string message;
    auto out = openOutputFile(report, &message);
    if (!out) {
      module.emitError("cannot write the estimate's report '")
          << report << "': " << message;
      return signalPassFailure();
    }
    out->os() << llvm::formatv("{0:2}", llvm::json::Value(std::move(*result)))
              << "\n";
    out->keep();
  }
};

} // namespace
