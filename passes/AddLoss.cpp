//===- AddLoss.cpp - A training loss over a model's output ----------------===//
//
// The loss is written with graph-dialect ops (log_softmax, a one-hot mask
// from comparing labels with a class iota, sums), so colossal-autodiff
// differentiates it with the rules it already has and the runtime runs it
// with the kernels it already has.
//
//===----------------------------------------------------------------------===//

#include "passes/GraphBuild.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::colossal {
#define GEN_PASS_DEF_ADDLOSSPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

struct AddLossPass : mlir::colossal::impl::AddLossPassBase<AddLossPass> {
  using AddLossPassBase::AddLossPassBase;

  void runOnOperation() override {
    if (loss != "cross-entropy" && loss != "mse") {
      getOperation().emitError("unknown loss '")
          << loss << "'; use cross-entropy or mse";
      return signalPassFailure();
    }
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (!func.isExternal() && failed(addLoss(func)))
        return signalPassFailure();
  }

  /// Sum of every element of `v`, as a scalar.
  Value sumAll(OpBuilder &b, Location loc, Value v) {
    auto t = typeOf(v);
    SmallVector<int64_t> axes;
    for (int64_t d = 0; d < t.getRank(); ++d)
      axes.push_back(d);
    if (axes.empty())
      return v;
    return b.create<ReduceSumOp>(loc,
                                 RankedTensorType::get({}, t.getElementType()),
                                 v, b.getDenseI64ArrayAttr(axes), UnitAttr());
  }

  LogicalResult addLoss(func::FuncOp func) {
    Block &body = func.getBody().front();
    auto ret = cast<func::ReturnOp>(body.getTerminator());
    if (output < 0 || output >= static_cast<int64_t>(ret.getNumOperands()))
      return func.emitError("the model has ")
             << ret.getNumOperands()
             << " output(s); --loss-output=" << static_cast<int64_t>(output)
             << " does not name one (outputs count from 0)";
    Value pred = ret.getOperand(output);
    auto pt = typeOf(pred);
    Type f = pt.getElementType();
    if (!isa<FloatType>(f))
      return func.emitError("output ")
             << static_cast<int64_t>(output) << " is " << pt
             << ", not floating point; a loss needs a floating-point "
                "prediction (choose another with --loss-output=N)";
    Location loc = ret.getLoc();
    OpBuilder b(ret);
    Value lossValue;
    StringRef targetName;
    if (loss == "cross-entropy") {
      // Classes on another axis (torch's [N, C, d1, ...]) move last.
      int64_t classes0 = classAxis < 0 ? classAxis + pt.getRank() : classAxis;
      if (pt.getRank() >= 1 && (classes0 < 0 || classes0 >= pt.getRank()))
        return func.emitError("--class-axis=")
               << static_cast<int64_t>(classAxis) << " is not an axis of "
               << pt;
      if (pt.getRank() >= 1 && classes0 != pt.getRank() - 1) {
        SmallVector<int64_t> perm, shape;
        for (int64_t d = 0; d < pt.getRank(); ++d)
          if (d != classes0)
            perm.push_back(d);
        perm.push_back(classes0);
        for (int64_t d : perm)
          shape.push_back(pt.getDimSize(d));
        pred = b.create<TransposeOp>(loc, RankedTensorType::get(shape, f), pred,
                                     b.getDenseI64ArrayAttr(perm));
        pt = typeOf(pred);
      }
      if (pt.getRank() < 1 || pt.getShape().back() < 1)
        return func.emitError("cross-entropy needs logits shaped "
                              "[..., classes]; output ")
               << static_cast<int64_t>(output) << " is " << pt;
      int64_t classes = pt.getShape().back();
      SmallVector<int64_t> labelShape(pt.getShape().drop_back());
      auto i64 = b.getIntegerType(64);
      auto labelType = RankedTensorType::get(labelShape, i64);
      func.insertArgument(func.getNumArguments(), labelType, {}, loc);
      Value labels = body.getArgument(body.getNumArguments() - 1);
      targetName = "labels";

      int64_t axis = pt.getRank() - 1;
      Value lp =
          b.create<LogSoftmaxOp>(loc, pt, pred, b.getI64IntegerAttr(axis));
      // An ignored label matches no class.
      Value hot = oneHot(b, loc, labels, classes, f);
      Value picked = sumAll(b, loc, b.create<MulOp>(loc, pt, lp, hot));
      Value kept = b.create<CmpOp>(
          loc, RankedTensorType::get(labelShape, b.getI1Type()),
          CmpPredicate::ne, labels, scalarConstant(b, loc, i64, ignoreIndex));
      Value count = sumAll(
          b, loc,
          b.create<CastOp>(loc, RankedTensorType::get(labelShape, f), kept));
      auto st = RankedTensorType::get({}, f);
      Value denom =
          b.create<MaxOp>(loc, st, count, scalarConstant(b, loc, f, 1.0));
      lossValue =
          b.create<NegOp>(loc, st, b.create<DivOp>(loc, st, picked, denom));
      // What a training loop checks labels against.
      func->getParentOfType<ModuleOp>()->setAttr(
          "cg.loss",
          b.getDictionaryAttr(
              {b.getNamedAttr("classes", b.getI64IntegerAttr(classes)),
               b.getNamedAttr("ignore_index",
                              b.getI64IntegerAttr(ignoreIndex))}));
    } else {
      func.insertArgument(func.getNumArguments(), pt, {}, loc);
      Value targets = body.getArgument(body.getNumArguments() - 1);
      targetName = "targets";
      Value diff = b.create<SubOp>(loc, pt, pred, targets);
      Value sq = sumAll(b, loc, b.create<MulOp>(loc, pt, diff, diff));
      auto st = RankedTensorType::get({}, f);
      lossValue = b.create<DivOp>(
          loc, st, sq,
          scalarConstant(b, loc, f, static_cast<double>(pt.getNumElements())));
    }
    std::string name = this->targetName.empty() ? targetName.str()
                                                : std::string(this->targetName);
    for (unsigned i = 0; i + 1 < func.getNumArguments(); ++i)
      if (auto other = func.getArgAttrOfType<StringAttr>(i, "cg.name");
          other && other.getValue() == name)
        return func.emitError("the model already has an input named '")
               << name << "'; name the "
               << (loss == "mse" ? "targets" : "labels")
               << " input differently with --labels-name";
    func.setArgAttr(func.getNumArguments() - 1, "cg.name",
                    b.getStringAttr(name));
    b.create<func::ReturnOp>(loc, lossValue);
    ret.erase();
    func.removeResAttrsAttr();
    func.setFunctionType(FunctionType::get(
        func.getContext(), func.getArgumentTypes(), {lossValue.getType()}));
    func.setResultAttr(0, "cg.name", b.getStringAttr("loss"));
    return success();
  }
};

} // namespace
