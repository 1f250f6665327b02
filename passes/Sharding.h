//===- Sharding.h - Sharding specs and the per-op sharding rules -*- C++
//-*-===//
//
// The partitioning passes reason about shardings as small value types
// (`Spec`: mesh axes per dimension plus pending-sum axes) rather than
// attributes, and ask one function, `inferOpShardings`, what an op does with
// sharded operands: which sharding each operand must arrive in and which
// sharding each result then has. Every op has an answer: ops without a rule
// of their own run on whole (replicated) tensors, which is always correct.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_PASSES_SHARDING_H
#define COLOSSAL_PASSES_SHARDING_H

#include "dialects/Graph/IR/GraphOps.h"

#include "mlir/IR/Operation.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"

#include <string>

namespace mlir::colossal {

/// Mesh axes, by name, with their sizes.
struct MeshInfo {
  llvm::SmallVector<std::string> names;
  llvm::SmallVector<int64_t> sizes;

  static MeshInfo fromAttr(cg::MeshAttr mesh);
  int64_t size(llvm::StringRef axis) const;
  int64_t numDevices() const;
};

/// How one value is laid over the mesh: per dimension the axes splitting it
/// (major to minor), and the axes over which it is a pending sum.
struct Spec {
  llvm::SmallVector<llvm::SmallVector<std::string, 2>> dims;
  llvm::SmallVector<std::string, 2> partial;

  static Spec replicated(int64_t rank);
  static Spec fromAttr(cg::ShardingAttr attr, int64_t rank);
  cg::ShardingAttr toAttr(MLIRContext *ctx, FlatSymbolRefAttr mesh) const;

  int64_t rank() const { return static_cast<int64_t>(dims.size()); }
  bool isReplicated() const;
  bool hasPartial() const { return !partial.empty(); }
  /// Devices a dimension is split over (1 when replicated).
  int64_t splitOf(int64_t dim, const MeshInfo &mesh) const;
  /// Product of splitOf over all dimensions.
  int64_t splitProduct(const MeshInfo &mesh) const;
  /// Whether dimension `dim` splits `coarse`'s split further (its axes
  /// start with `coarse`'s): getting there needs only local slices.
  bool dimRefines(int64_t dim, const Spec &coarse) const;
  /// dimRefines on every dimension, neither side a pending sum.
  bool refines(const Spec &coarse) const;
  /// The same layout without pending sums.
  Spec withoutPartial() const;
  /// Per-device shape of `shape`; fails when a dimension does not divide.
  FailureOr<llvm::SmallVector<int64_t>>
  localShape(llvm::ArrayRef<int64_t> shape, const MeshInfo &mesh) const;
  std::string str() const;

  bool operator==(const Spec &o) const {
    return dims == o.dims && partial == o.partial;
  }
  bool operator!=(const Spec &o) const { return !(*this == o); }
};

/// How the propagation resolves a pending sum that meets an op which is not
/// linear in it: all-reduce to a replicated value (plain data parallelism,
/// ZeRO-1), or reduce-scatter onto the leading dimension when the consumer
/// has no split of its own to follow (ZeRO-2/3: gradients reduce-scattered).
enum class PartialResolution { AllReduce, ReduceScatter };

/// What an op wants: one spec per operand (the layout each must arrive in)
/// and one per result.
struct OpShardings {
  llvm::SmallVector<Spec> operands;
  llvm::SmallVector<Spec> results;
};

/// The sharding rule of `op` given its operands' current specs. Never fails:
/// an op without a rule asks for replicated operands.
OpShardings inferOpShardings(Operation *op, llvm::ArrayRef<Spec> operands,
                             const MeshInfo &mesh,
                             PartialResolution resolution);

/// Elementwise ops with numpy broadcasting (operands aligned at the right).
bool isPointwise(Operation *op);

/// Whether `v` is a parameter or a view of one (through transposes and
/// reshapes).
bool isParameterView(Value v);

/// The specs recorded on `op` by colossal-propagate-sharding
/// (`cg.sharding` for results, `cg.operand_sharding` for operands).
llvm::StringRef operandShardingAttrName();

/// The mark colossal-shard-for-parallel{sp-mode=ring} puts on attention
/// ops (`cg.ring_attention`): a sequence split over sp stays split.
llvm::StringRef ringAttentionAttrName();

/// The one mesh of the module (`cg.mesh`), or null.
cg::MeshOp findMesh(ModuleOp module);

} // namespace mlir::colossal

#endif // COLOSSAL_PASSES_SHARDING_H
