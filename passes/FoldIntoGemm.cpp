//===- FoldIntoGemm.cpp - Transposes and batch sums into GEMMs ------------===//
//
// Steps, per function: (1) a matmul operand that is a transpose of its last
// two dimensions is replaced by the transpose's input, the matmul marked
// transpose_lhs / transpose_rhs, and the transpose erased once unread; (2)
// a reduce_sum over every batch dimension of a batched matmul whose lhs is
// read transposed and whose batches match becomes one matmul of the
// operands viewed as [batch x rows, columns].
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::colossal {
#define GEN_PASS_DEF_FOLDINTOGEMMPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

namespace {

/// Whether `t` swaps the last two dimensions and keeps the others.
bool swapsLastTwo(TransposeOp t) {
  ArrayRef<int64_t> perm = t.getPermutation();
  int64_t r = static_cast<int64_t>(perm.size());
  if (r < 2)
    return false;
  for (int64_t i = 0; i < r - 2; ++i)
    if (perm[i] != i)
      return false;
  return perm[r - 2] == r - 1 && perm[r - 1] == r - 2;
}

ShapedType shapedOf(Value v) { return cast<ShapedType>(v.getType()); }

/// Step 1: reads `operand` of `mm` from the transpose's input.
bool foldTranspose(MatMulOp mm, unsigned operand) {
  bool already = operand == 0 ? mm.getTransposeLhs() : mm.getTransposeRhs();
  auto t = mm->getOperand(operand).getDefiningOp<TransposeOp>();
  if (already || !t || !swapsLastTwo(t))
    return false;
  mm->setOperand(operand, t.getInput());
  if (operand == 0)
    mm.setTransposeLhs(true);
  else
    mm.setTransposeRhs(true);
  if (t->use_empty())
    t->erase();
  return true;
}

/// Step 2: sum_b A[b]^T B[b] over every batch dimension b, with A [b.., s,
/// m] and B [b.., s, n] of the same batch, is A' ^T B' for A' [prod(b) s,
/// m] and B' [prod(b) s, n]: contiguous views, so no copy.
bool foldBatchSum(ReduceSumOp sum) {
  auto mm = sum.getInput().getDefiningOp<MatMulOp>();
  if (!mm || !mm->hasOneUse() || !mm.getTransposeLhs() || mm.getTransposeRhs())
    return false;
  auto a = shapedOf(mm.getLhs()), b = shapedOf(mm.getRhs());
  auto out = shapedOf(mm.getResult());
  int64_t r = out.getRank();
  if (r < 3 || a.getRank() != r || b.getRank() != r || !a.hasStaticShape() ||
      !b.hasStaticShape())
    return false;
  // Every batch dimension summed, nothing else.
  SmallVector<int64_t> axes;
  for (int64_t axis : sum.getAxes())
    axes.push_back(axis < 0 ? axis + r : axis);
  llvm::sort(axes);
  if (static_cast<int64_t>(axes.size()) != r - 2)
    return false;
  for (int64_t i = 0; i < r - 2; ++i)
    if (axes[i] != i || a.getDimSize(i) != b.getDimSize(i))
      return false;
  int64_t rows = 1;
  for (int64_t i = 0; i < r - 1; ++i)
    rows *= a.getDimSize(i);
  int64_t m = a.getDimSize(r - 1), n = b.getDimSize(r - 1);
  OpBuilder builder(sum);
  Location loc = sum.getLoc();
  Type e = a.getElementType();
  Value a2 = builder.create<ReshapeOp>(loc, RankedTensorType::get({rows, m}, e),
                                       mm.getLhs());
  Value b2 = builder.create<ReshapeOp>(loc, RankedTensorType::get({rows, n}, e),
                                       mm.getRhs());
  auto product = builder.create<MatMulOp>(loc, RankedTensorType::get({m, n}, e),
                                          a2, b2, /*transpose_lhs=*/true,
                                          /*transpose_rhs=*/false);
  product->setDiscardableAttrs(mm->getDiscardableAttrDictionary());
  Value result = product;
  if (shapedOf(sum.getResult()).getShape() != ArrayRef<int64_t>{m, n})
    result = builder.create<ReshapeOp>(loc, sum.getType(), result);
  sum.replaceAllUsesWith(result);
  sum->erase();
  mm->erase();
  return true;
}

struct FoldIntoGemmPass
    : mlir::colossal::impl::FoldIntoGemmPassBase<FoldIntoGemmPass> {
  using FoldIntoGemmPassBase::FoldIntoGemmPassBase;

  void runOnOperation() override {
    bool changed = false;
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      if (func.isExternal())
        continue;
      if (transposes) {
        SmallVector<MatMulOp> matmuls;
        func.walk([&](MatMulOp mm) {
          if (isa<FloatType>(shapedOf(mm.getResult()).getElementType()))
            matmuls.push_back(mm);
        });
        for (MatMulOp mm : matmuls) {
          changed |= foldTranspose(mm, 0);
          changed |= foldTranspose(mm, 1);
        }
      }
      if (batchReductions) {
        SmallVector<ReduceSumOp> sums;
        func.walk([&](ReduceSumOp s) { sums.push_back(s); });
        for (ReduceSumOp s : sums)
          changed |= foldBatchSum(s);
      }
    }
    if (!changed)
      markAllAnalysesPreserved();
  }
};

} // namespace
