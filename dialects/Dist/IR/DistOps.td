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

def CGD_RingAttentionOp : CGD_CollectiveOp<"ring_attention"> {
  let summary = "Attention over a sequence split across a group, by a ring of key/value blocks";
  let description = [{
    Each device of the group over `axes` holds its block of the sequence
    (in group order) of the query, the key and the value, shaped
    `[batch..., seq / n, d]`. The key and value blocks travel once around
    the ring (each device sends its block to the next and receives the
    previous one's), and each device folds every block into its output with
    online softmax: the result is the device's rows of `cg.attention` over
    the whole sequence (same `scale`, `causal`, mask), without any device
    holding the whole key or value. With `causal`, blocks wholly in the
    future are skipped. `lse` (log-sum-exp of each query row's scores, f32)
    is what `cgd.ring_attention_backward` needs; `workspace` is scratch for
    the travelling blocks and the row statistics (planned with the arena).
    The mask, when given, holds the device's query rows and the whole key
    sequence.

    ```mlir
    %o, %lse, %ws = cgd.ring_attention %q, %k, %v on @mesh ["sp"] {scale = 0.25 : f64, causal} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> (tensor<2x4x8x16xf32>, tensor<2x4x8xf32>, tensor<2176xf32>)
    ```
  }];
  let arguments = (ins CGD_Tensor:$query, CGD_Tensor:$key, CGD_Tensor:$value,
                       Optional<CGD_Tensor>:$mask, FlatSymbolRefAttr:$mesh,
                       StrArrayAttr:$axes, F64Attr:$scale, UnitAttr:$causal);
  let results = (outs CGD_Tensor:$result, CGD_Tensor:$lse,
                      CGD_Tensor:$workspace);
  let assemblyFormat = "$query `,` $key `,` $value (`,` $mask^)? `on` $mesh $axes attr-dict `:` functional-type(operands, results)";
  let extraClassDeclaration = extraBaseDeclaration # [{
    /// f32 elements of scratch: a key and a value block, two row statistics.
    static int64_t workspaceElements(::mlir::ShapedType query,
                                     ::mlir::ShapedType key,
                                     ::mlir::ShapedType value);
  }];
}

def CGD_RingAttentionBackwardOp : CGD_CollectiveOp<"ring_attention_backward"> {
  let summary = "Gradients of cgd.ring_attention, by a second ring";
  let description = [{
    Given the operands of a `cgd.ring_attention`, its `out` and `lse`, and
    the gradient `grad` reaching `out`, each device's blocks of the query,
    key and value gradients. The key and value blocks travel around the
    ring with their gradient accumulators (one message a hop), each device
    adding its queries' share, and the accumulators take one more hop
    home. `workspace` holds the travelling key and value blocks, their
    accumulators and each row's `rowsum(grad * out)`.

    ```mlir
    %dq, %dk, %dv, %ws = cgd.ring_attention_backward %q, %k, %v, %o, %lse, %g on @mesh ["sp"] {scale = 0.25 : f64, causal} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8xf32>, tensor<2x4x8x16xf32>) -> (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<4160xf32>)
    ```
  }];
  let arguments = (ins CGD_Tensor:$query, CGD_Tensor:$key, CGD_Tensor:$value,
                       CGD_Tensor:$out, CGD_Tensor:$lse, CGD_Tensor:$grad,
                       Optional<CGD_Tensor>:$mask, FlatSymbolRefAttr:$mesh,
                       StrArrayAttr:$axes, F64Attr:$scale, UnitAttr:$causal);
  let results = (outs CGD_Tensor:$query_grad, CGD_Tensor:$key_grad,
                      CGD_Tensor:$value_grad, CGD_Tensor:$workspace);
  let assemblyFormat = "$query `,` $key `,` $value `,` $out `,` $lse `,` $grad (`,` $mask^)? `on` $mesh $axes attr-dict `:` functional-type(operands, results)";
  let extraClassDeclaration = extraBaseDeclaration # [{
    /// f32 elements of scratch: a key and a value block with their
    /// gradient accumulators (one message a hop), one row statistic.
    static int64_t workspaceElements(::mlir::ShapedType query,
                                     ::mlir::ShapedType key,
                                     ::mlir::ShapedType value);
  }];
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
