//===- Offload.cpp - State, weights or activations in the host pool -------===//
//
// Optimizer state (what=optimizer), per program (one per pipeline stage):
// (1) the optimizer state tensors (parameters with cg.role = "optimizer" of
// more than one element: Adam's moments, momentum, accumulated gradients)
// are marked `cg.host`, so the memory plan puts them in the rank's host pool
// instead of its device arena; (2) each is copied to the device right
// before its first reader (the update of its weight), and its readers read
// the copy; (3) its assignment writes the new value back to the host pool
// (the plan's copy to host). The device then holds one weight's state at a
// time. what=params also keeps the weights there, each copied to the
// device a layer ahead of the layer that reads it. what=activations (on the
// rank's program before the pipeline split): each forward value the backward of
// a marked layer reads goes to the host after it is made and comes back a layer
// ahead of its first backward reader.
//
//===----------------------------------------------------------------------===//

#include "passes/GraphBuild.h"
#include "passes/Passes.h"
#include "passes/Sharding.h"

#include "dialects/Dist/IR/DistOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/MapVector.h"

#include <map>
#include <tuple>

namespace mlir::colossal {
#define GEN_PASS_DEF_OFFLOADPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

struct OffloadPass : mlir::colossal::impl::OffloadPassBase<OffloadPass> {
  using OffloadPassBase::OffloadPassBase;

  void runOnOperation() override {
    if (what == "none")
      return;
    if (what != "optimizer" && what != "params" && what != "activations") {
      getOperation().emitError("colossal-offload: what='")
          << what
          << "' is not one of none, optimizer (the optimizer state in host "
             "memory), params (the weights too) or activations";
      return signalPassFailure();
    }
    if (what == "activations") {
      int64_t moved = 0;
      for (auto func : getOperation().getOps<func::FuncOp>())
        if (!func.isExternal())
          moved += offloadActivations(func);
      if (moved == 0) {
        getOperation().emitError(
            "colossal-offload: offload=activations, but no activation kept "
            "for the backward can leave the device: the program needs a "
            "training step whose layers are marked (colossal-mark-layers) "
            "and at least two of them");
        return signalPassFailure();
      }
      return;
    }
    if (update != "host" && update != "device") {
      getOperation().emitError("colossal-offload: update='")
          << update << "' is not one of host (the optimizer step runs in host "
          << "memory, as ZeRO-Offload) or device";
      return signalPassFailure();
    }
    int64_t moved = 0;
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (!func.isExternal())
        moved += update == "host" ? offloadWithHostUpdate(func) : offload(func);
    if (moved == 0) {
      getOperation().emitError(
          "colossal-offload: offload=" + what +
          ", but the program has no optimizer state to move (compile a "
          "training step with --optimizer)");
      return signalPassFailure();
    }
  }

  /// Activations: each forward value a backward op of a marked layer
  /// reads goes to the host right after it is made and comes back one layer
  /// ahead of its first backward reader (at the start of the backward of
  /// the layer after the reader's, which runs just before it), so the
  /// device holds two layers' kept activations at a time. What the last
  /// layer's backward reads first stays: it would come straight back.
  int64_t offloadActivations(func::FuncOp func) {
    Block &body = func.getBody().front();
    DenseMap<Operation *, int64_t> pos;
    int64_t boundary = -1;
    for (Operation &op : body) {
      pos[&op] = static_cast<int64_t>(pos.size());
      // (The canonicalizer hoists the backward's constants to the top.)
      if (boundary < 0 && op.hasAttr("cg.backward") &&
          !isa<ParamOp, ConstantOp>(op))
        boundary = pos[&op];
    }
    if (boundary < 0)
      return 0;
    // The first backward op of each layer.
    DenseMap<int64_t, Operation *> layerStart;
    for (Operation &op : body)
      if (pos[&op] >= boundary && op.hasAttr("cg.backward") &&
          layerOf(&op) >= 0)
        layerStart.try_emplace(layerOf(&op), &op);
    SmallVector<Operation *> forward;
    for (Operation &op : body)
      if (pos.lookup(&op) < boundary && !isa<ParamOp, ConstantOp>(op))
        forward.push_back(&op);
    int64_t moved = 0;
    for (Operation *op : forward)
      for (Value v : op->getResults())
        moved += offloadValue(op, v, pos, boundary, layerStart);
    return moved;
  }

