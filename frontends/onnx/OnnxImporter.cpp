//===- OnnxImporter.cpp - ONNX models to the cg dialect -------------------===//
//
// The graph-level half of the importer: parsing and checking the model
// (opset, unsupported ops listed all at once, undefined values, cycles),
// binding symbolic dimensions, turning initializers into parameters, and
// walking the nodes in topological order through the per-op converters.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/OnnxImporter.h"
#include "frontends/onnx/ImportContext.h"
#include "frontends/onnx/upgrade/OnnxUpgrade.h"
#include "runtime/core/Npy.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <charconv>
#include <cstring>
#include <map>
#include <set>

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::onnx;

namespace mlir::colossal::onnx {

/// Imports one ModelProto; see OnnxImporter.h.
class Importer {
public:
  Importer(MLIRContext &context, StringRef path, const ImportOptions &options)
      : context(context), builder(&context), path(path.str()),
        options(options) {}

  OwningOpRef<ModuleOp> run(const ::onnx::ModelProto &model);

  MLIRContext &context;
  OpBuilder builder;
  std::string path;
  const ImportOptions &options;
  llvm::StringMap<ImportedValue> values;
  llvm::StringMap<unsigned> uses;
  /// Float initializers that an op reads as an attribute (Resize's roi and
  /// scales): constants, never trainable weights.
  llvm::StringSet<> compileTimeInputs;

  InFlightDiagnostic error() {
    return mlir::emitError(FileLineColLoc::get(&context, path, 0, 0));
  }
  Value materialize(ImportedValue &imported, Location loc) {
    if (!imported.value && imported.constant)
      imported.value = materializeConstant(builder, loc, *imported.constant);
    return imported.value;
  }

private:
  LogicalResult checkOperators(const ::onnx::GraphProto &graph,
                               const ConverterTable &table);
  FailureOr<std::vector<int>> topologicalOrder(const ::onnx::GraphProto &graph);
  FailureOr<RankedTensorType> inputType(const ::onnx::ValueInfoProto &input,
                                        SmallVectorImpl<std::string> &unbound);
  LogicalResult importInitializer(const ::onnx::TensorProto &tensor);
  void retieFoldedTransposes(const ::onnx::GraphProto &graph, ModuleOp module);
  LogicalResult importOutputs(const ::onnx::GraphProto &graph,
                              func::FuncOp func);

  int64_t opset = 0;
};

} // namespace mlir::colossal::onnx

static const ConverterTable &converterTable() {
  static const ConverterTable table = [] {
    ConverterTable t;
    registerMathConverters(t);
    registerNNConverters(t);
    registerTensorConverters(t);
    registerCompositeConverters(t);
    registerResizeConverters(t);
    registerScatterConverters(t);
    registerRecurrentConverters(t);
    registerEinsumConverters(t);
    return t;
  }();
  return table;
}

/// "'name'" for named nodes, "#index" for unnamed ones.
static std::string describeNode(const ::onnx::GraphProto &graph, int index) {
  const std::string &name = graph.node(index).name();
  return name.empty() ? "#" + std::to_string(index) : "'" + name + "'";
}

static bool isDefaultDomain(const std::string &domain) {
  return domain.empty() || domain == "ai.onnx";
}

//===----------------------------------------------------------------------===//
// Model checks
//===----------------------------------------------------------------------===//

LogicalResult Importer::checkOperators(const ::onnx::GraphProto &graph,
                                       const ConverterTable &table) {
  // Gather every unsupported op type with the nodes that use it, so that the
  // user sees the whole list at once rather than one error per attempt.
  llvm::MapVector<std::string, std::vector<std::string>,
                  std::map<std::string, unsigned>>
      unsupported;
  for (int index = 0; index < graph.node_size(); ++index) {
    const auto &node = graph.node(index);
    bool known = isDefaultDomain(node.domain()) && table.count(node.op_type());
    if (known)
      continue;
    std::string type = isDefaultDomain(node.domain())
                           ? node.op_type()
                           : node.domain() + "." + node.op_type();
    unsupported[type].push_back(describeNode(graph, index));
  }
  if (unsupported.empty())
    return success();
  auto diag = error();
  diag << "the model uses " << unsupported.size()
       << " operator type(s) that Colossal does not support at opset " << opset
       << ":";
  for (auto &[type, nodes] : unsupported) {
    diag << "\n  " << type << " (" << nodes.size() << " node"
         << (nodes.size() == 1 ? "" : "s") << ", e.g. node " << nodes.front()
         << ")";
  }
  diag << "\nsee docs/onnx-support.md for the supported operators; "
          "re-export the model without them or file an issue";
  return failure();
}

