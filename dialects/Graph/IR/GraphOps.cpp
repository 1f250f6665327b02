//===- GraphOps.cpp - Shape inference, verifiers and folders of cg ops ----===//
//
// Result types are inferred from operands and attributes wherever they can
// be, so that the importer and passes build ops without stating types and
// the verifier rejects any disagreement with a message naming the shapes.
//
//===----------------------------------------------------------------------===//

#include "dialects/Graph/IR/GraphOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using namespace mlir::colossal::cg;

/// Emits an error at `loc` when there is one; always returns failure.
static LogicalResult inferError(std::optional<Location> loc, const Twine &msg) {
  return emitOptionalError(loc, msg);
}

static std::string shapeStr(ArrayRef<int64_t> shape) {
  std::string s = "[";
  llvm::raw_string_ostream os(s);
  llvm::interleaveComma(shape, os);
  os << "]";
  return os.str();
}

static RankedTensorType tensorOf(ArrayRef<int64_t> shape, Type elementType) {
  return RankedTensorType::get(shape, elementType);
}

static ShapedType shapedOf(Value v) { return cast<ShapedType>(v.getType()); }

//===----------------------------------------------------------------------===//
// Parameters and constants
//===----------------------------------------------------------------------===//

LogicalResult DropoutOp::verify() {
  double r = getRatio().convertToDouble();
  if (!(r >= 0 && r < 1))
    return emitOpError("ratio must lie in [0, 1), got ") << r;
  return success();
}

LogicalResult RandomKeepOp::verify() {
  double r = getRatio().convertToDouble();
  if (!(r >= 0 && r < 1))
    return emitOpError("ratio must lie in [0, 1), got ") << r;
  if (cast<ShapedType>(getCounter().getType()).getRank() != 0)
    return emitOpError("counter must be a scalar");
  return success();
}

LogicalResult AssignOp::verify() {
  auto param = getParam().getDefiningOp<ParamOp>();
  if (!param)
    return emitOpError("writes into a value that is not a cg.param; only "
                       "parameters hold state between runs");
  Block *block = getOperation()->getBlock();
  for (Operation *user : getParam().getUsers()) {
    if (user == getOperation())
      continue;
    if (auto other = dyn_cast<AssignOp>(user))
      if (other.getParam() == getParam())
        return emitOpError("parameter '")
               << param.getName() << "' is assigned more than once";
    if (user->getBlock() == block && getOperation()->isBeforeInBlock(user))
      return emitOpError("parameter '")
             << param.getName()
             << "' is read after it is assigned; the assignment must be its "
                "last use";
  }
  return success();
}

LogicalResult ParamOp::verify() {
  if (getName().empty())
    return emitOpError("needs a non-empty name");
  Attribute source = getSourceAttr();
  if (!source)
    return success();
  auto type = cast<ShapedType>(getType());
  if (auto elements = dyn_cast<ElementsAttr>(source)) {
    // A per-device piece (colossal-partition) keeps the whole value.
    bool piece =
        (*this)->hasAttr("cg.shard_of") &&
        elements.getShapedType().getElementType() == type.getElementType() &&
        elements.getShapedType().getRank() == type.getRank();
    if (elements.getShapedType() != type && !piece)
      return emitOpError("inline value of type ")
             << elements.getShapedType() << " does not match the result type "
             << type;
    return success();
  }
  if (auto external = dyn_cast<ExternalDataAttr>(source)) {
    int64_t bits = type.getElementTypeBitWidth();
    int64_t expected = (numElements(type.getShape()) * bits + 7) / 8;
    if (external.getOffset() < 0)
      return emitOpError("external data offset must not be negative");
    if (external.getLength() != expected)
      return emitOpError("external data holds ")
             << external.getLength() << " bytes but " << type << " needs "
             << expected;
    return success();
  }
  if (isa<InitializerAttr>(source))
    return success();
  return emitOpError("source must be #cg.external, #cg.initializer or "
                     "inline elements, got ")
         << source;
}

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }

//===----------------------------------------------------------------------===//
// Sharding annotations
//===----------------------------------------------------------------------===//

