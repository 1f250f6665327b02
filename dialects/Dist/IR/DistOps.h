//===- DistOps.h - The cgd dialect: per-device programs ---------*- C++ -*-===//
//
// Collectives over groups of a cg.mesh, point-to-point transfers, and
// host<->device copies; the partitioner lowers sharded cg programs to these.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_DIALECTS_DIST_IR_DISTOPS_H
#define COLOSSAL_DIALECTS_DIST_IR_DISTOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/Dist/IR/DistDialect.h.inc"
#include "dialects/Dist/IR/DistEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/Dist/IR/DistAttrs.h.inc"

#define GET_OP_CLASSES
#include "dialects/Dist/IR/DistOps.h.inc"

#endif // COLOSSAL_DIALECTS_DIST_IR_DISTOPS_H
