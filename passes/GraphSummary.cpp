//===- GraphSummary.cpp - Print what a graph holds ------------------------===//
//
// A quick look at an imported model: what goes in and out, how big the
// weights are and where they live, which ops it uses, and how much compute a
// forward pass takes.
//
//===----------------------------------------------------------------------===//

#include "passes/GraphStats.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::colossal {
#define GEN_PASS_DEF_GRAPHSUMMARYPASS
#include "passes/Passes.h.inc"
} // namespace mlir::colossal

using namespace mlir;
using namespace mlir::colossal;

namespace {

/// 1234567 -> "1.23 M".
std::string scaled(double v, StringRef unit) {
  const char *prefixes[] = {"", " K", " M", " G", " T", " P"};
  int i = 0;
  while (v >= 1000.0 && i < 5) {
    v /= 1000.0;
    ++i;
  }
  std::string s;
  llvm::raw_string_ostream os(s);
  os << llvm::format(i == 0 ? "%.0f" : "%.2f", v) << prefixes[i];
  if (!unit.empty())
    os << (i == 0 ? " " : "") << unit;
  return os.str();
}

std::string nameOf(DictionaryAttr attrs, unsigned index) {
  if (attrs)
    if (auto name = attrs.getAs<StringAttr>("cg.name"))
      return name.str();
  return "#" + std::to_string(index);
}

struct GraphSummaryPass
    : mlir::colossal::impl::GraphSummaryPassBase<GraphSummaryPass> {
  void runOnOperation() override {
    llvm::raw_ostream &os = llvm::outs();
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      os << "graph @" << func.getSymName() << "\n";
      os << "  inputs: ";
      for (unsigned i = 0; i < func.getNumArguments(); ++i)
        os << (i ? ", " : "") << nameOf(func.getArgAttrDict(i), i) << " "
           << func.getArgument(i).getType();
      os << "\n  outputs: ";
      for (unsigned i = 0; i < func.getNumResults(); ++i)
        os << (i ? ", " : "") << nameOf(func.getResultAttrDict(i), i) << " "
           << func.getResultTypes()[i];
      os << "\n";

      int64_t params = 0, external = 0, initializer = 0, inline_ = 0;
      double elements = 0, bytes = 0, flops = 0;
      int64_t ops = 0, attention = 0, causal = 0;
      llvm::MapVector<StringRef, int64_t> histogram;
      func.walk([&](Operation *op) {
        if (isa<func::FuncOp, func::ReturnOp>(op))
          return;
        ++ops;
        ++histogram[op->getName().getStringRef()];
        flops += forwardFlops(op);
        if (auto param = dyn_cast<cg::ParamOp>(op)) {
          ++params;
          elements += cast<ShapedType>(param.getType()).getNumElements();
          bytes += tensorBytes(param.getResult());
          Attribute source = param.getSourceAttr();
          if (isa_and_nonnull<cg::ExternalDataAttr>(source))
            ++external;
          else if (isa_and_nonnull<cg::InitializerAttr>(source))
            ++initializer;
          else
            ++inline_;
        }
        if (auto a = dyn_cast<cg::AttentionOp>(op)) {
          ++attention;
          causal += a.getCausal();
        }
      });
      os << "  parameters: " << params << " tensors, " << scaled(elements, "")
         << " elements, " << scaled(bytes, "B") << " (" << external
         << " external, " << initializer << " in the ONNX file, " << inline_
         << " inline)\n";
      auto sorted = histogram.takeVector();
      llvm::stable_sort(sorted,
                        [](auto &a, auto &b) { return a.second > b.second; });
      os << "  ops: " << ops << " (";
      for (auto [i, entry] : llvm::enumerate(sorted))
        os << (i ? ", " : "") << entry.first << " " << entry.second;
      os << ")\n";
      if (attention)
        os << "  attention: " << attention << " fused (" << causal
           << " causal)\n";
      os << "  forward FLOPs: " << scaled(flops, "FLOP") << "\n";
    }
    markAllAnalysesPreserved();
  }
};

} // namespace
