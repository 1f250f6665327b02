//===- GraphWorkload.cpp - The cost model's view of an imported graph -----===//
//
// Steps: (1) find the repeated blocks from the dataflow (LayerStructure.h;
// names are only labels), (2) give every op a layer, (3) follow
// tensor-parallel splitting from
// column GEMMs to the row GEMMs that consume them, (4) turn ops into cost
// ops, with chains of elementwise ops costed as one fused kernel that reads
// its external inputs and writes its result, (5) merge identical blocks.
//
//===----------------------------------------------------------------------===//

#include "compiler/estimate/GraphWorkload.h"
#include "compiler/estimate/LayerStructure.h"

#include "dialects/Graph/IR/GraphOps.h"
#include "passes/GraphStats.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;
namespace cost = ::colossal::cost;

namespace {

constexpr int kPre = -1;

bool isElementwise(Operation *op) {
  return isa<AddOp, SubOp, MulOp, DivOp, PowOp, MaxOp, MinOp, AndOp, OrOp,
             CmpOp, WhereOp, CastOp, NegOp, AbsOp, SqrtOp, RsqrtOp, ExpOp,
             LogOp, TanhOp, ErfOp, SinOp, CosOp, FloorOp, CeilOp, RoundOp,
             ReciprocalOp, ReluOp, SigmoidOp, SiluOp, NotOp, GeluOp>(op);
}

/// Ops that only rearrange or broadcast: free (folded into the kernels
/// that read them), and transparent to splitting.
bool isView(Operation *op) {
  return isa<ReshapeOp, TransposeOp, ExpandOp, SliceOp, ConcatOp, SplitOp,
             ShardOp>(op);
}

/// Whether an elementwise op's backward needs its inputs.
bool keepsInputs(Operation *op) {
  return !isa<AddOp, SubOp, NegOp, CastOp>(op);
}

struct Extractor {
  Extractor(func::FuncOp func, const WorkloadOptions &options)
      : func(func), options(options), e(cost::dtypeBytes(options.dtype)) {}

  FailureOr<cost::Workload> run();

  func::FuncOp func;
  const WorkloadOptions &options;
  double e;         // bytes per element of float values during compute
  double batch = 1; // batch the module was imported with
  LayerStructure structure;
  std::vector<cost::LayerSpec> *layers = nullptr; // by layer + 1, in run()
  int numBlocks = 0;
  DenseMap<Operation *, int> layerOf;
  llvm::DenseSet<Value> split; // values split over TP ranks
  llvm::DenseSet<Value> saved; // values kept for backward
  llvm::DenseSet<Operation *> splitParams;
  DenseMap<Operation *, int> paramOwner; // param -> layer that counts it
  llvm::DenseSet<std::pair<Operation *, Operation *>> countedVectors;
  llvm::DenseSet<std::pair<Operation *, int>> sharedCopies;
  /// Fused elementwise regions: each elementwise op's region root, and the
  /// ops of each root.
  DenseMap<Operation *, Operation *> rootOf;
  DenseMap<Operation *, SmallVector<Operation *>> regionOps;

  void formRegions();

  /// Bytes of `v` per sample as computed (floats at the compute dtype).
  double bytes(Value v) const {
    auto type = cast<ShapedType>(v.getType());
    double n = static_cast<double>(type.getNumElements());
    Operation *def = v.getDefiningOp();
    if (!def || !isa<ParamOp>(def))
      n /= batch;
    if (isa<FloatType>(type.getElementType()))
      return n * e;
    return n * std::max(1u, type.getElementTypeBitWidth() / 8);
  }
  double perSample(double n) const { return n / batch; }

  static ParamOp paramOf(Value v) {
    if (auto t = v.getDefiningOp<TransposeOp>())
      v = t.getInput();
    return v.getDefiningOp<ParamOp>();
  }
  /// False for parameters, constants, and views of them (a slice of a
  /// stored position table is as constant as the table).
  static bool isActivation(Value v) {
    Operation *def = v.getDefiningOp();
    while (def && isView(def) && def->getNumOperands() == 1)
      def = def->getOperand(0).getDefiningOp();
    return !def || !isa<ParamOp, ConstantOp>(def);
  }

