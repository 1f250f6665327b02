//===- TestCluster.h - A cluster with round numbers for hand-checked tests ===//
//
// Tests that state expected times as numbers use this spec rather than a
// preset, so that recalibrating a preset does not silently move them.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_TEST_UNIT_COST_TESTCLUSTER_H
#define COLOSSAL_TEST_UNIT_COST_TESTCLUSTER_H

#include "compiler/cost/ClusterSpec.h"

namespace colossal {
namespace cost {
namespace testing {

/// A100-like: 312 TFLOP/s bf16, 2 TB/s; NVLink 300 GB/s at 75% = 225 GB/s,
/// alpha 1 us; IB 25 GB/s at 80% = 20 GB/s, alpha 5 us; no launch overhead.
inline ClusterSpec handCluster(int64_t nodes = 1) {
  ClusterSpec c;
  c.name = "hand";
  c.nodes = nodes;
  c.gpus_per_node = 8;
  c.device.name = "hand-gpu";
  c.device.peak_flops = {19.5e12, 156e12, 312e12, 312e12};
  c.device.memory_bytes = 80e9;
  c.device.memory_bandwidth = 2e12;
  c.device.reserved_bytes = 0;
  c.intra_node = {"nvlink", 300e9, 1e-6};
  c.inter_node = {"ib", 25e9, 5e-6};
  c.host = {1e12, 200e9, 25e9};
  c.efficiency.gemm_peak_fraction = 0.8;
  c.efficiency.gemm_half_saturation_dim = 64;
  c.efficiency.memory_bandwidth_fraction = 0.8;
  c.efficiency.intra_node_link_fraction = 0.75;
  c.efficiency.inter_node_link_fraction = 0.8;
  c.efficiency.pcie_fraction = 0.8;
  c.efficiency.kernel_launch_overhead_s = 0;
  return c;
}

} // namespace testing
} // namespace cost
} // namespace colossal

#endif // COLOSSAL_TEST_UNIT_COST_TESTCLUSTER_H