LogicalResult ShardOp::verifySymbolUses(SymbolTableCollection &symbols) {
  auto mesh = symbols.lookupNearestSymbolFrom<MeshOp>(getOperation(),
                                                      getSharding().getMesh());
  if (!mesh)
    return emitOpError("refers to ")
           << getSharding().getMesh() << ", which is not a cg.mesh";
  if (failed(getSharding().verifyFor([&] { return emitOpError(); },
                                     mesh.getMesh(),
                                     cast<ShapedType>(getType()))))
    return failure();
  if (auto grad = getGradShardingAttr()) {
    if (grad.getMesh() != getSharding().getMesh())
      return emitOpError("grad_sharding must use the mesh of sharding (")
             << getSharding().getMesh() << ")";
    return grad.verifyFor([&] { return emitOpError("grad_sharding: "); },
                          mesh.getMesh(), cast<ShapedType>(getType()));
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Elementwise with broadcasting
//===----------------------------------------------------------------------===//

static LogicalResult inferBroadcast(std::optional<Location> loc,
                                    ValueRange operands, Type elementType,
                                    SmallVectorImpl<Type> &results) {
  Shape shape;
  for (Value operand : operands) {
    auto next = broadcastShapes(shape, shapedOf(operand).getShape());
    if (!next)
      return inferError(loc, "operand shapes " + shapeStr(shape) + " and " +
                                 shapeStr(shapedOf(operand).getShape()) +
                                 " do not broadcast");
    shape = *next;
  }
  results.push_back(tensorOf(shape, elementType));
  return success();
}

#define CG_INFER_BINARY(OP)                                                    \
  LogicalResult OP::inferReturnTypes(                                          \
      MLIRContext *, std::optional<Location> loc, Adaptor adaptor,             \
      SmallVectorImpl<Type> &results) {                                        \
    return inferBroadcast(loc, {adaptor.getLhs(), adaptor.getRhs()},           \
                          shapedOf(adaptor.getLhs()).getElementType(),         \
                          results);                                            \
  }
CG_INFER_BINARY(AddOp)
CG_INFER_BINARY(SubOp)
CG_INFER_BINARY(MulOp)
CG_INFER_BINARY(DivOp)
CG_INFER_BINARY(PowOp)
CG_INFER_BINARY(MaxOp)
CG_INFER_BINARY(MinOp)
CG_INFER_BINARY(AndOp)
CG_INFER_BINARY(OrOp)
#undef CG_INFER_BINARY

LogicalResult CmpOp::inferReturnTypes(MLIRContext *context,
                                      std::optional<Location> loc,
                                      Adaptor adaptor,
                                      SmallVectorImpl<Type> &results) {
  return inferBroadcast(loc, {adaptor.getLhs(), adaptor.getRhs()},
                        IntegerType::get(context, 1), results);
}

LogicalResult WhereOp::inferReturnTypes(MLIRContext *,
                                        std::optional<Location> loc,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &results) {
  Type x = shapedOf(adaptor.getX()).getElementType();
  Type y = shapedOf(adaptor.getY()).getElementType();
  if (x != y)
    return inferError(loc, "where's branches have different element types");
  return inferBroadcast(
      loc, {adaptor.getCondition(), adaptor.getX(), adaptor.getY()}, x,
      results);
}

OpFoldResult CastOp::fold(FoldAdaptor) {
  if (getInput().getType() == getType())
    return getInput();
  return {};
}

//===----------------------------------------------------------------------===//
// Normalization and softmax
//===----------------------------------------------------------------------===//

static LogicalResult verifyAxis(Operation *op, int64_t axis, int64_t rank) {
  if (!normalizeAxis(axis, rank))
    return op->emitOpError("axis ")
           << axis << " is out of range for rank " << rank;
  return success();
}

LogicalResult SoftmaxOp::verify() {
  return verifyAxis(*this, getAxis(), shapedOf(getInput()).getRank());
}

LogicalResult LogSoftmaxOp::verify() {
  return verifyAxis(*this, getAxis(), shapedOf(getInput()).getRank());
}

/// Checks that `param` has the shape of the dimensions [axis, rank) of the
/// input, as layer_norm and rms_norm require of their scale and bias.
static LogicalResult verifyNormParam(Operation *op, ShapedType input,
                                     int64_t axis, Value param,
                                     StringRef what) {
  if (failed(verifyAxis(op, axis, input.getRank())))
    return failure();
  int64_t first = *normalizeAxis(axis, input.getRank());
  ArrayRef<int64_t> expected = input.getShape().drop_front(first);
  auto type = shapedOf(param);
  if (type.getShape() != expected)
    return op->emitOpError()
           << what << " has shape " << shapeStr(type.getShape())
           << " but the normalized dimensions are " << shapeStr(expected);
  if (type.getElementType() != input.getElementType())
    return op->emitOpError()
           << what << " has element type " << type.getElementType()
           << " but the input has " << input.getElementType();
  return success();
}

static LogicalResult verifyEpsilon(Operation *op, double epsilon) {
  if (!(epsilon >= 0))
    return op->emitOpError("epsilon must not be negative, got ") << epsilon;
  return success();
}

LogicalResult LayerNormOp::verify() {
  auto input = shapedOf(getInput());
  if (getType() != input)
    return emitOpError("result type must equal the input type");
  if (failed(verifyEpsilon(*this, getEpsilon().convertToDouble())) ||
      failed(verifyNormParam(*this, input, getAxis(), getScale(), "scale")))
    return failure();
  if (getBias())
    return verifyNormParam(*this, input, getAxis(), getBias(), "bias");
  return success();
}

LogicalResult RmsNormOp::verify() {
  auto input = shapedOf(getInput());
  if (getType() != input)
    return emitOpError("result type must equal the input type");
  if (failed(verifyEpsilon(*this, getEpsilon().convertToDouble())))
    return failure();
  return verifyNormParam(*this, input, getAxis(), getScale(), "scale");
}

LogicalResult BatchNormOp::verify() {
  auto input = shapedOf(getInput());
  if (getType() != input)
    return emitOpError("result type must equal the input type");
  if (input.getRank() < 2)
    return emitOpError("input needs a channel dimension (rank >= 2), got rank ")
           << input.getRank();
  if (failed(verifyEpsilon(*this, getEpsilon().convertToDouble())))
    return failure();
  int64_t channels = input.getDimSize(1);
  static const char *const names[] = {"scale", "bias", "mean", "variance"};
  Value operands[] = {getScale(), getBias(), getMean(), getVariance()};
  for (auto [name, value] : llvm::zip(names, operands)) {
    auto type = shapedOf(value);
    if (type.getRank() != 1 || type.getDimSize(0) != channels)
      return emitOpError() << name << " must have shape [" << channels
                           << "] (the channel count), got "
                           << shapeStr(type.getShape());
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Contractions
//===----------------------------------------------------------------------===//

LogicalResult MatMulOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  auto lhs = shapedOf(adaptor.getLhs()), rhs = shapedOf(adaptor.getRhs());
  // A transposed operand's matrix is its last two dimensions swapped.
  auto logical = [&](ShapedType type, bool transposed,
                     StringRef which) -> FailureOr<Shape> {
    Shape s(type.getShape().begin(), type.getShape().end());
    if (!transposed)
      return s;
    if (s.size() < 2) {
      (void)inferError(loc, "matmul transpose_" + which.str() +
                                " needs an operand of rank >= 2, got " +
                                shapeStr(type.getShape()));
      return failure();
    }
    std::swap(s[s.size() - 1], s[s.size() - 2]);
    return s;
  };
  auto l = logical(lhs, adaptor.getTransposeLhs(), "lhs");
  auto r = logical(rhs, adaptor.getTransposeRhs(), "rhs");
  if (failed(l) || failed(r))
    return failure();
  auto shape = matmulShape(*l, *r);
  if (!shape)
    return inferError(loc, "matmul operands " + shapeStr(*l) + " and " +
                               shapeStr(*r) + " are incompatible");
  results.push_back(tensorOf(*shape, lhs.getElementType()));
  return success();
}

ArrayRef<StringRef> FusedElementwiseOp::binarySteps() {
  static const StringRef names[] = {"add", "sub", "mul", "div",
                                    "pow", "max", "min"};
  return names;
}

ArrayRef<StringRef> FusedElementwiseOp::unarySteps() {
  static const StringRef names[] = {
      "neg",   "abs",  "relu",  "sqrt",    "rsqrt", "exp",
      "log",   "tanh", "erf",   "sin",     "cos",   "reciprocal",
      "floor", "ceil", "round", "sigmoid", "silu"};
  return names;
}

LogicalResult FusedElementwiseOp::verify() {
  SmallVector<StringRef> names;
  getSteps().split(names, ',');
  ArrayRef<int64_t> args = getArgs(), yields = getYields();
  int64_t numInputs = getInputs().size();
  if (getSteps().empty() || args.size() != 2 * names.size())
    return emitOpError("needs two args per step, got ")
           << args.size() << " for " << names.size() << " steps";
  for (auto [i, name] : llvm::enumerate(names)) {
    bool binary = llvm::is_contained(binarySteps(), name);
    if (!binary && !llvm::is_contained(unarySteps(), name))
      return emitOpError("step '") << name << "' is not a fusible op";
    int64_t limit = numInputs + static_cast<int64_t>(i);
    int64_t a = args[2 * i], b = args[2 * i + 1];
    if (a < 0 || a >= limit || (binary ? b < 0 || b >= limit : b != -1))
      return emitOpError("step ")
             << i << " (" << name
             << ") must read inputs or earlier steps (and a unary step -1 "
                "as its second)";
  }
  if (yields.size() != getValues().size() || getValues().empty())
    return emitOpError("needs one yielded step per result");
  auto shape = cast<ShapedType>(getValues()[0].getType());
  for (auto [v, step] : llvm::zip(getValues(), yields)) {
    if (v.getType() != shape)
      return emitOpError("results must share one type");
    if (step < 0 || step >= static_cast<int64_t>(names.size()))
      return emitOpError("yields step ") << step << ", which does not exist";
  }
  for (Value in : getInputs()) {
    auto t = cast<ShapedType>(in.getType());
    if (t.getNumElements() != 1 && t.getShape() != shape.getShape())
      return emitOpError("input ")
             << t << " has neither the region's shape nor one element";
  }
  return success();
}

LogicalResult LinearOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  auto input = shapedOf(adaptor.getInput());
  auto weight = shapedOf(adaptor.getWeight());
  if (input.getRank() < 1 || weight.getRank() != 2)
    return inferError(loc, "linear needs an input of rank >= 1 and a 2-D "
                           "weight, got " +
                               shapeStr(input.getShape()) + " and " +
                               shapeStr(weight.getShape()));
  bool transposed = adaptor.getTransposeWeight();
  int64_t in = weight.getDimSize(transposed ? 1 : 0);
  int64_t out = weight.getDimSize(transposed ? 0 : 1);
  if (input.getShape().back() != in)
    return inferError(loc, "linear input " + shapeStr(input.getShape()) +
                               " does not match weight " +
                               shapeStr(weight.getShape()) +
                               (transposed ? " (transposed)" : ""));
  if (input.getElementType() != weight.getElementType())
    return inferError(loc, "linear input and weight element types differ");
  if (Value bias = adaptor.getBias()) {
    auto biasType = shapedOf(bias);
    if (!isBroadcastableTo(biasType.getShape(), {out}))
      return inferError(loc, "linear bias " + shapeStr(biasType.getShape()) +
                                 " does not broadcast to [" +
                                 std::to_string(out) + "]");
  }
  Shape shape(input.getShape().begin(), input.getShape().end());
  shape.back() = out;
  results.push_back(tensorOf(shape, input.getElementType()));
  return success();
}

/// The result type of attention over `query`, `key`, `value` and `mask`
/// (may be null), or an error at `loc`.
static FailureOr<Type> attentionResultType(std::optional<Location> loc,
                                           Value query, Value key, Value value,
                                           Value mask) {
  auto q = shapedOf(query), k = shapedOf(key), v = shapedOf(value);
  if (q.getRank() < 2 || k.getRank() != q.getRank() ||
      v.getRank() != q.getRank())
    return inferError(loc, "attention needs query, key and value of one rank "
                           ">= 2");
  int64_t r = q.getRank();
  if (q.getDimSize(r - 1) != k.getDimSize(r - 1))
    return inferError(loc, "attention query " + shapeStr(q.getShape()) +
                               " and key " + shapeStr(k.getShape()) +
                               " differ in head size");
  if (k.getDimSize(r - 2) != v.getDimSize(r - 2))
    return inferError(loc, "attention key " + shapeStr(k.getShape()) +
                               " and value " + shapeStr(v.getShape()) +
                               " differ in sequence length");
  if (q.getShape().drop_back(2) != k.getShape().drop_back(2) ||
      q.getShape().drop_back(2) != v.getShape().drop_back(2))
    return inferError(loc, "attention operands differ in batch dimensions");
  if (q.getElementType() != k.getElementType() ||
      q.getElementType() != v.getElementType())
    return inferError(loc, "attention operands differ in element type");
  Shape scores(q.getShape().begin(), q.getShape().end());
  scores.back() = k.getDimSize(r - 2);
  if (mask) {
    auto maskType = shapedOf(mask);
    if (!isBroadcastableTo(maskType.getShape(), scores))
      return inferError(loc, "attention mask " + shapeStr(maskType.getShape()) +
                                 " does not broadcast to the scores " +
                                 shapeStr(scores));
    Type maskElement = maskType.getElementType();
    if (!maskElement.isInteger(1) && maskElement != q.getElementType())
      return inferError(loc, "attention mask must be i1 or of the query's "
                             "element type");
  }
  Shape shape(q.getShape().begin(), q.getShape().end());
  shape.back() = v.getDimSize(r - 1);
  return Type(tensorOf(shape, q.getElementType()));
}

LogicalResult AttentionOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  auto type = attentionResultType(loc, adaptor.getQuery(), adaptor.getKey(),
                                  adaptor.getValue(), adaptor.getMask());
  if (failed(type))
    return failure();
  results.push_back(*type);
  return success();
}

LogicalResult AttentionBackwardOp::verify() {
  auto type = attentionResultType(getLoc(), getQuery(), getKey(), getValue(),
                                  getMask());
  if (failed(type))
    return failure();
  if (getOut().getType() != *type || getGrad().getType() != *type)
    return emitOpError("out ")
           << getOut().getType() << " and grad " << getGrad().getType()
           << " must both be the attention's result " << *type;
  if (getQueryGrad().getType() != getQuery().getType() ||
      getKeyGrad().getType() != getKey().getType() ||
      getValueGrad().getType() != getValue().getType())
    return emitOpError("results must have the types of query, key and value");
  return success();
}

//===----------------------------------------------------------------------===//
// Convolution and pooling
//===----------------------------------------------------------------------===//

/// Checks stride/padding/dilation arrays of a 2-D window op and computes the
/// spatial output size.
static LogicalResult inferWindow(std::optional<Location> loc, StringRef op,
                                 ShapedType input, ArrayRef<int64_t> kernel,
                                 ArrayRef<int64_t> strides,
                                 ArrayRef<int64_t> padding,
                                 ArrayRef<int64_t> dilations, bool ceilMode,
                                 int64_t &outH, int64_t &outW) {
  if (input.getRank() != 4)
    return inferError(loc, op + " needs an NCHW input of rank 4, got " +
                               shapeStr(input.getShape()));
  if (kernel.size() != 2 || strides.size() != 2 || padding.size() != 4 ||
      dilations.size() != 2)
    return inferError(loc, op + " needs 2 kernel sizes, 2 strides, 4 paddings "
                                "and 2 dilations");
  auto h = windowOutputSize(input.getDimSize(2), kernel[0], strides[0],
                            padding[0], padding[2], dilations[0], ceilMode);
  auto w = windowOutputSize(input.getDimSize(3), kernel[1], strides[1],
                            padding[1], padding[3], dilations[1], ceilMode);
  if (!h || !w)
    return inferError(loc, op + " window does not fit the input " +
                               shapeStr(input.getShape()));
  outH = *h;
  outW = *w;
  return success();
}

LogicalResult Conv2DOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  auto input = shapedOf(adaptor.getInput());
  auto weight = shapedOf(adaptor.getWeight());
  int64_t groups = adaptor.getGroups();
  if (weight.getRank() != 4)
    return inferError(loc, "conv2d weight must be OIHW (rank 4), got " +
                               shapeStr(weight.getShape()));
  if (groups < 1 || input.getRank() != 4 ||
      input.getDimSize(1) != weight.getDimSize(1) * groups ||
      weight.getDimSize(0) % groups != 0)
    return inferError(loc, "conv2d input " + shapeStr(input.getShape()) +
                               " does not match weight " +
                               shapeStr(weight.getShape()) + " with " +
                               std::to_string(groups) + " group(s)");
  int64_t outH, outW;
  if (failed(inferWindow(loc, "conv2d", input,
                         {weight.getDimSize(2), weight.getDimSize(3)},
                         adaptor.getStrides(), adaptor.getPadding(),
                         adaptor.getDilations(), false, outH, outW)))
    return failure();
  if (Value bias = adaptor.getBias()) {
    auto biasType = shapedOf(bias);
    if (biasType.getRank() != 1 ||
        biasType.getDimSize(0) != weight.getDimSize(0))
      return inferError(loc, "conv2d bias must have one element per output "
                             "channel");
  }
  results.push_back(
      tensorOf({input.getDimSize(0), weight.getDimSize(0), outH, outW},
               input.getElementType()));
  return success();
}

