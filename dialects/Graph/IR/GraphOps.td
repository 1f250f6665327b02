//===- GraphOps.td - Operations of the cg dialect --------------*- tablegen -*-===//
//
// Ops take and return ranked, statically shaped tensors. Ops whose result
// type follows from their operands and attributes infer it (so builders need
// no result type and the verifier checks it); the others state it and verify
// it against their operands.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_DIALECTS_GRAPH_IR_GRAPHOPS_TD
#define COLOSSAL_DIALECTS_GRAPH_IR_GRAPHOPS_TD

include "dialects/Graph/IR/GraphBase.td"
include "dialects/Graph/IR/GraphInterfaces.td"
include "mlir/IR/OpBase.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

class CG_Op<string mnemonic, list<Trait> traits = []>
    : Op<CG_Dialect, mnemonic, traits>;

//===----------------------------------------------------------------------===//
// Parameters, constants, meshes and sharding annotations
//===----------------------------------------------------------------------===//

def CG_ParamOp : CG_Op<"param", [Pure]> {
  let summary = "A named model parameter (a trainable weight)";
  let description = [{
    `source` says where the bytes of the initial value live: an external data
    file (`#cg.external`), an initializer inside an ONNX file
    (`#cg.initializer`), or, for small tensors only, inline elements. Large
    tensors are always referenced, never copied into the IR.

    ```mlir
    %w = cg.param "h.0.mlp.fc.weight" from(#cg.external<"gpt.data", offset = 0, length = 65536>) : tensor<64x256xf32>
    ```
  }];
  let arguments = (ins StrAttr:$name, OptionalAttr<AnyAttr>:$source);
  let results = (outs CG_Tensor:$result);
  let assemblyFormat = "$name (`from` `(` $source^ `)`)? attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def CG_AssignOp : CG_Op<"assign", [MemoryEffects<[MemWrite]>,
    AllTypesMatch<["value", "param"]>]> {
  let summary = "Overwrites a parameter with a new value (training state)";
  let description = [{
    A training step computes new parameters and optimizer state from the old
    ones; `cg.assign` writes such a value into the parameter's storage, so
    the next run of the program reads it. It must follow every other use of
    the parameter in the block (reads see the old value), and a parameter is
    assigned at most once per program.

    ```mlir
    %w = cg.param "fc.weight" from(...) : tensor<4x4xf32>
    ...
    cg.assign %w_new to %w : tensor<4x4xf32>
    ```
  }];
  let arguments = (ins CG_Tensor:$value, CG_Tensor:$param);
  let assemblyFormat = "$value `to` $param attr-dict `:` type($value)";
  let hasVerifier = 1;
}

