//===- Workload.h - What the estimator costs: a training job ----*- C++ -*-===//
//
// A model as the cost model sees it: a sequence of layers (identical repeated
// layers carry a count), each a list of ops with their shapes, parameter
// counts and the activation bytes it saves for backward, plus the job's
// batch, sequence length and dtype. The compiler fills one from its IR;
// makeGptWorkload() builds the GPT family used for tests and calibration.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_COMPILER_COST_WORKLOAD_H
#define COLOSSAL_COMPILER_COST_WORKLOAD_H

#include "compiler/cost/DType.h"

#include <cstdint>
#include <string>
#include <vector>

namespace colossal {
namespace cost {

enum class OpKind {
  Gemm,        ///< (m x k) * (k x n), `batch` independent products
  Attention,   ///< softmax(Q K^T) V over heads
  MemoryBound, ///< elementwise / normalization / reductions: bytes only
  Embedding,   ///< table lookup, vocabulary split over tensor parallel ranks
};

/// How a GEMM's weight is split under 1D tensor parallelism (Megatron):
/// Column splits n (backward all-reduces the input gradient), Row splits k
/// (forward all-reduces the output). 2D/2.5D/3D split every role'd GEMM.
enum class TpRole { Replicated, Column, Row };

/// How a per-sample quantity (bytes moved, activations) divides under tensor
/// parallelism of size t.
enum class TpShard {
  Split,       ///< divided by t (lives inside the column/row region)
  SplitWithSp, ///< replicated under 1D TP, divided by t with tp-sp
               ///< (Megatron sequence parallelism) or 2D/2.5D/3D
  Replicated,  ///< never divided
};

/// One op. Sizes are per sample (one sequence); the estimator multiplies by
/// the micro-batch and divides by the parallel degrees.
struct OpSpec {
  OpKind kind = OpKind::MemoryBound;
  std::string name;

  // Gemm / Embedding: m rows per sample (tokens), n columns, k reduction
  // (Embedding: k is the vocabulary, n the width).
  double m = 0, n = 0, k = 0, batch = 1;
  TpRole tp_role = TpRole::Replicated;

  // Attention, per sample.
  double heads = 0, s_q = 0, s_kv = 0, head_dim = 0;
  bool fused = false;  ///< flash attention: no score matrix in memory
  bool dropout = true; ///< dropout on the attention probabilities
  /// Causal (each query attends to the keys before it): a fused kernel
  /// skips the blocks above the diagonal, about half the work.
  bool causal = false;

  // MemoryBound / Embedding: bytes moved per sample.
  double fwd_bytes = 0, bwd_bytes = 0;
  TpShard shard = TpShard::Split;

  /// Recomputed (and its activations not kept) under selective recompute.
  bool attention_core = false;

  static OpSpec gemm(std::string name, double m, double n, double k,
                     TpRole role, double batch = 1);
  static OpSpec attention(std::string name, double heads, double sQ, double sKv,
                          double headDim, bool fused, bool dropout = true);
  static OpSpec memoryBound(std::string name, double fwdBytes, double bwdBytes,
                            TpShard shard);
  static OpSpec embedding(std::string name, double tokens, double width,
                          double vocab, double fwdBytes, double bwdBytes);

  /// Forward FLOPs per sample (GEMMs and attention; 0 for the rest).
  double forwardFlops() const;
};

/// Activation bytes a layer keeps for backward, per sample, without any
/// parallelism, split by how they shard (Korthikanti et al. 2022 Table 2).
struct ActivationBytes {
  double split = 0;          ///< divided by TP
  double split_with_sp = 0;  ///< divided by TP only with tp-sp / 2D+ modes
  double replicated = 0;     ///< never divided by TP
  double attention_core = 0; ///< divided by TP; not kept under selective
  /// What full recompute keeps: the layer input (shards like split_with_sp).
  double checkpoint = 0;

  double total() const {
    return split + split_with_sp + replicated + attention_core;
  }
};

/// Where a layer goes when the model is cut into pipeline stages: Pre layers
/// stay with the first stage, Post with the last, Block layers are spread
/// evenly over the pp * v model chunks.
enum class LayerRole { Pre, Block, Post };

struct LayerSpec {
  std::string name;
  LayerRole role = LayerRole::Block;
  int64_t count = 1; ///< identical consecutive copies
  std::vector<OpSpec> ops;
  double params_split = 0;      ///< parameters divided by TP
  double params_replicated = 0; ///< parameters every TP rank holds
  /// Index (into Workload::layers) of the layer whose parameters these are
  /// (tied embeddings), or -1. Shared parameters are not counted in the
  /// model's size; a pipeline stage without the owner stores a copy.
  int64_t params_shared_with = -1;
  ActivationBytes activations;

  double params() const { return params_split + params_replicated; }
  double forwardFlopsPerSample() const;
  double attentionCoreFlopsPerSample() const;
};

struct Workload {
  std::string name;
  /// How the layers were found (for reports), e.g. "12 blocks of 2
  /// segments ..." or "no repeated structure ...".
  std::string structure;
  std::vector<LayerSpec> layers;
  int64_t global_batch = 1; ///< sequences per optimizer step
  int64_t seq_len = 1;
  int64_t vocab = 0;
  int64_t hidden = 0; ///< 0 when not a transformer; used for TP checks
  int64_t heads = 0;  ///< 0 when not a transformer; used for TP checks
  DType dtype = DType::BF16;
  /// Bytes per sample passed between consecutive pipeline stages.
  double stage_boundary_bytes = 0;
  /// Bytes per parameter: weights, gradients, optimizer state (mixed
  /// precision Adam: 2 + 2 + 12 for fp32 master + two moments).
  double param_bytes = 2, grad_bytes = 2, optimizer_bytes = 12;

  /// Parameters, counting shared ones once.
  double parameterCount() const;
  /// Total Block layers (the ones pipeline stages split).
  int64_t blockLayerCount() const;
  /// Model forward FLOPs for one sample (all layers).
  double forwardFlopsPerSample() const;
};

/// A GPT-style decoder (Megatron-LM layout: learned position embeddings,
/// pre-LayerNorm blocks with GELU MLP, LM head tied to the word embedding,
/// unfused attention unless `flash_attention`).
struct GptDims {
  int64_t layers = 0;
  int64_t hidden = 0;
  int64_t heads = 0;
  int64_t seq = 0;
  int64_t vocab = 0;
  int64_t ffn = 0; ///< 0 means 4 * hidden
  int64_t global_batch = 1;
  DType dtype = DType::BF16;
  bool flash_attention = false;
};
Workload makeGptWorkload(const GptDims &dims);

} // namespace cost
} // namespace colossal

#endif // COLOSSAL_COMPILER_COST_WORKLOAD_H
