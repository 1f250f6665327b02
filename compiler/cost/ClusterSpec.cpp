//===- ClusterSpec.cpp - Cluster spec parsing and presets -----------------===//

#include "compiler/cost/ClusterSpec.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace colossal::cost;
using llvm::StringRef;
namespace json = llvm::json;

//===----------------------------------------------------------------------===//
// Embedded presets
//===----------------------------------------------------------------------===//

namespace {
struct EmbeddedPreset {
  const char *name;
  const char *json;
};
} // namespace

// Generated at configure time from compiler/cost/clusters/*.json, so the JSON
// files stay the source of truth and the binary needs none of them at run time.
#include "compiler/cost/ClusterPresets.inc"

std::vector<std::string> colossal::cost::presetClusterNames() {
  std::vector<std::string> names;
  for (const EmbeddedPreset &p : kEmbeddedPresets)
    names.push_back(p.name);
  return names;
}

StringRef colossal::cost::presetClusterJSON(StringRef name) {
  for (const EmbeddedPreset &p : kEmbeddedPresets)
    if (name == p.name)
      return p.json;
  return {};
}

static std::string knownPresetList() {
  return llvm::join(presetClusterNames(), ", ");
}

//===----------------------------------------------------------------------===//
// Field reader
//===----------------------------------------------------------------------===//

namespace {
/// Walks the JSON object tree and remembers the first problem, phrased with
/// the full dotted path of the field so the user can find it in the file.
class SpecReader {
public:
  explicit SpecReader(StringRef source) : source(source.str()) {}

  bool failed() const { return !firstError.empty(); }
  llvm::Error takeError() {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "cluster spec '" + source +
                                       "': " + firstError);
  }

  void fail(const std::string &msg) {
    if (firstError.empty())
      firstError = msg;
  }

  static std::string join(StringRef prefix, StringRef key) {
    return prefix.empty() ? key.str() : (prefix + "." + key).str();
  }

  /// Rejects keys outside `known`, so that a typo does not silently fall
  /// back to nothing.
  void checkKnown(const json::Object &obj, StringRef prefix,
                  llvm::ArrayRef<StringRef> known) {
    for (const auto &kv : obj) {
      StringRef key = kv.first;
      if (!llvm::is_contained(known, key))
        fail("unknown field '" + join(prefix, key) +
             "' (known fields here: " + llvm::join(known, ", ") + ")");
    }
  }

  const json::Object *object(const json::Object &obj, StringRef prefix,
                             StringRef key) {
    const json::Value *v = obj.get(key);
    if (!v) {
      fail("missing field '" + join(prefix, key) + "' (an object)");
      return nullptr;
    }
    const json::Object *o = v->getAsObject();
    if (!o)
      fail("field '" + join(prefix, key) + "' must be an object");
    return o;
  }

  std::string string(const json::Object &obj, StringRef prefix, StringRef key,
                     bool required) {
    const json::Value *v = obj.get(key);
    if (!v) {
      if (required)
        fail("missing field '" + join(prefix, key) + "' (a string)");
      return {};
    }
    std::optional<StringRef> s = v->getAsString();
    if (!s) {
      fail("field '" + join(prefix, key) + "' must be a string");
      return {};
    }
    return s->str();
  }

  enum class Bound { Positive, NonNegative, Fraction };

  double number(const json::Object &obj, StringRef prefix, StringRef key,
                StringRef unit, Bound bound = Bound::Positive) {
    const json::Value *v = obj.get(key);
    std::string path = join(prefix, key);
    if (!v) {
      fail("missing field '" + path + "' (" + unit.str() + ")");
      return 0;
    }
    std::optional<double> d = v->getAsNumber();
    bool ok = d && std::isfinite(*d);
    switch (bound) {
    case Bound::Positive:
      ok = ok && *d > 0;
      if (!ok)
        fail("field '" + path + "' must be a positive number (" + unit.str() +
             ")");
      break;
    case Bound::NonNegative:
      ok = ok && *d >= 0;
      if (!ok)
        fail("field '" + path + "' must be a non-negative number (" +
             unit.str() + ")");
      break;
    case Bound::Fraction:
      ok = ok && *d > 0 && *d <= 1;
      if (!ok)
        fail("field '" + path + "' must be a fraction in (0, 1]");
      break;
    }
    return ok ? *d : 0;
  }

