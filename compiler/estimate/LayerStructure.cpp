//===- LayerStructure.cpp - Repeated blocks found from a graph's structure ===//
//
// See LayerStructure.h for the method. Costs: one pass over the ops for the
// stream and the liveness counts, one for the segment hashes, and
// O(segments^2) to find the repeat (one linear scan per period).
//
//===----------------------------------------------------------------------===//

#include "compiler/estimate/LayerStructure.h"

#include "dialects/Graph/IR/GraphOps.h"

#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <optional>

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

/// A weight: a parameter of rank two or more (matrices, embedding tables,
/// convolution kernels; not norm scales, biases or 1-D tables).
ParamOp weightOf(Value v) {
  auto param = stripViews(v).getDefiningOp<ParamOp>();
  if (param && cast<ShapedType>(param.getType()).getRank() >= 2)
    return param;
  return nullptr;
}

/// Ops that start the residual stream: compute with a weight.
bool carriesWeight(Operation *op) {
  if (!isa<LinearOp, MatMulOp, Conv2DOp, GatherOp>(op))
    return false;
  return llvm::any_of(op->getOperands(),
                      [](Value v) { return static_cast<bool>(weightOf(v)); });
}

bool isView(Operation *op) {
  return isa<ReshapeOp, TransposeOp, ExpandOp, SliceOp, ConcatOp, SplitOp,
             ShardOp, CastOp>(op);
}

/// Coarse kinds of compute, for extending the repeat over blocks that
/// differ only in widths.
enum Kind : unsigned {
  kGemm = 1,
  kConv = 2,
  kAttention = 4,
  kEmbedding = 8,
  kNorm = 16,
  kPool = 32,
  kReduce = 64,
  kOther = 128,
};

unsigned kindOf(Operation *op) {
  if (isa<AttentionOp, SoftmaxOp, LogSoftmaxOp>(op))
    return kAttention;
  if (isa<LinearOp>(op))
    return kGemm;
  if (isa<MatMulOp>(op))
    return carriesWeight(op) ? kGemm : kAttention;
  if (isa<Conv2DOp>(op))
    return kConv;
  if (isa<GatherOp>(op))
    return carriesWeight(op) ? kEmbedding : kOther;
  if (isa<LayerNormOp, RmsNormOp, BatchNormOp>(op))
    return kNorm;
  if (isa<MaxPool2DOp, AvgPool2DOp>(op))
    return kPool;
  if (isa<ReduceSumOp, ReduceMeanOp, ReduceMaxOp>(op))
    return kReduce;
  return kOther;
}

struct Segment {
  unsigned begin = 0, end = 0; // ops [begin, end)
  int id = -1;                 // equal ids: structurally equal segments
  unsigned kinds = 0;          // Kind bits of its stream ops
};

struct Finder {
  explicit Finder(func::FuncOp func) : func(func) {}

  LayerStructure run();

  func::FuncOp func;
  SmallVector<Operation *> ops;
  DenseMap<Operation *, unsigned> pos;
  llvm::DenseSet<Operation *> stream;
  llvm::DenseSet<Value> streamArgs; // float inputs the model computes on
  std::vector<Segment> segments;

  bool isStream(Value v) const {
    Operation *def = v.getDefiningOp();
    return def ? stream.contains(def) : streamArgs.contains(v);
  }

  void collect();
  std::vector<unsigned> cuts() const;
  void makeSegments(const std::vector<unsigned> &cutsAfter);
  void hashSegments();
  std::string label(ArrayRef<unsigned> segmentIds) const;
  void placeSide(LayerStructure &result) const;
};

/// Side computations (masks, rotary tables: no stream value in them) go
/// with their users when these are all in one layer, and to "pre" when
/// several layers share them, so that the first block does not carry the
/// tables every block reads.
void Finder::placeSide(LayerStructure &result) const {
  for (Operation *op : llvm::reverse(ops)) {
    if (stream.contains(op))
      continue;
    std::optional<int> layer;
    bool shared = false;
    for (Operation *user : op->getUsers()) {
      auto it = result.layerOf.find(user);
      int l = it == result.layerOf.end() ? result.numBlocks : it->second;
      if (layer && *layer != l)
        shared = true;
      layer = l;
    }
    if (layer)
      result.layerOf[op] = shared ? -1 : *layer;
  }
}

/// Whether the float input `arg` starts the residual stream: some path of
/// its users reaches a weight-carrying op before it meets a value computed
/// from weights (an encoder's input sequence, an image, through a
/// decomposed norm too). A float mask added to attention scores meets the
/// scores first, so it is a side value.
bool startsStream(BlockArgument arg,
                  const llvm::DenseSet<Operation *> &weighted) {
  SmallVector<Value> work{arg};
  llvm::DenseSet<Operation *> seen;
  while (!work.empty()) {
    Value v = work.pop_back_val();
    for (Operation *user : v.getUsers()) {
      if (!seen.insert(user).second)
        continue;
      if (carriesWeight(user))
        return true;
      if (weighted.contains(user))
        continue; // merged with the weights' stream: a side input
      for (Value r : user->getResults())
        work.push_back(r);
    }
  }
  return false;
}

