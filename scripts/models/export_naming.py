#!/usr/bin/env python3
"""Export the same tiny models with three initializer naming schemes (torch -> ONNX).

What: four tiny torch models (gpt2, llama, bert, cnn), each exported once with
torch.onnx.export (TorchScript exporter, opset 17, do_constant_folding=True,
eval mode, static shapes, every initializer embedded) and written three times,
with only the names changed:

  <model>_descriptive.onnx  HF / torchvision parameter names:
                            transformer.h.0.attn.c_attn.weight,
                            model.layers.0.self_attn.q_proj.weight,
                            encoder.layer.0.attention.self.query.weight,
                            layer1.0.conv1.weight; node and value names are the
                            exporter's own scoped ones (/transformer/h.0/attn/...).
  <model>_short.onnx        short names whose block index is not a ".<i>."
                            component: l0.qkv.w, b3.ln.g, s0b1.c1.w,
                            block_0/q/w (llama); nodes /l0/qkv/Gemm ...
  <model>_anon.onnx         what an anonymizing export looks like: every value
                            but the graph inputs/outputs is onnx::<Op>_<N>
                            (Op: its first user), every node <Op>_<k>, and
                            initializers with equal
                            values (dims, dtype and bytes) are merged into one
                            that all their users share (LayerNorm/RMSNorm
                            weights of ones, zero biases, gpt2's per-layer
                            causal masks), as torch's exporter does in eval mode.

Why: the compiler must find the same layer structure (blocks, attention, MLP,
norms, residual stages) whatever the parameter names are; the three files of a
model have the same nodes in the same order with the same attributes and the
same initializer values, so a test can compare what it finds in each.

How:
  * The models are written once, with HF / torchvision module names, and
    seeded per model (seed = first 32 bits of sha256(model name)). Linear
    weights are normal(0, 0.02), convs He-normal, embeddings normal(0, 0.02);
    every bias is zero and every norm weight one (BatchNorm keeps its default
    running stats), in all schemes, so that the anon scheme has values to merge.
  * Each model is exported once with the exporter's initializer deduplication
    switched off, so every parameter is its own initializer.
  * descriptive: parameters that survive as initializers keep their names.
    Initializers made by constant folding (onnx::MatMul_N = a Linear weight
    transposed, the BN-folded Conv weights and biases, the wpe table gathered
    by arange, the sliced causal masks, the RoPE angle table) are named after
    the state_dict entry (or its transpose, or a per-model table such as
    model.rotary_emb.angles) with the same values, preferring the one whose
    module encloses the consumer node; otherwise after the consumer
    (Conv/Gemm/MatMul input 1 -> <module>.weight, input 2 -> <module>.bias,
    else <scope>.const<k>).
  * short: the descriptive module paths are rewritten by per-model rules
    (SHORT_RULES), in initializer, node and value names alike.
  * anon: the initializers are merged by value and all names replaced.
    --anon-identity keeps the duplicates as Identity(shared) nodes instead, the
    way torch 1.13 itself writes them.

Usage:
    /path/to/venv/bin/python scripts/models/export_naming.py --out /tmp/naming
    .../export_naming.py --out /tmp/naming --models gpt2,cnn --check

It prints one line per file written. --check runs every file in onnxruntime
(if installed) on seeded inputs and exits non-zero unless the three schemes of
each model give the same outputs (max abs diff < 1e-6) and match torch (within
1e-4); it also checks, without onnxruntime, that the three graphs are the same
up to names. Needs torch (1.13, the TorchScript exporter) and onnx. Takes
about 2 s for all twelve files (with --check); the files are 180-920 KB each.
Every file imports and estimates in Colossal, e.g.
    colossal-opt gpt2_anon.onnx --estimate --batch=8 --cluster=dgx-a100-80g:nodes=1,gpus_per_node=8
(the models' batch is static 2; the estimate's --batch is its own).

Model shapes (batch 2, seq 32, d 64, 4 heads, 4 blocks; vocab 128):
  gpt2   pre-LN decoder: wte + wpe(arange), HF Conv1D (addmm -> Gemm) c_attn /
         c_proj / c_fc, causal mask = per-layer tril buffer + Where, GELU(tanh),
         ln_f, untied lm_head.  input_ids int64 [2,32] -> logits [2,32,128]
  llama  RMSNorm by hand (x * rsqrt(mean(x^2) + eps) * w), RoPE in forward
         (inv_freq buffer, cos/sin, rotate_half = Slice + Neg + Concat), additive
         causal mask (full(min).triu(1): Constant -> Trilu), SwiGLU (silu(gate)
         * up -> down), no biases, final norm, untied lm_head.
         input_ids -> logits [2,32,128]
  bert   post-LN encoder: word + position + token_type embeddings -> LayerNorm,
         padding mask (1 - mask) * -1e4 added to the scores, GELU(erf) FFN.
         input_ids, attention_mask int64 [2,32] -> last_hidden_state [2,32,64]
  cnn    ResNet: stem conv3x3(3->8)+BN+ReLU, BasicBlocks [2,2,2] of width
         8/16/32 (stride 2 + 1x1 downsample conv+BN first in stages 2 and 3),
         global average pool, fc 10 (Gemm).  pixels float [2,3,32,32] -> logits
  (BatchNorm is folded into the Conv weights by the exporter.)
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import io
import math
import os
import re
import sys
import time
import warnings

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper

OPSET = 17
SCHEMES = ("descriptive", "short", "anon")
BATCH, SEQ = 2, 32
D_MODEL, N_HEAD, N_LAYER, VOCAB = 64, 4, 4, 128
LLAMA_FFN = 176
SAME_TOL = 1e-6     # --check: schemes of one model against each other
TORCH_TOL = 1e-4    # --check: onnxruntime against torch


# ----------------------------------------------------------------------------
# Models (HF / torchvision module names: these are the descriptive names)
# ----------------------------------------------------------------------------

def linear(d_in, d_out, bias=True):
    m = nn.Linear(d_in, d_out, bias=bias)
    nn.init.normal_(m.weight, 0.0, 0.02)
    if bias:
        nn.init.zeros_(m.bias)
    return m


def embedding(n, d):
    m = nn.Embedding(n, d)
    nn.init.normal_(m.weight, 0.0, 0.02)
    return m


def causal_attention_scores(q, k, head_dim):
    return torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(head_dim)


class Conv1D(nn.Module):
    """HF GPT-2's Conv1D: a Linear with the weight stored [in, out] and applied
    as addmm on the flattened tokens (exports as Reshape -> Gemm -> Reshape)."""

    def __init__(self, nx, nf):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf).normal_(0.0, 0.02))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        size_out = x.size()[:-1] + (self.nf,)
        x = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        return x.view(size_out)


class GPT2Attention(nn.Module):
    def __init__(self, d, n_head, n_pos):
        super().__init__()
        self.n_head = n_head
        self.c_attn = Conv1D(d, 3 * d)
        self.c_proj = Conv1D(d, d)
        # HF keeps a bool tril "bias" buffer in every layer (the anon scheme
        # merges the four folded copies into one initializer).
        self.register_buffer(
            "bias", torch.tril(torch.ones(n_pos, n_pos, dtype=torch.bool)).view(1, 1, n_pos, n_pos))

    def forward(self, x):
        b, t, c = x.size()
        hd = c // self.n_head
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (y.view(b, t, self.n_head, hd).transpose(1, 2) for y in (q, k, v))
        w = causal_attention_scores(q, k, hd)
        w = torch.where(self.bias[:, :, :t, :t], w, torch.tensor(torch.finfo(w.dtype).min))
        w = F.softmax(w, dim=-1)
        y = torch.matmul(w, v).transpose(1, 2).reshape(b, t, c)
        return self.c_proj(y)


class GPT2MLP(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.c_fc = Conv1D(d, 4 * d)
        self.c_proj = Conv1D(4 * d, d)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class GPT2Block(nn.Module):
    def __init__(self, d, n_head, n_pos):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.attn = GPT2Attention(d, n_head, n_pos)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.mlp = GPT2MLP(d)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2Model(nn.Module):
    def __init__(self, vocab=VOCAB, d=D_MODEL, n_head=N_HEAD, n_layer=N_LAYER, n_pos=SEQ):
        super().__init__()
        self.wte = embedding(vocab, d)
        self.wpe = embedding(n_pos, d)
        self.h = nn.ModuleList([GPT2Block(d, n_head, n_pos) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d, eps=1e-5)

    def forward(self, input_ids):
        pos = torch.arange(0, input_ids.size(1), dtype=torch.long)
        x = self.wte(input_ids) + self.wpe(pos)   # static seq: wpe(arange) is folded
        for block in self.h:
            x = block(x)
        return self.ln_f(x)


class GPT2LMHeadModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.transformer = GPT2Model()
        self.lm_head = linear(D_MODEL, VOCAB, bias=False)

    def forward(self, input_ids):
        return self.lm_head(self.transformer(input_ids))


class LlamaRMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LlamaRotaryEmbedding(nn.Module):
    def __init__(self, head_dim, theta=10000.0):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq)

    def angles(self, seq_len):
        t = torch.arange(seq_len, dtype=torch.float32)
        freqs = t[:, None] * self.inv_freq[None, :]
        return torch.cat((freqs, freqs), dim=-1)     # [seq, head_dim]

    def forward(self, seq_len):
        # static seq: the exporter folds angles() into one initializer; Cos and
        # Sin stay nodes (torch 1.13 does not fold them)
        emb = self.angles(seq_len)
        return emb.cos()[None, None, :, :], emb.sin()[None, None, :, :]


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class LlamaAttention(nn.Module):
    def __init__(self, d, n_head):
        super().__init__()
        self.n_head = n_head
        self.q_proj = linear(d, d, bias=False)
        self.k_proj = linear(d, d, bias=False)
        self.v_proj = linear(d, d, bias=False)
        self.o_proj = linear(d, d, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, c = x.size()
        hd = c // self.n_head
        q, k, v = (p(x).view(b, t, self.n_head, hd).transpose(1, 2)
                   for p in (self.q_proj, self.k_proj, self.v_proj))
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        w = causal_attention_scores(q, k, hd) + mask
        w = F.softmax(w, dim=-1)
        y = torch.matmul(w, v).transpose(1, 2).reshape(b, t, c)
        return self.o_proj(y)


class LlamaMLP(nn.Module):
    def __init__(self, d, ffn):
        super().__init__()
        self.gate_proj = linear(d, ffn, bias=False)
        self.up_proj = linear(d, ffn, bias=False)
        self.down_proj = linear(ffn, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, d, n_head, ffn):
        super().__init__()
        self.input_layernorm = LlamaRMSNorm(d)
        self.self_attn = LlamaAttention(d, n_head)
        self.post_attention_layernorm = LlamaRMSNorm(d)
        self.mlp = LlamaMLP(d, ffn)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


def llama_causal_mask(t):
    return torch.full((t, t), torch.finfo(torch.float32).min).triu(1)[None, None, :, :]


class LlamaModel(nn.Module):
    def __init__(self, vocab=VOCAB, d=D_MODEL, n_head=N_HEAD, n_layer=N_LAYER, ffn=LLAMA_FFN):
        super().__init__()
        self.embed_tokens = embedding(vocab, d)
        self.layers = nn.ModuleList([LlamaDecoderLayer(d, n_head, ffn) for _ in range(n_layer)])
        self.norm = LlamaRMSNorm(d)
        self.rotary_emb = LlamaRotaryEmbedding(d // n_head)

    def forward(self, input_ids):
        t = input_ids.size(1)
        x = self.embed_tokens(input_ids)
        cos, sin = self.rotary_emb(t)
        mask = llama_causal_mask(t)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.norm(x)


class LlamaForCausalLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = LlamaModel()
        self.lm_head = linear(D_MODEL, VOCAB, bias=False)

    def forward(self, input_ids):
        return self.lm_head(self.model(input_ids))


class BertEmbeddings(nn.Module):
    def __init__(self, vocab, d, n_pos, type_vocab=2):
        super().__init__()
        self.word_embeddings = embedding(vocab, d)
        self.position_embeddings = embedding(n_pos, d)
        self.token_type_embeddings = embedding(type_vocab, d)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)
        self.register_buffer("position_ids", torch.arange(n_pos).unsqueeze(0))
        self.register_buffer("token_type_ids", torch.zeros(1, n_pos, dtype=torch.long))

    def forward(self, input_ids):
        t = input_ids.size(1)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(self.token_type_ids[:, :t])
        x = x + self.position_embeddings(self.position_ids[:, :t])
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, d, n_head):
        super().__init__()
        self.n_head = n_head
        self.query = linear(d, d)
        self.key = linear(d, d)
        self.value = linear(d, d)

    def forward(self, x, ext_mask):
        b, t, c = x.size()
        hd = c // self.n_head
        q, k, v = (p(x).view(b, t, self.n_head, hd).transpose(1, 2)
                   for p in (self.query, self.key, self.value))
        w = F.softmax(causal_attention_scores(q, k, hd) + ext_mask, dim=-1)
        return torch.matmul(w, v).transpose(1, 2).reshape(b, t, c)


class BertSelfOutput(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.dense = linear(d, d)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)

    def forward(self, h, x):
        return self.LayerNorm(self.dense(h) + x)


class BertAttention(nn.Module):
    def __init__(self, d, n_head):
        super().__init__()
        self.self = BertSelfAttention(d, n_head)
        self.output = BertSelfOutput(d)

    def forward(self, x, ext_mask):
        return self.output(self.self(x, ext_mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, d, ffn):
        super().__init__()
        self.dense = linear(d, ffn)

    def forward(self, x):
        return F.gelu(self.dense(x))


class BertOutput(nn.Module):
    def __init__(self, ffn, d):
        super().__init__()
        self.dense = linear(ffn, d)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)

    def forward(self, h, x):
        return self.LayerNorm(self.dense(h) + x)


class BertLayer(nn.Module):
    def __init__(self, d, n_head, ffn):
        super().__init__()
        self.attention = BertAttention(d, n_head)
        self.intermediate = BertIntermediate(d, ffn)
        self.output = BertOutput(ffn, d)

    def forward(self, x, ext_mask):
        a = self.attention(x, ext_mask)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, d, n_head, ffn, n_layer):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(d, n_head, ffn) for _ in range(n_layer)])

    def forward(self, x, ext_mask):
        for layer in self.layer:
            x = layer(x, ext_mask)
        return x


class BertModel(nn.Module):
    def __init__(self, vocab=VOCAB, d=D_MODEL, n_head=N_HEAD, n_layer=N_LAYER, n_pos=SEQ):
        super().__init__()
        self.embeddings = BertEmbeddings(vocab, d, n_pos)
        self.encoder = BertEncoder(d, n_head, 4 * d, n_layer)

    def forward(self, input_ids, attention_mask):
        ext = attention_mask[:, None, None, :].to(torch.float32)
        ext = (1.0 - ext) * -10000.0
        return self.encoder(self.embeddings(input_ids), ext)


class BasicBlock(nn.Module):
    """torchvision's BasicBlock (same attribute names)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + identity)


