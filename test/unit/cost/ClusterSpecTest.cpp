//===- ClusterSpecTest.cpp - Cluster spec parsing, presets, --cluster= ----===//

#include "compiler/cost/ClusterSpec.h"
#include "compiler/cost/Collectives.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

#include <string>

using namespace colossal::cost;

static std::string specError(llvm::StringRef text) {
  auto r = parseClusterSpec(text, "x.json");
  if (r)
    return "<no error>";
  return llvm::toString(r.takeError());
}

static std::string argError(llvm::StringRef arg) {
  auto r = parseClusterArg(arg);
  if (r)
    return "<no error>";
  return llvm::toString(r.takeError());
}

static std::string serialize(const ClusterSpec &c) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << toJSON(c);
  return os.str();
}

/// The A100 preset with `edit` applied to its JSON text.
static std::string editedA100(llvm::StringRef from, llvm::StringRef to) {
  std::string text = presetClusterJSON("dgx-a100-80g").str();
  size_t at = text.find(from.str());
  EXPECT_NE(at, std::string::npos) << from.str();
  if (at != std::string::npos)
    text.replace(at, from.size(), to.str());
  return text;
}

TEST(ClusterSpec, PresetsAreEmbeddedAndParse) {
  std::vector<std::string> names = presetClusterNames();
  ASSERT_EQ(names.size(), 4u);
  for (const char *n : {"dgx-a100-80g", "dgx-h100-80g", "h200", "cpu"}) {
    auto c = getPresetCluster(n);
    ASSERT_TRUE(static_cast<bool>(c))
        << n << ": " << llvm::toString(c.takeError());
    EXPECT_EQ(c->name, n);
  }
}

TEST(ClusterSpec, A100PresetHasPublishedFigures) {
  auto c = getPresetCluster("dgx-a100-80g");
  ASSERT_TRUE(static_cast<bool>(c));
  EXPECT_EQ(c->gpus_per_node, 8);
  EXPECT_DOUBLE_EQ(c->device.peakFlops(DType::BF16), 312e12);
  EXPECT_DOUBLE_EQ(c->device.peakFlops(DType::TF32), 156e12);
  EXPECT_DOUBLE_EQ(c->device.peakFlops(DType::FP32), 19.5e12);
  EXPECT_DOUBLE_EQ(c->device.memory_bandwidth, 2.039e12);
  EXPECT_DOUBLE_EQ(c->device.memory_bytes, 80.0 * (1ull << 30));
  EXPECT_DOUBLE_EQ(c->intra_node.bandwidth, 300e9); // 600 GB/s bidirectional
  EXPECT_DOUBLE_EQ(c->inter_node.bandwidth, 25e9);  // HDR 200 Gb/s
  // nccl-tests: ~230 GB/s bus bandwidth on 8x A100.
  EXPECT_NEAR(c->intra_node.bandwidth * c->efficiency.intra_node_link_fraction,
              230e9, 1e9);
  auto h = getPresetCluster("dgx-h100-80g");
  ASSERT_TRUE(static_cast<bool>(h));
  EXPECT_DOUBLE_EQ(h->device.peakFlops(DType::BF16), 989e12);
  EXPECT_DOUBLE_EQ(h->intra_node.bandwidth, 450e9);
  auto h2 = getPresetCluster("h200");
  ASSERT_TRUE(static_cast<bool>(h2));
  EXPECT_DOUBLE_EQ(h2->device.memory_bandwidth, 4.8e12);
  EXPECT_GT(h2->device.memory_bytes, 140e9);
}

TEST(ClusterSpec, PresetRoundTrip) {
  for (const std::string &n : presetClusterNames()) {
    auto c = getPresetCluster(n);
    ASSERT_TRUE(static_cast<bool>(c));
    std::string once = serialize(*c);
    auto back = parseClusterSpec(once, "roundtrip");
    ASSERT_TRUE(static_cast<bool>(back)) << llvm::toString(back.takeError());
    EXPECT_EQ(serialize(*back), once);
    EXPECT_EQ(back->device.peak_flops, c->device.peak_flops);
    EXPECT_EQ(back->efficiency.gemm_peak_fraction,
              c->efficiency.gemm_peak_fraction);
  }
}

TEST(ClusterSpec, UnknownPresetListsKnownOnes) {
  EXPECT_EQ(argError("dgx-b200"),
            "unknown cluster preset 'dgx-b200' (known presets: dgx-a100-80g, "
            "dgx-h100-80g, h200, cpu; or give a path to a .json spec)");
  auto r = getPresetCluster("nope");
  ASSERT_FALSE(static_cast<bool>(r));
  EXPECT_EQ(llvm::toString(r.takeError()),
            "unknown cluster preset 'nope' (known presets: dgx-a100-80g, "
            "dgx-h100-80g, h200, cpu)");
}