FailureOr<std::vector<int>>
Importer::topologicalOrder(const ::onnx::GraphProto &graph) {
  // Kahn's algorithm over value names. ONNX requires nodes to be sorted
  // already, but hand-edited models are not always; cycles and undefined
  // values are reported here instead of surfacing as crashes later.
  llvm::StringSet<> defined;
  for (const auto &input : graph.input())
    defined.insert(input.name());
  for (const auto &init : graph.initializer())
    defined.insert(init.name());
  llvm::StringMap<int> producer;
  for (int i = 0; i < graph.node_size(); ++i)
    for (const auto &out : graph.node(i).output()) {
      if (out.empty())
        continue;
      if (defined.count(out) || producer.count(out)) {
        error() << "value '" << out << "' is defined more than once (node '"
                << graph.node(i).name() << "'); ONNX graphs are in SSA form";
        return failure();
      }
      producer[out] = i;
    }
  std::vector<int> pending(graph.node_size(), 0);
  std::vector<std::vector<int>> consumers(graph.node_size());
  for (int i = 0; i < graph.node_size(); ++i) {
    const auto &node = graph.node(i);
    for (const auto &in : node.input()) {
      if (in.empty() || defined.count(in))
        continue;
      auto it = producer.find(in);
      if (it == producer.end()) {
        error() << "node " << describeNode(graph, i) << " (" << node.op_type()
                << ") reads '" << in
                << "', which no node, graph input or initializer defines";
        return failure();
      }
      ++pending[i];
      consumers[it->second].push_back(i);
    }
  }
  // Among the ready nodes, take the earliest: a graph that is already
  // sorted keeps its order (and so do the IR and its diagnostics).
  std::set<int> ready;
  for (int i = 0; i < graph.node_size(); ++i)
    if (pending[i] == 0)
      ready.insert(i);
  std::vector<int> order;
  while (!ready.empty()) {
    int i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    for (int c : consumers[i])
      if (--pending[c] == 0)
        ready.insert(c);
  }
  if (order.size() != static_cast<size_t>(graph.node_size())) {
    for (int i = 0; i < graph.node_size(); ++i)
      if (pending[i] > 0) {
        error() << "the graph has a cycle: node " << describeNode(graph, i)
                << " (" << graph.node(i).op_type()
                << ") depends on its own output";
        return failure();
      }
  }
  for (const auto &out : graph.output())
    if (!defined.count(out.name()) && !producer.count(out.name())) {
      error() << "graph output '" << out.name() << "' is never computed";
      return failure();
    }
  return order;
}

FailureOr<RankedTensorType>
Importer::inputType(const ::onnx::ValueInfoProto &input,
                    SmallVectorImpl<std::string> &unbound) {
  if (!input.type().has_tensor_type()) {
    error() << "graph input '" << input.name()
            << "' is not a tensor; only tensor inputs are supported";
    return failure();
  }
  const auto &tensor = input.type().tensor_type();
  Type element = elementTypeOf(&context, tensor.elem_type());
  if (!element || (isa<IntegerType>(element) && !element.isInteger(64) &&
                   !element.isInteger(32) && !element.isInteger(1))) {
    error() << "graph input '" << input.name() << "' has element type "
            << onnxTypeName(tensor.elem_type())
            << "; supported are float32, float16, bfloat16, float64 (CPU), "
               "int64, int32 and bool";
    return failure();
  }
  if (!tensor.has_shape()) {
    error() << "graph input '" << input.name()
            << "' has no shape; export the model with input shapes";
    return failure();
  }
  Shape shape;
  for (int d = 0; d < tensor.shape().dim_size(); ++d) {
    const auto &dim = tensor.shape().dim(d);
    if (dim.has_dim_value()) {
      if (dim.dim_value() < 0) {
        error() << "graph input '" << input.name() << "' dimension " << d
                << " has size " << dim.dim_value()
                << "; sizes must not be negative";
        return failure();
      }
      shape.push_back(dim.dim_value());
      continue;
    }
    std::string name = dim.has_dim_param() ? dim.dim_param() : "";
    auto it =
        name.empty() ? options.bindings.end() : options.bindings.find(name);
    if (it == options.bindings.end()) {
      unbound.push_back(
          (name.empty() ? std::string("<unnamed>") : "'" + name + "'") +
          " (input '" + input.name() + "', dimension " + std::to_string(d) +
          ")");
      shape.push_back(1);
      continue;
    }
    shape.push_back(it->second);
  }
  return RankedTensorType::get(shape, element);
}

//===----------------------------------------------------------------------===//
// Initializers
//===----------------------------------------------------------------------===//

/// Where an initializer's bytes are: external data, else inside the model.
static Attribute paramSource(MLIRContext *context, StringRef modelPath,
                             const ::onnx::TensorProto &tensor) {
  if (tensor.data_location() == ::onnx::TensorProto::EXTERNAL) {
    std::string location;
    int64_t offset = 0, length = -1;
    for (const auto &entry : tensor.external_data()) {
      if (entry.key() == "location")
        location = entry.value();
      else if (entry.key() == "offset")
        offset = std::atoll(entry.value().c_str());
      else if (entry.key() == "length")
        length = std::atoll(entry.value().c_str());
    }
    return cg::ExternalDataAttr::get(context, location, offset, length);
  }
  return cg::InitializerAttr::get(context, llvm::sys::path::filename(modelPath),
                                  tensor.name());
}

