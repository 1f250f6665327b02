//===- Partition.cpp - The per-device program, with collectives -----------===//
//
// Steps: (1) arguments take their per-device types, (2) for every op in
// order, reshard each operand that arrives in another layout than the op
// wants (pending sums, then gathers, then local slices: general on meshes of
// several axes), (3) give results their per-device types and fix the few
// ops whose meaning depends on the whole shape (a mean over a split
// dimension, slice bounds, attention over a split sequence: the ring),
// (4) drop the consumed annotations.
//
//===----------------------------------------------------------------------===//

#include "passes/GraphBuild.h"
#include "passes/Passes.h"
#include "passes/Sharding.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/TypeUtilities.h"

#include <map>

namespace mlir::colossal {
#define GEN_PASS_DEF_PARTITIONPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

using Axes = SmallVector<std::string, 2>;

RankedTensorType withShape(Type t, ArrayRef<int64_t> shape) {
  return RankedTensorType::get(shape, cast<ShapedType>(t).getElementType());
}

struct Partitioner {
  MLIRContext *ctx;
  MeshInfo mesh;
  FlatSymbolRefAttr meshRef;
  DenseMap<Value, Spec> specOf;
  // Reshards made once per (value, wanted layout).
  std::map<std::pair<void *, std::string>, Value> cache;

  ArrayAttr axesAttr(const Axes &axes) {
    SmallVector<StringRef> names(axes.begin(), axes.end());
    return Builder(ctx).getStrArrayAttr(names);
  }

  /// Per-device type of `v` (typed globally) under `spec`.
  FailureOr<RankedTensorType> localType(Value v, Type global,
                                        const Spec &spec) {
    auto shaped = cast<ShapedType>(global);
    auto shape = spec.localShape(shaped.getShape(), mesh);
    if (failed(shape))
      return failure();
    return withShape(global, *shape);
  }

