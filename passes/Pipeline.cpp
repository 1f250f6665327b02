//===- Pipeline.cpp - One program per pipeline stage, with its schedule ---===//
//
// Steps: (1) place every op of the one-micro-batch program: its model chunk
// and phase (forward, backward, or the once-per-step update), from the marks
// of colossal-mark-stages, colossal-autodiff and colossal-optimizer, or from
// its first user when a later pass made it; parameters, constants and pure
// functions of them are made wherever they are used. (2) Order each stage's
// micro-batch phases as the schedule says. (3) Build each stage's function
// by cloning, per schedule entry, the ops of that chunk and phase, with a
// send after every value another stage needs and a receive before its first
// use; values the update reads are summed over the micro-batches as they
// are made. (4) The update and the outputs, once, in program order: every
// stage walks the same ops, so the sends one stage owes and the receives
// another waits for are emitted in the same order.
//
//===----------------------------------------------------------------------===//

#include "compiler/cost/Pipeline.h"
#include "passes/GraphBuild.h"
#include "passes/Passes.h"

#include "dialects/Dist/IR/DistOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/SetVector.h"

#include <map>
#include <optional>
#include <set>

namespace mlir::colossal {
#define GEN_PASS_DEF_PIPELINEPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

enum class Phase { Global, Dup, Forward, Backward, Update };

struct Place {
  Phase phase = Phase::Global;
  int64_t chunk = -1; // model chunk v * stages + s; -1: none
};

/// One micro-batch's forward or backward of one model chunk.
struct Entry {
  Phase phase;
  int64_t chunk;
  int64_t micro;
};

/// The order in which stage `s` runs its micro-batches' phases: the cost
/// model's (scheduleOrder), which its estimate plays out.
SmallVector<Entry> scheduleFor(StringRef schedule, int64_t stages, int64_t virt,
                               int64_t micro, int64_t s, bool training) {
  namespace cost = ::colossal::cost;
  cost::Schedule kind = virt > 1              ? cost::Schedule::Interleaved
                        : schedule == "gpipe" ? cost::Schedule::GPipe
                                              : cost::Schedule::OneFOneB;
  SmallVector<Entry> out;
  for (const cost::ScheduleEntry &e :
       cost::scheduleOrder(kind, stages, virt, micro, s, training))
    out.push_back(
        {e.backward ? Phase::Backward : Phase::Forward, e.chunk, e.micro});
  return out;
}

struct Splitter {
  ModuleOp module;
  func::FuncOp func;
  int64_t P, V, M;
  std::string schedule;
  bool training;
  MLIRContext *ctx;
  FlatSymbolRefAttr meshRef;

  SmallVector<Operation *> ops;
  DenseMap<Operation *, int64_t> pos;
  DenseMap<Operation *, Place> place;
  // Placed ops by (phase, chunk), in program order.
  std::map<std::pair<int, int64_t>, SmallVector<Operation *>> opsOf;
  struct Needs {
    llvm::SmallSetVector<int64_t, 4>
        microStages;     // other stages, per micro-batch
    bool update = false; // read by the update or returned: summed
  };
  DenseMap<Value, Needs> needs;
  // Stages that make a parameter, constant or pure function of them.
  DenseMap<Operation *, llvm::SmallSetVector<int64_t, 4>> madeOn;
  DenseMap<Value, int64_t> valueIds;

  int64_t stageOf(int64_t chunk) const { return chunk % P; }

  /// Inference outputs of several micro-batches are concatenated back in
  /// input order; training's (scalars) are averaged.
  int64_t batchWays = 1; // how many pieces dim 0 of the inputs is cut into
  bool concatOutputs() const { return !training && M > 1; }
  Type combinedType(Value v) const {
    auto type = cast<RankedTensorType>(v.getType());
    if (!concatOutputs() || type.getRank() == 0)
      return type;
    SmallVector<int64_t> shape(type.getShape());
    shape[0] *= M;
    return RankedTensorType::get(shape, type.getElementType());
  }