LogicalResult Importer::importInitializer(const ::onnx::TensorProto &tensor) {
  Type element = elementTypeOf(&context, tensor.data_type());
  if (!element) {
    error() << "initializer '" << tensor.name() << "' has element type "
            << onnxTypeName(tensor.data_type()) << ", which is not supported";
    return failure();
  }
  Shape shape(tensor.dims().begin(), tensor.dims().end());
  for (int64_t d : shape)
    if (d < 0) {
      error() << "initializer '" << tensor.name()
              << "' has a negative dimension";
      return failure();
    }
  auto type = RankedTensorType::get(shape, element);
  bool external = tensor.data_location() == ::onnx::TensorProto::EXTERNAL;
  StringRef name = tensor.name();
  bool exporterConstant = name.starts_with("onnx::") || name.starts_with("/") ||
                          name.starts_with("const.") || name.empty();
  bool weight = isa<FloatType>(element) && !compileTimeInputs.count(name) &&
                (cg::numElements(shape) > 1 ||
                 (options.scalarParameters && !exporterConstant));
  ImportedValue imported{type, Value(), std::nullopt};
  if (!external && !weight) {
    // Scalars and integer tensors are constants: shape arithmetic and the
    // attention fusion need their values.
    std::string message;
    auto host = hostTensorFromProto(&context, tensor, message);
    if (failed(host)) {
      error() << "initializer '" << tensor.name() << "': " << message;
      return failure();
    }
    imported.constant = std::move(*host);
  } else {
    if (isa<Float64Type>(element) && options.forTraining) {
      error() << "initializer '" << tensor.name()
              << "' is float64, which a training step cannot update (its "
                 "optimizers run in float32, float16 and bfloat16); convert "
                 "the model's weights to float32 to train it (float64 runs in "
                 "inference on the CPU)";
      return failure();
    }
    Location loc = NameLoc::get(StringAttr::get(&context, tensor.name()),
                                FileLineColLoc::get(&context, path, 0, 0));
    auto source = paramSource(&context, path, tensor);
    auto param = builder.create<cg::ParamOp>(loc, type, tensor.name(), source);
    if (auto ext = dyn_cast<cg::ExternalDataAttr>(source)) {
      int64_t expected =
          cg::numElements(shape) * (type.getElementTypeBitWidth() / 8);
      if (ext.getLength() >= 0 && ext.getLength() != expected) {
        error() << "initializer '" << tensor.name() << "' declares "
                << ext.getLength() << " bytes of external data but " << type
                << " needs " << expected;
        return failure();
      }
      if (ext.getLength() < 0)
        param.setSourceAttr(cg::ExternalDataAttr::get(
            &context, ext.getLocation(), ext.getOffset(), expected));
      if (ext.getLocation().empty()) {
        error() << "initializer '" << tensor.name()
                << "' is external but names no location";
        return failure();
      }
    }
    imported.value = param;
  }
  values[tensor.name()] = std::move(imported);
  return success();
}

/// torch's constant folding stores W^T of a weight that is also used as W
/// (a language model's head tied to its embedding) as an initializer of its
/// own ("onnx::MatMul_12"). A training step must keep the two one weight: the
/// folded copy becomes transpose(W), and the module records it
/// (cg.derived_weights) so an ONNX export rewrites it from the trained W.
void Importer::retieFoldedTransposes(const ::onnx::GraphProto &graph,
                                     ModuleOp module) {
  SmallVector<NamedAttribute> derived;
  for (const auto &a : graph.initializer()) {
    StringRef name = a.name();
    auto ia = values.find(name);
    if (!name.starts_with("onnx::") || a.dims_size() != 2 ||
        ia == values.end() || !ia->second.value ||
        !ia->second.value.getDefiningOp<cg::ParamOp>())
      continue;
    for (const auto &b : graph.initializer()) {
      auto ib = values.find(b.name());
      if (StringRef(b.name()).starts_with("onnx::") || b.dims_size() != 2 ||
          b.dims(0) != a.dims(1) || b.dims(1) != a.dims(0) ||
          b.data_type() != a.data_type() || ib == values.end() ||
          !ib->second.value || !ib->second.value.getDefiningOp<cg::ParamOp>())
        continue;
      // Raw little-endian bytes only (what torch writes); compared element
      // by element, stopping at the first difference.
      const std::string &ra = a.raw_data(), &rb = b.raw_data();
      int64_t rows = a.dims(0), cols = a.dims(1);
      if (ra.empty() || ra.size() != rb.size() || rows * cols == 0 ||
          ra.size() % static_cast<size_t>(rows * cols) != 0)
        continue;
      size_t e = ra.size() / static_cast<size_t>(rows * cols);
      bool same = true;
      for (int64_t i = 0; same && i < rows; ++i)
        for (int64_t j = 0; same && j < cols; ++j)
          same = std::memcmp(ra.data() + (i * cols + j) * e,
                             rb.data() + (j * rows + i) * e, e) == 0;
      if (!same)
        continue;
      auto folded = ia->second.value.getDefiningOp<cg::ParamOp>();
      Value t = builder.create<cg::TransposeOp>(
          folded.getLoc(), folded.getType(), ib->second.value,
          builder.getDenseI64ArrayAttr({1, 0}));
      folded.erase();
      ia->second.value = t;
      derived.push_back(builder.getNamedAttr(
          name, builder.getStringAttr("transpose:" + b.name())));
      break;
    }
  }
  if (!derived.empty())
    module->setAttr("cg.derived_weights", builder.getDictionaryAttr(derived));
}

