#!/usr/bin/env python3
"""Checks colossal-autodiff's gradients against torch.autograd.

Each case is a small graph with random parameters, written as cg IR; the
pass appends `grad:<param>` results, colossal-opt compiles the result to a
plan, colossal-run executes it on the CPU, and every gradient must match
torch's to float32 tolerance.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch


def dense(a: np.ndarray) -> str:
    return "dense<" + np.array2string(
        a, separator=", ", threshold=sys.maxsize, floatmode="unique",
        max_line_width=sys.maxsize) + ">"


def ty(shape, element="f32") -> str:
    return "tensor<" + "".join(f"{d}x" for d in shape) + element + ">"


def arg_type(v: np.ndarray) -> str:
    return ty(v.shape, {np.dtype(np.int64): "i64", np.dtype(bool): "i1"}.get(
        v.dtype, "f32"))


def to_torch(v: np.ndarray):
    if v.dtype in (np.int64, bool):
        return torch.tensor(v)
    return torch.tensor(v, dtype=torch.float64)


def mlp_mse(rng):
    p = {"w1": rng.standard_normal((8, 16)), "b1": rng.standard_normal(16),
         "w2": rng.standard_normal((16, 2))}
    inputs = {"x": rng.standard_normal((4, 8)), "y": rng.standard_normal((4, 2))}
    body = """
  %h = cg.matmul %x, %w1 : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  %hb = cg.add %h, %b1 : (tensor<4x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
  %r = cg.relu %hb : tensor<4x16xf32>
  %o = cg.matmul %r, %w2 : (tensor<4x16xf32>, tensor<16x2xf32>) -> tensor<4x2xf32>
  %d = cg.sub %o, %y : (tensor<4x2xf32>, tensor<4x2xf32>) -> tensor<4x2xf32>
  %sq = cg.mul %d, %d : (tensor<4x2xf32>, tensor<4x2xf32>) -> tensor<4x2xf32>
  %l = cg.reduce_mean %sq {axes = array<i64: 0, 1>} : (tensor<4x2xf32>) -> tensor<f32>"""

    def ref(t, x, y):
        return ((torch.relu(x @ t["w1"] + t["b1"]) @ t["w2"] - y) ** 2).mean()
    return p, inputs, body, ref


def classifier_xent(rng):
    # linear (transposed weight) + tanh + sin*cos + sigmoid gate + log_softmax
    # cross-entropy against one-hot labels.
    p = {"w": rng.standard_normal((6, 5)), "b": rng.standard_normal(6),
         "g": rng.standard_normal((5, 6)), "v": rng.standard_normal((6, 3))}
    labels = rng.integers(0, 3, size=4)
    inputs = {"x": rng.standard_normal((4, 5)),
              "y": np.eye(3)[labels]}
    body = """
  %a = cg.linear %x, %w, %b {transpose_weight} : (tensor<4x5xf32>, tensor<6x5xf32>, tensor<6xf32>) -> tensor<4x6xf32>
  %t0 = cg.tanh %a : tensor<4x6xf32>
  %sn = cg.sin %a : tensor<4x6xf32>
  %cs = cg.cos %sn : tensor<4x6xf32>
  %t = cg.add %t0, %cs : (tensor<4x6xf32>, tensor<4x6xf32>) -> tensor<4x6xf32>
  %gl = cg.matmul %x, %g : (tensor<4x5xf32>, tensor<5x6xf32>) -> tensor<4x6xf32>
  %s = cg.sigmoid %gl : tensor<4x6xf32>
  %h = cg.mul %t, %s : (tensor<4x6xf32>, tensor<4x6xf32>) -> tensor<4x6xf32>
  %z = cg.matmul %h, %v : (tensor<4x6xf32>, tensor<6x3xf32>) -> tensor<4x3xf32>
  %lp = cg.log_softmax %z {axis = 1} : tensor<4x3xf32>
  %m = cg.mul %lp, %y : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32>
  %s1 = cg.reduce_sum %m {axes = array<i64: 1>} : (tensor<4x3xf32>) -> tensor<4xf32>
  %n = cg.neg %s1 : tensor<4xf32>
  %l = cg.reduce_mean %n {axes = array<i64: 0>} : (tensor<4xf32>) -> tensor<f32>"""

    def ref(t, x, y):
        a0 = x @ t["w"].T + t["b"]
        a = (torch.tanh(a0) + torch.cos(torch.sin(a0))) * torch.sigmoid(x @ t["g"])
        return -(torch.log_softmax(a @ t["v"], 1) * y).sum(1).mean()
    return p, inputs, body, ref


def softmax_exp_log(rng):
    # softmax, exp, log, sqrt, div, transpose and reshape.
    p = {"w": rng.standard_normal((3, 4)) * 0.5, "s": rng.uniform(0.5, 2.0, (4,))}
    inputs = {"x": rng.standard_normal((2, 3)), "y": rng.uniform(1.0, 2.0, (2, 4))}
    body = """
  %a = cg.matmul %x, %w : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
  %e = cg.exp %a : tensor<2x4xf32>
  %q = cg.div %e, %y : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %sq = cg.sqrt %s : tensor<4xf32>
  %k = cg.mul %q, %sq : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  %sm = cg.softmax %k {axis = 1} : tensor<2x4xf32>
  %tr = cg.transpose %sm {permutation = array<i64: 1, 0>} : (tensor<2x4xf32>) -> tensor<4x2xf32>
  %rs = cg.reshape %tr : (tensor<4x2xf32>) -> tensor<8xf32>
  %one = cg.constant dense<1.5> : tensor<f32>
  %sh = cg.add %rs, %one : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %lg = cg.log %sh : tensor<8xf32>
  %l = cg.reduce_sum %lg {axes = array<i64: 0>} : (tensor<8xf32>) -> tensor<f32>"""

    def ref(t, x, y):
        k = torch.exp(x @ t["w"]) / y * torch.sqrt(t["s"])
        return torch.log(torch.softmax(k, 1).T.reshape(8) + 1.5).sum()
    return p, inputs, body, ref


def transformer_ops(rng):
    # layer_norm (two normalized dims), rms_norm, both gelu forms, silu,
    # erf, rsqrt, reciprocal, pow, max, min, abs, where, expand.
    p = {"ln_s": rng.standard_normal((3, 4)), "ln_b": rng.standard_normal((3, 4)),
         "rms_s": rng.standard_normal(4), "w": rng.standard_normal((4, 4)),
         "e": rng.uniform(1.5, 2.5, (4,)), "c": rng.standard_normal((1, 4))}
    inputs = {"x": rng.standard_normal((2, 3, 4)), "m": rng.standard_normal((2, 3, 4))}
    body = """
  %ln = cg.layer_norm %x, %ln_s, %ln_b {axis = 1, epsilon = 1.0e-5} : (tensor<2x3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<2x3x4xf32>
  %rn = cg.rms_norm %ln, %rms_s {axis = 2, epsilon = 1.0e-6} : (tensor<2x3x4xf32>, tensor<4xf32>) -> tensor<2x3x4xf32>
  %mm = cg.matmul %rn, %w : (tensor<2x3x4xf32>, tensor<4x4xf32>) -> tensor<2x3x4xf32>
  %g1 = cg.gelu %mm : tensor<2x3x4xf32>
  %g2 = cg.gelu %mm {approximate = #cg<gelu_approximation tanh>} : tensor<2x3x4xf32>
  %si = cg.silu %g2 : tensor<2x3x4xf32>
  %er = cg.erf %si : tensor<2x3x4xf32>
  %ab = cg.abs %mm : tensor<2x3x4xf32>
  %one = cg.constant dense<1.0> : tensor<f32>
  %ab1 = cg.add %ab, %one : (tensor<2x3x4xf32>, tensor<f32>) -> tensor<2x3x4xf32>
  %pw = cg.pow %ab1, %e : (tensor<2x3x4xf32>, tensor<4xf32>) -> tensor<2x3x4xf32>
  %rs = cg.rsqrt %pw : tensor<2x3x4xf32>
  %two = cg.constant dense<2.0> : tensor<f32>
  %ab2 = cg.add %ab, %two : (tensor<2x3x4xf32>, tensor<f32>) -> tensor<2x3x4xf32>
  %rc = cg.reciprocal %ab2 : tensor<2x3x4xf32>
  %mx = cg.max %g1, %c : (tensor<2x3x4xf32>, tensor<1x4xf32>) -> tensor<2x3x4xf32>
  %mn = cg.min %er, %c : (tensor<2x3x4xf32>, tensor<1x4xf32>) -> tensor<2x3x4xf32>
  %zero = cg.constant dense<0.0> : tensor<f32>
  %cond = cg.cmp gt, %m, %zero : (tensor<2x3x4xf32>, tensor<f32>) -> tensor<2x3x4xi1>
  %cx = cg.expand %c : (tensor<1x4xf32>) -> tensor<3x4xf32>
  %wh = cg.where %cond, %rs, %cx : (tensor<2x3x4xi1>, tensor<2x3x4xf32>, tensor<3x4xf32>) -> tensor<2x3x4xf32>
  %s1 = cg.add %mx, %mn : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %s2 = cg.add %s1, %wh : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %s3 = cg.mul %s2, %rc : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %s4 = cg.mul %s3, %m : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %l = cg.reduce_sum %s4 {axes = array<i64: 0, 1, 2>} : (tensor<2x3x4xf32>) -> tensor<f32>"""

    def ref(t, x, m):
        F = torch.nn.functional
        ln = F.layer_norm(x, (3, 4), t["ln_s"], t["ln_b"], 1e-5)
        rn = ln * torch.rsqrt((ln * ln).mean(2, keepdim=True) + 1e-6) * t["rms_s"]
        mm = rn @ t["w"]
        g1 = F.gelu(mm)
        g2 = F.gelu(mm, approximate="tanh")
        er = torch.erf(F.silu(g2))
        ab = mm.abs()
        rs = torch.rsqrt((ab + 1) ** t["e"])
        rc = torch.reciprocal(ab + 2)
        mx = torch.maximum(g1, t["c"])
        mn = torch.minimum(er, t["c"])
        wh = torch.where(m > 0, rs, t["c"].expand(3, 4))
        return ((mx + mn + wh) * rc * m).sum()
    return p, inputs, body, ref


def embedding_slices(rng):
    # gather (embedding rows, a repeated and a negative index), split,
    # slice, concat.
    p = {"emb": rng.standard_normal((5, 6)), "w": rng.standard_normal((6, 3))}
    inputs = {"ids": np.array([[0, 3, -1], [3, 2, 0]], dtype=np.int64),
              "m": rng.standard_normal((2, 4, 6))}
    body = """
  %e = cg.gather %emb, %ids {axis = 0} : (tensor<5x6xf32>, tensor<2x3xi64>) -> tensor<2x3x6xf32>
  %a, %b = cg.split %e {axis = 2, sizes = array<i64: 2, 4>} : (tensor<2x3x6xf32>) -> (tensor<2x3x2xf32>, tensor<2x3x4xf32>)
  %t = cg.tanh %b : tensor<2x3x4xf32>
  %s = cg.slice %t {starts = array<i64: 0, 1, 1>, limits = array<i64: 2, 3, 3>, steps = array<i64: 1, 1, 1>} : (tensor<2x3x4xf32>) -> tensor<2x2x2xf32>
  %c = cg.concat %a, %s, %a {axis = 1} : (tensor<2x3x2xf32>, tensor<2x2x2xf32>, tensor<2x3x2xf32>) -> tensor<2x8x2xf32>
  %r = cg.reshape %c : (tensor<2x8x2xf32>) -> tensor<2x4x4xf32>
  %pad = cg.concat %r, %r {axis = 2} : (tensor<2x4x4xf32>, tensor<2x4x4xf32>) -> tensor<2x4x8xf32>
  %cut = cg.slice %pad {starts = array<i64: 0, 0, 1>, limits = array<i64: 2, 4, 7>, steps = array<i64: 1, 1, 1>} : (tensor<2x4x8xf32>) -> tensor<2x4x6xf32>
  %mm = cg.mul %cut, %m : (tensor<2x4x6xf32>, tensor<2x4x6xf32>) -> tensor<2x4x6xf32>
  %o = cg.matmul %mm, %w : (tensor<2x4x6xf32>, tensor<6x3xf32>) -> tensor<2x4x3xf32>
  %sq = cg.mul %o, %o : (tensor<2x4x3xf32>, tensor<2x4x3xf32>) -> tensor<2x4x3xf32>
  %l = cg.reduce_mean %sq {axes = array<i64: 0, 1, 2>} : (tensor<2x4x3xf32>) -> tensor<f32>"""

    def ref(t, ids, m):
        e = t["emb"][ids % 5]
        a, b = e[..., :2], e[..., 2:]
        s = torch.tanh(b)[:, 1:3, 1:3]
        r = torch.cat([a, s, a], 1).reshape(2, 4, 4)
        cut = torch.cat([r, r], 2)[:, :, 1:7]
        return (((cut * m) @ t["w"]) ** 2).mean()
    return p, inputs, body, ref


def attention(rng):
    # cg.attention: causal (square and seq_kv > seq_q), a float mask that
    # is itself a parameter, and a boolean mask.
    p = {"wq": rng.standard_normal((4, 4)), "wk": rng.standard_normal((4, 4)),
         "wv": rng.standard_normal((4, 4)), "bias": rng.standard_normal((3, 3))}
    keep = rng.uniform(size=(2, 3, 3)) > 0.3
    keep[..., 0] = True  # no fully masked rows
    inputs = {"x": rng.standard_normal((2, 3, 4)), "kx": rng.standard_normal((2, 5, 4)),
              "keep": keep, "m": rng.standard_normal((2, 3, 4))}
    body = """
  %q = cg.matmul %x, %wq : (tensor<2x3x4xf32>, tensor<4x4xf32>) -> tensor<2x3x4xf32>
  %k = cg.matmul %x, %wk : (tensor<2x3x4xf32>, tensor<4x4xf32>) -> tensor<2x3x4xf32>
  %v = cg.matmul %x, %wv : (tensor<2x3x4xf32>, tensor<4x4xf32>) -> tensor<2x3x4xf32>
  %k2 = cg.matmul %kx, %wk : (tensor<2x5x4xf32>, tensor<4x4xf32>) -> tensor<2x5x4xf32>
  %v2 = cg.matmul %kx, %wv : (tensor<2x5x4xf32>, tensor<4x4xf32>) -> tensor<2x5x4xf32>
  %a1 = cg.attention %q, %k, %v {scale = 0.5 : f64, causal} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %a2 = cg.attention %q, %k2, %v2 {scale = 0.3 : f64, causal} : (tensor<2x3x4xf32>, tensor<2x5x4xf32>, tensor<2x5x4xf32>) -> tensor<2x3x4xf32>
  %a3 = cg.attention %q, %k, %v, %bias {scale = 0.5 : f64} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<3x3xf32>) -> tensor<2x3x4xf32>
  %a4 = cg.attention %a1, %k, %v, %keep {scale = 0.7 : f64} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x3xi1>) -> tensor<2x3x4xf32>
  %s1 = cg.add %a2, %a3 : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %s2 = cg.add %s1, %a4 : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %s3 = cg.mul %s2, %m : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %l = cg.reduce_sum %s3 {axes = array<i64: 0, 1, 2>} : (tensor<2x3x4xf32>) -> tensor<f32>"""

    def att(q, k, v, scale, causal=False, mask=None):
        s = q @ k.transpose(-1, -2) * scale
        if mask is not None:
            s = s + mask if mask.dtype != torch.bool else s.masked_fill(~mask, float("-inf"))
        if causal:
            sq, skv = s.shape[-2], s.shape[-1]
            keep = torch.ones(sq, skv, dtype=torch.bool).tril(skv - sq)
            s = s.masked_fill(~keep, float("-inf"))
        return torch.softmax(s, -1) @ v

    def ref(t, x, kx, keep, m):
        q, k, v = x @ t["wq"], x @ t["wk"], x @ t["wv"]
        k2, v2 = kx @ t["wk"], kx @ t["wv"]
        a1 = att(q, k, v, 0.5, causal=True)
        a2 = att(q, k2, v2, 0.3, causal=True)
        a3 = att(q, k, v, 0.5, mask=t["bias"])
        a4 = att(a1, k, v, 0.7, mask=keep)
        return ((a2 + a3 + a4) * m).sum()
    return p, inputs, body, ref


def cnn_classifier(rng):
    # conv2d (stride 2, padding 1, bias) + batch_norm (running statistics as
    # inputs: they get no gradient) + relu + max_pool2d (3x3, stride 2, pad 1)
    # + global avg_pool2d + linear + log_softmax cross-entropy; a padded
    # avg_pool2d (count_include_pad off) feeds the loss too.
    p = {"w": rng.standard_normal((4, 3, 3, 3)), "b": rng.standard_normal(4),
         "s": rng.uniform(0.5, 1.5, 4), "sb": rng.standard_normal(4),
         "fw": rng.standard_normal((4, 3)), "fb": rng.standard_normal(3)}
    labels = rng.integers(0, 3, size=2)
    inputs = {"x": rng.standard_normal((2, 3, 8, 8)), "y": np.eye(3)[labels],
              "mean": rng.standard_normal(4) * 0.1,
              "var": rng.uniform(0.5, 2.0, 4),
              "m": rng.standard_normal((2, 4, 2, 2))}
    body = """
  %c = cg.conv2d %x, %w, %b {strides = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1} : (tensor<2x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<2x4x4x4xf32>
  %bn = cg.batch_norm %c, %s, %sb, %mean, %var {epsilon = 1.0e-5} : (tensor<2x4x4x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x4x4x4xf32>
  %r = cg.relu %bn : tensor<2x4x4x4xf32>
  %mp = cg.max_pool2d %r {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>} : (tensor<2x4x4x4xf32>) -> tensor<2x4x2x2xf32>
  %ap = cg.avg_pool2d %mp {kernel = array<i64: 2, 2>, strides = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>} : (tensor<2x4x2x2xf32>) -> tensor<2x4x1x1xf32>
  %f = cg.reshape %ap : (tensor<2x4x1x1xf32>) -> tensor<2x4xf32>
  %z = cg.linear %f, %fw, %fb : (tensor<2x4xf32>, tensor<4x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %lp = cg.log_softmax %z {axis = 1} : tensor<2x3xf32>
  %xm = cg.mul %lp, %y : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %s1 = cg.reduce_sum %xm {axes = array<i64: 1>} : (tensor<2x3xf32>) -> tensor<2xf32>
  %n = cg.neg %s1 : tensor<2xf32>
  %xe = cg.reduce_mean %n {axes = array<i64: 0>} : (tensor<2xf32>) -> tensor<f32>
  %pa = cg.avg_pool2d %bn {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>} : (tensor<2x4x4x4xf32>) -> tensor<2x4x2x2xf32>
  %pm = cg.mul %pa, %m : (tensor<2x4x2x2xf32>, tensor<2x4x2x2xf32>) -> tensor<2x4x2x2xf32>
  %ps = cg.reduce_sum %pm {axes = array<i64: 0, 1, 2, 3>} : (tensor<2x4x2x2xf32>) -> tensor<f32>
  %l = cg.add %xe, %ps : (tensor<f32>, tensor<f32>) -> tensor<f32>"""

    def ref(t, x, y, mean, var, m):
        F = torch.nn.functional
        c = F.conv2d(x, t["w"], t["b"], stride=2, padding=1)
        bn = F.batch_norm(c, mean, var, t["s"], t["sb"], training=False, eps=1e-5)
        mp = F.max_pool2d(F.relu(bn), 3, 2, 1)
        z = F.avg_pool2d(mp, 2).reshape(2, 4) @ t["fw"] + t["fb"]
        xe = -(torch.log_softmax(z, 1) * y).sum(1).mean()
        pa = F.avg_pool2d(bn, 3, 2, 1, count_include_pad=False)
        return xe + (pa * m).sum()
    return p, inputs, body, ref


def max_and_triangles(rng):
    # reduce_max over one axis and (keepdims) over two, of a trilu'd tensor;
    # an upper trilu with a negative diagonal; and reduce_max with ties in a
    # row (torch.amax shares the gradient equally between them).
    p = {"a": rng.standard_normal((2, 3, 4)),
         "q": np.array([[1.0, 2.0, 2.0], [3.0, 3.0, 0.0]])}
    inputs = {"m": rng.standard_normal((2, 3, 4)), "v": rng.standard_normal(2),
              "k": rng.standard_normal((2, 3))}
    body = """
  %am = cg.mul %a, %m : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %lo = cg.trilu %am {diagonal = 1} : tensor<2x3x4xf32>
  %mx = cg.reduce_max %lo {axes = array<i64: 2>} : (tensor<2x3x4xf32>) -> tensor<2x3xf32>
  %mk = cg.mul %mx, %k : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %s1 = cg.reduce_sum %mk {axes = array<i64: 0, 1>} : (tensor<2x3xf32>) -> tensor<f32>
  %mx2 = cg.reduce_max %lo {axes = array<i64: 1, 2>, keepdims} : (tensor<2x3x4xf32>) -> tensor<2x1x1xf32>
  %s2 = cg.reduce_sum %mx2 {axes = array<i64: 0, 1, 2>} : (tensor<2x1x1xf32>) -> tensor<f32>
  %up = cg.trilu %a {upper, diagonal = -1} : tensor<2x3x4xf32>
  %um = cg.mul %up, %m : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %s3 = cg.reduce_sum %um {axes = array<i64: 0, 1, 2>} : (tensor<2x3x4xf32>) -> tensor<f32>
  %qm = cg.reduce_max %q {axes = array<i64: 1>} : (tensor<2x3xf32>) -> tensor<2xf32>
  %qv = cg.mul %qm, %v : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  %s4 = cg.reduce_sum %qv {axes = array<i64: 0>} : (tensor<2xf32>) -> tensor<f32>
  %t1 = cg.add %s1, %s2 : (tensor<f32>, tensor<f32>) -> tensor<f32>
  %t2 = cg.add %t1, %s3 : (tensor<f32>, tensor<f32>) -> tensor<f32>
  %l = cg.add %t2, %s4 : (tensor<f32>, tensor<f32>) -> tensor<f32>"""

    def ref(t, m, v, k):
        lo = torch.tril(t["a"] * m, 1)
        s1 = (lo.amax(2) * k).sum()
        s2 = lo.amax((1, 2), keepdim=True).sum()
        s3 = (torch.triu(t["a"], -1) * m).sum()
        s4 = (t["q"].amax(1) * v).sum()
        return s1 + s2 + s3 + s4
    return p, inputs, body, ref


def strided_slices(rng):
    # slice with steps 2 and 3, a negative step (reversal through index 0),
    # and a step that overshoots the end.
    p = {"a": rng.standard_normal((4, 7, 5))}
    inputs = {"m": rng.standard_normal((2, 3, 2)), "n": rng.standard_normal((4, 4, 2))}
    body = """
  %s = cg.slice %a {starts = array<i64: 1, 0, 4>, limits = array<i64: 4, 7, 0>, steps = array<i64: 2, 3, -2>} : (tensor<4x7x5xf32>) -> tensor<2x3x2xf32>
  %sm = cg.mul %s, %m : (tensor<2x3x2xf32>, tensor<2x3x2xf32>) -> tensor<2x3x2xf32>
  %s1 = cg.reduce_sum %sm {axes = array<i64: 0, 1, 2>} : (tensor<2x3x2xf32>) -> tensor<f32>
  %t = cg.slice %a {starts = array<i64: 3, 6, 1>, limits = array<i64: -1, 0, 5>, steps = array<i64: -1, -2, 2>} : (tensor<4x7x5xf32>) -> tensor<4x3x2xf32>
  %tt = cg.tanh %t : tensor<4x3x2xf32>
  %u = cg.slice %n {starts = array<i64: 0, 1, 0>, limits = array<i64: 4, 4, 2>, steps = array<i64: 1, 1, 1>} : (tensor<4x4x2xf32>) -> tensor<4x3x2xf32>
  %tu = cg.mul %tt, %u : (tensor<4x3x2xf32>, tensor<4x3x2xf32>) -> tensor<4x3x2xf32>
  %s2 = cg.reduce_sum %tu {axes = array<i64: 0, 1, 2>} : (tensor<4x3x2xf32>) -> tensor<f32>
  %l = cg.add %s1, %s2 : (tensor<f32>, tensor<f32>) -> tensor<f32>"""

    def ref(t, m, n):
        a = t["a"]
        s = a[1:4:2, 0:7:3][:, :, [4, 2]]
        tt = torch.tanh(a.flip(0)[:, [6, 4, 2]][:, :, 1:5:2])
        return (s * m).sum() + (tt * n[:, 1:4]).sum()
    return p, inputs, body, ref


def gather_axes(rng):
    # gather along a middle axis (2-D indices, a negative and a repeated one)
    # and along the last axis.
    p = {"a": rng.standard_normal((2, 5, 3)), "b": rng.standard_normal((3, 4))}
    inputs = {"i": np.array([[4, -1], [0, 2]], dtype=np.int64),
              "j": np.array([3, 0, 3], dtype=np.int64),
              "m": rng.standard_normal((2, 2, 2, 3)), "n": rng.standard_normal((3, 3))}
    body = """
  %g = cg.gather %a, %i {axis = 1} : (tensor<2x5x3xf32>, tensor<2x2xi64>) -> tensor<2x2x2x3xf32>
  %gm = cg.mul %g, %m : (tensor<2x2x2x3xf32>, tensor<2x2x2x3xf32>) -> tensor<2x2x2x3xf32>
  %s1 = cg.reduce_sum %gm {axes = array<i64: 0, 1, 2, 3>} : (tensor<2x2x2x3xf32>) -> tensor<f32>
  %h = cg.gather %b, %j {axis = 1} : (tensor<3x4xf32>, tensor<3xi64>) -> tensor<3x3xf32>
  %hn = cg.mul %h, %n : (tensor<3x3xf32>, tensor<3x3xf32>) -> tensor<3x3xf32>
  %s2 = cg.reduce_sum %hn {axes = array<i64: 0, 1>} : (tensor<3x3xf32>) -> tensor<f32>
  %l = cg.add %s1, %s2 : (tensor<f32>, tensor<f32>) -> tensor<f32>"""

    def ref(t, i, j, m, n):
        return (t["a"][:, i % 5] * m).sum() + (t["b"][:, j] * n).sum()
    return p, inputs, body, ref


CASES = {"mlp_mse": mlp_mse, "classifier_xent": classifier_xent,
         "softmax_exp_log": softmax_exp_log,
         "transformer_ops": transformer_ops,
         "embedding_slices": embedding_slices,
         "attention": attention,
         "cnn_classifier": cnn_classifier,
         "max_and_triangles": max_and_triangles,
         "strided_slices": strided_slices,
         "gather_axes": gather_axes}


def run_case(name, make, build, tmp):
    rng = np.random.default_rng(7)
    params, inputs, body, ref = make(rng)
    params = {k: v.astype(np.float32) for k, v in params.items()}
    inputs = {k: v if v.dtype in (np.int64, bool) else v.astype(np.float32)
              for k, v in inputs.items()}
    args = ", ".join(f"%{k}: {arg_type(v)}" for k, v in inputs.items())
    lines = [f"func.func @{name}({args}) -> tensor<f32> {{"]
    for k, v in params.items():
        lines.append(f'  %{k} = cg.param "{k}" from({dense(v)} : {ty(v.shape)})'
                     f" : {ty(v.shape)}")
    lines.append(body.strip("\n"))
    lines.append("  return %l : tensor<f32>\n}")
    src = os.path.join(tmp, f"{name}.mlir")
    with open(src, "w") as f:
        f.write("\n".join(lines) + "\n")
    grad_ir = os.path.join(tmp, f"{name}.grad.mlir")
    plan = os.path.join(tmp, f"{name}.cplan")
    subprocess.run([os.path.join(build, "bin", "colossal-opt"), src,
                    "--colossal-autodiff", "-o", grad_ir], check=True)
    subprocess.run([os.path.join(build, "bin", "colossal-opt"), grad_ir,
                    "--mode=infer", "--emit=plan", "-o", plan], check=True)
    cmd = [os.path.join(build, "bin", "colossal-run"), plan,
           "--output-dir", os.path.join(tmp, name)]
    for i, (k, v) in enumerate(inputs.items()):
        path = os.path.join(tmp, f"{name}.{k}.npy")
        np.save(path, v)
        cmd += ["--input", f"input{i}={path}"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
         for k, v in params.items()}
    loss = ref(t, *[to_torch(v) for v in inputs.values()])
    loss.backward()
    ok = True
    got_loss = np.load(os.path.join(tmp, name, "output0.npy"))
    if not np.allclose(got_loss, loss.item(), rtol=1e-4, atol=1e-5):
        print(f"FAIL {name}: loss {got_loss} != torch {loss.item()}")
        ok = False
    for k in params:
        got = np.load(os.path.join(tmp, name, f"grad_{k}.npy"))
        want = t[k].grad.numpy()
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-3, atol=1e-4):
            err = np.abs(got - want).max() if got.shape == want.shape else "shape"
            print(f"FAIL {name}: grad:{k} differs from torch (max err {err})")
            ok = False
    print(("ok   " if ok else "FAIL ") + name)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", required=True, help="build directory (bin/ inside)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_case(n, m, a.build, tmp) for n, m in CASES.items()]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
