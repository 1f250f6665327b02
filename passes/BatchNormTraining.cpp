//===- BatchNormTraining.cpp - Batch statistics for training --------------===//
//
// An imported model's batch_norm normalizes with its running statistics
// (inference). Training normalizes with the statistics of the batch, as
// torch's train mode does, and keeps the running statistics up to date for
// inference afterwards:
//
//   mean = mean(x over all dims but 1)      var = mean((x - mean)^2)
//   y = (x - mean) / sqrt(var + eps) * scale + bias
//   running_mean := (1 - m) running_mean + m mean
//   running_var  := (1 - m) running_var  + m var * n / (n - 1)
//
// written with graph ops, so colossal-autodiff differentiates through the
// batch statistics with the rules it already has, and the running
// statistics (parameters) are written back with cg.assign at the end of the
// forward pass.
//
//===----------------------------------------------------------------------===//

#include "passes/GraphBuild.h"
#include "passes/Passes.h"

#include "dialects/Graph/IR/GraphShapes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::colossal {
#define GEN_PASS_DEF_BATCHNORMTRAININGPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

struct BatchNormTrainingPass
    : mlir::colossal::impl::BatchNormTrainingPassBase<BatchNormTrainingPass> {
  using BatchNormTrainingPassBase::BatchNormTrainingPassBase;

  void runOnOperation() override {
    if (!(momentum >= 0 && momentum <= 1)) {
      getOperation().emitError("batch-norm momentum must lie in [0, 1], got ")
          << momentum;
      return signalPassFailure();
    }
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (!func.isExternal())
        for (BatchNormOp bn : llvm::to_vector(func.getOps<BatchNormOp>()))
          rewrite(bn, func);
  }

  void rewrite(BatchNormOp bn, func::FuncOp func) {
    OpBuilder b(bn);
    Location loc = bn.getLoc();
    Value x = bn.getInput();
    auto xt = typeOf(x);
    Type f = xt.getElementType();
    int64_t channels = xt.getDimSize(1);
    SmallVector<int64_t> axes, statShape(xt.getRank(), 1);
    statShape[1] = channels;
    int64_t count = 1;
    for (int64_t d = 0; d < xt.getRank(); ++d)
      if (d != 1) {
        axes.push_back(d);
        count *= xt.getDimSize(d);
      }
    auto statType = RankedTensorType::get(statShape, f);
    auto channelType = RankedTensorType::get({channels}, f);
    auto bin = [&](auto tag, Value l, Value r) -> Value {
      using OpT = decltype(tag);
      auto shape = broadcastShapes(typeOf(l).getShape(), typeOf(r).getShape());
      return b.create<OpT>(loc, RankedTensorType::get(*shape, f), l, r);
    };
    auto mean = [&](Value v) -> Value {
      return b.create<ReduceMeanOp>(
          loc, statType, v, b.getDenseI64ArrayAttr(axes), b.getUnitAttr());
    };
    Value mu = mean(x);
    Value centered = bin(SubOp(), x, mu);
    Value var = mean(bin(MulOp(), centered, centered));
    Value eps = scalarConstant(b, loc, f, bn.getEpsilon().convertToDouble());
    Value inv = b.create<RsqrtOp>(loc, statType, bin(AddOp(), var, eps));
    Value scale = b.create<ReshapeOp>(loc, statType, bn.getScale());
    Value bias = b.create<ReshapeOp>(loc, statType, bn.getBias());
    Value y =
        bin(AddOp(), bin(MulOp(), bin(MulOp(), centered, inv), scale), bias);
    bn.getResult().replaceAllUsesWith(y);

    // Running statistics, when they are parameters the step can update.
    auto update = [&](Value running, Value batch, double correction) {
      auto param = running.getDefiningOp<ParamOp>();
      if (!param || !running.use_empty())
        return; // a constant, or shared with other ops: left as it is
      OpBuilder end(func.getBody().front().getTerminator());
      Value stat = end.create<ReshapeOp>(loc, channelType, batch);
      Value keep =
          end.create<MulOp>(loc, channelType, running,
                            scalarConstant(end, loc, f, 1.0 - momentum));
      Value add =
          end.create<MulOp>(loc, channelType, stat,
                            scalarConstant(end, loc, f, momentum * correction));
      end.create<AssignOp>(loc, end.create<AddOp>(loc, channelType, keep, add),
                           running);
    };
    Value runningMean = bn.getMean(), runningVar = bn.getVariance();
    bn.erase();
    update(runningMean, mu, 1.0);
    update(runningVar, var,
           count > 1 ? static_cast<double>(count) / (count - 1) : 1.0);
  }
};

} // namespace
