//===- ImportContext.h - State shared by the ONNX op converters -*- C++ -*-===//
//
// Internal to the importer. A value of the ONNX graph is imported as an SSA
// value of the graph dialect, as a host-side constant (`HostTensor`) that
// shape arithmetic folds, or both. Converters, one per ONNX op type and
// grouped by family (ConvertMath, ConvertNN, ConvertTensor), read their node
// through `NodeContext`.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_FRONTENDS_ONNX_IMPORTCONTEXT_H
#define COLOSSAL_FRONTENDS_ONNX_IMPORTCONTEXT_H

#include "dialects/Graph/IR/GraphOps.h"
#include "frontends/onnx/OnnxImporter.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/StringMap.h"

#include "onnx/onnx_pb.h"

#include <optional>
#include <string>
#include <vector>

namespace mlir::colossal::onnx {

using cg::Shape;

/// A constant tensor held on the host while importing. Integers are kept
/// exactly (shape values use INT64_MAX as "to the end"); floating-point
/// values are rounded to their element type after every folded operation.
struct HostTensor {
  Type elementType;
  Shape shape;
  bool splat = false;
  std::vector<int64_t> ints;
  std::vector<double> floats;

  bool isFloat() const { return isa<FloatType>(elementType); }
  int64_t size() const { return cg::numElements(shape); }
  int64_t intAt(int64_t i) const {
    const int64_t k = splat ? 0 : i;
    return isFloat() ? static_cast<int64_t>(floats[k]) : ints[k];
  }
  double floatAt(int64_t i) const {
    const int64_t k = splat ? 0 : i;
    return isFloat() ? floats[k] : static_cast<double>(ints[k]);
  }
  /// Values as int64 (for shapes, axes, indices).
  std::vector<int64_t> toInts() const;
  /// A copy without splat compression.
  HostTensor expanded() const;

  static HostTensor ofInts(Type elementType, Shape shape,
                           std::vector<int64_t> values);
  static HostTensor ofFloats(Type elementType, Shape shape,
                             std::vector<double> values);
};

/// Rounds `value` to what `type` can hold (f32, f16, bf16 or f64).
double roundToType(double value, Type type);

/// What an ONNX value name stands for while importing.
struct ImportedValue {
  RankedTensorType type;
  Value value;                        // materialized lazily for constants
  std::optional<HostTensor> constant; // known at compile time
};

class Importer;

/// One ONNX node being converted.
class NodeContext {
public:
  NodeContext(Importer &importer, const ::onnx::NodeProto &node, int index,
              Location loc, int64_t opset);

  const ::onnx::NodeProto &node() const { return node_; }
  StringRef opType() const { return node_.op_type(); }
  int64_t opset() const { return opset_; }
  Location loc() const { return loc_; }
  OpBuilder &builder();
  /// The options of this import.
  const ImportOptions &options() const;
  MLIRContext *context();

  /// Starts an error about this node ("node 'x' (MatMul, opset 17): ...";
  /// unnamed nodes are named by their position, "node #3").
  InFlightDiagnostic error();

  // Inputs. Optional inputs may be absent (empty name or past the end).
  unsigned numInputs() const { return node_.input_size(); }
  bool hasInput(unsigned i) const;
  ImportedValue &input(unsigned i);
  RankedTensorType inputType(unsigned i) { return input(i).type; }
  /// The input as an SSA value, materializing constants.
  Value value(unsigned i);
  /// The input's compile-time value, if it has one.
  const HostTensor *constant(unsigned i);
  /// The input's compile-time value as int64s, or an error naming `what`.
  FailureOr<std::vector<int64_t>> constantInts(unsigned i, StringRef what);

  // Outputs.
  unsigned numOutputs() const { return node_.output_size(); }
  /// True when output `i` exists and something reads it.
  bool outputUsed(unsigned i) const;
  void setOutput(unsigned i, Value value);
  void setConstantOutput(unsigned i, HostTensor tensor);

  // Attributes.
  const ::onnx::AttributeProto *attr(StringRef name) const;
  int64_t intAttr(StringRef name, int64_t fallback) const;
  double floatAttr(StringRef name, double fallback) const;
  std::string stringAttr(StringRef name, StringRef fallback) const;
  std::vector<int64_t> intsAttr(StringRef name) const;
  /// The integer attribute `name` (default `fallback`) as an axis of a
  /// rank-`rank` tensor, negative ones counted from the end; an error
  /// naming the axis and the rank when it is out of range.
  FailureOr<int64_t> axisAttr(StringRef name, int64_t fallback, int64_t rank);

  /// Builds an op whose result type is inferred, turning an inference
  /// failure into an error about this node instead of an abort.
  template <typename OpT, typename... Args>
  FailureOr<Value> create(Args &&...args) {
    OperationState state(loc_, OpT::getOperationName());
    OpT::build(builder(), state, Type(), std::forward<Args>(args)...);
    state.types.clear();
    SmallVector<Type> types;
    if (failed(inferTypes(
            [&](SmallVectorImpl<Type> &out) {
              return OpT::inferReturnTypes(
                  context(), loc_, state.operands,
                  state.attributes.getDictionary(context()),
                  state.getRawProperties(), state.regions, out);
            },
            types)))
      return failure();
    state.addTypes(types);
    return builder().create(state)->getResult(0);
  }

