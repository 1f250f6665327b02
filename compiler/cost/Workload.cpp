//===- Workload.cpp - Workload helpers and the GPT builder ----------------===//

#include "compiler/cost/Workload.h"

#include <utility>

using namespace colossal::cost;

//===----------------------------------------------------------------------===//
// OpSpec
//===----------------------------------------------------------------------===//

OpSpec OpSpec::gemm(std::string name, double m, double n, double k, TpRole role,
                    double batch) {
  OpSpec op;
  op.kind = OpKind::Gemm;
  op.name = std::move(name);
  op.m = m;
  op.n = n;
  op.k = k;
  op.batch = batch;
  op.tp_role = role;
  return op;
}

OpSpec OpSpec::attention(std::string name, double heads, double sQ, double sKv,
                         double headDim, bool fused, bool dropout) {
  OpSpec op;
  op.kind = OpKind::Attention;
  op.name = std::move(name);
  op.heads = heads;
  op.s_q = sQ;
  op.s_kv = sKv;
  op.head_dim = headDim;
  op.fused = fused;
  op.dropout = dropout;
  op.attention_core = true;
  op.shard = TpShard::Split;
  return op;
}

OpSpec OpSpec::memoryBound(std::string name, double fwdBytes, double bwdBytes,
                           TpShard shard) {
  OpSpec op;
  op.kind = OpKind::MemoryBound;
  op.name = std::move(name);
  op.fwd_bytes = fwdBytes;
  op.bwd_bytes = bwdBytes;
  op.shard = shard;
  return op;
}

OpSpec OpSpec::embedding(std::string name, double tokens, double width,
                         double vocab, double fwdBytes, double bwdBytes) {
  OpSpec op;
  op.kind = OpKind::Embedding;
  op.name = std::move(name);
  op.m = tokens;
  op.n = width;
  op.k = vocab;
  op.fwd_bytes = fwdBytes;
  op.bwd_bytes = bwdBytes;
  // Vocabulary-parallel: each rank looks up its rows, the partial outputs
  // are all-reduced in forward, like a row-parallel GEMM.
  op.tp_role = TpRole::Row;
  op.shard = TpShard::SplitWithSp;
  return op;
}

double OpSpec::forwardFlops() const {
  switch (kind) {
  case OpKind::Gemm:
    return 2.0 * m * n * k * batch;
  case OpKind::Attention:
    return 4.0 * heads * s_q * s_kv * head_dim;
  case OpKind::MemoryBound:
  case OpKind::Embedding:
    return 0;
  }
  return 0;
}

//===----------------------------------------------------------------------===//
// LayerSpec / Workload
//===----------------------------------------------------------------------===//

double LayerSpec::forwardFlopsPerSample() const {
  double f = 0;
  for (const OpSpec &op : ops)
    f += op.forwardFlops();
  return f;
}

double LayerSpec::attentionCoreFlopsPerSample() const {
  double f = 0;
  for (const OpSpec &op : ops)
    if (op.attention_core)
      f += op.forwardFlops();
  return f;
}

double Workload::parameterCount() const {
  double p = 0;
  for (const LayerSpec &l : layers)
    if (l.params_shared_with < 0)
      p += static_cast<double>(l.count) * l.params();
  return p;
}

int64_t Workload::blockLayerCount() const {
  int64_t n = 0;
  for (const LayerSpec &l : layers)
    if (l.role == LayerRole::Block)
      n += l.count;
  return n;
}

double Workload::forwardFlopsPerSample() const {
  double f = 0;
  for (const LayerSpec &l : layers)
    f += static_cast<double>(l.count) * l.forwardFlopsPerSample();
  return f;
}

//===----------------------------------------------------------------------===//
// GPT
//===----------------------------------------------------------------------===//

