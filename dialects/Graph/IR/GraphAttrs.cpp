//===- GraphAttrs.cpp - Mesh, sharding and data-reference attributes ------===//
//
// The sharding vocabulary: a mesh with named axes, and per-dimension axis
// lists with pending partial sums. Verification happens in two steps: the
// attribute alone (axes named once), then against a mesh and a tensor type
// (axes exist, dimensions divide) wherever the attribute is attached.
//
//===----------------------------------------------------------------------===//

#include "dialects/Graph/IR/GraphOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/SmallSet.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::colossal::cg;

#define GET_ATTRDEF_CLASSES
#include "dialects/Graph/IR/GraphAttrs.cpp.inc"

void CGDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/Graph/IR/GraphAttrs.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// MeshAttr
//===----------------------------------------------------------------------===//

Attribute MeshAttr::parse(AsmParser &parser, Type) {
  SmallVector<StringAttr> names;
  SmallVector<int64_t> sizes;
  auto parseAxis = [&]() -> ParseResult {
    std::string name;
    int64_t size;
    if (parser.parseString(&name) || parser.parseEqual() ||
        parser.parseInteger(size))
      return failure();
    names.push_back(StringAttr::get(parser.getContext(), name));
    sizes.push_back(size);
    return success();
  };
  if (parser.parseLess() ||
      parser.parseCommaSeparatedList(AsmParser::Delimiter::Square, parseAxis) ||
      parser.parseGreater())
    return {};
  return parser.getChecked<MeshAttr>(parser.getContext(), names, sizes);
}

void MeshAttr::print(AsmPrinter &printer) const {
  printer << "<[";
  llvm::interleaveComma(
      llvm::zip(getAxisNames(), getAxisSizes()), printer, [&](auto axis) {
        printer << std::get<0>(axis) << " = " << std::get<1>(axis);
      });
  printer << "]>";
}

LogicalResult MeshAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                               ArrayRef<StringAttr> axisNames,
                               ArrayRef<int64_t> axisSizes) {
  if (axisNames.size() != axisSizes.size())
    return emitError() << "mesh has " << axisNames.size() << " axis names but "
                       << axisSizes.size() << " sizes";
  llvm::SmallSet<StringRef, 8> seen;
  for (auto [name, size] : llvm::zip(axisNames, axisSizes)) {
    if (name.getValue().empty())
      return emitError() << "mesh axis names must not be empty";
    if (!seen.insert(name.getValue()).second)
      return emitError() << "mesh axis \"" << name.getValue()
                         << "\" is declared twice";
    if (size < 1)
      return emitError() << "mesh axis \"" << name.getValue()
                         << "\" must have a positive size, got " << size;
  }
  return success();
}

std::optional<unsigned> MeshAttr::getAxisIndex(StringRef name) const {
  for (auto [i, axis] : llvm::enumerate(getAxisNames()))
    if (axis.getValue() == name)
      return i;
  return std::nullopt;
}

int64_t MeshAttr::getAxisSize(StringRef name) const {
  std::optional<unsigned> index = getAxisIndex(name);
  assert(index && "no such mesh axis");
  return getAxisSizes()[*index];
}

int64_t MeshAttr::getNumDevices() const { return numElements(getAxisSizes()); }

//===----------------------------------------------------------------------===//
// ShardingAttr
//===----------------------------------------------------------------------===//

/// Collects the axis names of an array of strings, or fails with a message.
static LogicalResult collectAxes(ArrayAttr axes, StringRef what,
                                 function_ref<InFlightDiagnostic()> emitError,
                                 SmallVectorImpl<StringRef> &names) {
  for (Attribute axis : axes) {
    auto name = dyn_cast<StringAttr>(axis);
    if (!name)
      return emitError() << what
                         << " must list mesh axis names as strings, got "
                         << axis;
    names.push_back(name.getValue());
  }
  return success();
}

LogicalResult ShardingAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                   FlatSymbolRefAttr mesh, ArrayAttr dims,
                                   ArrayAttr partial) {
  if (!mesh)
    return emitError() << "sharding must name a mesh";
  SmallVector<StringRef> used;
  for (auto [i, dim] : llvm::enumerate(dims)) {
    auto axes = llvm::dyn_cast<ArrayAttr>(dim);
    if (!axes)
      return emitError() << "sharding of dimension " << i
                         << " must be a list of mesh axes, got " << dim;
    if (failed(collectAxes(axes, "dimension sharding", emitError, used)))
      return failure();
  }
  if (partial && failed(collectAxes(partial, "partial", emitError, used)))
    return failure();
  llvm::SmallSet<StringRef, 8> seen;
  for (StringRef axis : used)
    if (!seen.insert(axis).second)
      return emitError() << "mesh axis \"" << axis
                         << "\" is used more than once in the sharding";
  return success();
}

SmallVector<StringRef> ShardingAttr::getDimAxes(unsigned dim) const {
  SmallVector<StringRef> axes;
  if (dim < getDims().size())
    for (Attribute axis : llvm::cast<ArrayAttr>(getDims()[dim]))
      axes.push_back(llvm::cast<StringAttr>(axis).getValue());
  return axes;
}

SmallVector<StringRef> ShardingAttr::getPartialAxes() const {
  SmallVector<StringRef> axes;
  if (getPartial())
    for (Attribute axis : getPartial())
      axes.push_back(llvm::cast<StringAttr>(axis).getValue());
  return axes;
}

LogicalResult
ShardingAttr::verifyFor(function_ref<InFlightDiagnostic()> emitError,
                        MeshAttr mesh, ShapedType type) const {
  if (static_cast<int64_t>(getDims().size()) > type.getRank())
    return emitError() << "sharding lists " << getDims().size()
                       << " dimensions but the value has rank "
                       << type.getRank();
  auto checkAxis = [&](StringRef axis) -> LogicalResult {
    if (!mesh.getAxisIndex(axis))
      return emitError() << "mesh axis \"" << axis
                         << "\" does not exist in mesh " << getMesh() << " "
                         << mesh;
    return success();
  };
  for (unsigned dim = 0; dim < getDims().size(); ++dim) {
    int64_t devices = 1;
    for (StringRef axis : getDimAxes(dim)) {
      if (failed(checkAxis(axis)))
        return failure();
      devices *= mesh.getAxisSize(axis);
    }
    if (type.getDimSize(dim) % devices != 0)
      return emitError() << "dimension " << dim << " of size "
                         << type.getDimSize(dim)
                         << " cannot be split evenly over " << devices
                         << " devices";
  }
  for (StringRef axis : getPartialAxes())
    if (failed(checkAxis(axis)))
      return failure();
  return success();
}

SmallVector<int64_t>
ShardingAttr::getLocalShape(MeshAttr mesh, ArrayRef<int64_t> shape) const {
  SmallVector<int64_t> local(shape.begin(), shape.end());
  for (unsigned dim = 0; dim < getDims().size() && dim < local.size(); ++dim)
    for (StringRef axis : getDimAxes(dim))
      local[dim] /= mesh.getAxisSize(axis);
  return local;
}