TEST(ClusterSpec, ClusterArgOverrides) {
  auto c = parseClusterArg("dgx-a100-80g:nodes=64");
  ASSERT_TRUE(static_cast<bool>(c)) << llvm::toString(c.takeError());
  EXPECT_EQ(c->nodes, 64);
  EXPECT_EQ(c->numDevices(), 512);
  c = parseClusterArg("dgx-h100-80g:nodes=2,gpus_per_node=4,"
                      "efficiency.gemm_peak_fraction=0.5");
  ASSERT_TRUE(static_cast<bool>(c)) << llvm::toString(c.takeError());
  EXPECT_EQ(c->numDevices(), 8);
  EXPECT_DOUBLE_EQ(c->efficiency.gemm_peak_fraction, 0.5);
  c = parseClusterArg("cpu");
  ASSERT_TRUE(static_cast<bool>(c));
  EXPECT_EQ(c->nodes, 1);
}

TEST(ClusterSpec, ClusterArgErrors) {
  EXPECT_EQ(argError("dgx-a100-80g:nodes=x"),
            "cluster 'dgx-a100-80g:nodes=x': override 'nodes=x': value must "
            "be a number");
  EXPECT_EQ(argError("dgx-a100-80g:nodes"),
            "cluster 'dgx-a100-80g:nodes': override 'nodes': expected "
            "KEY=VALUE, e.g. nodes=64");
  EXPECT_NE(argError("dgx-a100-80g:racks=2").find("no numeric field 'racks'"),
            std::string::npos);
  EXPECT_EQ(argError("dgx-a100-80g:nodes=0"),
            "cluster spec 'dgx-a100-80g:nodes=0': field 'nodes' must be a "
            "positive integer");
  EXPECT_EQ(argError("dgx-a100-80g:nodes=1.5"),
            "cluster spec 'dgx-a100-80g:nodes=1.5': field 'nodes' must be a "
            "positive integer");
  EXPECT_NE(argError("/nonexistent/spec.json").find("cannot read file"),
            std::string::npos);
}

TEST(ClusterSpec, SpecErrorsNameTheField) {
  EXPECT_EQ(specError(editedA100("\"memory_bytes\": 85899345920",
                                 "\"memory_bytes\": -1")),
            "cluster spec 'x.json': field 'device.memory_bytes' must be a "
            "positive number (bytes)");
  EXPECT_EQ(specError(editedA100("\"bandwidth\": 25e9", "\"bandwidth\": 0")),
            "cluster spec 'x.json': field 'inter_node.bandwidth' must be a "
            "positive number (bytes/s per GPU per direction)");
  EXPECT_EQ(specError(editedA100("\"bandwidth\": 300e9, ", "")),
            "cluster spec 'x.json': missing field 'intra_node.bandwidth' "
            "(bytes/s per GPU per direction)");
  EXPECT_EQ(specError(editedA100("\"bf16\": 312e12", "\"bf16\": \"fast\"")),
            "cluster spec 'x.json': field 'device.peak_flops.bf16' must be a "
            "positive number (FLOP/s)");
  EXPECT_EQ(
      specError(editedA100("\"pcie_fraction\": 0.8", "\"pcie_fraction\": 1.5")),
      "cluster spec 'x.json': field 'efficiency.pcie_fraction' must be a "
      "fraction in (0, 1]");
  EXPECT_EQ(specError(editedA100("\"gpus_per_node\": 8",
                                 "\"gpus_per_node\": 8, \"gpu_per_node\": 8")),
            "cluster spec 'x.json': unknown field 'gpu_per_node' (known fields "
            "here: name, description, sources, nodes, gpus_per_node, device, "
            "intra_node, inter_node, host, efficiency)");
  EXPECT_NE(specError("{\"name\": \"x\",").find("not valid JSON"),
            std::string::npos);
  EXPECT_EQ(specError("[1, 2]"),
            "cluster spec 'x.json': the top level must be a JSON object");
  EXPECT_EQ(specError("{\"name\": \"x\"}"),
            "cluster spec 'x.json': missing field 'nodes' (a positive "
            "integer)");
}

TEST(ClusterSpec, LoadsFromFile) {
  llvm::SmallString<128> path;
  ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("cluster", "json", path));
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec);
    ASSERT_FALSE(ec);
    os << editedA100("\"nodes\": 1", "\"nodes\": 3");
  }
  auto c = loadClusterSpecFile(path);
  ASSERT_TRUE(static_cast<bool>(c)) << llvm::toString(c.takeError());
  EXPECT_EQ(c->nodes, 3);
  auto d = parseClusterArg((path + ":nodes=5").str());
  ASSERT_TRUE(static_cast<bool>(d)) << llvm::toString(d.takeError());
  EXPECT_EQ(d->nodes, 5);
  llvm::sys::fs::remove(path);
}

