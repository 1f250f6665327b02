//===- IntraOp.cpp - Per-op sharding over the tensor-parallel axis --------===//
//
// Steps: (1) enumerate each op's strategies over `tp` (layouts it needs of
// its operands, the layout of its result, its compute time), (2) build the
// integer program over the ops of the first block (the others are the same)
// plus those before and after the blocks, with resharding costs on the
// edges, (3) solve it with CBC, (4) copy the first block's choices to the
// other blocks and annotate the IR.
//
//===----------------------------------------------------------------------===//

#include "compiler/search/IntraOp.h"
#include "compiler/estimate/GraphWorkload.h"
#include "compiler/search/Ilp.h"

#include "compiler/cost/Collectives.h"
#include "compiler/cost/Compute.h"
#include "dialects/Graph/IR/GraphOps.h"
#include "passes/GraphStats.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/TypeSwitch.h"

#include <chrono>

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;
namespace cost = ::colossal::cost;

namespace {

/// A value's layout over tp: split along `dim` (-1: replicated), or a
/// pending sum.
struct Layout {
  int dim = -1;
  bool partial = false;
  bool operator==(const Layout &o) const {
    return dim == o.dim && partial == o.partial;
  }
};

struct Strategy {
  std::string name;
  SmallVector<Layout> operands; ///< one per operand (params: their split)
  Layout result;
  bool split = false; ///< compute divided by tp
};

ShapedType typeOf(Value v) { return cast<ShapedType>(v.getType()); }

bool isParamLike(Value v) {
  Operation *def = v.getDefiningOp();
  return def && isa<ParamOp, ConstantOp>(def);
}

class StrategyBuilder {
public:
  explicit StrategyBuilder(int64_t tp) : tp(tp) {}

  bool splittable(Value v, int d) const {
    auto t = typeOf(v);
    return d >= 0 && d < t.getRank() && t.getDimSize(d) >= tp &&
           t.getDimSize(d) % tp == 0;
  }

  /// Layout of operand `v` when a broadcasting op splits result dim `d`.
  Layout aligned(Value v, ShapedType result, int d) const {
    auto t = typeOf(v);
    int di = d - static_cast<int>(result.getRank() - t.getRank());
    if (di >= 0 && t.getDimSize(di) == result.getDimSize(d))
      return {di, false};
    return {};
  }

  Strategy replicated(Operation *op) const {
    Strategy s;
    s.name = "replicated";
    s.operands.assign(op->getNumOperands(), Layout());
    return s;
  }

  /// Elementwise-like: every result dim that divides.
  void broadcasting(Operation *op, SmallVectorImpl<Strategy> &out) const {
    auto result = typeOf(op->getResult(0));
    for (int d = 0; d < result.getRank(); ++d) {
      if (result.getDimSize(d) < tp || result.getDimSize(d) % tp)
        continue;
      Strategy s;
      s.name = "split" + std::to_string(d);
      s.split = true;
      for (Value v : op->getOperands())
        s.operands.push_back(aligned(v, result, d));
      s.result = {d, false};
      out.push_back(s);
    }
  }

  /// Ops that split on dims `dims` of their first operand and result alike.
  void sameDims(Operation *op, ArrayRef<int> dims,
                SmallVectorImpl<Strategy> &out) const {
    for (int d : dims) {
      if (!splittable(op->getResult(0), d))
        continue;
      Strategy s;
      s.name = "split" + std::to_string(d);
      s.split = true;
      s.operands.assign(op->getNumOperands(), Layout());
      s.operands[0] = {d, false};
      s.result = {d, false};
      out.push_back(s);
    }
  }

