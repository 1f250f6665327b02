//===- Optimizer.cpp - The optimizer update of a training step
//-------------===//
//
// Turns "loss and gradients" (colossal-autodiff's output) into one training
// step: gradient accumulation over micro-batches, global-norm clipping, the
// learning-rate schedule, and the update of SGD, AdamW, LAMB or LARS, all
// written with graph-dialect ops. Optimizer state lives in zero-initialized
// parameters (cg.role = "optimizer") and every new value is written back
// with cg.assign right after it is computed, so a new weight's buffer dies
// at once instead of living to the end of the program.
//
//===----------------------------------------------------------------------===//

#include "passes/GraphBuild.h"
#include "passes/Passes.h"

#include "dialects/Graph/IR/GraphShapes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringExtras.h"

#include <cmath>

namespace mlir::colossal {
#define GEN_PASS_DEF_OPTIMIZERPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

/// `warmup-cosine:W,T[,MIN]` parsed; constant when `cosine` is false.
struct Schedule {
  bool cosine = false;
  int64_t warmup = 0, total = 0;
  double minRatio = 0;
};

/// Why `text` is not a schedule, or "" with `out` set.
std::string parseSchedule(StringRef text, Schedule &out) {
  if (text == "constant")
    return "";
  constexpr StringLiteral kHint =
      "; use constant or warmup-cosine:W,T[,MIN] (W warmup steps, T total "
      "steps, MIN the final lr as a fraction of --lr, default 0)";
  if (!text.consume_front("warmup-cosine:"))
    return ("unknown learning-rate schedule '" + text + "'" + kHint).str();
  SmallVector<StringRef> parts;
  text.split(parts, ',');
  if (parts.size() != 2 && parts.size() != 3)
    return ("warmup-cosine needs W,T or W,T,MIN, got '" + text + "'" + kHint)
        .str();
  if (parts[0].trim().getAsInteger(10, out.warmup) ||
      parts[1].trim().getAsInteger(10, out.total) || out.warmup < 0 ||
      out.total < 1 || out.warmup > out.total)
    return ("warmup-cosine:" + text +
            ": W and T must be whole numbers with 0 <= W <= T and T >= 1" +
            kHint)
        .str();
  if (parts.size() == 3 && (parts[2].trim().getAsDouble(out.minRatio) ||
                            out.minRatio < 0 || out.minRatio > 1))
    return ("warmup-cosine:" + text + ": MIN must be a number in [0, 1]" +
            kHint)
        .str();
  out.cosine = true;
  return "";
}

/// Builds update arithmetic on f32 values at one insertion point.
struct Math {
  OpBuilder &b;
  Location loc;
  Type f;

  Value s(double v) { return scalarConstant(b, loc, f, v); }
  template <typename OpT> Value bin(Value x, Value y) {
    auto shape = broadcastShapes(typeOf(x).getShape(), typeOf(y).getShape());
    return b.create<OpT>(loc, RankedTensorType::get(*shape, f), x, y);
  }
  Value add(Value x, Value y) { return bin<AddOp>(x, y); }
  Value sub(Value x, Value y) { return bin<SubOp>(x, y); }
  Value mul(Value x, Value y) { return bin<MulOp>(x, y); }
  Value div(Value x, Value y) { return bin<DivOp>(x, y); }
  Value sqrt(Value x) { return b.create<SqrtOp>(loc, x.getType(), x); }
  /// Sum of squares of every element, as a scalar.
  Value sumSquares(Value x) {
    auto t = typeOf(x);
    Value sq = mul(x, x);
    if (t.getRank() == 0)
      return sq;
    SmallVector<int64_t> axes;
    for (int64_t d = 0; d < t.getRank(); ++d)
      axes.push_back(d);
    return b.create<ReduceSumOp>(loc, RankedTensorType::get({}, f), sq,
                                 b.getDenseI64ArrayAttr(axes), UnitAttr());
  }
  Value norm(Value x) { return sqrt(sumSquares(x)); }
  Value cmp(CmpPredicate p, Value x, Value y) {
    auto shape = broadcastShapes(typeOf(x).getShape(), typeOf(y).getShape());
    return b.create<CmpOp>(loc, RankedTensorType::get(*shape, b.getI1Type()), p,
                           x, y);
  }
  Value select(Value c, Value x, Value y) {
    auto shape = broadcastShapes(typeOf(c).getShape(), typeOf(x).getShape());
    shape = broadcastShapes(*shape, typeOf(y).getShape());
    return b.create<WhereOp>(loc, RankedTensorType::get(*shape, f), c, x, y);
  }
  /// x / y where both are positive, else `fallback` (a trust ratio).
  Value ratioOr(Value x, Value y, double fallback) {
    Value ok = cmp(CmpPredicate::gt, mul(x, y), s(0.0));
    return select(ok, div(x, y), s(fallback));
  }
};

/// Whether `g` is autodiff's zero gradient of a parameter off the loss path.
bool isStructuralZero(Value g) {
  Value v = g;
  if (auto expand = v.getDefiningOp<ExpandOp>())
    v = expand.getInput();
  auto constant = v.getDefiningOp<ConstantOp>();
  if (!constant)
    return false;
  auto dense = dyn_cast<DenseElementsAttr>(constant.getValue());
  return dense && dense.isSplat() && isa<FloatType>(dense.getElementType()) &&
         dense.getSplatValue<APFloat>().isZero();
}

} // namespace

