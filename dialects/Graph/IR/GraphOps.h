//===- GraphOps.h - Operations of the cg dialect ----------------*- C++ -*-===//
//
// Op classes generated from GraphOps.td, plus the shape rules they share
// with the ONNX importer (broadcasting, matmul, convolution windows).
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_DIALECTS_GRAPH_IR_GRAPHOPS_H
#define COLOSSAL_DIALECTS_GRAPH_IR_GRAPHOPS_H

#include "dialects/Graph/IR/GraphDialect.h"
#include "dialects/Graph/IR/GraphShapes.h"
#include "dialects/Graph/IR/ShardingStrategy.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/Graph/IR/GraphInterfaces.h.inc"

#define GET_OP_CLASSES
#include "dialects/Graph/IR/GraphOps.h.inc"

#endif // COLOSSAL_DIALECTS_GRAPH_IR_GRAPHOPS_H
