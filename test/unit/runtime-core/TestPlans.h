//===- TestPlans.h - Hand-built plans and a test backend --------*- C++ -*-===//
//
// The runtime-core tests build small plans in code (the compiler is not part
// of a runtime-only build) and run them on a "test" backend whose few
// kernels work on host memory, so the executor is tested without the real
// CPU kernels.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_TEST_UNIT_RUNTIMECORE_TESTPLANS_H
#define COLOSSAL_TEST_UNIT_RUNTIMECORE_TESTPLANS_H

#include "runtime/core/Types.h"
#include "runtime/proto/plan.pb.h"

#include "onnx/onnx_pb.h"

#include <string>
#include <vector>

namespace colossal::rttest {

plan::TensorType tensorType(rt::DType dtype, std::vector<int64_t> shape);

/// Adds a buffer of `dtype`/`shape` at `offset` (size from the type).
plan::Buffer *addBuffer(plan::RankProgram &rank, int64_t id, int64_t offset,
                        rt::DType dtype, std::vector<int64_t> shape);

/// Appends kernel `op`(inputs) -> outputs.
plan::Kernel *addKernel(plan::RankProgram &rank, const std::string &op,
                        std::vector<int64_t> inputs,
                        std::vector<int64_t> outputs,
                        const std::string &location = "");

/// Raw bytes of floats.
std::string floatBytes(const std::vector<float> &values);

/// The bias of addReluPlan().
std::vector<float> reluBias();

/// y = relu(x + b), x, b, y float32 [2,3], b an embedded parameter. The sum
/// is written over x's bytes (the compiler reuses dead inputs), so inputs
/// are consumed by each run. Arena: 192 bytes.
plan::Plan addReluPlan();

/// y = x with x and y sharing one buffer and no kernels: runs on any
/// backend. `outputName` may hold odd characters.
plan::Plan identityPlan(const std::string &outputName = "y");

/// An ONNX TensorProto named `name` of ONNX element type `type` and shape
/// `dims`, without data.
onnx::TensorProto onnxTensor(const std::string &name, int type,
                             std::vector<int64_t> dims);

/// A fresh empty directory under the system temp directory.
std::string makeTempDir();

/// Registers the "test" backend (add, relu on float32; "fail" always fails).
void registerTestBackend();

} // namespace colossal::rttest

#endif // COLOSSAL_TEST_UNIT_RUNTIMECORE_TESTPLANS_H