std::string
mlir::colossal::checkOptimizerOptions(const OptimizerPassOptions &o) {
  if (o.optimizer != "sgd" && o.optimizer != "adamw" && o.optimizer != "lamb" &&
      o.optimizer != "lars")
    return "unknown optimizer '" + o.optimizer +
           "'; use sgd, adamw, lamb or lars";
  Schedule schedule;
  if (std::string why = parseSchedule(o.lrSchedule, schedule); !why.empty())
    return why;
  if (!(o.lr > 0) || !std::isfinite(o.lr))
    return "the learning rate must be a positive number, got " +
           std::to_string(o.lr);
  if (o.microBatches < 1)
    return "micro-batches must be at least 1, got " +
           std::to_string(o.microBatches);
  if (o.beta1 < 0 || o.beta1 >= 1 || o.beta2 < 0 || o.beta2 >= 1)
    return "betas must lie in [0, 1), got " + std::to_string(o.beta1) + "," +
           std::to_string(o.beta2);
  for (double v : {o.lr, o.weightDecay, o.beta1, o.beta2, o.eps, o.momentum,
                   o.trustCoefficient, o.clipGradNorm})
    if (!std::isfinite(v))
      return "optimizer settings must be finite numbers";
  if (o.momentum >= 1)
    return "momentum must lie in [0, 1), got " + std::to_string(o.momentum);
  if (o.trustCoefficient <= 0)
    return "trust-coefficient must be positive, got " +
           std::to_string(o.trustCoefficient);
  if (o.clipGradNorm < 0)
    return "clip-grad-norm must be positive (or 0 for no clipping), got " +
           std::to_string(o.clipGradNorm);
  return "";
}

namespace {

struct OptimizerPass : mlir::colossal::impl::OptimizerPassBase<OptimizerPass> {
  using OptimizerPassBase::OptimizerPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    OptimizerPassOptions options;
    options.optimizer = optimizer;
    options.lr = lr;
    options.beta1 = beta1;
    options.beta2 = beta2;
    options.weightDecay = weightDecay;
    options.eps = eps;
    options.momentum = momentum;
    options.trustCoefficient = trustCoefficient;
    options.clipGradNorm = clipGradNorm;
    options.lrSchedule = lrSchedule;
    options.microBatches = microBatches;
    options.tokensInput = tokensInput;
    if (std::string why = checkOptimizerOptions(options); !why.empty()) {
      module.emitError(why);
      return signalPassFailure();
    }
    Schedule schedule;
    (void)parseSchedule(lrSchedule, schedule);
    for (auto func : module.getOps<func::FuncOp>())
      if (!func.isExternal() && failed(build(func, schedule)))
        return signalPassFailure();
  }

  double decay() const {
    if (weightDecay >= 0)
      return weightDecay;
    return optimizer == "adamw" || optimizer == "lamb" ? 0.01 : 0.0;
  }
  double epsilon() const {
    if (eps >= 0)
      return eps;
    return optimizer == "lamb" ? 1e-6 : 1e-8;
  }
  double momentumValue() const {
    if (momentum >= 0)
      return momentum;
    return optimizer == "lars" ? 0.9 : 0.0;
  }