  int64_t tag(Value v, int64_t micro) {
    auto [it, added] =
        valueIds.try_emplace(v, static_cast<int64_t>(valueIds.size()));
    (void)added;
    return it->second * (M + 1) + micro;
  }

  std::optional<Place> marked(Operation *op) {
    if (isa<AssignOp>(op) || op->hasAttr("cg.update"))
      return Place{Phase::Update, -1};
    auto stage = op->getAttrOfType<IntegerAttr>("cg.stage");
    if (!stage)
      return std::nullopt;
    int64_t chunk = stage.getInt();
    if (auto v = op->getAttrOfType<IntegerAttr>("cg.virtual"))
      chunk += v.getInt() * P;
    if (chunk < 0 || chunk >= P * V) {
      op->emitError("cg.stage/cg.virtual name model chunk ")
          << chunk << ", but the pipeline has " << P * V
          << " (pp x virtual stages)";
      return Place{Phase::Global, -2};
    }
    return Place{op->hasAttr("cg.backward") ? Phase::Backward : Phase::Forward,
                 chunk};
  }

  Place placeOf(Value v) {
    if (isa<BlockArgument>(v))
      return Place{Phase::Forward, -1}; // an input: sliced where it is read
    return place.lookup(v.getDefiningOp());
  }

  static bool perMicro(Phase p) {
    return p == Phase::Forward || p == Phase::Backward;
  }

  LogicalResult placeOps() {
    Block &body = func.getBody().front();
    if (llvm::none_of(body,
                      [](Operation &op) { return op.hasAttr("cg.stage"); }))
      return func.emitError("has no pipeline stages: colossal-pipeline needs "
                            "the forward marked by colossal-mark-stages");
    for (Operation &op : body.without_terminator()) {
      pos[&op] = static_cast<int64_t>(ops.size());
      ops.push_back(&op);
    }
    // Parameters, constants, and pure functions of them.
    for (Operation *op : ops) {
      if (isa<ParamOp, ConstantOp>(op)) {
        place[op] = {Phase::Global, -1};
        continue;
      }
      bool pure = op->getDialect() &&
                  op->getDialect()->getNamespace() ==
                      CGDialect::getDialectNamespace() &&
                  isMemoryEffectFree(op) &&
                  !isa<RandomKeepOp, AssignOp, DropoutOp>(op) &&
                  op->getNumOperands() > 0 && op->getNumResults() > 0;
      if (pure && llvm::all_of(op->getOperands(), [&](Value v) {
            Operation *def = v.getDefiningOp();
            if (!def)
              return false;
            Phase p = place.lookup(def).phase;
            return place.count(def) && (p == Phase::Global || p == Phase::Dup);
          }))
        place[op] = {Phase::Dup, -1};
    }
    // The rest: marks, or the first user's place (users come first here).
    Operation *ret = body.getTerminator();
    SmallVector<Operation *> unplaced;
    for (Operation *op : llvm::reverse(ops)) {
      if (place.count(op))
        continue;
      if (std::optional<Place> p = marked(op)) {
        if (p->chunk == -2)
          return failure();
        place[op] = *p;
        continue;
      }
      Operation *first = nullptr;
      for (Value r : op->getResults())
        for (Operation *user : r.getUsers())
          if (user != ret && (!first || pos.lookup(user) < pos.lookup(first)))
            first = user;
      if (first && place.count(first))
        place[op] = place.lookup(first);
      else
        unplaced.push_back(op);
    }
    // Ops only returned or unused: after their latest operand.
    for (Operation *op : llvm::reverse(unplaced)) {
      Place best{Phase::Forward, 0};
      for (Value v : op->getOperands()) {
        Place p = placeOf(v);
        if (p.chunk >= 0 &&
            static_cast<int>(p.phase) >= static_cast<int>(best.phase))
          best = p;
      }
      place[op] = best;
    }
    // A backward sum of two stages' values that only the update reads (a
    // tied weight's gradient: the head's share from the last stage, the
    // embedding's from the first) is summed once per step, in the update,
    // from each stage's sum over the micro-batches, instead of crossing
    // the pipeline every micro-batch. Users first.
    for (Operation *op : llvm::reverse(ops)) {
      Place p = place.lookup(op);
      if (p.phase != Phase::Backward || !isa<AddOp>(op) ||
          !isa<FloatType>(typeOf(op->getResult(0)).getElementType()))
        continue;
      Place a = placeOf(op->getOperand(0)), b = placeOf(op->getOperand(1));
      if (!perMicro(a.phase) || !perMicro(b.phase) || a.chunk < 0 ||
          b.chunk < 0 || stageOf(a.chunk) == stageOf(b.chunk))
        continue;
      bool updateOnly = !op->getResult(0).use_empty();
      for (Operation *user : op->getResult(0).getUsers())
        updateOnly &= user != ret && place.lookup(user).phase == Phase::Update;
      if (updateOnly)
        place[op] = {Phase::Update, p.chunk};
    }
    // The update's ops run where their first placed operand was made.
    for (Operation *op : ops) {
      Place &p = place[op];
      if (p.phase != Phase::Update || p.chunk >= 0 || isa<AssignOp>(op))
        continue;
      for (Value v : op->getOperands()) {
        Place q = placeOf(v);
        if (q.phase != Phase::Global && q.phase != Phase::Dup && q.chunk >= 0) {
          p.chunk = q.chunk;
          break;
        }
      }
      if (p.chunk < 0)
        p.chunk = 0;
    }
    for (Operation *op : ops) {
      Place p = place.lookup(op);
      if (perMicro(p.phase) && p.chunk < 0)
        return op->emitError("has no pipeline stage: colossal-pipeline needs "
                             "the forward marked by colossal-mark-stages");
      if (perMicro(p.phase))
        opsOf[{static_cast<int>(p.phase), p.chunk}].push_back(op);
    }
    return success();
  }