static LogicalResult inferPool(std::optional<Location> loc, StringRef op,
                               ShapedType input, ArrayRef<int64_t> kernel,
                               ArrayRef<int64_t> strides,
                               ArrayRef<int64_t> padding, bool ceilMode,
                               SmallVectorImpl<Type> &results) {
  int64_t outH, outW;
  if (failed(inferWindow(loc, op, input, kernel, strides, padding, {1, 1},
                         ceilMode, outH, outW)))
    return failure();
  if (kernel.size() == 2 &&
      (padding[0] >= kernel[0] || padding[2] >= kernel[0] ||
       padding[1] >= kernel[1] || padding[3] >= kernel[1]))
    return inferError(loc, op + " padding must be smaller than the kernel");
  results.push_back(
      tensorOf({input.getDimSize(0), input.getDimSize(1), outH, outW},
               input.getElementType()));
  return success();
}

LogicalResult MaxPool2DOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  return inferPool(loc, "max_pool2d", shapedOf(adaptor.getInput()),
                   adaptor.getKernel(), adaptor.getStrides(),
                   adaptor.getPadding(), adaptor.getCeilMode(), results);
}

LogicalResult AvgPool2DOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  return inferPool(loc, "avg_pool2d", shapedOf(adaptor.getInput()),
                   adaptor.getKernel(), adaptor.getStrides(),
                   adaptor.getPadding(), adaptor.getCeilMode(), results);
}