void Finder::collect() {
  for (Operation &op : func.getBody().front()) {
    if (isa<ParamOp, ConstantOp, func::ReturnOp>(op))
      continue;
    pos[&op] = ops.size();
    ops.push_back(&op);
  }
  auto propagate = [&] {
    stream.clear();
    for (Operation *op : ops) {
      bool fromStream =
          llvm::any_of(op->getOperands(), [&](Value v) { return isStream(v); });
      if (fromStream || carriesWeight(op))
        stream.insert(op);
    }
  };
  propagate(); // from the weights alone
  for (BlockArgument arg : func.getArguments())
    if (isa<FloatType>(cast<ShapedType>(arg.getType()).getElementType()) &&
        startsStream(arg, stream))
      streamArgs.insert(arg);
  if (!streamArgs.empty())
    propagate();
}

/// Positions i (cut after op i) where exactly one stream value is live.
std::vector<unsigned> Finder::cuts() const {
  unsigned n = ops.size();
  std::vector<int> delta(n + 1, 0);
  auto lastUse = [&](Value v, unsigned from) {
    unsigned last = from;
    for (Operation *user : v.getUsers()) {
      auto it = pos.find(user);
      last = std::max(last, it == pos.end() ? n : it->second);
    }
    return last;
  };
  for (Value arg : streamArgs) { // live from the start
    ++delta[0];
    --delta[lastUse(arg, 0)];
  }
  for (unsigned i = 0; i < n; ++i) {
    if (!stream.contains(ops[i]))
      continue;
    for (Value result : ops[i]->getResults()) {
      unsigned last = lastUse(result, i);
      if (last > i) { // live across positions i .. last-1
        ++delta[i];
        --delta[last];
      }
    }
  }
  std::vector<unsigned> result;
  int live = 0;
  for (unsigned i = 0; i + 1 < n; ++i) {
    live += delta[i];
    if (live == 1)
      result.push_back(i);
  }
  return result;
}

/// Segments between the cuts; a segment without stream compute (views,
/// side computations such as a mask built between two blocks) joins the
/// segment after it, the last one the segment before it.
void Finder::makeSegments(const std::vector<unsigned> &cutsAfter) {
  unsigned begin = 0;
  auto close = [&](unsigned end) {
    bool computes = false;
    for (unsigned i = begin; i < end && !computes; ++i)
      computes = stream.contains(ops[i]) && !isView(ops[i]);
    if (!computes && end < ops.size())
      return; // keep begin: joins the next segment
    if (!computes && !segments.empty()) {
      segments.back().end = end;
    } else {
      Segment s;
      s.begin = begin;
      s.end = end;
      segments.push_back(s);
    }
    begin = end;
  };
  for (unsigned c : cutsAfter)
    close(c + 1);
  if (begin < ops.size())
    close(ops.size());
}

/// Structural keys: for each op, its kind, inherent attributes, result
/// types and, per operand, whether it is a parameter, a constant, a result
/// of an earlier op of the segment (by relative index) or from outside.
void Finder::hashSegments() {
  llvm::StringMap<int> ids;
  for (Segment &s : segments) {
    std::string key;
    llvm::raw_string_ostream os(key);
    DenseMap<Operation *, unsigned> ordinal; // among the segment's stream ops
    for (unsigned i = s.begin; i < s.end; ++i) {
      Operation *op = ops[i];
      if (!stream.contains(op))
        continue; // side computations are placed apart (see placeSide)
      unsigned self = ordinal.size();
      ordinal[op] = self;
      if (!isView(op))
        s.kinds |= kindOf(op);
      os << op->getName().getStringRef() << "{";
      for (NamedAttribute attr : op->getAttrs())
        if (!attr.getName().getValue().contains('.'))
          os << attr.getName().getValue() << "=" << attr.getValue() << ",";
      os << "}(";
      for (Value v : op->getOperands()) {
        Operation *def = v.getDefiningOp();
        auto it = def ? ordinal.find(def) : ordinal.end();
        if (def && isa<ParamOp>(def))
          os << "P";
        else if (def && isa<ConstantOp>(def))
          os << "C";
        else if (it != ordinal.end())
          os << "L" << (self - it->second) << "."
             << cast<OpResult>(v).getResultNumber();
        else
          os << (isStream(v) ? "S" : "X");
        os << v.getType() << ",";
      }
      os << ")->";
      for (Type t : op->getResultTypes())
        os << t << ",";
      os << ";";
    }
    s.id = ids.try_emplace(key, static_cast<int>(ids.size())).first->second;
  }
}