  /// The schedules run every micro-batch's forward of chunk c before its
  /// forward of chunk c + 1 and its backward of chunk c + 1 before that of
  /// c: a value may only flow that way.
  LogicalResult check() {
    for (Operation *op : ops) {
      Place p = place.lookup(op);
      if (!perMicro(p.phase) && !isa<AssignOp>(op))
        continue;
      for (Value v : op->getOperands()) {
        Place q = placeOf(v);
        if (isa<BlockArgument>(v)) {
          auto type = cast<ShapedType>(v.getType());
          if (p.phase == Phase::Update && type.getRank() > 0)
            return op->emitError("the optimizer step reads input #")
                   << cast<BlockArgument>(v).getArgNumber()
                   << " directly; pipelines give inputs to micro-batches";
          continue;
        }
        if (isa<AssignOp>(op)) {
          if (perMicro(q.phase) &&
              !isa<FloatType>(cast<ShapedType>(v.getType()).getElementType()))
            return op->emitError("writes a value of one micro-batch into a "
                                 "parameter; pipelines cannot average it");
          continue;
        }
        if (p.phase == Phase::Forward && q.phase == Phase::Forward &&
            q.chunk > p.chunk)
          return op->emitError("the forward of model chunk ")
                 << p.chunk << " reads a value of the later chunk " << q.chunk
                 << "; pipeline stages must follow the model's order";
        if (p.phase == Phase::Forward && q.phase == Phase::Backward)
          return op->emitError("a forward op reads a backward value");
        if (p.phase == Phase::Backward && q.phase == Phase::Backward &&
            q.chunk < p.chunk)
          return op->emitError("the backward of model chunk ")
                 << p.chunk << " reads a backward value of the earlier chunk "
                 << q.chunk;
        if (q.phase == Phase::Update)
          return op->emitError("a micro-batch reads a value of the optimizer "
                               "step");
      }
    }
    // An assignment must follow every read of its parameter.
    for (Operation *op : ops)
      if (auto assign = dyn_cast<AssignOp>(op))
        for (Operation *user : assign.getParam().getUsers())
          if (user != op && pos.count(user) &&
              pos.lookup(user) > pos.lookup(op))
            return op->emitError("a parameter is read after it is assigned; "
                                 "colossal-pipeline needs assignments last");
    return success();
  }