/// Checks that conv2d of `input` with `weight` (shapes only) has `grad`'s
/// shape: the contract both conv2d gradient ops share.
static LogicalResult verifyConvGradShapes(Operation *op, ShapedType input,
                                          ShapedType weight, ShapedType grad,
                                          ArrayRef<int64_t> strides,
                                          ArrayRef<int64_t> padding,
                                          ArrayRef<int64_t> dilations,
                                          int64_t groups) {
  if (weight.getRank() != 4 || grad.getRank() != 4)
    return op->emitOpError("needs NCHW gradients and an OIHW weight, got ")
           << shapeStr(grad.getShape()) << " and "
           << shapeStr(weight.getShape());
  if (groups < 1 || input.getRank() != 4 ||
      input.getDimSize(1) != weight.getDimSize(1) * groups ||
      weight.getDimSize(0) % groups != 0)
    return op->emitOpError("input ")
           << shapeStr(input.getShape()) << " does not match weight "
           << shapeStr(weight.getShape()) << " with " << groups << " group(s)";
  int64_t outH, outW;
  if (failed(inferWindow(op->getLoc(), op->getName().getStringRef(), input,
                         {weight.getDimSize(2), weight.getDimSize(3)}, strides,
                         padding, dilations, false, outH, outW)))
    return failure();
  SmallVector<int64_t> expect = {input.getDimSize(0), weight.getDimSize(0),
                                 outH, outW};
  if (grad.getShape() != ArrayRef<int64_t>(expect))
    return op->emitOpError("gradient shape ")
           << shapeStr(grad.getShape()) << " is not conv2d's result shape "
           << shapeStr(expect);
  return success();
}