//===----------------------------------------------------------------------===//
// Outputs
//===----------------------------------------------------------------------===//

LogicalResult Importer::importOutputs(const ::onnx::GraphProto &graph,
                                      func::FuncOp func) {
  SmallVector<Value> results;
  SmallVector<Type> types;
  Location loc = FileLineColLoc::get(&context, path, 0, 0);
  for (const auto &out : graph.output()) {
    auto it = values.find(out.name());
    if (it == values.end()) {
      error() << "graph output '" << out.name()
              << "' is produced by an output the importer dropped";
      return failure();
    }
    Value v = materialize(it->second, loc);
    if (!v)
      return failure();
    auto type = cast<RankedTensorType>(v.getType());
    if (out.type().has_tensor_type()) {
      const auto &declared = out.type().tensor_type();
      Type element = elementTypeOf(&context, declared.elem_type());
      if (declared.elem_type() != 0 && element &&
          element != type.getElementType()) {
        error() << "graph output '" << out.name() << "' is declared "
                << onnxTypeName(declared.elem_type()) << " but computes "
                << type.getElementType();
        return failure();
      }
      if (declared.has_shape()) {
        const auto &dims = declared.shape();
        bool rankOk = dims.dim_size() == type.getRank();
        for (int d = 0; rankOk && d < dims.dim_size(); ++d)
          if (dims.dim(d).has_dim_value() &&
              dims.dim(d).dim_value() != type.getDimSize(d))
            rankOk = false;
        if (!rankOk) {
          error() << "shape mismatch: graph output '" << out.name()
                  << "' is declared with shape " <<
              [&] {
                std::string s = "[";
                for (int d = 0; d < dims.dim_size(); ++d) {
                  if (d)
                    s += ", ";
                  s += dims.dim(d).has_dim_value()
                           ? std::to_string(dims.dim(d).dim_value())
                       : dims.dim(d).dim_param().empty()
                           ? std::string("?")
                           : dims.dim(d).dim_param();
                }
                return s + "]";
              }() << " but the graph computes "
                  << type << " (check the --bind values)";
          return failure();
        }
      }
    }
    results.push_back(v);
    types.push_back(type);
  }
  builder.create<func::ReturnOp>(loc, results);
  func.setFunctionType(
      FunctionType::get(&context, func.getArgumentTypes(), types));
  for (auto [i, out] : llvm::enumerate(graph.output()))
    func.setResultAttr(i, "cg.name", builder.getStringAttr(out.name()));
  return success();
}

//===----------------------------------------------------------------------===//
// The walk
//===----------------------------------------------------------------------===//

/// Checks the node's input count and that required inputs are present.
static LogicalResult checkArity(NodeContext &c, const ConverterInfo &info) {
  int given = c.numInputs();
  bool variadic = info.maxInputs < 0;
  if (given < info.minInputs || (!variadic && given > info.maxInputs)) {
    auto diag = c.error() << "takes ";
    if (variadic)
      diag << "at least " << info.minInputs;
    else if (info.minInputs == info.maxInputs)
      diag << info.minInputs;
    else
      diag << info.minInputs << " to " << info.maxInputs;
    return diag << " input(s), got " << given;
  }
  int required = variadic ? given : info.minInputs;
  for (int i = 0; i < required; ++i)
    if (!c.hasInput(i))
      return c.error() << "input " << i << " is required but empty";
  // Optional outputs may be left out by an empty name (RNN's Y), but a
  // node must produce something.
  if (llvm::none_of(c.node().output(),
                    [](const std::string &n) { return !n.empty(); }))
    return c.error() << "has no output";
  return success();
}