  void computeNeeds() {
    Operation *ret = func.getBody().front().getTerminator();
    for (Operation *op : ops) {
      Place p = place.lookup(op);
      for (Value v : op->getOperands()) {
        if (isa<BlockArgument>(v))
          continue;
        Place q = placeOf(v);
        if (!perMicro(q.phase))
          continue;
        if (perMicro(p.phase) && stageOf(q.chunk) != stageOf(p.chunk))
          needs[v].microStages.insert(stageOf(p.chunk));
        if (p.phase == Phase::Update)
          needs[v].update = true;
      }
    }
    for (Value v : ret->getOperands())
      if (!isa<BlockArgument>(v) && perMicro(placeOf(v).phase))
        needs[v].update = true;
  }

  /// Where each parameter, constant and pure function of them is made: on
  /// every stage that reads it (an assignment runs where its parameter is
  /// held). A fixed point, since assignments read what they write.
  void computeMadeOn() {
    Operation *ret = func.getBody().front().getTerminator();
    bool changed = true;
    for (int round = 0; changed && round < 8; ++round) {
      changed = false;
      for (Operation *op : llvm::reverse(ops)) {
        Phase ph = place.lookup(op).phase;
        if (ph != Phase::Global && ph != Phase::Dup)
          continue;
        llvm::SmallSetVector<int64_t, 4> &set = madeOn[op];
        size_t before = set.size();
        for (OpOperand &use : op->getUses()) {
          Operation *user = use.getOwner();
          if (user == ret) {
            for (int64_t s = 0; s < P; ++s)
              set.insert(s);
            continue;
          }
          if (auto assign = dyn_cast<AssignOp>(user)) {
            if (use.getOperandNumber() == 0)
              for (int64_t s : holders(assign))
                set.insert(s);
            continue;
          }
          Place q = place.lookup(user);
          if (q.phase == Phase::Dup) {
            for (int64_t s : madeOn[user])
              set.insert(s);
          } else if (q.chunk >= 0) {
            set.insert(stageOf(q.chunk));
          }
        }
        changed |= set.size() != before;
      }
    }
  }

  /// The stages that hold (and so update) an assigned parameter.
  SmallVector<int64_t> holders(AssignOp assign) {
    Operation *param = assign.getParam().getDefiningOp();
    SmallVector<int64_t> out;
    if (param)
      for (int64_t s : madeOn[param])
        out.push_back(s);
    if (out.empty())
      out.push_back(0);
    return out;
  }

  //===--------------------------------------------------------------------===//
  // One stage's function.
  //===--------------------------------------------------------------------===//

  struct StageBuilder {
    Splitter &sp;
    int64_t s;
    func::FuncOp fn;
    OpBuilder b;
    Operation *lastGlobal = nullptr;
    static constexpr int64_t kUpdate = -1;
    std::map<std::pair<void *, int64_t>, Value>
        vals; // (value, micro | kUpdate)
    DenseMap<Value, Value> globals;
    std::map<std::pair<void *, int64_t>, Value> dups; // (value, entry)
    DenseMap<Value, Value> acc, means;
    DenseMap<Value, SmallVector<Value>> parts; // inference outputs, by micro
    std::set<std::pair<void *, int64_t>> sent; // (value, stage)
    bool failed = false;

    StageBuilder(Splitter &sp, int64_t s, func::FuncOp fn)
        : sp(sp), s(s), fn(fn), b(fn.getContext()) {
      b.setInsertionPointToEnd(&fn.getBody().front());
    }

    static std::pair<void *, int64_t> key(Value v, int64_t k) {
      return {v.getAsOpaquePointer(), k};
    }

