#!/usr/bin/env python3
"""ONNX RNN, GRU and LSTM, unrolled on import, run equal to onnxruntime in
float32 across their attributes and optional inputs: each direction
(forward, reverse, bidirectional), both layouts, biases, initial states,
sequence_lens (sequences of different lengths, so the reverse direction
starts at each one's end), GRU's linear_before_reset, LSTM peepholes and
input_forget, clip, and non-default activations with alpha/beta. Y, Y_h and (LSTM) Y_c
are all compared, and a model that reads only Y_h checks the optional
outputs. onnxruntime has no layout=1 (batch-first): those cases are compared
with the same layer in layout 0 over transposed inputs, outputs transposed
back.

usage: test/e2e/recurrent_ops.py --build BUILD [-k SUBSTR]
"""
import argparse
import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from checks import Checks  # noqa: E402
from run_vs_onnxruntime import run_case  # noqa: E402

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
SEQ, BATCH, INPUT, HIDDEN = 4, 3, 2, 3


def model(op, feeds, outs, **attrs):
    order = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
    names = [n if n in feeds else "" for n in order]
    while names and not names[-1]:
        names.pop()
    node = helper.make_node(op, names, list(outs), **attrs)
    types = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int32): TensorProto.INT32}
    graph = helper.make_graph(
        [node], op.lower(),
        [helper.make_tensor_value_info(n, types[v.dtype], list(v.shape))
         for n, v in feeds.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outs if n])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def feeds_for(rng, op, dirs, layout, bias, init, lens, peep):
    g = GATES[op]
    x = rng.standard_normal((BATCH, SEQ, INPUT) if layout else (SEQ, BATCH, INPUT))
    f = {"X": x.astype(np.float32),
         "W": (rng.standard_normal((dirs, g * HIDDEN, INPUT)) * 0.6).astype(np.float32),
         "R": (rng.standard_normal((dirs, g * HIDDEN, HIDDEN)) * 0.6).astype(np.float32)}
    if bias:
        f["B"] = (rng.standard_normal((dirs, 2 * g * HIDDEN)) * 0.3).astype(np.float32)
    if lens:
        f["sequence_lens"] = np.array([SEQ, 2, 3], np.int32)
    state = (BATCH, dirs, HIDDEN) if layout else (dirs, BATCH, HIDDEN)
    if init:
        f["initial_h"] = (rng.standard_normal(state) * 0.5).astype(np.float32)
        if op == "LSTM":
            f["initial_c"] = (rng.standard_normal(state) * 0.5).astype(np.float32)
    if peep:
        f["P"] = (rng.standard_normal((dirs, 3 * HIDDEN)) * 0.5).astype(np.float32)
    return f