  int layerOfValue(Value v) const {
    Operation *def = v.getDefiningOp();
    if (!def)
      return kPre;
    auto it = layerOf.find(def);
    return it == layerOf.end() ? kPre : it->second;
  }

  void assignLayers();
  void addOp(cost::LayerSpec &layer, Operation *op, int index);
  void addRegion(cost::LayerSpec &layer, Operation *root);
  void saveActivation(cost::LayerSpec &layer, Value v,
                      bool attentionCore = false);
  void addDropout(cost::LayerSpec &layer, Value v);
  void countParam(cost::LayerSpec &layer, ParamOp param, int index,
                  std::vector<cost::LayerSpec> &shared, Operation *user);
};

/// An elementwise op joins the region of its users when all of them are
/// elementwise and in one region (so x feeding both halves of
/// x * (1 + erf(x / sqrt(2))) fuses into one GELU kernel); otherwise it is
/// the root of its own region.
void Extractor::formRegions() {
  SmallVector<Operation *> ops;
  func.walk([&](Operation *op) { ops.push_back(op); });
  for (Operation *op : llvm::reverse(ops)) {
    if (!isElementwise(op))
      continue;
    Operation *root = nullptr;
    bool joins = !op->use_empty();
    for (Operation *user : op->getUsers()) {
      auto it = rootOf.find(user);
      if (it == rootOf.end() || (root && root != it->second)) {
        joins = false;
        break;
      }
      root = it->second;
    }
    rootOf[op] = joins ? root : op;
  }
  for (Operation *op : ops)
    if (auto it = rootOf.find(op); it != rootOf.end())
      regionOps[it->second].push_back(op);
}

void Extractor::assignLayers() {
  structure = findLayerStructure(func);
  numBlocks = structure.numBlocks;
  layerOf = structure.layerOf;
}

void Extractor::saveActivation(cost::LayerSpec &user, Value v,
                               bool attentionCore) {
  if (!isActivation(v) || !saved.insert(v).second)
    return; // a value kept once serves every op that needs it
  // A value that several layers read (a mask, a rotary table) is kept by
  // the layer that makes it, not by whichever reader comes first.
  cost::LayerSpec *layer = &user;
  std::optional<int> readers;
  for (Operation *reader : v.getUsers()) {
    auto it = layerOf.find(reader);
    if (it == layerOf.end())
      continue;
    if (readers && *readers != it->second) {
      layer = &(*layers)[layerOfValue(v) + 1];
      break;
    }
    readers = it->second;
  }
  double b = bytes(v);
  if (attentionCore)
    layer->activations.attention_core += b;
  else if (split.contains(v))
    layer->activations.split += b;
  else
    layer->activations.split_with_sp += b;
}

/// Dropout on `v`: a 1-byte mask per element, written with the (fused)
/// elementwise kernel that follows, kept for backward and read there.
void Extractor::addDropout(cost::LayerSpec &layer, Value v) {
  double n = perSample(
      static_cast<double>(cast<ShapedType>(v.getType()).getNumElements()));
  layer.ops.push_back(cost::OpSpec::memoryBound(
      "dropout_mask", n, n,
      split.contains(v) ? cost::TpShard::Split : cost::TpShard::SplitWithSp));
  (split.contains(v) ? layer.activations.split
                     : layer.activations.split_with_sp) += n;
}

void Extractor::countParam(cost::LayerSpec &layer, ParamOp param, int index,
                           std::vector<cost::LayerSpec> &shared,
                           Operation *user) {
  auto type = cast<ShapedType>(param.getType());
  double n = static_cast<double>(type.getNumElements());
  if (type.getRank() <= 1) {
    // Norm scales and biases: counted at every op that uses one, since
    // exporters deduplicate those whose values happen to be equal when
    // they run (all ones, all zeros) into one initializer shared by
    // every layer -- the model is the same as with a copy per layer.
    // Split over TP ranks where this op's result is (a column-parallel
    // bias), whole where it is not (a row-parallel bias, a norm's scale).
    bool splitHere = llvm::any_of(user->getResults(),
                                  [&](Value r) { return split.contains(r); });
    if (countedVectors.insert({user, param.getOperation()}).second)
      (splitHere ? layer.params_split : layer.params_replicated) += n;
    return;
  }
  auto [it, first] = paramOwner.try_emplace(param, index);
  auto isBlock = [&](int slot) { return slot >= 1 && slot <= numBlocks; };
  if (!first && it->second == index)
    return;
  if (!first && isBlock(it->second) && isBlock(index)) {
    // One tensor used by several blocks: an exporter's deduplication of
    // equal buffers (the causal masks every layer registers) or layers
    // tied on purpose. Each block counts it, as it would its own copy, so
    // that equal blocks stay equal (conservative for tied layers).
    if (!sharedCopies.insert({param.getOperation(), index}).second)
      return;
  } else if (!first) {
    if (!sharedCopies.insert({param.getOperation(), index}).second)
      return;
    // A weight used again in a later layer (tied embeddings): that layer's
    // stage stores a copy, which the model does not count twice.
    cost::LayerSpec copy;
    copy.name = param.getName().str() + " (shared)";
    copy.role = layer.role;
    copy.params_shared_with = it->second;
    (splitParams.contains(param) ? copy.params_split : copy.params_replicated) =
        n;
    shared.push_back(std::move(copy));
    return;
  }
  if (splitParams.contains(param))
    layer.params_split += n;
  else
    layer.params_replicated += n;
}

/// The elementwise ops of `root`'s region (see formRegions), costed as
/// one fused kernel: it reads its external inputs, writes its result, and
/// keeps its external inputs for backward when it is nonlinear.
void Extractor::addRegion(cost::LayerSpec &layer, Operation *root) {
  ArrayRef<Operation *> region = regionOps[root];
  llvm::DenseSet<Operation *> inRegion(region.begin(), region.end());
  double in = 0, activationIn = 0;
  bool nonlinear = false;
  llvm::DenseSet<Value> seen;
  for (Operation *op : region) {
    nonlinear |= keepsInputs(op);
    for (Value operand : op->getOperands()) {
      Operation *def = operand.getDefiningOp();
      if ((def && inRegion.contains(def)) || !seen.insert(operand).second)
        continue;
      if (def && isa<ConstantOp>(def))
        continue;
      in += bytes(operand);
      if (isActivation(operand))
        activationIn += bytes(operand);
    }
  }
  double out = bytes(root->getResult(0));
  bool isSplit = split.contains(root->getResult(0));
  layer.ops.push_back(cost::OpSpec::memoryBound(
      root->getName().stripDialect().str(), in + out, out + 2 * activationIn,
      isSplit ? cost::TpShard::Split : cost::TpShard::SplitWithSp));
  if (nonlinear)
    for (Operation *op : region)
      for (Value operand : op->getOperands())
        if (!operand.getDefiningOp() ||
            !inRegion.contains(operand.getDefiningOp()))
          saveActivation(layer, operand);
}

void Extractor::addOp(cost::LayerSpec &layer, Operation *op, int index) {
  auto anySplitInput = [&] {
    return llvm::any_of(op->getOperands(),
                        [&](Value v) { return split.contains(v); });
  };
  auto markSplitParams = [&] {
    for (Value operand : op->getOperands())
      if (auto p = paramOf(operand))
        splitParams.insert(p);
  };
  auto gemm = [&](Value input, Value weight, int64_t n, int64_t k,
                  Value result) {
    auto p = paramOf(weight);
    double m = perSample(static_cast<double>(
                   cast<ShapedType>(result.getType()).getNumElements())) /
               n;
    cost::TpRole role;
    if (split.contains(input)) {
      role = cost::TpRole::Row; // partial sums, all-reduced: not split
      if (options.dropout)
        addDropout(layer, result);
    } else {
      role = cost::TpRole::Column;
      split.insert(result);
    }
    if (p)
      splitParams.insert(p);
    layer.ops.push_back(cost::OpSpec::gemm(
        p ? p.getName().str() : op->getName().stripDialect().str(), m,
        static_cast<double>(n), static_cast<double>(k), role));
    saveActivation(layer, input);
  };

  llvm::TypeSwitch<Operation *>(op)
      .Case([&](LinearOp l) {
        auto w = cast<ShapedType>(l.getWeight().getType());
        bool t = l.getTransposeWeight();
        gemm(l.getInput(), l.getWeight(), w.getDimSize(t ? 0 : 1),
             w.getDimSize(t ? 1 : 0), l.getResult());
        if (split.contains(l.getResult()) && l.getBias())
          if (auto b = paramOf(l.getBias()))
            splitParams.insert(b);
      })
      .Case([&](MatMulOp mm) {
        auto rhs = cast<ShapedType>(mm.getRhs().getType());
        auto lhs = cast<ShapedType>(mm.getLhs().getType());
        if (paramOf(mm.getRhs()) && rhs.getRank() == 2) {
          bool t = static_cast<bool>(mm.getRhs().getDefiningOp<TransposeOp>());
          (void)t;
          gemm(mm.getLhs(), mm.getRhs(), rhs.getDimSize(1), rhs.getDimSize(0),
               mm.getResult());
          return;
        }
        // Product of two activations (unfused attention and the like).
        int64_t r = lhs.getRank();
        double k = lhs.getDimSize(r - 1);
        double m = r >= 2 ? lhs.getDimSize(r - 2) : 1;
        double n = rhs.getRank() >= 2 ? rhs.getDimSize(rhs.getRank() - 1) : 1;
        double total = cast<ShapedType>(mm.getType()).getNumElements();
        layer.ops.push_back(cost::OpSpec::gemm("matmul", m, n, k,
                                               cost::TpRole::Replicated,
                                               perSample(total) / (m * n)));
        if (anySplitInput())
          split.insert(mm.getResult());
        saveActivation(layer, mm.getLhs());
        saveActivation(layer, mm.getRhs());
      })
      .Case([&](AttentionOp a) {
        auto q = cast<ShapedType>(a.getQuery().getType());
        auto k = cast<ShapedType>(a.getKey().getType());
        int64_t r = q.getRank();
        double sq = q.getDimSize(r - 2), skv = k.getDimSize(r - 2),
               d = q.getDimSize(r - 1);
        double heads =
            perSample(static_cast<double>(q.getNumElements())) / (sq * d);
        layer.ops.push_back(cost::OpSpec::attention("attention", heads, sq, skv,
                                                    d, options.flashAttention,
                                                    options.dropout));
        layer.ops.back().causal = a.getCausal();
        if (anySplitInput())
          split.insert(a.getResult());
        saveActivation(layer, a.getQuery());
        saveActivation(layer, a.getKey());
        saveActivation(layer, a.getValue());
        // Softmax output (and with dropout its mask and output) per score.
        if (!options.flashAttention)
          layer.activations.attention_core +=
              (options.dropout ? 2 * e + 1 : e) * heads * sq * skv;
      })
      .Case<Conv2DOp, Conv2DBackwardInputOp, Conv2DBackwardWeightOp>(
          [&](Operation *op) {
            // One GEMM of the forward conv2d's shape: M = output positions,
            // N = output channels, K = weights per output channel. The
            // gradient ops see y's shape in dY and the weight as operand or
            // result.
            Value w = isa<Conv2DBackwardWeightOp>(op) ? op->getResult(0)
                                                      : op->getOperand(1);
            Value y = isa<Conv2DOp>(op)                ? op->getResult(0)
                      : isa<Conv2DBackwardInputOp>(op) ? op->getOperand(0)
                                                       : op->getOperand(1);
            auto wt = cast<ShapedType>(w.getType());
            double n = wt.getDimSize(0);
            double k = static_cast<double>(wt.getDimSize(1)) *
                       wt.getDimSize(2) * wt.getDimSize(3);
            double m = perSample(static_cast<double>(
                           cast<ShapedType>(y.getType()).getNumElements())) /
                       n;
            layer.ops.push_back(
                cost::OpSpec::gemm(op->getName().stripDialect().str(), m, n, k,
                                   cost::TpRole::Replicated));
            if (isa<Conv2DOp>(op))
              saveActivation(layer, op->getOperand(0));
          })
      .Case([&](GatherOp g) {
        auto table = paramOf(g.getInput());
        auto type = cast<ShapedType>(g.getInput().getType());
        if (table && g.getAxis() == 0 && type.getRank() == 2 &&
            isActivation(g.getIndices())) {
          double tokens = perSample(static_cast<double>(
              cast<ShapedType>(g.getIndices().getType()).getNumElements()));
          double width = type.getDimSize(1);
          splitParams.insert(table);
          layer.ops.push_back(cost::OpSpec::embedding(
              table.getName().str(), tokens, width, type.getDimSize(0),
              2 * e * tokens * width, 2 * e * tokens * width));
          if (options.dropout)
            addDropout(layer, g.getResult());
          return;
        }
        layer.ops.push_back(cost::OpSpec::memoryBound(
            "gather", 2 * bytes(g.getResult()), 2 * bytes(g.getResult()),
            cost::TpShard::SplitWithSp));
      })
      .Case<LayerNormOp, RmsNormOp, BatchNormOp>([&](Operation *norm) {
        Value x = norm->getOperand(0);
        double b = bytes(x);
        layer.ops.push_back(cost::OpSpec::memoryBound(
            norm->getName().stripDialect().str(), 2 * b, 3 * b,
            split.contains(x) ? cost::TpShard::Split
                              : cost::TpShard::SplitWithSp));
        saveActivation(layer, x);
        if (split.contains(x))
          split.insert(norm->getResult(0));
      })
      .Case<SoftmaxOp, LogSoftmaxOp>([&](Operation *s) {
        Value x = s->getOperand(0);
        double b = bytes(x);
        layer.ops.push_back(cost::OpSpec::memoryBound(
            "softmax", 2 * b, 3 * b,
            split.contains(x) ? cost::TpShard::Split
                              : cost::TpShard::SplitWithSp));
        if (split.contains(x))
          split.insert(s->getResult(0));
        saveActivation(layer, s->getResult(0));
      })
      .Case<ReduceSumOp, ReduceMeanOp, ReduceMaxOp, MaxPool2DOp, AvgPool2DOp,
            MaxPool2DBackwardOp, TriluOp, ScatterAddRowsOp>([&](Operation *r) {
        double b = bytes(r->getOperand(0)) + bytes(r->getResult(0));
        layer.ops.push_back(
            cost::OpSpec::memoryBound(r->getName().stripDialect().str(), b, b,
                                      cost::TpShard::SplitWithSp));
        if (isa<MaxPool2DOp>(r))
          saveActivation(layer, r->getOperand(0));
      })
      .Default([&](Operation *other) {
        if (isView(other)) {
          if (anySplitInput())
            for (Value result : other->getResults())
              split.insert(result);
          return;
        }
        if (isElementwise(other)) {
          if (anySplitInput()) {
            split.insert(other->getResult(0));
            markSplitParams();
          }
          if (rootOf.lookup(other) == other)
            addRegion(layer, other);
        }
      });
  (void)index;
}

FailureOr<cost::Workload> Extractor::run() {
  if (func.getNumArguments() > 0) {
    auto first = dyn_cast<ShapedType>(func.getArgument(0).getType());
    if (first && first.getRank() >= 1 && first.getDimSize(0) > 0)
      batch = static_cast<double>(first.getDimSize(0));
  }
  assignLayers();
  formRegions();

  // Layers in order: Pre, blocks, Post (only those with ops).
  int numLayers = numBlocks + 2;
  std::vector<cost::LayerSpec> layers(numLayers);
  this->layers = &layers;
  std::vector<std::vector<cost::LayerSpec>> shared(numLayers);
  auto slot = [&](int layer) { return layer + 1; };
  layers[slot(kPre)].name = "pre";
  layers[slot(kPre)].role = cost::LayerRole::Pre;
  for (int b = 0; b < numBlocks; ++b) {
    layers[slot(b)].name = structure.labels[b];
    layers[slot(b)].role = cost::LayerRole::Block;
  }
  layers[slot(numBlocks)].name = "post";
  layers[slot(numBlocks)].role = cost::LayerRole::Post;
  if (numBlocks == 0) // no repeated blocks: the whole model is one block
    layers[slot(kPre)].role = cost::LayerRole::Block;

  // Checkpoints: what a layer reads from earlier layers.
  std::vector<llvm::DenseSet<Value>> layerInputs(numLayers);
  func.walk([&](Operation *op) {
    auto it = layerOf.find(op);
    if (it == layerOf.end())
      return;
    cost::LayerSpec &layer = layers[slot(it->second)];
    addOp(layer, op, slot(it->second));
    for (Value operand : op->getOperands()) {
      if (auto p = paramOf(operand)) {
        countParam(layer, p, slot(it->second), shared[slot(it->second)], op);
        continue;
      }
      if (isActivation(operand) && layerOfValue(operand) < it->second &&
          operand.getDefiningOp() &&
          layerInputs[slot(it->second)].insert(operand).second)
        layer.activations.checkpoint += bytes(operand);
    }
  });
  for (int i = 0; i < numLayers; ++i)
    if (layers[i].activations.checkpoint == 0 && i == slot(kPre))
      for (BlockArgument arg : func.getArguments())
        layers[i].activations.checkpoint += bytes(arg);

  // The loss over the first output (logits), in fp32 as Megatron computes
  // it: forward reads the logits and writes probabilities, backward writes
  // the logits' gradient; the probabilities stay for backward.
  if (options.training && func.getNumResults() > 0) {
    auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
    Value logits = ret.getOperand(0);
    if (isa<FloatType>(cast<ShapedType>(logits.getType()).getElementType())) {
      int owner = std::max(kPre, layerOfValue(logits));
      cost::LayerSpec &layer = layers[slot(owner)];
      double n = perSample(static_cast<double>(
          cast<ShapedType>(logits.getType()).getNumElements()));
      bool isSplit = split.contains(logits);
      layer.ops.push_back(cost::OpSpec::memoryBound(
          "loss", (e + 16) * n, (4 + e) * n,
          isSplit ? cost::TpShard::Split : cost::TpShard::SplitWithSp));
      (isSplit ? layer.activations.split : layer.activations.split_with_sp) +=
          4 * n;
    }
  }

  cost::Workload w;
  w.name = func.getSymName().str();
  w.structure = structure.summary;
  w.global_batch = options.globalBatch;
  w.dtype = options.dtype;
  if (options.dtype == cost::DType::FP32 ||
      options.dtype == cost::DType::TF32) {
    w.param_bytes = 4;
    w.grad_bytes = 4;
    w.optimizer_bytes = 8;
  }
  // Keep non-empty layers; merge identical consecutive blocks; remap the
  // owners of shared parameters to the new indices.
  std::vector<int> newIndex(numLayers, -1);
  auto signature = [](const cost::LayerSpec &l) {
    std::string s;
    llvm::raw_string_ostream os(s);
    os << static_cast<int>(l.role) << "|" << l.params_split << "|"
       << l.params_replicated << "|" << l.activations.total() << "|"
       << l.activations.checkpoint;
    for (const cost::OpSpec &op : l.ops)
      os << ";" << static_cast<int>(op.kind) << "," << op.m << "," << op.n
         << "," << op.k << "," << op.batch << ","
         << static_cast<int>(op.tp_role) << "," << op.heads << "," << op.s_q
         << "," << op.s_kv << "," << op.fwd_bytes << "," << op.bwd_bytes << ","
         << static_cast<int>(op.shard);
    return os.str();
  };
  std::string last;
  for (int i = 0; i < numLayers; ++i) {
    cost::LayerSpec &l = layers[i];
    if (l.ops.empty() && l.params() == 0)
      continue;
    std::string sig = signature(l);
    if (l.role == cost::LayerRole::Block && !w.layers.empty() &&
        w.layers.back().role == cost::LayerRole::Block && sig == last &&
        shared[i].empty()) {
      ++w.layers.back().count;
      newIndex[i] = static_cast<int>(w.layers.size()) - 1;
      continue;
    }
    last = sig;
    newIndex[i] = static_cast<int>(w.layers.size());
    w.layers.push_back(std::move(l));
    for (cost::LayerSpec &s : shared[i])
      w.layers.push_back(std::move(s));
  }
  for (cost::LayerSpec &l : w.layers)
    if (l.params_shared_with >= 0)
      l.params_shared_with = newIndex[l.params_shared_with];
  if (w.layers.empty()) {
    func.emitError("the graph has nothing to cost: no compute ops");
    return failure();
  }

  // Model-level figures the parallel-config checks use.
  for (const cost::LayerSpec &l : w.layers) {
    if (l.role != cost::LayerRole::Block)
      continue;
    for (const cost::OpSpec &op : l.ops) {
      if (op.kind == cost::OpKind::Gemm &&
          op.tp_role != cost::TpRole::Replicated && !w.hidden) {
        w.hidden = static_cast<int64_t>(op.k);
        w.seq_len = static_cast<int64_t>(op.m);
      }
      if (op.kind == cost::OpKind::Attention && !w.heads)
        w.heads = static_cast<int64_t>(op.heads);
    }
    if (w.stage_boundary_bytes == 0)
      w.stage_boundary_bytes = l.activations.checkpoint;
  }
  for (const cost::LayerSpec &l : w.layers)
    for (const cost::OpSpec &op : l.ops)
      if (op.kind == cost::OpKind::Embedding && !w.vocab)
        w.vocab = static_cast<int64_t>(op.k);
  if (w.seq_len <= 0)
    w.seq_len = 1;
  return w;
}

} // namespace