TEST(ClusterSpec, SharedHostPathsAndSwitchOverrides) {
  auto c = parseClusterArg("dgx-a100-80g");
  ASSERT_TRUE(static_cast<bool>(c)) << llvm::toString(c.takeError());
  EXPECT_EQ(c->host.gpus_per_pcie_switch, 2);
  EXPECT_EQ(c->host.sockets, 2);
  EXPECT_TRUE(c->host.inter_node_over_pcie);
  EXPECT_GT(c->efficiency.comm_compute_slowdown, 0);
  c = parseClusterArg("dgx-a100-80g:host.inter_node_over_pcie=false,"
                      "host.gpus_per_pcie_switch=1");
  ASSERT_TRUE(static_cast<bool>(c)) << llvm::toString(c.takeError());
  EXPECT_FALSE(c->host.inter_node_over_pcie);
  EXPECT_EQ(c->host.gpus_per_pcie_switch, 1);
  EXPECT_NE(argError("dgx-a100-80g:host.inter_node_over_pcie=2")
                .find("is a switch: true or false"),
            std::string::npos);
  EXPECT_NE(argError("dgx-a100-80g:host.gpus_per_pcie_switch=3")
                .find("must divide 'gpus_per_node'"),
            std::string::npos);
  // The optional fields may be left out: every device then has a private
  // path to host memory and overlap is free.
  auto bare = parseClusterSpec(
      R"({"name": "bare", "nodes": 1, "gpus_per_node": 2,
          "device": {"name": "d", "peak_flops": {"fp32": 1, "tf32": 1,
                     "bf16": 1, "fp16": 1}, "memory_bytes": 10,
                     "memory_bandwidth": 1, "reserved_bytes": 0},
          "intra_node": {"kind": "k", "bandwidth": 1, "latency": 0},
          "inter_node": {"kind": "k", "bandwidth": 1, "latency": 0},
          "host": {"memory_bytes": 1, "memory_bandwidth": 1,
                   "pcie_bandwidth": 4},
          "efficiency": {"gemm_peak_fraction": 1,
                         "gemm_half_saturation_dim": 0,
                         "memory_bandwidth_fraction": 1,
                         "intra_node_link_fraction": 1,
                         "inter_node_link_fraction": 1, "pcie_fraction": 1,
                         "kernel_launch_overhead_s": 0}})",
      "bare");
  ASSERT_TRUE(static_cast<bool>(bare)) << llvm::toString(bare.takeError());
  EXPECT_EQ(bare->host.gpus_per_pcie_switch, 1);
  EXPECT_DOUBLE_EQ(bare->host.uplinkBandwidth(), 4);
  EXPECT_EQ(bare->efficiency.comm_compute_slowdown, 0);
}

TEST(ClusterSpec, PointToPointLatencyDefaultsToTheLinks) {
  // Absent: a pipeline's hop pays the link's latency.
  auto c = parseClusterArg("dgx-a100-80g");
  ASSERT_TRUE(static_cast<bool>(c)) << llvm::toString(c.takeError());
  EXPECT_EQ(c->intra_node.p2pLatency(), c->intra_node.latency);
  EXPECT_DOUBLE_EQ(
      p2pTime(*c, 1e6, false),
      1e6 / (c->intra_node.bandwidth * c->efficiency.intra_node_link_fraction) +
          c->intra_node.latency);
  // Given (measured apart from the collectives' step, as the CPU probes
  // do): the hop pays it, collectives keep theirs, and it round-trips.
  auto p = parseClusterArg("dgx-a100-80g:intra_node.p2p_latency=3e-5");
  ASSERT_TRUE(static_cast<bool>(p)) << llvm::toString(p.takeError());
  EXPECT_EQ(p->intra_node.p2pLatency(), 3e-5);
  EXPECT_DOUBLE_EQ(p2pTime(*p, 1e6, false) - p2pTime(*c, 1e6, false),
                   3e-5 - c->intra_node.latency);
  auto back = parseClusterSpec(serialize(*p), "roundtrip");
  ASSERT_TRUE(static_cast<bool>(back)) << llvm::toString(back.takeError());
  EXPECT_EQ(back->intra_node.p2pLatency(), 3e-5);
  EXPECT_NE(
      argError("dgx-a100-80g:intra_node.p2p_latency=-1").find("p2p_latency"),
      std::string::npos);
}