  /// An optional field: `fallback` when absent, validated when present.
  double optionalNumber(const json::Object &obj, StringRef prefix,
                        StringRef key, StringRef unit, Bound bound,
                        double fallback) {
    return obj.get(key) ? number(obj, prefix, key, unit, bound) : fallback;
  }
  int64_t optionalInteger(const json::Object &obj, StringRef prefix,
                          StringRef key, int64_t fallback) {
    return obj.get(key) ? positiveInteger(obj, prefix, key) : fallback;
  }
  bool optionalBool(const json::Object &obj, StringRef prefix, StringRef key,
                    bool fallback) {
    const json::Value *v = obj.get(key);
    if (!v)
      return fallback;
    std::optional<bool> b = v->getAsBoolean();
    if (!b) {
      fail("field '" + join(prefix, key) + "' must be true or false");
      return fallback;
    }
    return *b;
  }

  int64_t positiveInteger(const json::Object &obj, StringRef prefix,
                          StringRef key) {
    const json::Value *v = obj.get(key);
    if (!v) {
      fail("missing field '" + join(prefix, key) + "' (a positive integer)");
      return 0;
    }
    std::optional<double> d = v->getAsNumber();
    if (!d || !(*d >= 1) || *d != std::floor(*d) || *d > 1e9) {
      fail("field '" + join(prefix, key) + "' must be a positive integer");
      return 0;
    }
    return static_cast<int64_t>(*d);
  }

private:
  std::string source;
  std::string firstError;
};
} // namespace

//===----------------------------------------------------------------------===//
// Parsing
//===----------------------------------------------------------------------===//