  static int64_t layerOf(Operation *op) {
    auto l = op->getAttrOfType<IntegerAttr>("cg.layer");
    return l ? l.getInt() : -1;
  }

  /// The layer runs of a program: maximal stretches of ops of one layer,
  /// phase and pipeline chunk (colossal-mark-layers' cg.layer, as the
  /// backward and colossal-pipeline's micro-batches repeat them); ops
  /// without a layer do not break a run.
  struct LayerRuns {
    DenseMap<Operation *, int64_t> pos;
    DenseMap<Operation *, int64_t> runOf; // marked ops only
    SmallVector<Operation *> start;       // each run's first op
  };

  static LayerRuns layerRuns(Block &body) {
    LayerRuns runs;
    auto key = [](Operation *op) {
      return std::make_tuple(layerOf(op), op->hasAttr("cg.backward"),
                             op->getAttr("cg.stage"),
                             op->getAttr("cg.virtual"));
    };
    Operation *last = nullptr;
    for (Operation &op : body) {
      runs.pos[&op] = static_cast<int64_t>(runs.pos.size());
      if (layerOf(&op) < 0)
        continue;
      if (!last || key(last) != key(&op))
        runs.start.push_back(&op);
      runs.runOf[&op] = static_cast<int64_t>(runs.start.size()) - 1;
      last = &op;
    }
    return runs;
  }

  /// The first op of a layer that reads what `user` makes (itself when it
  /// is in one), through the ops outside layers that only carry a weight
  /// there (ZeRO-3's gather and the reshapes, concatenation and slices of
  /// its bucket, a cast to the compute type); null if none.
  static Operation *layerReader(Operation *user, const LayerRuns &runs,
                                int depth = 8) {
    if (layerOf(user) >= 0)
      return user;
    if (depth == 0 || !isa<cgd::AllGatherOp, ReshapeOp, ConcatOp, SliceOp,
                           TransposeOp, CastOp>(user))
      return nullptr;
    Operation *best = nullptr;
    for (Value r : user->getResults())
      for (Operation *next : r.getUsers())
        if (Operation *found = layerReader(next, runs, depth - 1))
          if (!best || runs.pos.lookup(found) < runs.pos.lookup(best))
            best = found;
    return best;
  }

  /// Brings the host weight `w` to the device for `uses`, a layer ahead:
  /// the uses by one layer run (directly or through its gather) share a
  /// copy made at the start of the run before it (so the device holds two
  /// layers' weights at a time, the one in use and the next, as the cost
  /// model's double-buffered prefetch); consecutive runs that both read `w`
  /// share one copy; a use outside layers gets a copy right before it.
  static void copyWeightAhead(Value w, ArrayRef<OpOperand *> uses,
                              const LayerRuns &runs) {
    std::map<int64_t, SmallVector<OpOperand *>> byRun;
    for (OpOperand *use : uses) {
      Operation *reader = layerReader(use->getOwner(), runs);
      if (!reader) {
        OpBuilder b(use->getOwner());
        use->set(b.create<cgd::CopyToDeviceOp>(w.getLoc(), w.getType(), w));
        continue;
      }
      byRun[runs.runOf.lookup(reader)].push_back(use);
    }
    int64_t previousRun = -2;
    Value previous;
    for (auto &[run, group] : byRun) {
      Operation *first = group.front()->getOwner();
      for (OpOperand *use : group)
        if (runs.pos.lookup(use->getOwner()) < runs.pos.lookup(first))
          first = use->getOwner();
      if (run != previousRun + 1 || !previous) {
        Operation *at = first;
        if (run > 0 &&
            runs.pos.lookup(runs.start[run - 1]) < runs.pos.lookup(first))
          at = runs.start[run - 1];
        // (A parameter is made by an op without operands, wherever
        // partitioning left it: it can come first.)
        if (Operation *def = w.getDefiningOp();
            def && def->getBlock() == at->getBlock() &&
            at->isBeforeInBlock(def))
          def->moveBefore(at);
        OpBuilder b(at);
        auto copy = b.create<cgd::CopyToDeviceOp>(w.getLoc(), w.getType(), w);
        Operation *reader = layerReader(first, runs);
        copyMarks(reader, copy, reader->hasAttr("cg.backward"));
        previous = copy.getResult();
      }
      for (OpOperand *use : group)
        use->set(previous);
      previousRun = run;
    }
  }