    Value global(Value v) {
      if (Value g = globals.lookup(v))
        return g;
      OpBuilder gb(sp.ctx);
      if (lastGlobal)
        gb.setInsertionPointAfter(lastGlobal);
      else
        gb.setInsertionPointToStart(&fn.getBody().front());
      Operation *clone = gb.clone(*v.getDefiningOp());
      lastGlobal = clone;
      for (auto [r, c] :
           llvm::zip(v.getDefiningOp()->getResults(), clone->getResults()))
        globals[r] = c;
      return globals.lookup(v);
    }

    Value recv(Value v, int64_t from, int64_t micro, Type type = {}) {
      int64_t tag = sp.tag(v, micro < 0 ? sp.M : micro);
      return b.create<cgd::RecvOp>(v.getLoc(), type ? type : v.getType(),
                                   sp.meshRef, b.getI64IntegerAttr(from),
                                   b.getI64IntegerAttr(tag),
                                   b.getStringAttr("pp"));
    }

    void send(Value original, Value local, int64_t to, int64_t micro) {
      int64_t tag = sp.tag(original, micro < 0 ? sp.M : micro);
      b.create<cgd::SendOp>(original.getLoc(), local, sp.meshRef,
                            b.getI64IntegerAttr(to), b.getI64IntegerAttr(tag),
                            b.getStringAttr("pp"));
    }

    /// The mean over the micro-batches of a value this stage made in each.
    Value mean(Value v) {
      if (Value m = means.lookup(v))
        return m;
      if (sp.concatOutputs()) {
        Value c = concatenated(v);
        means[v] = c;
        return c;
      }
      Value sum = acc.lookup(v);
      if (!sum) {
        v.getDefiningOp()->emitError("colossal-pipeline: stage ")
            << s << " never made this value the update reads";
        failed = true;
        return v;
      }
      Value m = sum;
      auto type = cast<RankedTensorType>(v.getType());
      if (sp.M > 1)
        m = b.create<MulOp>(v.getLoc(), type, sum,
                            scalarConstant(b, v.getLoc(), type.getElementType(),
                                           1.0 / static_cast<double>(sp.M)));
      means[v] = m;
      return m;
    }

    /// An inference output: the micro-batches' pieces in input order (each
    /// replica's rows are its micro-batches in order).
    Value concatenated(Value v) {
      auto type = cast<RankedTensorType>(v.getType());
      SmallVector<Value> &ps = parts[v];
      if (ps.size() != static_cast<size_t>(sp.M) ||
          llvm::any_of(ps, [](Value p) { return !p; }) || type.getRank() == 0 ||
          type.getDimSize(0) % sp.batchWays != 0) {
        v.getDefiningOp()->emitError("colossal-pipeline: an inference output ")
            << "must be batched (dim 0 made by every micro-batch) to be "
               "concatenated back";
        failed = true;
        return v;
      }
      Location loc = v.getLoc();
      auto combined = cast<RankedTensorType>(sp.combinedType(v));
      if (sp.batchWays == 1)
        return b.create<ConcatOp>(loc, combined, ps, b.getI64IntegerAttr(0));
      int64_t d = sp.batchWays, rows = type.getDimSize(0) / d;
      SmallVector<int64_t> split{d, rows};
      split.append(type.getShape().begin() + 1, type.getShape().end());
      SmallVector<Value> views;
      for (Value p : ps)
        views.push_back(b.create<ReshapeOp>(
            loc, RankedTensorType::get(split, type.getElementType()), p));
      SmallVector<int64_t> joined = split;
      joined[1] *= sp.M;
      Value cat = b.create<ConcatOp>(
          loc, RankedTensorType::get(joined, type.getElementType()), views,
          b.getI64IntegerAttr(1));
      return b.create<ReshapeOp>(loc, combined, cat);
    }