llvm::Expected<ClusterSpec> colossal::cost::parseClusterSpec(StringRef jsonText,
                                                             StringRef source) {
  llvm::Expected<json::Value> parsed = json::parse(jsonText);
  if (!parsed)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "cluster spec '" + source.str() +
            "': not valid JSON: " + llvm::toString(parsed.takeError()));
  const json::Object *root = parsed->getAsObject();
  SpecReader r(source);
  if (!root) {
    r.fail("the top level must be a JSON object");
    return r.takeError();
  }

  using Bound = SpecReader::Bound;
  ClusterSpec spec;
  r.checkKnown(*root, "",
               {"name", "description", "sources", "nodes", "gpus_per_node",
                "device", "intra_node", "inter_node", "host", "efficiency"});
  spec.name = r.string(*root, "", "name", /*required=*/true);
  spec.description = r.string(*root, "", "description", /*required=*/false);
  spec.nodes = r.positiveInteger(*root, "", "nodes");
  spec.gpus_per_node = r.positiveInteger(*root, "", "gpus_per_node");

  if (const json::Object *dev = r.object(*root, "", "device")) {
    r.checkKnown(*dev, "device",
                 {"name", "peak_flops", "memory_bytes", "memory_bandwidth",
                  "reserved_bytes"});
    spec.device.name = r.string(*dev, "device", "name", /*required=*/true);
    if (const json::Object *pf = r.object(*dev, "device", "peak_flops")) {
      r.checkKnown(*pf, "device.peak_flops", {"fp32", "tf32", "bf16", "fp16"});
      for (int i = 0; i < kNumDTypes; ++i) {
        DType t = static_cast<DType>(i);
        spec.device.peak_flops[i] =
            r.number(*pf, "device.peak_flops", dtypeName(t), "FLOP/s");
      }
    }
    spec.device.memory_bytes =
        r.number(*dev, "device", "memory_bytes", "bytes");
    spec.device.memory_bandwidth =
        r.number(*dev, "device", "memory_bandwidth", "bytes/s");
    spec.device.reserved_bytes =
        r.number(*dev, "device", "reserved_bytes", "bytes", Bound::NonNegative);
    if (!r.failed() && spec.device.reserved_bytes >= spec.device.memory_bytes)
      r.fail("field 'device.reserved_bytes' must be smaller than "
             "'device.memory_bytes'");
  }

  auto readLink = [&](StringRef key, LinkSpec &link) {
    const json::Object *o = r.object(*root, "", key);
    if (!o)
      return;
    r.checkKnown(*o, key, {"kind", "bandwidth", "latency", "p2p_latency"});
    link.kind = r.string(*o, key, "kind", /*required=*/true);
    link.bandwidth =
        r.number(*o, key, "bandwidth", "bytes/s per GPU per direction");
    link.latency = r.number(*o, key, "latency", "seconds", Bound::NonNegative);
    link.p2p_latency = r.optionalNumber(*o, key, "p2p_latency", "seconds",
                                        Bound::NonNegative, link.latency);
  };
  readLink("intra_node", spec.intra_node);
  readLink("inter_node", spec.inter_node);

  if (const json::Object *h = r.object(*root, "", "host")) {
    r.checkKnown(*h, "host",
                 {"memory_bytes", "memory_bandwidth", "pcie_bandwidth",
                  "sockets", "gpus_per_pcie_switch",
                  "pcie_switch_uplink_bandwidth", "inter_node_over_pcie"});
    spec.host.memory_bytes = r.number(*h, "host", "memory_bytes", "bytes");
    spec.host.memory_bandwidth =
        r.number(*h, "host", "memory_bandwidth", "bytes/s");
    spec.host.pcie_bandwidth =
        r.number(*h, "host", "pcie_bandwidth", "bytes/s per GPU per direction");
    spec.host.sockets = r.optionalInteger(*h, "host", "sockets", 1);
    spec.host.gpus_per_pcie_switch =
        r.optionalInteger(*h, "host", "gpus_per_pcie_switch", 1);
    spec.host.pcie_switch_uplink_bandwidth = r.optionalNumber(
        *h, "host", "pcie_switch_uplink_bandwidth",
        "bytes/s per PCIe switch per direction", Bound::Positive, 0);
    spec.host.inter_node_over_pcie =
        r.optionalBool(*h, "host", "inter_node_over_pcie", false);
  }

  if (const json::Object *e = r.object(*root, "", "efficiency")) {
    StringRef p = "efficiency";
    r.checkKnown(*e, p,
                 {"gemm_peak_fraction", "gemm_half_saturation_dim",
                  "memory_bandwidth_fraction", "intra_node_link_fraction",
                  "inter_node_link_fraction", "pcie_fraction",
                  "kernel_launch_overhead_s", "comm_compute_slowdown",
                  "copy_compute_slowdown"});
    EfficiencySpec &ef = spec.efficiency;
    ef.gemm_peak_fraction =
        r.number(*e, p, "gemm_peak_fraction", "", Bound::Fraction);
    ef.gemm_half_saturation_dim = r.number(*e, p, "gemm_half_saturation_dim",
                                           "elements", Bound::NonNegative);
    ef.memory_bandwidth_fraction =
        r.number(*e, p, "memory_bandwidth_fraction", "", Bound::Fraction);
    ef.intra_node_link_fraction =
        r.number(*e, p, "intra_node_link_fraction", "", Bound::Fraction);
    ef.inter_node_link_fraction =
        r.number(*e, p, "inter_node_link_fraction", "", Bound::Fraction);
    ef.pcie_fraction = r.number(*e, p, "pcie_fraction", "", Bound::Fraction);
    ef.kernel_launch_overhead_s = r.number(*e, p, "kernel_launch_overhead_s",
                                           "seconds", Bound::NonNegative);
    ef.comm_compute_slowdown = r.optionalNumber(*e, p, "comm_compute_slowdown",
                                                "", Bound::NonNegative, 0);
    if (ef.comm_compute_slowdown > 1)
      r.fail("field 'efficiency.comm_compute_slowdown' must be at most 1 "
             "(compute twice as slow while a collective runs)");
    ef.copy_compute_slowdown = r.optionalNumber(*e, p, "copy_compute_slowdown",
                                                "", Bound::NonNegative, 0);
    if (ef.copy_compute_slowdown > 1)
      r.fail("field 'efficiency.copy_compute_slowdown' must be at most 1 "
             "(1: a copy does not overlap compute at all)");
  }
  if (!r.failed() && spec.gpus_per_node % spec.host.gpus_per_pcie_switch != 0)
    r.fail("field 'host.gpus_per_pcie_switch' (" +
           std::to_string(spec.host.gpus_per_pcie_switch) +
           ") must divide 'gpus_per_node' (" +
           std::to_string(spec.gpus_per_node) + ")");
  if (!r.failed() && spec.gpus_per_node % spec.host.sockets != 0)
    r.fail("field 'host.sockets' (" + std::to_string(spec.host.sockets) +
           ") must divide 'gpus_per_node' (" +
           std::to_string(spec.gpus_per_node) + ")");

  if (r.failed())
    return r.takeError();
  return spec;
}

