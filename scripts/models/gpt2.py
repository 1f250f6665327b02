#!/usr/bin/env python3
"""GPT-2 style decoder-only transformer -> ONNX.

input  input_ids int64 [batch, seq]
output logits    <dtype> [batch, seq, vocab]

wte Gather + wpe Gather(position_ids) -> N x pre-LN blocks
  (ln_1 -> causal attention -> residual Add, ln_2 -> fc -> GELU(erf) -> proj -> residual Add)
-> ln_f -> lm_head.  --tied: lm_head = MatMul(h, Transpose(wte, perm=[1,0])).

Example (GPT-3 175B shape, planning only):
  gpt2.py --layers 96 --hidden 12288 --heads 96 --vocab 51200 --seq 2048 --weights none -o gpt3.onnx
"""

from __future__ import annotations

import os
import sys

from onnx import TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import GraphBuilder, attention, causal_mask, gelu, layer_norm, linear, lm_head  # noqa: E402


def get_parser():
    p = common.make_parser(__doc__, lm=True)
    common.add_mask_arg(p)
    m = p.add_argument_group("model")
    m.add_argument("--layers", type=common.positive_int, default=2, help="transformer blocks")
    m.add_argument("--hidden", type=common.positive_int, default=64, help="model width")
    m.add_argument("--heads", type=common.positive_int, default=4, help="attention heads")
    m.add_argument("--vocab", type=common.positive_int, default=256, help="vocabulary size")
    m.add_argument("--ffn", type=common.positive_int, default=None, help="MLP width (default: 4*hidden)")
    m.add_argument("--eps", type=float, default=1e-5, help="LayerNorm epsilon")
    m.add_argument("--tied", action="store_true",
                   help="tie lm_head to wte: MatMul(h, Transpose(wte, perm=[1,0]))")
    return p


def build(args) -> "onnx.ModelProto":  # noqa: F821
    if args.hidden % args.heads:
        raise ValueError("--hidden must be divisible by --heads")
    E, V, S = args.hidden, args.vocab, args.seq
    F = args.ffn or 4 * E
    g = GraphBuilder(args, "gpt2")
    B, Sd = g.dim(args.batch, "batch"), g.dim(S, "seq")
    ids = g.input("input_ids", TensorProto.INT64, [B, Sd])

    wte = g.param("wte.weight", [V, E], "normal", 0.02)
    wpe = g.param("wpe.weight", [S, E], "normal", 0.01)
    tok = g.op("Gather", [wte, ids], "wte", axis=0)
    pos_ids = common.position_ids(g, S, ids)
    pos = g.op("Gather", [wpe, pos_ids], "wpe", axis=0)
    h = g.op("Add", [tok, pos], "embed")
    mask = causal_mask(g, args.mask, S, ids)

    for i in range(args.layers):
        p = f"h.{i}"
        a = layer_norm(g, h, f"{p}.ln_1", E, args.eps)
        a = attention(g, a, f"{p}.attn", E, args.heads, bias=True, mask=mask, scale_op=args.scale_op)
        h = g.op("Add", [h, a], f"{p}.attn_residual")
        m = layer_norm(g, h, f"{p}.ln_2", E, args.eps)
        m = linear(g, m, f"{p}.mlp.fc", E, F)
        m = gelu(g, m, f"{p}.mlp.gelu")
        m = linear(g, m, f"{p}.mlp.proj", F, E)
        h = g.op("Add", [h, m], f"{p}.mlp_residual")

    h = layer_norm(g, h, "ln_f", E, args.eps)
    logits = lm_head(g, h, wte, E, V, args.tied)
    g.output(logits, g.dtype, [B, Sd, V], name="logits")
    return g.model(doc=f"GPT-2 style decoder: layers={args.layers} hidden={E} heads={args.heads} "
                       f"ffn={F} vocab={V} max_seq={S}",
                   metadata={"colossal.model": "gpt2", "colossal.max_seq": S})


def main(argv=None) -> int:
    return common.run_main(build, get_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