  /// `v` (per-device, laid out as `from`) re-laid as `to`, built at `b`.
  FailureOr<Value> reshard(OpBuilder &b, Location loc, Value v,
                           const Spec &from, const Spec &to,
                           bool shared = true) {
    if (from == to)
      return v;
    std::pair<void *, std::string> key{v.getAsOpaquePointer(), to.str()};
    // A parameter's reshards are redone at each use, so a gathered weight
    // does not outlive the op reading it.
    bool cacheable = shared && !isParameterView(v);
    if (cacheable)
      if (auto it = cache.find(key); it != cache.end())
        return it->second;
    Spec s = from;
    Value x = v;
    auto shapeOfX = [&] {
      return SmallVector<int64_t>(cast<ShapedType>(x.getType()).getShape());
    };
    // (0) A whole scalar joining a pending sum: the group's first device
    // keeps it, the others hold zero.
    Axes joining;
    for (const std::string &a : to.partial)
      if (!llvm::is_contained(s.partial, a))
        joining.push_back(a);
    if (!joining.empty()) {
      auto type = cast<RankedTensorType>(x.getType());
      if (type.getRank() != 0 || !isa<FloatType>(type.getElementType()))
        return emitError(loc, "cannot make a pending sum over '")
               << joining.front() << "' out of a value that is not one";
      int64_t n = product(joining);
      SmallVector<float> first(n, 0.0f);
      first[0] = 1.0f;
      auto all = RankedTensorType::get({n}, b.getF32Type());
      Value mask =
          b.create<ConstantOp>(loc, cast<ElementsAttr>(DenseElementsAttr::get(
                                        all, ArrayRef<float>(first))));
      mask = b.create<cgd::AllSliceOp>(
          loc, RankedTensorType::get({1}, b.getF32Type()), mask, meshRef,
          axesAttr(joining), b.getI64IntegerAttr(0));
      mask = b.create<ReshapeOp>(loc, RankedTensorType::get({}, b.getF32Type()),
                                 mask);
      if (!type.getElementType().isF32())
        mask = b.create<CastOp>(loc, type, mask);
      x = b.create<MulOp>(loc, type, x, mask);
      s.partial.append(joining.begin(), joining.end());
    }
    // (1) Pending sums the consumer does not keep.
    Axes pending;
    for (const std::string &a : s.partial)
      if (!llvm::is_contained(to.partial, a))
        pending.push_back(a);
    if (!pending.empty()) {
      // A dimension the consumer splits further, over axes of the pending
      // sum, takes its piece in a reduce-scatter over those axes; the rest
      // of the sum is all-reduced on the smaller piece.
      auto sum = cgd::ReductionKindAttr::get(ctx, cgd::ReductionKind::sum);
      int64_t scatterDim = -1;
      Axes scatterAxes;
      for (int64_t d = 0; d < s.rank() && scatterDim < 0; ++d) {
        if (!to.dimRefines(d, s) || to.dims[d].size() == s.dims[d].size())
          continue;
        Axes extra(to.dims[d].begin() + s.dims[d].size(), to.dims[d].end());
        bool inPending = llvm::all_of(extra, [&](const std::string &a) {
          return llvm::is_contained(pending, a);
        });
        if (inPending && shapeOfX()[d] % product(extra) == 0) {
          scatterDim = d;
          scatterAxes = extra;
        }
      }
      Axes rest;
      for (const std::string &a : pending)
        if (!llvm::is_contained(scatterAxes, a))
          rest.push_back(a);
      if (scatterDim >= 0) {
        SmallVector<int64_t> shape = shapeOfX();
        shape[scatterDim] /= product(scatterAxes);
        x = b.create<cgd::ReduceScatterOp>(
            loc, withShape(x.getType(), shape), x, meshRef,
            axesAttr(scatterAxes), b.getI64IntegerAttr(scatterDim), sum);
        s.dims[scatterDim] = to.dims[scatterDim];
      }
      if (!rest.empty())
        x = b.create<cgd::AllReduceOp>(loc, x.getType(), x, meshRef,
                                       axesAttr(rest), sum);
      s.partial = to.partial;
    }
    // (2a) One dimension's split moving to another (a sequence split
    // becoming a head split: Ulysses), as its minor axes: one all-to-all.
    {
      // (The dimensions differ: refining is splitting strictly further.)
      int64_t from = -1, onto = -1, others = 0;
      for (int64_t d = 0; d < s.rank(); ++d) {
        if (s.dims[d] == to.dims[d])
          continue;
        ++others;
        if (s.dimRefines(d, to))
          from = d;
        else if (to.dimRefines(d, s))
          onto = d;
      }
      Axes moved;
      if (from >= 0 && onto >= 0) {
        moved.assign(s.dims[from].begin() + to.dims[from].size(),
                     s.dims[from].end());
        if (!llvm::equal(moved, ArrayRef<std::string>(to.dims[onto])
                                    .drop_front(s.dims[onto].size())))
          moved.clear();
      }
      if (others == 2 && !moved.empty() &&
          shapeOfX()[onto] % product(moved) == 0) {
        SmallVector<int64_t> shape = shapeOfX();
        shape[from] *= product(moved);
        shape[onto] /= product(moved);
        x = b.create<cgd::AllToAllOp>(
            loc, withShape(x.getType(), shape), x, meshRef, axesAttr(moved),
            b.getI64IntegerAttr(onto), b.getI64IntegerAttr(from));
        s.dims[onto] = to.dims[onto];
        s.dims[from] = to.dims[from];
      }
    }
    // (2) Dimensions split differently: gather the old split's axes past
    // the prefix the new one shares (the minor axes of a split index the
    // pieces within a block of the major ones).
    for (int64_t d = 0; d < s.rank(); ++d) {
      if (to.dimRefines(d, s))
        continue; // equal, or split further in step 3
      size_t common = 0;
      while (common < s.dims[d].size() && common < to.dims[d].size() &&
             s.dims[d][common] == to.dims[d][common])
        ++common;
      Axes gathered(s.dims[d].begin() + common, s.dims[d].end());
      SmallVector<int64_t> shape = shapeOfX();
      shape[d] *= product(gathered);
      x = b.create<cgd::AllGatherOp>(loc, withShape(x.getType(), shape), x,
                                     meshRef, axesAttr(gathered),
                                     b.getI64IntegerAttr(d));
      s.dims[d].resize(common);
    }
    // (3) Dimensions split further: keep this device's piece.
    for (int64_t d = 0; d < s.rank(); ++d) {
      if (s.dims[d] == to.dims[d])
        continue;
      Axes extra(to.dims[d].begin() + s.dims[d].size(), to.dims[d].end());
      SmallVector<int64_t> shape = shapeOfX();
      if (shape[d] % product(extra) != 0)
        return emitError(loc, "dimension ")
               << d << " of size " << shape[d] << " does not split over "
               << product(extra) << " devices";
      shape[d] /= product(extra);
      x = b.create<cgd::AllSliceOp>(loc, withShape(x.getType(), shape), x,
                                    meshRef, axesAttr(extra),
                                    b.getI64IntegerAttr(d));
      s.dims[d] = to.dims[d];
    }
    if (cacheable)
      cache[key] = x;
    return x;
  }

