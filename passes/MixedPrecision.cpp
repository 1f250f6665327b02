//===- MixedPrecision.cpp - Compute in 16 bits, keep fp32 master weights --===//
//
// Storage stays float32: parameters (the master weights the optimizer
// updates), optimizer state and the model's inputs and outputs. Compute moves
// to bfloat16 or float16: each float32 parameter and input is cast once where
// it enters, every op that produced float32 now produces the compute type,
// float constants are rounded to it, and float results are cast back to
// float32 before they leave (so the loss is taken in float32). Autodiff then
// differentiates through the casts, which hands float32 gradients to the
// master weights.
//
//===----------------------------------------------------------------------===//

#include "passes/GraphBuild.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::colossal {
#define GEN_PASS_DEF_MIXEDPRECISIONPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

/// `type` with element type `to` when it was float32.
Type retyped(Type type, Type to) {
  auto t = dyn_cast<RankedTensorType>(type);
  if (!t || !t.getElementType().isF32())
    return type;
  return RankedTensorType::get(t.getShape(), to);
}

struct MixedPrecisionPass
    : mlir::colossal::impl::MixedPrecisionPassBase<MixedPrecisionPass> {
  using MixedPrecisionPassBase::MixedPrecisionPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (compute == "fp32")
      return;
    if (compute != "bf16" && compute != "fp16") {
      module.emitError("unknown precision '")
          << compute << "'; use fp32, bf16 or fp16";
      return signalPassFailure();
    }
    Builder b(module.getContext());
    Type to = compute == "bf16" ? Type(b.getBF16Type()) : Type(b.getF16Type());
    for (auto func : module.getOps<func::FuncOp>())
      if (!func.isExternal() && failed(convert(func, to)))
        return signalPassFailure();
  }

  LogicalResult convert(func::FuncOp func, Type to) {
    Block &body = func.getBody().front();
    OpBuilder b(func.getContext());
    SmallPtrSet<Operation *, 32> entryCasts;

    // State updates (running statistics written back with cg.assign) stay
    // float32, as storage does: the ops that feed only an assignment.
    SmallPtrSet<Operation *, 32> state;
    SmallVector<Operation *> work;
    for (auto assign : body.getOps<AssignOp>())
      if (Operation *def = assign.getValue().getDefiningOp())
        work.push_back(def);
    while (!work.empty()) {
      Operation *op = work.pop_back_val();
      if (state.contains(op) || isa<ParamOp>(op) ||
          llvm::any_of(op->getUsers(), [&](Operation *user) {
            return !isa<AssignOp>(user) && !state.contains(user);
          }))
        continue;
      state.insert(op);
      for (Value operand : op->getOperands())
        if (Operation *def = operand.getDefiningOp())
          work.push_back(def);
    }

    // Float32 values entering: parameters and arguments, cast once.
    auto castIn = [&](Value v) {
      if (retyped(v.getType(), to) == v.getType() || v.use_empty())
        return;
      auto cast = b.create<CastOp>(v.getLoc(), retyped(v.getType(), to), v);
      // An assignment keeps writing the float32 parameter itself.
      v.replaceUsesWithIf(cast.getResult(), [&](OpOperand &use) {
        auto assign = dyn_cast<AssignOp>(use.getOwner());
        return use.getOwner() != cast &&
               !(assign && use.getOperandNumber() == 1) &&
               !state.contains(use.getOwner());
      });
      entryCasts.insert(cast);
    };
    b.setInsertionPointToStart(&body);
    for (BlockArgument arg : body.getArguments())
      castIn(arg);
    for (ParamOp p : llvm::to_vector(body.getOps<ParamOp>())) {
      b.setInsertionPointAfter(p);
      castIn(p.getResult());
    }

    // Everything else computes in `to`.
    for (Operation &op :
         llvm::make_early_inc_range(body.without_terminator())) {
      if (isa<ParamOp>(op) || entryCasts.contains(&op))
        continue;
      if (state.contains(&op)) {
        // Float32 in: values computed in the compute type are cast up.
        b.setInsertionPoint(&op);
        for (OpOperand &operand : op.getOpOperands()) {
          auto t = dyn_cast<RankedTensorType>(operand.get().getType());
          if (t && t.getElementType() == to)
            operand.set(b.create<CastOp>(
                op.getLoc(),
                RankedTensorType::get(t.getShape(), b.getF32Type()),
                operand.get()));
        }
        continue;
      }
      if (auto assign = dyn_cast<AssignOp>(op)) {
        // State is stored in float32: cast the computed value back.
        if (assign.getValue().getType() != assign.getParam().getType()) {
          b.setInsertionPoint(assign);
          assign.getValueMutable().assign(b.create<CastOp>(
              assign.getLoc(), assign.getParam().getType(), assign.getValue()));
        }
        continue;
      }
      if (auto constant = dyn_cast<ConstantOp>(op)) {
        auto dense = dyn_cast<DenseElementsAttr>(constant.getValue());
        if (!dense || !dense.getElementType().isF32())
          continue;
        const llvm::fltSemantics &sem = cast<FloatType>(to).getFloatSemantics();
        auto rounded = dense.mapValues(to, [&](const APFloat &v) {
          APFloat r = v;
          bool lost;
          r.convert(sem, APFloat::rmNearestTiesToEven, &lost);
          return r.bitcastToAPInt();
        });
        constant.setValueAttr(rounded);
        constant.getResult().setType(cast<RankedTensorType>(rounded.getType()));
        continue;
      }
      for (Value r : op.getResults())
        r.setType(retyped(r.getType(), to));
    }

    // Float32 results leave as float32.
    auto ret = cast<func::ReturnOp>(body.getTerminator());
    b.setInsertionPoint(ret);
    for (auto [i, want] : llvm::enumerate(func.getResultTypes())) {
      Value v = ret.getOperand(i);
      if (v.getType() != want)
        ret.setOperand(i, b.create<CastOp>(ret.getLoc(), want, v));
    }
    return success();
  }
};

} // namespace
