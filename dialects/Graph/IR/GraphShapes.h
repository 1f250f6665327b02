//===- GraphShapes.h - Shape rules of the cg ops ----------------*- C++ -*-===//
//
// The shape arithmetic that both the op verifiers and the ONNX importer use,
// so that the two can never disagree on what a broadcast or a convolution
// window produces. Each rule returns std::nullopt when the shapes are
// incompatible; callers word the diagnostic.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_DIALECTS_GRAPH_IR_GRAPHSHAPES_H
#define COLOSSAL_DIALECTS_GRAPH_IR_GRAPHSHAPES_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"

#include <cstdint>
#include <optional>

namespace mlir::colossal::cg {

using Shape = llvm::SmallVector<int64_t, 4>;

/// Numpy-style broadcast of two shapes.
std::optional<Shape> broadcastShapes(llvm::ArrayRef<int64_t> a,
                                     llvm::ArrayRef<int64_t> b);

/// True when `from` broadcasts to exactly `to`.
bool isBroadcastableTo(llvm::ArrayRef<int64_t> from,
                       llvm::ArrayRef<int64_t> to);

/// numpy.matmul result shape (1-D operands promoted and then dropped).
std::optional<Shape> matmulShape(llvm::ArrayRef<int64_t> lhs,
                                 llvm::ArrayRef<int64_t> rhs);

/// Axis in [-rank, rank) mapped to [0, rank).
std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank);

/// Output length of a sliding window (convolution or pooling) along one
/// dimension; nullopt when the window does not fit.
std::optional<int64_t> windowOutputSize(int64_t input, int64_t kernel,
                                        int64_t stride, int64_t padBegin,
                                        int64_t padEnd, int64_t dilation,
                                        bool ceilMode);

/// Number of elements of a strided slice [start, limit) by step.
int64_t sliceLength(int64_t start, int64_t limit, int64_t step);

/// Product of the dimensions.
int64_t numElements(llvm::ArrayRef<int64_t> shape);

} // namespace mlir::colossal::cg

#endif // COLOSSAL_DIALECTS_GRAPH_IR_GRAPHSHAPES_H
