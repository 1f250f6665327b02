#!/usr/bin/env python3
"""LLaMA style decoder-only transformer -> ONNX.

input  input_ids int64 [batch, seq]
output logits    <dtype> [batch, seq, vocab]

embed_tokens Gather -> N x blocks
  (input_layernorm RMSNorm -> causal attention with rotary q/k, GQA -> residual Add,
   post_attention_layernorm RMSNorm -> SwiGLU MLP -> residual Add)
-> norm (RMSNorm) -> lm_head.  No biases anywhere.

RMSNorm:  Pow(x,2) -> ReduceMean(-1, keepdims) -> Add eps -> Sqrt -> Reciprocal -> Mul x -> Mul weight
SwiGLU:   down_proj( Mul( Mul(g, Sigmoid(g)), up_proj(x) ) ),  g = gate_proj(x)
Rotary:   tables rope.cos / rope.sin [max_seq, D] (HF layout: cat(freqs, freqs)), sliced to
          [S, D] and Unsqueezed to [S,1,D]; applied to q/k in [B,S,H,D] layout:
          x*cos + Concat(Neg(x[..., D/2:]), x[..., :D/2]) * sin
GQA:      k/v [B,S,Hkv,D] -> Unsqueeze(3) -> Expand [1,1,1,H/Hkv,1] -> Reshape [0,0,H,D]

Example (LLaMA-2 70B shape, planning only):
  llama.py --layers 80 --hidden 8192 --heads 64 --kv-heads 8 --ffn 28672 --vocab 32000
           --seq 4096 --weights none -o llama70b.onnx
"""

from __future__ import annotations

import os
import sys

import numpy as np
from onnx import TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import GraphBuilder, attention, causal_mask, linear, lm_head, rms_norm, silu  # noqa: E402


