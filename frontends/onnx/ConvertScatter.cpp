//===- ConvertScatter.cpp - Indexed reads and writes as flat positions ----===//
//
// GatherElements, GatherND, ScatterElements and ScatterND address single
// elements (or rows) by index tensors. Each becomes the flat position of
// every addressed element in its data tensor flattened to rows, computed
// with integer graph ops at run time (negative indices counted from the
// end), then one gather (reads) or scatter_add_rows (writes) over those
// rows: O(output) work, any index values, and differentiable through the
// rules of gather and scatter_add_rows. A write without reduction takes
// the data where no index points and the update where one does (ONNX leaves
// duplicate indices undefined there); reduction "add" adds the updates to
// the data.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/ImportContext.h"

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::onnx;

namespace {

Type i64(NodeContext &c) { return c.builder().getI64Type(); }

/// Row-major element strides of `shape`.
std::vector<int64_t> stridesOf(ArrayRef<int64_t> shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;)
    s[d - 1] = s[d] * shape[d];
  return s;
}

Value constantInts(NodeContext &c, Shape shape, std::vector<int64_t> values) {
  return materializeConstant(
      c.builder(), c.loc(),
      HostTensor::ofInts(i64(c), shape, std::move(values)));
}

/// Input `i` as int64 indices, negative ones plus `sizes` (broadcast
/// against the indices; one size per index position of the last dimension
/// when `sizes` has several).
FailureOr<Value> wrappedIndices(NodeContext &c, unsigned i, Value sizes) {
  Type ti = c.inputType(i).getElementType();
  if (!isa<IntegerType>(ti) || ti.isInteger(1))
    return c.error() << "needs integer indices, got " << ti;
  Value idx = c.value(i);
  if (!ti.isInteger(64))
    idx = c.createTyped<cg::CastOp>(
        RankedTensorType::get(c.inputType(i).getShape(), i64(c)), idx);
  Chain e{c, i64(c)};
  Value wrapped = e.where(e.cmp(cg::CmpPredicate::lt, idx, e.s(0)),
                          e.bin<cg::AddOp>(idx, sizes), idx);
  if (e.failed)
    return failure();
  return wrapped;
}

/// For an index tensor of shape `idxShape` whose values replace coordinate
/// `axis`, the constant part of every element's flat position in a tensor
/// of shape `dims`: sum over the other dimensions of coordinate * stride.
Value offsetsOffAxis(NodeContext &c, ArrayRef<int64_t> idxShape,
                     ArrayRef<int64_t> dims, int64_t axis) {
  const std::vector<int64_t> strides = stridesOf(dims),
                             idxStrides = stridesOf(idxShape);
  const int64_t n = cg::numElements(idxShape);
  std::vector<int64_t> offsets(static_cast<size_t>(n), 0);
  for (int64_t p = 0; p < n; ++p)
    for (size_t d = 0; d < idxShape.size(); ++d)
      if (int64_t(d) != axis)
        offsets[p] += (p / idxStrides[d]) % idxShape[d] * strides[d];
  return constantInts(c, Shape(idxShape), std::move(offsets));
}

/// The flat position in `dims` of every element an *Elements op addresses.
FailureOr<Value> elementPositions(NodeContext &c, unsigned indicesInput,
                                  RankedTensorType data, int64_t axis) {
  RankedTensorType it = c.inputType(indicesInput);
  const int64_t rank = data.getRank();
  if (it.getRank() != rank)
    return c.error() << "indices " << it << " need the rank of data " << data;
  for (int64_t d = 0; d < rank; ++d)
    if (d != axis && it.getDimSize(d) > data.getDimSize(d))
      return c.error() << "indices " << it << " exceed data " << data
                       << " in dimension " << d;
  auto idx = wrappedIndices(c, indicesInput,
                            c.scalar(double(data.getDimSize(axis)), i64(c)));
  if (failed(idx))
    return failure();
  Chain e{c, i64(c)};
  Value flat = e.bin<cg::AddOp>(
      e.bin<cg::MulOp>(*idx, e.s(double(stridesOf(data.getShape())[axis]))),
      offsetsOffAxis(c, it.getShape(), data.getShape(), axis));
  if (e.failed)
    return failure();
  return flat;
}

