#!/usr/bin/env python3
"""Every gradient rule of colossal-autodiff against numeric gradients.

For each op with a rule, a one-op function of float parameters is wrapped
into a scalar loss, sum(op(...) * R) with a fixed random R (so every output
element matters with its own weight):

* the analytic gradient: the function with its operands as cg.params is
  differentiated by colossal-autodiff, compiled to a plan and run by
  colossal-run (grad:<operand> outputs);
* the numeric gradient: the same function with its operands as inputs is
  compiled once and evaluated at x + h e_i and x - h e_i (central
  differences, float32 runtime, h = 1e-2) for a sample of elements i.

They must agree within 2% of the gradient's scale (finite differences in
float32 are noisy; a wrong rule is off by far more). Ops whose result
does not depend smoothly on an operand (indices, masks) only get their float
operands checked.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

H = 1e-2


def t(shape, dtype="f32"):
    return "tensor<" + "x".join(str(d) for d in shape) + ("x" if shape else "") + dtype + ">"


# name: (operands {name: shape}, body using %p<name>, result shape, extra
#        non-differentiated inputs {name: (mlir type, numpy value)}, value ranges)
def cases(rng):
    c = {}

    def unary(op, lo=-2.0, hi=2.0, attrs="", name=None):
        c[name or op] = (
            {"a": (2, 3)},
            f"%y = cg.{op} %pa {attrs} : {t((2, 3))}".replace("  ", " "),
            (2, 3), {}, (lo, hi))

    for op in ["neg", "abs", "exp", "tanh", "erf", "sigmoid", "relu", "silu", "sin", "cos"]:
        unary(op)
    unary("gelu")
    unary("gelu", attrs="{approximate = #cg<gelu_approximation tanh>}",
          name="gelu-tanh")
    for op in ["log", "sqrt", "rsqrt", "reciprocal"]:
        unary(op, 0.5, 2.0)
    for op in ["add", "sub", "mul", "div", "max", "min"]:
        lo = 0.5 if op == "div" else -2.0
        c[op] = ({"a": (2, 3), "b": (3,)},
                 f"%y = cg.{op} %pa, %pb : ({t((2, 3))}, {t((3,))}) -> {t((2, 3))}",
                 (2, 3), {}, (lo, 2.0))
    c["pow"] = ({"a": (2, 3), "b": (2, 3)},
                f"%y = cg.pow %pa, %pb : ({t((2, 3))}, {t((2, 3))}) -> {t((2, 3))}",
                (2, 3), {}, (0.5, 2.0))
    c["where"] = ({"a": (2, 3), "b": (2, 3)},
                  f"%y = cg.where %c, %pa, %pb : ({t((2, 3), 'i1')}, {t((2, 3))}, {t((2, 3))}) -> {t((2, 3))}",
                  (2, 3), {"c": (t((2, 3), "i1"), rng.integers(0, 2, (2, 3)).astype(bool))},
                  (-2.0, 2.0))
    c["expand"] = ({"a": (1, 3)},
                   f"%y = cg.expand %pa : ({t((1, 3))}) -> {t((4, 3))}", (4, 3), {}, (-2.0, 2.0))
    c["cast"] = ({"a": (2, 3)},
                 f"%h = cg.cast %pa : {t((2, 3))} to {t((2, 3), 'f16')}\n"
                 f"  %y = cg.cast %h : {t((2, 3), 'f16')} to {t((2, 3))}", (2, 3), {},
                 (-0.25, 0.25))  # small values: fine float16 spacing
    c["matmul"] = ({"a": (2, 3, 4), "b": (4, 5)},
                   f"%y = cg.matmul %pa, %pb : ({t((2, 3, 4))}, {t((4, 5))}) -> {t((2, 3, 5))}",
                   (2, 3, 5), {}, (-1.0, 1.0))
    c["linear"] = ({"a": (3, 4), "w": (5, 4), "b": (5,)},
                   f"%y = cg.linear %pa, %pw, %pb {{transpose_weight}} : ({t((3, 4))}, {t((5, 4))}, {t((5,))}) -> {t((3, 5))}",
                   (3, 5), {}, (-1.0, 1.0))
    c["layer_norm"] = ({"a": (2, 5), "g": (5,), "b": (5,)},
                       f"%y = cg.layer_norm %pa, %pg, %pb {{axis = -1, epsilon = 1.0e-5}} : ({t((2, 5))}, {t((5,))}, {t((5,))}) -> {t((2, 5))}",
                       (2, 5), {}, (-2.0, 2.0))
    c["rms_norm"] = ({"a": (2, 5), "g": (5,)},
                     f"%y = cg.rms_norm %pa, %pg {{axis = -1, epsilon = 1.0e-5}} : ({t((2, 5))}, {t((5,))}) -> {t((2, 5))}",
                     (2, 5), {}, (-2.0, 2.0))
    c["reduce_sum"] = ({"a": (2, 3, 4)},
                       f"%y = cg.reduce_sum %pa {{axes = array<i64: 1>}} : ({t((2, 3, 4))}) -> {t((2, 4))}",
                       (2, 4), {}, (-2.0, 2.0))
    c["reduce_mean"] = ({"a": (2, 3, 4)},
                        f"%y = cg.reduce_mean %pa {{axes = array<i64: 0, 2>, keepdims}} : ({t((2, 3, 4))}) -> {t((1, 3, 1))}",
                        (1, 3, 1), {}, (-2.0, 2.0))
    c["reshape"] = ({"a": (2, 6)},
                    f"%y = cg.reshape %pa : ({t((2, 6))}) -> {t((3, 4))}", (3, 4), {}, (-2.0, 2.0))
    c["transpose"] = ({"a": (2, 3, 4)},
                      f"%y = cg.transpose %pa {{permutation = array<i64: 2, 0, 1>}} : ({t((2, 3, 4))}) -> {t((4, 2, 3))}",
                      (4, 2, 3), {}, (-2.0, 2.0))
    c["softmax"] = ({"a": (2, 5)},
                    f"%y = cg.softmax %pa {{axis = 1}} : {t((2, 5))}", (2, 5), {}, (-2.0, 2.0))
    c["log_softmax"] = ({"a": (2, 5)},
                        f"%y = cg.log_softmax %pa {{axis = 1}} : {t((2, 5))}", (2, 5), {}, (-2.0, 2.0))
    c["slice"] = ({"a": (4, 5)},
                  f"%y = cg.slice %pa {{starts = array<i64: 1, 2>, limits = array<i64: 3, 5>, steps = array<i64: 1, 1>}} : ({t((4, 5))}) -> {t((2, 3))}",
                  (2, 3), {}, (-2.0, 2.0))
    c["concat"] = ({"a": (2, 3), "b": (2, 2)},
                   f"%y = cg.concat %pa, %pb {{axis = 1}} : ({t((2, 3))}, {t((2, 2))}) -> {t((2, 5))}",
                   (2, 5), {}, (-2.0, 2.0))
    c["split"] = ({"a": (2, 5)},
                  f"%s:2 = cg.split %pa {{axis = 1, sizes = array<i64: 2, 3>}} : ({t((2, 5))}) -> ({t((2, 2))}, {t((2, 3))})\n"
                  f"  %y = cg.slice %s#1 {{starts = array<i64: 0, 0>, limits = array<i64: 2, 2>, steps = array<i64: 1, 1>}} : ({t((2, 3))}) -> {t((2, 2))}",
                  (2, 2), {}, (-2.0, 2.0))
    c["gather"] = ({"a": (5, 3)},
                   f"%y = cg.gather %pa, %ids {{axis = 0}} : ({t((5, 3))}, {t((2, 2), 'i64')}) -> {t((2, 2, 3))}",
                   (2, 2, 3), {"ids": (t((2, 2), "i64"), np.array([[0, 3], [3, 4]], np.int64))},
                   (-2.0, 2.0))
    c["scatter_add_rows"] = ({"a": (4, 3)},
                             f"%y = cg.scatter_add_rows %ids, %pa : ({t((4,), 'i64')}, {t((4, 3))}) -> {t((5, 3))}",
                             (5, 3), {"ids": (t((4,), "i64"), np.array([1, 4, 1, 0], np.int64))},
                             (-2.0, 2.0))
    # Convolutional layers.
    x, w = (1, 2, 5, 5), (3, 2, 3, 3)
    c["conv2d"] = ({"a": x, "w": w, "b": (3,)},
                   f"%y = cg.conv2d %pa, %pw, %pb {{strides = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1}} : ({t(x)}, {t(w)}, {t((3,))}) -> {t((1, 3, 3, 3))}",
                   (1, 3, 3, 3), {}, (-1.0, 1.0))
    c["conv2d-grouped"] = ({"a": (1, 4, 4, 4), "w": (4, 2, 2, 2)},
                           f"%y = cg.conv2d %pa, %pw {{strides = array<i64: 1, 1>, padding = array<i64: 0, 1, 0, 1>, dilations = array<i64: 1, 1>, groups = 2}} : ({t((1, 4, 4, 4))}, {t((4, 2, 2, 2))}) -> {t((1, 4, 3, 5))}",
                           (1, 4, 3, 5), {}, (-1.0, 1.0))
    c["conv_transpose"] = ({"a": (1, 4, 3, 3), "w": (4, 1, 3, 3)},
                           f"%y = cg.conv2d_backward_input %pa, %pw {{strides = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 2}} : ({t((1, 4, 3, 3))}, {t((4, 1, 3, 3))}) -> {t((1, 2, 6, 6))}",
                           (1, 2, 6, 6), {}, (-1.0, 1.0))
    c["batch_norm"] = ({"a": (2, 3, 2, 2), "s": (3,), "b": (3,)},
                       f"%y = cg.batch_norm %pa, %ps, %pb, %mean, %var {{epsilon = 1.0e-5}} : ({t((2, 3, 2, 2))}, {t((3,))}, {t((3,))}, {t((3,))}, {t((3,))}) -> {t((2, 3, 2, 2))}",
                       (2, 3, 2, 2),
                       {"mean": (t((3,)), rng.uniform(-0.5, 0.5, 3).astype(np.float32)),
                        "var": (t((3,)), rng.uniform(0.5, 1.5, 3).astype(np.float32))},
                       (-1.0, 1.0))
    c["max_pool2d"] = ({"a": (1, 2, 5, 5)},
                       f"%y = cg.max_pool2d %pa {{kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>}} : ({t((1, 2, 5, 5))}) -> {t((1, 2, 3, 3))}",
                       (1, 2, 3, 3), {}, (-1.0, 1.0))
    c["avg_pool2d"] = ({"a": (1, 2, 5, 5)},
                       f"%y = cg.avg_pool2d %pa {{kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>}} : ({t((1, 2, 5, 5))}) -> {t((1, 2, 3, 3))}",
                       (1, 2, 3, 3), {}, (-1.0, 1.0))
    c["avg_pool2d-unused-pad"] = ({"a": (1, 2, 4, 4)},
                                  f"%y = cg.avg_pool2d %pa {{kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>}} : ({t((1, 2, 4, 4))}) -> {t((1, 2, 2, 2))}",
                                  (1, 2, 2, 2), {}, (-1.0, 1.0))
    c["avg_pool2d-ceil"] = ({"a": (1, 2, 4, 4)},
                            f"%y = cg.avg_pool2d %pa {{kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, padding = array<i64: 0, 0, 0, 0>, ceil_mode}} : ({t((1, 2, 4, 4))}) -> {t((1, 2, 2, 2))}",
                            (1, 2, 2, 2), {}, (-1.0, 1.0))
    c["avg_pool2d-ceil-pad"] = ({"a": (1, 1, 5, 6)},
                                f"%y = cg.avg_pool2d %pa {{kernel = array<i64: 2, 3>, strides = array<i64: 2, 2>, padding = array<i64: 1, 0, 0, 1>, ceil_mode, count_include_pad}} : ({t((1, 1, 5, 6))}) -> {t((1, 1, 3, 3))}",
                                (1, 1, 3, 3), {}, (-1.0, 1.0))
    c["reduce_max"] = ({"a": (2, 3, 4)},
                       f"%y = cg.reduce_max %pa {{axes = array<i64: 2>}} : ({t((2, 3, 4))}) -> {t((2, 3))}",
                       (2, 3), {}, (-2.0, 2.0))
    c["trilu"] = ({"a": (3, 4)},
                  f"%y = cg.trilu %pa {{diagonal = 1}} : {t((3, 4))}", (3, 4), {}, (-2.0, 2.0))
    c["slice-strided"] = ({"a": (4, 7)},
                          f"%y = cg.slice %pa {{starts = array<i64: 1, 6>, limits = array<i64: 4, 0>, steps = array<i64: 2, -3>}} : ({t((4, 7))}) -> {t((2, 2))}",
                          (2, 2), {}, (-2.0, 2.0))
    c["gather-axis1"] = ({"a": (2, 5, 3)},
                         f"%y = cg.gather %pa, %ids {{axis = 1}} : ({t((2, 5, 3))}, {t((2,), 'i64')}) -> {t((2, 2, 3))}",
                         (2, 2, 3), {"ids": (t((2,), "i64"), np.array([4, 1], np.int64))},
                         (-2.0, 2.0))
    qkv = (1, 2, 4, 3)
    for name, attrs, extra, mask in [
            ("attention", "{scale = 0.5 : f64}", {}, ""),
            ("attention-causal", "{causal, scale = 0.5 : f64}", {}, ""),
            ("attention-mask", "{scale = 0.5 : f64}",
             {"m": (t((4, 4)), rng.uniform(-1, 0, (4, 4)).astype(np.float32))}, ", %m")]:
        mtype = f", {t((4, 4))}" if mask else ""
        c[name] = ({"q": qkv, "k": qkv, "v": qkv},
                   f"%y = cg.attention %pq, %pk, %pv{mask} {attrs} : ({t(qkv)}, {t(qkv)}, {t(qkv)}{mtype}) -> {t(qkv)}",
                   qkv, extra, (-1.0, 1.0))
    # topk along the middle axis: distinct values, so the choice does not
    # flip under the finite differences' steps.
    c["topk"] = ({"a": (2, 5, 3)},
                 f"%s:2 = cg.topk %pa {{k = 2, axis = 1}} : ({t((2, 5, 3))}) -> ({t((2, 2, 3))}, {t((2, 2, 3), 'i64')})\n"
                 f"    %y = cg.add %s#0, %s#0 : ({t((2, 2, 3))}, {t((2, 2, 3))}) -> {t((2, 2, 3))}",
                 (2, 2, 3), {}, (-2.0, 2.0))
    return c


def module(operands, body, out_shape, extra, values, r, as_params):
    """The loss sum(op(...) * R) as MLIR; operands are params or inputs."""
    args, lines = [], []
    for name, (typ, _) in extra.items():
        args.append(f"%{name}: {typ} {{cg.name = \"{name}\"}}")
    for name, shape in operands.items():
        if as_params:
            dense = f"dense<{values[name].tolist()}>"
            lines.append(f"%p{name} = cg.param \"{name}\" from({dense} : {t(shape)}) : {t(shape)}")
        else:
            args.append(f"%p{name}: {t(shape)} {{cg.name = \"{name}\"}}")
    rdense = f"dense<{r.tolist()}>"
    axes = ", ".join(str(i) for i in range(len(out_shape)))
    lines += [body,
              f"%r = cg.constant {rdense} : {t(out_shape)}",
              f"%weighted = cg.mul %y, %r : ({t(out_shape)}, {t(out_shape)}) -> {t(out_shape)}",
              f"%l = cg.reduce_sum %weighted {{axes = array<i64: {axes}>}} : ({t(out_shape)}) -> {t(())}"]
    return ("func.func @main(" + ", ".join(args) + ") -> (tensor<f32> {cg.name = \"loss\"}) {\n  "
            + "\n  ".join(lines) + "\n  return %l : tensor<f32>\n}\n")


def run(build, *args, **kw):
    return subprocess.run([os.path.join(build, "bin", args[0]), *args[1:]],
                          check=True, capture_output=True, text=True, **kw)


def check(build, tmp, name, case, rng):
    operands, body, out_shape, extra, (lo, hi) = case
    values = {n: rng.uniform(lo, hi, s).astype(np.float32) for n, s in operands.items()}
    r = rng.uniform(-1, 1, out_shape).astype(np.float32)
    d = os.path.join(tmp, name)
    os.makedirs(d)
    # Analytic: autodiff on the param form.
    with open(f"{d}/p.mlir", "w") as f:
        f.write(module(operands, body, out_shape, extra, values, r, True))
    run(build, "colossal-opt", f"{d}/p.mlir", "--colossal-autodiff", "-o", f"{d}/g.mlir")
    run(build, "colossal-opt", f"{d}/g.mlir", "--mode=infer", "--emit=plan", "-o", f"{d}/g.cplan")
    feeds = []
    for n, (_, v) in extra.items():
        np.save(f"{d}/{n}.npy", v)
        feeds += ["--input", f"{n}={d}/{n}.npy"]
    run(build, "colossal-run", f"{d}/g.cplan", "--output-dir", f"{d}/g", *feeds)
    # Numeric: the input form, evaluated at perturbed points.
    with open(f"{d}/i.mlir", "w") as f:
        f.write(module(operands, body, out_shape, extra, values, r, False))
    run(build, "colossal-opt", f"{d}/i.mlir", "--mode=infer", "--emit=plan", "-o", f"{d}/i.cplan")

    def loss(vals):
        args = list(feeds)
        for n, v in vals.items():
            np.save(f"{d}/in_{n}.npy", v)
            args += ["--input", f"{n}={d}/in_{n}.npy"]
        run(build, "colossal-run", f"{d}/i.cplan", "--output-dir", f"{d}/o", *args)
        return float(np.load(f"{d}/o/loss.npy"))

    worst = 0.0
    for n in operands:
        got = np.load(f"{d}/g/grad_{n}.npy")
        flat = values[n].reshape(-1)
        picks = rng.choice(flat.size, size=min(flat.size, 5), replace=False)
        scale = max(np.abs(got).max(), 1e-2)
        for i in picks:
            plus = {k: v.copy() for k, v in values.items()}
            minus = {k: v.copy() for k, v in values.items()}
            plus[n].reshape(-1)[i] += H
            minus[n].reshape(-1)[i] -= H
            num = (loss(plus) - loss(minus)) / (2 * H)
            worst = max(worst, abs(num - got.reshape(-1)[i]) / scale)
    ok = worst < 2e-2
    print(f"{'ok  ' if ok else 'FAIL'} {name}: max error {worst:.2e} of the gradient's scale")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", required=True, help="build directory (bin/ inside)")
    ap.add_argument("-k", default="", help="only cases whose name contains this")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for name, case in cases(rng).items():
            if a.k in name:
                try:
                    ok &= check(a.build, tmp, name, case, rng)
                except subprocess.CalledProcessError as e:
                    print(f"FAIL {name}: {' '.join(e.cmd[:2])}: {e.stderr.strip()}")
                    ok = False
    print("PASS" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