  int64_t product(const Axes &axes) const {
    int64_t n = 1;
    for (const std::string &a : axes)
      n *= mesh.size(a);
    return n;
  }

  LogicalResult run(func::FuncOp func) {
    // Step 1: arguments.
    SmallVector<Type> argTypes;
    for (BlockArgument arg : func.getArguments()) {
      auto attr = func.getArgAttrOfType<ShardingAttr>(arg.getArgNumber(),
                                                      "cg.sharding");
      Spec spec =
          Spec::fromAttr(attr, cast<ShapedType>(arg.getType()).getRank());
      auto local = localType(arg, arg.getType(), spec);
      if (failed(local))
        return func.emitError("argument ")
               << arg.getArgNumber() << " does not split as " << spec.str();
      arg.setType(*local);
      argTypes.push_back(*local);
      specOf[arg] = spec;
      if (attr) {
        func.removeArgAttr(arg.getArgNumber(), "cg.sharding");
        func.setArgAttr(arg.getArgNumber(), "cg.shard_of", attr);
      }
    }
    SmallVector<Operation *> ops;
    for (Operation &op : func.getBody().front())
      ops.push_back(&op);
    for (Operation *op : ops) {
      // Step 2: operands.
      auto wanted = op->getAttrOfType<ArrayAttr>(operandShardingAttrName());
      if (op->getNumOperands() && !wanted)
        return op->emitError("has no cg.operand_sharding; run "
                             "--colossal-propagate-sharding first");
      OpBuilder b(op);
      // A cg.shard marked cg.regather (a 2D/3D layer's gathered operands)
      // re-lays its input again for each later reader (the backward), so
      // the gathered copy does not live from forward to backward.
      Value regatherFrom;
      Spec regatherSpec;
      if (isa<ShardOp>(op) && op->hasAttr("cg.regather")) {
        regatherFrom = op->getOperand(0);
        regatherSpec = specOf.lookup(regatherFrom);
      }
      SmallVector<Spec> operandSpecs;
      for (unsigned i = 0; i < op->getNumOperands(); ++i) {
        Value v = op->getOperand(i);
        auto attr = dyn_cast<ShardingAttr>(wanted[i]);
        if (!attr)
          return op->emitError("cg.operand_sharding must hold shardings");
        Spec want =
            Spec::fromAttr(attr, cast<ShapedType>(v.getType()).getRank());
        auto local = reshard(b, op->getLoc(), v, specOf.lookup(v), want);
        if (failed(local))
          return failure();
        op->setOperand(i, *local);
        operandSpecs.push_back(want);
      }
      op->removeAttr(operandShardingAttrName());
      if (auto shard = dyn_cast<ShardOp>(op)) {
        specOf[shard.getResult()] = specOf.lookup(shard.getInput());
        Spec want = Spec::fromAttr(shard.getSharding(),
                                   cast<ShapedType>(shard.getType()).getRank());
        if (regatherFrom) {
          SmallVector<OpOperand *> uses;
          for (OpOperand &use : shard.getResult().getUses())
            uses.push_back(&use);
          llvm::sort(uses, [](OpOperand *a, OpOperand *b) {
            return a->getOwner()->isBeforeInBlock(b->getOwner());
          });
          for (OpOperand *use : llvm::drop_begin(uses)) {
            OpBuilder at(use->getOwner());
            auto again = reshard(at, use->getOwner()->getLoc(), regatherFrom,
                                 regatherSpec, want, /*shared=*/false);
            if (failed(again))
              return failure();
            use->set(*again);
            specOf[*again] = want;
          }
        }
        shard.getResult().replaceAllUsesWith(shard.getInput());
        specOf[shard.getInput()] = want;
        shard.erase();
        continue;
      }
      if (isa<func::ReturnOp>(op))
        continue;
      // Step 3: results.
      auto results = op->getAttrOfType<ArrayAttr>("cg.sharding");
      if (op->getNumResults() && !results)
        return op->emitError("has no cg.sharding; run "
                             "--colossal-propagate-sharding first");
      SmallVector<Spec> resultSpecs;
      for (auto [i, r] : llvm::enumerate(op->getResults())) {
        auto attr = dyn_cast<ShardingAttr>(results[i]);
        Spec spec =
            Spec::fromAttr(attr, cast<ShapedType>(r.getType()).getRank());
        auto local = localType(r, r.getType(), spec);
        if (failed(local))
          return op->emitError("result ")
                 << i << " does not split as " << spec.str();
        r.setType(*local);
        specOf[r] = spec;
        resultSpecs.push_back(spec);
      }
      // A parameter remembers which piece of the whole it holds.
      if (isa<ParamOp>(op) && !resultSpecs[0].isReplicated())
        op->setAttr("cg.shard_of", results);
      op->removeAttr("cg.sharding");
      // Last: it may replace the op.
      if (failed(fixWholeShapeOps(op, resultSpecs, operandSpecs)))
        return failure();
    }
    func.setType(
        FunctionType::get(ctx, argTypes, func.getFunctionType().getResults()));
    return success();
  }