def default_ffn(hidden: int, multiple_of: int = 256) -> int:
    """LLaMA rule: multiple_of * ceil(int(8*hidden/3) / multiple_of) (4096 -> 11008)."""
    f = int(8 * hidden / 3)
    return multiple_of * ((f + multiple_of - 1) // multiple_of)


def get_parser():
    p = common.make_parser(__doc__, lm=True)
    common.add_mask_arg(p)
    m = p.add_argument_group("model")
    m.add_argument("--layers", type=common.positive_int, default=2, help="transformer blocks")
    m.add_argument("--hidden", type=common.positive_int, default=64, help="model width")
    m.add_argument("--heads", type=common.positive_int, default=4, help="attention heads")
    m.add_argument("--kv-heads", type=common.positive_int, default=None,
                   help="key/value heads for GQA (default: --heads)")
    m.add_argument("--ffn", type=common.positive_int, default=None,
                   help="MLP width (default: 256*ceil(int(8*hidden/3)/256))")
    m.add_argument("--vocab", type=common.positive_int, default=256, help="vocabulary size")
    m.add_argument("--eps", type=float, default=1e-6, help="RMSNorm epsilon")
    m.add_argument("--rope-theta", type=float, default=10000.0, help="rotary base")
    m.add_argument("--tied", action="store_true",
                   help="tie lm_head to embed_tokens: MatMul(h, Transpose(embed_tokens, perm=[1,0]))")
    return p


def rope_tables(g: GraphBuilder, max_seq: int, d: int, theta: float, ref_input: str):
    """cos/sin [max_seq, D] initializers -> (sliced to [S, D]) -> Unsqueeze -> [S, 1, D]."""

    def table(fn):
        def make():
            inv = 1.0 / (theta ** (np.arange(0, d, 2, dtype=np.float64) / d))
            f = np.outer(np.arange(max_seq, dtype=np.float64), inv)
            return fn(np.concatenate([f, f], axis=-1)).astype(np.float32)
        return make

    doc = (f"colossal.table=rope_{{}}; shape [{max_seq},{d}]; theta={theta:g}; "
           f"value[p,i] = {{}}(p * theta^(-2*(i mod {d // 2})/{d}))")
    cos = g.tensor("rope.cos", [max_seq, d], g.dtype, table(np.cos), doc=doc.format("cos", "cos"))
    sin = g.tensor("rope.sin", [max_seq, d], g.dtype, table(np.sin), doc=doc.format("sin", "sin"))
    if not g.static:
        s = g.dim_of(ref_input, 1, "seq_len")
        cos = g.slice(cos, [0], s, [0], "rope.cos.slice")
        sin = g.slice(sin, [0], s, [0], "rope.sin.slice")
    cos = g.unsqueeze(cos, [1], "rope.cos.unsqueeze")
    sin = g.unsqueeze(sin, [1], "rope.sin.unsqueeze")
    return cos, sin


def build(args) -> "onnx.ModelProto":  # noqa: F821
    if args.hidden % args.heads:
        raise ValueError("--hidden must be divisible by --heads")
    E, V, S, H = args.hidden, args.vocab, args.seq, args.heads
    KV = args.kv_heads or H
    if H % KV:
        raise ValueError("--heads must be a multiple of --kv-heads")
    D = E // H
    if D % 2:
        raise ValueError("head dim (hidden/heads) must be even for rotary embeddings")
    F = args.ffn or default_ffn(E)
    g = GraphBuilder(args, "llama")
    B, Sd = g.dim(args.batch, "batch"), g.dim(S, "seq")
    ids = g.input("input_ids", TensorProto.INT64, [B, Sd])

    emb = g.param("embed_tokens.weight", [V, E], "normal", 0.02)
    h = g.op("Gather", [emb, ids], "embed_tokens", axis=0)
    mask = causal_mask(g, args.mask, S, ids)
    cos, sin = rope_tables(g, S, D, args.rope_theta, ids)
    half = D // 2

    def rope(x, name):
        x1 = g.slice(x, [0], [half], [3], f"{name}.x1")
        x2 = g.slice(x, [half], [D], [3], f"{name}.x2")
        n2 = g.op("Neg", [x2], f"{name}.neg")
        rot = g.op("Concat", [n2, x1], f"{name}.rotate_half", axis=-1)
        a = g.op("Mul", [x, cos], f"{name}.mul_cos")
        b = g.op("Mul", [rot, sin], f"{name}.mul_sin")
        return g.op("Add", [a, b], name)

    for i in range(args.layers):
        p = f"layers.{i}"
        a = rms_norm(g, h, f"{p}.input_layernorm", E, args.eps)
        a = attention(g, a, f"{p}.self_attn", E, H, kv_heads=KV, bias=False, mask=mask,
                      rope=rope, scale_op=args.scale_op)
        h = g.op("Add", [h, a], f"{p}.attn_residual")
        m = rms_norm(g, h, f"{p}.post_attention_layernorm", E, args.eps)
        gate = linear(g, m, f"{p}.mlp.gate_proj", E, F, bias=False)
        up = linear(g, m, f"{p}.mlp.up_proj", E, F, bias=False)
        act = silu(g, gate, f"{p}.mlp.silu")
        m = g.op("Mul", [act, up], f"{p}.mlp.gate_mul")
        m = linear(g, m, f"{p}.mlp.down_proj", F, E, bias=False)
        h = g.op("Add", [h, m], f"{p}.mlp_residual")

    h = rms_norm(g, h, "norm", E, args.eps)
    logits = lm_head(g, h, emb, E, V, args.tied)
    g.output(logits, g.dtype, [B, Sd, V], name="logits")
    return g.model(doc=f"LLaMA style decoder: layers={args.layers} hidden={E} heads={H} "
                       f"kv_heads={KV} ffn={F} vocab={V} max_seq={S}",
                   metadata={"colossal.model": "llama", "colossal.max_seq": S})


def main(argv=None) -> int:
    return common.run_main(build, get_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
