//===- ShardingRules.cpp - What each graph op does with sharded operands --===//
//
// One rule per op family, in the spirit of GSPMD's per-op propagation: the
// rule looks at how the operands are laid out, picks the result layout that
// keeps the most work split, and states the layout every operand must
// arrive in (the partitioner inserts the collectives that get it there).
// Pending sums (`partial`) flow through ops that are linear in them (add of
// sums, scaling, reshapes, sums over more dimensions, contractions) and are
// resolved right before the first op that is not.
//
//===----------------------------------------------------------------------===//

#include "passes/Sharding.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::cg;

//===----------------------------------------------------------------------===//
// MeshInfo and Spec
//===----------------------------------------------------------------------===//

MeshInfo MeshInfo::fromAttr(MeshAttr mesh) {
  MeshInfo info;
  for (auto [name, size] :
       llvm::zip(mesh.getAxisNames(), mesh.getAxisSizes())) {
    info.names.push_back(name.str());
    info.sizes.push_back(size);
  }
  return info;
}

int64_t MeshInfo::size(StringRef axis) const {
  for (auto [name, size] : llvm::zip(names, sizes))
    if (name == axis)
      return size;
  return 1;
}

int64_t MeshInfo::numDevices() const {
  int64_t n = 1;
  for (int64_t s : sizes)
    n *= s;
  return n;
}

Spec Spec::replicated(int64_t rank) {
  Spec s;
  s.dims.resize(rank);
  return s;
}

Spec Spec::fromAttr(ShardingAttr attr, int64_t rank) {
  Spec s = replicated(rank);
  if (!attr)
    return s;
  for (int64_t d = 0; d < rank; ++d)
    for (StringRef axis : attr.getDimAxes(d))
      s.dims[d].push_back(axis.str());
  for (StringRef axis : attr.getPartialAxes())
    s.partial.push_back(axis.str());
  return s;
}

ShardingAttr Spec::toAttr(MLIRContext *ctx, FlatSymbolRefAttr mesh) const {
  Builder b(ctx);
  SmallVector<Attribute> dimAttrs;
  // Trailing replicated dimensions are left out, as the attribute allows.
  int64_t last = rank();
  while (last > 0 && dims[last - 1].empty())
    --last;
  for (int64_t d = 0; d < last; ++d) {
    SmallVector<StringRef> axes(dims[d].begin(), dims[d].end());
    dimAttrs.push_back(b.getStrArrayAttr(axes));
  }
  ArrayAttr partialAttr;
  if (!partial.empty()) {
    SmallVector<StringRef> axes(partial.begin(), partial.end());
    partialAttr = b.getStrArrayAttr(axes);
  }
  return ShardingAttr::get(ctx, mesh, b.getArrayAttr(dimAttrs), partialAttr);
}

bool Spec::isReplicated() const {
  return partial.empty() &&
         llvm::all_of(dims, [](const auto &axes) { return axes.empty(); });
}

int64_t Spec::splitOf(int64_t dim, const MeshInfo &mesh) const {
  int64_t n = 1;
  for (const std::string &axis : dims[dim])
    n *= mesh.size(axis);
  return n;
}

int64_t Spec::splitProduct(const MeshInfo &mesh) const {
  int64_t n = 1;
  for (int64_t d = 0; d < rank(); ++d)
    n *= splitOf(d, mesh);
  return n;
}

bool Spec::dimRefines(int64_t dim, const Spec &coarse) const {
  const auto &c = coarse.dims[dim], &f = dims[dim];
  return c.size() <= f.size() && std::equal(c.begin(), c.end(), f.begin());
}

bool Spec::refines(const Spec &coarse) const {
  if (coarse.hasPartial() || hasPartial() || coarse.rank() != rank())
    return false;
  for (int64_t d = 0; d < rank(); ++d)
    if (!dimRefines(d, coarse))
      return false;
  return true;
}

Spec Spec::withoutPartial() const {
  Spec s = *this;
  s.partial.clear();
  return s;
}

