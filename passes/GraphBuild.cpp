//===- GraphBuild.cpp - Small builders shared by the graph passes ---------===//

#include "passes/GraphBuild.h"

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

Value mlir::colossal::scalarConstant(OpBuilder &b, Location loc, Type element,
                                     double v) {
  auto type = RankedTensorType::get({}, element);
  Attribute value =
      isa<FloatType>(element)
          ? Attribute(b.getFloatAttr(element, v))
          : Attribute(b.getIntegerAttr(element, static_cast<int64_t>(v)));
  return b.create<ConstantOp>(loc, DenseElementsAttr::get(type, value));
}

Value mlir::colossal::oneHot(OpBuilder &b, Location loc, Value indices,
                             int64_t classes, Type element) {
  auto it = typeOf(indices);
  Type index = it.getElementType();
  SmallVector<int64_t> column(it.getShape()), shape(it.getShape());
  column.push_back(1);
  shape.push_back(classes);
  Value indexColumn =
      b.create<ReshapeOp>(loc, RankedTensorType::get(column, index), indices);
  SmallVector<APInt> iota;
  for (int64_t c = 0; c < classes; ++c)
    iota.push_back(APInt(index.getIntOrFloatBitWidth(), c));
  Value classIds = b.create<ConstantOp>(
      loc,
      DenseElementsAttr::get(RankedTensorType::get({classes}, index), iota));
  Value hit = b.create<CmpOp>(loc, RankedTensorType::get(shape, b.getI1Type()),
                              CmpPredicate::eq, indexColumn, classIds);
  return b.create<CastOp>(loc, RankedTensorType::get(shape, element), hit);
}

Operation *mlir::colossal::lossOp(func::FuncOp func) {
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  for (unsigned i = 0; i < func.getNumResults(); ++i) {
    auto name = func.getResultAttrOfType<StringAttr>(i, "cg.name");
    if (name && name.getValue() == "loss")
      return ret.getOperand(i).getDefiningOp();
  }
  return nullptr;
}
