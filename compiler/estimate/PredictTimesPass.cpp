//===- PredictTimesPass.cpp - colossal-predict-times ----------------------===//
//
// Records on every op of the per-rank programs the time the cost model
// predicts for it on one device of the cluster (`cg.predicted_s`), with the
// same formulas the estimator charges (Compute.h, Collectives.h): GEMMs,
// convolutions and attention by roofline with the GEMM efficiency curve,
// everything else by its bytes over achieved memory bandwidth (a host op's
// over the host's), collectives by the alpha-beta model over their group,
// sends and ring hops as point-to-point transfers, offload copies over
// PCIe. The plan carries the figure on each instruction, and `colossal-run
// --profile` sets it beside the measured time.
//
//===----------------------------------------------------------------------===//

#include "compiler/cost/Collectives.h"
#include "compiler/cost/Compute.h"
#include "passes/GraphStats.h"
#include "passes/Passes.h"

#include "dialects/Dist/IR/DistOps.h"
#include "dialects/Graph/IR/GraphOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

#include <algorithm>

namespace mlir::colossal {
#define GEN_PASS_DEF_PREDICTTIMESPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;
namespace cost = ::colossal::cost;

namespace {

cost::DType dtypeOf(Type element) {
  if (element.isBF16())
    return cost::DType::BF16;
  if (element.isF16())
    return cost::DType::FP16;
  return cost::DType::FP32;
}

double bytesOf(Value v) {
  auto t = dyn_cast<ShapedType>(v.getType());
  return t && t.hasStaticShape() ? static_cast<double>(tensorBytes(v)) : 0.0;
}

double dim(Value v, int fromEnd) {
  auto t = cast<ShapedType>(v.getType());
  return static_cast<double>(t.getDimSize(t.getRank() - fromEnd));
}

/// Rows of `v` before its last `keep` dimensions (the batch of a batched
/// product).
double leading(Value v, int keep) {
  auto t = cast<ShapedType>(v.getType());
  double n = 1;
  for (int64_t i = 0; i + keep < t.getRank(); ++i)
    n *= static_cast<double>(t.getDimSize(i));
  return n;
}

struct PredictTimesPass
    : mlir::colossal::impl::PredictTimesPassBase<PredictTimesPass> {
  using PredictTimesPassBase::PredictTimesPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto spec = cost::parseClusterArg(cluster);
    if (!spec) {
      module.emitError("colossal-predict-times: ")
          << llvm::toString(spec.takeError());
      return signalPassFailure();
    }
    c = &*spec;
    for (MeshOp m : module.getOps<MeshOp>())
      mesh = m.getMesh();
    // Ranks of one pipeline stage, the distance between neighbouring
    // stages' ranks.
    int64_t funcs = 0;
    for (auto func : module.getOps<func::FuncOp>())
      funcs += !func.isExternal();
    perStage = mesh ? std::max<int64_t>(1, mesh.getNumDevices() /
                                               std::max<int64_t>(1, funcs))
                    : 1;
    OpBuilder b(module.getContext());
    module.walk([&](Operation *op) {
      if (isa<func::FuncOp, func::ReturnOp, ModuleOp, ParamOp, ConstantOp,
              MeshOp>(op))
        return;
      double t = predict(op);
      op->setAttr("cg.predicted_s", b.getF64FloatAttr(t));
    });
  }

  /// The group over mesh axes `axes` (major to minor): its size, and the
  /// ranks between its members in the mesh's device order.
  cost::CommGroup groupOver(ArrayAttr axes) const {
    int64_t size = 1, stride = 1;
    if (!mesh || !axes)
      return cost::CommGroup{1, 1};
    int64_t last = -1;
    for (Attribute a : axes)
      if (auto i = mesh.getAxisIndex(cast<StringAttr>(a).getValue())) {
        size *= mesh.getAxisSizes()[*i];
        last = std::max<int64_t>(last, *i);
      }
    for (int64_t i = last + 1;
         i < static_cast<int64_t>(mesh.getAxisSizes().size()); ++i)
      stride *= mesh.getAxisSizes()[i];
    return cost::CommGroup::strided(*c, size, stride);
  }

  double p2p(double bytes, int64_t distance) const {
    return cost::p2pTime(*c, bytes, distance >= c->gpus_per_node);
  }

  double memoryBound(Operation *op) const {
    double bytes = 0;
    for (Value v : op->getOperands())
      bytes += bytesOf(v);
    for (Value v : op->getResults())
      bytes += bytesOf(v);
    // The optimizer step on the host, and assignments of host state.
    bool onHost = op->hasAttr("cg.host") ||
                  (isa<AssignOp>(op) && op->getOperand(1).getDefiningOp() &&
                   op->getOperand(1).getDefiningOp()->hasAttr("cg.host"));
    if (onHost)
      return bytes / std::max(c->host.memory_bandwidth /
                                  static_cast<double>(c->gpus_per_node),
                              1.0) +
             c->efficiency.kernel_launch_overhead_s;
    return cost::memoryBoundTime(*c, bytes);
  }