  /// A zero-initialized optimizer-state parameter shaped like `like`.
  Value state(OpBuilder &b, Location loc, StringRef name,
              RankedTensorType like) {
    auto zero = DenseElementsAttr::get(
        like, b.getFloatAttr(like.getElementType(), 0.0));
    auto p = b.create<ParamOp>(loc, like, b.getStringAttr(name), zero);
    p->setAttr("cg.role", b.getStringAttr("optimizer"));
    return p.getResult();
  }

  LogicalResult build(func::FuncOp func, const Schedule &schedule) {
    Block &body = func.getBody().front();
    auto ret = cast<func::ReturnOp>(body.getTerminator());
    if (ret.getNumOperands() == 0)
      return func.emitError("the optimizer needs a function returning a loss "
                            "and gradients; run colossal-autodiff first");
    Value loss = ret.getOperand(0);
    auto lossType = typeOf(loss);
    if (lossType.getRank() != 0 || !lossType.getElementType().isF32())
      return func.emitError("the optimizer expects a float32 scalar loss as "
                            "the first result, got ")
             << lossType;

    // The gradient results and their parameters.
    DenseMap<StringRef, ParamOp> params;
    for (auto p : body.getOps<ParamOp>())
      params[p.getName()] = p;
    SmallVector<std::pair<ParamOp, Value>> pairs;
    for (unsigned i = 1; i < ret.getNumOperands(); ++i) {
      auto name = func.getResultAttrOfType<StringAttr>(i, "cg.name");
      if (!name || !name.getValue().starts_with("grad:"))
        return func.emitError("result ")
               << i << " is not a parameter gradient (grad:<name>); the "
               << "optimizer expects colossal-autodiff's results only";
      StringRef pname = name.getValue().drop_front(5);
      ParamOp p = params.lookup(pname);
      // A parameter off the loss path (an unused head) was erased as dead
      // code; its gradient is zero and there is nothing to update.
      if (!p && isStructuralZero(ret.getOperand(i)))
        continue;
      if (!p)
        return func.emitError("gradient '")
               << name.getValue() << "' names no parameter";
      if (!typeOf(p.getResult()).getElementType().isF32())
        return p.emitError("parameter '")
               << pname << "' is " << typeOf(p.getResult())
               << "; the optimizer keeps float32 weights (compile "
                  "16-bit models in float32)";
      if (!isStructuralZero(ret.getOperand(i)))
        pairs.push_back({p, ret.getOperand(i)});
    }
    if (pairs.empty())
      return func.emitError("no parameter has a gradient: nothing to train");

    Location loc = func.getLoc();
    Operation *lastBackward = ret->getPrevNode();
    OpBuilder b(ret);
    Type f = b.getF32Type();
    Math m{b, loc, f};
    auto scalarType = RankedTensorType::get({}, f);
    SmallVector<std::pair<Value, Value>> assigns; // (new value, parameter)

    // Micro-batch bookkeeping: `boundary` is true on the K-th run.
    int64_t k = microBatches;
    Value boundary;
    if (k > 1) {
      Value micro = state(b, loc, "optimizer.micro_step", scalarType);
      Value next = m.add(micro, m.s(1.0));
      boundary = m.cmp(CmpPredicate::ge, next, m.s(static_cast<double>(k)));
      assigns.push_back({m.select(boundary, m.s(0.0), next), micro});
    }
    // Step counter: `step` updates taken so far; this one is number step+1.
    Value step = state(b, loc, "optimizer.step", scalarType);
    Value t = m.add(step, m.s(1.0));

    // Loss scaling (colossal-autodiff): gradients come multiplied by it.
    Value dynamicScale;
    for (auto p : body.getOps<ParamOp>())
      if (p.getName() == "optimizer.loss_scale")
        dynamicScale = p.getResult();
    double fixedScale = 1.0;
    if (auto a = func->getParentOfType<ModuleOp>()->getAttrOfType<FloatAttr>(
            "cg.loss_scale"))
      fixedScale = a.getValueAsDouble();

    // Gradients: unscaled, the mean over the micro-batches of this step.
    SmallVector<Value> grads;
    for (auto &[p, g] : pairs) {
      Value unscaled = dynamicScale        ? m.div(g, dynamicScale)
                       : fixedScale != 1.0 ? m.mul(g, m.s(1.0 / fixedScale))
                                           : g;
      if (k == 1) {
        grads.push_back(unscaled);
        continue;
      }
      Value acc = state(b, loc, ("accum:" + p.getName()).str(), typeOf(g));
      Value sum = m.add(acc, unscaled);
      assigns.push_back({m.select(boundary, m.s(0.0), sum), acc});
      grads.push_back(m.mul(sum, m.s(1.0 / static_cast<double>(k))));
    }
    // Global norm, and clipping. In a pipeline (colossal-mark-stages'
    // cg.stage on the gradients' producers) each model chunk sums its own
    // gradients' squares first, so one scalar a chunk crosses between
    // stages rather than one a gradient.
    // By chunk (stage and virtual stage marks; none outside a pipeline),
    // in order of first appearance.
    using Chunk = std::pair<Attribute, Attribute>;
    std::vector<std::pair<Chunk, Value>> partials;
    for (Value g : grads) {
      Chunk chunk;
      if (Operation *def = g.getDefiningOp())
        chunk = {def->getAttr("cg.stage"), def->getAttr("cg.virtual")};
      auto it =
          llvm::find_if(partials, [&](auto &pv) { return pv.first == chunk; });
      Value sq = m.sumSquares(g);
      if (it == partials.end())
        partials.push_back({chunk, sq});
      else
        it->second = m.add(it->second, sq);
    }
    Value total;
    for (auto &[chunk, partial] : partials)
      total = total ? m.add(total, partial) : partial;
    Value gradNorm = m.sqrt(total);
    if (clipGradNorm > 0) {
      Value coef = m.div(m.s(clipGradNorm), m.add(gradNorm, m.s(1e-6)));
      coef = b.create<MinOp>(loc, scalarType, coef, m.s(1.0));
      for (Value &g : grads)
        g = m.mul(g, coef);
    }

    // `apply`: whether this run updates. With a dynamic loss scale, a step
    // whose gradients overflowed is skipped and the scale halves; after
    // 2000 good steps it doubles (torch.cuda.amp.GradScaler's policy).
    Value apply = boundary;
    if (dynamicScale) {
      Value finite =
          m.cmp(CmpPredicate::lt, gradNorm, m.s(HUGE_VAL)); // false for NaN
      apply = boundary
                  ? b.create<AndOp>(loc, finite.getType(), boundary, finite)
                        .getResult()
                  : finite;
      Value tracker = state(b, loc, "optimizer.growth_tracker", scalarType);
      Value grown = m.add(tracker, m.s(1.0));
      Value growNow = m.cmp(CmpPredicate::ge, grown, m.s(2000.0));
      Value newScale = m.select(
          finite,
          m.select(growNow, m.mul(dynamicScale, m.s(2.0)), dynamicScale),
          m.mul(dynamicScale, m.s(0.5)));
      Value newTracker =
          m.select(finite, m.select(growNow, m.s(0.0), grown), m.s(0.0));
      if (boundary) {
        newScale = m.select(boundary, newScale, dynamicScale);
        newTracker = m.select(boundary, newTracker, tracker);
      }
      assigns.push_back({newScale, dynamicScale});
      assigns.push_back({newTracker, tracker});
    }
    Value lrValue = learningRate(m, step, schedule);
    assigns.push_back({apply ? m.select(apply, t, step) : t, step});

    // The update of each parameter.
    for (auto [pair, g] : llvm::zip(pairs, grads)) {
      ParamOp p = pair.first;
      SmallVector<std::pair<Value, Value>> updates;
      update(b, m, p, g, lrValue, t, updates);
      for (auto &[value, target] : updates)
        assigns.push_back(
            {apply ? m.select(apply, value, target) : value, target});
      // Write back at once: the new values' buffers die here.
      for (auto &[value, target] : assigns)
        b.create<AssignOp>(loc, value, target);
      assigns.clear();
    }
    for (auto &[value, target] : assigns)
      b.create<AssignOp>(loc, value, target);

    // Results: what the training loop reports.
    auto newRet = b.create<func::ReturnOp>(ret.getLoc(),
                                           ValueRange{loss, lrValue, gradNorm});
    ret.erase();
    // A pipelined step (colossal-mark-stages) runs the update once per
    // step, after every micro-batch's backward: its ops say so.
    if (llvm::any_of(body,
                     [](Operation &op) { return op.hasAttr("cg.stage"); }))
      for (Operation *op = lastBackward ? lastBackward->getNextNode()
                                        : &body.front();
           op && op != newRet.getOperation(); op = op->getNextNode())
        if (!isa<ParamOp, ConstantOp>(op))
          op->setAttr("cg.update", b.getUnitAttr());
    func.removeResAttrsAttr();
    func.setFunctionType(FunctionType::get(
        func.getContext(), func.getArgumentTypes(),
        {loss.getType(), lrValue.getType(), gradNorm.getType()}));
    func.setResultAttr(0, "cg.name", b.getStringAttr("loss"));
    func.setResultAttr(1, "cg.name", b.getStringAttr("lr"));
    func.setResultAttr(2, "cg.name", b.getStringAttr("grad_norm"));
    return recordTraining(func);
  }

