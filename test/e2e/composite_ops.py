#!/usr/bin/env python3
"""ONNX operators Colossal composes of graph ops (no kernels of their own)
run equal to onnxruntime in float32, in every attribute combination: CumSum
(exclusive, reverse, any axis), ReduceMin/L1/L2/SumSquare/LogSum/LogSumExp/Prod
(keepdims or not), Sign, IsNaN, IsInf (detect_positive/negative), Tile;
Floor, Ceil, Round (halves to even), Softsign, Mish, Tan, Sinh, Cosh, Asinh,
Atanh, Acosh, Celu, ThresholdedRelu, Shrink; Mod (integer fmod 0/1, float),
ArgMax/ArgMin (axis, keepdims, select_last_index over ties),
GatherElements (negative indices), SoftmaxCrossEntropyLoss (with log_prob)
and NegativeLogLikelihoodLoss (each reduction, with and without weights and
ignore_index), LayerNormalization's mean and inverse-std outputs, Pad in
reflect, edge and wrap modes (with cropping pads), Hardmax, Resize (each
mode and coordinate transformation, up by scales and down by sizes),
integer Pow (negative, float and constant exponents), Einsum (20 equations),
TopK (values and indices; ties, integers).
(The ONNX node tests of CumSum use float64, which Colossal does not have.)

usage: test/e2e/composite_ops.py --build BUILD
"""
import argparse
import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from checks import Checks  # noqa: E402
from run_vs_onnxruntime import run_case  # noqa: E402


