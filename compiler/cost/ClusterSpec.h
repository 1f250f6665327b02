//===- ClusterSpec.h - Hardware description for the cost model --*- C++ -*-===//
//
// What the cost model knows about a cluster: node count and shape, the
// device's peak throughput and memory, the two link levels (inside a node,
// across nodes), the host, and the fitted efficiency fractions. Specs are
// JSON (docs/cluster-spec.md); presets are embedded in the library.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_COMPILER_COST_CLUSTERSPEC_H
#define COLOSSAL_COMPILER_COST_CLUSTERSPEC_H

#include "compiler/cost/DType.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace colossal {
namespace cost {

/// One accelerator (or, for CPU clusters, one worker process' share).
struct DeviceSpec {
  std::string name;
  /// Dense peak FLOP/s, indexed by DType.
  std::array<double, kNumDTypes> peak_flops{};
  double memory_bytes = 0;     ///< device memory capacity, bytes
  double memory_bandwidth = 0; ///< bytes/s
  double reserved_bytes = 0;   ///< CUDA context, library workspaces, bytes

  double peakFlops(DType t) const { return peak_flops[static_cast<int>(t)]; }
};

/// A link level. Bandwidth is per device, per direction.
struct LinkSpec {
  std::string kind;
  double bandwidth = 0; ///< bytes/s per device per direction
  double latency = 0;   ///< seconds per message step (the alpha term)
  /// Seconds a point-to-point message (a pipeline's hop) pays beyond its
  /// bytes, where that differs from a collective's step (optional in the
  /// JSON); negative: `latency`.
  double p2p_latency = -1;

  double p2pLatency() const { return p2p_latency < 0 ? latency : p2p_latency; }
};

struct HostSpec {
  double memory_bytes = 0;     ///< host memory per node, bytes
  double memory_bandwidth = 0; ///< host memory bandwidth per node, bytes/s
  double pcie_bandwidth = 0;   ///< host<->device, per device per direction
  /// What the devices share on the way to host memory (optional in the
  /// JSON; the defaults give every device a private path):
  int64_t sockets = 1; ///< CPU sockets; memory bandwidth is split evenly
  /// Devices behind one PCIe switch, which has one uplink to its socket.
  int64_t gpus_per_pcie_switch = 1;
  /// The switch's uplink, bytes/s per direction (0: gpus_per_pcie_switch x
  /// pcie_bandwidth, i.e. no contention).
  double pcie_switch_uplink_bandwidth = 0;
  /// Whether inter-node traffic leaves through NICs behind the devices'
  /// PCIe switches (GPUDirect RDMA), so that it crosses each device's PCIe
  /// link and competes there with offload copies (DGX-class nodes).
  bool inter_node_over_pcie = false;

  double uplinkBandwidth() const {
    return pcie_switch_uplink_bandwidth > 0
               ? pcie_switch_uplink_bandwidth
               : pcie_bandwidth * static_cast<double>(gpus_per_pcie_switch);
  }
};

/// Achievable fractions of the peaks above. Fitted (docs/cost-model.md);
/// they live in the JSON so that a fit is visible and can be overridden.
struct EfficiencySpec {
  /// Fraction of peak FLOP/s a large, well-shaped GEMM reaches.
  double gemm_peak_fraction = 0;
  /// Smallest GEMM dimension at which half of gemm_peak_fraction is reached:
  /// eff = gemm_peak_fraction * d / (d + gemm_half_saturation_dim).
  double gemm_half_saturation_dim = 0;
  /// Fraction of memory bandwidth reached by memory-bound kernels.
  double memory_bandwidth_fraction = 0;
  /// Fraction of link bandwidth reached by large collectives.
  double intra_node_link_fraction = 0;
  double inter_node_link_fraction = 0;
  double pcie_fraction = 0;
  /// Fixed cost per kernel launch, seconds.
  double kernel_launch_overhead_s = 0;
  /// Fraction by which compute slows down while a collective runs beside
  /// it on the same device (NCCL kernels take SMs and memory bandwidth);
  /// charged on the overlapped part of every overlapped collective.
  /// Optional in the JSON (0: overlap is free).
  double comm_compute_slowdown = 0;
  /// The same for host <-> device copies (offload) beside compute: 0 where
  /// copy engines move the bytes while the device computes, 1 where the
  /// copies run in the compute stream (the CPU runtime). Optional (0).
  double copy_compute_slowdown = 0;
};

struct ClusterSpec {
  std::string name;
  std::string description;
  int64_t nodes = 0;
  int64_t gpus_per_node = 0;
  DeviceSpec device;
  LinkSpec intra_node;
  LinkSpec inter_node;
  HostSpec host;
  EfficiencySpec efficiency;

  int64_t numDevices() const { return nodes * gpus_per_node; }
};

/// Parses a spec from JSON text. `source` names it in error messages
/// ("cluster spec 'x.json': field 'device.memory_bytes' must be ...").
/// Missing, mistyped, non-positive and unknown fields are errors.
llvm::Expected<ClusterSpec> parseClusterSpec(llvm::StringRef jsonText,
                                             llvm::StringRef source);

/// Reads and parses a spec file.
llvm::Expected<ClusterSpec> loadClusterSpecFile(llvm::StringRef path);

/// The embedded presets ("dgx-a100-80g", "dgx-h100-80g", "h200", "cpu").
std::vector<std::string> presetClusterNames();
llvm::Expected<ClusterSpec> getPresetCluster(llvm::StringRef name);
/// The preset's JSON text as embedded at build time (empty if unknown).
llvm::StringRef presetClusterJSON(llvm::StringRef name);

/// Parses the argument of `--cluster=`: `NAME[:k=v,...]` or
/// `PATH.json[:k=v,...]`. Overrides set numeric fields by their JSON path:
/// `nodes=64`, `gpus_per_node=4`, `efficiency.gemm_peak_fraction=0.7`.
llvm::Expected<ClusterSpec> parseClusterArg(llvm::StringRef arg);

/// Serializes a spec in the file format (parseClusterSpec round-trips it).
llvm::json::Value toJSON(const ClusterSpec &spec);

} // namespace cost
} // namespace colossal

#endif // COLOSSAL_COMPILER_COST_CLUSTERSPEC_H
