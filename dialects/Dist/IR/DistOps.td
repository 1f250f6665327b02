//===- DistOps.td - Operations of the cgd dialect --------------*- tablegen -*-===//

#ifndef COLOSSAL_DIALECTS_DIST_IR_DISTOPS_TD
#define COLOSSAL_DIALECTS_DIST_IR_DISTOPS_TD

include "dialects/Dist/IR/DistBase.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

class CGD_Op<string mnemonic, list<Trait> traits = []>
    : Op<CGD_Dialect, mnemonic, traits>;

/// Collectives name their mesh and the axes whose devices form each group;
/// the verifier checks both against the cg.mesh symbol and the shapes.
class CGD_CollectiveOp<string mnemonic, list<Trait> traits = []>
    : CGD_Op<mnemonic, !listconcat(traits,
          [DeclareOpInterfaceMethods<SymbolUserOpInterface>])> {
  code extraBaseDeclaration = [{
    /// Number of devices in each group (product of the axis sizes).
    ::mlir::FailureOr<int64_t> getGroupSize(
        ::mlir::SymbolTableCollection &symbols);
  }];
  let extraClassDeclaration = extraBaseDeclaration;
}

def CGD_AllReduceOp : CGD_CollectiveOp<"all_reduce", [SameOperandsAndResultType]> {
  let summary = "Reduces a tensor over a group; every device gets the result";
  let arguments = (ins CGD_Tensor:$input, FlatSymbolRefAttr:$mesh,
                       StrArrayAttr:$axes, CGD_ReductionKindAttr:$reduction);
  let results = (outs CGD_Tensor:$result);
  let assemblyFormat = "$input `on` $mesh $axes $reduction attr-dict `:` type($result)";
}

def CGD_AllGatherOp : CGD_CollectiveOp<"all_gather"> {
  let summary = "Concatenates the group's pieces along `dim` on every device";
  let arguments = (ins CGD_Tensor:$input, FlatSymbolRefAttr:$mesh,
                       StrArrayAttr:$axes, I64Attr:$dim);
  let results = (outs CGD_Tensor:$result);
  let assemblyFormat = "$input `on` $mesh $axes attr-dict `:` functional-type(operands, results)";
}

def CGD_ReduceScatterOp : CGD_CollectiveOp<"reduce_scatter"> {
  let summary = "Reduces over the group and leaves each device its piece along `dim`";
  let arguments = (ins CGD_Tensor:$input, FlatSymbolRefAttr:$mesh,
                       StrArrayAttr:$axes, I64Attr:$dim,
                       CGD_ReductionKindAttr:$reduction);
  let results = (outs CGD_Tensor:$result);
  let assemblyFormat = "$input `on` $mesh $axes $reduction attr-dict `:` functional-type(operands, results)";
}

def CGD_AllToAllOp : CGD_CollectiveOp<"all_to_all"> {
  let summary = "Splits along `split_dim`, exchanges, concatenates along `concat_dim`";
  let arguments = (ins CGD_Tensor:$input, FlatSymbolRefAttr:$mesh,
                       StrArrayAttr:$axes, I64Attr:$split_dim,
                       I64Attr:$concat_dim);
  let results = (outs CGD_Tensor:$result);
  let assemblyFormat = "$input `on` $mesh $axes attr-dict `:` functional-type(operands, results)";
}

def CGD_AllSliceOp : CGD_CollectiveOp<"all_slice"> {
  let summary = "Keeps this device's piece along `dim` of a tensor every device holds";
  let description = [{
    The inverse of `all_gather` without communication: each device of a group
    over `axes` keeps the chunk of `dim` its position in the group names
    (group order: the listed axes major to minor). Used where a replicated
    value meets a consumer that wants it split, as upstream `mesh.all_slice`.

    ```mlir
    %1 = cgd.all_slice %x on @mesh ["dp"] {dim = 0} : (tensor<8x16xf32>) -> tensor<2x16xf32>
    ```
  }];
  let arguments = (ins CGD_Tensor:$input, FlatSymbolRefAttr:$mesh,
                       StrArrayAttr:$axes, I64Attr:$dim);
  let results = (outs CGD_Tensor:$result);
  let assemblyFormat = "$input `on` $mesh $axes attr-dict `:` functional-type(operands, results)";
}

def CGD_SendOp : CGD_Op<"send"> {
  let summary = "Sends a tensor to device `peer` (a linear device id of the mesh)";
  let description = [{
    With `axis` set (a pipeline's `pp`), `peer` is a coordinate along that
    axis and the device is the one sharing every other coordinate with the
    sender: the programs of a stage are SPMD over the other axes. Sends do
    not wait for the receiver (the runtime keeps a copy until it is taken).

    ```mlir
    cgd.send %h to 1 on @mesh {axis = "pp", tag = 7 : i64} : tensor<2x16xf32>
    ```
  }];
  let arguments = (ins CGD_Tensor:$input, FlatSymbolRefAttr:$mesh,
                       I64Attr:$peer, DefaultValuedAttr<I64Attr, "0">:$tag,
                       DefaultValuedAttr<StrAttr, "\"\"">:$axis);
  let assemblyFormat = "$input `to` $peer `on` $mesh attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def CGD_RecvOp : CGD_Op<"recv"> {
  let summary = "Receives a tensor from device `peer` (as cgd.send names it)";
  let arguments = (ins FlatSymbolRefAttr:$mesh, I64Attr:$peer,
                       DefaultValuedAttr<I64Attr, "0">:$tag,
                       DefaultValuedAttr<StrAttr, "\"\"">:$axis);
  let results = (outs CGD_Tensor:$result);
  let assemblyFormat = "`from` $peer `on` $mesh attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def CGD_CopyToHostOp : CGD_Op<"copy_to_host", [SameOperandsAndResultType]> {
  let summary = "Copies a device tensor to host memory (offload)";
  let arguments = (ins CGD_Tensor:$input);
  let results = (outs CGD_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def CGD_CopyToDeviceOp : CGD_Op<"copy_to_device", [SameOperandsAndResultType]> {
  let summary = "Copies a host tensor back to device memory (prefetch)";
  let arguments = (ins CGD_Tensor:$input);
  let results = (outs CGD_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

#endif // COLOSSAL_DIALECTS_DIST_IR_DISTOPS_TD
