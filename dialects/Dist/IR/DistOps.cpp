//===- DistOps.cpp - Verification of the cgd dialect's ops ----------------===//
//
// Collectives are checked against their mesh: the axes exist, are listed
// once, and the per-device shapes grow or shrink by the group size along the
// gathered or scattered dimension.
//
//===----------------------------------------------------------------------===//

#include "dialects/Dist/IR/DistOps.h"
#include "dialects/Graph/IR/GraphOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/SmallSet.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cgd;

#include "dialects/Dist/IR/DistDialect.cpp.inc"
#include "dialects/Dist/IR/DistEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/Dist/IR/DistAttrs.cpp.inc"

void CGDDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/Dist/IR/DistOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/Dist/IR/DistAttrs.cpp.inc"
      >();
}

/// Resolves `mesh` and multiplies the sizes of `axes`; reports a missing
/// mesh, an unknown axis or a repeated one.
static FailureOr<int64_t> groupSize(Operation *op, FlatSymbolRefAttr meshRef,
                                    ArrayAttr axes,
                                    SymbolTableCollection &symbols) {
  auto mesh = symbols.lookupNearestSymbolFrom<cg::MeshOp>(op, meshRef);
  if (!mesh) {
    op->emitOpError("refers to ") << meshRef << ", which is not a cg.mesh";
    return failure();
  }
  int64_t size = 1;
  llvm::SmallSet<StringRef, 4> seen;
  for (Attribute axis : axes) {
    StringRef name = cast<StringAttr>(axis).getValue();
    if (!seen.insert(name).second) {
      op->emitOpError("lists mesh axis \"") << name << "\" twice";
      return failure();
    }
    if (!mesh.getMesh().getAxisIndex(name)) {
      op->emitOpError("mesh axis \"")
          << name << "\" does not exist in " << meshRef;
      return failure();
    }
    size *= mesh.getMesh().getAxisSize(name);
  }
  return size;
}

/// Checks that `result` equals `input` except along `dim`, where
/// result = input * factor (factor > 0) or input / -factor (factor < 0).
static LogicalResult verifyResized(Operation *op, ShapedType input,
                                   ShapedType result, int64_t dim,
                                   int64_t group, bool grows) {
  if (dim < 0 || dim >= input.getRank() || input.getRank() != result.getRank())
    return op->emitOpError("dimension ") << dim << " is out of range";
  if (!grows && input.getDimSize(dim) % group != 0)
    return op->emitOpError("dimension ")
           << dim << " of size " << input.getDimSize(dim)
           << " does not split over " << group << " devices";
  for (int64_t d = 0; d < input.getRank(); ++d) {
    int64_t expected = input.getDimSize(d);
    if (d == dim)
      expected = grows ? expected * group : expected / group;
    if (result.getDimSize(d) != expected)
      return op->emitOpError("result dimension ")
             << d << " should be " << expected << ", got "
             << result.getDimSize(d);
  }
  if (input.getElementType() != result.getElementType())
    return op->emitOpError("changes the element type");
  return success();
}

#define CGD_GROUP_SIZE(OP)                                                     \
  FailureOr<int64_t> OP::getGroupSize(SymbolTableCollection &symbols) {        \
    return groupSize(*this, getMeshAttr(), getAxes(), symbols);                \
  }
CGD_GROUP_SIZE(AllReduceOp)
CGD_GROUP_SIZE(AllGatherOp)
CGD_GROUP_SIZE(ReduceScatterOp)
CGD_GROUP_SIZE(AllToAllOp)
CGD_GROUP_SIZE(AllSliceOp)
CGD_GROUP_SIZE(RingAttentionOp)
CGD_GROUP_SIZE(RingAttentionBackwardOp)
#undef CGD_GROUP_SIZE

LogicalResult AllReduceOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return success(succeeded(getGroupSize(symbols)));
}

LogicalResult AllGatherOp::verifySymbolUses(SymbolTableCollection &symbols) {
  FailureOr<int64_t> group = getGroupSize(symbols);
  if (failed(group))
    return failure();
  return verifyResized(*this, getInput().getType(), getType(), getDim(), *group,
                       /*grows=*/true);
}

LogicalResult
ReduceScatterOp::verifySymbolUses(SymbolTableCollection &symbols) {
  FailureOr<int64_t> group = getGroupSize(symbols);
  if (failed(group))
    return failure();
  return verifyResized(*this, getInput().getType(), getType(), getDim(), *group,
                       /*grows=*/false);
}

LogicalResult AllSliceOp::verifySymbolUses(SymbolTableCollection &symbols) {
  FailureOr<int64_t> group = getGroupSize(symbols);
  if (failed(group))
    return failure();
  return verifyResized(*this, getInput().getType(), getType(), getDim(), *group,
                       /*grows=*/false);
}

