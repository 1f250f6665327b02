#!/usr/bin/env python3
"""Export standard torch modules to ONNX as importer test models for Colossal.

Usage:
    .venv/bin/python scripts/models/export_torch.py --out test/models/torch
    .venv/bin/python scripts/models/export_torch.py --out /tmp/x --only encoder,gpt

For every (model, opset) it writes

  <name>_opset<N>.onnx        "planning-only" form: every initializer with more
                              than 64 elements is marked as external data in
                              <name>_opset<N>.data, which is NOT written (only
                              dims/dtype survive).  Load it with
                              onnx.load(path, load_external_data=False).

and for a few small models additionally

  <name>_opset<N>_real.onnx   real weights embedded, plus
  <name>_opset<N>_real/test_data_set_K/{input_0.pb,output_0.pb}
                              ONNX-backend-test style TensorProto files; the
                              outputs are computed by torch and checked against
                              onnxruntime (rtol 1e-4, atol 1e-5).

Verification done for every export (before anything is written):
  * the full-weight model runs in onnxruntime at the traced shape and at a
    second shape (different batch / seq) and matches torch there;
  * the planning-only proto passes onnx.checker.check_model(full_check=True)
    and loads + runs in onnxruntime when a zero-filled (sparse) .data file of
    the recorded length is placed next to it in a temp dir (output shapes must
    match torch's).

Everything is seeded; reruns produce byte-identical files.
A manifest.json (ops, shape-arithmetic ops, I/O signatures) and README.md are
(re)generated in the output directory.
"""

import argparse
import collections
import copy
import hashlib
import io
import json
import math
import os
import sys
import tempfile
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from onnx import TensorProto, numpy_helper
from torchvision.models.resnet import BasicBlock, ResNet

EXTERNAL_THRESHOLD = 64  # initializers with more elements become external
RTOL, ATOL = 1e-4, 1e-5

D_MODEL, NHEAD, D_FF, N_LAYERS = 64, 4, 128, 2
VOCAB, BLOCK_SIZE = 128, 32


# ----------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------

def diversify(model: nn.Module) -> nn.Module:
    """Give every parameter/buffer distinct, non-trivial values.

    nn.TransformerEncoder deep-copies its layer, so without this all layers
    would be identical and the exporter would dedupe them into Identity nodes.
    LayerNorm/BatchNorm affine params and BN running stats are also made
    non-trivial so that numerics are meaningful.  Must be called under a seed.
    """
    for m in model.modules():
        if isinstance(m, nn.MultiheadAttention):
            m._reset_parameters()
            if m.in_proj_bias is not None:
                nn.init.normal_(m.in_proj_bias, 0.0, 0.02)
        elif isinstance(m, nn.Linear):
            m.reset_parameters()
            if m.bias is not None:
                nn.init.normal_(m.bias, 0.0, 0.02)
        elif isinstance(m, nn.LayerNorm):
            nn.init.normal_(m.weight, 1.0, 0.1)
            nn.init.normal_(m.bias, 0.0, 0.1)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.1)
            nn.init.normal_(m.bias, 0.0, 0.1)
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model


def make_encoder(norm_first=False):
    layer = nn.TransformerEncoderLayer(D_MODEL, NHEAD, D_FF, dropout=0.0,
                                       batch_first=True, norm_first=norm_first)
    final_norm = nn.LayerNorm(D_MODEL) if norm_first else None
    return nn.TransformerEncoder(layer, N_LAYERS, norm=final_norm)


class CausalEncoder(nn.Module):
    """nn.TransformerEncoder called with mask=generate_square_subsequent_mask.

    The mask is generated once for BLOCK_SIZE and registered as a buffer (an
    initializer in the export); forward slices it to [:T, :T], so `seq` stays
    dynamic.
    """

    def __init__(self):
        super().__init__()
        self.encoder = make_encoder()
        self.register_buffer(
            "causal_mask", nn.Transformer.generate_square_subsequent_mask(BLOCK_SIZE))

    def forward(self, src):
        t = src.size(1)
        return self.encoder(src, mask=self.causal_mask[:t, :t])


class CausalEncoderGen(nn.Module):
    """Same, but the mask is generated inside forward from the dynamic seq
    length (torch.full + torch.triu -> ConstantOfShape + Trilu; opset >= 14)."""

    def __init__(self):
        super().__init__()
        self.encoder = make_encoder()

    def forward(self, src):
        mask = nn.Transformer.generate_square_subsequent_mask(src.size(1))
        return self.encoder(src, mask=mask)