  /// Builds an op with an explicit result type.
  template <typename OpT, typename... Args>
  Value createTyped(Type type, Args &&...args) {
    return builder().create<OpT>(loc_, type, std::forward<Args>(args)...);
  }

  /// A scalar constant of `elementType` (f32/f16/bf16/i64/i32/i1).
  Value scalar(double v, Type elementType);
  /// Reshapes `v` to `shape` (no-op when it already has that shape).
  Value reshape(Value v, ArrayRef<int64_t> shape);

private:
  LogicalResult
  inferTypes(function_ref<LogicalResult(SmallVectorImpl<Type> &)> infer,
             SmallVectorImpl<Type> &types);

  Importer &importer_;
  const ::onnx::NodeProto &node_;
  int index_;
  Location loc_;
  int64_t opset_;
};

/// Builds an expression of graph ops over one element type,
/// remembering the first failure (its diagnostic is already emitted).
struct Chain {
  NodeContext &c;
  Type f;
  bool failed = false;

  Value s(double v) { return c.scalar(v, f); }
  template <typename OpT> Value un(Value a) {
    return c.createTyped<OpT>(a.getType(), a);
  }
  /// `OpT(args...)` with its inferred type; after a failure, `fallback`.
  template <typename OpT, typename... Args>
  Value make(Value fallback, Args &&...args) {
    if (failed)
      return fallback;
    auto r = c.create<OpT>(std::forward<Args>(args)...);
    if (mlir::failed(r)) {
      failed = true;
      return fallback;
    }
    return *r;
  }
  template <typename OpT> Value bin(Value a, Value b) {
    return make<OpT>(a, a, b);
  }
  Value cmp(cg::CmpPredicate p, Value a, Value b) {
    return make<cg::CmpOp>(a, p, a, b);
  }
  Value where(Value cond, Value a, Value b) {
    return make<cg::WhereOp>(a, cond, a, b);
  }
  LogicalResult output(Value v) {
    if (failed)
      return failure();
    c.setOutput(0, v);
    return success();
  }
};

/// log(1 + exp(x)) without overflow: max(x, 0) + log(1 + exp(-|x|)).
Value softplus(Chain &e, Value x);

using Converter = LogicalResult (*)(NodeContext &);

/// A converter and the inputs its op takes: the first `minInputs` must be
/// present, at most `maxInputs` may be given (-1: any number, all present).
/// The importer checks this before calling `convert`, so converters may
/// read their required inputs without checking.
struct ConverterInfo {
  Converter convert = nullptr;
  int minInputs = 0;
  int maxInputs = 0;
};
using ConverterTable = llvm::StringMap<ConverterInfo>;

void registerMathConverters(ConverterTable &table);
void registerNNConverters(ConverterTable &table);
void registerTensorConverters(ConverterTable &table);
void registerCompositeConverters(ConverterTable &table);
void registerResizeConverters(ConverterTable &table);
void registerScatterConverters(ConverterTable &table);
void registerRecurrentConverters(ConverterTable &table);
void registerEinsumConverters(ConverterTable &table);

/// Element type of an ONNX TensorProto data type; null when unsupported.
Type elementTypeOf(MLIRContext *context, int32_t onnxType);
/// Name of an ONNX data type, for messages.
std::string onnxTypeName(int32_t onnxType);

/// Converts an ONNX value to a host constant. Fails for external data.
FailureOr<HostTensor> hostTensorFromProto(MLIRContext *context,
                                          const ::onnx::TensorProto &proto,
                                          std::string &error);

/// Materializes a host constant as a cg.constant; null (with an error
/// emitted at `loc`) when its element type cannot live in the IR.
Value materializeConstant(OpBuilder &builder, Location loc,
                          const HostTensor &tensor);

/// Cast of a host constant to another element type (ONNX Cast semantics).
HostTensor castHostTensor(const HostTensor &tensor, Type to);

/// Elementwise fold with numpy broadcasting. Computes in double when the
/// inputs are floating-point, else in int64; the result has `resultType`
/// elements. Returns nullopt when the result would be too large to fold.
std::optional<HostTensor>
foldElementwise(ArrayRef<const HostTensor *> inputs, Type resultType,
                function_ref<double(ArrayRef<double>)> floatFn,
                function_ref<int64_t(ArrayRef<int64_t>)> intFn);

/// Largest constant that folding produces; bigger results stay in the IR.
constexpr int64_t kMaxFoldElements = 1 << 16;

} // namespace mlir::colossal::onnx

#endif // COLOSSAL_FRONTENDS_ONNX_IMPORTCONTEXT_H