LogicalResult Conv2DBackwardInputOp::verify() {
  return verifyConvGradShapes(
      *this, shapedOf(getResult()), shapedOf(getWeight()), shapedOf(getGrad()),
      getStrides(), getPadding(), getDilations(), getGroups());
}

LogicalResult Conv2DBackwardWeightOp::verify() {
  return verifyConvGradShapes(
      *this, shapedOf(getInput()), shapedOf(getResult()), shapedOf(getGrad()),
      getStrides(), getPadding(), getDilations(), getGroups());
}

LogicalResult ScatterAddRowsOp::verify() {
  auto idx = shapedOf(getIndices());
  auto upd = shapedOf(getUpdates());
  auto res = shapedOf(getResult());
  if (idx.getRank() != 1 || upd.getRank() != 2 || res.getRank() != 2)
    return emitOpError("takes indices [n] and updates [n, width] to a result "
                       "[rows, width]");
  if (upd.getElementType() != res.getElementType())
    return emitOpError("updates and result must have one element type");
  if (idx.getDimSize(0) != upd.getDimSize(0) ||
      upd.getDimSize(1) != res.getDimSize(1))
    return emitOpError("indices ")
           << idx << ", updates " << upd << " and result " << res
           << " disagree (indices [n], updates [n, width], result [rows, "
              "width])";
  return success();
}