def single(op, x, inits=(), out_type=TensorProto.FLOAT, **attrs):
    names = ["x"] + [n for n, _ in inits]
    node = helper.make_node(op, names, ["y"], **attrs)
    graph = helper.make_graph(
        [node], op, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", out_type, None)],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


ONNX_TYPE = {np.float32: TensorProto.FLOAT, np.int64: TensorProto.INT64,
             np.int32: TensorProto.INT32, np.bool_: TensorProto.BOOL}


def multi(op, feeds, outs=(("y", TensorProto.FLOAT),), opset=18, **attrs):
    """A one-node model over named inputs (all graph inputs)."""
    node = helper.make_node(op, list(feeds), [n for n, _ in outs], **attrs)
    graph = helper.make_graph(
        [node], op,
        [helper.make_tensor_value_info(n, ONNX_TYPE[v.dtype.type], list(v.shape))
         for n, v in feeds.items()],
        [helper.make_tensor_value_info(n, t, None) for n, t in outs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    opt = os.path.join(args.build, "bin", "colossal-opt")
    run = os.path.join(args.build, "bin", "colossal-run")
    check = Checks()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 4)).astype(np.float32)
    pos = np.abs(x) + 0.1
    special = x.copy()
    special[0, 0, 0], special[1, 2, 3], special[2, 4, 1] = np.inf, -np.inf, np.nan
    cases = []
    for axis in (0, 1, -1):
        for exclusive in (0, 1):
            for reverse in (0, 1):
                cases.append(("cumsum_a%d_e%d_r%d" % (axis, exclusive, reverse), x,
                              single("CumSum", x, [("axis", np.array(axis, np.int64))],
                                     exclusive=exclusive, reverse=reverse)))
    with_zero = x.copy()
    with_zero[1, 2, 0] = 0.0
    for op in ("ReduceMin", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum",
               "ReduceLogSumExp", "ReduceProd"):
        for keep in (0, 1):
            data = pos if op == "ReduceLogSum" else with_zero if op == "ReduceProd" else x
            cases.append(("%s_k%d" % (op.lower(), keep), data,
                          single(op, data, [("axes", np.array([1, -1], np.int64))],
                                 keepdims=keep)))
    cases.append(("sign", x, single("Sign", x)))
    cases.append(("isnan", special, single("IsNaN", special, out_type=TensorProto.BOOL)))
    for p, n in ((1, 1), (1, 0), (0, 1)):
        cases.append(("isinf_p%d_n%d" % (p, n), special,
                      single("IsInf", special, out_type=TensorProto.BOOL,
                             detect_positive=p, detect_negative=n)))
    cases.append(("tile", x, single("Tile", x, [("repeats", np.array([2, 1, 3], np.int64))])))
    # Resize: each mode and coordinate transformation, up and down, by scales
    # and by sizes (the node tests cover the rest of the attributes).
    img = rng.standard_normal((1, 2, 5, 7)).astype(np.float32)

    def resize(inputs, **attrs):
        node = helper.make_node("Resize", ["x"] + [n for n, _ in inputs], ["y"], **attrs)
        graph = helper.make_graph(
            [node], "resize", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(img.shape))],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            [numpy_helper.from_array(v, n) for n, v in inputs if n])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])

    for mode, ctm in (("nearest", "asymmetric"), ("nearest", "half_pixel"),
                      ("linear", "half_pixel"), ("linear", "align_corners"),
                      ("linear", "pytorch_half_pixel"), ("cubic", "half_pixel"),
                      ("cubic", "asymmetric")):
        for label, inputs in (("up", [("", None), ("scales", np.array([1, 1, 2.0, 1.5], np.float32))]),
                              ("down", [("", None), ("", None), ("sizes", np.array([1, 2, 3, 4], np.int64))])):
            if ctm == "align_corners" and label == "up":
                # By sizes: with scales whose product is not whole,
                # onnxruntime and the ONNX reference (which the node tests
                # and Colossal follow) disagree on align_corners.
                inputs = [("", None), ("", None), ("sizes", np.array([1, 2, 9, 12], np.int64))]
            cases.append(("resize_%s_%s_%s" % (mode, ctm, label), img,
                          resize(inputs, mode=mode, coordinate_transformation_mode=ctm)))
    for op in ("Floor", "Ceil", "Round", "Softsign", "Mish", "Tan", "Sinh", "Cosh",
               "Asinh"):
        data = x * 3 if op in ("Floor", "Ceil", "Round") else x
        if op == "Round":  # halves round to even
            data = data.copy()
            data[0, 0, :4] = [0.5, 1.5, 2.5, -0.5]
        cases.append((op.lower(), data, single(op, data)))
    cases.append(("atanh", x * 0.4, single("Atanh", x * 0.4)))
    cases.append(("acosh", pos + 1, single("Acosh", pos + 1)))
    for a in (0.5, 2.0):
        cases.append(("celu_a%g" % a, x, single("Celu", x, alpha=a)))
        cases.append(("thresholdedrelu_a%g" % a, x, single("ThresholdedRelu", x, alpha=a)))
    for bias, lambd in ((0.0, 0.5), (0.3, 1.0)):
        cases.append(("shrink_b%g_l%g" % (bias, lambd), x,
                      single("Shrink", x, bias=bias, lambd=lambd)))
    # Multi-input composites: (name, feeds, model, outputs to compare).
    multis = []
    ints = rng.integers(-7, 8, (3, 5, 4)).astype(np.int64)
    divisors = rng.choice([-3, -2, 2, 3, 5], (5, 4)).astype(np.int64)
    for fmod in (0, 1):
        multis.append(("mod_int_f%d" % fmod, {"a": ints, "b": divisors},
                       multi("Mod", {"a": ints, "b": divisors},
                             outs=(("y", TensorProto.INT64),), fmod=fmod)))
    fdiv = np.where(np.abs(x[0]) < 0.3, 0.7, x[0]).astype(np.float32)
    multis.append(("mod_float", {"a": x * 4, "b": fdiv},
                   multi("Mod", {"a": x * 4, "b": fdiv}, fmod=1)))
    ties = np.round(x * 2).astype(np.float32)  # many equal values
    for op in ("ArgMax", "ArgMin"):
        for axis in (0, 1, -1):
            for keep in (0, 1):
                for last in (0, 1):
                    multis.append(("%s_a%d_k%d_l%d" % (op.lower(), axis, keep, last),
                                   {"x": ties},
                                   multi(op, {"x": ties}, outs=(("y", TensorProto.INT64),),
                                         axis=axis, keepdims=keep, select_last_index=last)))
    idx = rng.integers(-5, 5, (3, 2, 4)).astype(np.int64)
    for axis in (1, -2):
        multis.append(("gatherelements_a%d" % axis, {"x": x, "i": idx},
                       multi("GatherElements", {"x": x, "i": idx}, axis=axis)))
    scores = rng.standard_normal((4, 5, 3)).astype(np.float32)
    labels = rng.integers(0, 5, (4, 3)).astype(np.int64)
    labels[0, 0] = 2
    weights = rng.uniform(0.5, 1.5, 5).astype(np.float32)
    for red in ("none", "sum", "mean"):
        for w in (False, True):
            for ii in (None, 2):
                feeds = {"s": scores, "t": labels}
                if w:
                    feeds["w"] = weights
                extra = {} if ii is None else {"ignore_index": ii}
                tag = "%s_w%d_i%s" % (red, w, ii)
                multis.append(("sce_" + tag, feeds,
                               multi("SoftmaxCrossEntropyLoss", feeds,
                                     outs=(("y", TensorProto.FLOAT),
                                           ("logp", TensorProto.FLOAT)),
                                     reduction=red, **extra)))
                multis.append(("nll_" + tag, feeds,
                               multi("NegativeLogLikelihoodLoss", feeds,
                                     reduction=red, **extra)))
    for mode in ("reflect", "edge", "wrap"):
        for pads in ([0, 2, 1, 0, 1, 3], [1, 0, -1, 0, 2, 1]):
            multis.append(("pad_%s_%s" % (mode, "_".join(map(str, pads)).replace("-", "m")),
                           {"x": x},
                           single("Pad", x, [("pads", np.array(pads, np.int64))], mode=mode)))
    for axis in (0, -1):
        multis.append(("hardmax_a%d" % axis, {"x": ties},
                       multi("Hardmax", {"x": ties}, axis=axis)))
    lnx = rng.standard_normal((2, 3, 4)).astype(np.float32)
    for axis in (1, -1):
        feeds = {"x": lnx, "g": np.ones(lnx.shape[axis:], np.float32)}
        multis.append(("layernorm_stats_a%d" % axis, feeds,
                       multi("LayerNormalization", feeds,
                             outs=(("y", TensorProto.FLOAT), ("mean", TensorProto.FLOAT),
                                   ("invstd", TensorProto.FLOAT)), axis=axis)))
    # Integer Pow: square-and-multiply over the exponent's bits; negative
    # exponents (1 / x^n truncated), a float exponent (whole ones exact),
    # and a constant exponent (fewer bits walked).
    base = np.array([[-3, -2, -1, 0, 1, 2, 3, 7]] * 3)
    expo = np.array([[0], [3], [-2]]) + np.array([[0, 1, 2, 0, 3, 5, 4, 2]])
    expo[2, 3] = 2  # 0 to a negative power: no defined value
    for t in (np.int32, np.int64):
        feeds = {"x": base.astype(t), "e": expo.astype(t)}
        multis.append(("pow_%s" % t.__name__, feeds,
                       multi("Pow", feeds, outs=(("y", ONNX_TYPE[t]),))))
    feeds = {"x": base.astype(np.int32),
             "e": np.array([2, 2, 3, 1.5, 2, 4, 2.5, 0.5], np.float32)}
    multis.append(("pow_int32_float", feeds,
                   multi("Pow", feeds, outs=(("y", TensorProto.INT32),))))
    model = multi("Pow", {"x": base.astype(np.int64), "e": np.zeros(1, np.int64)},
                  outs=(("y", TensorProto.INT64),))
    del model.graph.input[1:]
    model.graph.initializer.append(numpy_helper.from_array(np.array([5], np.int64), "e"))
    multis.append(("pow_int64_const", {"x": base.astype(np.int64)}, model))
    # TopK: largest and smallest, any axis, ties (the lower index first),
    # integers.
    for name, data, k, axis, largest in (("topk_a1", x, 3, 1, 1), ("topk_small_last", x, 2, -1, 0),
                                         ("topk_ties", ties, 2, 0, 1),
                                         ("topk_int", rng.integers(-3, 3, (4, 6)).astype(np.int64), 4, 1, 0)):
        model = multi("TopK", {"x": data, "k": np.array([k], np.int64)},
                      outs=(("v", ONNX_TYPE[data.dtype.type]), ("i", TensorProto.INT64)),
                      axis=axis, largest=largest)
        del model.graph.input[1:]
        model.graph.initializer.append(numpy_helper.from_array(np.array([k], np.int64), "k"))
        multis.append((name, {"x": data}, model))
    # Einsum (its node tests use float64): matmuls, batches, diagonals,
    # sums, outer products, ellipses with broadcasting, implicit outputs,
    # three operands.
    def rnd(*shape):
        return rng.standard_normal(shape).astype(np.float32)
    einsums = [("ij,jk->ik", rnd(3, 4), rnd(4, 5)), ("bij,bjk->bik", rnd(2, 3, 4), rnd(2, 4, 5)),
               ("i,i", rnd(5), rnd(5)), ("i,i->", rnd(5), rnd(5)), ("ij->i", rnd(3, 4)),
               ("ij->ji", rnd(3, 4)), ("ii->i", rnd(4, 4)), ("ii", rnd(4, 4)),
               ("...ii->...i", rnd(3, 5, 5)), ("bhqd,bhkd->bhqk", rnd(2, 3, 4, 5), rnd(2, 3, 6, 5)),
               ("bhqk,bhkd->bhqd", rnd(2, 3, 4, 6), rnd(2, 3, 6, 5)),
               ("ij,kl->ijkl", rnd(2, 3), rnd(4, 2)), ("ij,ij->ij", rnd(3, 4), rnd(3, 4)),
               ("ijk,ikl,ilm->ijm", rnd(2, 3, 4), rnd(2, 4, 5), rnd(2, 5, 3)),
               ("...ij,...jk", rnd(2, 1, 3, 4), rnd(1, 5, 4, 2)), ("ba,ca", rnd(3, 4), rnd(5, 4)),
               ("bn,anm,bm->ba", rnd(3, 4), rnd(2, 4, 5), rnd(3, 5)), ("cb,ba", rnd(2, 3), rnd(3, 4)),
               ("ij, jk -> ki", rnd(2, 3), rnd(3, 4)), ("iij,jk->ik", rnd(3, 3, 4), rnd(4, 2))]
    for k, (eq, *ops) in enumerate(einsums):
        feeds = {"x%d" % i: v for i, v in enumerate(ops)}
        multis.append(("einsum_%d" % k, feeds, multi("Einsum", feeds, equation=eq)))
    with tempfile.TemporaryDirectory() as tmp:
        for name, data, model in cases:
            multis.append((name, {"x": data}, model))
        for name, feeds, model in multis:
            path = os.path.join(tmp, name + ".onnx")
            onnx.save(model, path)
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            wants = sess.run(None, feeds)
            names = [o.name for o in model.graph.output]
            err = run_case(name, path, feeds, dict(zip(names, wants)), {}, opt, run, tmp)
            check(err is None, name + ("" if err is None else ": " + err))
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