  /// Offloads `v`, made by the forward op `op`, if the backward reads it:
  /// returns whether it did.
  bool offloadValue(Operation *op, Value v,
                    const DenseMap<Operation *, int64_t> &pos, int64_t boundary,
                    const DenseMap<int64_t, Operation *> &layerStart) {
    auto type = dyn_cast<RankedTensorType>(v.getType());
    if (!type || type.getNumElements() <= 1)
      return false;
    SmallVector<OpOperand *> later;
    Operation *first = nullptr;
    for (OpOperand &use : v.getUses()) {
      Operation *user = use.getOwner();
      if (isa<func::ReturnOp>(user))
        return false; // an output of the step stays
      if (pos.lookup(user) < boundary)
        continue;
      later.push_back(&use);
      if (!first || pos.lookup(user) < pos.lookup(first))
        first = user;
    }
    if (!first || layerOf(first) < 0)
      return false;
    // In a pipeline, a value another chunk reads crosses to it on the device.
    for (OpOperand *use : later)
      for (StringRef mark : {"cg.stage", "cg.virtual"})
        if (use->getOwner()->getAttr(mark) != op->getAttr(mark))
          return false;
    Operation *ahead = layerStart.lookup(layerOf(first) + 1);
    if (!ahead)
      return false; // read first by the layer the backward starts with
    Operation *at = pos.lookup(ahead) < pos.lookup(first) ? ahead : first;
    OpBuilder b(op);
    b.setInsertionPointAfter(op);
    auto out = b.create<cgd::CopyToHostOp>(op->getLoc(), type, v);
    out->setAttr("cg.host", UnitAttr::get(op->getContext()));
    copyMarks(op, out, /*backward=*/false);
    b.setInsertionPoint(at);
    auto back =
        b.create<cgd::CopyToDeviceOp>(op->getLoc(), type, out.getResult());
    copyMarks(first, back, /*backward=*/true);
    for (OpOperand *use : later)
      use->set(back.getResult());
    return true;
  }

  /// The pipeline marks of `from` (stage, chunk, phase) on `to`, so
  /// colossal-pipeline runs the copy where its neighbour runs.
  static void copyMarks(Operation *from, Operation *to, bool backward) {
    for (StringRef mark : {"cg.stage", "cg.virtual", "cg.layer"})
      if (Attribute a = from->getAttr(mark))
        to->setAttr(mark, a);
    if (backward && from->hasAttr("cg.backward"))
      to->setAttr("cg.backward", UnitAttr::get(to->getContext()));
  }