  void weightGemm(Operation *op, Value x, Value w, bool transposed,
                  Value bias, SmallVectorImpl<Strategy> &out) const {
    auto wt = typeOf(w);
    int outDim = transposed ? 0 : 1, inDim = transposed ? 1 : 0;
    auto index = [&](Value v) {
      for (unsigned i = 0; i < op->getNumOperands(); ++i)
        if (op->getOperand(i) == v)
          return static_cast<int>(i);
      return -1;
    };
    int xi = index(x), wi = index(w), bi = bias ? index(bias) : -1;
    int last = static_cast<int>(typeOf(x).getRank()) - 1;
    if (wt.getDimSize(outDim) % tp == 0) {
      Strategy s = replicated(op);
      s.name = "column";
      s.split = true;
      s.operands[wi] = {outDim, false};
      if (bi >= 0)
        s.operands[bi] = {0, false};
      s.result = {static_cast<int>(typeOf(op->getResult(0)).getRank()) - 1, false};
      out.push_back(s);
    }
    if (wt.getDimSize(inDim) % tp == 0) {
      Strategy s = replicated(op);
      s.name = "row";
      s.split = true;
      s.operands[xi] = {last, false};
      s.operands[wi] = {inDim, false};
      s.result = {-1, true};
      out.push_back(s);
    }
    for (int d = 0; d < last; ++d)
      if (splittable(x, d) && splittable(op->getResult(0), d)) {
        Strategy s = replicated(op);
        s.name = "batch" + std::to_string(d);
        s.split = true;
        s.operands[xi] = {d, false};
        s.result = {d, false};
        out.push_back(s);
      }
  }