LogicalResult AllToAllOp::verifySymbolUses(SymbolTableCollection &symbols) {
  FailureOr<int64_t> group = getGroupSize(symbols);
  if (failed(group))
    return failure();
  auto input = getInput().getType(), result = getType();
  int64_t rank = input.getRank();
  int64_t split = getSplitDim(), concat = getConcatDim();
  if (split < 0 || split >= rank || concat < 0 || concat >= rank ||
      result.getRank() != rank)
    return emitOpError("split/concat dimensions are out of range");
  if (input.getDimSize(split) % *group != 0)
    return emitOpError("dimension ")
           << split << " of size " << input.getDimSize(split)
           << " does not split over " << *group << " devices";
  for (int64_t d = 0; d < rank; ++d) {
    int64_t expected = input.getDimSize(d);
    if (d == split)
      expected /= *group;
    if (d == concat)
      expected *= *group;
    if (result.getDimSize(d) != expected)
      return emitOpError("result dimension ")
             << d << " should be " << expected << ", got "
             << result.getDimSize(d);
  }
  return success();
}

/// Rows of `t` [batch..., rows, cols]: the elements of its row statistics.
static int64_t rowsOf(ShapedType t) {
  return t.getNumElements() / std::max<int64_t>(1, t.getShape().back());
}

int64_t RingAttentionOp::workspaceElements(ShapedType query, ShapedType key,
                                           ShapedType value) {
  return key.getNumElements() + value.getNumElements() + 2 * rowsOf(query);
}

int64_t RingAttentionBackwardOp::workspaceElements(ShapedType query,
                                                   ShapedType key,
                                                   ShapedType value) {
  return 2 * (key.getNumElements() + value.getNumElements()) + rowsOf(query);
}

/// The checks both ring ops share: f32 blocks [batch..., n, d] of one
/// length, the result shaped [batch..., n, d_v], lse [batch..., n] and the
/// workspace's f32 element count.
static LogicalResult verifyRing(Operation *op, ShapedType q, ShapedType k,
                                ShapedType v, Type result, Type lse,
                                Type workspace, int64_t workspaceElements) {
  int64_t r = q.getRank();
  auto f32 = Float32Type::get(op->getContext());
  if (r < 2 || k.getRank() != r || v.getRank() != r)
    return op->emitOpError("needs query, key and value of one rank >= 2");
  if (q.getElementType() != f32 || k.getElementType() != f32 ||
      v.getElementType() != f32)
    return op->emitOpError("runs in f32 (query, key and value)");
  if (q.getShape().drop_back() != k.getShape().drop_back() ||
      k.getShape().drop_back() != v.getShape().drop_back() ||
      q.getDimSize(r - 1) != k.getDimSize(r - 1))
    return op->emitOpError("query ")
           << q << ", key " << k << " and value " << v
           << " must be blocks of one length, q and k of one head size";
  SmallVector<int64_t> out(q.getShape()), rows(q.getShape().drop_back());
  out.back() = v.getDimSize(r - 1);
  if (result != RankedTensorType::get(out, f32))
    return op->emitOpError("result must be ")
           << RankedTensorType::get(out, f32) << ", got " << result;
  if (lse != RankedTensorType::get(rows, f32))
    return op->emitOpError("lse must be ")
           << RankedTensorType::get(rows, f32) << ", got " << lse;
  if (workspace != RankedTensorType::get({workspaceElements}, f32))
    return op->emitOpError("workspace must be ")
           << RankedTensorType::get({workspaceElements}, f32) << ", got "
           << workspace;
  return success();
}

LogicalResult
RingAttentionOp::verifySymbolUses(SymbolTableCollection &symbols) {
  if (failed(getGroupSize(symbols)))
    return failure();
  auto q = getQuery().getType(), k = getKey().getType(),
       v = getValue().getType();
  return verifyRing(*this, q, k, v, getResult().getType(), getLse().getType(),
                    getWorkspace().getType(), workspaceElements(q, k, v));
}

LogicalResult
RingAttentionBackwardOp::verifySymbolUses(SymbolTableCollection &symbols) {
  if (failed(getGroupSize(symbols)))
    return failure();
  auto q = getQuery().getType(), k = getKey().getType(),
       v = getValue().getType();
  if (getGrad().getType() != getOut().getType())
    return emitOpError("grad must have out's type");
  if (getQueryGrad().getType() != q || getKeyGrad().getType() != k ||
      getValueGrad().getType() != v)
    return emitOpError("gradients must have the types of query, key and "
                       "value");
  return verifyRing(*this, q, k, v, getOut().getType(), getLse().getType(),
                    getWorkspace().getType(), workspaceElements(q, k, v));
}

LogicalResult SendOp::verify() {
  if (static_cast<int64_t>(getPeer()) < 0)
    return emitOpError("peer must be a device id >= 0, got ")
           << static_cast<int64_t>(getPeer());
  return success();
}

LogicalResult RecvOp::verify() {
  if (static_cast<int64_t>(getPeer()) < 0)
    return emitOpError("peer must be a device id >= 0, got ")
           << static_cast<int64_t>(getPeer());
  return success();
}

#define GET_OP_CLASSES
#include "dialects/Dist/IR/DistOps.cpp.inc"