OwningOpRef<ModuleOp> Importer::run(const ::onnx::ModelProto &model) {
  if (!model.has_graph() || model.graph().output_size() == 0) {
    error() << "not an ONNX model: it has no graph with outputs";
    return nullptr;
  }
  const auto &graph = model.graph();
  bool foundOpset = false;
  for (const auto &import : model.opset_import())
    if (isDefaultDomain(import.domain())) {
      opset = import.version();
      foundOpset = true;
    }
  if (!foundOpset) {
    error() << "the model declares no opset for the default ONNX domain";
    return nullptr;
  }
  if (opset < 13 || opset > 21) {
    error() << "opset " << opset
            << (opset > 21 ? " is newer than the newest Colossal imports (21); "
                             "re-export with an opset from 13 to 21 (e.g. "
                             "torch.onnx.export(..., opset_version=17))"
                           : " is not supported; Colossal imports opsets 7 to "
                             "21 (older models are upgraded to 13 on import)");
    return nullptr;
  }
  const ConverterTable &table = converterTable();
  if (failed(checkOperators(graph, table)))
    return nullptr;
  auto order = topologicalOrder(graph);
  if (failed(order))
    return nullptr;

  for (const auto &node : graph.node()) {
    for (const auto &in : node.input())
      if (!in.empty())
        ++uses[in];
    // Inputs that are attributes in all but name.
    if (node.op_type() == "Resize" || node.op_type() == "Upsample")
      for (int k = 1; k < node.input_size() && k < 3; ++k)
        compileTimeInputs.insert(node.input(k));
  }
  for (const auto &out : graph.output())
    ++uses[out.name()];

  // Graph inputs: everything listed as input that is not an initializer.
  llvm::StringSet<> initializerNames;
  for (const auto &init : graph.initializer())
    initializerNames.insert(init.name());
  SmallVector<const ::onnx::ValueInfoProto *> inputs;
  SmallVector<Type> inputTypes;
  SmallVector<std::string> unbound;
  for (const auto &input : graph.input()) {
    if (initializerNames.count(input.name()))
      continue;
    auto type = inputType(input, unbound);
    if (failed(type))
      return nullptr;
    inputs.push_back(&input);
    inputTypes.push_back(*type);
  }
  if (!unbound.empty()) {
    auto diag = error();
    diag << "the model has symbolic dimensions without a size:";
    for (auto &u : unbound)
      diag << "\n  " << u;
    diag << "\nbind them on the command line, e.g. --bind batch=8,seq=2048 "
            "(an input whose values you know, such as a shape or axes "
            "input, can instead be given with --const-input NAME=v1,v2,... "
            "or NAME=FILE.npy)";
    return nullptr;
  }

  Location fileLoc = FileLineColLoc::get(&context, path, 0, 0);
  OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
  module->getOperation()->setAttr("cg.source", builder.getStringAttr(path));
  module->getOperation()->setAttr("cg.opset", builder.getI64IntegerAttr(opset));
  builder.setInsertionPointToEnd(module->getBody());
  auto func =
      builder.create<func::FuncOp>(fileLoc, options.functionName,
                                   FunctionType::get(&context, inputTypes, {}));
  Block *body = func.addEntryBlock();
  builder.setInsertionPointToStart(body);
  for (auto [i, input] : llvm::enumerate(inputs)) {
    func.setArgAttr(i, "cg.name", builder.getStringAttr(input->name()));
    values[input->name()] = ImportedValue{cast<RankedTensorType>(inputTypes[i]),
                                          body->getArgument(i), std::nullopt};
  }
  for (const auto &init : graph.initializer()) {
    if (!uses.count(init.name()))
      continue; // dead weights need no parameter
    if (failed(importInitializer(init)))
      return nullptr;
  }
  if (options.untieIdentityWeights)
    retieFoldedTransposes(graph, module.get());

  for (int index : *order) {
    const auto &node = graph.node(index);
    Location loc =
        NameLoc::get(builder.getStringAttr(node.name().empty() ? node.op_type()
                                                               : node.name()),
                     FileLineColLoc::get(&context, path, index + 1, 0));
    NodeContext nodeContext(*this, node, index, loc, opset);
    const ConverterInfo &info = table.find(node.op_type())->second;
    if (failed(checkArity(nodeContext, info)) ||
        failed(info.convert(nodeContext)))
      return nullptr;
    for (int o = 0; o < node.output_size(); ++o)
      if (nodeContext.outputUsed(o) && !values.count(node.output(o))) {
        nodeContext.error()
            << "output " << o << " is not supported by the importer";
        return nullptr;
      }
  }
  if (failed(importOutputs(graph, func)))
    return nullptr;
  if (failed(mlir::verify(*module))) {
    error() << "internal error: the imported module does not verify; please "
               "report this model";
    return nullptr;
  }
  return module;
}

//===----------------------------------------------------------------------===//
// NodeContext
//===----------------------------------------------------------------------===//