class CausalSelfAttention(nn.Module):
    """nanoGPT-style explicit causal self-attention."""

    def __init__(self, d, n_head, block_size):
        super().__init__()
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.n_head = n_head
        self.register_buffer(
            "bias", torch.tril(torch.ones(block_size, block_size)).view(1, 1, block_size, block_size))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MHASelfAttention(nn.Module):
    """Causal self-attention through nn.MultiheadAttention(attn_mask=...)."""

    def __init__(self, d, n_head, block_size):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, n_head, dropout=0.0, batch_first=True)
        self.register_buffer(
            "mask", nn.Transformer.generate_square_subsequent_mask(block_size))

    def forward(self, x):
        T = x.size(1)
        y, _ = self.attn(x, x, x, attn_mask=self.mask[:T, :T], need_weights=False)
        return y


class Block(nn.Module):
    def __init__(self, d, n_head, block_size, attn_cls, gelu_approx):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = attn_cls(d, n_head, block_size)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(approximate=gelu_approx),
                                 nn.Linear(4 * d, d))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(nn.Module):
    """Pre-norm causal decoder stack (GPT-2 / nanoGPT shape), untied lm_head."""

    def __init__(self, attn_cls=CausalSelfAttention, gelu_approx="none",
                 vocab=VOCAB, d=D_MODEL, n_head=NHEAD, n_layer=N_LAYERS,
                 block_size=BLOCK_SIZE):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(block_size, d)
        self.h = nn.ModuleList(
            [Block(d, n_head, block_size, attn_cls, gelu_approx) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, input_ids):
        t = input_ids.size(1)
        pos = torch.arange(0, t, dtype=torch.long, device=input_ids.device)
        x = self.wte(input_ids) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


class TinyResNet(ResNet):
    """torchvision ResNet(BasicBlock, [1, 1, 1, 1]) with every width divided by
    8 (stem 8, stages 8/16/32/64).  torchvision's own BasicBlock/forward are
    used; only the planes passed to _make_layer and the stem/fc are narrowed,
    because the full-width model (~4.9M params) is too big to commit with real
    weights."""

    WIDTH_DIV = 8

    def __init__(self, num_classes=10):
        super().__init__(BasicBlock, [1, 1, 1, 1], num_classes=num_classes)
        c = 64 // self.WIDTH_DIV
        self.conv1 = nn.Conv2d(3, c, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.fc = nn.Linear(512 // self.WIDTH_DIV * BasicBlock.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        if planes == 64:  # first stage: stem width is narrowed too
            self.inplanes = 64 // self.WIDTH_DIV
        return super()._make_layer(block, planes // self.WIDTH_DIV, blocks, stride, dilate)


# ----------------------------------------------------------------------------
# Spec table
# ----------------------------------------------------------------------------

def seq_inputs(batch, seq, gen):
    return {"src": torch.randn(batch, seq, D_MODEL, generator=gen)}


def ids_inputs(batch, seq, gen):
    return {"input_ids": torch.randint(0, VOCAB, (batch, seq), generator=gen, dtype=torch.long)}


def img_inputs(batch, _unused, gen):
    return {"input": torch.randn(batch, 3, 64, 64, generator=gen)}


SEQ_AXES = {0: "batch", 1: "seq"}
BATCH_AXES = {0: "batch"}

# name: (builder, input maker, input axes, output name, output axes,
#        opsets, real-weight opsets, constant folding, shapes [(batch, seq)...],
#        description)
SPECS = collections.OrderedDict()


def spec(name, build, make_inputs, in_axes, out_name, out_axes, opsets, real_opsets,
         shapes, desc, fold=True):
    SPECS[name] = dict(build=build, make_inputs=make_inputs, in_axes=in_axes,
                       out_name=out_name, out_axes=out_axes, opsets=list(opsets),
                       real_opsets=list(real_opsets), fold=fold, shapes=shapes,
                       desc=desc)


SEQ_SHAPES = [(2, 8), (3, 13)]      # first = traced shape, second = check of dynamism
IMG_SHAPES = [(2, None), (1, None)]

spec("encoder", lambda: make_encoder(), seq_inputs, SEQ_AXES, "output", SEQ_AXES,
     range(13, 18), [13, 17], SEQ_SHAPES,
     "nn.TransformerEncoder(2 x TransformerEncoderLayer(d_model=64, nhead=4, "
     "dim_feedforward=128, dropout=0, batch_first=True)), post-norm, no mask")
spec("encoder_nofold", lambda: make_encoder(), seq_inputs, SEQ_AXES, "output", SEQ_AXES,
     [13, 17], [], SEQ_SHAPES,
     "same as encoder, exported with do_constant_folding=False: weight Transposes "
     "stay as Transpose(initializer) nodes (6 more Transposes); the Shape/Gather/"
     "Unsqueeze/Concat chains are the same as with folding (torch 1.13 never folds "
     "chains that depend on dynamic axes)", fold=False)
spec("encoder_causal", CausalEncoder, seq_inputs, SEQ_AXES, "output", SEQ_AXES,
     [13, 15, 17], [17], SEQ_SHAPES,
     "encoder called with mask = generate_square_subsequent_mask(32) registered as "
     "a buffer and sliced [:T,:T] in forward (mask is an initializer)")
spec("encoder_causal_gen", CausalEncoderGen, seq_inputs, SEQ_AXES, "output", SEQ_AXES,
     [14, 17], [], SEQ_SHAPES,
     "encoder called with mask = generate_square_subsequent_mask(T) computed in "
     "forward from the dynamic seq length (torch.full + torch.triu; needs opset>=14)")
spec("encoder_prenorm", lambda: make_encoder(norm_first=True), seq_inputs, SEQ_AXES,
     "output", SEQ_AXES, [13, 15, 17], [17], SEQ_SHAPES,
     "encoder with norm_first=True and a final nn.LayerNorm (TransformerEncoder(norm=...))")
spec("gpt", lambda: GPT(), ids_inputs, SEQ_AXES, "logits", SEQ_AXES,
     range(13, 18), [13, 17], SEQ_SHAPES,
     "hand-written pre-norm causal decoder (nanoGPT style): wte+wpe(arange), 2 x "
     "[LN -> qkv Linear, view/transpose, q@k^T*scale, masked_fill(tril buffer[:T,:T]==0), "
     "softmax, @v, proj; LN -> Linear-GELU(exact)-Linear], ln_f, lm_head; vocab 128, "
     "d 64, 4 heads, block 32")
spec("gpt_mha", lambda: GPT(attn_cls=MHASelfAttention, gelu_approx="tanh"), ids_inputs,
     SEQ_AXES, "logits", SEQ_AXES, [13, 15, 17], [17], SEQ_SHAPES,
     "as gpt, but attention is nn.MultiheadAttention(batch_first=True, "
     "attn_mask=float causal buffer[:T,:T]) and GELU(approximate='tanh')")
spec("resnet18", lambda: torchvision.models.resnet18(weights=None, num_classes=10),
     img_inputs, BATCH_AXES, "logits", BATCH_AXES, [13, 15, 17], [], IMG_SHAPES,
     "torchvision.models.resnet18(weights=None, num_classes=10), input 64x64 "
     "(BatchNorm folded into Conv by the exporter)")
spec("resnet50", lambda: torchvision.models.resnet50(weights=None, num_classes=10),
     img_inputs, BATCH_AXES, "logits", BATCH_AXES, [17], [], IMG_SHAPES,
     "torchvision.models.resnet50(weights=None, num_classes=10), input 64x64")
spec("resnet_tiny", TinyResNet, img_inputs, BATCH_AXES, "logits", BATCH_AXES,
     [13, 17], [17], IMG_SHAPES,
     "torchvision ResNet(BasicBlock, [1,1,1,1], num_classes=10) with widths/8 "
     "(8/16/32/64), input 64x64; real-weight stand-in for resnet18")


# ----------------------------------------------------------------------------
# Export / transform / verify
# ----------------------------------------------------------------------------

def seed_all(name):
    seed = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    torch.manual_seed(seed)
    np.random.seed(seed % (2 ** 32))
    return seed


def build_model(name):
    s = SPECS[name]
    seed = seed_all(name)
    model = diversify(s["build"]())
    model.eval()
    gens = []
    for k, (b, t) in enumerate(s["shapes"]):
        g = torch.Generator().manual_seed(seed + 1 + k)
        gens.append(s["make_inputs"](b, t, g))
    return model, gens


def export(model, inputs, s, opset):
    names = list(inputs)
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, tuple(inputs[n] for n in names), f,
            opset_version=opset,
            input_names=names,
            output_names=[s["out_name"]],
            dynamic_axes={**{n: s["in_axes"] for n in names}, s["out_name"]: s["out_axes"]},
            do_constant_folding=s["fold"],
            training=torch.onnx.TrainingMode.EVAL,
            export_params=True,
        )
    return onnx.load_from_string(f.getvalue())


def torch_run(model, inputs):
    # No torch.no_grad(): keeps nn.TransformerEncoderLayer on the same (slow,
    # traceable) path that the exporter traced.
    out = model(*inputs.values())
    return out.detach().numpy()


def ort_session(model_or_path):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    src = model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def check_close(name, got, want):
    if got.shape != want.shape:
        raise AssertionError(f"{name}: shape {got.shape} != torch {want.shape}")
    if not np.allclose(got, want, rtol=RTOL, atol=ATOL):
        err = np.max(np.abs(got - want))
        raise AssertionError(f"{name}: onnxruntime vs torch max abs err {err}")
    return float(np.max(np.abs(got - want)))


def tensor_bytes(t: TensorProto) -> int:
    return numpy_helper.to_array(t).nbytes


def numel(t: TensorProto) -> int:
    n = 1
    for d in t.dims:
        n *= d
    return n


def to_planning_only(model: onnx.ModelProto, data_name: str):
    """Copy of `model` with every initializer of > EXTERNAL_THRESHOLD elements
    pointing into `data_name` (not written).  Returns (model, data_length)."""
    m = copy.deepcopy(model)
    offset = 0
    for t in m.graph.initializer:
        if numel(t) <= EXTERNAL_THRESHOLD:
            continue
        length = tensor_bytes(t)
        for field in ("raw_data", "float_data", "int32_data", "string_data", "int64_data",
                      "double_data", "uint64_data"):
            t.ClearField(field)
        t.data_location = TensorProto.EXTERNAL
        del t.external_data[:]
        for k, v in (("location", data_name), ("offset", str(offset)), ("length", str(length))):
            e = t.external_data.add()
            e.key, e.value = k, v
        offset += length
    return m, offset


def verify_planning(pm: onnx.ModelProto, fname: str, data_name: str, data_len: int,
                    inputs, want_shape):
    """check_model(full_check) + ORT load/run with a zero-filled sparse .data."""
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, fname)
        with open(p, "wb") as f:
            f.write(pm.SerializeToString())
        with open(os.path.join(d, data_name), "wb") as f:
            f.truncate(data_len)
        onnx.checker.check_model(p, full_check=True)
        sess = ort_session(p)
        out = sess.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
        if out.shape != want_shape:
            raise AssertionError(f"{fname}: planning form output {out.shape} != {want_shape}")


def write_test_sets(dirpath, model_proto, inputs_list, outputs_list):
    in_names = [i.name for i in model_proto.graph.input]
    out_names = [o.name for o in model_proto.graph.output]
    for k, (inputs, output) in enumerate(zip(inputs_list, outputs_list)):
        d = os.path.join(dirpath, f"test_data_set_{k}")
        os.makedirs(d, exist_ok=True)
        for i, n in enumerate(in_names):
            t = numpy_helper.from_array(inputs[n].numpy(), n)
            with open(os.path.join(d, f"input_{i}.pb"), "wb") as f:
                f.write(t.SerializeToString())
        t = numpy_helper.from_array(output, out_names[0])
        with open(os.path.join(d, "output_0.pb"), "wb") as f:
            f.write(t.SerializeToString())


# ----------------------------------------------------------------------------
# Analysis
# ----------------------------------------------------------------------------

SHAPE_ROOTS = {"Shape", "Size"}


def shape_arith(model: onnx.ModelProto):
    """Find the shape-arithmetic slice: nodes whose value depends only on
    Shape/Size outputs, Constants and initializers (and at least one Shape).
    Returns (ops in slice -> count, consumers: 'Op[input_idx]' -> count) where
    consumers are nodes outside the slice that read a slice value."""
    g = model.graph
    const = {t.name for t in g.initializer}
    derived = set()
    slice_ops = collections.Counter()
    for n in g.node:  # graph is topologically sorted
        if n.op_type == "Constant":
            const.update(n.output)
            continue
        ins = [i for i in n.input if i]
        if ins and all(i in const for i in ins):  # constant-foldable (e.g. Identity)
            const.update(n.output)
            continue
        if n.op_type in SHAPE_ROOTS:
            derived.update(n.output)
            slice_ops[n.op_type] += 1
            continue
        if ins and any(i in derived for i in ins) and all(i in derived or i in const for i in ins):
            derived.update(n.output)
            slice_ops[n.op_type] += 1
    consumers = collections.Counter()
    for n in g.node:
        if n.op_type == "Constant" or n.op_type in SHAPE_ROOTS or (n.output and n.output[0] in derived) \
                or (n.output and n.output[0] in const):
            continue
        for idx, i in enumerate(n.input):
            if i in derived:
                consumers[f"{n.op_type}[{idx}]"] += 1
    return slice_ops, consumers


def io_sig(vi):
    tt = vi.type.tensor_type
    dims = [d.dim_param if d.dim_param else d.dim_value for d in tt.shape.dim]
    return {"name": vi.name, "dtype": TensorProto.DataType.Name(tt.elem_type).lower(),
            "shape": dims}


def fmt_counter(c):
    return " ".join(f"{k}x{v}" if v > 1 else k for k, v in sorted(c.items()))


# ----------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------

def process(name, out_dir, manifest, rows):
    s = SPECS[name]
    model, inputs_list = build_model(name)
    refs = [torch_run(model, inp) for inp in inputs_list]
    for opset in s["opsets"]:
        base = f"{name}_opset{opset}"
        full = export(model, inputs_list[0], s, opset)
        onnx.checker.check_model(full, full_check=True)
        sess = ort_session(full)
        errs = []
        for inp, ref in zip(inputs_list, refs):
            got = sess.run(None, {k: v.numpy() for k, v in inp.items()})[0]
            errs.append(check_close(base, got, ref))
        ops = collections.Counter(n.op_type for n in full.graph.node)
        sops, cons = shape_arith(full)
        entry_common = {
            "model": name, "opset": opset, "constant_folding": s["fold"],
            "description": s["desc"],
            "inputs": [io_sig(v) for v in full.graph.input],
            "outputs": [io_sig(v) for v in full.graph.output],
            "op_types": sorted(ops), "op_counts": dict(sorted(ops.items())),
            "shape_arith_ops": dict(sorted(sops.items())),
            "shape_arith_consumers": dict(sorted(cons.items())),
            "ort_max_abs_err": max(errs),
        }

        # planning-only form
        data_name = base + ".data"
        pm, data_len = to_planning_only(full, data_name)
        verify_planning(pm, base + ".onnx", data_name, data_len, inputs_list[1], refs[1].shape)
        path = os.path.join(out_dir, base + ".onnx")
        with open(path, "wb") as f:
            f.write(pm.SerializeToString())
        n_ext = sum(1 for t in pm.graph.initializer if t.data_location == TensorProto.EXTERNAL)
        manifest[base + ".onnx"] = dict(entry_common, form="planning-only",
                                        external_data=data_name, external_tensors=n_ext,
                                        external_bytes=data_len,
                                        initializers=len(pm.graph.initializer))
        rows.append((base + ".onnx", opset, os.path.getsize(path), sum(ops.values()), ops, sops))

        # real-weight form
        if opset in s["real_opsets"]:
            rbase = base + "_real"
            path = os.path.join(out_dir, rbase + ".onnx")
            with open(path, "wb") as f:
                f.write(full.SerializeToString())
            # re-verify from the written file + test sets
            sess = ort_session(path)
            for inp, ref in zip(inputs_list, refs):
                got = sess.run(None, {k: v.numpy() for k, v in inp.items()})[0]
                check_close(rbase, got, ref)
            write_test_sets(os.path.join(out_dir, rbase), full, inputs_list, refs)
            manifest[rbase + ".onnx"] = dict(
                entry_common, form="real-weights",
                test_data_sets=[f"{rbase}/test_data_set_{k}" for k in range(len(refs))],
                test_shapes=[[list(v.shape) for v in inp.values()] for inp in inputs_list],
                initializers=len(full.graph.initializer))
            rows.append((rbase + ".onnx", opset, os.path.getsize(path), sum(ops.values()),
                         ops, sops))


def dir_size(d):
    total = 0
    for root, _, files in os.walk(d):
        for fn in files:
            total += os.path.getsize(os.path.join(root, fn))
    return total


README_HEAD = """# Torch-exported ONNX importer test models

Generated by `scripts/models/export_torch.py` (do not edit by hand; rerun it):

    .venv/bin/python scripts/models/export_torch.py --out test/models/torch

Made with torch {torch}, torchvision {tv}, onnx {onnx}, onnxruntime {ort}
(`torch.onnx.export`, TorchScript exporter, `training=EVAL`, `do_constant_folding=True`
unless noted). All models are seeded (seed = first 32 bits of sha256(model name)),
so reruns are byte-identical. Dynamic axes: `batch` (dim 0) and, for sequence
models, `seq` (dim 1) on both input and output.

## Forms

* `<name>_opset<N>.onnx` -- **planning-only**: every initializer with more than
  {thr} elements has `data_location = EXTERNAL` with `location`/`offset`/`length`
  entries pointing into `<name>_opset<N>.data`, which is deliberately **not**
  committed; only dims/dtypes survive. Load with
  `onnx.load(path, load_external_data=False)`; small initializers (<= {thr}
  elements, e.g. biases of Gemm on tiny dims, shape constants) stay inline.
  Verified at generation time: `onnx.checker.check_model(full_check=True)`, and
  onnxruntime loads/runs it when a zero-filled `.data` of the recorded length is
  put next to it (output shapes checked).
* `<name>_opset<N>_real.onnx` -- the same export with real weights embedded, plus
  `<name>_opset<N>_real/test_data_set_K/{{input_0.pb,output_0.pb}}` (ONNX backend
  test layout, serialized `TensorProto`s named after the graph input/output).
  `test_data_set_0` uses the traced shape, `test_data_set_1` a different
  batch/seq to exercise the dynamic axes. Outputs come from torch and match
  onnxruntime within rtol {rtol}, atol {atol}.

Every export (both forms' source) was also run in onnxruntime at both shapes
against torch before being written.

`manifest.json` has, per file: I/O signature, op types and counts, the
shape-arithmetic slice (ops whose values depend only on `Shape` outputs,
Constants and initializers) and which ops consume that slice (`Op[input index]`).

## Models

| model | opsets | real weights | description |
|---|---|---|---|
"""


def write_readme(out_dir, names, manifest):
    lines = [README_HEAD.format(torch=torch.__version__, tv=torchvision.__version__,
                                onnx=onnx.__version__, ort=ort.__version__,
                                thr=EXTERNAL_THRESHOLD, rtol=RTOL, atol=ATOL)]
    for n in names:
        s = SPECS[n]
        real = ", ".join(str(o) for o in s["real_opsets"]) or "-"
        lines.append(f"| `{n}` | {', '.join(str(o) for o in s['opsets'])} | {real} | "
                     f"{s['desc']} |\n")
    lines.append("\n## Files and op types\n\n| file | ops | shape-arithmetic slice |\n|---|---|---|\n")
    for fn, e in manifest.items():
        if e["form"] != "planning-only":
            continue
        sa = ", ".join(e["shape_arith_ops"]) or "-"
        lines.append(f"| `{fn}` | {', '.join(e['op_types'])} | {sa} |\n")
    lines.append("\n`*_real.onnx` files have the same graphs as the planning-only file of the "
                 "same name/opset.\n")
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="test/models/torch")
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--no-readme", action="store_true",
                    help="do not (re)write README.md / manifest.json")
    args = ap.parse_args()

    names = [n for n in SPECS if not args.only or n in args.only.split(",")]
    unknown = set(filter(None, args.only.split(","))) - set(SPECS)
    if unknown:
        ap.error(f"unknown model(s): {sorted(unknown)}; known: {list(SPECS)}")
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)

    manifest, rows = collections.OrderedDict(), []
    for n in names:
        print(f"[export] {n} ...", file=sys.stderr, flush=True)
        process(n, args.out, manifest, rows)

    w = max(len(r[0]) for r in rows)
    print(f"{'file':<{w}}  opset  {'bytes':>8}  nodes  ops")
    for fn, opset, size, nnodes, ops, _ in rows:
        print(f"{fn:<{w}}  {opset:>5}  {size:>8}  {nnodes:>5}  {fmt_counter(ops)}")
    print("\nshape-arithmetic slice per file:")
    for fn, _, _, _, _, sops in rows:
        print(f"  {fn:<{w}}  {fmt_counter(sops) or '-'}")

    if not args.no_readme and not args.only:
        with open(os.path.join(args.out, "manifest.json"), "w") as f:
            json.dump({"generator": "scripts/models/export_torch.py",
                       "torch": torch.__version__, "torchvision": torchvision.__version__,
                       "onnx": onnx.__version__, "onnxruntime": ort.__version__,
                       "files": manifest}, f, indent=1)
            f.write("\n")
        write_readme(args.out, names, manifest)
    print(f"\ntotal size of {args.out}: {dir_size(args.out)} bytes")


if __name__ == "__main__":
    main()
