//===- PrintTpStrategies.cpp - Show what each op can do over tp -----------===//
//
// The auto-parallel search picks among the strategies ops declare through
// TensorParallelOpInterface; printing them explains a plan's choices and
// tests each op's declaration.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::colossal {
#define GEN_PASS_DEF_PRINTTPSTRATEGIESPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

void printLayout(llvm::raw_ostream &os, const TensorLayout &l) {
  if (l.partial)
    os << "partial";
  else if (l.dim < 0)
    os << "-";
  else
    os << "d" << l.dim;
}

struct PrintTpStrategiesPass
    : mlir::colossal::impl::PrintTpStrategiesPassBase<PrintTpStrategiesPass> {
  using PrintTpStrategiesPassBase::PrintTpStrategiesPassBase;

  void runOnOperation() override {
    if (tp < 1) {
      getOperation().emitError("tp must be at least 1, got ")
          << static_cast<int64_t>(tp);
      return signalPassFailure();
    }
    llvm::raw_ostream &os = llvm::outs();
    int64_t index = 0;
    getOperation().walk([&](TensorParallelOpInterface op) {
      SmallVector<TpStrategy> strategies;
      op.getTensorParallelStrategies(tp, strategies);
      os << op->getName() << " #" << index++ << ":";
      for (const TpStrategy &s : strategies) {
        os << " " << s.name << "(";
        llvm::interleave(
            s.operands, os, [&](const TensorLayout &l) { printLayout(os, l); },
            ",");
        os << " -> ";
        printLayout(os, s.result);
        os << ")";
      }
      os << "\n";
    });
    markAllAnalysesPreserved();
  }
};

} // namespace