  /// update=host: the optimizer state (and its weights) live in the host
  /// pool and the update runs there (ZeRO-Offload): (1) state tensors and
  /// the weights they update are marked `cg.host`; (2) the update's ops --
  /// those reading a host value, and cheap elementwise ones all of whose
  /// users are host ops -- are marked `cg.host` (they run on the host and
  /// their results live in the host pool); (3) each device value a host op
  /// reads (a gradient, a scalar) is copied to the host once, and each host
  /// value a device op reads comes to the device once (a weight before its
  /// first forward reader, so the device holds it for the step; with
  /// what=params before each reader).
  int64_t offloadWithHostUpdate(func::FuncOp func) {
    Block &body = func.getBody().front();
    // Step 1: host parameters.
    llvm::StringMap<ParamOp> weights;
    SmallVector<ParamOp> states;
    for (ParamOp param : func.getOps<ParamOp>()) {
      auto type = typeOf(param.getResult());
      if (type.getNumElements() <= 1 || !isa<FloatType>(type.getElementType()))
        continue;
      auto role = param->getAttrOfType<StringAttr>("cg.role");
      if (role && role.getValue() == "optimizer")
        states.push_back(param);
      else
        weights[param.getName()] = param;
    }
    DenseSet<Value> host;
    for (ParamOp state : states) {
      host.insert(state.getResult());
      // colossal-optimizer names state "<optimizer>.<state>:<weight>".
      if (auto it = weights.find(state.getName().split(':').second);
          it != weights.end())
        host.insert(it->second.getResult());
    }
    if (what == "params")
      for (auto &[name, weight] : weights)
        host.insert(weight.getResult());
    for (Value v : host)
      v.getDefiningOp()->setAttr("cg.host", UnitAttr::get(&getContext()));
    // Step 2: host ops. Forward from the state...
    auto hostCapable = [](Operation *op) {
      return op->getDialect() && isa<CGDialect>(op->getDialect()) &&
             !isa<ParamOp, ConstantOp, AssignOp, ShardOp>(op) &&
             op->getNumResults() > 0;
    };
    DenseSet<Value> reached(host.begin(), host.end());
    for (ParamOp weight : llvm::make_second_range(weights))
      reached.erase(weight.getResult()); // a weight alone starts no update
    DenseSet<Operation *> onHost;
    for (Operation &op : body)
      if (hostCapable(&op) && llvm::any_of(op.getOperands(), [&](Value v) {
            return reached.contains(v);
          })) {
        onHost.insert(&op);
        for (Value r : op.getResults())
          reached.insert(r);
      }
    // ... then back through elementwise ops only host ops read, with at
    // most one operand that is not a constant, parameter, scalar or value
    // going to the host anyway: copying that operand instead of the result
    // moves as many bytes, and lets ops that share it share the copy.
    auto hostUser = [&](OpOperand &use) {
      Operation *user = use.getOwner();
      if (onHost.contains(user))
        return true;
      auto assign = dyn_cast<AssignOp>(user);
      return assign && host.contains(assign.getParam());
    };
    auto goesToHost = [&](Value v) {
      Operation *def = v.getDefiningOp();
      return (def && isa<ParamOp, ConstantOp>(def)) ||
             typeOf(v).getNumElements() <= 1 || host.contains(v) ||
             llvm::any_of(v.getUses(), hostUser);
    };
    for (bool changed = true; changed;) {
      changed = false;
      for (Operation &op : llvm::reverse(body)) {
        if (onHost.contains(&op) || !hostCapable(&op) ||
            !(isPointwise(&op) || isa<ExpandOp, ReshapeOp>(op)) ||
            op.use_empty())
          continue;
        bool allHost = llvm::all_of(op.getUses(), hostUser);
        DenseSet<Value> staying;
        for (Value v : op.getOperands())
          if (!goesToHost(v))
            staying.insert(v);
        if (allHost && staying.size() <= 1) {
          onHost.insert(&op);
          changed = true;
        }
      }
    }
    // Constants only host ops read live in the host pool.
    for (ConstantOp c : func.getOps<ConstantOp>())
      if (!c->use_empty() && llvm::all_of(c->getUses(), hostUser))
        onHost.insert(c);
    for (Operation *op : onHost)
      op->setAttr("cg.host", UnitAttr::get(&getContext()));
    auto isHost = [&](Value v) {
      Operation *def = v.getDefiningOp();
      return host.contains(v) || (def && onHost.contains(def));
    };
    // Step 3: copies at the boundaries, one per value and direction (with
    // what=params a weight comes to the device before each reader).
    DenseMap<Value, Value> toHost, toDevice;
    llvm::MapVector<Value, SmallVector<OpOperand *>> weightUses;
    for (Operation &op : llvm::make_early_inc_range(body)) {
      bool opOnHost = onHost.contains(&op);
      auto assign = dyn_cast<AssignOp>(op);
      for (OpOperand &use : op.getOpOperands()) {
        Value v = use.get();
        if (assign && use.getOperandNumber() == 1)
          continue; // the parameter written
        // A host parameter written with a host value stays in the pool.
        bool wantHost =
            opOnHost || (assign && host.contains(assign.getParam()));
        if (wantHost == isHost(v))
          continue;
        OpBuilder b(&op);
        if (wantHost) {
          Value &copy = toHost[v];
          if (!copy) {
            auto c = b.create<cgd::CopyToHostOp>(op.getLoc(), v.getType(), v);
            c->setAttr("cg.host", UnitAttr::get(&getContext()));
            copyMarks(&op, c, op.hasAttr("cg.backward"));
            copy = c.getResult();
          }
          use.set(copy);
          continue;
        }
        if (what == "params" && v.getDefiningOp<ParamOp>()) {
          weightUses[v].push_back(&use); // placed below, a layer ahead
          continue;
        }
        Value &copy = toDevice[v];
        if (!copy) {
          auto c = b.create<cgd::CopyToDeviceOp>(op.getLoc(), v.getType(), v);
          copyMarks(&op, c, op.hasAttr("cg.backward"));
          copy = c.getResult();
        }
        use.set(copy);
      }
    }
    LayerRuns runs = layerRuns(body);
    for (auto &[weight, uses] : weightUses)
      copyWeightAhead(weight, uses, runs);
    return static_cast<int64_t>(states.size());
  }