NodeContext::NodeContext(Importer &importer, const ::onnx::NodeProto &node,
                         int index, Location loc, int64_t opset)
    : importer_(importer), node_(node), index_(index), loc_(loc),
      opset_(opset) {}

OpBuilder &NodeContext::builder() { return importer_.builder; }
const ImportOptions &NodeContext::options() const { return importer_.options; }
MLIRContext *NodeContext::context() { return &importer_.context; }

InFlightDiagnostic NodeContext::error() {
  auto diag = mlir::emitError(loc_) << "node ";
  if (node_.name().empty())
    diag << "#" << index_;
  else
    diag << "'" << node_.name() << "'";
  return std::move(diag << " (" << node_.op_type() << ", opset " << opset_
                        << "): ");
}

bool NodeContext::hasInput(unsigned i) const {
  return i < static_cast<unsigned>(node_.input_size()) &&
         !node_.input(i).empty();
}

ImportedValue &NodeContext::input(unsigned i) {
  assert(hasInput(i) && "absent input");
  return importer_.values.find(node_.input(i))->second;
}

Value NodeContext::value(unsigned i) {
  return importer_.materialize(input(i), loc_);
}

const HostTensor *NodeContext::constant(unsigned i) {
  if (!hasInput(i))
    return nullptr;
  auto &imported = input(i);
  return imported.constant ? &*imported.constant : nullptr;
}

FailureOr<std::vector<int64_t>> NodeContext::constantInts(unsigned i,
                                                          StringRef what) {
  const HostTensor *c = constant(i);
  if (!c) {
    error() << what << " (input " << i << ", '" << node_.input(i)
            << "') must be known at compile time; it depends on runtime "
               "data. Bind all symbolic dimensions and keep shape "
               "computations free of data-dependent ops; if it comes from a "
               "graph input whose value you know, give it with --const-input "
               "NAME=FILE.npy or --const-input NAME=v1,v2,...";
    return failure();
  }
  return c->toInts();
}

bool NodeContext::outputUsed(unsigned i) const {
  return i < static_cast<unsigned>(node_.output_size()) &&
         !node_.output(i).empty() && importer_.uses.count(node_.output(i));
}

void NodeContext::setOutput(unsigned i, Value value) {
  if (i >= static_cast<unsigned>(node_.output_size()) ||
      node_.output(i).empty())
    return;
  importer_.values[node_.output(i)] = ImportedValue{
      cast<RankedTensorType>(value.getType()), value, std::nullopt};
}

void NodeContext::setConstantOutput(unsigned i, HostTensor tensor) {
  if (i >= static_cast<unsigned>(node_.output_size()) ||
      node_.output(i).empty())
    return;
  auto type = RankedTensorType::get(tensor.shape, tensor.elementType);
  importer_.values[node_.output(i)] =
      ImportedValue{type, Value(), std::move(tensor)};
}

const ::onnx::AttributeProto *NodeContext::attr(StringRef name) const {
  for (const auto &a : node_.attribute())
    if (a.name() == name)
      return &a;
  return nullptr;
}

int64_t NodeContext::intAttr(StringRef name, int64_t fallback) const {
  const auto *a = attr(name);
  return a ? a->i() : fallback;
}

double NodeContext::floatAttr(StringRef name, double fallback) const {
  const auto *a = attr(name);
  if (!a)
    return fallback;
  // ONNX stores float32; take the shortest decimal that round-trips it, so
  // that 1e-5 reads as 1.0e-05 in the IR rather than 9.99999974e-06.
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), a->f());
  if (ec != std::errc())
    return a->f();
  *end = '\0';
  return std::strtod(buffer, nullptr);
}

std::string NodeContext::stringAttr(StringRef name, StringRef fallback) const {
  const auto *a = attr(name);
  return a ? a->s() : fallback.str();
}

std::vector<int64_t> NodeContext::intsAttr(StringRef name) const {
  const auto *a = attr(name);
  if (!a)
    return {};
  return std::vector<int64_t>(a->ints().begin(), a->ints().end());
}

LogicalResult NodeContext::inferTypes(
    function_ref<LogicalResult(SmallVectorImpl<Type> &)> infer,
    SmallVectorImpl<Type> &types) {
  // Capture the shape rule's message and report it as this node's error.
  std::string message;
  LogicalResult result = success();
  {
    ScopedDiagnosticHandler handler(context(), [&](Diagnostic &diag) {
      if (diag.getSeverity() != DiagnosticSeverity::Error)
        return failure();
      message = diag.str();
      return success();
    });
    result = infer(types);
  }
  if (failed(result))
    error() << (message.empty() ? "shapes are incompatible" : message);
  return result;
}

FailureOr<int64_t> NodeContext::axisAttr(StringRef name, int64_t fallback,
                                         int64_t rank) {
  const int64_t axis = intAttr(name, fallback);
  if (auto normalized = cg::normalizeAxis(axis, rank))
    return static_cast<int64_t>(*normalized);
  return error() << name << " " << axis << " is out of range for rank " << rank,
         failure();
}

