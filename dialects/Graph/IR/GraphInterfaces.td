//===- GraphInterfaces.td - Op interfaces of the cg dialect ----*- tablegen -*-===//

#ifndef COLOSSAL_DIALECTS_GRAPH_IR_GRAPHINTERFACES_TD
#define COLOSSAL_DIALECTS_GRAPH_IR_GRAPHINTERFACES_TD

include "mlir/IR/OpBase.td"

def CG_TensorParallelOpInterface : OpInterface<"TensorParallelOpInterface"> {
  let cppNamespace = "::mlir::colossal::cg";
  let description = [{
    What an op can do over a tensor-parallel axis of `tp` devices: its
    strategies, each the layouts it needs of its operands, the layout of its
    results, and whether it divides its compute. The auto-parallel search
    prices them (compute, resharding between producer and consumer layouts,
    weight memory) and picks one per op. The default suits elementwise ops
    with broadcasting; ops with other structure (contractions, attention,
    normalizations, data movement) declare their own.
  }];
  let methods = [
    InterfaceMethod<
      /*desc=*/[{Appends this op's strategies over `tp` devices; the first is
                 always the replicated one.}],
      /*retTy=*/"void",
      /*methodName=*/"getTensorParallelStrategies",
      /*args=*/(ins "int64_t":$tp,
                    "::llvm::SmallVectorImpl<::mlir::colossal::cg::TpStrategy> &":$strategies),
      /*methodBody=*/[{}],
      /*defaultImplementation=*/[{
        strategies.push_back(::mlir::colossal::cg::replicatedStrategy($_op));
        ::mlir::colossal::cg::broadcastingStrategies($_op, tp, strategies);
      }]>
  ];
}

#endif // COLOSSAL_DIALECTS_GRAPH_IR_GRAPHINTERFACES_TD