  int64_t offload(func::FuncOp func) {
    int64_t moved = 0;
    LayerRuns runs = layerRuns(func.getBody().front());
    for (ParamOp param : llvm::to_vector(func.getOps<ParamOp>())) {
      auto role = param->getAttrOfType<StringAttr>("cg.role");
      bool state = role && role.getValue() == "optimizer";
      if (typeOf(param.getResult()).getNumElements() <= 1 ||
          !isa<FloatType>(typeOf(param.getResult()).getElementType()))
        continue;
      if (!state && what == "params") {
        // A weight: copied to the device a layer ahead of each layer that
        // reads it (forward and backward apart), so the device holds two
        // layers' weights at a time, as ZeRO-Infinity prefetches them.
        SmallVector<OpOperand *> uses;
        for (OpOperand &use : param.getResult().getUses())
          if (!(isa<AssignOp>(use.getOwner()) && use.getOperandNumber() == 1))
            uses.push_back(&use);
        if (uses.empty())
          continue;
        param->setAttr("cg.host", UnitAttr::get(&getContext()));
        copyWeightAhead(param.getResult(), uses, runs);
        continue;
      }
      if (!state)
        continue;
      // Readers other than the write-back, in program order.
      Operation *first = nullptr;
      for (Operation *user : param.getResult().getUsers()) {
        if (auto assign = dyn_cast<AssignOp>(user);
            assign && assign.getParam() == param.getResult())
          continue;
        if (!first || user->isBeforeInBlock(first))
          first = user;
      }
      param->setAttr("cg.host", UnitAttr::get(&getContext()));
      ++moved;
      if (!first)
        continue;
      OpBuilder b(first);
      Value copy =
          b.create<cgd::CopyToDeviceOp>(param.getLoc(), param.getType(), param);
      param.getResult().replaceUsesWithIf(copy, [&](OpOperand &use) {
        auto assign = dyn_cast<AssignOp>(use.getOwner());
        return use.getOwner() != copy.getDefiningOp() &&
               !(assign && use.getOperandNumber() == 1);
      });
    }
    return moved;
  }
};

} // namespace