class ResNet(nn.Module):
    """torchvision-style ResNet with a 3x3 stem and no max pool (32x32 input)."""

    def __init__(self, blocks=(2, 2, 2), widths=(8, 16, 32), classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        cin = widths[0]
        for s, (n, w) in enumerate(zip(blocks, widths)):
            stage = [BasicBlock(cin if b == 0 else w, w, 2 if (b == 0 and s > 0) else 1)
                     for b in range(n)]
            setattr(self, f"layer{s + 1}", nn.Sequential(*stage))
            cin = w
        self.n_stages = len(blocks)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = linear(cin, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, pixels):
        x = self.relu(self.bn1(self.conv1(pixels)))
        for s in range(self.n_stages):
            x = getattr(self, f"layer{s + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ----------------------------------------------------------------------------
# Per-model spec: inputs, known folded tables, short-name rules
# ----------------------------------------------------------------------------

def ids_inputs(gen):
    return {"input_ids": torch.randint(0, VOCAB, (BATCH, SEQ), generator=gen, dtype=torch.long)}


def bert_inputs(gen):
    mask = torch.ones(BATCH, SEQ, dtype=torch.long)
    mask[1, SEQ - 9:] = 0                       # second sequence padded
    return dict(ids_inputs(gen), attention_mask=mask)


def pixel_inputs(gen):
    return {"pixels": torch.randn(BATCH, 3, 32, 32, generator=gen)}


def llama_tables(model):
    """Folded tables that are no state_dict entry, by descriptive name."""
    return {"model.rotary_emb.angles": model.model.rotary_emb.angles(SEQ)}


def stage_block(m):
    """cnn rule helper: 'layer2.1' -> 's1b1' (0-based stage and block)."""
    return f"s{int(m.group(1)) - 1}b{m.group(2)}"


# Short names: (regex on a descriptive module path, replacement, is_norm).
# The first rule matching a prefix of the path (at a '.' boundary) rewrites
# that prefix; the rest of the path is kept, except the parameter leaf:
# weight -> w (norms: g), bias -> b. Paths no rule matches are kept.
IDX = r"(\d+)"  # a block index in SHORT_RULES
SHORT_RULES = {
    "gpt2": [
        (rf"transformer\.h\.{IDX}\.ln_1", r"l\1.ln1", True),
        (rf"transformer\.h\.{IDX}\.ln_2", r"l\1.ln2", True),
        (rf"transformer\.h\.{IDX}\.attn\.c_attn", r"l\1.qkv", False),
        (rf"transformer\.h\.{IDX}\.attn\.c_proj", r"l\1.proj", False),
        (rf"transformer\.h\.{IDX}\.attn\.bias", r"l\1.mask", False),
        (rf"transformer\.h\.{IDX}\.attn", r"l\1.attn", False),
        (rf"transformer\.h\.{IDX}\.mlp\.c_fc", r"l\1.fc1", False),
        (rf"transformer\.h\.{IDX}\.mlp\.c_proj", r"l\1.fc2", False),
        (rf"transformer\.h\.{IDX}\.mlp", r"l\1.mlp", False),
        (rf"transformer\.h\.{IDX}", r"l\1", False),
        (r"transformer\.wte", "tok", False),
        (r"transformer\.wpe", "pos", False),
        (r"transformer\.ln_f", "lnf", True),
        (r"transformer", "", False),
        (r"lm_head", "head", False),
    ],
    # llama: '/' separated, like TF/JAX checkpoints: block_0/q/w
    "llama": [
        (rf"model\.layers\.{IDX}\.input_layernorm", r"block_\1.norm1", True),
        (rf"model\.layers\.{IDX}\.post_attention_layernorm", r"block_\1.norm2", True),
        (rf"model\.layers\.{IDX}\.self_attn\.([qkvo])_proj", r"block_\1.\2", False),
        (rf"model\.layers\.{IDX}\.self_attn", r"block_\1.attn", False),
        (rf"model\.layers\.{IDX}\.mlp\.gate_proj", r"block_\1.w1", False),
        (rf"model\.layers\.{IDX}\.mlp\.down_proj", r"block_\1.w2", False),
        (rf"model\.layers\.{IDX}\.mlp\.up_proj", r"block_\1.w3", False),
        (rf"model\.layers\.{IDX}\.mlp", r"block_\1.ffn", False),
        (rf"model\.layers\.{IDX}", r"block_\1", False),
        (r"model\.embed_tokens", "tok", False),
        (r"model\.norm", "norm", True),
        (r"model\.rotary_emb", "rope", False),
        (r"model", "", False),
        (r"lm_head", "out", False),
    ],
    "bert": [
        (rf"encoder\.layer\.{IDX}\.attention\.self\.query", r"b\1.q", False),
        (rf"encoder\.layer\.{IDX}\.attention\.self\.key", r"b\1.k", False),
        (rf"encoder\.layer\.{IDX}\.attention\.self\.value", r"b\1.v", False),
        (rf"encoder\.layer\.{IDX}\.attention\.self", r"b\1.attn", False),
        (rf"encoder\.layer\.{IDX}\.attention\.output\.dense", r"b\1.o", False),
        (rf"encoder\.layer\.{IDX}\.attention\.output\.LayerNorm", r"b\1.ln", True),
        (rf"encoder\.layer\.{IDX}\.attention\.output", r"b\1.attn_out", False),
        (rf"encoder\.layer\.{IDX}\.attention", r"b\1.att", False),
        (rf"encoder\.layer\.{IDX}\.intermediate\.dense", r"b\1.fc1", False),
        (rf"encoder\.layer\.{IDX}\.intermediate", r"b\1.ffn", False),
        (rf"encoder\.layer\.{IDX}\.output\.dense", r"b\1.fc2", False),
        (rf"encoder\.layer\.{IDX}\.output\.LayerNorm", r"b\1.ln2", True),
        (rf"encoder\.layer\.{IDX}\.output", r"b\1.ffn_out", False),
        (rf"encoder\.layer\.{IDX}", r"b\1", False),
        (r"encoder", "enc", False),
        (r"embeddings\.word_embeddings", "emb.tok", False),
        (r"embeddings\.position_embeddings", "emb.pos", False),
        (r"embeddings\.token_type_embeddings", "emb.typ", False),
        (r"embeddings\.LayerNorm", "emb.ln", True),
        (r"embeddings", "emb", False),
    ],
    "cnn": [
        (rf"layer{IDX}\.{IDX}\.conv(\d)", lambda m: f"{stage_block(m)}.c{m.group(3)}", False),
        (rf"layer{IDX}\.{IDX}\.bn(\d)", lambda m: f"{stage_block(m)}.n{m.group(3)}", True),
        (rf"layer{IDX}\.{IDX}\.downsample\.0", lambda m: f"{stage_block(m)}.dc", False),
        (rf"layer{IDX}\.{IDX}\.downsample\.1", lambda m: f"{stage_block(m)}.dn", True),
        (rf"layer{IDX}\.{IDX}\.downsample", lambda m: f"{stage_block(m)}.down", False),
        (rf"layer{IDX}\.{IDX}", stage_block, False),
        (rf"layer{IDX}", lambda m: f"s{int(m.group(1)) - 1}", False),
        (r"conv1", "stem.c", False),
        (r"bn1", "stem.n", True),
        (r"relu", "stem.act", False),
        (r"avgpool", "pool", False),
        (r"fc", "fc", False),
    ],
}
SHORT_SEP = {"llama": "/"}   # separator in short initializer names (default '.')
LEAF = {"weight": "w", "bias": "b", "running_mean": "mean", "running_var": "var"}

MODELS = collections.OrderedDict([
    ("gpt2", dict(build=GPT2LMHeadModel, inputs=ids_inputs, outputs=["logits"], tables=None)),
    ("llama", dict(build=LlamaForCausalLM, inputs=ids_inputs, outputs=["logits"],
                   tables=llama_tables)),
    ("bert", dict(build=BertModel, inputs=bert_inputs, outputs=["last_hidden_state"],
                  tables=None)),
    ("cnn", dict(build=ResNet, inputs=pixel_inputs, outputs=["logits"], tables=None)),
])


# ----------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------

def model_seed(name):
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


def build(name):
    """The seeded eval-mode torch model and its seeded example inputs."""
    spec = MODELS[name]
    seed = model_seed(name)
    torch.manual_seed(seed)
    model = spec["build"]().eval()
    inputs = spec["inputs"](torch.Generator().manual_seed(seed + 1))
    return model, inputs


@contextlib.contextmanager
def no_initializer_dedup():
    """Switch off torch.onnx's by-value initializer deduplication (torch 1.13
    calls torch._C._jit_pass_onnx_deduplicate_initializers after constant
    folding; in eval mode it merges equal-valued parameters through Identity
    nodes). The anon scheme does the merging itself, afterwards."""
    orig = torch._C._jit_pass_onnx_deduplicate_initializers
    torch._C._jit_pass_onnx_deduplicate_initializers = lambda graph, params, training: params
    try:
        yield
    finally:
        torch._C._jit_pass_onnx_deduplicate_initializers = orig


def export(model, inputs, output_names):
    f = io.BytesIO()
    with no_initializer_dedup(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(inputs.values()), f,
                          opset_version=OPSET, do_constant_folding=True,
                          input_names=list(inputs), output_names=output_names,
                          training=torch.onnx.TrainingMode.EVAL, export_params=True)
    return onnx.load_from_string(f.getvalue())


# ----------------------------------------------------------------------------
# Renaming
# ----------------------------------------------------------------------------

def scope_path(node_name):
    """'/layer1/layer1.0/conv1/Conv' -> 'layer1.0.conv1'. The exporter names
    the children of a called Sequential '<parent>.<i>' (the parent repeated),
    those of an uncalled ModuleList 'h.0' (the list's attribute name)."""
    if not node_name.startswith("/"):
        return ""
    parts = node_name.split("/")[1:-1]
    path = []
    for p in parts:
        if path and p.startswith(path[-1] + "."):
            path[-1] = p
        else:
            path.append(p)
    return ".".join(path)


def rename(model, values, nodes=None):
    """Rename values (initializers, node inputs/outputs, value_info) and nodes
    in place; names missing from the maps are kept."""
    g = model.graph
    for t in g.initializer:
        t.name = values.get(t.name, t.name)
    for n in g.node:
        n.input[:] = [values.get(i, i) for i in n.input]
        n.output[:] = [values.get(o, o) for o in n.output]
        if nodes is not None:
            n.name = nodes.get(n.name, n.name)
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        vi.name = values.get(vi.name, vi.name)


def consumers(model):
    use = collections.defaultdict(list)
    for n in model.graph.node:
        for k, i in enumerate(n.input):
            use[i].append((n, k))
    return use


def name_folded(model, torch_model, tables):
    """Give the initializers that constant folding created (onnx::*) the
    descriptive name of the tensor they hold, see the module docstring."""
    use = consumers(model)
    taken = {t.name for t in model.graph.initializer}
    known = []    # (name, flat array)
    for k, v in torch_model.state_dict().items():
        known.append((k, v.detach().numpy()))
        if v.dim() == 2:
            known.append((k, v.detach().numpy().T))
    for k, v in (tables(torch_model) if tables else {}).items():
        known.append((k, v.detach().numpy()))
    renames, const_count = {}, collections.Counter()
    for t in model.graph.initializer:
        if not t.name.startswith("onnx::"):
            continue
        a = numpy_helper.to_array(t)
        users = use[t.name]
        scopes = [scope_path(n.name) for n, _ in users]
        # A tensor of one repeated value (a zero bias) matches any other such
        # tensor, so it is only named after an entry whose module encloses
        # one of its users.
        flat = a.reshape(-1)
        degenerate = flat.size > 0 and bool(np.all(flat == flat[0]))
        best, best_len = None, -1
        for k, v in known:
            if k in taken or v.dtype != a.dtype or v.size != a.size:
                continue
            if not np.array_equal(v.reshape(-1), flat):
                continue
            mod = k.rsplit(".", 1)[0]
            enclosing = [len(mod) for s in scopes if s == mod or s.startswith(mod + ".")]
            score = max(enclosing) if enclosing else 0
            if degenerate and not enclosing:
                continue
            if score > best_len:
                best, best_len = k, score
        if best is None and users:
            n, idx = users[0]
            if n.op_type in ("Conv", "Gemm", "MatMul") and idx in (1, 2) and scopes[0]:
                best = f"{scopes[0]}.{'weight' if idx == 1 else 'bias'}"
            else:
                common = os.path.commonprefix([s.split(".") for s in scopes])
                scope = ".".join(common) or "graph"
                best = f"{scope}.const{const_count[scope]}"
                const_count[scope] += 1
        if best is None or best in taken:
            raise RuntimeError(f"cannot name folded initializer {t.name}")
        taken.add(best)
        renames[t.name] = best
    rename(model, renames)


def short_path(rules, path):
    """Rewrite a descriptive dotted path with the model's SHORT_RULES; returns
    a list of components."""
    for pat, repl, is_norm in rules:
        m = re.match(pat + r"(?=\.|$)", path)
        if not m:
            continue
        head = repl(m) if callable(repl) else m.expand(repl)
        rest = path[m.end():].lstrip(".")
        tail = []
        if rest:
            parts = rest.split(".")
            leaf = parts[-1]
            if len(parts) == 1 and leaf in LEAF:
                leaf = "g" if (is_norm and leaf == "weight") else LEAF[leaf]
            tail = parts[:-1] + [leaf]
        return [c for c in head.split(".") if c] + tail
    return path.split(".")


def to_short(model, name):
    rules = SHORT_RULES[name]
    sep = SHORT_SEP.get(name, ".")
    values, nodes = {}, {}
    for t in model.graph.initializer:
        values[t.name] = sep.join(short_path(rules, t.name))

    def scoped(s):     # '/transformer/h.0/attn/c_attn/Gemm[_output_0]'
        if not s.startswith("/"):
            return s
        leaf = s.rsplit("/", 1)[1]
        comps = short_path(rules, scope_path(s)) if scope_path(s) else []
        return "/" + "/".join(comps + [leaf])

    for n in model.graph.node:
        nodes[n.name] = scoped(n.name)
        for o in n.output:
            values.setdefault(o, scoped(o))
    rename(model, values, nodes)
    names = [t.name for t in model.graph.initializer]
    assert len(set(names)) == len(names), "short names collide"


def to_anon(model, identity=False):
    """Merge equal initializers, then replace every name (except the graph
    inputs and outputs) torch-1.12 style: values 'onnx::<first user op>_<N>'
    (or '<N>' without user), nodes '<Op>_<k>'."""
    g = model.graph
    first, merged, keep = {}, {}, []
    for t in g.initializer:
        key = (t.data_type, tuple(t.dims), numpy_helper.to_array(t).tobytes())
        if key in first:
            merged[t.name] = first[key]
        else:
            first[key] = t.name
            keep.append(t)
    if identity:
        # torch's own form: the duplicate stays a value, Identity(shared)
        new_nodes = [onnx.helper.make_node("Identity", [src], [dup])
                     for dup, src in merged.items()]
        del g.initializer[:]
        g.initializer.extend(keep)
        nodes = new_nodes + list(g.node)
        del g.node[:]
        g.node.extend(nodes)
    else:
        del g.initializer[:]
        g.initializer.extend(keep)
        rename(model, merged)
    io_names = {v.name for v in list(g.input) + list(g.output)}
    use = consumers(model)
    counter = 100
    values = {}

    def anon(v):
        nonlocal counter
        if v in values or v in io_names or not v:
            return
        counter += 1
        values[v] = f"onnx::{use[v][0][0].op_type}_{counter}" if use[v] else str(counter)

    for t in g.initializer:
        anon(t.name)
    for n in g.node:
        for o in n.output:
            anon(o)
    rename(model, values)
    for k, n in enumerate(g.node):
        n.name = f"{n.op_type}_{k}"
    return merged


def export_all(name, identity=False):
    """-> ({scheme: ModelProto}, torch model, inputs, {dup: kept} merged in anon)."""
    model, inputs = build(name)
    desc = export(model, inputs, MODELS[name]["outputs"])
    name_folded(desc, model, MODELS[name]["tables"])
    out = {"descriptive": desc}
    out["short"] = onnx.ModelProto()
    out["short"].CopyFrom(desc)
    to_short(out["short"], name)
    out["anon"] = onnx.ModelProto()
    out["anon"].CopyFrom(desc)
    merged = to_anon(out["anon"], identity)
    for m in out.values():
        m.doc_string = f"scripts/models/export_naming.py: {name}"
        onnx.checker.check_model(m, full_check=True)
    return out, model, inputs, merged


# ----------------------------------------------------------------------------
# Check
# ----------------------------------------------------------------------------

def structure(model):
    """Everything but the names: per node the op, attributes and, per input,
    graph input / initializer value (by content) / producer index."""
    g = model.graph
    inits = {t.name: (t.data_type, tuple(t.dims), numpy_helper.to_array(t).tobytes())
             for t in g.initializer}
    # Identity(initializer) is just another name for the initializer
    alias = {n.output[0]: n.input[0] for n in g.node
             if n.op_type == "Identity" and n.input[0] in inits}
    producer, sig = {}, []
    for n in g.node:
        if n.output[0] in alias:
            continue
        ins = []
        for i in n.input:
            i = alias.get(i, i)
            if i in inits:
                ins.append(("init", inits[i]))
            elif i in producer:
                ins.append(("node",) + producer[i])
            else:
                ins.append(("input", i))
        attrs = sorted((a.name, a.SerializeToString()) for a in n.attribute)
        for k, o in enumerate(n.output):
            producer[o] = (len(sig), k)
        sig.append((n.op_type, tuple(ins), tuple(attrs)))
    return sig


def check(name, protos, model, inputs):
    """Returns a list of problems (empty: fine)."""
    problems = []
    base = structure(protos["descriptive"])
    for s in SCHEMES[1:]:
        if structure(protos[s]) != base:
            problems.append(f"{name}_{s}: graph differs from {name}_descriptive beyond names")
    try:
        import onnxruntime as ort
    except ImportError:
        print(f"[check] {name}: onnxruntime not installed, outputs not compared", file=sys.stderr)
        return problems
    feeds = {k: v.numpy() for k, v in inputs.items()}
    with torch.no_grad():
        ref = model(*inputs.values()).numpy()
    outs = {}
    for s in SCHEMES:
        so = ort.SessionOptions()
        so.log_severity_level = 3
        sess = ort.InferenceSession(protos[s].SerializeToString(), so,
                                    providers=["CPUExecutionProvider"])
        outs[s] = sess.run(None, feeds)[0]
    err = float(np.max(np.abs(outs["descriptive"] - ref)))
    if outs["descriptive"].shape != ref.shape or not err < TORCH_TOL:
        problems.append(f"{name}_descriptive: onnxruntime vs torch max abs diff {err}")
    for s in SCHEMES[1:]:
        d = float(np.max(np.abs(outs[s] - outs["descriptive"])))
        if not d < SAME_TOL:
            problems.append(f"{name}_{s}: differs from {name}_descriptive by {d}")
    print(f"[check] {name}: 3 schemes agree, ort vs torch {err:.2e}", file=sys.stderr)
    return problems


# ----------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------

def get_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--models", default=",".join(MODELS),
                   help=f"comma separated subset of {','.join(MODELS)}")
    p.add_argument("--check", action="store_true",
                   help="compare the three schemes (graph up to names; onnxruntime outputs)")
    p.add_argument("--anon-identity", action="store_true",
                   help="anon: keep merged duplicates as Identity(shared) nodes, as torch writes them")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    names = [n for n in args.models.split(",") if n]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        get_parser().error(f"unknown model(s) {unknown}; known: {list(MODELS)}")
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    t0 = time.time()
    problems = []
    for name in names:
        protos, model, inputs, merged = export_all(name, args.anon_identity)
        for s in SCHEMES:
            path = os.path.join(args.out, f"{name}_{s}.onnx")
            with open(path, "wb") as f:
                f.write(protos[s].SerializeToString())
            g = protos[s].graph
            print(f"{path}  {os.path.getsize(path)} bytes  {len(g.node)} nodes  "
                  f"{len(g.initializer)} initializers")
        print(f"[export] {name}: anon merged {len(merged)} initializers into "
              f"{len(set(merged.values()))}", file=sys.stderr)
        if args.check:
            problems += check(name, protos, model, inputs)
    for p in problems:
        print(f"FAIL {p}", file=sys.stderr)
    print(f"[export] {len(names) * len(SCHEMES)} files in {time.time() - t0:.1f} s", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