  /// softmax / log_softmax over a split axis, from per-device pieces: the
  /// max and the sum of exponentials are reduced across the split, so no
  /// device holds the whole axis (Megatron's vocab-parallel cross-entropy).
  LogicalResult splitSoftmax(Operation *op, int64_t axis, const Spec &spec) {
    int64_t rank = spec.rank();
    if (axis < 0)
      axis += rank;
    const Axes &over = spec.dims[axis];
    if (over.empty())
      return success();
    OpBuilder b(op);
    Location loc = op->getLoc();
    Value x = op->getOperand(0);
    auto type = cast<RankedTensorType>(x.getType());
    SmallVector<int64_t> kept(type.getShape());
    kept[axis] = 1;
    auto keptType = RankedTensorType::get(kept, type.getElementType());
    auto axes = b.getDenseI64ArrayAttr({axis});
    auto kind = [&](cgd::ReductionKind k) {
      return cgd::ReductionKindAttr::get(ctx, k);
    };
    Value m = b.create<ReduceMaxOp>(loc, keptType, x, axes, b.getUnitAttr());
    m = b.create<cgd::AllReduceOp>(loc, keptType, m, meshRef, axesAttr(over),
                                   kind(cgd::ReductionKind::max));
    Value shifted = b.create<SubOp>(loc, type, x, m);
    Value e = b.create<ExpOp>(loc, type, shifted);
    Value z = b.create<ReduceSumOp>(loc, keptType, e, axes, b.getUnitAttr());
    z = b.create<cgd::AllReduceOp>(loc, keptType, z, meshRef, axesAttr(over),
                                   kind(cgd::ReductionKind::sum));
    Value out = isa<LogSoftmaxOp>(op)
                    ? Value(b.create<SubOp>(loc, type, shifted,
                                            b.create<LogOp>(loc, keptType, z)))
                    : Value(b.create<DivOp>(loc, type, e, z));
    op->getResult(0).replaceAllUsesWith(out);
    specOf[out] = spec;
    op->erase();
    return success();
  }