Workload colossal::cost::makeGptWorkload(const GptDims &d) {
  const double s = static_cast<double>(d.seq);
  const double h = static_cast<double>(d.hidden);
  const double a = static_cast<double>(d.heads);
  const double v = static_cast<double>(d.vocab);
  const double f = static_cast<double>(d.ffn > 0 ? d.ffn : 4 * d.hidden);
  const double e = dtypeBytes(d.dtype);
  const double sh = s * h;

  Workload w;
  w.name = "gpt-l" + std::to_string(d.layers) + "-h" +
           std::to_string(d.hidden) + "-a" + std::to_string(d.heads);
  w.global_batch = d.global_batch;
  w.seq_len = d.seq;
  w.vocab = d.vocab;
  w.hidden = d.hidden;
  w.heads = d.heads;
  w.dtype = d.dtype;
  w.stage_boundary_bytes = e * sh;
  if (d.dtype == DType::FP32 || d.dtype == DType::TF32) {
    w.param_bytes = 4; // plain fp32 Adam: weights, grads, two moments
    w.grad_bytes = 4;
    w.optimizer_bytes = 8;
  }

  // Embedding: word (vocabulary-parallel) + position lookup, add, dropout.
  LayerSpec emb;
  emb.name = "embedding";
  emb.role = LayerRole::Pre;
  emb.ops.push_back(
      OpSpec::embedding("embed", s, h, v, (5 * e + 1) * sh, (3 * e + 1) * sh));
  emb.params_split = v * h;
  emb.params_replicated = s * h;
  emb.activations.split_with_sp = sh; // dropout mask
  w.layers.push_back(std::move(emb));

  // Transformer block. Memory-bound bytes follow Megatron's fused kernels:
  // LayerNorm reads x, writes y (backward reads dy, x, writes dx);
  // bias-dropout-add reads out + residual, writes sum + 1-byte mask;
  // bias-GeLU reads and writes the 4h-wide intermediate.
  LayerSpec blk;
  blk.name = "transformer_block";
  blk.role = LayerRole::Block;
  blk.count = d.layers;
  auto ln = [&](const char *name) {
    return OpSpec::memoryBound(name, 2 * e * sh, 3 * e * sh,
                               TpShard::SplitWithSp);
  };
  auto bda = [&](const char *name) {
    return OpSpec::memoryBound(name, (3 * e + 1) * sh, (3 * e + 1) * sh,
                               TpShard::SplitWithSp);
  };
  blk.ops.push_back(ln("ln1"));
  blk.ops.push_back(OpSpec::gemm("qkv", s, 3 * h, h, TpRole::Column));
  blk.ops.push_back(
      OpSpec::attention("attention", a, s, s, h / a, d.flash_attention));
  blk.ops.push_back(OpSpec::gemm("attn_proj", s, h, h, TpRole::Row));
  blk.ops.push_back(bda("bias_dropout_add1"));
  blk.ops.push_back(ln("ln2"));
  blk.ops.push_back(OpSpec::gemm("fc1", s, f, h, TpRole::Column));
  blk.ops.push_back(OpSpec::memoryBound("bias_gelu", 2 * e * s * f,
                                        3 * e * s * f, TpShard::Split));
  blk.ops.push_back(OpSpec::gemm("fc2", s, h, f, TpRole::Row));
  blk.ops.push_back(bda("bias_dropout_add2"));
  // Weights and biases of QKV and fc1, weights of proj and fc2 split; the
  // row-parallel biases and both LayerNorms are replicated.
  blk.params_split = 4 * h * h + 2 * h * f + 3 * h + f;
  blk.params_replicated = 6 * h;
  // Korthikanti et al. Table 2, generalised to ffn width f and element size
  // e (masks are 1 byte): with e = 2, f = 4h this is sbh(34 + 5as/h).
  ActivationBytes &act = blk.activations;
  act.split = e * (2 * sh + sh + sh)    // Q, K, V; proj input
              + e * (s * f + s * f);    // GeLU input, fc2 input
  act.split_with_sp = (4 * e + 2) * sh; // LN1/LN2 inputs, QKV/fc1 inputs, masks
  act.attention_core =
      d.flash_attention ? 0 : (2 * e + 1) * a * s * s; // softmax, mask, dropout
  act.checkpoint = e * sh;
  w.layers.push_back(std::move(blk));

  // Final LayerNorm, logits (column-parallel over the vocabulary, weight tied
  // to the word embedding) and vocabulary-parallel cross-entropy in fp32:
  // cast, max, exp-sum, normalise (~18 bytes/logit), backward ~6 bytes/logit.
  LayerSpec head;
  head.name = "lm_head";
  head.role = LayerRole::Post;
  head.ops.push_back(ln("final_ln"));
  head.ops.push_back(OpSpec::gemm("logits", s, v, h, TpRole::Column));
  head.ops.push_back(OpSpec::memoryBound("cross_entropy", (e + 16) * s * v,
                                         (4 + e) * s * v, TpShard::Split));
  head.params_replicated = 2 * h;
  head.activations.split_with_sp = 2 * e * sh; // LN input, logits input
  head.activations.split = 4 * s * v;          // fp32 softmax for the loss grad
  w.layers.push_back(std::move(head));

  // Tied LM head weight: a separate, shared entry so that the last stage of a
  // pipeline stores its copy without the model counting it twice.
  LayerSpec tied;
  tied.name = "lm_head_weight";
  tied.role = LayerRole::Post;
  tied.params_split = v * h;
  tied.params_shared_with = 0; // the embedding layer
  w.layers.push_back(std::move(tied));
  return w;
}
