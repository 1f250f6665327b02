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

using Layout = TensorLayout;
using Strategy = TpStrategy;

ShapedType typeOf(Value v) { return cast<ShapedType>(v.getType()); }

bool isParamLike(Value v) {
  Operation *def = v.getDefiningOp();
  return def && isa<ParamOp, ConstantOp>(def);
}

/// What `op` says it can do over `tp` devices (TensorParallelOpInterface);
/// ops without the interface run replicated.
SmallVector<Strategy> strategiesOf(Operation *op, int64_t tp) {
  SmallVector<Strategy> s;
  if (auto iface = dyn_cast<TensorParallelOpInterface>(op))
    iface.getTensorParallelStrategies(tp, s);
  else
    s.push_back(replicatedStrategy(op));
  return s;
}

} // namespace

llvm::json::Value IntraOpResult::toJSON() const {
  llvm::json::Array r;
  for (auto &[name, role] : roles)
    r.push_back(llvm::json::Object{{"weight", name}, {"strategy", role}});
  return llvm::json::Object{{"ops", ops},
                            {"variables", variables},
                            {"constraints", constraints},
                            {"objective_s", objective},
                            {"gap", gap},
                            {"optimal", optimal},
                            {"solve_time_s", seconds},
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
      alike =
          blockOps[b][i]->getName() == blockOps[0][i]->getName() &&
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
  cost::CommGroup group{cfg.tp,
                        std::min<int64_t>(cfg.tp, cluster.gpus_per_node)};
  double mb = static_cast<double>(cfg.micro_batch);
  double e = cost::dtypeBytes(dtype);
  double peak =
      cluster.device.peakFlops(dtype) * cluster.efficiency.gemm_peak_fraction;
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
    SmallVector<Strategy> s = strategiesOf(op, cfg.tp);
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
    double full = 3.0 * (flops > 0 ? flops / peak
                                   : cost::memoryBoundTime(cluster, bytes));
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
        weightBytes +=
            static_cast<double>(typeOf(p.getResult()).getNumElements()) * e;
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
    auto t = [&](K k) {
      return cost::collectiveTime(cluster, k, bytes, group);
    };
    if (from.partial)
      return to.dim < 0 ? t(K::AllReduce)
                        : t(K::ReduceScatter) + t(K::AllGather);
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
  // Activations (not weights) also split their batch dimension over the
  // data-parallel axis when it divides (it does when the graph was imported
  // with the per-replica batch; searched with batch 1, it does not).
  auto shardingOf = [&](Layout l, Value v, bool activation) {
    SmallVector<Attribute> dims;
    auto t = typeOf(v);
    for (int d = 0; d < t.getRank(); ++d) {
      SmallVector<StringRef> axes;
      if (activation && d == 0 && cfg.dp > 1 &&
          t.getDimSize(0) % (cfg.dp * (l.dim == 0 ? cfg.tp : 1)) == 0) {
        axes.push_back("dp");
      }
      if (d == l.dim && cfg.tp > 1)
        axes.push_back("tp");
      dims.push_back(b.getStrArrayAttr(axes));
    }
    ArrayAttr partial =
        l.partial && cfg.tp > 1 ? b.getStrArrayAttr({"tp"}) : ArrayAttr();
    return ShardingAttr::get(ctx, mesh, b.getArrayAttr(dims), partial);
  };
  int64_t chunks =
      cfg.pp *
      (cfg.schedule == cost::Schedule::Interleaved ? cfg.virtual_stages : 1);
  int64_t perChunk =
      numBlocks > 0 ? std::max<int64_t>(1, numBlocks / chunks) : 1;
  llvm::DenseSet<Operation *> annotatedParams;
  for (Operation *op : ops) {
    int node = nodeOf.lookup(rep(op));
    const Strategy &s = strategies[node][solution->choice[node]];
    if (cfg.tp > 1 || cfg.dp > 1) {
      SmallVector<Attribute> results;
      for (Value r : op->getResults())
        results.push_back(shardingOf(s.result, r, true));
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
        param->setAttr(
            "cg.sharding",
            b.getArrayAttr({shardingOf(l, param.getResult(), false)}));
        if (isa<LinearOp, MatMulOp>(op) && op == rep(op))
          result.roles.push_back({param.getName().str(), s.name});
      }
    }
    int layer = layers.lookup(op);
    int64_t stage = 0;
    if (layer >= numBlocks) {
      stage = cfg.pp - 1;
    } else if (layer >= 0 && !cfg.stage_layers.empty()) {
      for (int64_t end = cfg.stage_layers[0];
           layer >= end && stage + 1 < cfg.pp;)
        end += cfg.stage_layers[++stage];
    } else if (layer >= 0) {
      stage = (layer / perChunk) % cfg.pp;
    }
    op->setAttr("cg.stage", b.getI64IntegerAttr(stage));
    bool inBlock = layer >= 0 && layer < numBlocks;
    // recompute=full:K: the first K layers of every model chunk.
    bool chosen = cfg.recompute_layers == 0 ||
                  (inBlock && layer % perChunk < cfg.recompute_layers);
    if (inBlock && ((cfg.recompute == cost::Recompute::Full && chosen) ||
                    (cfg.recompute == cost::Recompute::Selective &&
                     isa<AttentionOp, SoftmaxOp>(op))))
      op->setAttr("cg.remat", b.getI64IntegerAttr(layer));
  }
  if (cfg.dp > 1)
    for (BlockArgument arg : func.getArguments()) {
      auto t = dyn_cast<RankedTensorType>(arg.getType());
      if (t && t.getRank() >= 1 && t.getDimSize(0) % cfg.dp == 0)
        func.setArgAttr(arg.getArgNumber(), "cg.sharding",
                        shardingOf(Layout(), arg, true));
    }
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return result;
}
