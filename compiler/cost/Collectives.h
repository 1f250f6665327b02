//===- Collectives.h - Alpha-beta times of collectives ----------*- C++ -*-===//
//
// Time of NCCL-style collectives by an alpha-beta model per algorithm (ring,
// double binary tree, two-level hierarchical) over the cluster's two link
// levels. A group is described by its size and by how many of its ranks share
// a node, which decides whether its traffic crosses InfiniBand.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_COMPILER_COST_COLLECTIVES_H
#define COLOSSAL_COMPILER_COST_COLLECTIVES_H

#include "compiler/cost/ClusterSpec.h"

#include <cstdint>

namespace colossal {
namespace cost {

/// A communicator: `size` ranks, `ranks_per_node` of them on each node it
/// spans (8 of 8 in one DGX node; 8 per node for 16 ranks over 2 nodes; 1 per
/// node for a data-parallel group strided across nodes).
struct CommGroup {
  int64_t size = 1;
  int64_t ranks_per_node = 1;

  int64_t nodes() const { return (size + ranks_per_node - 1) / ranks_per_node; }
  /// The group formed by `size` ranks `stride` apart in a rank order that
  /// fills nodes first (rank r lives on node r / gpus_per_node).
  static CommGroup strided(const ClusterSpec &c, int64_t size, int64_t stride);
};

enum class CollectiveKind {
  AllReduce,
  AllGather,
  ReduceScatter,
  AllToAll,
  Broadcast,
  SendRecv
};

enum class CollectiveAlgo { Auto, Ring, Tree, Hierarchical };

/// Effective (achieved) bandwidth in bytes/s of the slowest hop of a ring over
/// `g`. Inside a node: NVLink. Across nodes NCCL runs one ring per NIC, so the
/// node's r ranks reach r * per-GPU InfiniBand bandwidth, capped by NVLink.
double ringBandwidth(const ClusterSpec &c, const CommGroup &g);
/// Per-step latency of a ring over `g`: the slowest link it crosses.
double ringLatency(const ClusterSpec &c, const CommGroup &g);

/// Seconds for one collective. `bytes` is the size of the full buffer:
///  - AllReduce: the buffer every rank holds;
///  - AllGather: the gathered output; ReduceScatter: the unreduced input;
///  - AllToAll: what one rank sends in total (including its own share);
///  - Broadcast: the buffer; SendRecv: the message (group size 2).
/// Ring all-reduce: 2(p-1)/p * bytes / bw + 2(p-1) * alpha.
/// Ring all-gather / reduce-scatter: (p-1)/p * bytes / bw + (p-1) * alpha.
/// Tree all-reduce: 2 * bytes / bw + 2 (log2(nodes) alpha_ib +
///   (r-1) alpha_nvlink). Hierarchical: reduce-scatter in the node, ring
/// across nodes on bytes / r, all-gather in the node. Auto takes the fastest.
double collectiveTime(const ClusterSpec &c, CollectiveKind kind, double bytes,
                      const CommGroup &g,
                      CollectiveAlgo algo = CollectiveAlgo::Auto);

/// Point-to-point transfer between two ranks, inside a node or across.
double p2pTime(const ClusterSpec &c, double bytes, bool crossNode);

} // namespace cost
} // namespace colossal

#endif // COLOSSAL_COMPILER_COST_COLLECTIVES_H
