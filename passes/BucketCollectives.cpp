//===- BucketCollectives.cpp - Gradient all-reduces in buckets ------------===//
//
// Steps: (1) collect the all-reduces of the partitioned program with the
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

struct Member {
  cgd::AllReduceOp op;
  int64_t ready; // position of the op producing the input (-1: argument)
  int64_t firstUse;
  int64_t bytes;
};

struct BucketCollectivesPass
    : mlir::colossal::impl::BucketCollectivesPassBase<BucketCollectivesPass> {
  using BucketCollectivesPassBase::BucketCollectivesPassBase;

  void runOnOperation() override {
    if (bucketBytes < 0) {
      getOperation().emitError("bucket-bytes must be >= 0 (0: no buckets)");
      return signalPassFailure();
    }
    if (bucketBytes == 0)
      return markAllAnalysesPreserved();
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (!func.isExternal())
        bucket(func);
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
      auto ar = dyn_cast<cgd::AllReduceOp>(op);
      if (!ar)
        continue;
      auto type = cast<RankedTensorType>(ar.getType());
      Operation *def = ar.getInput().getDefiningOp();
      int64_t firstUse = std::numeric_limits<int64_t>::max();
      for (Operation *user : ar->getUsers())
        firstUse = std::min(firstUse, position.lookup(user));
      int64_t bits = std::max<int64_t>(8, type.getElementTypeBitWidth());
      std::string key;
      llvm::raw_string_ostream os(key);
      os << ar.getMeshAttr() << ar.getAxes() << ar.getReductionAttr()
         << type.getElementType();
      byKind[os.str()].push_back({ar, def ? position.lookup(def) : -1, firstUse,
                                  type.getNumElements() * bits / 8});
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
        // cannot join: the bucket would run too late.
        if (!current.empty() && (m.ready >= firstUse || m.firstUse <= m.ready))
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

  /// Step 3: flatten, concatenate, reduce once, split back.
  void rewrite(MutableArrayRef<Member> members) {
    ++numBuckets;
    // Right after the last input is produced (inputs are never arguments
    // here in practice; then the bucket goes first).
    Operation *last = nullptr;
    for (Member &m : members)
      if (Operation *def = m.op.getInput().getDefiningOp())
        if (!last || last->isBeforeInBlock(def))
          last = def;
    OpBuilder b(members.front().op);
    if (last)
      b.setInsertionPointAfter(last);
    else
      b.setInsertionPointToStart(members.front().op->getBlock());
    Location loc = members.front().op.getLoc();
    auto first = cast<RankedTensorType>(members.front().op.getType());
    Type element = first.getElementType();
    SmallVector<Value> flat;
    SmallVector<int64_t> sizes;
    int64_t total = 0;
    for (Member &m : members) {
      auto type = cast<RankedTensorType>(m.op.getType());
      auto flatType = RankedTensorType::get({type.getNumElements()}, element);
      flat.push_back(b.create<ReshapeOp>(loc, flatType, m.op.getInput()));
      sizes.push_back(type.getNumElements());
      total += type.getNumElements();
    }
    auto bucketType = RankedTensorType::get({total}, element);
    Value joined =
        b.create<ConcatOp>(loc, bucketType, flat, b.getI64IntegerAttr(0));
    auto reduced = b.create<cgd::AllReduceOp>(
        loc, bucketType, joined, members.front().op.getMeshAttr(),
        members.front().op.getAxes(), members.front().op.getReductionAttr());
    reduced->setAttr("cg.bucket", b.getI64IntegerAttr(members.size()));
    SmallVector<Type> pieceTypes;
    for (int64_t s : sizes)
      pieceTypes.push_back(RankedTensorType::get({s}, element));
    auto split = b.create<SplitOp>(loc, pieceTypes, reduced.getResult(),
                                   b.getI64IntegerAttr(0),
                                   b.getDenseI64ArrayAttr(sizes));
    for (auto [m, piece] : llvm::zip(members, split.getResults())) {
      Value back = b.create<ReshapeOp>(loc, m.op.getType(), piece);
      m.op.getResult().replaceAllUsesWith(back);
    }
    // Erased last: the builder may be inserting right before one of them.
    for (Member &m : members)
      m.op.erase();
  }
};

} // namespace