FailureOr<SmallVector<int64_t>> Spec::localShape(ArrayRef<int64_t> shape,
                                                 const MeshInfo &mesh) const {
  SmallVector<int64_t> local(shape.begin(), shape.end());
  for (int64_t d = 0; d < rank() && d < (int64_t)local.size(); ++d) {
    int64_t n = splitOf(d, mesh);
    if (local[d] % n != 0)
      return failure();
    local[d] /= n;
  }
  return local;
}

std::string Spec::str() const {
  std::string s = "[";
  for (int64_t d = 0; d < rank(); ++d) {
    s += d ? ", [" : "[";
    for (size_t i = 0; i < dims[d].size(); ++i)
      s += (i ? ", " : "") + dims[d][i];
    s += "]";
  }
  s += "]";
  if (!partial.empty()) {
    s += " partial [";
    for (size_t i = 0; i < partial.size(); ++i)
      s += (i ? ", " : "") + partial[i];
    s += "]";
  }
  return s;
}

StringRef mlir::colossal::operandShardingAttrName() {
  return "cg.operand_sharding";
}

StringRef mlir::colossal::ringAttentionAttrName() {
  return "cg.ring_attention";
}

bool mlir::colossal::isParameterView(Value v) {
  Operation *def = v.getDefiningOp();
  while (def && isa<TransposeOp, ReshapeOp>(def))
    def = def->getOperand(0).getDefiningOp();
  return def && isa<ParamOp>(def);
}

MeshOp mlir::colossal::findMesh(ModuleOp module) {
  for (auto mesh : module.getOps<MeshOp>())
    return mesh;
  return {};
}

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

namespace {

using Axes = SmallVector<std::string, 2>;

int64_t rankOf(Value v) { return cast<ShapedType>(v.getType()).getRank(); }
ArrayRef<int64_t> shapeOf(Value v) {
  return cast<ShapedType>(v.getType()).getShape();
}

int64_t product(const Axes &axes, const MeshInfo &mesh) {
  int64_t n = 1;
  for (const std::string &a : axes)
    n *= mesh.size(a);
  return n;
}

/// Every operand replicated, every result replicated: always correct.
OpShardings replicateAll(Operation *op) {
  OpShardings s;
  for (Value v : op->getOperands())
    s.operands.push_back(Spec::replicated(rankOf(v)));
  for (Value v : op->getResults())
    s.results.push_back(Spec::replicated(rankOf(v)));
  return s;
}

/// Keeps the axes of `axes` not yet in `used` (and records them), so no axis
/// splits two dimensions of one value.
Axes claim(const Axes &axes, llvm::StringSet<> &used) {
  Axes kept;
  for (const std::string &a : axes)
    if (!used.contains(a))
      kept.push_back(a);
  for (const std::string &a : kept)
    used.insert(a);
  return kept;
}

/// `axes` if a dimension of `size` divides over them, else nothing.
Axes ifDivides(const Axes &axes, int64_t size, const MeshInfo &mesh) {
  return size % product(axes, mesh) == 0 ? axes : Axes();
}

} // namespace

bool mlir::colossal::isPointwise(Operation *op) {
  return op->hasTrait<OpTrait::Elementwise>() ||
         isa<AddOp, SubOp, MulOp, DivOp, PowOp, MaxOp, MinOp, AndOp, OrOp,
             CmpOp, WhereOp, CastOp, NegOp, AbsOp, SqrtOp, RsqrtOp, ExpOp,
             LogOp, TanhOp, ErfOp, SinOp, CosOp, FloorOp, CeilOp, RoundOp,
             ReciprocalOp, ReluOp, SigmoidOp, SiluOp, NotOp, GeluOp>(op);
}