LogicalResult MaxPool2DBackwardOp::verify() {
  auto input = shapedOf(getInput());
  if (getResult().getType() != getInput().getType())
    return emitOpError("result type must equal the input type");
  SmallVector<Type> pooled;
  if (failed(inferPool(getLoc(), "max_pool2d_backward", input, getKernel(),
                       getStrides(), getPadding(), getCeilMode(), pooled)))
    return failure();
  if (pooled[0] != getGrad().getType())
    return emitOpError("gradient type ")
           << getGrad().getType() << " is not max_pool2d's result type "
           << pooled[0];
  return success();
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

static LogicalResult inferReduce(std::optional<Location> loc, ShapedType input,
                                 ArrayRef<int64_t> axes, bool keepdims,
                                 SmallVectorImpl<Type> &results) {
  int64_t rank = input.getRank();
  SmallVector<bool> reduced(rank, false);
  for (int64_t axis : axes) {
    auto normalized = normalizeAxis(axis, rank);
    if (!normalized)
      return inferError(loc, "reduction axis " + std::to_string(axis) +
                                 " is out of range for rank " +
                                 std::to_string(rank));
    if (reduced[*normalized])
      return inferError(loc, "reduction axis " + std::to_string(axis) +
                                 " is listed twice");
    reduced[*normalized] = true;
  }
  Shape shape;
  for (int64_t d = 0; d < rank; ++d) {
    if (!reduced[d])
      shape.push_back(input.getDimSize(d));
    else if (keepdims)
      shape.push_back(1);
  }
  results.push_back(tensorOf(shape, input.getElementType()));
  return success();
}

#define CG_INFER_REDUCE(OP)                                                    \
  LogicalResult OP::inferReturnTypes(                                          \
      MLIRContext *, std::optional<Location> loc, Adaptor adaptor,             \
      SmallVectorImpl<Type> &results) {                                        \
    return inferReduce(loc, shapedOf(adaptor.getInput()), adaptor.getAxes(),   \
                       adaptor.getKeepdims(), results);                        \
  }
CG_INFER_REDUCE(ReduceSumOp)
CG_INFER_REDUCE(ReduceMeanOp)
CG_INFER_REDUCE(ReduceMaxOp)
#undef CG_INFER_REDUCE

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

LogicalResult ReshapeOp::verify() {
  auto input = shapedOf(getInput()), result = cast<ShapedType>(getType());
  if (numElements(input.getShape()) != numElements(result.getShape()))
    return emitOpError("cannot reshape ")
           << shapeStr(input.getShape()) << " ("
           << numElements(input.getShape()) << " elements) to "
           << shapeStr(result.getShape()) << " ("
           << numElements(result.getShape()) << " elements)";
  return success();
}

OpFoldResult ReshapeOp::fold(FoldAdaptor adaptor) {
  if (getInput().getType() == getType())
    return getInput();
  if (auto producer = getInput().getDefiningOp<ReshapeOp>()) {
    getInputMutable().assign(producer.getInput());
    return getResult();
  }
  if (auto elements = dyn_cast_or_null<DenseElementsAttr>(adaptor.getInput()))
    return elements.reshape(cast<ShapedType>(getType()));
  return {};
}

LogicalResult TransposeOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  auto input = shapedOf(adaptor.getInput());
  ArrayRef<int64_t> perm = adaptor.getPermutation();
  if (static_cast<int64_t>(perm.size()) != input.getRank())
    return inferError(loc, "transpose permutation " + shapeStr(perm) +
                               " does not match rank " +
                               std::to_string(input.getRank()));
  SmallVector<bool> seen(perm.size(), false);
  Shape shape;
  for (int64_t p : perm) {
    if (p < 0 || p >= input.getRank() || seen[p])
      return inferError(loc, "transpose permutation " + shapeStr(perm) +
                                 " is not a permutation");
    seen[p] = true;
    shape.push_back(input.getDimSize(p));
  }
  results.push_back(tensorOf(shape, input.getElementType()));
  return success();
}