Value NodeContext::scalar(double v, Type elementType) {
  HostTensor t =
      isa<FloatType>(elementType)
          ? HostTensor::ofFloats(elementType, {}, {v})
          : HostTensor::ofInts(elementType, {}, {static_cast<int64_t>(v)});
  return materializeConstant(builder(), loc_, t);
}

Value NodeContext::reshape(Value v, ArrayRef<int64_t> shape) {
  auto type = cast<RankedTensorType>(v.getType());
  if (type.getShape() == shape)
    return v;
  return createTyped<cg::ReshapeOp>(
      RankedTensorType::get(shape, type.getElementType()), v);
}

//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

std::string
mlir::colossal::onnx::parseBindings(StringRef text,
                                    llvm::StringMap<int64_t> &bindings) {
  SmallVector<StringRef> items;
  text.split(items, ',', -1, /*KeepEmpty=*/false);
  for (StringRef item : items) {
    auto [name, value] = item.split('=');
    name = name.trim();
    value = value.trim();
    int64_t size;
    if (name.empty() || value.empty() || value.getAsInteger(10, size))
      return "bad binding '" + item.str() +
             "': expected NAME=SIZE, e.g. --bind batch=8,seq=2048";
    if (size <= 0)
      return "bad binding '" + item.str() + "': sizes must be positive";
    bindings[name] = size;
  }
  return "";
}

bool mlir::colossal::onnx::looksLikeOnnx(StringRef path, StringRef bytes) {
  if (path.ends_with(".onnx"))
    return true;
  if (path.ends_with(".mlir") || path.ends_with(".mlirbc"))
    return false;
  // A serialized ModelProto starts with field 1 (ir_version, varint).
  return !bytes.empty() && bytes[0] == 0x08;
}

/// --const-input: each named graph input becomes a Constant node of the
/// given values (a .npy file, or a comma list of numbers in the input's
/// shape) and leaves the graph's inputs.
static LogicalResult freezeInputs(Importer &importer, ::onnx::ModelProto &model,
                                  ArrayRef<std::string> specs) {
  auto *graph = model.mutable_graph();
  for (const std::string &spec : specs) {
    auto [name, text] = StringRef(spec).split('=');
    name = name.trim();
    text = text.trim();
    if (name.empty() || text.empty())
      return importer.error() << "--const-input '" << spec
                              << "': expected NAME=FILE.npy or NAME=v1,v2,...";
    int index = -1;
    std::string names;
    for (int i = 0; i < graph->input_size(); ++i) {
      if (graph->input(i).name() == name)
        index = i;
      names += (names.empty() ? "" : ", ") + graph->input(i).name();
    }
    if (index < 0)
      return importer.error() << "--const-input " << name
                              << ": the model has no input of that name (its "
                                 "inputs: "
                              << names << ")";
    const auto &tensorType = graph->input(index).type().tensor_type();
    int32_t elem = tensorType.elem_type();
    std::vector<int64_t> declared;
    bool staticShape = tensorType.has_shape();
    for (const auto &d : tensorType.shape().dim()) {
      declared.push_back(d.has_dim_value() ? d.dim_value() : -1);
      staticShape &= d.has_dim_value();
    }
    ::onnx::TensorProto t;
    t.set_name(std::string(name));
    t.set_data_type(elem);
    std::vector<int64_t> shape;
    std::string raw;
    if (text.ends_with(".npy")) {
      ::colossal::rt::HostTensor h;
      ::colossal::rt::Status st = ::colossal::rt::readNpy(text.str(), h);
      if (!st.isOk())
        return importer.error()
               << "--const-input " << name << ": " << st.message();
      int32_t fileType =
          h.dtype == ::colossal::rt::DType::F32   ? ::onnx::TensorProto::FLOAT
          : h.dtype == ::colossal::rt::DType::I64 ? ::onnx::TensorProto::INT64
          : h.dtype == ::colossal::rt::DType::I32 ? ::onnx::TensorProto::INT32
          : h.dtype == ::colossal::rt::DType::F16 ? ::onnx::TensorProto::FLOAT16
          : h.dtype == ::colossal::rt::DType::Bool ? ::onnx::TensorProto::BOOL
                                                   : -1;
      if (fileType != elem)
        return importer.error()
               << "--const-input " << name << ": " << text << " holds "
               << onnxTypeName(fileType) << " values, but the input is "
               << onnxTypeName(elem) << "; save the array with that type";
      shape = h.shape;
      raw = h.data;
    } else {
      SmallVector<StringRef> items;
      text.split(items, ',');
      bool isFloat = elem == ::onnx::TensorProto::FLOAT ||
                     elem == ::onnx::TensorProto::DOUBLE;
      bool isInt = elem == ::onnx::TensorProto::INT64 ||
                   elem == ::onnx::TensorProto::INT32;
      if (!isFloat && !isInt)
        return importer.error()
               << "--const-input " << name << ": an input of type "
               << onnxTypeName(elem) << " takes a .npy file, not a list";
      for (StringRef item : items) {
        item = item.trim();
        if (isInt) {
          int64_t v;
          if (item.getAsInteger(10, v))
            return importer.error() << "--const-input " << name << ": '" << item
                                    << "' is not an integer";
          if (elem == ::onnx::TensorProto::INT64)
            raw.append(reinterpret_cast<const char *>(&v), sizeof v);
          else {
            int32_t w = static_cast<int32_t>(v);
            raw.append(reinterpret_cast<const char *>(&w), sizeof w);
          }
        } else {
          double v;
          if (item.getAsDouble(v))
            return importer.error() << "--const-input " << name << ": '" << item
                                    << "' is not a number";
          if (elem == ::onnx::TensorProto::FLOAT) {
            float f = static_cast<float>(v);
            raw.append(reinterpret_cast<const char *>(&f), sizeof f);
          } else {
            raw.append(reinterpret_cast<const char *>(&v), sizeof v);
          }
        }
      }
      int64_t count = static_cast<int64_t>(items.size());
      int64_t declaredCount = 1;
      for (int64_t d : declared)
        declaredCount *= d;
      if (staticShape && declaredCount == count)
        shape = declared;
      else if (declared.size() == 1)
        shape = {count};
      else if (declared.empty() && count == 1)
        shape = {};
      else
        return importer.error()
               << "--const-input " << name << ": " << count
               << " values do not fill the input's shape (rank "
               << declared.size()
               << "); give the values as a .npy file of that shape";
    }
    for (size_t i = 0; i < declared.size() && i < shape.size(); ++i)
      if (declared.size() != shape.size() ||
          (declared[i] >= 0 && declared[i] != shape[i]))
        return importer.error() << "--const-input " << name
                                << ": the values' shape does not match the "
                                   "input's declared shape";
    for (int64_t d : shape)
      t.add_dims(d);
    t.set_raw_data(raw);
    ::onnx::NodeProto constant;
    constant.set_op_type("Constant");
    constant.set_name("const-input " + std::string(name));
    constant.add_output(std::string(name));
    auto *attr = constant.add_attribute();
    attr->set_name("value");
    attr->set_type(::onnx::AttributeProto::TENSOR);
    *attr->mutable_t() = t;
    auto *nodes = graph->mutable_node();
    *nodes->Add() = constant;
    for (int i = nodes->size() - 1; i > 0; --i)
      nodes->SwapElements(i, i - 1);
    graph->mutable_input()->DeleteSubrange(index, 1);
  }
  return success();
}

