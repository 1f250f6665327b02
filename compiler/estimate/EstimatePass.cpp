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
    std::string json;
    llvm::raw_string_ostream os(json);
    if (llvm::Error error = estimateModule(module, job, os, program)) {
      module.emitError(llvm::toString(std::move(error)));
      return signalPassFailure();
    }
    llvm::Expected<llvm::json::Value> parsed = llvm::json::parse(json);
    if (!parsed) {
      module.emitError("the estimate's report is not JSON: ")
          << llvm::toString(parsed.takeError());
      return signalPassFailure();
    }
    const llvm::json::Object *o = parsed->getAsObject();
    OpBuilder b(module.getContext());
    if (auto t = o->getNumber("step_time_s"))
      module->setAttr("cg.predicted_step_time_s", b.getF64FloatAttr(*t));
    if (auto m = o->getNumber("peak_memory_bytes"))
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
    out->os() << json;
    out->keep();
  }
};

} // namespace