LogicalResult SliceOp::inferReturnTypes(MLIRContext *,
                                        std::optional<Location> loc,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &results) {
  auto input = shapedOf(adaptor.getInput());
  ArrayRef<int64_t> starts = adaptor.getStarts(), limits = adaptor.getLimits(),
                    steps = adaptor.getSteps();
  int64_t rank = input.getRank();
  if (static_cast<int64_t>(starts.size()) != rank ||
      static_cast<int64_t>(limits.size()) != rank ||
      static_cast<int64_t>(steps.size()) != rank)
    return inferError(loc, "slice needs one start, limit and step per "
                           "dimension (rank " +
                               std::to_string(rank) + ")");
  Shape shape;
  for (int64_t d = 0; d < rank; ++d) {
    int64_t size = input.getDimSize(d);
    bool ok = steps[d] > 0
                  ? (starts[d] >= 0 && starts[d] <= size && limits[d] >= 0 &&
                     limits[d] <= size)
                  : (steps[d] < 0 && starts[d] >= -1 && starts[d] < size &&
                     limits[d] >= -1 && limits[d] < size);
    if (!ok)
      return inferError(
          loc, "slice bounds start " + std::to_string(starts[d]) + ", limit " +
                   std::to_string(limits[d]) + ", step " +
                   std::to_string(steps[d]) + " are invalid for dimension " +
                   std::to_string(d) + " of size " + std::to_string(size));
    shape.push_back(sliceLength(starts[d], limits[d], steps[d]));
  }
  results.push_back(tensorOf(shape, input.getElementType()));
  return success();
}