  SmallVector<Strategy> of(Operation *op) const {
    SmallVector<Strategy> out{replicated(op)};
    if (tp <= 1 || op->getNumResults() == 0)
      return out;
    llvm::TypeSwitch<Operation *>(op)
        .Case([&](LinearOp l) {
          weightGemm(op, l.getInput(), l.getWeight(), l.getTransposeWeight(),
                     l.getBias(), out);
        })
        .Case([&](MatMulOp m) {
          auto rhs = typeOf(m.getRhs());
          Operation *def = m.getRhs().getDefiningOp();
          bool weight = rhs.getRank() == 2 && def &&
                        (isa<ParamOp>(def) ||
                         (isa<TransposeOp>(def) &&
                          isParamLike(def->getOperand(0))));
          if (weight) {
            weightGemm(op, m.getLhs(), m.getRhs(), false, Value(), out);
            return;
          }
          broadcastingBatch(op, out);
        })
        .Case([&](AttentionOp a) {
          auto q = typeOf(a.getQuery());
          auto result = typeOf(a.getResult());
          for (int d = 0; d + 2 < q.getRank(); ++d) {
            if (!splittable(a.getQuery(), d) || !splittable(a.getKey(), d) ||
                !splittable(a.getValue(), d))
              continue;
            Strategy s;
            s.name = d == q.getRank() - 3 ? "heads" : "split" + std::to_string(d);
            s.split = true;
            s.operands = {{d, false}, {d, false}, {d, false}};
            if (a.getMask())
              s.operands.push_back(aligned(a.getMask(), result, d));
            s.result = {d, false};
            out.push_back(s);
          }
        })
        .Case([&](GatherOp g) {
          auto table = typeOf(g.getInput());
          if (g.getAxis() == 0 && isParamLike(g.getInput()) &&
              table.getDimSize(0) % tp == 0) {
            Strategy s = replicated(op);
            s.name = "vocab";
            s.split = true;
            s.operands[0] = {0, false};
            s.result = {-1, true};
            out.push_back(s);
          }
          auto ids = typeOf(g.getIndices());
          for (int d = 0; d < ids.getRank(); ++d)
            if (g.getAxis() == 0 && splittable(g.getIndices(), d)) {
              Strategy s = replicated(op);
              s.name = "split" + std::to_string(d);
              s.split = true;
              s.operands[1] = {d, false};
              s.result = {d, false};
              out.push_back(s);
            }
        })
        .Case<SoftmaxOp, LogSoftmaxOp>([&](Operation *s) {
          int axis = static_cast<int>(static_cast<int64_t>(
              cast<IntegerAttr>(s->getAttr("axis")).getInt()));
          int rank = typeOf(s->getResult(0)).getRank();
          if (axis < 0)
            axis += rank;
          SmallVector<int> dims;
          for (int d = 0; d < rank; ++d)
            if (d != axis)
              dims.push_back(d);
          sameDims(op, dims, out);
        })
        .Case<LayerNormOp, RmsNormOp>([&](Operation *n) {
          int64_t axis = cast<IntegerAttr>(n->getAttr("axis")).getInt();
          SmallVector<int> dims;
          for (int d = 0; d < axis; ++d)
            dims.push_back(d);
          sameDims(op, dims, out);
        })
        .Case<BatchNormOp, Conv2DOp, MaxPool2DOp, AvgPool2DOp>(
            [&](Operation *) { sameDims(op, {0}, out); })
        .Case<ReduceSumOp, ReduceMeanOp, ReduceMaxOp>([&](Operation *r) {
          auto axes = cast<DenseI64ArrayAttr>(r->getAttr("axes")).asArrayRef();
          bool keep = r->hasAttr("keepdims");
          int rank = typeOf(r->getOperand(0)).getRank();
          SmallVector<bool> reduced(rank, false);
          for (int64_t a : axes)
            reduced[a < 0 ? a + rank : a] = true;
          int outDim = 0;
          for (int d = 0; d < rank; ++d) {
            if (reduced[d]) {
              if (keep)
                ++outDim;
              if (!isa<ReduceMaxOp>(r) && splittable(r->getOperand(0), d)) {
                Strategy s = replicated(op);
                s.name = "reduce" + std::to_string(d);
                s.split = true;
                s.operands[0] = {d, false};
                s.result = {-1, true};
                out.push_back(s);
              }
              continue;
            }
            if (splittable(r->getOperand(0), d)) {
              Strategy s = replicated(op);
              s.name = "split" + std::to_string(d);
              s.split = true;
              s.operands[0] = {d, false};
              s.result = {outDim, false};
              out.push_back(s);
            }
            ++outDim;
          }
        })
        .Case([&](ReshapeOp r) {
          auto in = typeOf(r.getInput()), res = typeOf(r.getResult());
          // Split dims map when everything before them has the same size.
          int64_t pin = 1;
          for (int j = 0; j < in.getRank(); ++j) {
            int64_t pout = 1;
            for (int k = 0; k < res.getRank(); ++k) {
              if (pout == pin && splittable(r.getInput(), j) &&
                  splittable(r.getResult(), k)) {
                Strategy s = replicated(op);
                s.name = "split" + std::to_string(k);
                s.split = true;
                s.operands[0] = {j, false};
                s.result = {k, false};
                out.push_back(s);
              }
              pout *= res.getDimSize(k);
            }
            pin *= in.getDimSize(j);
          }
        })
        .Case([&](TransposeOp t) {
          ArrayRef<int64_t> perm = t.getPermutation();
          for (int k = 0; k < static_cast<int>(perm.size()); ++k)
            if (splittable(t.getResult(), k)) {
              Strategy s = replicated(op);
              s.name = "split" + std::to_string(k);
              s.split = true;
              s.operands[0] = {static_cast<int>(perm[k]), false};
              s.result = {k, false};
              out.push_back(s);
            }
        })
        .Case([&](ExpandOp) { broadcasting(op, out); })
        .Case([&](SliceOp sl) {
          auto in = typeOf(sl.getInput());
          SmallVector<int> dims;
          for (int d = 0; d < in.getRank(); ++d)
            if (sl.getStarts()[d] == 0 && sl.getLimits()[d] == in.getDimSize(d) &&
                sl.getSteps()[d] == 1)
              dims.push_back(d);
          sameDims(op, dims, out);
        })
        .Case<ConcatOp, SplitOp>([&](Operation *c) {
          int64_t axis = cast<IntegerAttr>(c->getAttr("axis")).getInt();
          int rank = typeOf(c->getResult(0)).getRank();
          for (int d = 0; d < rank; ++d) {
            if (d == axis || !llvm::all_of(c->getResults(), [&](Value v) {
                  return splittable(v, d);
                }))
              continue;
            Strategy s;
            s.name = "split" + std::to_string(d);
            s.split = true;
            s.operands.assign(c->getNumOperands(), Layout{d, false});
            s.result = {d, false};
            out.push_back(s);
          }
        })
        .Case([&](TriluOp t) {
          SmallVector<int> dims;
          for (int d = 0; d + 2 < typeOf(t.getResult()).getRank(); ++d)
            dims.push_back(d);
          sameDims(op, dims, out);
        })
        .Default([&](Operation *o) {
          if (isa<AddOp, SubOp, MulOp, DivOp, PowOp, MaxOp, MinOp, AndOp, OrOp,
                  CmpOp, WhereOp, CastOp, NegOp, AbsOp, SqrtOp, RsqrtOp, ExpOp,
                  LogOp, TanhOp, ErfOp, ReciprocalOp, ReluOp, SigmoidOp,
                  SiluOp, NotOp, GeluOp, ShardOp>(o))
            broadcasting(o, out);
        });
    return out;
  }

