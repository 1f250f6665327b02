//===- BucketCollectives.cpp - Gradient all-reduces in buckets ------------===//
//
// Steps: (1) collect the all-reduces (and the reduce-scatters along dim 0
// of ZeRO-2/3's gradients) of the partitioned program with the
// position of the value each reduces, (2) group them, in the order their
// inputs are produced (the order backward produces gradients), into buckets
// of about `bucket-bytes` that are legal (every input exists before any
// member's result is used), (3) rewrite each bucket as flatten + concat, one
// all-reduce right after its last input, split + reshape back.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

#include <limits>

namespace mlir::colossal {
#define GEN_PASS_DEF_BUCKETCOLLECTIVESPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

/// An all-reduce, or a reduce-scatter along dim 0 (ZeRO-2/3 gradients).
struct Member {
  Operation *op;
  int64_t ready; // position of the op producing the input (-1: argument)
  int64_t firstUse;
  int64_t bytes;
  int64_t layer; // of the reduced value's producer (cg.layer), or -1
};

struct BucketCollectivesPass
    : mlir::colossal::impl::BucketCollectivesPassBase<BucketCollectivesPass> {
  using BucketCollectivesPassBase::BucketCollectivesPassBase;

  void runOnOperation() override {
    if (bucketBytes < 0 || gatherBytes < 0) {
      getOperation().emitError("bucket-bytes and gather-bytes must be >= 0 "
                               "(0: no buckets)");
      return signalPassFailure();
    }
    if (bucketBytes == 0 && gatherBytes == 0)
      return markAllAnalysesPreserved();
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (!func.isExternal()) {
        if (bucketBytes > 0)
          bucket(func);
        if (gatherBytes > 0)
          bucketGathers(func);
      }
  }

  /// ZeRO-3: the gathers of weight pieces (along dim 0, from a parameter),
  /// consecutive in program order over one group, joined into one gather of
  /// about `gather-bytes` (whole), issued where the first of them was, as
  /// FSDP gathers a layer's flat parameter at once; each weight is then cut
  /// out of the rank-major result.
  void bucketGathers(func::FuncOp func) {
    gatherBeforeTranspose(func);
    struct Run {
      SmallVector<cgd::AllGatherOp> members;
      int64_t bytes = 0;
      int64_t layer = -1;
    };
    std::map<std::string, Run> runs; // by group and element type
    auto flush = [&](Run &run) {
      if (run.members.size() > 1)
        rewriteGathers(run.members);
      run = Run();
    };
    for (Operation &op : llvm::make_early_inc_range(func.getBody().front())) {
      auto ag = dyn_cast<cgd::AllGatherOp>(op);
      if (!ag || ag.getDim() != 0 || !ag.getInput().getDefiningOp<ParamOp>())
        continue;
      auto type = cast<RankedTensorType>(ag.getType());
      std::string key;
      llvm::raw_string_ostream os(key);
      os << ag.getMeshAttr() << ag.getAxes() << type.getElementType();
      int64_t b = type.getNumElements() *
                  std::max<int64_t>(8, type.getElementTypeBitWidth()) / 8;
      // The layer of the first reader (colossal-mark-layers): a bucket
      // stays within one, so a rank holds a layer's gathered weights at a
      // time, as FSDP's per-block units do.
      Operation *reader = nullptr;
      for (Operation *user : ag->getUsers())
        if (!reader || user->isBeforeInBlock(reader))
          reader = user;
      auto mark =
          reader ? reader->getAttrOfType<IntegerAttr>("cg.layer") : nullptr;
      int64_t layer = mark ? mark.getInt() : -1;
      Run &run = runs[os.str()];
      if (!run.members.empty() &&
          (run.bytes + b > gatherBytes || run.layer != layer))
        flush(run);
      run.members.push_back(ag);
      run.bytes += b;
      run.layer = layer;
    }
    for (auto &[key, run] : runs)
      flush(run);
  }

  /// A gather of a transposed weight piece (the backward's W^T of a
  /// ZeRO-3 weight split along dim 0) becomes the transpose of the piece's
  /// gather, along the dimension the transpose moved, so that it joins the
  /// layer's bucket like the forward's gathers (colossal-fold-into-gemm
  /// then folds the transpose into the GEMM that reads it).
  void gatherBeforeTranspose(func::FuncOp func) {
    SmallVector<cgd::AllGatherOp> gathers;
    func.walk([&](cgd::AllGatherOp ag) { gathers.push_back(ag); });
    for (cgd::AllGatherOp ag : gathers) {
      auto t = ag.getInput().getDefiningOp<TransposeOp>();
      if (!t || !t->hasOneUse() || !t.getInput().getDefiningOp<ParamOp>())
        continue;
      ArrayRef<int64_t> perm = t.getPermutation();
      int64_t dim = ag.getDim();
      if (dim < 0 || dim >= static_cast<int64_t>(perm.size()))
        continue;
      auto piece = cast<RankedTensorType>(t.getInput().getType());
      auto gatheredType = cast<RankedTensorType>(ag.getType());
      SmallVector<int64_t> shape(piece.getShape());
      shape[perm[dim]] = gatheredType.getDimSize(dim);
      OpBuilder b(ag);
      auto whole = b.create<cgd::AllGatherOp>(
          ag.getLoc(), RankedTensorType::get(shape, piece.getElementType()),
          t.getInput(), ag.getMeshAttr(), ag.getAxes(),
          b.getI64IntegerAttr(perm[dim]));
      whole->setDiscardableAttrs(ag->getDiscardableAttrDictionary());
      auto transposed = b.create<TransposeOp>(ag.getLoc(), gatheredType, whole,
                                              t.getPermutationAttr());
      transposed->setDiscardableAttrs(t->getDiscardableAttrDictionary());
      ag.replaceAllUsesWith(transposed.getResult());
      ag->erase();
      t->erase();
    }
  }

  void rewriteGathers(MutableArrayRef<cgd::AllGatherOp> members) {
    ++numBuckets;
    cgd::AllGatherOp first = members.front();
    OpBuilder b(first);
    Location loc = first.getLoc();
    Type element = cast<RankedTensorType>(first.getType()).getElementType();
    auto in0 = cast<RankedTensorType>(first.getInput().getType());
    int64_t group = cast<RankedTensorType>(first.getType()).getDimSize(0) /
                    in0.getDimSize(0);
    SmallVector<Value> flat;
    SmallVector<int64_t> sizes;
    int64_t total = 0;
    for (cgd::AllGatherOp m : members) {
      auto t = cast<RankedTensorType>(m.getInput().getType());
      flat.push_back(b.create<ReshapeOp>(
          loc, RankedTensorType::get({t.getNumElements()}, element),
          m.getInput()));
      sizes.push_back(t.getNumElements());
      total += t.getNumElements();
    }
    Value joined =
        b.create<ConcatOp>(loc, RankedTensorType::get({total}, element), flat,
                           b.getI64IntegerAttr(0));
    auto gathered = b.create<cgd::AllGatherOp>(
        loc, RankedTensorType::get({group * total}, element), joined,
        first.getMeshAttr(), first.getAxes(), b.getI64IntegerAttr(0));
    gathered->setAttr(
        "cg.bucket", b.getI64IntegerAttr(static_cast<int64_t>(members.size())));
    // Rank r's pieces are row r of [group, total].
    Value grid = b.create<ReshapeOp>(
        loc, RankedTensorType::get({group, total}, element), gathered);
    int64_t offset = 0;
    for (auto [m, n] : llvm::zip(members, sizes)) {
      Value piece =
          b.create<SliceOp>(loc, grid, b.getDenseI64ArrayAttr({0, offset}),
                            b.getDenseI64ArrayAttr({group, offset + n}),
                            b.getDenseI64ArrayAttr({1, 1}));
      offset += n;
      m.getResult().replaceAllUsesWith(
          b.create<ReshapeOp>(loc, m.getType(), piece));
    }
    for (cgd::AllGatherOp m : members)
      m.erase();
  }

  void bucket(func::FuncOp func) {
    // Step 1: positions.
    DenseMap<Operation *, int64_t> position;
    int64_t n = 0;
    for (Operation &op : func.getBody().front())
      position[&op] = n++;
    // Buckets only join reductions of one kind over one group.
    std::map<std::string, SmallVector<Member>> byKind;
    for (Operation &op : func.getBody().front()) {
      auto rs = dyn_cast<cgd::ReduceScatterOp>(op);
      if (!isa<cgd::AllReduceOp>(op) && !(rs && rs.getDim() == 0))
        continue;
      auto type = cast<RankedTensorType>(op.getOperand(0).getType());
      Operation *def = op.getOperand(0).getDefiningOp();
      int64_t firstUse = std::numeric_limits<int64_t>::max();
      for (Operation *user : op.getUsers())
        firstUse = std::min(firstUse, position.lookup(user));
      int64_t bits = std::max<int64_t>(8, type.getElementTypeBitWidth());
      std::string key;
      llvm::raw_string_ostream os(key);
      os << op.getName() << op.getAttr("mesh") << op.getAttr("axes")
         << op.getAttr("reduction") << type.getElementType();
      auto mark = def ? def->getAttrOfType<IntegerAttr>("cg.layer") : nullptr;
      byKind[os.str()].push_back({&op, def ? position.lookup(def) : -1,
                                  firstUse, type.getNumElements() * bits / 8,
                                  mark ? mark.getInt() : -1});
    }
    // Step 2: buckets, in the order the inputs become ready.
    for (auto &[key, members] : byKind) {
      llvm::stable_sort(members, [](const Member &a, const Member &b) {
        return a.ready < b.ready;
      });
      SmallVector<Member> current;
      int64_t bytes = 0, ready = -1, firstUse = 0;
      auto flush = [&] {
        if (current.size() > 1)
          rewrite(current);
        current.clear();
        bytes = 0;
        ready = -1;
      };
      for (const Member &m : members) {
        // A member whose input comes after another member's first use
        // cannot join: the bucket would run too late. Reduce-scatters
        // (ZeRO-2/3) stay within a layer, or the whole gradients would
        // live until the bucket runs, which is what ZeRO-2 avoids.
        if (!current.empty() && (m.ready >= firstUse || m.firstUse <= m.ready ||
                                 (isa<cgd::ReduceScatterOp>(m.op) &&
                                  m.layer != current.back().layer)))
          flush();
        if (current.empty())
          firstUse = std::numeric_limits<int64_t>::max();
        current.push_back(m);
        bytes += m.bytes;
        ready = std::max(ready, m.ready);
        firstUse = std::min(firstUse, m.firstUse);
        if (bytes >= bucketBytes)
          flush();
      }
      flush();
    }
  }

  /// Step 3: flatten, concatenate, reduce once, split back. A bucket of
  /// reduce-scatters lays each input out as [group, piece] (row r: the
  /// piece of device r, as dim 0 splits) and joins them along the pieces,
  /// so one reduce-scatter along dim 0 gives each device its piece of
  /// every member.
  void rewrite(MutableArrayRef<Member> members) {
    ++numBuckets;
    // Right after the last input is produced (inputs are never arguments
    // here in practice; then the bucket goes first).
    Operation *last = nullptr;
    for (Member &m : members)
      if (Operation *def = m.op->getOperand(0).getDefiningOp())
        if (!last || last->isBeforeInBlock(def))
          last = def;
    Operation *front = members.front().op;
    OpBuilder b(front);
    if (last)
      b.setInsertionPointAfter(last);
    else
      b.setInsertionPointToStart(front->getBlock());
    Location loc = front->getLoc();
    bool scatter = isa<cgd::ReduceScatterOp>(front);
    auto numel = [](Value v) {
      return cast<RankedTensorType>(v.getType()).getNumElements();
    };
    // Devices in the group: 1 for an all-reduce's layout.
    int64_t group =
        scatter ? numel(front->getOperand(0)) / numel(front->getResult(0)) : 1;
    Type element =
        cast<RankedTensorType>(front->getResult(0).getType()).getElementType();
    SmallVector<Value> laidOut;
    SmallVector<int64_t> sizes;
    int64_t total = 0;
    for (Member &m : members) {
      int64_t piece = numel(m.op->getResult(0));
      auto type = scatter ? RankedTensorType::get({group, piece}, element)
                          : RankedTensorType::get({piece}, element);
      laidOut.push_back(b.create<ReshapeOp>(loc, type, m.op->getOperand(0)));
      sizes.push_back(piece);
      total += piece;
    }
    auto joinedType = scatter ? RankedTensorType::get({group, total}, element)
                              : RankedTensorType::get({total}, element);
    Value joined = b.create<ConcatOp>(loc, joinedType, laidOut,
                                      b.getI64IntegerAttr(scatter ? 1 : 0));
    auto bucketType = RankedTensorType::get({total}, element);
    Value reduced;
    auto mesh = cast<FlatSymbolRefAttr>(front->getAttr("mesh"));
    auto axes = cast<ArrayAttr>(front->getAttr("axes"));
    auto kind = cast<cgd::ReductionKindAttr>(front->getAttr("reduction"));
    Operation *collective;
    if (scatter) {
      collective = b.create<cgd::ReduceScatterOp>(
          loc, RankedTensorType::get({1, total}, element), joined, mesh, axes,
          b.getI64IntegerAttr(0), kind);
      reduced = b.create<ReshapeOp>(loc, bucketType, collective->getResult(0));
    } else {
      collective =
          b.create<cgd::AllReduceOp>(loc, bucketType, joined, mesh, axes, kind);
      reduced = collective->getResult(0);
    }
    collective->setAttr("cg.bucket", b.getI64IntegerAttr(members.size()));
    SmallVector<Type> pieceTypes;
    for (int64_t s : sizes)
      pieceTypes.push_back(RankedTensorType::get({s}, element));
    auto split =
        b.create<SplitOp>(loc, pieceTypes, reduced, b.getI64IntegerAttr(0),
                          b.getDenseI64ArrayAttr(sizes));
    for (auto [m, piece] : llvm::zip(members, split.getResults())) {
      Value back =
          b.create<ReshapeOp>(loc, m.op->getResult(0).getType(), piece);
      m.op->getResult(0).replaceAllUsesWith(back);
    }
    // Erased last: the builder may be inserting right before one of them.
    for (Member &m : members)
      m.op->erase();
  }
};

} // namespace