  double attention(Value q, Value k, bool causal, bool backward) const {
    cost::AttentionShape a;
    a.batch = leading(q, 2);
    a.s_q = dim(q, 2);
    a.s_kv = dim(k, 2);
    a.head_dim = dim(q, 1);
    a.fused = true;
    a.dropout = false;
    a.causal = causal;
    cost::DType t = dtypeOf(cast<ShapedType>(q.getType()).getElementType());
    return backward ? cost::attentionBackwardTime(*c, a, t)
                    : cost::attentionForwardTime(*c, a, t);
  }

  double predict(Operation *op) const {
    using K = cost::CollectiveKind;
    if (auto m = dyn_cast<MatMulOp>(op)) {
      Value lhs = m.getLhs(), rhs = m.getRhs();
      double k = dim(lhs, m.getTransposeLhs() ? 2 : 1);
      double n = dim(rhs, m.getTransposeRhs() ? 2 : 1);
      double rows = leading(m.getResult(), 1); // batch x m
      double batch = leading(rhs, 2);
      double mm = batch > 1 ? rows / batch : rows;
      return cost::gemmTime(
          *c, mm, n, k, std::max(batch, 1.0),
          dtypeOf(cast<ShapedType>(lhs.getType()).getElementType()));
    }
    if (auto a = dyn_cast<AttentionOp>(op))
      return attention(a.getQuery(), a.getKey(), a.getCausal(), false);
    if (auto a = dyn_cast<AttentionBackwardOp>(op))
      return attention(a.getQuery(), a.getKey(), a.getCausal(), true);
    if (isa<cgd::RingAttentionOp, cgd::RingAttentionBackwardOp>(op)) {
      // Every block of the sequence, and a hop per other block (the
      // backward's accumulators travel too, and take one hop home).
      bool backward = isa<cgd::RingAttentionBackwardOp>(op);
      cost::CommGroup g = groupOver(op->getAttrOfType<ArrayAttr>("axes"));
      Value q = op->getOperand(0), k = op->getOperand(1), v = op->getOperand(2);
      double n = static_cast<double>(g.size);
      double compute = attention(q, k, op->hasAttr("causal"), backward) * n;
      if (op->hasAttr("causal"))
        compute *= (n + 1) / (2 * n); // blocks wholly in the future skipped
      double block = bytesOf(k) + bytesOf(v);
      double hops = (n - 1) * (backward ? 2.0 : 1.0) + (backward ? 1.0 : 0.0);
      int64_t stride = g.size > 1 ? 1 : 0;
      return compute + hops * p2p(backward ? 2 * block : block, stride);
    }
    if (auto s = dyn_cast<cgd::SendOp>(op))
      return p2p(bytesOf(s.getInput()), perStage);
    if (auto r = dyn_cast<cgd::RecvOp>(op))
      return p2p(bytesOf(r.getResult()), perStage);
    if (isa<cgd::CopyToHostOp, cgd::CopyToDeviceOp>(op))
      return bytesOf(op->getResult(0)) /
             std::max(c->host.pcie_bandwidth * c->efficiency.pcie_fraction,
                      1.0);
    auto collective = [&](K kind, double bytes) {
      return cost::collectiveTime(
          *c, kind, bytes, groupOver(op->getAttrOfType<ArrayAttr>("axes")));
    };
    if (auto ar = dyn_cast<cgd::AllReduceOp>(op))
      return collective(K::AllReduce, bytesOf(ar.getResult()));
    if (auto ag = dyn_cast<cgd::AllGatherOp>(op))
      return collective(K::AllGather, bytesOf(ag.getResult()));
    if (auto rs = dyn_cast<cgd::ReduceScatterOp>(op))
      return collective(K::ReduceScatter, bytesOf(rs.getInput()));
    if (auto a2a = dyn_cast<cgd::AllToAllOp>(op))
      return collective(K::AllToAll, bytesOf(a2a.getInput()));
    // (An assignment copies its value over the parameter: its operands'
    // bytes, as any memory-bound op.)
    double flops = forwardFlops(op);
    double memory = memoryBound(op);
    if (flops <= 0)
      return memory;
    cost::DType t = cost::DType::FP32;
    if (op->getNumResults() > 0)
      if (auto s = dyn_cast<ShapedType>(op->getResult(0).getType()))
        t = dtypeOf(s.getElementType());
    return std::max(memory, flops / (c->device.peakFlops(t) *
                                     c->efficiency.gemm_peak_fraction));
  }

  const cost::ClusterSpec *c = nullptr;
  MeshAttr mesh;
  int64_t perStage = 1;
};

} // namespace
