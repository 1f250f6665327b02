#!/usr/bin/env python3
"""Self-test for the ONNX model generators in this directory.

For every generator (and a set of flag variants) it
  * builds a small model with real weights, runs onnx.checker (full_check),
    runs onnxruntime on random inputs at two (batch, seq) sizes through the
    symbolic dims, checks output shapes / finiteness and compares fp32 outputs
    against an independent numpy/torch reference implementation;
  * checks causality (decoders) and padding invariance (BERT);
  * builds it with --weights external (data file, 64-byte aligned offsets,
    outputs identical to real) and --weights none (no data file, small proto,
    external stubs with no data, checker passes);
  * generates GPT-3 175B / LLaMA-70B shapes with --weights none and checks
    they are fast and small.
Exit status is non-zero on any failure.  Usage: check_models.py [-v] [-k FILTER]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import traceback

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert  # noqa: E402
import common  # noqa: E402
import gpt2  # noqa: E402
import llama  # noqa: E402
import mlp  # noqa: E402
import resnet  # noqa: E402

MODULES = {"mlp": mlp, "gpt2": gpt2, "llama": llama, "bert": bert, "resnet": resnet}
ALLOWED_OPS = set("""ConstantOfShape Trilu MatMul Gemm Add Sub Mul Div Pow Sqrt Reciprocal Exp Log Tanh Erf Neg Relu
Sigmoid Softmax LayerNormalization Gather Reshape Transpose Slice Concat Split Where Expand Cast
ReduceSum ReduceMean ReduceMax Conv MaxPool AveragePool GlobalAveragePool BatchNormalization
Constant Flatten Unsqueeze Squeeze Equal Shape Identity""".split())

VERBOSE = False


class CheckError(AssertionError):
    pass


def expect(cond, msg):
    if not cond:
        raise CheckError(msg)


# ---------------------------------------------------------------------------
# numpy references
# ---------------------------------------------------------------------------

_erf = np.vectorize(math.erf, otypes=[np.float64])


def r_linear(W, name, x, bias=True):
    y = x @ W[name + ".weight"]
    return y + W[name + ".bias"] if bias else y


def r_ln(W, name, x, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * W[name + ".weight"] + W[name + ".bias"]


def r_rms(W, name, x, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * W[name + ".weight"]


def r_gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def r_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def r_attention(W, name, x, heads, kv_heads, bias, causal=False, add_mask=None, rope=None):
    B, S, E = x.shape
    D = E // heads
    q = r_linear(W, name + ".q_proj", x, bias).reshape(B, S, heads, D)
    k = r_linear(W, name + ".k_proj", x, bias).reshape(B, S, kv_heads, D)
    v = r_linear(W, name + ".v_proj", x, bias).reshape(B, S, kv_heads, D)
    if rope is not None:
        q, k = rope(q), rope(k)
    k = np.repeat(k, heads // kv_heads, axis=2)
    v = np.repeat(v, heads // kv_heads, axis=2)
    q, k, v = (t.transpose(0, 2, 1, 3) for t in (q, k, v))
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(D)
    if causal:
        s = np.where(np.tril(np.ones((S, S), bool)), s, -np.inf)
    if add_mask is not None:
        s = s + add_mask
    c = (r_softmax(s) @ v).transpose(0, 2, 1, 3).reshape(B, S, heads * D)
    return r_linear(W, name + ".o_proj", c, bias)


def ref_gpt2(W, a, feeds):
    ids = feeds["input_ids"]
    S = ids.shape[1]
    h = W["wte.weight"][ids] + W["wpe.weight"][:S][None]
    for i in range(a.layers):
        p = f"h.{i}"
        h = h + r_attention(W, p + ".attn", r_ln(W, p + ".ln_1", h, a.eps), a.heads, a.heads, True, causal=True)
        m = r_linear(W, p + ".mlp.fc", r_ln(W, p + ".ln_2", h, a.eps))
        h = h + r_linear(W, p + ".mlp.proj", r_gelu(m))
    h = r_ln(W, "ln_f", h, a.eps)
    lm = W["wte.weight"].T if a.tied else W["lm_head.weight"]
    return {"logits": h @ lm}


def ref_llama(W, a, feeds):
    ids = feeds["input_ids"]
    S = ids.shape[1]
    H, KV = a.heads, a.kv_heads or a.heads
    D = a.hidden // H
    inv = a.rope_theta ** (-np.arange(0, D, 2) / D)
    ang = np.arange(S)[:, None] * inv[None]          # [S, D/2]
    c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]  # [S, 1, D/2]

    def rope(x):  # x [B,S,h,D]; rotate pairs (i, i+D/2)
        x1, x2 = x[..., :D // 2], x[..., D // 2:]
        return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)

    h = W["embed_tokens.weight"][ids]
    for i in range(a.layers):
        p = f"layers.{i}"
        x = r_rms(W, p + ".input_layernorm", h, a.eps)
        h = h + r_attention(W, p + ".self_attn", x, H, KV, False, causal=True, rope=rope)
        x = r_rms(W, p + ".post_attention_layernorm", h, a.eps)
        gt = r_linear(W, p + ".mlp.gate_proj", x, False)
        up = r_linear(W, p + ".mlp.up_proj", x, False)
        h = h + r_linear(W, p + ".mlp.down_proj", gt / (1 + np.exp(-gt)) * up, False)
    h = r_rms(W, "norm", h, a.eps)
    lm = W["embed_tokens.weight"].T if a.tied else W["lm_head.weight"]
    return {"logits": h @ lm}


def ref_bert(W, a, feeds):
    ids, am = feeds["input_ids"], feeds["attention_mask"]
    S = ids.shape[1]
    tt = feeds.get("token_type_ids", np.zeros_like(ids))
    x = (W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:S][None]
         + W["embeddings.token_type_embeddings.weight"][tt])
    x = r_ln(W, "embeddings.LayerNorm", x, a.eps)
    mask = ((1.0 - am) * -10000.0)[:, None, None, :]
    for i in range(a.layers):
        p = f"encoder.layer.{i}"
        x = r_ln(W, p + ".attention_layernorm",
                 x + r_attention(W, p + ".attention", x, a.heads, a.heads, True, add_mask=mask), a.eps)
        f = r_linear(W, p + ".mlp.fc2", r_gelu(r_linear(W, p + ".mlp.fc1", x)))
        x = r_ln(W, p + ".output_layernorm", x + f, a.eps)
    out = {"last_hidden_state": x}
    if a.pooler:
        out["pooler_output"] = np.tanh(r_linear(W, "pooler.dense", x[:, 0]))
    return out


def ref_mlp(W, a, feeds):
    x = feeds["x"]
    for i in range(a.layers):
        x = r_linear(W, f"layers.{i}", x)
        if i + 1 < a.layers:
            x = np.maximum(x, 0)
    return {"y": x}


def ref_resnet(W, a, feeds):
    import torch
    import torch.nn.functional as F

    T = {k: torch.from_numpy(np.ascontiguousarray(v, np.float64)) for k, v in W.items()}

    def bn(x, n):
        return F.batch_norm(x, T[n + ".running_mean"], T[n + ".running_var"], T[n + ".weight"],
                            T[n + ".bias"], False, 0.0, a.eps)

    def conv(x, n, stride):
        w = T[n + ".weight"]
        return F.conv2d(x, w, stride=stride, padding=w.shape[-1] // 2)

    x = torch.from_numpy(feeds["pixels"].astype(np.float64))
    x = F.max_pool2d(F.relu(bn(conv(x, "conv1", 2), "bn1")), 3, 2, 1)
    cin = a.width
    for si, n in enumerate(a.blocks):
        cout = a.width * 2 ** si
        for bi in range(n):
            p = f"layer{si + 1}.{bi}"
            st = 2 if (si > 0 and bi == 0) else 1
            y = F.relu(bn(conv(x, p + ".conv1", st), p + ".bn1"))
            y = bn(conv(y, p + ".conv2", 1), p + ".bn2")
            if st != 1 or cin != cout:
                x = bn(conv(x, p + ".downsample.conv", st), p + ".downsample.bn")
            x = F.relu(y + x)
            cin = cout
    x = x.mean(dim=(2, 3))
    x = x @ T["fc.weight"] + T["fc.bias"]
    return {"logits": x.numpy()}


REFS = {"gpt2": ref_gpt2, "llama": ref_llama, "bert": ref_bert, "mlp": ref_mlp, "resnet": ref_resnet}


# ---------------------------------------------------------------------------
# inputs / expected shapes
# ---------------------------------------------------------------------------

def make_feeds(kind, a, batch, seq, rng):
    np_dt = {"float32": np.float32, "float16": np.float16, "bfloat16": np.float32}[a.dtype]
    if kind in ("gpt2", "llama"):
        return {"input_ids": rng.integers(0, a.vocab, (batch, seq), dtype=np.int64)}
    if kind == "bert":
        am = np.ones((batch, seq), np.int64)
        for b in range(batch):  # row b has b padding tokens at the end (keep >= 1 real token)
            am[b, max(1, seq - b):] = 0
        f = {"input_ids": rng.integers(0, a.vocab, (batch, seq), dtype=np.int64), "attention_mask": am}
        if a.token_type_input:
            f["token_type_ids"] = rng.integers(0, a.type_vocab, (batch, seq), dtype=np.int64)
        return f
    if kind == "mlp":
        return {"x": rng.standard_normal((batch, a.d_in)).astype(np_dt)}
    if kind == "resnet":
        return {"pixels": rng.standard_normal((batch, 3, a.image, a.image)).astype(np_dt)}
    raise ValueError(kind)


def expected_shapes(kind, a, batch, seq):
    if kind in ("gpt2", "llama"):
        return {"logits": (batch, seq, a.vocab)}
    if kind == "bert":
        s = {"last_hidden_state": (batch, seq, a.hidden)}
        if a.pooler:
            s["pooler_output"] = (batch, a.hidden)
        return s
    if kind == "mlp":
        return {"y": (batch, a.d_out)}
    return {"logits": (batch, a.classes)}


# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------

def session(path):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 2
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def run(sess, feeds):
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def check_structure(model, a):
    ops = {n.op_type for n in model.graph.node}
    expect(ops <= ALLOWED_OPS, f"disallowed ops: {sorted(ops - ALLOWED_OPS)}")
    if a.opset < 17:
        expect("LayerNormalization" not in ops, "LayerNormalization used below opset 17")
    expect(all(n.name for n in model.graph.node), "unnamed node")
    expect(len({n.name for n in model.graph.node}) == len(model.graph.node), "duplicate node names")
    for t in model.graph.initializer:
        expect(all(d > 0 for d in t.dims) or not t.dims, f"initializer {t.name} has non-static dims")
    if not getattr(a, "static", False):
        for i in model.graph.input:
            d0 = i.type.tensor_type.shape.dim[0]
            expect(d0.dim_param == "batch", f"input {i.name} dim 0 is not symbolic 'batch'")


def sizes_for(kind, a):
    if not hasattr(a, "seq"):  # mlp / resnet: batch only
        return [(a.batch, None)] if a.static else [(2, None), (3, None)]
    if a.static:
        return [(a.batch, a.seq)]
    return [(2, a.seq // 4 + 1), (3, a.seq)]


def close(got, ref, tol):
    ref = np.asarray(ref, np.float64)
    err = np.abs(got.astype(np.float64) - ref).max()
    scale = max(1.0, np.abs(ref).max())
    return err <= tol * scale, err


def check_case(kind, argv, tmp, label):
    mod = MODULES[kind]
    path = os.path.join(tmp, label + ".onnx")
    a = mod.get_parser().parse_args(argv + ["-o", path])
    model = mod.build(a)
    check_structure(model, a)
    common.save_model(model, path, a.weights)
    onnx.checker.check_model(path, full_check=True)
    if a.dtype == "bfloat16":
        return "checker only (bfloat16)"

    sess = session(path)
    rng = np.random.default_rng(1234)
    W = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer
         if t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)}
    notes = []
    for batch, seq in sizes_for(kind, a):
        feeds = make_feeds(kind, a, batch, seq, rng)
        out = run(sess, feeds)
        exp = expected_shapes(kind, a, batch, seq)
        expect(set(out) == set(exp), f"outputs {sorted(out)} != {sorted(exp)}")
        for k, shp in exp.items():
            expect(out[k].shape == shp, f"{k}: shape {out[k].shape} != {shp} (batch={batch} seq={seq})")
            expect(np.isfinite(out[k]).all(), f"{k}: non-finite values (batch={batch} seq={seq})")
            expect(float(np.abs(out[k]).max()) > 0, f"{k}: all zeros")
        tol = 1e-4 if a.dtype == "float32" else 3e-2
        ref = REFS[kind](W, a, feeds)
        for k in exp:
            ok, err = close(out[k], ref[k], tol)
            expect(ok, f"{k}: mismatch vs reference at batch={batch} seq={seq}: max abs err {err:.3g}")
        notes.append(f"b{batch}" + (f"s{seq}" if seq else ""))

        if kind in ("gpt2", "llama") and seq and seq > 1:  # causality: last token must not affect earlier logits
            f2 = dict(feeds)
            f2["input_ids"] = feeds["input_ids"].copy()
            f2["input_ids"][:, -1] = (f2["input_ids"][:, -1] + 1) % a.vocab
            o2 = run(sess, f2)["logits"]
            expect(np.allclose(o2[:, :-1], out["logits"][:, :-1], atol=1e-5 if tol < 1e-3 else 1e-2),
                   "causality violated: changing the last token changed earlier logits")
            expect(not np.allclose(o2[:, -1], out["logits"][:, -1]), "last token has no effect")
        if kind == "bert" and batch > 1 and seq and seq > 1:  # padded tokens must not affect real ones
            f2 = dict(feeds)
            f2["input_ids"] = np.where(feeds["attention_mask"] == 0, (feeds["input_ids"] + 7) % a.vocab,
                                       feeds["input_ids"])
            o2 = run(sess, f2)["last_hidden_state"]
            keep = feeds["attention_mask"].astype(bool)
            expect(np.allclose(o2[keep], out["last_hidden_state"][keep], atol=1e-4 if tol < 1e-3 else 5e-2),
                   "padding tokens leak into unmasked outputs")

    # --weights external: same outputs, aligned data file
    ext = os.path.join(tmp, label + ".ext.onnx")
    a_ext = mod.get_parser().parse_args(argv + ["-o", ext, "--weights", "external"])
    m_ext = mod.build(a_ext)
    common.save_model(m_ext, ext, "external")
    data = os.path.join(tmp, label + ".ext.data")
    expect(os.path.exists(data), "external data file missing")
    check_external_entries(onnx.load(ext, load_external_data=False), label + ".ext.data", os.path.getsize(data))
    onnx.checker.check_model(ext, full_check=True)
    feeds = make_feeds(kind, a, *sizes_for(kind, a)[0], np.random.default_rng(7))
    o_real, o_ext = run(sess, feeds), run(session(ext), feeds)
    for k in o_real:
        expect(np.array_equal(o_real[k], o_ext[k]), f"external-weight output {k} differs from real")
    expect(os.path.getsize(ext) < 0.5 * os.path.getsize(path) or os.path.getsize(path) < 64 * 1024,
           "external model file not smaller than the real one")
    notes.append("ext")

    # --weights none: no data file, small, checker passes
    non = os.path.join(tmp, label + ".none.onnx")
    a_non = mod.get_parser().parse_args(argv + ["-o", non, "--weights", "none"])
    m_non = mod.build(a_non)
    common.save_model(m_non, non, "none")
    expect(not os.path.exists(os.path.join(tmp, label + ".none.data")), "--weights none wrote a data file")
    check_external_entries(m_non, label + ".none.data", None)
    common.check_model_without_data(m_non)
    # identical structure to external
    expect([n.SerializeToString() for n in m_non.graph.node] == [n.SerializeToString() for n in m_ext.graph.node],
           "--weights none graph differs from --weights external")
    mx = onnx.load(ext, load_external_data=False)
    for t1, t2 in zip(m_non.graph.initializer, mx.graph.initializer):
        e1 = {e.key: e.value for e in t1.external_data}
        e2 = {e.key: e.value for e in t2.external_data}
        if "location" in e2:
            e2["location"] = e1.get("location")
        expect(t1.name == t2.name and list(t1.dims) == list(t2.dims) and e1 == e2,
               f"none/external layout differs for {t1.name}")
    expect(os.path.getsize(non) < 64 * 1024, f"--weights none file too large: {os.path.getsize(non)} B")
    notes.append(f"none {os.path.getsize(non) // 1024} KiB")
    return ", ".join(notes)


def check_external_entries(model, location, data_size):
    n_ext = 0
    for t in model.graph.initializer:
        n = common.numel(t.dims)
        if n < common.INLINE_MAX_ELEMS:
            expect(t.data_location != TensorProto.EXTERNAL, f"tiny tensor {t.name} stored externally")
            continue
        expect(t.data_location == TensorProto.EXTERNAL, f"{t.name} not external")
        expect(not t.HasField("raw_data"), f"{t.name} external but has raw_data")
        e = {x.key: x.value for x in t.external_data}
        expect(e.get("location") == location, f"{t.name}: location {e.get('location')} != {location}")
        off, ln = int(e["offset"]), int(e["length"])
        expect(off % common.EXTERNAL_ALIGN == 0, f"{t.name}: offset {off} not 64-byte aligned")
        expect(ln == n * common.itemsize(t.data_type), f"{t.name}: length {ln} wrong")
        if data_size is not None:
            expect(off + ln <= data_size, f"{t.name}: beyond end of data file")
        n_ext += 1
    expect(n_ext > 0, "no external tensors")


def check_planning(kind, argv, tmp, label, max_s=10.0, max_kib=1024):
    mod = MODULES[kind]
    path = os.path.join(tmp, label + ".onnx")
    a = mod.get_parser().parse_args(argv + ["-o", path, "--weights", "none"])
    t0 = time.time()
    model = mod.build(a)
    common.save_model(model, path, "none")
    dt = time.time() - t0
    size = os.path.getsize(path)
    expect(dt < max_s, f"generation took {dt:.1f}s")
    expect(size < max_kib * 1024, f"file is {size / 1024:.0f} KiB")
    expect(not os.path.exists(path[:-5] + ".data"), "data file written")
    check_structure(model, a)
    check_external_entries(model, label + ".data", None)
    common.check_model_without_data(model, full_check=True)
    return f"{common.count_parameters(model) / 1e9:.1f}B params, {dt:.2f}s, {size // 1024} KiB"


SMALL_RESNET = ["--blocks", "1,1", "--width", "8", "--image", "32", "--classes", "10"]
CASES = [
    ("mlp", "mlp", []),
    ("mlp_matmul_op13", "mlp", ["--linear", "matmul", "--opset", "13", "--layers", "4"]),
    ("mlp_fp16", "mlp", ["--dtype", "float16"]),
    ("gpt2", "gpt2", []),
    ("gpt2_op13_where_div", "gpt2", ["--opset", "13", "--mask", "where", "--scale-op", "div"]),
    ("gpt2_op16_tied", "gpt2", ["--opset", "16", "--tied", "--layers", "1"]),
    ("gpt2_op18", "gpt2", ["--opset", "18", "--layers", "1"]),
    ("gpt2_op21_static", "gpt2", ["--opset", "21", "--static", "--batch", "2", "--seq", "16", "--layers", "1"]),
    ("gpt2_fp16", "gpt2", ["--dtype", "float16", "--layers", "1"]),
    ("gpt2_bf16", "gpt2", ["--dtype", "bfloat16", "--layers", "1"]),
    ("llama", "llama", []),
    ("llama_gqa_op18_where", "llama", ["--kv-heads", "2", "--opset", "18", "--mask", "where", "--tied"]),
    ("llama_mqa_op13_div", "llama", ["--heads", "8", "--kv-heads", "1", "--opset", "13",
                                     "--scale-op", "div", "--layers", "1", "--ffn", "96"]),
    ("llama_static", "llama", ["--static", "--batch", "3", "--seq", "12", "--kv-heads", "2", "--layers", "1"]),
    ("llama_fp16", "llama", ["--dtype", "float16", "--kv-heads", "2", "--layers", "1"]),
    ("bert", "bert", []),
    ("bert_pooler_tt_op16", "bert", ["--pooler", "--token-type-input", "--opset", "16", "--scale-op", "div"]),
    ("bert_op21_pooler", "bert", ["--opset", "21", "--pooler", "--layers", "1"]),
    ("bert_static", "bert", ["--static", "--batch", "3", "--seq", "8", "--layers", "1"]),
    ("resnet", "resnet", SMALL_RESNET),
    ("resnet_op13_3stages", "resnet", ["--blocks", "1,2,1", "--width", "8", "--image", "32",
                                       "--opset", "13", "--classes", "5"]),
    ("resnet_fp16_static", "resnet", SMALL_RESNET + ["--dtype", "float16", "--static", "--batch", "2"]),
]
PLANNING = [
    ("gpt3_175b", "gpt2", ["--layers", "96", "--hidden", "12288", "--heads", "96", "--vocab", "51200",
                           "--seq", "2048"]),
    ("llama2_70b", "llama", ["--layers", "80", "--hidden", "8192", "--heads", "64", "--kv-heads", "8",
                             "--ffn", "28672", "--vocab", "32000", "--seq", "4096"]),
    ("bert_large", "bert", ["--layers", "24", "--hidden", "1024", "--heads", "16", "--vocab", "30522",
                            "--seq", "512", "--pooler"]),
    ("resnet18", "resnet", []),
]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-v", "--verbose", action="store_true", help="print tracebacks")
    p.add_argument("-k", dest="filter", default="", help="only cases whose label contains this")
    args = p.parse_args(argv)
    failures = 0
    t_start = time.time()
    with tempfile.TemporaryDirectory(prefix="colossal-models-") as tmp:
        jobs = [(l, k, a, check_case) for l, k, a in CASES] + \
               [(l, k, a, check_planning) for l, k, a in PLANNING]
        for label, kind, cargs, fn in jobs:
            if args.filter and args.filter not in label:
                continue
            t0 = time.time()
            try:
                note = fn(kind, cargs, tmp, label)
                print(f"PASS {label:28s} {time.time() - t0:5.2f}s  {note}")
            except Exception as e:  # noqa: BLE001
                failures += 1
                print(f"FAIL {label:28s} {time.time() - t0:5.2f}s  {type(e).__name__}: {e}")
                if args.verbose:
                    traceback.print_exc()
    print(f"{'FAILED' if failures else 'OK'}: {failures} failure(s), {time.time() - t_start:.1f}s total")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
