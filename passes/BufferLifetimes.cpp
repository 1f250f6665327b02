//===- BufferLifetimes.cpp - The buffers of a per-device program ----------===//
//
// Steps: (1) number the ops, (2) resolve aliases (reshape, shard) to their
// root value and find each root's last use, (3) parameters and constants,
// then inputs, then intermediates in program order, an in-place result
// joining the buffer of the operand it overwrites.
//
//===----------------------------------------------------------------------===//

#include "passes/BufferLifetimes.h"

#include "dialects/Graph/IR/GraphOps.h"

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

int64_t mlir::colossal::bufferBytes(Value v) {
  auto type = cast<ShapedType>(v.getType());
  int64_t bits = std::max<int64_t>(8, type.getElementTypeBitWidth());
  return type.getNumElements() * (bits / 8);
}

static bool isAlias(Operation *op) { return isa<ReshapeOp, ShardOp>(op); }

static bool isElementwiseInPlaceable(Operation *op) {
  return op->getNumResults() == 1 &&
         isa<AddOp, SubOp, MulOp, DivOp, PowOp, MaxOp, MinOp, NegOp, AbsOp,
             SqrtOp, RsqrtOp, ExpOp, LogOp, TanhOp, ErfOp, SinOp, CosOp,
             FloorOp, CeilOp, RoundOp, ReciprocalOp, ReluOp, SigmoidOp, SiluOp,
             GeluOp, WhereOp, AndOp, OrOp, NotOp>(op);
}

FailureOr<func::FuncOp> mlir::colossal::deviceProgram(ModuleOp module,
                                                      int64_t alignment,
                                                      StringRef what) {
  SmallVector<func::FuncOp> funcs;
  for (auto f : module.getOps<func::FuncOp>())
    if (!f.isExternal())
      funcs.push_back(f);
  if (funcs.size() != 1)
    return module.emitError()
           << what << " needs exactly one function with a body (one program "
           << "per device), found " << funcs.size();
  if (alignment < 1 || (alignment & (alignment - 1)))
    return module.emitError("alignment must be a power of two, got ")
           << alignment;
  return funcs.front();
}

BufferLifetimes mlir::colossal::computeBufferLifetimes(func::FuncOp func,
                                                       bool inPlace) {
  BufferLifetimes out;
  Block &body = func.getBody().front();
  // Step 1: number the ops; step 2: aliases and last uses.
  for (Operation &op : body)
    out.indexOf[&op] = out.numOps++;
  DenseMap<Value, Value> rootOf;
  auto root = [&](Value v) {
    auto it = rootOf.find(v);
    return it == rootOf.end() ? v : it->second;
  };
  DenseMap<Value, int64_t> lastUse;
  for (Operation &op : body) {
    if (isAlias(&op))
      rootOf[op.getResult(0)] = root(op.getOperand(0));
    for (Value operand : op.getOperands()) {
      int64_t when =
          isa<func::ReturnOp>(op) ? Buffer::kForever : out.indexOf.lookup(&op);
      Value r = root(operand);
      lastUse[r] = std::max(lastUse.lookup(r), when);
    }
  }
  auto add = [&](Value v, int64_t start, int64_t end, bool fixed) {
    out.bufferOf[v] = out.buffers.size();
    out.buffers.push_back({v, bufferBytes(v), start, end, fixed});
  };

  // Step 3: parameters and constants, inputs, intermediates.
  for (Operation &op : body)
    if (isa<ParamOp, ConstantOp>(op))
      add(op.getResult(0), 0, Buffer::kForever, /*fixed=*/true);
  for (BlockArgument arg : func.getArguments())
    add(arg, 0, Buffer::kForever, /*fixed=*/false);
  auto isIntermediate = [&](Value r) {
    Operation *def = r.getDefiningOp();
    return def && !isa<ParamOp, ConstantOp>(def);
  };
  for (Operation &op : body) {
    if (isa<ParamOp, ConstantOp, func::ReturnOp>(op))
      continue;
    int64_t i = out.indexOf.lookup(&op);
    if (isAlias(&op)) {
      out.bufferOf[op.getResult(0)] =
          out.bufferOf.lookup(root(op.getOperand(0)));
      continue;
    }
    auto endOf = [&](Value result) {
      auto it = lastUse.find(result);
      return it == lastUse.end() ? i : it->second; // unread: dies at once
    };
    // An elementwise op writes over an operand that dies at it; a fused
    // chain too (block by block it reads every input before writing any
    // result), each result over a different input.
    if (inPlace &&
        (isElementwiseInPlaceable(&op) || isa<FusedElementwiseOp>(op))) {
      llvm::SmallDenseSet<Value> taken;
      for (Value result : op.getResults()) {
        Value over;
        for (Value operand : op.getOperands()) {
          Value r = root(operand);
          if (isIntermediate(r) && lastUse.lookup(r) == i &&
              bufferBytes(r) == bufferBytes(result) && !taken.contains(r)) {
            over = r;
            break;
          }
        }
        if (!over) {
          add(result, i, endOf(result), /*fixed=*/false);
          continue;
        }
        taken.insert(over);
        unsigned b = out.bufferOf.lookup(over);
        out.bufferOf[result] = b;
        out.buffers[b].end = endOf(result);
      }
      continue;
    }
    for (Value result : op.getResults())
      add(result, i, endOf(result), /*fixed=*/false);
  }
  return out;
}
