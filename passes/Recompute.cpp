//===- Recompute.cpp - Activation checkpointing in the training step ------===//
//
// Steps: (1) the forward ops marked `cg.remat = G` form recompute group G
// (one per layer: the plan's full or per-layer recomputation; the
// attention core under selective recomputation), (2) of each group, the
// values the backward reads, except those forward ops outside the group
// also read (the group's outputs: the next layer's input, kept as the
// checkpoint), are recomputed: the group's ops that produce them are
// cloned right before the first backward op that reads one of them, from
// the same inputs (checkpoints, weights, random counters), (3) the backward
// reads the clones, so the forward values die at their last forward use and
// the memory plan gives their bytes back for the rest of the forward.
//
// Clones of cg.random_keep draw the same masks (counter-based: the counter
// is read, not advanced, by the draw; its assignment moves after the last
// clone that reads it), so a step with recomputation computes exactly what
// it computes without.
//
//===----------------------------------------------------------------------===//

#include "passes/GraphBuild.h"
#include "passes/Passes.h"

#include "dialects/Graph/IR/GraphOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/MapVector.h"

namespace mlir::colossal {
#define GEN_PASS_DEF_RECOMPUTEPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

/// The group of a marked op: the integer of `cg.remat` (a unit marks
/// group 0).
std::optional<int64_t> groupOf(Operation *op) {
  Attribute a = op->getAttr("cg.remat");
  if (!a)
    return std::nullopt;
  if (auto i = dyn_cast<IntegerAttr>(a))
    return i.getInt();
  return 0;
}

struct RecomputePass : mlir::colossal::impl::RecomputePassBase<RecomputePass> {
  using RecomputePassBase::RecomputePassBase;

  void runOnOperation() override {
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (!func.isExternal() && failed(run(func)))
        return signalPassFailure();
  }

  LogicalResult run(func::FuncOp func) {
    Block &body = func.getBody().front();
    DenseMap<Operation *, int64_t> pos;
    for (Operation &op : body)
      pos[&op] = static_cast<int64_t>(pos.size());
    // The backward starts after the op that computes the loss.
    Operation *lossDef = lossOp(func);
    int64_t loss = lossDef ? pos.lookup(lossDef) : -1;
    llvm::MapVector<int64_t, SmallVector<Operation *>> groups;
    for (Operation &op : body)
      if (auto g = groupOf(&op)) {
        if (loss < 0 || pos.lookup(&op) > loss)
          return op.emitError("cg.remat marks an op of the backward (or a "
                              "graph without a training loss): only forward "
                              "ops of a training step can be recomputed");
        groups[*g].push_back(&op);
      }
    auto backward = [&](Operation *user) {
      auto it = pos.find(user);
      return it != pos.end() && it->second > loss;
    };
    for (auto &[group, ops] : groups) {
      llvm::DenseSet<Operation *> inGroup(ops.begin(), ops.end());
      // Values to recompute and where the first backward reader is.
      SmallVector<Value> redo;
      for (Operation *op : ops)
        for (Value r : op->getResults()) {
          bool read = false, output = false;
          for (Operation *user : r.getUsers()) {
            if (backward(user))
              read = true;
            else if (!inGroup.contains(user))
              output = true;
          }
          if (read && !output)
            redo.push_back(r);
        }
      if (redo.empty())
        continue;
      Operation *first = nullptr;
      for (Value r : redo)
        for (Operation *user : r.getUsers())
          if (backward(user) &&
              (!first || pos.lookup(user) < pos.lookup(first)))
            first = user;
      // The group's ops those values depend on, in forward order.
      llvm::DenseSet<Operation *> needed;
      SmallVector<Value> work(redo.begin(), redo.end());
      while (!work.empty()) {
        Operation *def = work.pop_back_val().getDefiningOp();
        if (!def || !inGroup.contains(def) || !needed.insert(def).second)
          continue;
        for (Value operand : def->getOperands())
          work.push_back(operand);
      }
      OpBuilder b(first);
      IRMapping map;
      for (Operation *op : ops) {
        if (!needed.contains(op))
          continue;
        Operation *clone = b.clone(*op, map);
        clone->removeAttr("cg.remat");
        // In a pipelined step, the clone runs in its stage's backward (and
        // in its layer's, where layers are marked).
        if (clone->hasAttr("cg.stage") || clone->hasAttr("cg.layer"))
          clone->setAttr("cg.backward", b.getUnitAttr());
      }
      for (Value r : redo) {
        Value again = map.lookup(r);
        r.replaceUsesWithIf(
            again, [&](OpOperand &use) { return backward(use.getOwner()); });
      }
    }
    // A clone may read a parameter the step assigns before the clone (the
    // dropout counter, advanced in the forward): the assignment moves after
    // its last reader, so the clone reads the value the forward read.
    SmallVector<AssignOp> assigns(body.getOps<AssignOp>());
    for (AssignOp assign : assigns) {
      Operation *last = assign;
      for (Operation *user : assign.getParam().getUsers())
        if (user != assign && last->isBeforeInBlock(user))
          last = user;
      if (last != assign)
        assign->moveAfter(last);
    }
    // The marks have been carried out.
    for (auto &[group, ops] : groups)
      for (Operation *op : ops)
        op->removeAttr("cg.remat");
    return success();
  }
};

} // namespace
