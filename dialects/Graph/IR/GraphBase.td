//===- GraphBase.td - The cg dialect, its types and attributes -*- tablegen -*-===//
//
// The graph dialect holds a whole model with single-device semantics, plus
// the sharding vocabulary (meshes with named axes, per-dimension shardings
// with pending partial sums) that the auto-parallel search writes onto it.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_DIALECTS_GRAPH_IR_GRAPHBASE_TD
#define COLOSSAL_DIALECTS_GRAPH_IR_GRAPHBASE_TD

include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"
include "mlir/IR/CommonAttrConstraints.td"
include "mlir/IR/CommonTypeConstraints.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/OpBase.td"

def CG_Dialect : Dialect {
  let name = "cg";
  let cppNamespace = "::mlir::colossal::cg";
  let summary = "Colossal's graph dialect: whole models, single-device semantics";
  let description = [{
    Operations over ranked, statically shaped tensors that cover transformer
    language models, encoders, MLPs and convolutional networks. Values may
    carry sharding annotations (`cg.shard`, or a `cg.sharding` attribute per
    result) that refer to a `cg.mesh` symbol with named axes.
  }];
  let useDefaultAttributePrinterParser = 1;
  let hasConstantMaterializer = 1;
  let hasOperationAttrVerify = 1;
  let hasRegionArgAttrVerify = 1;
  let hasRegionResultAttrVerify = 1;
  let extraClassDeclaration = [{
    void registerAttributes();

    /// Name of the discardable attribute holding one sharding per result.
    static constexpr ::llvm::StringLiteral getShardingAttrName() {
      return ::llvm::StringLiteral("cg.sharding");
    }
  }];
}

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

def CG_ElementType : AnyTypeOf<[F32, F16, BF16, F64, I64, I32, I1]>;
def CG_FloatType : AnyTypeOf<[F32, F16, BF16, F64]>;
def CG_IndexElementType : AnyTypeOf<[I64, I32]>;

def CG_Tensor : StaticShapeTensorOf<[F32, F16, BF16, F64, I64, I32, I1]>;
def CG_FloatTensor : StaticShapeTensorOf<[F32, F16, BF16, F64]>;
def CG_NumericTensor : StaticShapeTensorOf<[F32, F16, BF16, F64, I64, I32]>;
def CG_IndexTensor : StaticShapeTensorOf<[I64, I32]>;
def CG_BoolTensor : StaticShapeTensorOf<[I1]>;

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def CG_CmpPredicate : I32EnumAttr<"CmpPredicate", "comparison predicate", [
    I32EnumAttrCase<"eq", 0>, I32EnumAttrCase<"ne", 1>,
    I32EnumAttrCase<"lt", 2>, I32EnumAttrCase<"le", 3>,
    I32EnumAttrCase<"gt", 4>, I32EnumAttrCase<"ge", 5>]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::colossal::cg";
}
def CG_CmpPredicateAttr : EnumAttr<CG_Dialect, CG_CmpPredicate, "cmp_predicate">;

def CG_GeluApproximation : I32EnumAttr<"GeluApproximation",
    "approximation used by gelu", [
    I32EnumAttrCase<"none", 0>, I32EnumAttrCase<"tanh", 1>]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::colossal::cg";
}
def CG_GeluApproximationAttr
    : EnumAttr<CG_Dialect, CG_GeluApproximation, "gelu_approximation">;

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

class CG_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<CG_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

def CG_MeshAttr : CG_Attr<"Mesh", "mesh"> {
  let summary = "A device mesh: named axes with sizes";
  let description = [{
    Axes are named so that plans read as `dp`, `tp`, `pp` rather than axis
    indices; their order is major to minor (the last axis varies fastest over
    device ids, and is the one laid inside a node).

    ```mlir
    #cg.mesh<["dp" = 4, "tp" = 8]>
    ```
  }];
  let parameters = (ins
    ArrayRefParameter<"::mlir::StringAttr", "axis names">:$axisNames,
    ArrayRefParameter<"int64_t", "axis sizes">:$axisSizes);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Index of the axis called `name`, if there is one.
    std::optional<unsigned> getAxisIndex(::llvm::StringRef name) const;
    /// Size of the axis called `name`; the axis must exist.
    int64_t getAxisSize(::llvm::StringRef name) const;
    /// Number of devices in the mesh.
    int64_t getNumDevices() const;
  }];
}

def CG_ShardingAttr : CG_Attr<"Sharding", "sharding"> {
  let summary = "How a tensor is laid over a mesh";
  let description = [{
    For each tensor dimension, the ordered list of mesh axes it is split over
    (major to minor); dimensions left out at the end are replicated. The
    optional `partial` list names the axes over which the value is a pending
    sum. Every axis appears at most once.

    ```mlir
    // rows split over "dp", columns over "tp", pending sum over "sp"
    #cg.sharding<@mesh, [["dp"], ["tp"]], partial = ["sp"]>
    ```
  }];
  let parameters = (ins
    "::mlir::FlatSymbolRefAttr":$mesh,
    "::mlir::ArrayAttr":$dims,
    OptionalParameter<"::mlir::ArrayAttr">:$partial);
  let assemblyFormat = "`<` $mesh `,` $dims (`,` `partial` `=` $partial^)? `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Axis names that split dimension `dim` (empty when replicated).
    ::llvm::SmallVector<::llvm::StringRef> getDimAxes(unsigned dim) const;
    /// Axis names of pending partial sums.
    ::llvm::SmallVector<::llvm::StringRef> getPartialAxes() const;
    /// Checks this sharding against `mesh` and a value of type `type`: axes
    /// exist, each is used once, and every split dimension divides evenly.
    ::mlir::LogicalResult verifyFor(
        ::llvm::function_ref<::mlir::InFlightDiagnostic()> emitError,
        MeshAttr mesh, ::mlir::ShapedType type) const;
    /// Per-device shape of a tensor of `shape` under this sharding.
    ::llvm::SmallVector<int64_t> getLocalShape(MeshAttr mesh,
                                               ::llvm::ArrayRef<int64_t> shape) const;
  }];
}

def CG_ExternalDataAttr : CG_Attr<"ExternalData", "external"> {
  let summary = "Bytes of a tensor that live in a file beside the model";
  let description = [{
    A reference to `length` bytes at `offset` in `location` (relative to the
    directory of the model, as ONNX external data is). The bytes are not read
    by the compiler.

    ```mlir
    #cg.external<"gpt.data", offset = 0, length = 4096>
    ```
  }];
  let parameters = (ins
    StringRefParameter<"file, relative to the model's directory">:$location,
    "int64_t":$offset,
    "int64_t":$length);
  let assemblyFormat = "`<` $location `,` `offset` `=` $offset `,` `length` `=` $length `>`";
}

def CG_InitializerAttr : CG_Attr<"Initializer", "initializer"> {
  let summary = "An initializer stored inside an ONNX model file";
  let description = [{
    The tensor named `name` among the initializers of the ONNX model at
    `model` (relative to the directory of the model). Its bytes stay in that
    file; the runtime reads them from there.

    ```mlir
    #cg.initializer<"mlp.onnx", "fc1.weight">
    ```
  }];
  let parameters = (ins
    StringRefParameter<"ONNX model file">:$model,
    StringRefParameter<"initializer name">:$name);
  let assemblyFormat = "`<` $model `,` $name `>`";
}

#endif // COLOSSAL_DIALECTS_GRAPH_IR_GRAPHBASE_TD