  /// layer_norm / rms_norm over a split last dimension, from per-device
  /// pieces: the sums behind the mean and the variance (or the mean
  /// square) are all-reduced across the split, as 2D/2.5D/3D tensor
  /// parallelism normalizes a hidden dimension no device holds whole.
  LogicalResult splitNorm(Operation *op, const Spec &spec, double epsilon,
                          bool centered) {
    int64_t rank = spec.rank();
    const Axes &over = spec.dims[rank - 1];
    if (over.empty())
      return success();
    OpBuilder b(op);
    Location loc = op->getLoc();
    Value x = op->getOperand(0);
    auto type = cast<RankedTensorType>(x.getType());
    Type element = type.getElementType();
    SmallVector<int64_t> kept(type.getShape());
    kept[rank - 1] = 1;
    auto keptType = RankedTensorType::get(kept, element);
    auto axes = b.getDenseI64ArrayAttr({rank - 1});
    double whole = double(type.getDimSize(rank - 1) * product(over));
    auto sumKind = cgd::ReductionKindAttr::get(ctx, cgd::ReductionKind::sum);
    auto meanOf = [&](Value v) -> Value {
      Value s = b.create<ReduceSumOp>(loc, keptType, v, axes, b.getUnitAttr());
      s = b.create<cgd::AllReduceOp>(loc, keptType, s, meshRef, axesAttr(over),
                                     sumKind);
      return b.create<MulOp>(loc, keptType, s,
                             scalarConstant(b, loc, element, 1.0 / whole));
    };
    Value xc = x;
    if (centered)
      xc = b.create<SubOp>(loc, type, x, meanOf(x));
    Value var = meanOf(b.create<MulOp>(loc, type, xc, xc));
    Value inv = b.create<RsqrtOp>(
        loc, keptType,
        b.create<AddOp>(loc, keptType, var,
                        scalarConstant(b, loc, element, epsilon)));
    Value y = b.create<MulOp>(loc, type, xc, inv);
    y = b.create<MulOp>(loc, type, y, op->getOperand(1));
    if (op->getNumOperands() > 2)
      y = b.create<AddOp>(loc, type, y, op->getOperand(2));
    op->getResult(0).replaceAllUsesWith(y);
    specOf[y] = spec;
    op->erase();
    return success();
  }