/// The flat row of every index tuple of an *ND op: indices [..., k] into the
/// first k dimensions after `batchDims` of `data`, plus each batch's offset.
FailureOr<Value> tuplePositions(NodeContext &c, unsigned indicesInput,
                                RankedTensorType data, int64_t batchDims) {
  RankedTensorType it = c.inputType(indicesInput);
  const int64_t q = it.getRank(), r = data.getRank();
  if (q < 1)
    return c.error() << "indices need rank >= 1, got " << it;
  const int64_t k = it.getDimSize(q - 1);
  if (batchDims < 0 || batchDims >= std::min(q, r) || k < 1 ||
      batchDims + k > r)
    return c.error() << "indices " << it << " with batch_dims " << batchDims
                     << " do not address data " << data;
  for (int64_t d = 0; d < batchDims; ++d)
    if (it.getDimSize(d) != data.getDimSize(d))
      return c.error() << "batch dimension " << d << " of indices " << it
                       << " differs from data " << data;
  ArrayRef<int64_t> addressed = data.getShape().slice(batchDims, k);
  std::vector<int64_t> sizes(addressed.begin(), addressed.end());
  auto idx = wrappedIndices(c, indicesInput, constantInts(c, {k}, sizes));
  if (failed(idx))
    return failure();
  Chain e{c, i64(c)};
  Value weighted =
      e.bin<cg::MulOp>(*idx, constantInts(c, {k}, stridesOf(addressed)));
  if (e.failed)
    return failure();
  auto flat =
      c.create<cg::ReduceSumOp>(weighted, ArrayRef<int64_t>{q - 1}, false);
  if (failed(flat))
    return failure();
  if (batchDims == 0)
    return *flat;
  // Batch b's rows start at b * (rows per batch).
  const int64_t rows = cg::numElements(addressed);
  Shape shape(it.getShape().begin(), it.getShape().end() - 1);
  const std::vector<int64_t> strides = stridesOf(shape);
  std::vector<int64_t> offsets(static_cast<size_t>(cg::numElements(shape)));
  const int64_t perBatch = strides[batchDims - 1];
  for (size_t p = 0; p < offsets.size(); ++p)
    offsets[p] = int64_t(p) / perBatch * rows;
  Value v = e.bin<cg::AddOp>(*flat, constantInts(c, shape, std::move(offsets)));
  if (e.failed)
    return failure();
  return v;
}

/// data flattened to [rows, width].
Value asRows(NodeContext &c, Value v, int64_t rows) {
  auto t = cast<RankedTensorType>(v.getType());
  const int64_t n = t.getNumElements();
  return c.reshape(v, {rows, rows ? n / rows : 0});
}

//===----------------------------------------------------------------------===//
// Reads
//===----------------------------------------------------------------------===//

LogicalResult convertGatherElements(NodeContext &c) {
  RankedTensorType dt = c.inputType(0);
  auto axis = c.axisAttr("axis", 0, dt.getRank());
  if (failed(axis))
    return failure();
  auto flat = elementPositions(c, 1, dt, *axis);
  if (failed(flat))
    return failure();
  Value data = c.reshape(c.value(0), {dt.getNumElements()});
  auto out = c.create<cg::GatherOp>(data, *flat, 0);
  if (failed(out))
    return failure();
  c.setOutput(0, *out);
  return success();
}

LogicalResult convertGatherND(NodeContext &c) {
  RankedTensorType dt = c.inputType(0), it = c.inputType(1);
  const int64_t batchDims = c.intAttr("batch_dims", 0);
  auto flat = tuplePositions(c, 1, dt, batchDims);
  if (failed(flat))
    return failure();
  const int64_t k = it.getDimSize(it.getRank() - 1);
  Shape rows = {cg::numElements(dt.getShape().take_front(batchDims + k))};
  rows.append(dt.getShape().begin() + batchDims + k, dt.getShape().end());
  auto out = c.create<cg::GatherOp>(c.reshape(c.value(0), rows), *flat, 0);
  if (failed(out))
    return failure();
  c.setOutput(0, *out);
  return success();
}

