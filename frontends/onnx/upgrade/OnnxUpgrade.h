//===- OnnxUpgrade.h - Old opsets upgraded by ONNX's version converter ----===//
//
// A plain C++ library (no LLVM/MLIR: it is built with exceptions, which
// ONNX's version converter throws) that upgrades a model of an old opset to
// one the importer reads, with ONNX's own converter
// (onnx/version_converter/convert.h).
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_FRONTENDS_ONNX_UPGRADE_ONNXUPGRADE_H
#define COLOSSAL_FRONTENDS_ONNX_UPGRADE_ONNXUPGRADE_H

#include "onnx/onnx_pb.h"

#include <cstdint>
#include <string>

namespace colossal::onnx_upgrade {

/// The oldest opset ONNX's converter upgrades from.
constexpr int64_t kOldestConvertible = 7;

/// Converts `model` (default-domain opset below `target`) to opset `target`
/// in place: relabels it when none of its operators changed between the
/// two opsets (any old opset), else runs ONNX's converter (opsets from
/// kOldestConvertible). Returns "" on success, or why not (the converter's
/// own message, which names the operator where it stopped, or the changed
/// operators of a model too old to convert); `model` is left unchanged then.
std::string upgradeOpset(::onnx::ModelProto &model, int64_t target);

} // namespace colossal::onnx_upgrade

#endif // COLOSSAL_FRONTENDS_ONNX_UPGRADE_ONNXUPGRADE_H
