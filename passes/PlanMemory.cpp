//===- PlanMemory.cpp - Static memory plan in one arena -------------------===//
//
// Steps: (1) find every buffer's lifetime (BufferLifetimes: aliases, last
// uses, in-place writes), (2) give parameters and constants fixed slots at
// the start, (3) place inputs and intermediates by size, largest first, each
// in the smallest gap left by the buffers whose lifetimes overlap its own
// ("greedy by size", Pisarchyk and Lee 2020, as TensorFlow Lite plans its
// arenas), (4) record the offsets. The arena size recorded is exactly what
// the runtime allocates.
//
//===----------------------------------------------------------------------===//

#include "passes/BufferLifetimes.h"
#include "passes/Passes.h"

#include "dialects/Graph/IR/GraphOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

#include <map>
#include <numeric>

namespace mlir::colossal {
#define GEN_PASS_DEF_PLANMEMORYPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

/// Offsets (from 0) of the buffers `which` of `lifetimes`, none overlapping
/// another whose lifetime overlaps its own; returns the bytes spanned.
int64_t placeBySize(const BufferLifetimes &lifetimes, ArrayRef<unsigned> which,
                    int64_t alignment, DenseMap<unsigned, int64_t> &offsets) {
  auto align = [&](int64_t n) {
    return (n + alignment - 1) / alignment * alignment;
  };
  const auto &bufs = lifetimes.buffers;
  SmallVector<unsigned> order(which.begin(), which.end());
  llvm::stable_sort(order, [&](unsigned a, unsigned b) {
    int64_t sa = align(bufs[a].bytes), sb = align(bufs[b].bytes);
    return sa != sb ? sa > sb : bufs[a].start < bufs[b].start;
  });
  std::multimap<int64_t, unsigned> placed; // offset -> buffer
  int64_t top = 0;
  for (unsigned b : order) {
    const Buffer &buf = bufs[b];
    int64_t size = align(buf.bytes);
    int64_t best = -1, bestGap = 0, prevEnd = 0;
    for (auto [offset, other] : placed) {
      const Buffer &o = bufs[other];
      if (o.end < buf.start || buf.end < o.start)
        continue; // never live at the same time
      int64_t gap = offset - prevEnd;
      if (gap >= size && (best < 0 || gap < bestGap)) {
        best = prevEnd;
        bestGap = gap;
      }
      prevEnd = std::max(prevEnd, offset + align(o.bytes));
    }
    if (best < 0)
      best = prevEnd;
    offsets[b] = best;
    placed.emplace(best, b);
    top = std::max(top, best + size);
  }
  return top;
}

struct PlanMemoryPass
    : mlir::colossal::impl::PlanMemoryPassBase<PlanMemoryPass> {
  using PlanMemoryPassBase::PlanMemoryPassBase;

  void runOnOperation() override {
    // A pipeline has one program per stage (colossal-pipeline), each
    // planned on its own; otherwise there is one.
    SmallVector<func::FuncOp> stages;
    for (auto f : getOperation().getOps<func::FuncOp>())
      if (!f.isExternal() && f->hasAttr("cg.pipeline_stage"))
        stages.push_back(f);
    if (stages.empty()) {
      FailureOr<func::FuncOp> func =
          deviceProgram(getOperation(), alignment, "the memory plan");
      if (failed(func) || failed(plan(*func)))
        return signalPassFailure();
      return;
    }
    int64_t largest = 0;
    for (func::FuncOp f : stages) {
      if (failed(plan(f)))
        return signalPassFailure();
      auto bytes = getOperation()->getAttrOfType<IntegerAttr>("cg.arena_bytes");
      f->setAttr("cg.arena_bytes", bytes);
      largest = std::max(largest, bytes.getInt());
    }
    getOperation()->setAttr("cg.arena_bytes",
                            Builder(&getContext()).getI64IntegerAttr(largest));
  }

  LogicalResult plan(func::FuncOp func) {
    // Step 1: lifetimes.
    BufferLifetimes lifetimes = computeBufferLifetimes(func, inPlace);
    auto align = [&](int64_t n) {
      return (n + alignment - 1) / alignment * alignment;
    };
    // Step 2: parameters and constants, fixed slots at the start.
    DenseMap<unsigned, int64_t> offsets;
    int64_t staticTop = 0;
    SmallVector<unsigned> dynamic;
    // Offloaded parameters (colossal-offload) live in the host pool, and
    // so do offloaded activations (placed by their lifetimes after them).
    int64_t hostTop = 0;
    SmallVector<unsigned> hostDynamic;
    for (auto [i, buf] : llvm::enumerate(lifetimes.buffers)) {
      Operation *def = buf.value.getDefiningOp();
      if (!buf.fixed) {
        (def && def->hasAttr("cg.host") ? hostDynamic : dynamic).push_back(i);
        continue;
      }
      if (def && def->hasAttr("cg.host")) {
        offsets[i] = hostTop;
        hostTop += align(buf.bytes);
        continue;
      }
      offsets[i] = staticTop;
      staticTop += align(buf.bytes);
    }
    DenseMap<unsigned, int64_t> hostOffsets;
    int64_t hostDynamicBytes =
        placeBySize(lifetimes, hostDynamic, alignment, hostOffsets);
    for (auto [b, offset] : hostOffsets)
      offsets[b] = hostTop + offset;
    hostTop += hostDynamicBytes;
    // Step 3: inputs and intermediates, by size.
    DenseMap<unsigned, int64_t> dynamicOffsets;
    int64_t arenaBytes =
        staticTop + placeBySize(lifetimes, dynamic, alignment, dynamicOffsets);
    for (auto [b, offset] : dynamicOffsets)
      offsets[b] = staticTop + offset;
    auto offsetOf = [&](Value v) {
      return offsets.lookup(lifetimes.bufferOf.lookup(v));
    };

    // Step 4: record.
    Builder b(func.getContext());
    for (Operation &op : func.getBody().front()) {
      if (op.getNumResults() == 0)
        continue;
      SmallVector<int64_t> resultOffsets;
      for (Value result : op.getResults())
        resultOffsets.push_back(offsetOf(result));
      op.setAttr("cg.offsets", b.getDenseI64ArrayAttr(resultOffsets));
    }
    for (BlockArgument arg : func.getArguments())
      func.setArgAttr(arg.getArgNumber(), "cg.offset",
                      b.getI64IntegerAttr(offsetOf(arg)));
    func->getParentOfType<ModuleOp>()->setAttr("cg.arena_bytes",
                                               b.getI64IntegerAttr(arenaBytes));
    if (hostTop > 0)
      func->setAttr("cg.host_pool_bytes", b.getI64IntegerAttr(hostTop));
    return success();
  }
};

} // namespace
