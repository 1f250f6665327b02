//===- DistBase.td - The cgd dialect ---------------------------*- tablegen -*-===//
//
// The distributed dialect holds per-device programs: local tensor ops plus
// the communication between devices of a cg.mesh and copies between host
// and device memory.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_DIALECTS_DIST_IR_DISTBASE_TD
#define COLOSSAL_DIALECTS_DIST_IR_DISTBASE_TD

include "mlir/IR/EnumAttr.td"
include "mlir/IR/OpBase.td"

def CGD_Dialect : Dialect {
  let name = "cgd";
  let cppNamespace = "::mlir::colossal::cgd";
  let useDefaultAttributePrinterParser = 1;
  let summary = "Colossal's distributed dialect: per-device programs";
  let description = [{
    Collectives run over the devices of a `cg.mesh` that share all
    coordinates except those along the listed `axes`. Shapes are per device.
  }];
}

def CGD_ReductionKind : I32EnumAttr<"ReductionKind", "reduction of a collective", [
    I32EnumAttrCase<"sum", 0>, I32EnumAttrCase<"max", 1>,
    I32EnumAttrCase<"min", 2>, I32EnumAttrCase<"avg", 3>]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::colossal::cgd";
}
def CGD_ReductionKindAttr : EnumAttr<CGD_Dialect, CGD_ReductionKind, "reduction">;

def CGD_Tensor : StaticShapeTensorOf<[F32, F16, BF16, I64, I32, I1]>;

#endif // COLOSSAL_DIALECTS_DIST_IR_DISTBASE_TD