  /// A lookup in a table split along its gathered axis: each device holds
  /// rows [first, first + rows) and looks up only those (others give zero
  /// rows), so the result is a pending sum over the split. `first` comes
  /// from this device's piece of the row numbers, which needs no
  /// communication.
  LogicalResult splitGather(GatherOp gather, const Spec &table) {
    int64_t tr = cast<ShapedType>(gather.getInput().getType()).getRank();
    int64_t axis =
        gather.getAxis() < 0 ? gather.getAxis() + tr : gather.getAxis();
    const Axes &over = table.dims[axis];
    if (over.empty())
      return success();
    OpBuilder b(gather);
    Location loc = gather.getLoc();
    Value ids = gather.getIndices();
    auto idsType = cast<RankedTensorType>(ids.getType());
    Type indexType = idsType.getElementType();
    int64_t rows =
        cast<ShapedType>(gather.getInput().getType()).getDimSize(axis);
    int64_t whole = rows * product(over);
    auto scalarOf = [&](int64_t v) {
      return b.create<ConstantOp>(
          loc, cast<ElementsAttr>(
                   DenseElementsAttr::get(RankedTensorType::get({}, indexType),
                                          b.getIntegerAttr(indexType, v))));
    };
    // This device's first row: its piece of [0, whole).
    SmallVector<int64_t> numbers(whole);
    for (int64_t i = 0; i < whole; ++i)
      numbers[i] = i;
    auto allType = RankedTensorType::get({whole}, indexType);
    Attribute numbersAttr =
        indexType.isInteger(64)
            ? DenseElementsAttr::get(allType, ArrayRef<int64_t>(numbers))
            : DenseElementsAttr::get(allType,
                                     ArrayRef<int32_t>(SmallVector<int32_t>(
                                         numbers.begin(), numbers.end())));
    Value all = b.create<ConstantOp>(loc, cast<ElementsAttr>(numbersAttr));
    Value mine = b.create<cgd::AllSliceOp>(
        loc, RankedTensorType::get({rows}, indexType), all, meshRef,
        axesAttr(over), b.getI64IntegerAttr(0));
    Value first = b.create<SliceOp>(loc, RankedTensorType::get({1}, indexType),
                                    mine, b.getDenseI64ArrayAttr({0}),
                                    b.getDenseI64ArrayAttr({1}),
                                    b.getDenseI64ArrayAttr({1}));
    first =
        b.create<ReshapeOp>(loc, RankedTensorType::get({}, indexType), first);
    // Negative indices count from the end, as in ONNX.
    auto boolType = RankedTensorType::get(idsType.getShape(), b.getI1Type());
    Value zero = scalarOf(0);
    Value negative =
        b.create<CmpOp>(loc, boolType, CmpPredicate::lt, ids, zero);
    Value wrapped = b.create<WhereOp>(
        loc, idsType, negative,
        b.create<AddOp>(loc, idsType, ids, scalarOf(whole)), ids);
    Value rel = b.create<SubOp>(loc, idsType, wrapped, first);
    Value inside = b.create<AndOp>(
        loc, boolType,
        b.create<CmpOp>(loc, boolType, CmpPredicate::ge, rel, zero),
        b.create<CmpOp>(loc, boolType, CmpPredicate::lt, rel, scalarOf(rows)));
    Value safe = b.create<WhereOp>(loc, idsType, inside, rel,
                                   b.create<ExpandOp>(loc, idsType, zero));
    gather.getIndicesMutable().assign(safe);
    // Zero the rows this device does not hold.
    b.setInsertionPointAfter(gather);
    auto resultType = cast<RankedTensorType>(gather.getType());
    SmallVector<int64_t> maskShape(axis, 1);
    maskShape.append(idsType.getShape().begin(), idsType.getShape().end());
    maskShape.append(tr - axis - 1, 1);
    Type element = resultType.getElementType();
    Value mask = b.create<CastOp>(
        loc, RankedTensorType::get(idsType.getShape(), element), inside);
    mask = b.create<ReshapeOp>(loc, RankedTensorType::get(maskShape, element),
                               mask);
    Value masked = b.create<MulOp>(loc, resultType, gather.getResult(), mask);
    gather.getResult().replaceAllUsesExcept(masked, masked.getDefiningOp());
    specOf[masked] = specOf.lookup(gather.getResult());
    return success();
  }

  /// Attention (or its fused backward) over a sequence split across
  /// devices (sp-mode=ring): the ring of cgd.ring_attention, whose
  /// backward takes the forward's log-sum-exp.
  LogicalResult ringAttention(Operation *op, const Spec &spec) {
    int64_t rank = spec.rank();
    const Axes &over = spec.dims[rank - 2];
    if (over.empty())
      return success();
    Value q = op->getOperand(0), k = op->getOperand(1), v = op->getOperand(2);
    auto qt = cast<RankedTensorType>(q.getType());
    auto kt = cast<RankedTensorType>(k.getType()),
         vt = cast<RankedTensorType>(v.getType());
    if (!qt.getElementType().isF32())
      return op->emitError("ring attention runs in f32, but this attention "
                           "is ")
             << qt.getElementType()
             << "; compile with --precision=fp32, or use sp-mode=ulysses";
    OpBuilder b(op);
    Location loc = op->getLoc();
    Type f32 = b.getF32Type();
    auto lseType = RankedTensorType::get(qt.getShape().drop_back(), f32);
    auto wsType = [&](int64_t n) { return RankedTensorType::get({n}, f32); };
    if (auto fwd = dyn_cast<AttentionOp>(op)) {
      auto ring = b.create<cgd::RingAttentionOp>(
          loc,
          TypeRange{
              fwd.getType(), lseType,
              wsType(cgd::RingAttentionOp::workspaceElements(qt, kt, vt))},
          q, k, v, fwd.getMask(), meshRef, axesAttr(over), fwd.getScaleAttr(),
          fwd.getCausalAttr());
      fwd.getResult().replaceAllUsesWith(ring.getResult());
      specOf[ring.getResult()] = spec;
      op->erase();
      return success();
    }
    auto bwd = cast<AttentionBackwardOp>(op);
    auto forward = bwd.getOut().getDefiningOp<cgd::RingAttentionOp>();
    if (!forward)
      return op->emitError("the backward of a ring attention needs the "
                           "forward's cgd.ring_attention result as `out`");
    auto ring = b.create<cgd::RingAttentionBackwardOp>(
        loc,
        TypeRange{qt, kt, vt,
                  wsType(cgd::RingAttentionBackwardOp::workspaceElements(qt, kt,
                                                                         vt))},
        q, k, v, bwd.getOut(), forward.getLse(), bwd.getGrad(), bwd.getMask(),
        meshRef, axesAttr(over), bwd.getScaleAttr(), bwd.getCausalAttr());
    for (unsigned i = 0; i < 3; ++i) {
      op->getResult(i).replaceAllUsesWith(ring.getResult(i));
      specOf[ring.getResult(i)] = spec;
    }
    op->erase();
    return success();
  }