    /// `v` as this stage has it in micro-batch `micro` (kUpdate: in the
    /// update), for an op being cloned at the builder's point.
    Value resolve(Value v, int64_t micro, int64_t entry) {
      if (auto arg = dyn_cast<BlockArgument>(v)) {
        Value mine = fn.getArgument(arg.getArgNumber());
        auto type = cast<RankedTensorType>(v.getType());
        if (type.getRank() == 0)
          return mine;
        if (Value cached = vals[key(v, micro)])
          return cached;
        SmallVector<int64_t> starts(type.getRank(), 0), limits(type.getShape()),
            steps(type.getRank(), 1);
        int64_t rows = type.getDimSize(0);
        starts[0] = micro * rows;
        limits[0] = starts[0] + rows;
        Value slice = b.create<SliceOp>(
            v.getLoc(), mine, b.getDenseI64ArrayAttr(starts),
            b.getDenseI64ArrayAttr(limits), b.getDenseI64ArrayAttr(steps));
        vals[key(v, micro)] = slice;
        return slice;
      }
      Operation *def = v.getDefiningOp();
      Place p = sp.place.lookup(def);
      if (p.phase == Phase::Global)
        return global(v);
      if (p.phase == Phase::Dup) {
        if (Value cached = dups[key(v, entry)])
          return cached;
        IRMapping map;
        for (Value operand : def->getOperands())
          map.map(operand, resolve(operand, micro, entry));
        Operation *clone = b.clone(*def, map);
        stripMarks(clone);
        for (auto [r, c] : llvm::zip(def->getResults(), clone->getResults()))
          dups[key(r, entry)] = c;
        return dups[key(v, entry)];
      }
      int64_t from = sp.stageOf(p.chunk);
      bool fromMicro = perMicro(p.phase);
      if (micro >= 0 || !fromMicro) {
        // A value of the same micro-batch (or of the update).
        int64_t k = fromMicro ? micro : kUpdate;
        if (Value have = vals[key(v, k)])
          return have;
        if (from == s) {
          def->emitError("colossal-pipeline: stage ")
              << s << " reads this value before its schedule makes it";
          failed = true;
          return v;
        }
        Value got = recv(v, from, k);
        vals[key(v, k)] = got;
        return got;
      }
      // The update reads the micro-batches' mean.
      if (from == s)
        return mean(v);
      if (Value have = vals[key(v, kUpdate)])
        return have;
      Value got = recv(v, from, kUpdate, sp.combinedType(v));
      vals[key(v, kUpdate)] = got;
      return got;
    }

    static void stripMarks(Operation *op) {
      for (StringRef mark :
           {"cg.stage", "cg.virtual", "cg.backward", "cg.update"})
        op->removeAttr(mark);
    }

    void emitEntry(const Entry &e, int64_t index) {
      auto it = sp.opsOf.find({static_cast<int>(e.phase), e.chunk});
      if (it == sp.opsOf.end())
        return;
      for (Operation *op : it->second) {
        IRMapping map;
        for (Value operand : op->getOperands())
          map.map(operand, resolve(operand, e.micro, index));
        Operation *clone = b.clone(*op, map);
        stripMarks(clone);
        if (auto keep = dyn_cast<RandomKeepOp>(clone); keep && sp.M > 1)
          // Each micro-batch draws its own masks.
          keep.setStreamAttr(b.getI64IntegerAttr(
              static_cast<int64_t>(keep.getStream()) + (e.micro << 24)));
        for (auto [r, c] : llvm::zip(op->getResults(), clone->getResults())) {
          vals[key(r, e.micro)] = c;
          auto need = sp.needs.find(r);
          if (need == sp.needs.end())
            continue;
          for (int64_t to : need->second.microStages)
            send(r, c, to, e.micro);
          if (need->second.update && sp.concatOutputs()) {
            SmallVector<Value> &ps = parts[r];
            ps.resize(sp.M);
            ps[e.micro] = c;
          } else if (need->second.update) {
            Value &sum = acc[r];
            if (sum)
              sum = b.create<AddOp>(r.getLoc(), r.getType(), sum, c);
            else
              sum = c;
          }
        }
      }
    }

    /// What stage `to` needs of `v` for the update: sent once.
    void owe(Value v, int64_t to) {
      if (isa<BlockArgument>(v) || to == s)
        return;
      Place q = sp.place.lookup(v.getDefiningOp());
      if (q.phase == Phase::Global || q.phase == Phase::Dup ||
          sp.stageOf(q.chunk) != s || !sent.insert(key(v, to)).second)
        return;
      Value local = perMicro(q.phase) ? mean(v) : vals[key(v, kUpdate)];
      send(v, local, to, kUpdate);
    }

