//===- OnnxUpgrade.cpp - Old opsets upgraded by ONNX's version converter --===//
//
// Steps: (1) when every operator of the model is defined the same at the
// target opset as at the model's (its schema's since-version did not
// change), the model only relabels its opset; this takes the models of
// opsets below 7 that ONNX's converter cannot start from (an Elu of opset
// 6 is the Elu of opset 13), (2) otherwise ONNX shape inference, which some
// adapters need (Softmax 12 -> 13), best effort, (3) ONNX's converter.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/upgrade/OnnxUpgrade.h"

#include "onnx/defs/schema.h"
#include "onnx/shape_inference/implementation.h"
#include "onnx/version_converter/convert.h"

#include <exception>
#include <set>

namespace {

bool isDefaultDomain(const std::string &domain) {
  return domain.empty() || domain == "ai.onnx";
}

/// The operators of `graph` (and its subgraphs) whose definition at
/// `target` differs from the one at `from`, or that ONNX does not know.
void changedOperators(const ::onnx::GraphProto &graph, int64_t from,
                      int64_t target, std::set<std::string> &changed) {
  for (const auto &node : graph.node()) {
    if (isDefaultDomain(node.domain())) {
      const auto *old = ::onnx::OpSchemaRegistry::Schema(
          node.op_type(), static_cast<int>(from));
      const auto *now = ::onnx::OpSchemaRegistry::Schema(
          node.op_type(), static_cast<int>(target));
      if (!old || !now || old->SinceVersion() != now->SinceVersion())
        changed.insert(node.op_type());
    }
    for (const auto &attr : node.attribute()) {
      if (attr.has_g())
        changedOperators(attr.g(), from, target, changed);
      for (const auto &g : attr.graphs())
        changedOperators(g, from, target, changed);
    }
  }
}

} // namespace

std::string colossal::onnx_upgrade::upgradeOpset(::onnx::ModelProto &model,
                                                 int64_t target) {
  ::onnx::OperatorSetIdProto *opset = nullptr;
  for (auto &import : *model.mutable_opset_import())
    if (isDefaultDomain(import.domain()))
      opset = &import;
  if (!opset)
    return "the model declares no opset for the default ONNX domain";
  int64_t from = opset->version();
  try {
    std::set<std::string> changed;
    changedOperators(model.graph(), from, target, changed);
    if (changed.empty()) {
      opset->set_version(target);
      return "";
    }
    if (from < kOldestConvertible) {
      std::string list;
      for (const std::string &op : changed)
        list += (list.empty() ? "" : ", ") + op;
      return "opset " + std::to_string(from) + " is older than " +
             std::to_string(kOldestConvertible) +
             ", the oldest ONNX's version converter upgrades, and these "
             "operators changed since: " +
             list;
    }
    ::onnx::ModelProto inferred = model;
    try {
      ::onnx::shape_inference::InferShapes(inferred);
    } catch (const std::exception &) {
      inferred = model; // the converter may not need the shapes
    }
    ::onnx::ModelProto upgraded = ::onnx::version_conversion::ConvertVersion(
        inferred, static_cast<int>(target));
    model = std::move(upgraded);
    return "";
  } catch (const std::exception &e) {
    std::string what = e.what();
    return what.empty() ? "the converter failed without a reason" : what;
  } catch (...) {
    return "the converter failed without a reason";
  }
}