FailureOr<cost::Workload>
mlir::colossal::buildWorkload(ModuleOp module, const WorkloadOptions &options) {
  SmallVector<func::FuncOp> funcs;
  for (auto f : module.getOps<func::FuncOp>())
    if (!f.isExternal())
      funcs.push_back(f);
  if (funcs.size() != 1) {
    module.emitError("the cost model needs exactly one function with a body, "
                     "found ")
        << funcs.size();
    return failure();
  }
  Extractor extractor(funcs.front(), options);
  return extractor.run();
}

llvm::DenseMap<Operation *, int>
mlir::colossal::computeLayers(func::FuncOp func, int &numBlocks) {
  WorkloadOptions options;
  Extractor extractor(func, options);
  extractor.assignLayers();
  numBlocks = extractor.numBlocks;
  return std::move(extractor.layerOf);
}

std::string mlir::colossal::describeWorkload(const cost::Workload &w) {
  std::string s;
  llvm::raw_string_ostream os(s);
  const char *roles[] = {"pre", "block", "post"};
  os << "workload " << w.name << ": " << w.layers.size() << " layer kinds, "
     << w.blockLayerCount() << " blocks, "
     << llvm::format("%.6g", w.parameterCount()) << " parameters, "
     << llvm::format("%.6g", w.forwardFlopsPerSample())
     << " forward FLOP/sample, hidden " << w.hidden << ", heads " << w.heads
     << ", seq " << w.seq_len << ", vocab " << w.vocab << "\n";
  if (!w.structure.empty())
    os << "  layers: " << w.structure << "\n";
  for (const cost::LayerSpec &l : w.layers) {
    os << "  " << roles[static_cast<int>(l.role)] << " '" << l.name << "' x"
       << l.count << ": params split " << llvm::format("%.6g", l.params_split)
       << " replicated " << llvm::format("%.6g", l.params_replicated);
    if (l.params_shared_with >= 0)
      os << " (shared with layer " << l.params_shared_with << ")";
    os << ", flop " << llvm::format("%.6g", l.forwardFlopsPerSample())
       << ", act split " << llvm::format("%.6g", l.activations.split) << " sp "
       << llvm::format("%.6g", l.activations.split_with_sp) << " core "
       << llvm::format("%.6g", l.activations.attention_core) << " ckpt "
       << llvm::format("%.6g", l.activations.checkpoint) << "\n";
    for (const cost::OpSpec &op : l.ops) {
      os << "    ";
      switch (op.kind) {
      case cost::OpKind::Gemm: {
        const char *rolesTp[] = {"replicated", "column", "row"};
        os << "gemm " << op.name << " m=" << op.m << " n=" << op.n
           << " k=" << op.k;
        if (op.batch != 1)
          os << " batch=" << op.batch;
        os << " " << rolesTp[static_cast<int>(op.tp_role)];
        break;
      }
      case cost::OpKind::Attention:
        os << "attention heads=" << op.heads << " sq=" << op.s_q
           << " skv=" << op.s_kv << " d=" << op.head_dim;
        break;
      case cost::OpKind::Embedding:
        os << "embedding " << op.name << " tokens=" << op.m << " width=" << op.n
           << " vocab=" << op.k;
        break;
      case cost::OpKind::MemoryBound:
        os << "memory " << op.name
           << " fwd=" << llvm::format("%.6g", op.fwd_bytes)
           << " bwd=" << llvm::format("%.6g", op.bwd_bytes);
        break;
      }
      os << "\n";
    }
  }
  return os.str();
}