llvm::Expected<ClusterSpec>
colossal::cost::loadClusterSpecFile(StringRef path) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buf =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buf)
    return llvm::createStringError(
        buf.getError(), "cluster spec '" + path.str() +
                            "': cannot read file: " + buf.getError().message());
  return parseClusterSpec((*buf)->getBuffer(), path);
}

llvm::Expected<ClusterSpec> colossal::cost::getPresetCluster(StringRef name) {
  StringRef text = presetClusterJSON(name);
  if (text.empty())
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "unknown cluster preset '" + name.str() +
            "' (known presets: " + knownPresetList() + ")");
  return parseClusterSpec(text, ("preset " + name).str());
}

//===----------------------------------------------------------------------===//
// --cluster=NAME[:overrides]
//===----------------------------------------------------------------------===//

/// Sets the numeric field at dotted `path` in `root`. Only existing numeric
/// fields may be overridden; the spec parser then re-validates the value.
static llvm::Error applyOverride(json::Object &root, StringRef arg,
                                 StringRef item) {
  auto err = [&](const llvm::Twine &msg) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "cluster '" + arg + "': override '" + item +
                                       "': " + msg);
  };
  auto [key, value] = item.split('=');
  key = key.trim();
  value = value.trim();
  if (!item.contains('=') || key.empty() || value.empty())
    return err("expected KEY=VALUE, e.g. nodes=64");
  double d = 0;
  bool isNumber = !value.getAsDouble(d) && std::isfinite(d);
  bool isBool = value == "true" || value == "false";
  if (!isNumber && !isBool)
    return err("value must be a number");

  llvm::SmallVector<StringRef, 4> parts;
  key.split(parts, '.');
  json::Object *obj = &root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    json::Value *v = obj->get(parts[i]);
    obj = v ? v->getAsObject() : nullptr;
    if (!obj)
      return err("no object '" + parts[i] + "' in the spec");
  }
  json::Value *leaf = obj->get(parts.back());
  if (leaf && leaf->getAsBoolean()) {
    if (!isBool)
      return err("'" + key + "' is a switch: true or false");
    *leaf = value == "true";
    return llvm::Error::success();
  }
  if (leaf && leaf->getAsNumber() && !isNumber)
    return err("value must be a number");
  // Optional numeric fields a spec may leave out can be set all the same
  // (the parser then checks them like any other).
  if (!leaf && isNumber &&
      llvm::is_contained({StringRef("p2p_latency"),
                          StringRef("comm_compute_slowdown"),
                          StringRef("copy_compute_slowdown")},
                         parts.back())) {
    (*obj)[parts.back()] = d;
    return llvm::Error::success();
  }
  if (!leaf || !leaf->getAsNumber())
    return err("no numeric field '" + key +
               "' in the spec (e.g. nodes, gpus_per_node, "
               "efficiency.gemm_peak_fraction)");
  if (d == std::floor(d) && std::fabs(d) < 9e15)
    *leaf = static_cast<int64_t>(d);
  else
    *leaf = d;
  return llvm::Error::success();
}

