//===- Collectives.cpp - Alpha-beta times of collectives ------------------===//

#include "compiler/cost/Collectives.h"

#include <algorithm>
#include <cmath>

using namespace colossal::cost;

static double intraBw(const ClusterSpec &c) {
  return c.intra_node.bandwidth * c.efficiency.intra_node_link_fraction;
}
static double interBw(const ClusterSpec &c) {
  return c.inter_node.bandwidth * c.efficiency.inter_node_link_fraction;
}

CommGroup CommGroup::strided(const ClusterSpec &c, int64_t size,
                             int64_t stride) {
  CommGroup g;
  g.size = std::max<int64_t>(size, 1);
  stride = std::max<int64_t>(stride, 1);
  if (stride >= c.gpus_per_node)
    g.ranks_per_node = 1;
  else
    g.ranks_per_node = std::clamp<int64_t>(c.gpus_per_node / stride, 1, g.size);
  return g;
}

double colossal::cost::ringBandwidth(const ClusterSpec &c, const CommGroup &g) {
  if (g.nodes() <= 1)
    return intraBw(c);
  double r = static_cast<double>(g.ranks_per_node);
  return std::min(intraBw(c), r * interBw(c));
}

double colossal::cost::ringLatency(const ClusterSpec &c, const CommGroup &g) {
  if (g.nodes() <= 1)
    return c.intra_node.latency;
  return std::max(c.intra_node.latency, c.inter_node.latency);
}

static double ringTime(const ClusterSpec &c, CollectiveKind kind, double bytes,
                       const CommGroup &g) {
  double p = static_cast<double>(g.size);
  double bw = ringBandwidth(c, g);
  double a = ringLatency(c, g);
  switch (kind) {
  case CollectiveKind::AllReduce:
    return 2 * (p - 1) / p * bytes / bw + 2 * (p - 1) * a;
  case CollectiveKind::AllGather:
  case CollectiveKind::ReduceScatter:
    return (p - 1) / p * bytes / bw + (p - 1) * a;
  case CollectiveKind::Broadcast: // pipelined chain
    return bytes / bw + (p - 1) * a;
  case CollectiveKind::AllToAll: {
    // Each rank sends (p-1)/p of its buffer; the part bound for other nodes
    // leaves through the rank's own NIC.
    double r = static_cast<double>(std::min(g.ranks_per_node, g.size));
    double intra = (r - 1) / p * bytes / intraBw(c);
    double inter = g.nodes() > 1 ? (p - r) / p * bytes / interBw(c) : 0.0;
    return std::max(intra, inter) + (p - 1) * a;
  }
  case CollectiveKind::SendRecv:
    return p2pTime(c, bytes, g.nodes() > 1);
  }
  return 0;
}

static double treeTime(const ClusterSpec &c, CollectiveKind kind, double bytes,
                       const CommGroup &g) {
  double r = static_cast<double>(std::min(g.ranks_per_node, g.size));
  double k = static_cast<double>(g.nodes());
  double bw = ringBandwidth(c, g);
  // Double binary tree across nodes, chain inside a node (NCCL's layout).
  double depth = (k > 1 ? std::ceil(std::log2(k)) * c.inter_node.latency : 0) +
                 (r - 1) * c.intra_node.latency;
  switch (kind) {
  case CollectiveKind::AllReduce: // reduce up, broadcast down, pipelined
    return 2 * bytes / bw + 2 * depth;
  case CollectiveKind::Broadcast:
    return bytes / bw + depth;
  default:
    return ringTime(c, kind, bytes, g);
  }
}

static double hierarchicalTime(const ClusterSpec &c, CollectiveKind kind,
                               double bytes, const CommGroup &g) {
  int64_t k = g.nodes();
  int64_t r = std::min(g.ranks_per_node, g.size);
  if (k <= 1 || r <= 1)
    return ringTime(c, kind, bytes, g);
  CommGroup inNode{r, r};
  CommGroup across{k, 1};
  double rd = static_cast<double>(r);
  switch (kind) {
  case CollectiveKind::AllReduce:
    return ringTime(c, CollectiveKind::ReduceScatter, bytes, inNode) +
           ringTime(c, CollectiveKind::AllReduce, bytes / rd, across) +
           ringTime(c, CollectiveKind::AllGather, bytes, inNode);
  case CollectiveKind::AllGather: // gather across nodes, then in the node
    return ringTime(c, CollectiveKind::AllGather, bytes / rd, across) +
           ringTime(c, CollectiveKind::AllGather, bytes, inNode);
  case CollectiveKind::ReduceScatter:
    return ringTime(c, CollectiveKind::ReduceScatter, bytes, inNode) +
           ringTime(c, CollectiveKind::ReduceScatter, bytes / rd, across);
  default:
    return ringTime(c, kind, bytes, g);
  }
}

double colossal::cost::collectiveTime(const ClusterSpec &c, CollectiveKind kind,
                                      double bytes, const CommGroup &g,
                                      CollectiveAlgo algo) {
  if (g.size <= 1 || bytes <= 0)
    return 0;
  switch (algo) {
  case CollectiveAlgo::Ring:
    return ringTime(c, kind, bytes, g);
  case CollectiveAlgo::Tree:
    return treeTime(c, kind, bytes, g);
  case CollectiveAlgo::Hierarchical:
    return hierarchicalTime(c, kind, bytes, g);
  case CollectiveAlgo::Auto:
    break;
  }
  double best = ringTime(c, kind, bytes, g);
  if (kind == CollectiveKind::AllReduce || kind == CollectiveKind::Broadcast)
    best = std::min(best, treeTime(c, kind, bytes, g));
  if (kind == CollectiveKind::AllReduce || kind == CollectiveKind::AllGather ||
      kind == CollectiveKind::ReduceScatter)
    best = std::min(best, hierarchicalTime(c, kind, bytes, g));
  return best;
}

double colossal::cost::p2pTime(const ClusterSpec &c, double bytes,
                               bool crossNode) {
  if (bytes <= 0)
    return 0;
  if (crossNode)
    return bytes / interBw(c) + c.inter_node.p2pLatency();
  return bytes / intraBw(c) + c.intra_node.p2pLatency();
}