  /// Products of activations: split a batch dimension both operands share.
  void broadcastingBatch(Operation *op, SmallVectorImpl<Strategy> &out) const {
    auto result = typeOf(op->getResult(0));
    for (int d = 0; d + 2 < result.getRank(); ++d) {
      if (!splittable(op->getResult(0), d))
        continue;
      Strategy s;
      s.name = "split" + std::to_string(d);
      s.split = true;
      for (Value v : op->getOperands())
        s.operands.push_back(aligned(v, result, d));
      s.result = {d, false};
      out.push_back(s);
    }
  }

  int64_t tp;
};

} // namespace

llvm::json::Value IntraOpResult::toJSON() const {
  llvm::json::Array r;
  for (auto &[name, role] : roles)
    r.push_back(llvm::json::Object{{"weight", name}, {"strategy", role}});
  return llvm::json::Object{{"ops", ops},           {"variables", variables},
                            {"constraints", constraints},
                            {"objective_s", objective}, {"gap", gap},
                            {"optimal", optimal},   {"solve_time_s", seconds},
                            {"memory_constraint_relaxed", memoryRelaxed},
                            {"weights", std::move(r)}};
}

llvm::Expected<IntraOpResult> mlir::colossal::annotateShardings(
    ModuleOp module, const cost::ParallelConfig &cfg,
    const cost::ClusterSpec &cluster, cost::DType dtype,
    int64_t batchPerReplica, double memoryBudget) {
  auto start = std::chrono::steady_clock::now();
  func::FuncOp func;
  for (auto f : module.getOps<func::FuncOp>())
    if (!f.isExternal())
      func = f;
  if (!func)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "no function to annotate");
  int numBlocks = 0;
  llvm::DenseMap<Operation *, int> layers = computeLayers(func, numBlocks);

  // Ops per block, and whether all blocks look alike (then block 0 speaks
  // for all of them).
  std::vector<SmallVector<Operation *>> blockOps(std::max(numBlocks, 1));
  SmallVector<Operation *> ops;
  func.walk([&](Operation *op) {
    if (!layers.count(op))
      return;
    ops.push_back(op);
    int l = layers.lookup(op);
    if (l >= 0 && l < numBlocks)
      blockOps[l].push_back(op);
  });
  bool alike = numBlocks > 1;
  for (int b = 1; alike && b < numBlocks; ++b) {
    alike = blockOps[b].size() == blockOps[0].size();
    for (size_t i = 0; alike && i < blockOps[b].size(); ++i)
      alike = blockOps[b][i]->getName() == blockOps[0][i]->getName() &&
              blockOps[b][i]->getResultTypes() == blockOps[0][i]->getResultTypes();
  }
  // representative(op): the block-0 op standing for `op`.
  llvm::DenseMap<Operation *, Operation *> representative;
  if (alike)
    for (int b = 1; b < numBlocks; ++b)
      for (size_t i = 0; i < blockOps[b].size(); ++i)
        representative[blockOps[b][i]] = blockOps[0][i];
  auto rep = [&](Operation *op) {
    auto it = representative.find(op);
    return it == representative.end() ? op : it->second;
  };
  llvm::DenseMap<Operation *, int> represented; // copies beyond the first
  for (auto &[copy, original] : representative)
    ++represented[original];

  // (1) Strategies and their compute times.
  cost::CommGroup group{cfg.tp, std::min<int64_t>(cfg.tp, cluster.gpus_per_node)};
  StrategyBuilder builder(cfg.tp);
  double mb = static_cast<double>(cfg.micro_batch);
  double e = cost::dtypeBytes(dtype);
  double peak = cluster.device.peakFlops(dtype) *
                cluster.efficiency.gemm_peak_fraction;
  auto bytesOf = [&](Value v) {
    auto t = typeOf(v);
    return static_cast<double>(t.getNumElements()) *
           (isa<FloatType>(t.getElementType()) ? e : 4.0) * mb;
  };
  ::colossal::search::IlpProblem problem;
  llvm::DenseMap<Operation *, int> nodeOf;
  std::vector<SmallVector<Strategy>> strategies;
  for (Operation *op : ops) {
    if (rep(op) != op)
      continue;
    SmallVector<Strategy> s = builder.of(op);
    // A sharding already in the input (a cg.shard, or cg.sharding on the
    // op) is a constraint: keep the strategies that produce it.
    ShardingAttr given;
    if (auto shard = dyn_cast<ShardOp>(op))
      given = shard.getSharding();
    else if (auto list = op->getAttrOfType<ArrayAttr>("cg.sharding"))
      if (!list.empty())
        given = dyn_cast<ShardingAttr>(list[0]);
    if (given) {
      Layout want;
      for (unsigned d = 0; d < given.getDims().size(); ++d)
        if (llvm::is_contained(given.getDimAxes(d), "tp"))
          want.dim = d;
      want.partial = llvm::is_contained(given.getPartialAxes(), "tp");
      SmallVector<Strategy> kept;
      for (Strategy &st : s)
        if (st.result == want)
          kept.push_back(st);
      if (kept.empty())
        return llvm::createStringError(
            llvm::inconvertibleErrorCode(),
            "the sharding given on '" + op->getName().getStringRef().str() +
                "' cannot be produced over tp=" + std::to_string(cfg.tp) +
                "; change or drop the annotation");
      s = std::move(kept);
    }
    double flops = forwardFlops(op) * mb;
    double bytes = 0;
    for (Value v : op->getOperands())
      if (!isParamLike(v))
        bytes += bytesOf(v);
    for (Value v : op->getResults())
      bytes += bytesOf(v);
    double full = 3.0 * (flops > 0 ? flops / peak : cost::memoryBoundTime(cluster, bytes));
    ::colossal::search::IlpProblem::Node node;
    node.name = op->getName().getStringRef().str();
    // A weight used whole on every tp rank while the ranks see different
    // rows (a batch split) gets different gradients on each: they are
    // all-reduced over tp once per step, so per micro-batch 1/m of that.
    double weightBytes = 0;
    for (Value v : op->getOperands()) {
      Value base = v;
      if (auto t = base.getDefiningOp<TransposeOp>())
        base = t.getInput();
      if (auto p = base.getDefiningOp<ParamOp>())
        weightBytes += static_cast<double>(typeOf(p.getResult()).getNumElements()) * e;
    }
    double microBatches = std::max<double>(
        1, static_cast<double>(batchPerReplica) / cfg.micro_batch);
    // Model-state bytes of this op's weights on one device, for every op
    // this one stands for (identical blocks) on one pipeline stage.
    double copies = 1 + represented.lookup(op);
    // Weights, gradients, fp32 master + moments, each divided by the
    // data-parallel degree from the ZeRO stage that shards it.
    double dp = static_cast<double>(cfg.dp);
    double stateBytesPerElement = e / (cfg.zero >= 3 ? dp : 1.0) +
                                  e / (cfg.zero >= 2 ? dp : 1.0) +
                                  12.0 / (cfg.zero >= 1 ? dp : 1.0);
    double weightElements = weightBytes / e;
    for (const Strategy &st : s) {
      double t = st.split ? full / cfg.tp : full;
      bool weightWhole = true;
      for (auto [i, v] : llvm::enumerate(op->getOperands()))
        if (isParamLike(v) || v.getDefiningOp<TransposeOp>())
          weightWhole &= st.operands[i].dim < 0;
      if (st.split && weightWhole && weightBytes > 0)
        t += cost::collectiveTime(cluster, cost::CollectiveKind::AllReduce,
                                  weightBytes, group) /
             microBatches;
      node.cost.push_back(t);
      node.memory.push_back(copies * weightElements * stateBytesPerElement /
                            (weightWhole ? 1.0 : static_cast<double>(cfg.tp)) /
                            static_cast<double>(cfg.pp));
    }
    nodeOf[op] = problem.nodes.size();
    problem.nodes.push_back(std::move(node));
    strategies.push_back(std::move(s));
  }

  // (2) Resharding costs on the edges, both directions of training.
  auto reshard = [&](Layout from, Layout to, double bytes) -> double {
    using K = cost::CollectiveKind;
    if (from == to)
      return 0;
    auto t = [&](K k) { return cost::collectiveTime(cluster, k, bytes, group); };
    if (from.partial)
      return to.dim < 0 ? t(K::AllReduce) : t(K::ReduceScatter) + t(K::AllGather);
    if (to.partial)
      return 1e6; // nothing consumes a pending sum as such
    if (from.dim >= 0 && to.dim < 0)
      return t(K::AllGather);
    if (from.dim < 0 && to.dim >= 0)
      return t(K::AllGather); // free slice forward, gather in backward
    return 2 * t(K::AllToAll);
  };
  for (Operation *op : ops) {
    if (rep(op) != op)
      continue;
    int v = nodeOf.lookup(op);
    for (auto [i, operand] : llvm::enumerate(op->getOperands())) {
      Operation *def = operand.getDefiningOp();
      if (!def || isParamLike(operand) || !layers.count(def))
        continue;
      Operation *src = rep(def);
      auto it = nodeOf.find(src);
      if (it == nodeOf.end() || src == op)
        continue;
      ::colossal::search::IlpProblem::Edge edge;
      edge.from = it->second;
      edge.to = v;
      double bytes = bytesOf(operand);
      for (const Strategy &ps : strategies[edge.from]) {
        std::vector<double> row;
        for (const Strategy &cs : strategies[v])
          row.push_back(reshard(ps.result, cs.operands[i], bytes));
        edge.cost.push_back(std::move(row));
      }
      problem.edges.push_back(std::move(edge));
    }
  }

  // (3) Solve.
  problem.memoryBudget = memoryBudget;
  auto solution = ::colossal::search::solveIlp(problem, 20.0);
  IntraOpResult result;
  if (!solution && memoryBudget > 0) {
    // The plan-level estimate and this per-op model count memory slightly
    // differently; rather than fail, choose by time alone and say so.
    llvm::consumeError(solution.takeError());
    problem.memoryBudget = 0;
    result.memoryRelaxed = true;
    solution = ::colossal::search::solveIlp(problem, 20.0);
  }
  if (!solution)
    return solution.takeError();
  result.ops = problem.nodes.size();
  result.variables = solution->variables;
  result.constraints = solution->constraints;
  result.objective = solution->objective;
  result.gap = solution->gap;
  result.optimal = solution->optimal;

  // (4) Annotate: value shardings, weight shardings, stages, remat.
  MLIRContext *ctx = module.getContext();
  Builder b(ctx);
  auto mesh = FlatSymbolRefAttr::get(ctx, "mesh");
  auto shardingOf = [&](Layout l, Value v) {
    SmallVector<Attribute> dims;
    auto t = typeOf(v);
    for (int d = 0; d < t.getRank(); ++d)
      dims.push_back(d == l.dim ? b.getStrArrayAttr({"tp"}) : b.getArrayAttr({}));
    ArrayAttr partial = l.partial ? b.getStrArrayAttr({"tp"}) : ArrayAttr();
    return ShardingAttr::get(ctx, mesh, b.getArrayAttr(dims), partial);
  };
  int64_t chunks = cfg.pp * (cfg.schedule == cost::Schedule::Interleaved
                                 ? cfg.virtual_stages : 1);
  int64_t perChunk = numBlocks > 0 ? std::max<int64_t>(1, numBlocks / chunks) : 1;
  llvm::DenseSet<Operation *> annotatedParams;
  for (Operation *op : ops) {
    int node = nodeOf.lookup(rep(op));
    const Strategy &s = strategies[node][solution->choice[node]];
    if (cfg.tp > 1) {
      SmallVector<Attribute> results;
      for (Value r : op->getResults())
        results.push_back(shardingOf(s.result, r));
      op->setAttr("cg.sharding", b.getArrayAttr(results));
      for (auto [i, operand] : llvm::enumerate(op->getOperands())) {
        Value base = operand;
        Layout l = s.operands[i];
        if (auto t = base.getDefiningOp<TransposeOp>())
          if (isParamLike(t.getInput())) {
            if (l.dim >= 0)
              l.dim = t.getPermutation()[l.dim];
            base = t.getInput();
          }
        auto param = base.getDefiningOp<ParamOp>();
        if (!param || !annotatedParams.insert(param).second)
          continue;
        param->setAttr("cg.sharding",
                       b.getArrayAttr({shardingOf(l, param.getResult())}));
        if (isa<LinearOp, MatMulOp>(op) && op == rep(op))
          result.roles.push_back({param.getName().str(), s.name});
      }
    }
    int layer = layers.lookup(op);
    int64_t stage = 0;
    if (layer >= numBlocks)
      stage = cfg.pp - 1;
    else if (layer >= 0)
      stage = (layer / perChunk) % cfg.pp;
    op->setAttr("cg.stage", b.getI64IntegerAttr(stage));
    bool inBlock = layer >= 0 && layer < numBlocks;
    if (inBlock && (cfg.recompute == cost::Recompute::Full ||
                    (cfg.recompute == cost::Recompute::Selective &&
                     isa<AttentionOp, SoftmaxOp>(op))))
      op->setAttr("cg.remat", b.getUnitAttr());
  }
  result.seconds = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - start)
                       .count();
  return result;
}