def CG_DropoutOp : CG_Op<"dropout", [SameOperandsAndResultType]> {
  let summary = "Training-mode dropout (zeroes elements with probability `ratio`)";
  let description = [{
    Imported from ONNX Dropout nodes in training mode when compiling a
    training step; colossal-dropout lowers it to a `cg.random_keep` mask
    (`where(keep, x / (1 - ratio), 0)`) drawn fresh on every run. Not pure:
    two dropouts of one value draw different masks.
  }];
  let arguments = (ins CG_FloatTensor:$input, F64Attr:$ratio);
  let results = (outs CG_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def CG_RandomKeepOp : CG_Op<"random_keep", [Pure]> {
  let summary = "A Bernoulli(1 - ratio) keep-mask, a function of a counter";
  let description = [{
    Element `j` is true when `u(seed, stream, counter, j) >= ratio`, with `u`
    uniform in [0, 1) from a counter-based hash (splitmix64), so the mask is
    a pure function of its operand and attributes: a run that resumes with
    the same counter draws the same masks. `counter` (an int64 scalar) is
    the training state that advances every run.
  }];
  let arguments = (ins CG_IndexTensor:$counter, F64Attr:$ratio,
                       I64Attr:$seed, I64Attr:$stream);
  let results = (outs CG_BoolTensor:$result);
  let assemblyFormat = "$counter attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def CG_ConstantOp : CG_Op<"constant", [ConstantLike, Pure,
    AllTypesMatch<["value", "result"]>]> {
  let summary = "A constant tensor";
  let arguments = (ins ElementsAttr:$value);
  let results = (outs CG_Tensor:$result);
  let assemblyFormat = "attr-dict $value";
  let hasFolder = 1;
}

def CG_MeshOp : CG_Op<"mesh", [Symbol, HasParent<"::mlir::ModuleOp">]> {
  let summary = "Declares a device mesh with named axes";
  let description = [{
    ```mlir
    cg.mesh @mesh = #cg.mesh<["dp" = 2, "tp" = 4]>
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, CG_MeshAttr:$mesh);
  let assemblyFormat = "$sym_name `=` $mesh attr-dict";
}

def CG_ShardOp : CG_Op<"shard", [CG_TensorParallelOpInterface, Pure, AllTypesMatch<["input", "result"]>,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "Annotates a value with a sharding";
  let description = [{
    The result is the input laid out as `sharding` says. The annotation is a
    constraint for the auto-parallel search. `grad_sharding`, when given,
    is the layout colossal-autodiff gives the gradient flowing back through
    the op (a `cg.shard` of its own); without it the gradient passes
    unconstrained. The 2D/2.5D/3D tensor-parallel layouts use it to pin the
    backward of each linear layer to its algorithm.

    ```mlir
    %1 = cg.shard %0 to #cg.sharding<@mesh, [["dp"], []]> : tensor<8x16xf32>
    %2 = cg.shard %0 to #cg.sharding<@mesh, [["tpr"], ["tpc"]]> {grad_sharding = #cg.sharding<@mesh, [["tpr"]]>} : tensor<8x16xf32>
    ```
  }];
  let arguments = (ins CG_Tensor:$input, CG_ShardingAttr:$sharding,
                       OptionalAttr<CG_ShardingAttr>:$grad_sharding);
  let results = (outs CG_Tensor:$result);
  let builders = [
    OpBuilder<(ins "::mlir::Value":$input,
                   "::mlir::colossal::cg::ShardingAttr":$sharding), [{
      build($_builder, $_state, input.getType(), input, sharding, nullptr);
    }]>
  ];
  let assemblyFormat = "$input `to` $sharding attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

class CG_UnaryOp<string mnemonic, Type operandType, list<Trait> traits = []>
    : CG_Op<mnemonic, !listconcat(traits, [Pure, SameOperandsAndResultType,
                                           Elementwise, CG_TensorParallelOpInterface])> {
  let arguments = (ins operandType:$input);
  let results = (outs operandType:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def CG_NegOp : CG_UnaryOp<"neg", CG_NumericTensor> { let summary = "-x"; }
def CG_AbsOp : CG_UnaryOp<"abs", CG_NumericTensor> { let summary = "|x|"; }
def CG_SqrtOp : CG_UnaryOp<"sqrt", CG_FloatTensor> { let summary = "sqrt(x)"; }
def CG_RsqrtOp : CG_UnaryOp<"rsqrt", CG_FloatTensor> { let summary = "1/sqrt(x)"; }
def CG_ExpOp : CG_UnaryOp<"exp", CG_FloatTensor> { let summary = "e^x"; }
def CG_LogOp : CG_UnaryOp<"log", CG_FloatTensor> { let summary = "ln(x)"; }
def CG_TanhOp : CG_UnaryOp<"tanh", CG_FloatTensor> { let summary = "tanh(x)"; }
def CG_ErfOp : CG_UnaryOp<"erf", CG_FloatTensor> { let summary = "erf(x)"; }
def CG_SinOp : CG_UnaryOp<"sin", CG_FloatTensor> { let summary = "sin(x)"; }
def CG_FloorOp : CG_UnaryOp<"floor", CG_FloatTensor> { let summary = "the largest integer <= x (zero gradient)"; }
def CG_CeilOp : CG_UnaryOp<"ceil", CG_FloatTensor> { let summary = "the smallest integer >= x (zero gradient)"; }
def CG_RoundOp : CG_UnaryOp<"round", CG_FloatTensor> { let summary = "the nearest integer, halves to even (zero gradient)"; }
def CG_CosOp : CG_UnaryOp<"cos", CG_FloatTensor> { let summary = "cos(x)"; }
def CG_ReciprocalOp : CG_UnaryOp<"reciprocal", CG_FloatTensor> {
  let summary = "1/x";
}
def CG_ReluOp : CG_UnaryOp<"relu", CG_NumericTensor> { let summary = "max(x, 0)"; }
def CG_SigmoidOp : CG_UnaryOp<"sigmoid", CG_FloatTensor> {
  let summary = "1/(1+e^-x)";
}
def CG_SiluOp : CG_UnaryOp<"silu", CG_FloatTensor> { let summary = "x*sigmoid(x)"; }
def CG_NotOp : CG_UnaryOp<"not", CG_BoolTensor> { let summary = "logical not"; }

def CG_GeluOp : CG_Op<"gelu", [CG_TensorParallelOpInterface, Pure, SameOperandsAndResultType, Elementwise]> {
  let summary = "Gaussian error linear unit";
  let description = [{
    `x * 0.5 * (1 + erf(x / sqrt(2)))`, or with `approximate = tanh` the tanh
    form `0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))`.
  }];
  let arguments = (ins CG_FloatTensor:$input,
      DefaultValuedAttr<CG_GeluApproximationAttr,
                        "::mlir::colossal::cg::GeluApproximation::none">:$approximate);
  let results = (outs CG_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

class CG_BinaryOp<string mnemonic, Type operandType, list<Trait> traits = []>
    : CG_Op<mnemonic, !listconcat(traits, [Pure, SameOperandsElementType,
          InferTypeOpAdaptor, CG_TensorParallelOpInterface])> {
  let description = [{
    Elementwise with numpy-style broadcasting of the two operands.
  }];
  let arguments = (ins operandType:$lhs, operandType:$rhs);
  let results = (outs CG_Tensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
}

def CG_AddOp : CG_BinaryOp<"add", CG_NumericTensor, [Commutative]> { let summary = "a+b"; }
def CG_SubOp : CG_BinaryOp<"sub", CG_NumericTensor> { let summary = "a-b"; }
def CG_MulOp : CG_BinaryOp<"mul", CG_NumericTensor, [Commutative]> { let summary = "a*b"; }
def CG_DivOp : CG_BinaryOp<"div", CG_NumericTensor> { let summary = "a/b"; }
def CG_PowOp : CG_BinaryOp<"pow", CG_FloatTensor> { let summary = "a^b"; }
def CG_MaxOp : CG_BinaryOp<"max", CG_NumericTensor, [Commutative]> {
  let summary = "max(a, b)";
}
def CG_MinOp : CG_BinaryOp<"min", CG_NumericTensor, [Commutative]> {
  let summary = "min(a, b)";
}
def CG_AndOp : CG_BinaryOp<"and", CG_BoolTensor, [Commutative]> {
  let summary = "logical and";
}
def CG_OrOp : CG_BinaryOp<"or", CG_BoolTensor, [Commutative]> {
  let summary = "logical or";
}

def CG_CmpOp : CG_Op<"cmp", [CG_TensorParallelOpInterface, Pure, SameOperandsElementType,
    InferTypeOpAdaptor]> {
  let summary = "Elementwise comparison with broadcasting, giving i1";
  let arguments = (ins CG_CmpPredicateAttr:$predicate, CG_Tensor:$lhs,
                       CG_Tensor:$rhs);
  let results = (outs CG_BoolTensor:$result);
  let assemblyFormat = "$predicate `,` $lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
}

def CG_WhereOp : CG_Op<"where", [CG_TensorParallelOpInterface, Pure,
    InferTypeOpAdaptor]> {
  let summary = "cond ? x : y, elementwise with broadcasting";
  let arguments = (ins CG_BoolTensor:$condition, CG_Tensor:$x, CG_Tensor:$y);
  let results = (outs CG_Tensor:$result);
  let assemblyFormat = "$condition `,` $x `,` $y attr-dict `:` functional-type(operands, results)";
}

def CG_CastOp : CG_Op<"cast", [CG_TensorParallelOpInterface, Pure, SameOperandsAndResultShape]> {
  let summary = "Converts the element type";
  let arguments = (ins CG_Tensor:$input);
  let results = (outs CG_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `to` type($result)";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Normalization and softmax
//===----------------------------------------------------------------------===//

def CG_SoftmaxOp : CG_Op<"softmax", [DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure, SameOperandsAndResultType]> {
  let summary = "softmax along `axis`";
  let arguments = (ins CG_FloatTensor:$input, I64Attr:$axis);
  let results = (outs CG_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def CG_LogSoftmaxOp : CG_Op<"log_softmax", [DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure, SameOperandsAndResultType]> {
  let summary = "log(softmax) along `axis`";
  let arguments = (ins CG_FloatTensor:$input, I64Attr:$axis);
  let results = (outs CG_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def CG_LayerNormOp : CG_Op<"layer_norm", [DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure]> {
  let summary = "Layer normalization over dimensions [axis, rank)";
  let description = [{
    `(x - mean) / sqrt(var + epsilon) * scale + bias`, statistics over the
    trailing dimensions starting at `axis`; `scale` and `bias` have the shape
    of those dimensions.
  }];
  let arguments = (ins CG_FloatTensor:$input, CG_FloatTensor:$scale,
                       Optional<CG_FloatTensor>:$bias, I64Attr:$axis,
                       F64Attr:$epsilon);
  let results = (outs CG_FloatTensor:$result);
  let assemblyFormat = "$input `,` $scale (`,` $bias^)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def CG_RmsNormOp : CG_Op<"rms_norm", [DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure]> {
  let summary = "Root-mean-square normalization over dimensions [axis, rank)";
  let description = [{ `x / sqrt(mean(x^2) + epsilon) * scale`. }];
  let arguments = (ins CG_FloatTensor:$input, CG_FloatTensor:$scale,
                       I64Attr:$axis, F64Attr:$epsilon);
  let results = (outs CG_FloatTensor:$result);
  let assemblyFormat = "$input `,` $scale attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def CG_BatchNormOp : CG_Op<"batch_norm", [DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure]> {
  let summary = "Batch normalization with running statistics (inference)";
  let description = [{
    Channels are dimension 1: `(x - mean) / sqrt(var + epsilon) * scale + bias`.
  }];
  let arguments = (ins CG_FloatTensor:$input, CG_FloatTensor:$scale,
                       CG_FloatTensor:$bias, CG_FloatTensor:$mean,
                       CG_FloatTensor:$variance, F64Attr:$epsilon);
  let results = (outs CG_FloatTensor:$result);
  let assemblyFormat = "$input `,` $scale `,` $bias `,` $mean `,` $variance attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Contractions
//===----------------------------------------------------------------------===//

def CG_MatMulOp : CG_Op<"matmul", [DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure, SameOperandsElementType,
    InferTypeOpAdaptor]> {
  let summary = "Batched matrix product with numpy broadcasting";
  let description = [{
    numpy.matmul semantics: 1-D operands are promoted to matrices, leading
    (batch) dimensions broadcast. With `transpose_lhs` (`transpose_rhs`) the
    operand holds its matrix with the last two dimensions swapped, as a GEMM
    takes a transposed operand: set only by `colossal-fold-into-gemm` on
    the programs about to be planned, which folds explicit transposes into
    the contraction (the passes before it see plain matmuls).
  }];
  let arguments = (ins CG_NumericTensor:$lhs, CG_NumericTensor:$rhs,
                       UnitAttr:$transpose_lhs, UnitAttr:$transpose_rhs);
  let results = (outs CG_NumericTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
}

def CG_FusedElementwiseOp : CG_Op<"fused_elementwise", [Pure]> {
  let summary = "A chain of float32 elementwise ops over one shape, run as one kernel";
  let description = [{
    Formed by `colossal-fuse-elementwise` on the programs about to be
    planned: `steps` names the ops in order ("mul,add,sqrt"), `args` gives
    two value indices per step (inputs first, then earlier steps; -1 for a
    unary step's second), `yields` the step each result is. Every input has
    the region's element count or one element (a scalar broadcast over it);
    every result has the region's shape. The values between the steps are
    never stored, so they take no memory and no bandwidth.

    ```mlir
    %r = cg.fused_elementwise %m, %g, %b1 {steps = "mul,add", args = array<i64: 0, 2, 3, 1>, yields = array<i64: 1>} : (tensor<64xf32>, tensor<64xf32>, tensor<f32>) -> tensor<64xf32>
    ```
  }];
  let arguments = (ins Variadic<F32Tensor>:$inputs, StrAttr:$steps,
                       DenseI64ArrayAttr:$args, DenseI64ArrayAttr:$yields);
  let results = (outs Variadic<F32Tensor>:$values);
  let assemblyFormat = "$inputs attr-dict `:` functional-type($inputs, $values)";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The ops `steps` may name, binary ones first.
    static ::llvm::ArrayRef<::llvm::StringRef> binarySteps();
    static ::llvm::ArrayRef<::llvm::StringRef> unarySteps();
  }];
}

def CG_LinearOp : CG_Op<"linear", [DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure,
    InferTypeOpAdaptor]> {
  let summary = "x @ W + b, W of shape [in, out] (or [out, in] when transposed)";
  let arguments = (ins CG_FloatTensor:$input, CG_FloatTensor:$weight,
                       Optional<CG_FloatTensor>:$bias,
                       UnitAttr:$transpose_weight);
  let results = (outs CG_FloatTensor:$result);
  let assemblyFormat = "$input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)";
}

def CG_AttentionOp : CG_Op<"attention", [DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure,
    InferTypeOpAdaptor]> {
  let summary = "Scaled dot-product attention";
  let description = [{
    `softmax(q @ k^T * scale + mask) @ v`, over operands shaped
    `[batch..., seq_q, d]`, `[batch..., seq_kv, d]`, `[batch..., seq_kv, d_v]`.
    With `causal`, position i attends to positions <= i (aligned at the end
    when seq_kv > seq_q). `mask`, broadcastable to `[batch..., seq_q,
    seq_kv]`, is added when float and keeps the positions where it is true
    when i1. Formed by `colossal-fuse-attention` from the matmul, scale, mask,
    softmax, matmul pattern.
  }];
  let arguments = (ins CG_FloatTensor:$query, CG_FloatTensor:$key,
                       CG_FloatTensor:$value, Optional<CG_Tensor>:$mask,
                       F64Attr:$scale, UnitAttr:$causal);
  let results = (outs CG_FloatTensor:$result);
  let assemblyFormat = "$query `,` $key `,` $value (`,` $mask^)? attr-dict `:` functional-type(operands, results)";
}

def CG_AttentionBackwardOp : CG_Op<"attention_backward", [Pure]> {
  let summary = "Gradients of scaled dot-product attention w.r.t. q, k and v";
  let description = [{
    Given the operands of a `cg.attention` (same `scale`, `causal` and
    mask), its result `out` and the gradient `grad` reaching it, the
    gradients of the query, the key and the value, as flash attention's
    backward computes them: the scores are recomputed block by block and no
    `[seq_q, seq_kv]` matrix outlives its block. Built by `colossal-autodiff
    {attention=fused}`; a float mask's own gradient is not among its
    results.

    ```mlir
    %dq, %dk, %dv = cg.attention_backward %q, %k, %v, %o, %g {scale = 0.25 : f64, causal} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>)
    ```
  }];
  let arguments = (ins CG_FloatTensor:$query, CG_FloatTensor:$key,
                       CG_FloatTensor:$value, CG_FloatTensor:$out,
                       CG_FloatTensor:$grad, Optional<CG_Tensor>:$mask,
                       F64Attr:$scale, UnitAttr:$causal);
  let results = (outs CG_FloatTensor:$query_grad, CG_FloatTensor:$key_grad,
                      CG_FloatTensor:$value_grad);
  let assemblyFormat = "$query `,` $key `,` $value `,` $out `,` $grad (`,` $mask^)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def CG_Conv2DOp : CG_Op<"conv2d", [DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure,
    InferTypeOpAdaptor]> {
  let summary = "2-D convolution, NCHW input, OIHW weight";
  let arguments = (ins CG_FloatTensor:$input, CG_FloatTensor:$weight,
                       Optional<CG_FloatTensor>:$bias,
                       DenseI64ArrayAttr:$strides,
                       DenseI64ArrayAttr:$padding, // top, left, bottom, right
                       DenseI64ArrayAttr:$dilations,
                       I64Attr:$groups);
  let results = (outs CG_FloatTensor:$result);
  let assemblyFormat = "$input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)";
}

class CG_Pool2DOp<string mnemonic> : CG_Op<mnemonic, [Pure,
    DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>,
    InferTypeOpAdaptor]> {
  let arguments = (ins CG_FloatTensor:$input,
                       DenseI64ArrayAttr:$kernel,
                       DenseI64ArrayAttr:$strides,
                       DenseI64ArrayAttr:$padding, // top, left, bottom, right
                       UnitAttr:$ceil_mode,
                       UnitAttr:$count_include_pad);
  let results = (outs CG_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}

def CG_MaxPool2DOp : CG_Pool2DOp<"max_pool2d"> {
  let summary = "2-D max pooling over NCHW (padding never wins)";
}
def CG_AvgPool2DOp : CG_Pool2DOp<"avg_pool2d"> {
  let summary = "2-D average pooling over NCHW";
}

//===----------------------------------------------------------------------===//
// Convolution and pooling gradients
//===----------------------------------------------------------------------===//

def CG_Conv2DBackwardInputOp : CG_Op<"conv2d_backward_input", [
    DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure,
    SameOperandsAndResultElementType]> {
  let summary = "Gradient of conv2d with respect to its input";
  let description = [{
    Given `grad` = dL/dy of `y = conv2d(x, weight)` (same attributes), the
    result is dL/dx: the transposed convolution of `grad` with `weight`.
    The result type is stated because strided convolutions map several
    input sizes to one output size; the verifier checks that conv2d of the
    result type with `weight` gives `grad`'s shape.

    ```mlir
    %dx = cg.conv2d_backward_input %g, %w {strides = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1} : (tensor<2x8x4x4xf32>, tensor<8x3x3x3xf32>) -> tensor<2x3x8x8xf32>
    ```
  }];
  let arguments = (ins CG_FloatTensor:$grad, CG_FloatTensor:$weight,
                       DenseI64ArrayAttr:$strides,
                       DenseI64ArrayAttr:$padding, // top, left, bottom, right
                       DenseI64ArrayAttr:$dilations,
                       I64Attr:$groups);
  let results = (outs CG_FloatTensor:$result);
  let assemblyFormat = "$grad `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def CG_Conv2DBackwardWeightOp : CG_Op<"conv2d_backward_weight", [
    DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure,
    SameOperandsAndResultElementType]> {
  let summary = "Gradient of conv2d with respect to its weight";
  let description = [{
    Given the conv2d `input` and `grad` = dL/dy (same attributes), the result
    is dL/dweight, OIHW, summed over the batch. The result type states the
    kernel size; the verifier checks it against the two operands.
  }];
  let arguments = (ins CG_FloatTensor:$input, CG_FloatTensor:$grad,
                       DenseI64ArrayAttr:$strides,
                       DenseI64ArrayAttr:$padding, // top, left, bottom, right
                       DenseI64ArrayAttr:$dilations,
                       I64Attr:$groups);
  let results = (outs CG_FloatTensor:$result);
  let assemblyFormat = "$input `,` $grad attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def CG_MaxPool2DBackwardOp : CG_Op<"max_pool2d_backward", [
    DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure,
    SameOperandsAndResultElementType]> {
  let summary = "Gradient of max_pool2d with respect to its input";
  let description = [{
    Each element of `grad` (dL/dy of `max_pool2d(input)`, same attributes)
    goes to the first position, in row-major window order, holding its
    window's maximum; overlapping windows add up. The result has `input`'s
    type.
  }];
  let arguments = (ins CG_FloatTensor:$input, CG_FloatTensor:$grad,
                       DenseI64ArrayAttr:$kernel,
                       DenseI64ArrayAttr:$strides,
                       DenseI64ArrayAttr:$padding, // top, left, bottom, right
                       UnitAttr:$ceil_mode);
  let results = (outs CG_FloatTensor:$result);
  let assemblyFormat = "$input `,` $grad attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

class CG_ReduceOp<string mnemonic> : CG_Op<mnemonic, [Pure,
    DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>,
    SameOperandsAndResultElementType,
    InferTypeOpAdaptor]> {
  let arguments = (ins CG_NumericTensor:$input, DenseI64ArrayAttr:$axes,
                       UnitAttr:$keepdims);
  let results = (outs CG_NumericTensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}

def CG_ReduceSumOp : CG_ReduceOp<"reduce_sum"> { let summary = "sum over axes"; }
def CG_ReduceMeanOp : CG_ReduceOp<"reduce_mean"> { let summary = "mean over axes"; }
def CG_ReduceMaxOp : CG_ReduceOp<"reduce_max"> { let summary = "max over axes"; }

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

def CG_ReshapeOp : CG_Op<"reshape", [DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure, SameOperandsAndResultElementType]> {
  let summary = "Same elements, row-major, new static shape";
  let arguments = (ins CG_Tensor:$input);
  let results = (outs CG_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def CG_TransposeOp : CG_Op<"transpose", [DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure, SameOperandsAndResultElementType,
    InferTypeOpAdaptor]> {
  let summary = "Permutes dimensions: result dim i is input dim permutation[i]";
  let arguments = (ins CG_Tensor:$input, DenseI64ArrayAttr:$permutation);
  let results = (outs CG_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}

def CG_SliceOp : CG_Op<"slice", [DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure, SameOperandsAndResultElementType,
    InferTypeOpAdaptor]> {
  let summary = "Strided slice with static, normalized bounds per dimension";
  let description = [{
    For every dimension `d`: elements `start[d], start[d]+step[d], ...`,
    stopping before `limit[d]`. Steps may be negative (then `limit` may be
    -1 to run through index 0).
  }];
  let arguments = (ins CG_Tensor:$input, DenseI64ArrayAttr:$starts,
                       DenseI64ArrayAttr:$limits, DenseI64ArrayAttr:$steps);
  let results = (outs CG_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}

def CG_ConcatOp : CG_Op<"concat", [DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure, SameOperandsAndResultElementType,
    InferTypeOpAdaptor]> {
  let summary = "Concatenates along `axis`";
  let arguments = (ins Variadic<CG_Tensor>:$inputs, I64Attr:$axis);
  let results = (outs CG_Tensor:$result);
  let assemblyFormat = "$inputs attr-dict `:` functional-type(operands, results)";
}

def CG_SplitOp : CG_Op<"split", [DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure]> {
  let summary = "Splits along `axis` into pieces of the given sizes";
  let arguments = (ins CG_Tensor:$input, I64Attr:$axis,
                       DenseI64ArrayAttr:$sizes);
  let results = (outs Variadic<CG_Tensor>:$results);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def CG_TopKOp : CG_Op<"topk", [DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure]> {
  let summary = "The k largest (or smallest) elements along `axis`, sorted, with their indices";
  let description = [{
    `values` and `indices` have the input's shape with `axis` of size `k`:
    along the axis, the k largest elements in descending order (smallest,
    ascending, without `largest`); among equal values the lower index comes
    first, and NaN counts as larger than every number (as numpy's sort).
    `indices` (i64) are positions along the axis.
  }];
  let arguments = (ins CG_NumericTensor:$input, I64Attr:$k, I64Attr:$axis,
                       UnitAttr:$smallest);
  let results = (outs CG_NumericTensor:$values, I64Tensor:$indices);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def CG_GatherOp : CG_Op<"gather", [DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure,
    InferTypeOpAdaptor]> {
  let summary = "Takes slices of `input` along `axis` at `indices` (embedding lookup)";
  let description = [{
    Result shape: `input.shape[:axis] + indices.shape + input.shape[axis+1:]`.
    Negative indices count from the end, as in ONNX.
  }];
  let arguments = (ins CG_Tensor:$input, CG_IndexTensor:$indices,
                       I64Attr:$axis);
  let results = (outs CG_Tensor:$result);
  let assemblyFormat = "$input `,` $indices attr-dict `:` functional-type(operands, results)";
}

def CG_ScatterAddRowsOp : CG_Op<"scatter_add_rows", [
    DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure]> {
  let summary = "Adds rows of `updates` into a zero tensor at the rows `indices` name";
  let description = [{
    `result[indices[i], :] += updates[i, :]` over a zero `[rows, width]`
    result: the gradient of an embedding lookup (gather along axis 0), which
    touches only the looked-up rows instead of multiplying by a one-hot
    matrix. Indices outside `[0, rows)` add nothing (the caller wraps
    negative ones).

    ```mlir
    %g = cg.scatter_add_rows %ids, %d : (tensor<512xi64>, tensor<512x768xf32>) -> tensor<50257x768xf32>
    ```
  }];
  let arguments = (ins CG_IndexTensor:$indices, CG_FloatTensor:$updates);
  let results = (outs CG_FloatTensor:$result);
  let assemblyFormat = "$indices `,` $updates attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def CG_ExpandOp : CG_Op<"expand", [CG_TensorParallelOpInterface, Pure, SameOperandsAndResultElementType]> {
  let summary = "Broadcasts to the result shape (numpy rules)";
  let arguments = (ins CG_Tensor:$input);
  let results = (outs CG_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def CG_TriluOp : CG_Op<"trilu", [DeclareOpInterfaceMethods<CG_TensorParallelOpInterface, ["getTensorParallelStrategies"]>, Pure, SameOperandsAndResultType]> {
  let summary = "Keeps the lower (or upper) triangle of the last two dimensions";
  let description = [{
    Lower: element (i, j) is kept when `j <= i + diagonal`; upper: when
    `j >= i + diagonal`. Other elements become zero (false). Decoders build
    their causal masks from it.
  }];
  let arguments = (ins CG_Tensor:$input, UnitAttr:$upper,
                       DefaultValuedAttr<I64Attr, "0">:$diagonal);
  let results = (outs CG_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}

#endif // COLOSSAL_DIALECTS_GRAPH_IR_GRAPHOPS_TD
