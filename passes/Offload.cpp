//===- Offload.cpp - Optimizer state in the host pool ---------------------===//
//
// Steps, per program (one per pipeline stage): (1) the optimizer state
// tensors (parameters with cg.role = "optimizer" of more than one element:
// Adam's moments, momentum, accumulated gradients) are marked `cg.host`,
// so the memory plan puts them in the rank's host pool instead of its
// device arena; (2) each is copied to the device right before its first
// reader (the update of its weight), and its readers read the copy; (3) its
// assignment writes the new value back to the host pool (the plan's copy to
// host). The device then holds one weight's state at a time.
//
//===----------------------------------------------------------------------===//

#include "passes/GraphBuild.h"
#include "passes/Passes.h"

#include "dialects/Dist/IR/DistOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::colossal {
#define GEN_PASS_DEF_OFFLOADPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

struct OffloadPass : mlir::colossal::impl::OffloadPassBase<OffloadPass> {
  using OffloadPassBase::OffloadPassBase;

  void runOnOperation() override {
    if (what == "none")
      return;
    if (what != "optimizer" && what != "params") {
      getOperation().emitError("colossal-offload: what='")
          << what
          << "' is not executed yet; offload=optimizer keeps the optimizer "
             "state in host memory, offload=params the weights too "
             "(activations: not yet)";
      return signalPassFailure();
    }
    int64_t moved = 0;
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (!func.isExternal())
        moved += offload(func);
    if (moved == 0) {
      getOperation().emitError(
          "colossal-offload: offload=" + what +
          ", but the program has no optimizer state to move (compile a "
          "training step with --optimizer)");
      return signalPassFailure();
    }
  }

  int64_t offload(func::FuncOp func) {
    int64_t moved = 0;
    for (ParamOp param : llvm::to_vector(func.getOps<ParamOp>())) {
      auto role = param->getAttrOfType<StringAttr>("cg.role");
      bool state = role && role.getValue() == "optimizer";
      if (typeOf(param.getResult()).getNumElements() <= 1 ||
          !isa<FloatType>(typeOf(param.getResult()).getElementType()))
        continue;
      if (!state && what == "params") {
        // A weight: copied to the device before each use (forward and
        // backward apart), so the device holds it only while an op reads
        // it, as ZeRO-Infinity does.
        SmallVector<OpOperand *> uses;
        for (OpOperand &use : param.getResult().getUses())
          if (!(isa<AssignOp>(use.getOwner()) && use.getOperandNumber() == 1))
            uses.push_back(&use);
        if (uses.empty())
          continue;
        param->setAttr("cg.host", UnitAttr::get(&getContext()));
        for (OpOperand *use : uses) {
          OpBuilder b(use->getOwner());
          Value copy = b.create<cgd::CopyToDeviceOp>(param.getLoc(),
                                                     param.getType(), param);
          use->set(copy);
        }
        continue;
      }
      if (!state)
        continue;
      // Readers other than the write-back, in program order.
      Operation *first = nullptr;
      for (Operation *user : param.getResult().getUsers()) {
        if (auto assign = dyn_cast<AssignOp>(user);
            assign && assign.getParam() == param.getResult())
          continue;
        if (!first || user->isBeforeInBlock(first))
          first = user;
      }
      param->setAttr("cg.host", UnitAttr::get(&getContext()));
      ++moved;
      if (!first)
        continue;
      OpBuilder b(first);
      Value copy =
          b.create<cgd::CopyToDeviceOp>(param.getLoc(), param.getType(), param);
      param.getResult().replaceUsesWithIf(copy, [&](OpOperand &use) {
        auto assign = dyn_cast<AssignOp>(use.getOwner());
        return use.getOwner() != copy.getDefiningOp() &&
               !(assign && use.getOperandNumber() == 1);
      });
    }
    return moved;
  }
};

} // namespace
