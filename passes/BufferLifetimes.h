//===- BufferLifetimes.h - The buffers of a per-device program --*- C++ -*-===//
//
// What memory a single-function program needs and when, as the CPU runtime
// executes it: every parameter and constant has its own buffer for the whole
// run, inputs are kept for the whole run, an intermediate lives from the op
// that writes it to its last reader (outputs to the end), reshapes and
// sharding annotations alias their input, and an elementwise op whose
// operand of the same size dies at it writes over that operand. Shared by
// the memory plan (which places the buffers) and the memory estimate (which
// only adds them up).
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_PASSES_BUFFERLIFETIMES_H
#define COLOSSAL_PASSES_BUFFERLIFETIMES_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallVector.h"

#include <cstdint>
#include <limits>

namespace mlir::colossal {

/// Buffer bytes of a value: bools take a byte per element.
int64_t bufferBytes(Value v);

/// One region of memory: a parameter, constant or input, or a chain of
/// intermediates that write over each other in place.
struct Buffer {
  static constexpr int64_t kForever = std::numeric_limits<int64_t>::max();

  Value value;        ///< the first value written into it
  int64_t bytes = 0;  ///< before alignment
  int64_t start = 0;  ///< index of the op that writes it (0 for inputs)
  int64_t end = 0;    ///< index of its last reader, inclusive; kForever
  bool fixed = false; ///< a parameter or constant (a slot of its own)
};

struct BufferLifetimes {
  /// Parameters and constants first (program order), then inputs, then
  /// intermediates in the order they are written.
  llvm::SmallVector<Buffer> buffers;
  /// The buffer of every value, aliases and in-place results included.
  llvm::DenseMap<Value, unsigned> bufferOf;
  /// Program index of every op of the body.
  llvm::DenseMap<Operation *, int64_t> indexOf;
  int64_t numOps = 0;
};

/// The one function with a body of a per-device program, checked together
/// with the buffer alignment; an error naming `what` ("the memory plan")
/// otherwise.
FailureOr<func::FuncOp> deviceProgram(ModuleOp module, int64_t alignment,
                                      StringRef what);

/// The buffers of `func`'s single block; `inPlace` lets elementwise ops
/// write over an operand of their size that dies at them.
BufferLifetimes computeBufferLifetimes(func::FuncOp func, bool inPlace);

} // namespace mlir::colossal

#endif // COLOSSAL_PASSES_BUFFERLIFETIMES_H
