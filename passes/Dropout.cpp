//===- Dropout.cpp - Random masks for training-mode dropout ---------------===//
//
// Each cg.dropout becomes `where(keep, x * 1/(1 - ratio), 0)` with `keep` a
// cg.random_keep mask. The masks are a function of a run counter, an int64
// parameter (`rng.counter`, optimizer state, so checkpoints carry it) that
// the step advances with cg.assign: every run draws new masks, and a
// resumed run draws the ones an uninterrupted run would have. Autodiff needs
// no new rule: the mask is a boolean, the rest is where and mul.
//
//===----------------------------------------------------------------------===//

#include "passes/GraphBuild.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::colossal {
#define GEN_PASS_DEF_DROPOUTPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

struct DropoutPass : mlir::colossal::impl::DropoutPassBase<DropoutPass> {
  using DropoutPassBase::DropoutPassBase;

  void runOnOperation() override {
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (!func.isExternal())
        lower(func);
  }

  void lower(func::FuncOp func) {
    auto dropouts = llvm::to_vector(func.getOps<DropoutOp>());
    if (dropouts.empty())
      return;
    Block &body = func.getBody().front();
    OpBuilder b = OpBuilder::atBlockBegin(&body);
    Location loc = func.getLoc();
    auto counterType = RankedTensorType::get({}, b.getI64Type());
    auto counter = b.create<ParamOp>(
        loc, counterType, b.getStringAttr("rng.counter"),
        DenseElementsAttr::get(counterType, b.getI64IntegerAttr(0)));
    counter->setAttr("cg.role", b.getStringAttr("optimizer"));

    int64_t stream = 0;
    for (DropoutOp d : dropouts) {
      b.setInsertionPoint(d);
      double ratio = d.getRatio().convertToDouble();
      auto type = typeOf(d.getInput());
      Value keep = b.create<RandomKeepOp>(
          d.getLoc(), RankedTensorType::get(type.getShape(), b.getI1Type()),
          counter.getResult(), d.getRatioAttr(),
          b.getI64IntegerAttr(static_cast<int64_t>(seed)),
          b.getI64IntegerAttr(stream++));
      Type f = type.getElementType();
      Value scaled = b.create<MulOp>(
          d.getLoc(), type, d.getInput(),
          scalarConstant(b, d.getLoc(), f, 1.0 / (1.0 - ratio)));
      Value zero =
          b.create<ExpandOp>(d.getLoc(), type, scalarConstant(b, loc, f, 0.0));
      d.getResult().replaceAllUsesWith(
          b.create<WhereOp>(d.getLoc(), type, keep, scaled, zero));
      d.erase();
    }
    // The next run draws the next masks.
    b.setInsertionPoint(body.getTerminator());
    Value next = b.create<AddOp>(loc, counterType, counter.getResult(),
                                 scalarConstant(b, loc, b.getI64Type(), 1));
    b.create<AssignOp>(loc, next, counter.getResult());
  }
};

} // namespace