def reference(m, feeds, tmp, name):
    """onnxruntime's outputs of `m` on `feeds`; a layout=1 model runs as
    its layout-0 twin on transposed inputs."""
    node = m.graph.node[0]
    layout = next((a.i for a in node.attribute if a.name == "layout"), 0)
    if layout:
        twin = onnx.ModelProto()
        twin.CopyFrom(m)
        attrs = [a for a in twin.graph.node[0].attribute if a.name != "layout"]
        del twin.graph.node[0].attribute[:]
        twin.graph.node[0].attribute.extend(attrs)
        feeds = dict(feeds)
        feeds["X"] = feeds["X"].transpose(1, 0, 2).copy()
        for k in ("initial_h", "initial_c"):
            if k in feeds:
                feeds[k] = feeds[k].transpose(1, 0, 2).copy()
        for i in twin.graph.input:
            i.type.tensor_type.ClearField("shape")
        m = twin
    path = os.path.join(tmp, name + ".ref.onnx")
    onnx.save(m, path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    outs = sess.run(None, feeds)
    if layout:
        # Y [seq, dirs, batch, hidden] -> [batch, seq, dirs, hidden]; the
        # states [dirs, batch, hidden] -> [batch, dirs, hidden].
        outs = [o.transpose(2, 0, 1, 3) if o.ndim == 4 else o.transpose(1, 0, 2)
                for o in outs]
    return outs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("-k", default="")
    args = ap.parse_args()
    opt = os.path.join(args.build, "bin", "colossal-opt")
    run = os.path.join(args.build, "bin", "colossal-run")
    check = Checks()
    rng = np.random.default_rng(0)
    cases = []
    for op in ("RNN", "GRU", "LSTM"):
        outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
        for direction in ("forward", "reverse", "bidirectional"):
            dirs = 2 if direction == "bidirectional" else 1
            for layout in (0, 1):
                for extras in (False, True):
                    # extras: biases, initial states, sequence lengths (and
                    # LSTM peepholes) together.
                    f = feeds_for(rng, op, dirs, layout, extras, extras, extras,
                                  extras and op == "LSTM")
                    name = f"{op.lower()}_{direction}_l{layout}_{'full' if extras else 'bare'}"
                    attrs = {"hidden_size": HIDDEN, "direction": direction}
                    if layout:
                        attrs["layout"] = 1
                    cases.append((name, f, model(op, f, outs, **attrs)))
        f = feeds_for(rng, op, 1, 0, True, True, False, False)
        cases.append((f"{op.lower()}_clip", f,
                      model(op, f, outs, hidden_size=HIDDEN, clip=0.5)))
        cases.append((f"{op.lower()}_only_y_h", f,
                      model(op, f, ["", "Y_h"], hidden_size=HIDDEN)))
    for lbr in (0, 1):
        f = feeds_for(rng, "GRU", 2, 0, True, True, True, False)
        cases.append((f"gru_linear_before_reset{lbr}", f,
                      model("GRU", f, ["Y", "Y_h"], hidden_size=HIDDEN,
                            direction="bidirectional", linear_before_reset=lbr)))
    f = feeds_for(rng, "RNN", 2, 0, True, False, False, False)
    cases.append(("rnn_activations", f,
                  model("RNN", f, ["Y", "Y_h"], hidden_size=HIDDEN, direction="bidirectional",
                        activations=["LeakyRelu", "Elu"], activation_alpha=[0.2, 0.7])))
    cases.append(("rnn_softplus", f,
                  model("RNN", f, ["Y", "Y_h"], hidden_size=HIDDEN, direction="bidirectional",
                        activations=["Softplus", "Softsign"])))
    f = feeds_for(rng, "LSTM", 1, 0, True, True, False, False)
    cases.append(("lstm_activations", f,
                  model("LSTM", f, ["Y", "Y_h", "Y_c"], hidden_size=HIDDEN,
                        activations=["HardSigmoid", "Softsign", "Affine"],
                        activation_alpha=[0.3, 0.8], activation_beta=[0.4, 0.1])))
    f = feeds_for(rng, "LSTM", 2, 0, True, True, True, True)
    cases.append(("lstm_input_forget", f,
                  model("LSTM", f, ["Y", "Y_h", "Y_c"], hidden_size=HIDDEN,
                        direction="bidirectional", input_forget=1)))
    f = feeds_for(rng, "GRU", 1, 1, True, False, False, False)
    cases.append(("gru_activations", f,
                  model("GRU", f, ["Y", "Y_h"], hidden_size=HIDDEN, layout=1,
                        activations=["Sigmoid", "ScaledTanh"],
                        activation_alpha=[0.9], activation_beta=[1.2])))
    with tempfile.TemporaryDirectory() as tmp:
        for name, feeds, m in cases:
            if args.k not in name:
                continue
            path = os.path.join(tmp, name + ".onnx")
            onnx.save(m, path)
            wants = reference(m, feeds, tmp, name)
            names = [o.name for o in m.graph.output]
            err = run_case(name, path, feeds, dict(zip(names, wants)), {}, opt, run, tmp)
            check(err is None, name + ("" if err is None else ": " + err))
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