//===----------------------------------------------------------------------===//
// Writes
//===----------------------------------------------------------------------===//

/// data with `updates` written (or added) at the rows `flat` of data as
/// `rows` rows.
LogicalResult writeRows(NodeContext &c, Value flat, int64_t rows,
                        Value updates) {
  RankedTensorType dt = c.inputType(0);
  Type f = dt.getElementType();
  if (!isa<FloatType>(f))
    return c.error() << "writes floating-point data only, got " << f;
  const std::string reduction = c.stringAttr("reduction", "none");
  if (reduction != "none" && reduction != "add")
    return c.error() << "reduction '" << reduction
                     << "' is not supported (none and add are)";
  const int64_t m = cast<RankedTensorType>(flat.getType()).getNumElements();
  Value positions = c.reshape(flat, {m});
  Value data = asRows(c, c.value(0), rows);
  const int64_t width = cast<RankedTensorType>(data.getType()).getDimSize(1);
  Value upd = c.reshape(updates, {m, width});
  auto rowsType = RankedTensorType::get({rows, width}, f);
  Value sums = c.createTyped<cg::ScatterAddRowsOp>(rowsType, positions, upd);
  Chain e{c, f};
  Value out;
  if (reduction == "add") {
    out = e.bin<cg::AddOp>(data, sums);
  } else {
    // Rows some index names take their update; the others keep the data.
    Value ones =
        c.createTyped<cg::ExpandOp>(RankedTensorType::get({m, 1}, f), e.s(1));
    Value hits = c.createTyped<cg::ScatterAddRowsOp>(
        RankedTensorType::get({rows, 1}, f), positions, ones);
    out = e.where(e.cmp(cg::CmpPredicate::gt, hits, e.s(0)), sums, data);
  }
  if (e.failed)
    return failure();
  c.setOutput(0, c.reshape(out, dt.getShape()));
  return success();
}

LogicalResult convertScatterElements(NodeContext &c) {
  RankedTensorType dt = c.inputType(0), it = c.inputType(1),
                   ut = c.inputType(2);
  if (ut.getShape() != it.getShape())
    return c.error() << "updates " << ut << " need the shape of indices " << it;
  auto axis = c.axisAttr("axis", 0, dt.getRank());
  if (failed(axis))
    return failure();
  auto flat = elementPositions(c, 1, dt, *axis);
  if (failed(flat))
    return failure();
  return writeRows(c, *flat, dt.getNumElements(), c.value(2));
}

LogicalResult convertScatterND(NodeContext &c) {
  RankedTensorType dt = c.inputType(0), it = c.inputType(1),
                   ut = c.inputType(2);
  const int64_t q = it.getRank();
  auto flat = tuplePositions(c, 1, dt, 0);
  if (failed(flat))
    return failure();
  const int64_t k = it.getDimSize(q - 1);
  Shape want(it.getShape().begin(), it.getShape().end() - 1);
  want.append(dt.getShape().begin() + k, dt.getShape().end());
  if (ut.getShape() != ArrayRef<int64_t>(want))
    return c.error() << "updates " << ut << " should have shape "
                     << RankedTensorType::get(want, ut.getElementType());
  return writeRows(c, *flat, cg::numElements(dt.getShape().take_front(k)),
                   c.value(2));
}

} // namespace

void mlir::colossal::onnx::registerScatterConverters(ConverterTable &t) {
  t["GatherElements"] = {convertGatherElements, 2, 2};
  t["GatherND"] = {convertGatherND, 2, 2};
  t["ScatterElements"] = {convertScatterElements, 3, 3};
  t["ScatterND"] = {convertScatterND, 3, 3};
}
