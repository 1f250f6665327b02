#!/usr/bin/env python3
"""BERT style encoder -> ONNX.

inputs  input_ids int64 [batch, seq], attention_mask int64 [batch, seq]
        (+ token_type_ids int64 [batch, seq] with --token-type-input)
outputs last_hidden_state <dtype> [batch, seq, hidden]
        (+ pooler_output <dtype> [batch, hidden] with --pooler)

embeddings = word Gather + position Gather(position_ids) + token-type
             (Gather(token_type_ids) or, without that input, row 0: Gather(table, 0))
           -> embeddings.LayerNorm
N x post-LN blocks:
  x = LayerNorm(x + attention(x));  x = LayerNorm(x + fc2(GELU_erf(fc1(x))))
Additive attention mask (built once, shared by all layers):
  Cast(attention_mask -> dtype) -> Sub(1, m) -> Mul(-10000) -> Unsqueeze([1,2]) => [B,1,1,S]
  added to the scores after scaling.
Pooler: Gather(h, 0, axis=1) -> Gemm(pooler.weight [in,out], pooler.bias) -> Tanh.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from onnx import TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import GraphBuilder, attention, gelu, layer_norm, linear  # noqa: E402


def get_parser():
    p = common.make_parser(__doc__, lm=True)
    m = p.add_argument_group("model")
    m.add_argument("--layers", type=common.positive_int, default=2, help="transformer blocks")
    m.add_argument("--hidden", type=common.positive_int, default=64, help="model width")
    m.add_argument("--heads", type=common.positive_int, default=4, help="attention heads")
    m.add_argument("--vocab", type=common.positive_int, default=256, help="vocabulary size")
    m.add_argument("--ffn", type=common.positive_int, default=None, help="MLP width (default: 4*hidden)")
    m.add_argument("--type-vocab", type=common.positive_int, default=2, help="token type vocabulary")
    m.add_argument("--eps", type=float, default=1e-12, help="LayerNorm epsilon")
    m.add_argument("--token-type-input", action="store_true",
                   help="add a token_type_ids input (otherwise token type 0 everywhere)")
    m.add_argument("--pooler", action="store_true", help="add pooler_output (first token -> Gemm -> Tanh)")
    return p


def build(args) -> "onnx.ModelProto":  # noqa: F821
    if args.hidden % args.heads:
        raise ValueError("--hidden must be divisible by --heads")
    E, V, S = args.hidden, args.vocab, args.seq
    F = args.ffn or 4 * E
    g = GraphBuilder(args, "bert")
    B, Sd = g.dim(args.batch, "batch"), g.dim(S, "seq")
    ids = g.input("input_ids", TensorProto.INT64, [B, Sd])
    am = g.input("attention_mask", TensorProto.INT64, [B, Sd])
    tt = g.input("token_type_ids", TensorProto.INT64, [B, Sd]) if args.token_type_input else None

    wemb = g.param("embeddings.word_embeddings.weight", [V, E], "normal", 0.02)
    pemb = g.param("embeddings.position_embeddings.weight", [S, E], "normal", 0.02)
    temb = g.param("embeddings.token_type_embeddings.weight", [args.type_vocab, E], "normal", 0.02)
    x = g.op("Gather", [wemb, ids], "embeddings.word_embeddings", axis=0)
    pos = g.op("Gather", [pemb, common.position_ids(g, S, ids)], "embeddings.position_embeddings", axis=0)
    x = g.op("Add", [x, pos], "embeddings.add_position")
    if tt is not None:
        t = g.op("Gather", [temb, tt], "embeddings.token_type_embeddings", axis=0)
    else:
        t = g.op("Gather", [temb, g.i64(np.asarray(0, np.int64))], "embeddings.token_type_embeddings",
                 axis=0)
    x = g.op("Add", [x, t], "embeddings.add_token_type")
    x = layer_norm(g, x, "embeddings.LayerNorm", E, args.eps)

    m = g.op("Cast", [am], "extended_mask.cast", to=g.dtype)
    m = g.op("Sub", [g.scalar(1.0), m], "extended_mask.invert")
    m = g.op("Mul", [m, g.scalar(-10000.0)], "extended_mask.scale")
    m = g.unsqueeze(m, [1, 2], "extended_mask")
    mask = ("add", m)

    for i in range(args.layers):
        p = f"encoder.layer.{i}"
        a = attention(g, x, f"{p}.attention", E, args.heads, bias=True, mask=mask, scale_op=args.scale_op)
        x = g.op("Add", [x, a], f"{p}.attention_residual")
        x = layer_norm(g, x, f"{p}.attention_layernorm", E, args.eps)
        f = linear(g, x, f"{p}.mlp.fc1", E, F)
        f = gelu(g, f, f"{p}.mlp.gelu")
        f = linear(g, f, f"{p}.mlp.fc2", F, E)
        x = g.op("Add", [x, f], f"{p}.mlp_residual")
        x = layer_norm(g, x, f"{p}.output_layernorm", E, args.eps)

    x = g.output(x, g.dtype, [B, Sd, E], name="last_hidden_state")
    if args.pooler:
        first = g.op("Gather", [x, g.i64(np.asarray(0, np.int64))], "pooler.first_token", axis=1)
        pooled = linear(g, first, "pooler.dense", E, E, gemm=True)
        pooled = g.op("Tanh", [pooled], "pooler", out="pooler_output")
        g.output(pooled, g.dtype, [B, E])
    return g.model(doc=f"BERT style encoder: layers={args.layers} hidden={E} heads={args.heads} "
                       f"ffn={F} vocab={V} max_seq={S}",
                   metadata={"colossal.model": "bert", "colossal.max_seq": S})


def main(argv=None) -> int:
    return common.run_main(build, get_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