llvm::Expected<ClusterSpec> colossal::cost::parseClusterArg(StringRef arg) {
  auto [head, tail] = arg.split(':');
  std::string text;
  std::string source;
  if (!presetClusterJSON(head).empty()) {
    text = presetClusterJSON(head).str();
    source = ("preset " + head).str();
  } else if (head.ends_with(".json") || head.contains('/')) {
    llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buf =
        llvm::MemoryBuffer::getFile(head, /*IsText=*/true);
    if (!buf)
      return llvm::createStringError(
          buf.getError(),
          "cluster spec '" + head.str() +
              "': cannot read file: " + buf.getError().message());
    text = (*buf)->getBuffer().str();
    source = head.str();
  } else {
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "unknown cluster preset '" + head.str() + "' (known presets: " +
            knownPresetList() + "; or give a path to a .json spec)");
  }
  if (tail.empty() && !arg.contains(':'))
    return parseClusterSpec(text, source);

  llvm::Expected<json::Value> parsed = json::parse(text);
  if (!parsed)
    return parseClusterSpec(text, source); // reports the JSON error
  json::Object *root = parsed->getAsObject();
  if (!root)
    return parseClusterSpec(text, source);
  llvm::SmallVector<StringRef, 4> items;
  tail.split(items, ',', /*MaxSplit=*/-1, /*KeepEmpty=*/false);
  if (items.empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "cluster '" + arg.str() +
                                       "': expected overrides after ':', "
                                       "e.g. " +
                                       head.str() + ":nodes=4");
  for (StringRef item : items)
    if (llvm::Error e = applyOverride(*root, arg, item))
      return std::move(e);
  std::string patched;
  llvm::raw_string_ostream os(patched);
  os << json::Value(std::move(*root));
  os.flush();
  return parseClusterSpec(patched, arg);
}

//===----------------------------------------------------------------------===//
// Serialization
//===----------------------------------------------------------------------===//

json::Value colossal::cost::toJSON(const ClusterSpec &s) {
  json::Object peak;
  for (int i = 0; i < kNumDTypes; ++i)
    peak[dtypeName(static_cast<DType>(i))] = s.device.peak_flops[i];
  auto link = [](const LinkSpec &l) {
    return json::Object{{"kind", l.kind},
                        {"bandwidth", l.bandwidth},
                        {"latency", l.latency},
                        {"p2p_latency", l.p2pLatency()}};
  };
  const EfficiencySpec &e = s.efficiency;
  json::Object root{
      {"name", s.name},
      {"nodes", s.nodes},
      {"gpus_per_node", s.gpus_per_node},
      {"device", json::Object{{"name", s.device.name},
                              {"peak_flops", std::move(peak)},
                              {"memory_bytes", s.device.memory_bytes},
                              {"memory_bandwidth", s.device.memory_bandwidth},
                              {"reserved_bytes", s.device.reserved_bytes}}},
      {"intra_node", link(s.intra_node)},
      {"inter_node", link(s.inter_node)},
      {"host",
       json::Object{{"memory_bytes", s.host.memory_bytes},
                    {"memory_bandwidth", s.host.memory_bandwidth},
                    {"pcie_bandwidth", s.host.pcie_bandwidth},
                    {"sockets", s.host.sockets},
                    {"gpus_per_pcie_switch", s.host.gpus_per_pcie_switch},
                    {"pcie_switch_uplink_bandwidth", s.host.uplinkBandwidth()},
                    {"inter_node_over_pcie", s.host.inter_node_over_pcie}}},
      {"efficiency",
       json::Object{{"gemm_peak_fraction", e.gemm_peak_fraction},
                    {"gemm_half_saturation_dim", e.gemm_half_saturation_dim},
                    {"memory_bandwidth_fraction", e.memory_bandwidth_fraction},
                    {"intra_node_link_fraction", e.intra_node_link_fraction},
                    {"inter_node_link_fraction", e.inter_node_link_fraction},
                    {"pcie_fraction", e.pcie_fraction},
                    {"kernel_launch_overhead_s", e.kernel_launch_overhead_s},
                    {"comm_compute_slowdown", e.comm_compute_slowdown},
                    {"copy_compute_slowdown", e.copy_compute_slowdown}}},
  };
  if (!s.description.empty())
    root["description"] = s.description;
  return root;
}
