//===- AutoParallelPass.cpp - colossal-auto-parallel: search and annotate -===//
//
// The pass form of autoParallelModule (Estimate.h): the options make the
// request; the search, the integer program and the annotations are the
// function's.
//
//===----------------------------------------------------------------------===//

#include "compiler/estimate/Estimate.h"
#include "passes/Passes.h"

namespace mlir::colossal {
#define GEN_PASS_DEF_AUTOPARALLELPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;

namespace {

struct AutoParallelPass
    : mlir::colossal::impl::AutoParallelPassBase<AutoParallelPass> {
  using AutoParallelPassBase::AutoParallelPassBase;

  void runOnOperation() override {
    AutoParallelRequest request;
    request.job.cluster = cluster;
    request.job.batch = batch;
    request.job.dtype = dtype;
    request.job.flashAttention = flashAttention;
    request.job.dropout = dropout;
    request.memoryBudget = memoryBudget;
    request.constraints = constrain;
    request.reportPath = report;
    request.reportText = reportText;
    request.executable = executable;
    if (llvm::Error error = autoParallelModule(getOperation(), request)) {
      getOperation().emitError(llvm::toString(std::move(error)));
      signalPassFailure();
    }
  }
};

} // namespace