OwningOpRef<ModuleOp>
mlir::colossal::onnx::importOnnxModel(MLIRContext &context, StringRef bytes,
                                      StringRef path,
                                      const ImportOptions &options) {
  context.loadDialect<cg::CGDialect, func::FuncDialect>();
  Importer importer(context, path, options);
  ::onnx::ModelProto model;
  if (bytes.size() > static_cast<size_t>(INT32_MAX) ||
      !model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    importer.error() << "cannot parse the file as an ONNX model (it is "
                        "truncated, corrupt, or not ONNX)";
    return nullptr;
  }
  // Opsets 1-12 (model zoos, TF converters): upgraded to 13 (relabelled
  // when no operator changed since, else by ONNX's own version converter),
  // then imported as any opset-13 model.
  for (const auto &import : model.opset_import()) {
    if (!isDefaultDomain(import.domain()) || import.version() >= 13)
      continue;
    int64_t old = import.version();
    std::string why = ::colossal::onnx_upgrade::upgradeOpset(model, 13);
    if (!why.empty()) {
      if (old < ::colossal::onnx_upgrade::kOldestConvertible)
        importer.error() << why
                         << "; re-export the model with a newer exporter "
                            "(opset 13 to 21)";
      else
        importer.error() << "the model is opset " << old
                         << ", and ONNX's version converter cannot upgrade "
                            "it to 13: "
                         << why << " (re-export the model with opset 13 to 21)";
      return nullptr;
    }
    break;
  }
  if (failed(freezeInputs(importer, model, options.constInputs)))
    return nullptr;
  return importer.run(model);
}

OwningOpRef<ModuleOp>
mlir::colossal::onnx::importOnnxFile(MLIRContext &context, StringRef path,
                                     const ImportOptions &options) {
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer) {
    mlir::emitError(UnknownLoc::get(&context))
        << "cannot read '" << path << "': " << buffer.getError().message();
    return nullptr;
  }
  return importOnnxModel(context, (*buffer)->getBuffer(), path, options);
}