/// The common prefix of the names of the weights `ops[...]` of the given
/// segments use, cut at a separator ("h.3.attn.w", "h.3.mlp.w" -> "h.3");
/// empty when there is none.
std::string Finder::label(ArrayRef<unsigned> segmentIds) const {
  std::string prefix;
  bool first = true;
  for (unsigned si : segmentIds)
    for (unsigned i = segments[si].begin; i < segments[si].end; ++i)
      for (Value v : stream.contains(ops[i]) ? ops[i]->getOperands()
                                             : OperandRange(nullptr, 0)) {
        auto param = stripViews(v).getDefiningOp<ParamOp>();
        if (!param)
          continue;
        StringRef name = param.getName();
        if (first) {
          prefix = name.str();
          first = false;
          continue;
        }
        size_t n = 0;
        while (n < prefix.size() && n < name.size() && prefix[n] == name[n])
          ++n;
        prefix.resize(n);
      }
  size_t cut = prefix.find_last_of("./:_");
  prefix = cut == std::string::npos ? "" : prefix.substr(0, cut);
  // Exporters' generated names ("onnx::MatMul_12") are not labels.
  if (StringRef(prefix).starts_with("onnx:") || prefix.empty())
    return "";
  return prefix;
}

LayerStructure Finder::run() {
  LayerStructure result;
  collect();
  if (ops.empty())
    return result;
  makeSegments(cuts());
  hashSegments();
  const int m = static_cast<int>(segments.size());
  result.numSegments = m;

  // The repeat covering the most segments: for each period p, runs where
  // segment i equals segment i + p. Ties: the smaller period, then the
  // latest phase (a post-norm layer ends with its norm, so the embeddings'
  // norm before the first layer stays in "pre").
  int bestP = 0, bestStart = 0, bestCount = 0;
  auto findRepeat = [&](auto key, auto acceptable) {
    for (int p = 1; 2 * p <= m; ++p) {
      for (int i = 0; i + p < m;) {
        if (key(i) != key(i + p)) {
          ++i;
          continue;
        }
        int run = i;
        while (run + p < m && key(run) == key(run + p))
          ++run;
        int length = run - i; // equal pairs: i .. run-1
        int count = length / p + 1;
        int start = i + length % p;
        if (count * p > bestCount * bestP && acceptable(start, p)) {
          bestP = p;
          bestCount = count;
          bestStart = start;
        }
        i = run;
      }
    }
  };
  findRepeat([&](int i) { return static_cast<unsigned>(segments[i].id); },
             [](int, int) { return true; });
  // Nothing repeats exactly (a ResNet with one block per stage, each of
  // another width): repeats of the kinds of compute, when the unit holds
  // weighted compute.
  bool byKinds = false;
  if (bestCount < 2) {
    bestCount = 0;
    findRepeat([&](int i) { return segments[i].kinds; },
               [&](int start, int p) {
                 for (int j = start; j < start + p; ++j)
                   if (segments[j].kinds & (kGemm | kConv | kAttention))
                     return true;
                 return false;
               });
    byKinds = bestCount >= 2;
  }
  if (bestCount < 2) {
    for (Operation *op : ops)
      result.layerOf[op] = -1;
    llvm::raw_string_ostream(result.summary)
        << "no repeated structure: " << m
        << " segments of the residual stream, none repeated; the model is "
           "planned as one layer";
    return result;
  }

  // Extend over neighbouring groups of p segments with the same kinds of
  // compute (blocks of other widths).
  auto sameKinds = [&](int at) {
    for (int j = 0; j < bestP; ++j)
      if (segments[at + j].kinds != segments[bestStart + j].kinds)
        return false;
    return true;
  };
  int first = bestStart, last = bestStart + bestCount * bestP; // [first,last)
  while (first - bestP >= 0 && sameKinds(first - bestP))
    first -= bestP;
  while (last + bestP <= m && sameKinds(last))
    last += bestP;

  result.numBlocks = (last - first) / bestP;
  result.segmentsPerBlock = bestP;
  for (int si = 0; si < m; ++si) {
    int layer = si < first   ? -1
                : si >= last ? result.numBlocks
                             : (si - first) / bestP;
    for (unsigned i = segments[si].begin; i < segments[si].end; ++i)
      result.layerOf[ops[i]] = layer;
  }
  placeSide(result);
  int distinct = 0;
  for (int b = 0; b < result.numBlocks; ++b) {
    SmallVector<unsigned> ids;
    for (int j = 0; j < bestP; ++j)
      ids.push_back(first + b * bestP + j);
    std::string name = label(ids);
    result.labels.push_back(name.empty() ? "block " + std::to_string(b) : name);
    bool same = b > 0;
    for (int j = 0; same && j < bestP; ++j)
      same = segments[ids[j]].id == segments[ids[j] - bestP].id;
    distinct += !same;
  }
  llvm::raw_string_ostream os(result.summary);
  os << result.numBlocks << " blocks of " << bestP << " segment"
     << (bestP > 1 ? "s" : "") << " each";
  if (distinct == 1)
    os << ", all alike";
  else
    os << ", in " << distinct << " runs of equal blocks";
  if (byKinds)
    os << " (repeated in kinds of compute, not in shapes)";
  os << "; found from the dataflow, with " << first << " segment"
     << (first == 1 ? "" : "s") << " before them and " << (m - last)
     << " after";
  return result;
}

} // namespace

Value mlir::colossal::stripViews(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    if (!isa<TransposeOp, ReshapeOp, CastOp, ExpandOp, ShardOp>(def))
      break;
    v = def->getOperand(0);
  }
  return v;
}

LayerStructure mlir::colossal::findLayerStructure(func::FuncOp func) {
  return Finder(func).run();
}