  /// Ops whose attributes or value depend on the whole shape.
  LogicalResult fixWholeShapeOps(Operation *op, ArrayRef<Spec> results,
                                 ArrayRef<Spec> operands) {
    if (isa<AttentionOp, AttentionBackwardOp>(op))
      return ringAttention(op, results[0]);
    if (auto g = dyn_cast<GatherOp>(op))
      return splitGather(g, operands[0]);
    if (auto s = dyn_cast<SoftmaxOp>(op))
      return splitSoftmax(op, s.getAxis(), results[0]);
    if (auto n = dyn_cast<LayerNormOp>(op))
      return splitNorm(op, results[0], n.getEpsilon().convertToDouble(),
                       /*centered=*/true);
    if (auto n = dyn_cast<RmsNormOp>(op))
      return splitNorm(op, results[0], n.getEpsilon().convertToDouble(),
                       /*centered=*/false);
    if (auto s = dyn_cast<LogSoftmaxOp>(op))
      return splitSoftmax(op, s.getAxis(), results[0]);
    if (auto slice = dyn_cast<SliceOp>(op)) {
      // Split dimensions are taken whole (the rule says so): local bounds.
      SmallVector<int64_t> limits(slice.getLimits());
      auto shape = cast<ShapedType>(slice.getInput().getType()).getShape();
      for (int64_t d = 0; d < (int64_t)limits.size(); ++d)
        if (!results[0].dims[d].empty())
          limits[d] = shape[d];
      slice.setLimits(limits);
      return success();
    }
    if (auto mean = dyn_cast<ReduceMeanOp>(op)) {
      // A mean of a piece, times its share of the whole, is a pending sum.
      const Spec &in = operands[0];
      int64_t rank = in.rank(), share = 1;
      for (int64_t axis : mean.getAxes())
        share *= in.splitOf(axis < 0 ? axis + rank : axis, mesh);
      if (share == 1)
        return success();
      OpBuilder b(op->getContext());
      b.setInsertionPointAfter(op);
      Type element = getElementTypeOrSelf(mean.getType());
      if (!isa<FloatType>(element))
        return op->emitError("a mean of integers over a split dimension "
                             "cannot be rescaled exactly");
      Value c = scalarConstant(b, op->getLoc(), element, 1.0 / double(share));
      Value scaled =
          b.create<MulOp>(op->getLoc(), mean.getType(), mean.getResult(), c);
      mean.getResult().replaceAllUsesExcept(scaled, scaled.getDefiningOp());
      specOf[scaled] = results[0];
      return success();
    }
    return success();
  }
};

struct PartitionPass : mlir::colossal::impl::PartitionPassBase<PartitionPass> {
  using PartitionPassBase::PartitionPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MeshOp meshOp = findMesh(module);
    if (!meshOp)
      return markAllAnalysesPreserved();
    Partitioner p{&getContext(),
                  MeshInfo::fromAttr(meshOp.getMesh()),
                  FlatSymbolRefAttr::get(meshOp.getSymNameAttr()),
                  {},
                  {}};
    for (auto func : module.getOps<func::FuncOp>())
      if (!func.isExternal() && failed(p.run(func)))
        return signalPassFailure();
  }
};

} // namespace