    void emitUpdate() {
      for (Operation *op : sp.ops) {
        Place p = sp.place.lookup(op);
        // The update's functions of parameters (the step counter's
        // learning rate) are made where the program makes them, so they
        // read a parameter before its assignment as the program does.
        if (p.phase == Phase::Dup && op->hasAttr("cg.update") &&
            sp.madeOn[op].contains(s)) {
          for (Value r : op->getResults())
            resolve(r, kUpdate, kUpdate);
          continue;
        }
        if (p.phase != Phase::Update)
          continue;
        if (auto assign = dyn_cast<AssignOp>(op)) {
          SmallVector<int64_t> where = sp.holders(assign);
          for (int64_t t : where)
            owe(assign.getValue(), t);
          if (!llvm::is_contained(where, s))
            continue;
          Value value = resolve(assign.getValue(), kUpdate, kUpdate);
          Value param = global(assign.getParam());
          Operation *clone = b.create<AssignOp>(op->getLoc(), value, param);
          clone->setAttrs(op->getAttrs());
          stripMarks(clone);
          continue;
        }
        int64_t t = sp.stageOf(p.chunk);
        for (Value v : op->getOperands())
          owe(v, t);
        if (t != s)
          continue;
        IRMapping map;
        for (Value operand : op->getOperands())
          map.map(operand, resolve(operand, kUpdate, kUpdate));
        Operation *clone = b.clone(*op, map);
        stripMarks(clone);
        for (auto [r, c] : llvm::zip(op->getResults(), clone->getResults()))
          vals[key(r, kUpdate)] = c;
      }
    }

    void emitReturn(func::ReturnOp ret) {
      SmallVector<Value> results;
      for (Value v : ret.getOperands()) {
        for (int64_t t = 0; t < sp.P; ++t)
          owe(v, t);
        results.push_back(resolve(v, kUpdate, kUpdate));
      }
      b.create<func::ReturnOp>(ret.getLoc(), results);
    }
  };