  /// The learning rate of update number `step` (0-based), as a scalar.
  Value learningRate(Math &m, Value step, const Schedule &schedule) {
    if (!schedule.cosine)
      return m.s(lr);
    double w = static_cast<double>(schedule.warmup);
    double total = static_cast<double>(schedule.total);
    double floor = lr * schedule.minRatio;
    // Cosine part: progress in [0, 1] after the warmup.
    Value progress = m.div(m.sub(step, m.s(w)), m.s(std::max(1.0, total - w)));
    auto st = cast<RankedTensorType>(progress.getType());
    progress = m.b.create<MaxOp>(m.loc, st, progress, m.s(0.0));
    progress = m.b.create<MinOp>(m.loc, st, progress, m.s(1.0));
    Value c = m.b.create<CosOp>(m.loc, st, m.mul(progress, m.s(M_PI)));
    Value cosine =
        m.add(m.s(floor), m.mul(m.s(0.5 * (lr - floor)), m.add(m.s(1.0), c)));
    if (schedule.warmup == 0)
      return cosine;
    Value warm = m.mul(m.s(lr / w), m.add(step, m.s(1.0)));
    return m.select(m.cmp(CmpPredicate::lt, step, m.s(w)), warm, cosine);
  }

  /// New values of parameter `p` and its optimizer state from gradient `g`.
  void update(OpBuilder &b, Math &m, ParamOp p, Value g, Value lrValue, Value t,
              SmallVector<std::pair<Value, Value>> &out) {
    Location loc = m.loc;
    Value w = p.getResult();
    auto type = typeOf(w);
    std::string name = p.getName().str();
    double wd = decay(), mom = momentumValue();

    if (optimizer == "sgd") {
      Value d = wd != 0 ? m.add(g, m.mul(m.s(wd), w)) : g;
      if (mom != 0) {
        Value buf = state(b, loc, "sgd.momentum:" + name, type);
        d = m.add(m.mul(m.s(mom), buf), d);
        out.push_back({d, buf});
      }
      out.push_back({m.sub(w, m.mul(lrValue, d)), w});
      return;
    }
    if (optimizer == "lars") {
      Value wn = m.norm(w), gn = m.norm(g);
      Value denom = wd != 0 ? m.add(gn, m.mul(m.s(wd), wn)) : gn;
      // Without a norm to compare (a zero weight or gradient) the step is
      // the plain lr: trust 1.
      Value ok = m.cmp(CmpPredicate::gt, m.mul(wn, denom), m.s(0.0));
      Value trust = m.select(ok, m.mul(m.s(trustCoefficient), m.div(wn, denom)),
                             m.s(1.0));
      Value d = wd != 0 ? m.add(g, m.mul(m.s(wd), w)) : g;
      Value step = m.mul(m.mul(lrValue, trust), d);
      if (mom != 0) {
        Value buf = state(b, loc, "lars.momentum:" + name, type);
        step = m.add(m.mul(m.s(mom), buf), step);
        out.push_back({step, buf});
      }
      out.push_back({m.sub(w, step), w});
      return;
    }
    // adamw and lamb: moments with bias correction.
    std::string prefix = optimizer == "adamw" ? "adamw" : "lamb";
    Value mState = state(b, loc, prefix + ".m:" + name, type);
    Value vState = state(b, loc, prefix + ".v:" + name, type);
    Value m1 = m.add(m.mul(m.s(beta1), mState), m.mul(m.s(1 - beta1), g));
    Value v1 =
        m.add(m.mul(m.s(beta2), vState), m.mul(m.s(1 - beta2), m.mul(g, g)));
    out.push_back({m1, mState});
    out.push_back({v1, vState});
    Value bc1 = m.sub(m.s(1.0), m.bin<PowOp>(m.s(beta1), t));
    Value bc2 = m.sub(m.s(1.0), m.bin<PowOp>(m.s(beta2), t));
    if (optimizer == "adamw") {
      // As torch.optim.AdamW: decay first, then lr/bc1 * m / (sqrt(v)/sqrt(bc2)
      // + eps).
      Value decayed =
          wd != 0 ? m.mul(w, m.sub(m.s(1.0), m.mul(lrValue, m.s(wd)))) : w;
      Value denom = m.add(m.div(m.sqrt(v1), m.sqrt(bc2)), m.s(epsilon()));
      Value stepSize = m.div(lrValue, bc1);
      out.push_back({m.sub(decayed, m.mul(stepSize, m.div(m1, denom))), w});
      return;
    }
    // LAMB (You et al. 2019, Algorithm 2) with phi the identity.
    Value r =
        m.div(m.div(m1, bc1), m.add(m.sqrt(m.div(v1, bc2)), m.s(epsilon())));
    Value u = wd != 0 ? m.add(r, m.mul(m.s(wd), w)) : r;
    Value trust = m.ratioOr(m.norm(w), m.norm(u), 1.0);
    out.push_back({m.sub(w, m.mul(m.mul(lrValue, trust), u)), w});
  }