LogicalResult ConcatOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  ValueRange inputs = adaptor.getInputs();
  if (inputs.empty())
    return inferError(loc, "concat needs at least one input");
  auto first = shapedOf(inputs.front());
  auto axis = normalizeAxis(adaptor.getAxis(), first.getRank());
  if (!axis)
    return inferError(
        loc, "concat axis " +
                 std::to_string(static_cast<int64_t>(adaptor.getAxis())) +
                 " is out of range for rank " +
                 std::to_string(first.getRank()));
  Shape shape(first.getShape().begin(), first.getShape().end());
  shape[*axis] = 0;
  for (Value input : inputs) {
    auto type = shapedOf(input);
    if (type.getRank() != first.getRank())
      return inferError(loc, "concat inputs differ in rank");
    for (int64_t d = 0; d < type.getRank(); ++d)
      if (d != *axis && type.getDimSize(d) != first.getDimSize(d))
        return inferError(loc, "concat inputs " + shapeStr(first.getShape()) +
                                   " and " + shapeStr(type.getShape()) +
                                   " differ outside the axis");
    shape[*axis] += type.getDimSize(*axis);
  }
  results.push_back(tensorOf(shape, first.getElementType()));
  return success();
}

LogicalResult TopKOp::verify() {
  auto input = shapedOf(getInput());
  auto axis = normalizeAxis(getAxis(), input.getRank());
  if (!axis)
    return emitOpError("axis ")
           << static_cast<int64_t>(getAxis()) << " is out of range for rank "
           << input.getRank();
  const int64_t k = getK();
  if (k < 0 || k > input.getDimSize(*axis))
    return emitOpError("k = ") << k << " is not between 0 and the axis' size "
                               << input.getDimSize(*axis);
  Shape expected(input.getShape().begin(), input.getShape().end());
  expected[*axis] = k;
  if (getValues().getType() != tensorOf(expected, input.getElementType()))
    return emitOpError("values type ")
           << getValues().getType() << " is not " << shapeStr(expected)
           << " of the input's element type";
  if (shapedOf(getIndices()).getShape() != ArrayRef<int64_t>(expected))
    return emitOpError("indices type ")
           << getIndices().getType() << " is not " << shapeStr(expected);
  return success();
}

LogicalResult SplitOp::verify() {
  auto input = shapedOf(getInput());
  auto axis = normalizeAxis(getAxis(), input.getRank());
  if (!axis)
    return emitOpError("axis ")
           << static_cast<int64_t>(getAxis()) << " is out of range for rank "
           << input.getRank();
  ArrayRef<int64_t> sizes = getSizes();
  if (sizes.size() != getNumResults())
    return emitOpError("has ")
           << getNumResults() << " results but " << sizes.size() << " sizes";
  int64_t total = 0;
  for (auto [size, result] : llvm::zip(sizes, getResults())) {
    if (size < 0)
      return emitOpError("split sizes must not be negative");
    total += size;
    Shape expected(input.getShape().begin(), input.getShape().end());
    expected[*axis] = size;
    if (result.getType() != tensorOf(expected, input.getElementType()))
      return emitOpError("result type ")
             << result.getType() << " does not match piece "
             << shapeStr(expected);
  }
  if (total != input.getDimSize(*axis))
    return emitOpError("split sizes add up to ")
           << total << " but dimension " << *axis << " has size "
           << input.getDimSize(*axis);
  return success();
}

LogicalResult GatherOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  auto input = shapedOf(adaptor.getInput());
  auto indices = shapedOf(adaptor.getIndices());
  auto axis = normalizeAxis(adaptor.getAxis(), input.getRank());
  if (!axis)
    return inferError(
        loc, "gather axis " +
                 std::to_string(static_cast<int64_t>(adaptor.getAxis())) +
                 " is out of range for rank " +
                 std::to_string(input.getRank()));
  Shape shape(input.getShape().begin(), input.getShape().begin() + *axis);
  shape.append(indices.getShape().begin(), indices.getShape().end());
  shape.append(input.getShape().begin() + *axis + 1, input.getShape().end());
  results.push_back(tensorOf(shape, input.getElementType()));
  return success();
}

LogicalResult ExpandOp::verify() {
  auto input = shapedOf(getInput()), result = cast<ShapedType>(getType());
  if (!isBroadcastableTo(input.getShape(), result.getShape()))
    return emitOpError("cannot broadcast ")
           << shapeStr(input.getShape()) << " to "
           << shapeStr(result.getShape());
  return success();
}

OpFoldResult ExpandOp::fold(FoldAdaptor adaptor) {
  if (getInput().getType() == getType())
    return getInput();
  if (auto elements = dyn_cast_or_null<SplatElementsAttr>(adaptor.getInput()))
    return elements.resizeSplat(cast<ShapedType>(getType()));
  return {};
}

LogicalResult TriluOp::verify() {
  if (shapedOf(getInput()).getRank() < 2)
    return emitOpError("needs a tensor of rank >= 2");
  return success();
}

#define GET_OP_CLASSES
#include "dialects/Graph/IR/GraphOps.cpp.inc"
