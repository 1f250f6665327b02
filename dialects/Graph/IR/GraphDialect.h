//===- GraphDialect.h - The cg dialect and its attributes -------*- C++ -*-===//
//
// The graph dialect (`cg`): whole models with single-device semantics, and
// the mesh/sharding attributes that the auto-parallel search attaches to them.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_DIALECTS_GRAPH_IR_GRAPHDIALECT_H
#define COLOSSAL_DIALECTS_GRAPH_IR_GRAPHDIALECT_H

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"

#include "dialects/Graph/IR/GraphDialect.h.inc"
#include "dialects/Graph/IR/GraphEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/Graph/IR/GraphAttrs.h.inc"

#endif // COLOSSAL_DIALECTS_GRAPH_IR_GRAPHDIALECT_H