namespace {

/// Which operands a pending sum may stay in: the op is linear in them.
/// Returns false when a pending sum in the operands must be resolved.
bool partialSurvives(Operation *op, ArrayRef<Spec> in,
                     SmallVectorImpl<bool> &keeps, Axes &axes) {
  keeps.assign(in.size(), false);
  SmallVector<unsigned> partials;
  for (auto [i, s] : llvm::enumerate(in))
    if (s.hasPartial())
      partials.push_back(i);
  if (partials.empty())
    return false;
  axes = in[partials.front()].partial;
  if (isa<AddOp, SubOp>(op)) {
    // A sum of pending sums over the same axes is one pending sum. A whole
    // scalar joins it as a pending sum too (colossal-partition keeps it on
    // the group's first device, zero on the others): a running total of
    // pending sums (a gradient norm over sharded gradients) then stays one
    // until its end instead of being reduced at every term.
    for (auto [i, s] : llvm::enumerate(in))
      if (s.hasPartial() ? s.partial != axes
                         : rankOf(op->getOperand(i)) != 0 || !s.isReplicated())
        return false;
    keeps.assign(in.size(), true);
    return true;
  }
  bool linear = false;
  if (isa<MulOp>(op))
    linear = partials.size() == 1;
  else if (isa<DivOp>(op))
    linear = partials.size() == 1 && partials.front() == 0;
  else if (isa<NegOp>(op))
    linear = true;
  else if (auto cast = dyn_cast<CastOp>(op))
    linear = isa<FloatType>(getElementTypeOrSelf(cast.getInput())) &&
             isa<FloatType>(getElementTypeOrSelf(cast.getResult()));
  if (!linear)
    return false;
  keeps[partials.front()] = true;
  return true;
}

//===----------------------------------------------------------------------===//
// Rules
//===----------------------------------------------------------------------===//

/// Numpy-broadcasting pointwise ops: operands aligned at the right.
OpShardings pointwise(Operation *op, ArrayRef<Spec> in, const MeshInfo &mesh,
                      PartialResolution resolution) {
  Value result = op->getResult(0);
  int64_t rank = rankOf(result);
  ArrayRef<int64_t> shape = shapeOf(result);
  auto operandDim = [&](unsigned i, int64_t d) -> int64_t {
    int64_t r = rankOf(op->getOperand(i));
    int64_t od = d - (rank - r);
    if (od < 0 || shapeOf(op->getOperand(i))[od] != shape[d])
      return -1; // absent or broadcast
    return od;
  };

  SmallVector<bool> keeps;
  Axes partial;
  bool survives = partialSurvives(op, in, keeps, partial);
  if (!survives)
    partial.clear();

  // The result takes the layout of the operand that splits the most.
  Spec best = Spec::replicated(rank);
  int64_t bestSplit = 1;
  for (unsigned i = 0; i < in.size(); ++i) {
    Spec candidate = Spec::replicated(rank);
    llvm::StringSet<> used;
    for (const std::string &a : partial)
      used.insert(a);
    for (int64_t d = 0; d < rank; ++d) {
      int64_t od = operandDim(i, d);
      if (od >= 0)
        candidate.dims[d] = claim(in[i].dims[od], used);
    }
    int64_t split = candidate.splitProduct(mesh);
    if (split > bestSplit) {
      best = candidate;
      bestSplit = split;
    }
  }
  // A resolved pending sum with nothing else to follow is reduce-scattered
  // onto the leading dimension when asked (ZeRO-2/3 gradients).
  if (!survives && bestSplit == 1 && rank > 0 &&
      resolution == PartialResolution::ReduceScatter) {
    for (unsigned i = 0; i < in.size(); ++i)
      if (in[i].hasPartial() && rankOf(op->getOperand(i)) == rank &&
          operandDim(i, 0) == 0) {
        best.dims[0] = ifDivides(in[i].partial, shape[0], mesh);
        break;
      }
  }
  OpShardings s;
  for (unsigned i = 0; i < in.size(); ++i) {
    Spec required = Spec::replicated(rankOf(op->getOperand(i)));
    for (int64_t d = 0; d < rank; ++d)
      if (int64_t od = operandDim(i, d); od >= 0)
        required.dims[od] = best.dims[d];
    if (survives && keeps[i])
      required.partial = partial;
    s.operands.push_back(required);
  }
  best.partial = partial;
  s.results.push_back(best);
  return s;
}

/// matmul (numpy semantics, rank >= 2): batch dims broadcast, lhs [.., M, K]
/// x rhs [.., K, N]. A contraction split the same way on both sides leaves a
/// pending sum (Megatron's row-parallel layer; a weight gradient summed over
/// a split batch).
OpShardings matmul(MatMulOp op, ArrayRef<Spec> in, const MeshInfo &mesh) {
  Value lhs = op.getLhs(), rhs = op.getRhs();
  int64_t a = rankOf(lhs), b = rankOf(rhs), r = rankOf(op.getResult());
  // Transposed operands (colossal-fold-into-gemm, after partitioning).
  if (a < 2 || b < 2 || op.getTransposeLhs() || op.getTransposeRhs())
    return replicateAll(op);
  ArrayRef<int64_t> ls = shapeOf(lhs), rs = shapeOf(rhs),
                    os = shapeOf(op.getResult());
  Spec L = in[0].withoutPartial(), R = in[1].withoutPartial();
  Spec out = Spec::replicated(r);
  Spec reqL = Spec::replicated(a), reqR = Spec::replicated(b);
  llvm::StringSet<> used;
  // Batch dimensions: the lhs first, then the rhs.
  for (int64_t d = 0; d < r - 2; ++d) {
    int64_t ld = d - (r - a), rd = d - (r - b);
    bool lReal = ld >= 0 && ls[ld] == os[d];
    bool rReal = rd >= 0 && rs[rd] == os[d];
    Axes axes;
    if (lReal && !L.dims[ld].empty())
      axes = claim(L.dims[ld], used);
    else if (rReal && !R.dims[rd].empty())
      axes = claim(R.dims[rd], used);
    out.dims[d] = axes;
    if (lReal)
      reqL.dims[ld] = axes;
    if (rReal)
      reqR.dims[rd] = axes;
  }
  // When the lhs's rows and the rhs's columns are split over the same
  // axes, one of them is gathered: the smaller. Under Megatron's sequence
  // parallelism that is the sequence before a column-parallel layer for
  // real sizes, and the weight for tiny ones.
  bool weightColumns =
      ShapedType::getNumElements(rs) > ShapedType::getNumElements(ls) &&
      llvm::any_of(R.dims[b - 1], [&](const std::string &x) {
        return llvm::is_contained(L.dims[a - 2], x);
      });
  Axes n;
  if (weightColumns)
    n = claim(R.dims[b - 1], used);
  Axes m = claim(L.dims[a - 2], used);
  Axes kl = L.dims[a - 1], kr = R.dims[b - 2];
  Axes k;
  auto free = [&](const Axes &axes) {
    return llvm::none_of(
        axes, [&](const std::string &x) { return used.contains(x); });
  };
  if (!kl.empty() && kl == kr && free(kl))
    k = kl;
  else if (!kl.empty() && kr.empty() && free(kl) && m.empty() &&
           isParameterView(rhs) && ifDivides(kl, ls[a - 2], mesh) == kl) {
    // A whole weight meets an input split along the contraction (the
    // head split of Ulysses reaching the output projection): the split
    // moves onto the input's rows (one all-to-all back to the sequence
    // split) rather than slicing the weight into a pending sum that is
    // then reduce-scattered, and whose gradient pieces are gathered.
    m = kl;
    for (const std::string &x : kl)
      used.insert(x);
  } else if (!kl.empty() && kr.empty() && free(kl))
    k = kl;
  else if (kl.empty() && !kr.empty() && free(kr))
    k = kr;
  else if (kl.size() > kr.size() && !kr.empty() && free(kl) &&
           llvm::equal(kr, ArrayRef<std::string>(kl).take_front(kr.size())) &&
           m.empty()) {
    // The lhs's contraction is split further than the weight's rows (the
    // head split of Ulysses beside tp, [tp, sp], into a row-parallel
    // projection): the extra axes move onto the lhs's rows (the sequence:
    // one all-to-all back, as Ulysses does) and the rest contracts.
    Axes extra(kl.begin() + kr.size(), kl.end());
    if (ifDivides(extra, ls[a - 2], mesh) == extra) {
      k = kr;
      m = extra;
      for (const std::string &x : extra)
        used.insert(x);
    }
  }
  k = ifDivides(k, ls[a - 1], mesh);
  for (const std::string &x : k)
    used.insert(x);
  if (!weightColumns)
    n = claim(R.dims[b - 1], used);
  out.dims[r - 2] = m;
  out.dims[r - 1] = n;
  out.partial = k;
  reqL.dims[a - 2] = m;
  reqL.dims[a - 1] = k;
  reqR.dims[b - 2] = k;
  reqR.dims[b - 1] = n;
  return {{reqL, reqR}, {out}};
}

/// reduce_sum / reduce_mean: a split reduced dimension becomes a pending sum
/// (the partitioner rescales a mean). reduce_max needs whole reduced dims.
OpShardings reduction(Operation *op, ArrayRef<int64_t> axesAttr, bool keepdims,
                      ArrayRef<Spec> in) {
  int64_t rank = rankOf(op->getOperand(0));
  bool linear = isa<ReduceSumOp, ReduceMeanOp>(op);
  Spec required = linear ? in[0] : in[0].withoutPartial();
  llvm::SmallDenseSet<int64_t> reduced;
  for (int64_t axis : axesAttr)
    reduced.insert(axis < 0 ? axis + rank : axis);
  Spec out;
  out.partial = required.partial;
  for (int64_t d = 0; d < rank; ++d) {
    if (!reduced.contains(d)) {
      out.dims.push_back(required.dims[d]);
      continue;
    }
    if (linear)
      out.partial.append(required.dims[d].begin(), required.dims[d].end());
    else
      required.dims[d].clear();
    if (keepdims)
      out.dims.push_back({});
  }
  return {{required}, {out}};
}

/// reshape: dimensions grouped into runs of equal element counts; a run may
/// stay split only along its leading dimension, which must then lead the
/// output run and divide.
OpShardings reshape(ReshapeOp op, ArrayRef<Spec> in, const MeshInfo &mesh) {
  ArrayRef<int64_t> is = shapeOf(op.getInput()), os = shapeOf(op.getResult());
  Spec required = in[0];
  Spec out = Spec::replicated(os.size());
  out.partial = required.partial;
  size_t i = 0, j = 0;
  while (i < is.size() || j < os.size()) {
    size_t i0 = i, j0 = j;
    int64_t pi = 1, pj = 1;
    if (i < is.size())
      pi *= is[i++];
    if (j < os.size())
      pj *= os[j++];
    while (pi != pj) {
      if (pi < pj && i < is.size())
        pi *= is[i++];
      else if (j < os.size())
        pj *= os[j++];
      else
        break;
    }
    // Trailing ones join the run.
    while (i < is.size() && is[i] == 1 && (j >= os.size() || os[j] != 1))
      ++i;
    while (j < os.size() && os[j] == 1 && (i >= is.size() || is[i] != 1))
      ++j;
    bool keep = i0 < is.size() && j0 < os.size() &&
                !required.dims[i0].empty() &&
                os[j0] % product(required.dims[i0], mesh) == 0;
    for (size_t d = i0 + 1; d < i; ++d)
      keep = keep && required.dims[d].empty();
    if (keep) {
      out.dims[j0] = required.dims[i0];
    } else {
      for (size_t d = i0; d < i && d < is.size(); ++d)
        required.dims[d].clear();
    }
  }
  return {{required}, {out}};
}

OpShardings transpose(TransposeOp op, ArrayRef<Spec> in) {
  ArrayRef<int64_t> perm = op.getPermutation();
  Spec out = Spec::replicated(perm.size());
  out.partial = in[0].partial;
  for (auto [k, p] : llvm::enumerate(perm))
    out.dims[k] = in[0].dims[p];
  return {{in[0]}, {out}};
}

OpShardings expand(ExpandOp op, ArrayRef<Spec> in) {
  ArrayRef<int64_t> is = shapeOf(op.getInput()), os = shapeOf(op.getResult());
  Spec required = in[0];
  Spec out = Spec::replicated(os.size());
  out.partial = required.partial;
  int64_t shift = os.size() - is.size();
  for (size_t d = 0; d < is.size(); ++d) {
    if (is[d] == os[d + shift])
      out.dims[d + shift] = required.dims[d];
    else
      required.dims[d].clear();
  }
  return {{required}, {out}};
}

/// Embedding lookups: the indices as they are; a table split along `axis`
/// (a vocab-parallel embedding) stays split, each device looking up the
/// rows it holds, which leaves a pending sum (colossal-partition masks the
/// others); any other split of the table is kept where it does not clash.
OpShardings gather(GatherOp op, ArrayRef<Spec> in) {
  int64_t axis = op.getAxis();
  int64_t tr = rankOf(op.getInput()), ir = rankOf(op.getIndices());
  if (axis < 0)
    axis += tr;
  Spec table = in[0].withoutPartial(), idx = in[1].withoutPartial();
  llvm::StringSet<> used;
  for (auto &axes : idx.dims)
    for (auto &x : axes)
      used.insert(x);
  Axes rows = claim(table.dims[axis], used);
  table.dims[axis] = rows;
  for (int64_t d = 0; d < tr; ++d)
    if (d != axis)
      table.dims[d] = claim(table.dims[d], used);
  Spec out;
  out.partial = rows;
  for (int64_t d = 0; d < axis; ++d)
    out.dims.push_back(table.dims[d]);
  for (int64_t d = 0; d < ir; ++d)
    out.dims.push_back(idx.dims[d]);
  for (int64_t d = axis + 1; d < tr; ++d)
    out.dims.push_back(table.dims[d]);
  return {{table, idx}, {out}};
}

/// The embedding gradient: rows summed from a split batch are a pending sum.
OpShardings scatterAddRows(ScatterAddRowsOp op, ArrayRef<Spec> in) {
  Spec idx = in[0].withoutPartial(), upd = in[1].withoutPartial();
  Axes rows = idx.dims[0];
  if (upd.dims[0] != rows)
    rows.clear();
  idx.dims[0] = rows;
  upd.dims[0] = rows;
  llvm::StringSet<> used;
  for (auto &x : rows)
    used.insert(x);
  upd.dims[1] = claim(upd.dims[1], used);
  Spec out = Spec::replicated(2);
  out.dims[1] = upd.dims[1];
  out.partial = rows;
  return {{idx, upd}, {out}};
}

/// Ops that need whole dimensions from `from` on (normalizations, softmax)
/// and take the rest of their layout from operand 0; other operands
/// (scales, biases) replicated.
OpShardings wholeFrom(Operation *op, int64_t from, ArrayRef<Spec> in) {
  int64_t rank = rankOf(op->getOperand(0));
  if (from < 0)
    from += rank;
  Spec required = in[0].withoutPartial();
  for (int64_t d = std::max<int64_t>(from, 0); d < rank; ++d)
    required.dims[d].clear();
  OpShardings s;
  s.operands.push_back(required);
  for (unsigned i = 1; i < op->getNumOperands(); ++i)
    s.operands.push_back(Spec::replicated(rankOf(op->getOperand(i))));
  for (Value r : op->getResults()) {
    Spec out = Spec::replicated(rankOf(r));
    for (int64_t d = 0; d < std::min<int64_t>(from, out.rank()); ++d)
      out.dims[d] = required.dims[d];
    s.results.push_back(out);
  }
  return s;
}

/// layer_norm / rms_norm over the last dimension only, split over some
/// axes (the hidden split of 2D/2.5D/3D tensor parallelism): the split is
/// kept, scale and bias split alike, and colossal-partition all-reduces the
/// statistics. Any other normalization needs its dimensions whole.
OpShardings norm(Operation *op, int64_t axis, ArrayRef<Spec> in,
                 const MeshInfo &mesh) {
  int64_t rank = rankOf(op->getOperand(0));
  if (axis < 0)
    axis += rank;
  Spec x = in[0].withoutPartial();
  if (axis != rank - 1 || rank < 2 || x.dims[rank - 1].empty())
    return wholeFrom(op, axis, in);
  OpShardings s;
  s.operands.push_back(x);
  for (unsigned i = 1; i < op->getNumOperands(); ++i) {
    Spec p = Spec::replicated(rankOf(op->getOperand(i)));
    if (p.rank() == 1)
      p.dims[0] = x.dims[rank - 1];
    s.operands.push_back(p);
  }
  s.results.push_back(x);
  (void)mesh;
  return s;
}

/// The layout of attention's mask (broadcastable to the scores [batch...,
/// seq_q, seq_kv]) for operands laid out as `q`: batch dimensions and the
/// query rows follow q where the mask has them, the keys stay whole.
Spec attentionMask(Value mask, Value query, const Spec &q) {
  int64_t rank = rankOf(query), mr = rankOf(mask);
  ArrayRef<int64_t> qs = shapeOf(query), ms = shapeOf(mask);
  Spec m = Spec::replicated(mr);
  for (int64_t d = 0; d < mr; ++d) {
    int64_t qd = d + (rank - mr);
    if (qd >= 0 && qd < rank - 1 && ms[d] == qs[qd])
      m.dims[d] = q.dims[qd];
  }
  return m;
}

/// Attention (`cg.attention`, or its fused backward, whose operands q, k,
/// v, out and grad share the layout and whose results take it) over
/// [batch..., seq, d]: batch dimensions (batch, heads) split alike; the
/// head size whole. Under sp-mode=ring the sequence split stays (each
/// device its block of q, k and v: colossal-partition makes the ring);
/// otherwise the sequence is whole and a query split along it runs on a
/// split of the heads instead (Ulysses: the reshard is an all-to-all).
OpShardings attention(Operation *op, ArrayRef<Spec> in, const MeshInfo &mesh) {
  Value query = op->getOperand(0), key = op->getOperand(1);
  int64_t rank = rankOf(query);
  ArrayRef<int64_t> qs = shapeOf(query);
  for (Value v : op->getOperands().take_front(isa<AttentionOp>(op) ? 3 : 5))
    for (int64_t d = 0; d < rank - 2; ++d)
      if (shapeOf(v)[d] != qs[d])
        return replicateAll(op);
  Spec q = in[0].withoutPartial();
  bool ring = op->hasAttr(ringAttentionAttrName()) && rank >= 3 &&
              !q.dims[rank - 2].empty() &&
              shapeOf(key)[rank - 2] == qs[rank - 2];
  if (!ring && rank >= 3 && !q.dims[rank - 2].empty()) {
    // Heads already split over tp split further.
    Axes heads = q.dims[rank - 3];
    int64_t perRank = qs[rank - 3];
    for (StringRef a : heads)
      perRank /= mesh.size(a);
    Axes more = ifDivides(q.dims[rank - 2], perRank, mesh);
    if (!more.empty() && llvm::none_of(more, [&](StringRef a) {
          return llvm::is_contained(heads, a);
        })) {
      heads.append(more.begin(), more.end());
      q.dims[rank - 3] = heads;
    }
  }
  q.dims[rank - 1].clear();
  if (!ring)
    q.dims[rank - 2].clear();
  OpShardings s;
  unsigned tensors = isa<AttentionOp>(op) ? 3 : 5;
  s.operands.assign(tensors, q);
  if (op->getNumOperands() > tensors)
    s.operands.push_back(attentionMask(op->getOperand(tensors), query, q));
  s.results.assign(op->getNumResults(), q);
  return s;
}

/// NCHW convolutions and pooling split the batch; weights whole.
OpShardings batchOnly(Operation *op, ArrayRef<Spec> in, unsigned batchOperand,
                      bool contractsBatch) {
  Axes batch = in[batchOperand].withoutPartial().dims[0];
  // Every batch-carrying operand must agree.
  OpShardings s;
  for (auto [i, v] : llvm::enumerate(op->getOperands())) {
    Spec req = Spec::replicated(rankOf(v));
    bool batched = contractsBatch || i == batchOperand ||
                   (isa<MaxPool2DBackwardOp>(op) && i < 2);
    if (batched && req.rank() > 0)
      req.dims[0] = batch;
    s.operands.push_back(req);
  }
  Spec out = Spec::replicated(rankOf(op->getResult(0)));
  if (contractsBatch)
    out.partial = batch;
  else if (out.rank() > 0)
    out.dims[0] = batch;
  s.results.push_back(out);
  return s;
}

/// concat / split / slice: the dimension they cut stays whole.
OpShardings alongAxis(Operation *op, int64_t axis, ArrayRef<Spec> in) {
  int64_t rank = rankOf(op->getOperand(0));
  if (axis < 0)
    axis += rank;
  Spec layout = in[0].withoutPartial();
  layout.dims[axis].clear();
  OpShardings s;
  for (unsigned i = 0; i < op->getNumOperands(); ++i)
    s.operands.push_back(layout);
  for (unsigned i = 0; i < op->getNumResults(); ++i)
    s.results.push_back(layout);
  return s;
}

OpShardings slice(SliceOp op, ArrayRef<Spec> in) {
  Spec layout = in[0];
  ArrayRef<int64_t> shape = shapeOf(op.getInput());
  for (int64_t d = 0; d < layout.rank(); ++d) {
    bool whole = op.getStarts()[d] == 0 && op.getLimits()[d] == shape[d] &&
                 op.getSteps()[d] == 1;
    if (!whole)
      layout.dims[d].clear();
  }
  return {{layout}, {layout}};
}

} // namespace