  /// Records how the plan is driven (module attribute cg.training).
  LogicalResult recordTraining(func::FuncOp func) {
    Builder b(func.getContext());
    SmallVector<NamedAttribute> fields;
    auto str = [&](StringRef key, StringRef value) {
      fields.push_back(b.getNamedAttr(key, b.getStringAttr(value)));
    };
    str("optimizer", optimizer);
    str("lr_schedule", lrSchedule);
    fields.push_back(b.getNamedAttr("lr", b.getF64FloatAttr(lr)));
    fields.push_back(b.getNamedAttr(
        "micro_batches",
        b.getI64IntegerAttr(static_cast<int64_t>(microBatches))));
    std::string options;
    llvm::raw_string_ostream os(options);
    os << "optimizer=" << optimizer << " lr=" << lr
       << " lr-schedule=" << lrSchedule << " weight-decay=" << decay();
    if (optimizer == "adamw" || optimizer == "lamb")
      os << " betas=" << beta1 << "," << beta2 << " eps=" << epsilon();
    else
      os << " momentum=" << momentumValue();
    if (optimizer == "lars")
      os << " trust-coefficient=" << trustCoefficient;
    os << " clip-grad-norm=" << clipGradNorm
       << " micro-batches=" << static_cast<int64_t>(microBatches);
    str("options", os.str());

    // Labels: colossal-add-loss appends them as the last argument. For a
    // language model, the token input whose next tokens they are: the one
    // integer input shaped like integer labels (or the one named).
    auto argName = [&](unsigned i) {
      auto name = func.getArgAttrOfType<StringAttr>(i, "cg.name");
      return name ? name.str() : "input" + std::to_string(i);
    };
    unsigned last = func.getNumArguments() - 1;
    std::string labels = argName(last), tokens;
    auto labelType = typeOf(func.getArgument(last));
    bool classes = isa<IntegerType>(labelType.getElementType());
    str("loss", classes ? "cross-entropy" : "mse");
    if (auto info =
            func->getParentOfType<ModuleOp>()->getAttrOfType<DictionaryAttr>(
                "cg.loss"))
      for (NamedAttribute field : info)
        fields.push_back(field);
    if (tokensInput != "none" && classes) {
      // Named, or else the one integer input shaped like the labels; of
      // several (ids, attention mask, token types), the one named
      // input_ids, as Hugging Face exports name it.
      SmallVector<std::string> candidates;
      for (unsigned i = 0; i < last; ++i) {
        auto type = typeOf(func.getArgument(i));
        if (!tokensInput.empty() ? argName(i) == tokensInput
                                 : isa<IntegerType>(type.getElementType()) &&
                                       type.getShape() == labelType.getShape())
          candidates.push_back(argName(i));
      }
      if (candidates.size() == 1)
        tokens = candidates.front();
      else if (llvm::is_contained(candidates, "input_ids"))
        tokens = "input_ids";
      if (!tokensInput.empty() && tokens.empty()) {
        std::string names;
        for (unsigned i = 0; i < last; ++i)
          names += (names.empty() ? "" : ", ") + argName(i);
        return func.emitError("--tokens-input=")
               << tokensInput << " names no model input; the inputs are "
               << names;
      }
    }
    str("labels_input", labels);
    str("tokens_input", tokens);
    func->getParentOfType<ModuleOp>()->setAttr("cg.training",
                                               b.getDictionaryAttr(fields));
    return success();
  }
};

} // namespace
