//===- PlanMemory.cpp - Static memory plan in one arena -------------------===//
//
// Steps: (1) number the ops, (2) resolve aliases (reshape, shard) to their
// root value and find each root's last use, (3) place parameters and
// constants, then inputs, then intermediates first-fit as earlier values
// die, letting elementwise ops write in place, (4) record the offsets. The
// arena size recorded is exactly what the runtime allocates.
//
//===----------------------------------------------------------------------===//

#include "passes/GraphStats.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/MapVector.h"

#include <limits>
#include <map>

namespace mlir::colossal {
#define GEN_PASS_DEF_PLANMEMORYPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

constexpr int64_t kForever = std::numeric_limits<int64_t>::max();

/// Buffer bytes of a value: bools take a byte per element.
int64_t bufferBytes(Value v) {
  auto type = cast<ShapedType>(v.getType());
  int64_t bits = std::max<int64_t>(8, type.getElementTypeBitWidth());
  return type.getNumElements() * (bits / 8);
}

bool isAlias(Operation *op) { return isa<ReshapeOp, ShardOp>(op); }

bool isElementwiseInPlaceable(Operation *op) {
  return op->getNumResults() == 1 &&
         isa<AddOp, SubOp, MulOp, DivOp, PowOp, MaxOp, MinOp, NegOp, AbsOp,
             SqrtOp, RsqrtOp, ExpOp, LogOp, TanhOp, ErfOp, SinOp, CosOp,
             ReciprocalOp, ReluOp, SigmoidOp, SiluOp, GeluOp, WhereOp, AndOp,
             OrOp, NotOp>(op);
}

/// First-fit allocator over [base, infinity) with coalescing frees.
class Arena {
public:
  Arena(int64_t base, int64_t alignment) : top(base), alignment(alignment) {}

  int64_t allocate(int64_t bytes) {
    bytes = align(bytes);
    for (auto it = free.begin(); it != free.end(); ++it) {
      if (it->second < bytes)
        continue;
      int64_t offset = it->first, size = it->second;
      free.erase(it);
      if (size > bytes)
        free[offset + bytes] = size - bytes;
      return offset;
    }
    // Grow; a free block ending at the top is extended rather than wasted.
    if (!free.empty()) {
      auto last = std::prev(free.end());
      if (last->first + last->second == top) {
        int64_t offset = last->first;
        top = offset + bytes;
        free.erase(last);
        peak = std::max(peak, top);
        return offset;
      }
    }
    int64_t offset = top;
    top += bytes;
    peak = std::max(peak, top);
    return offset;
  }

  void release(int64_t offset, int64_t bytes) {
    bytes = align(bytes);
    auto it = free.emplace(offset, bytes).first;
    // Merge with the next and the previous block.
    auto next = std::next(it);
    if (next != free.end() && it->first + it->second == next->first) {
      it->second += next->second;
      free.erase(next);
    }
    if (it != free.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second == it->first) {
        prev->second += it->second;
        free.erase(it);
      }
    }
  }

  int64_t align(int64_t n) const {
    return (n + alignment - 1) / alignment * alignment;
  }
  int64_t peakBytes() const { return peak; }

private:
  std::map<int64_t, int64_t> free;
  int64_t top;
  int64_t peak = 0;
  int64_t alignment;
};

struct PlanMemoryPass
    : mlir::colossal::impl::PlanMemoryPassBase<PlanMemoryPass> {
  using PlanMemoryPassBase::PlanMemoryPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<func::FuncOp> funcs;
    for (auto f : module.getOps<func::FuncOp>())
      if (!f.isExternal())
        funcs.push_back(f);
    if (funcs.size() != 1) {
      module.emitError("the memory plan needs exactly one function with a "
                       "body (one program per device), found ")
          << funcs.size();
      return signalPassFailure();
    }
    if (alignment < 1 || (alignment & (alignment - 1))) {
      module.emitError("alignment must be a power of two, got ") << alignment;
      return signalPassFailure();
    }
    if (failed(plan(funcs.front())))
      return signalPassFailure();
  }

  LogicalResult plan(func::FuncOp func) {
    Block &body = func.getBody().front();
    // Step 1: number the ops; step 2: aliases and last uses.
    DenseMap<Operation *, int64_t> index;
    int64_t n = 0;
    for (Operation &op : body)
      index[&op] = n++;
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
        int64_t when = isa<func::ReturnOp>(op) ? kForever : index[&op];
        Value r = root(operand);
        lastUse[r] = std::max(lastUse.lookup(r), when);
      }
    }

    DenseMap<Value, int64_t> offsetOf;
    // Step 3a: parameters and constants, fixed slots at the start.
    Arena arena(0, alignment);
    int64_t staticTop = 0;
    for (Operation &op : body)
      if (isa<ParamOp, ConstantOp>(op)) {
        offsetOf[op.getResult(0)] = staticTop;
        staticTop += arena.align(bufferBytes(op.getResult(0)));
      }
    Arena dynamic(staticTop, alignment);
    // Step 3b: inputs live for the whole run.
    for (BlockArgument arg : func.getArguments())
      offsetOf[arg] = dynamic.allocate(bufferBytes(arg));
    // Step 3c: intermediates.
    auto isDynamic = [&](Value r) {
      Operation *def = r.getDefiningOp();
      return def && !isa<ParamOp, ConstantOp>(def);
    };
    for (Operation &op : body) {
      if (isa<ParamOp, ConstantOp, func::ReturnOp>(op))
        continue;
      int64_t i = index[&op];
      if (isAlias(&op)) {
        offsetOf[op.getResult(0)] = offsetOf.lookup(root(op.getOperand(0)));
        continue;
      }
      // Roots that die here.
      SmallVector<Value> dying;
      for (Value operand : op.getOperands()) {
        Value r = root(operand);
        if (isDynamic(r) && lastUse.lookup(r) == i &&
            !llvm::is_contained(dying, r))
          dying.push_back(r);
      }
      bool placed = false;
      if (inPlace && isElementwiseInPlaceable(&op)) {
        Value result = op.getResult(0);
        for (Value r : dying)
          if (bufferBytes(r) == bufferBytes(result)) {
            offsetOf[result] = offsetOf.lookup(r);
            dying.erase(llvm::find(dying, r));
            placed = true;
            break;
          }
      }
      if (!placed)
        for (Value result : op.getResults())
          offsetOf[result] = dynamic.allocate(bufferBytes(result));
      for (Value r : dying)
        dynamic.release(offsetOf.lookup(r), bufferBytes(r));
      // Results nobody reads die at once.
      for (Value result : op.getResults())
        if (!lastUse.count(result))
          dynamic.release(offsetOf.lookup(result), bufferBytes(result));
    }
    int64_t arenaBytes = std::max(staticTop, dynamic.peakBytes());

    // Step 4: record.
    Builder b(func.getContext());
    for (Operation &op : body) {
      if (op.getNumResults() == 0)
        continue;
      SmallVector<int64_t> offsets;
      for (Value result : op.getResults())
        offsets.push_back(offsetOf.lookup(result));
      op.setAttr("cg.offsets", b.getDenseI64ArrayAttr(offsets));
    }
    for (BlockArgument arg : func.getArguments())
      func.setArgAttr(arg.getArgNumber(), "cg.offset",
                      b.getI64IntegerAttr(offsetOf.lookup(arg)));
    func->getParentOfType<ModuleOp>()->setAttr("cg.arena_bytes",
                                               b.getI64IntegerAttr(arenaBytes));
    return success();
  }
};

} // namespace