  LogicalResult run() {
    if (failed(placeOps()) || failed(check()))
      return failure();
    computeNeeds();
    computeMadeOn();

    // The mesh gains the pipeline's axis, major to the others.
    OpBuilder mb(module.getBodyRegion());
    MeshOp meshOp;
    for (auto m : module.getOps<MeshOp>())
      meshOp = m;
    SmallVector<StringAttr> names{StringAttr::get(ctx, "pp")};
    SmallVector<int64_t> sizes{P};
    if (meshOp) {
      for (auto [n, size] : llvm::zip(meshOp.getMesh().getAxisNames(),
                                      meshOp.getMesh().getAxisSizes())) {
        if (n.getValue() == "pp")
          return module.emitError("the mesh already has a 'pp' axis");
        names.push_back(n);
        sizes.push_back(size);
      }
      meshOp.setMeshAttr(MeshAttr::get(ctx, names, sizes));
    } else {
      mb.setInsertionPointToStart(module.getBody());
      meshOp = mb.create<MeshOp>(module.getLoc(), "mesh",
                                 MeshAttr::get(ctx, names, sizes));
    }
    meshRef = FlatSymbolRefAttr::get(ctx, meshOp.getSymName());

    // Inputs take every micro-batch: dim 0 grows by M.
    SmallVector<Type> argTypes;
    for (BlockArgument arg : func.getArguments()) {
      auto type = cast<RankedTensorType>(arg.getType());
      if (type.getRank() == 0) {
        argTypes.push_back(type);
        continue;
      }
      SmallVector<int64_t> shape(type.getShape());
      shape[0] *= M;
      argTypes.push_back(RankedTensorType::get(shape, type.getElementType()));
    }
    auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
    // How many pieces dim 0 of the inputs is cut into (dp): an inference
    // output's rows are in that order.
    for (BlockArgument arg : func.getArguments())
      if (auto shard = func.getArgAttrOfType<ShardingAttr>(arg.getArgNumber(),
                                                           "cg.shard_of")) {
        if (shard.getDims().empty())
          continue;
        MeshAttr mesh = meshOp.getMesh();
        for (StringRef a : shard.getDimAxes(0))
          if (a != "pp")
            batchWays *= mesh.getAxisSize(a);
        break;
      }
    SmallVector<Type> resultTypes;
    for (Value v : ret.getOperands())
      resultTypes.push_back(!isa<BlockArgument>(v) && perMicro(placeOf(v).phase)
                                ? combinedType(v)
                                : v.getType());
    auto fnType = FunctionType::get(ctx, argTypes, resultTypes);
    OpBuilder fb(func);
    for (int64_t s = 0; s < P; ++s) {
      auto fn = fb.create<func::FuncOp>(func.getLoc(),
                                        "stage" + std::to_string(s), fnType);
      for (NamedAttribute a : func->getDiscardableAttrs())
        fn->setAttr(a.getName(), a.getValue());
      if (auto args = func.getAllArgAttrs())
        fn.setAllArgAttrs(args);
      if (auto results = func.getAllResultAttrs())
        fn.setAllResultAttrs(results);
      fn->setAttr("cg.pipeline_stage", fb.getI64IntegerAttr(s));
      fn.addEntryBlock();
      StageBuilder sb(*this, s, fn);
      SmallVector<Entry> order = scheduleFor(schedule, P, V, M, s, training);
      for (auto [i, e] : llvm::enumerate(order))
        sb.emitEntry(e, static_cast<int64_t>(i));
      sb.emitUpdate();
      sb.emitReturn(ret);
      if (sb.failed)
        return failure();
    }
    func.erase();
    Builder attrs(ctx);
    module->setAttr(
        "cg.pipeline",
        attrs.getDictionaryAttr({
            attrs.getNamedAttr("stages", attrs.getI64IntegerAttr(P)),
            attrs.getNamedAttr("micro_batches", attrs.getI64IntegerAttr(M)),
            attrs.getNamedAttr("virtual_stages", attrs.getI64IntegerAttr(V)),
            attrs.getNamedAttr("schedule", attrs.getStringAttr(schedule)),
        }));
    return success();
  }
};

struct PipelinePass : mlir::colossal::impl::PipelinePassBase<PipelinePass> {
  using PipelinePassBase::PipelinePassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto fail = [&](const Twine &message) {
      module.emitError("colossal-pipeline: ") << message;
      signalPassFailure();
    };
    if (stages < 1 || virtualStages < 1 || microBatches < 1)
      return fail("stages, virtual and micro-batches must be >= 1");
    if (schedule != "gpipe" && schedule != "1f1b" && schedule != "interleaved")
      return fail("schedule='" + schedule +
                  "' is not one of gpipe, 1f1b, interleaved");
    if ((schedule == "interleaved") != (virtualStages > 1))
      return fail("the interleaved schedule runs virtual >= 2 model chunks "
                  "per stage, and only it does (schedule=" +
                  schedule + ", virtual=" + Twine(virtualStages) + ")");
    if (virtualStages > 1 && microBatches % stages != 0)
      return fail("the interleaved schedule needs micro-batches (" +
                  Twine(microBatches) + ") to be a multiple of the stages (" +
                  Twine(stages) + ")");
    SmallVector<func::FuncOp> funcs;
    for (auto f : module.getOps<func::FuncOp>())
      if (!f.isExternal())
        funcs.push_back(f);
    if (funcs.size() != 1)
      return fail("needs exactly one function with a body, found " +
                  Twine(funcs.size()));
    Splitter sp;
    sp.module = module;
    sp.func = funcs.front();
    sp.P = stages;
    sp.V = virtualStages;
    sp.M = microBatches;
    sp.schedule = schedule;
    sp.training = module->hasAttr("cg.training");
    sp.ctx = module.getContext();
    if (failed(sp.run()))
      signalPassFailure();
  }
};

} // namespace
