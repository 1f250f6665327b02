//===- ParallelConfig.h - One point of the parallel space -------*- C++ -*-===//
//
// The knobs a plan sets for training: data, tensor (1D/2D/2.5D/3D, with or
// without Megatron sequence parallelism), pipeline and context (ring/Ulysses)
// parallel degrees, micro-batch, schedule, recompute, ZeRO stage and offload.
// Parsed from "dp=..,tp=..,..." and checked against a workload and cluster.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_COMPILER_COST_PARALLELCONFIG_H
#define COLOSSAL_COMPILER_COST_PARALLELCONFIG_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace colossal {
namespace cost {

struct ClusterSpec;
struct Workload;

enum class TpMode { OneD, TwoD, TwoPointFiveD, ThreeD };
enum class Schedule { GPipe, OneFOneB, Interleaved };
enum class Recompute { None, Selective, Full };
/// What lives in host memory: the optimizer state, also the weights
/// (ZeRO-3), or the activations kept for backward (copied out after each
/// layer's forward, prefetched before its backward).
enum class Offload { None, Optimizer, Params, Activations };
/// How the sequence (context) parallel group runs attention.
enum class SpMode { Ring, Ulysses };

struct ParallelConfig {
  int64_t dp = 1;
  int64_t tp = 1;
  TpMode tp_mode = TpMode::OneD;
  int64_t tp_depth = 1; ///< d of 2.5D (tp = d * q^2)
  bool tp_sp = false;   ///< Megatron sequence parallelism inside the TP group
  int64_t pp = 1;
  int64_t sp = 1; ///< context parallel degree (sequence split across ranks)
  SpMode sp_mode = SpMode::Ring;
  int64_t micro_batch = 1;
  Schedule schedule = Schedule::OneFOneB;
  int64_t virtual_stages = 1; ///< v: model chunks per stage (interleaved)
  Recompute recompute = Recompute::None;
  /// With recompute=full: recompute only this many block layers of each
  /// model chunk (Megatron's --recompute-num-layers); 0 means all of them.
  /// The others keep their activations.
  int64_t recompute_layers = 0;
  int zero = 0; ///< ZeRO stage 0..3
  /// Transformer layers per pipeline stage, first to last (1F1B/GPipe);
  /// empty: an even split.
  std::vector<int64_t> stage_layers;
  Offload offload = Offload::None;

  int64_t devices() const { return dp * tp * pp * sp; }
  /// Side of the TP mesh: q with tp = q (1D), q^2 (2D), d q^2 (2.5D), q^3 (3D).
  int64_t tpMeshSide() const;
  /// How many ways a tensor-parallel group splits the batch of each
  /// micro-batch: 1 (1D), q (2D: the rows), d q (2.5D), q^2 (3D). The
  /// micro-batch must be a multiple of it.
  int64_t tpBatchSplit() const;
};

/// Parses "dp=8,tp=8,tp-mode=1d,tp-sp=1,pp=4,sp=1,sp-mode=ring,
/// micro-batch=2,schedule=interleaved:2,recompute=full,zero=1,offload=none".
/// Missing keys keep their defaults. Errors name the key and the expected
/// values. Only checks that need no workload are done here.
llvm::Expected<ParallelConfig> parseParallelConfig(llvm::StringRef text);

/// The canonical string for `cfg` (parseParallelConfig round-trips it).
std::string toString(const ParallelConfig &cfg);

/// Checks `cfg` against a workload and cluster: device count, divisibility
/// of heads/hidden/sequence/layers/batch, schedule constraints.
llvm::Error validateParallelConfig(const ParallelConfig &cfg, const Workload &w,
                                   const ClusterSpec &c);

/// What of `cfg` the runtime cannot execute yet ("" when all of it runs):
/// what colossal-opt refuses to compile and the executable search skips.
std::string notYetExecutable(const ParallelConfig &cfg);

llvm::StringRef tpModeName(TpMode m);
llvm::StringRef scheduleName(Schedule s);
llvm::StringRef recomputeName(Recompute r);
llvm::StringRef offloadName(Offload o);

} // namespace cost
} // namespace colossal

#endif // COLOSSAL_COMPILER_COST_PARALLELCONFIG_H
