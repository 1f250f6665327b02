//===- GraphStats.cpp - FLOPs and bytes of graph ops ----------------------===//

#include "passes/GraphStats.h"

#include "dialects/Graph/IR/GraphOps.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

static double elements(Value v) {
  return static_cast<double>(cast<ShapedType>(v.getType()).getNumElements());
}

/// 2 * (query rows) * seq_kv * (qkFactor * d + vFactor * d_v): the FLOPs of
/// attention's products over q [..., sq, d], k [..., skv, d], v [..., skv,
/// d_v], each row meeting every key qkFactor times and every value vFactor
/// times.
static double attentionFlops(Value query, Value key, Value value,
                             double qkFactor, double vFactor) {
  auto q = cast<ShapedType>(query.getType());
  int64_t r = q.getRank();
  double rows = elements(query) / q.getDimSize(r - 1);
  double skv = cast<ShapedType>(key.getType()).getDimSize(r - 2);
  return 2.0 * rows * skv *
         (qkFactor * q.getDimSize(r - 1) +
          vFactor * cast<ShapedType>(value.getType()).getDimSize(r - 1));
}

double mlir::colossal::forwardFlops(Operation *op) {
  return llvm::TypeSwitch<Operation *, double>(op)
      .Case([](MatMulOp m) {
        // Every output element is a dot product over the contracted size.
        auto lhs = cast<ShapedType>(m.getLhs().getType());
        int64_t r = lhs.getRank();
        return 2.0 * elements(m.getResult()) *
               lhs.getDimSize(m.getTransposeLhs() ? r - 2 : r - 1);
      })
      .Case([](LinearOp l) {
        auto in = cast<ShapedType>(l.getInput().getType());
        return 2.0 * elements(l.getResult()) * in.getShape().back();
      })
      .Case([](Conv2DOp c) {
        auto w = cast<ShapedType>(c.getWeight().getType());
        double perOutput = static_cast<double>(w.getDimSize(1)) *
                           w.getDimSize(2) * w.getDimSize(3);
        return 2.0 * elements(c.getResult()) * perOutput;
      })
      .Case<Conv2DBackwardInputOp, Conv2DBackwardWeightOp>([](Operation *op) {
        // The forward product's size: each element of the result gradient
        // meets every weight of its output channel once.
        Value grad = isa<Conv2DBackwardInputOp>(op) ? op->getOperand(0)
                                                    : op->getOperand(1);
        auto w = cast<ShapedType>(isa<Conv2DBackwardInputOp>(op)
                                      ? op->getOperand(1).getType()
                                      : op->getResult(0).getType());
        double perOutput = static_cast<double>(w.getDimSize(1)) *
                           w.getDimSize(2) * w.getDimSize(3);
        return 2.0 * elements(grad) * perOutput;
      })
      .Case([](AttentionOp a) {
        // Q K^T and P V; a causal mask halves the useful work, but kernels
        // without block skipping still do all of it.
        return attentionFlops(a.getQuery(), a.getKey(), a.getValue(), 1, 1);
      })
      .Case([](AttentionBackwardOp a) {
        // Q K^T twice (the row statistics, then each block), dQ = dS K and
        // dK = dS^T Q; dP = g V^T and dV = P^T g.
        return attentionFlops(a.getQuery(), a.getKey(), a.getValue(), 4, 2);
      })
      .Default([](Operation *) { return 0.0; });
}

int64_t mlir::colossal::tensorBytes(Value value) {
  auto type = cast<ShapedType>(value.getType());
  return (type.getNumElements() * type.getElementTypeBitWidth() + 7) / 8;
}
