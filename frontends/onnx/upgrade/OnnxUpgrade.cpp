//===- OnnxUpgrade.cpp - Old opsets upgraded by ONNX's version converter --===//

#include "frontends/onnx/upgrade/OnnxUpgrade.h"

#include "onnx/shape_inference/implementation.h"
#include "onnx/version_converter/convert.h"

#include <exception>

std::string colossal::onnx_upgrade::upgradeOpset(::onnx::ModelProto &model,
                                                 int64_t target) {
  try {
    // Some adapters (Softmax 12 -> 13) need the shapes of their inputs.
    ::onnx::ModelProto inferred = model;
    ::onnx::shape_inference::InferShapes(inferred);
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