OpShardings mlir::colossal::inferOpShardings(Operation *op, ArrayRef<Spec> in,
                                             const MeshInfo &mesh,
                                             PartialResolution resolution) {
  if (isPointwise(op) && op->getNumResults() == 1)
    return pointwise(op, in, mesh, resolution);
  if (auto m = dyn_cast<MatMulOp>(op))
    return matmul(m, in, mesh);
  if (auto r = dyn_cast<ReduceSumOp>(op))
    return reduction(op, r.getAxes(), r.getKeepdims(), in);
  if (auto r = dyn_cast<ReduceMeanOp>(op))
    return reduction(op, r.getAxes(), r.getKeepdims(), in);
  if (auto r = dyn_cast<ReduceMaxOp>(op))
    return reduction(op, r.getAxes(), r.getKeepdims(), in);
  if (auto r = dyn_cast<ReshapeOp>(op))
    return reshape(r, in, mesh);
  if (auto t = dyn_cast<TransposeOp>(op))
    return transpose(t, in);
  if (auto e = dyn_cast<ExpandOp>(op))
    return expand(e, in);
  if (auto g = dyn_cast<GatherOp>(op))
    return gather(g, in);
  if (auto s = dyn_cast<ScatterAddRowsOp>(op))
    return scatterAddRows(s, in);
  if (auto n = dyn_cast<LayerNormOp>(op))
    return norm(op, n.getAxis(), in, mesh);
  if (auto n = dyn_cast<RmsNormOp>(op))
    return norm(op, n.getAxis(), in, mesh);
  if (isa<SoftmaxOp, LogSoftmaxOp>(op)) {
    // The normalized axis may stay split (vocab-parallel cross-entropy):
    // colossal-partition then reduces its max and sum across the split.
    Spec s = in[0].withoutPartial();
    return {{s}, {s}};
  }
  if (isa<TriluOp>(op))
    return wholeFrom(op, -2, in);
  if (isa<AttentionOp, AttentionBackwardOp>(op))
    return attention(op, in, mesh);
  if (isa<Conv2DOp, MaxPool2DOp, AvgPool2DOp, BatchNormOp,
          Conv2DBackwardInputOp, MaxPool2DBackwardOp>(op))
    return batchOnly(op, in, 0, false);
  if (isa<Conv2DBackwardWeightOp>(op))
    return batchOnly(op, in, 0, true);
  if (auto c = dyn_cast<ConcatOp>(op))
    return alongAxis(op, c.getAxis(), in);
  if (auto s = dyn_cast<SplitOp>(op))
    return alongAxis(op, s.getAxis(), in);
  if (auto t = dyn_cast<TopKOp>(op))
    return alongAxis(op, t.getAxis(), in);
  if (auto s = dyn_cast<SliceOp>(op))
    return slice(s, in);
  return replicateAll(op);
}
