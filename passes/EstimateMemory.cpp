//===- EstimateMemory.cpp - Peak memory of a per-device program -----------===//
//
// Steps: (1) the buffers' lifetimes (BufferLifetimes), (2) the bytes live
// at every op (a sweep over lifetime starts and ends), (3) at the largest,
// what is live by kind, (4) record it on the module (and report it).
//
//===----------------------------------------------------------------------===//

#include "passes/BufferLifetimes.h"
#include "passes/GraphBuild.h"
#include "passes/Passes.h"

#include "dialects/Dist/IR/DistOps.h"
#include "dialects/Graph/IR/GraphOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/Support/FormatVariadic.h"

namespace mlir::colossal {
#define GEN_PASS_DEF_ESTIMATEMEMORYPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

/// The program index of the op that computes the result named "loss"; the
/// number of ops when there is none (every intermediate is forward).
int64_t lossIndex(func::FuncOp func, const BufferLifetimes &lifetimes) {
  Operation *def = lossOp(func);
  return def ? lifetimes.indexOf.lookup(def) : lifetimes.numOps;
}

struct EstimateMemoryPass
    : mlir::colossal::impl::EstimateMemoryPassBase<EstimateMemoryPass> {
  using EstimateMemoryPassBase::EstimateMemoryPassBase;

  void runOnOperation() override {
    int64_t align = alignment;
    // A pipeline's stages (colossal-pipeline): the stage whose peak is
    // highest is the job's, and says which it is.
    SmallVector<func::FuncOp> stages;
    for (auto f : getOperation().getOps<func::FuncOp>())
      if (!f.isExternal() && f->hasAttr("cg.pipeline_stage"))
        stages.push_back(f);
    if (!stages.empty()) {
      DictionaryAttr worst;
      int64_t worstPeak = -1;
      for (func::FuncOp f : stages) {
        estimate(getOperation(), f, align);
        auto e =
            getOperation()->getAttrOfType<DictionaryAttr>("cg.memory_estimate");
        int64_t peak = e.getAs<IntegerAttr>("peak_bytes").getInt();
        if (peak > worstPeak) {
          worstPeak = peak;
          NamedAttrList fields(e);
          fields.set("stage",
                     Builder(&getContext())
                         .getI64IntegerAttr(
                             f->getAttrOfType<IntegerAttr>("cg.pipeline_stage")
                                 .getInt()));
          worst = fields.getDictionary(&getContext());
        }
      }
      getOperation()->setAttr("cg.memory_estimate", worst);
      return;
    }
    FailureOr<func::FuncOp> func =
        deviceProgram(getOperation(), align, "the memory estimate");
    if (failed(func))
      return signalPassFailure();
    estimate(getOperation(), *func, align);
  }

  void estimate(ModuleOp module, func::FuncOp func, int64_t align) {
    // Step 1: lifetimes.
    BufferLifetimes lifetimes = computeBufferLifetimes(func, inPlace);
    auto aligned = [&](const Buffer &b) {
      return (b.bytes + align - 1) / align * align;
    };
    // Step 2: bytes live at each op.
    std::vector<int64_t> delta(lifetimes.numOps + 1, 0);
    std::vector<int64_t> hostDelta(lifetimes.numOps + 1, 0);
    int64_t fixed = 0, host = 0;
    for (const Buffer &b : lifetimes.buffers) {
      Operation *owner = b.value.getDefiningOp();
      if (b.fixed && owner && owner->hasAttr("cg.host")) {
        host += aligned(b); // offloaded: in the host pool
        continue;
      }
      if (owner && owner->hasAttr("cg.host")) { // an offloaded activation
        hostDelta[b.start] += aligned(b);
        if (b.end != Buffer::kForever)
          hostDelta[b.end + 1] -= aligned(b);
        continue;
      }
      if (b.fixed) {
        fixed += aligned(b);
        continue;
      }
      delta[b.start] += aligned(b);
      if (b.end != Buffer::kForever)
        delta[b.end + 1] -= aligned(b);
    }
    int64_t live = 0, peak = 0, at = 0, hostLive = 0, hostPeak = 0;
    for (int64_t i = 0; i < lifetimes.numOps; ++i) {
      live += delta[i];
      if (live > peak) {
        peak = live;
        at = i;
      }
      hostLive += hostDelta[i];
      hostPeak = std::max(hostPeak, hostLive);
    }
    host += hostPeak;
    // Step 3: what is live at the peak.
    int64_t loss = lossIndex(func, lifetimes);
    int64_t weights = 0, optimizer = 0, constants = 0, inputs = 0, forward = 0,
            backward = 0, collectives = 0;
    for (const Buffer &b : lifetimes.buffers) {
      Operation *def = b.value.getDefiningOp();
      if (def && def->hasAttr("cg.host"))
        continue;
      if (b.fixed) {
        auto param = dyn_cast<ParamOp>(def);
        auto role =
            param ? param->getAttrOfType<StringAttr>("cg.role") : StringAttr();
        (param ? (role && role.getValue() == "optimizer" ? optimizer : weights)
               : constants) += aligned(b);
        continue;
      }
      if (b.start > at || b.end < at)
        continue;
      if (!def)
        inputs += aligned(b);
      else if (isa<cgd::CGDDialect>(def->getDialect()) &&
               !isa<cgd::RingAttentionOp, cgd::RingAttentionBackwardOp>(def))
        collectives += aligned(b);
      else
        (b.start <= loss ? forward : backward) += aligned(b);
    }
    Operation *peakOp = nullptr;
    for (Operation &op : func.getBody().front())
      if (lifetimes.indexOf.lookup(&op) == at)
        peakOp = &op;
    std::string where;
    llvm::raw_string_ostream os(where);
    os << "op " << at << " (" << peakOp->getName() << " at " << peakOp->getLoc()
       << ")";

    // Step 4: record.
    Builder b(module.getContext());
    auto i64 = [&](int64_t v) { return b.getI64IntegerAttr(v); };
    SmallVector<NamedAttribute> fields = {
        b.getNamedAttr("peak_bytes", i64(fixed + peak)),
        b.getNamedAttr("weights", i64(weights)),
        b.getNamedAttr("optimizer_state", i64(optimizer)),
        b.getNamedAttr("constants", i64(constants)),
        b.getNamedAttr("inputs", i64(inputs)),
        b.getNamedAttr("forward_activations", i64(forward)),
        b.getNamedAttr("backward_buffers", i64(backward)),
        b.getNamedAttr("collective_buffers", i64(collectives)),
        b.getNamedAttr("peak_at", b.getStringAttr(where))};
    if (host > 0) // offloaded state and activations, outside the peak
      fields.push_back(b.getNamedAttr("host_pool_bytes", i64(host)));
    module->setAttr("cg.memory_estimate", b.getDictionaryAttr(fields));
    if (report)
      func.emitRemark(llvm::formatv(
          "peak {0} bytes at {1}: weights {2}, optimizer state {3}, "
          "constants {4}, inputs {5}, forward activations {6}, backward "
          "buffers {7}, collective buffers {8}",
          fixed + peak, where, weights, optimizer, constants, inputs, forward,
          backward, collectives));
  }
};

} // namespace
