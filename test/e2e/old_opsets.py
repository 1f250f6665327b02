#!/usr/bin/env python3
"""Models of opsets 7-12 import (upgraded to 13 by ONNX's version converter)
and run equal to onnxruntime on the original model; opsets the converter
cannot take, or newer than 21, are refused with a message.

Models: hand-built graphs in the old forms the upgrade must rewrite
(opset 9: Unsqueeze/Squeeze with an `axes` attribute, Softmax over a
flattened axis, BatchNormalization, Dropout, Upsample; opset 11: Split
with a `split` attribute, ReduceSum with an `axes` attribute; opset 7:
Gemm with a broadcast bias), plus a small transformer and a torchvision
ResNet exported by torch at opsets 9, 11 and 12.

usage: test/e2e/old_opsets.py --build BUILD
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper, version_converter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from checks import Checks  # noqa: E402
from run_vs_onnxruntime import run_case  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def mlp_opset9(rng):
    """MatMul/Add/Relu, Unsqueeze+Squeeze (axes attribute), Softmax over a
    flattened axis (opset < 13 semantics), Dropout (inference), Gemm."""
    w1 = rng.standard_normal((8, 16)).astype(np.float32)
    b1 = rng.standard_normal(16).astype(np.float32)
    w2 = rng.standard_normal((16, 4)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Add", ["h", "b1"], ["hb"]),
        helper.make_node("Relu", ["hb"], ["r"]),
        helper.make_node("Dropout", ["r"], ["d"], ratio=0.5),
        helper.make_node("Unsqueeze", ["d"], ["u"], axes=[1]),
        helper.make_node("Squeeze", ["u"], ["s"], axes=[1]),
        helper.make_node("Gemm", ["s", "w2", "b2"], ["g"]),
        helper.make_node("Softmax", ["g"], ["y"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "mlp9", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])],
        [init("w1", w1), init("b1", b1), init("w2", w2),
         init("b2", np.zeros(4, np.float32) + 0.1)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)],
                             ir_version=4)


def cnn_opset9(rng):
    """Conv, BatchNormalization (opset 9), Relu, MaxPool, GlobalAveragePool,
    Flatten, Gemm."""
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3
    g = rng.random(4).astype(np.float32) + 0.5
    b = rng.standard_normal(4).astype(np.float32)
    m = rng.standard_normal(4).astype(np.float32) * 0.1
    v = rng.random(4).astype(np.float32) + 0.5
    fc = rng.standard_normal((4, 5)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["n"]),
        helper.make_node("Relu", ["n"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "cnn9", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])],
        [init("w", w), init("g", g), init("b", b), init("m", m), init("v", v),
         init("fc", fc), init("fcb", np.full(5, -0.2, np.float32))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)],
                             ir_version=4)


def split_reduce_opset11(rng):
    """Split with a `split` attribute and ReduceSum with an `axes` attribute
    (both inputs from opset 13 on), Concat, Mul."""
    nodes = [
        helper.make_node("Split", ["x"], ["a", "b"], axis=1, split=[2, 4]),
        helper.make_node("ReduceSum", ["b"], ["rs"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["a", "rs"], ["m"]),
        helper.make_node("Concat", ["m", "b"], ["y"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "split11", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 6])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)],
                             ir_version=6)


def gemm_opset7(rng):
    """Gemm with a broadcast bias and Sigmoid, at opset 7."""
    w = rng.standard_normal((5, 3)).astype(np.float32)
    c = rng.standard_normal(3).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w", "c"], ["g"]),
             helper.make_node("Sigmoid", ["g"], ["y"])]
    graph = helper.make_graph(
        nodes, "gemm7", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 3])],
        [init("w", w), init("c", c)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 7)],
                             ir_version=4)


def torch_exports(tmp, rng):
    """A small pre-norm transformer block stack and a torchvision ResNet,
    exported by torch at opsets 9, 11 and 12 (LayerNorm decomposed,
    Unsqueeze/Split with attributes, Softmax of the old semantics)."""
    import warnings

    import torch
    import torch.nn as nn
    import torchvision

    class Block(nn.Module):
        def __init__(self, d=32, heads=4):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
            self.heads = heads

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
            q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2)
                       for z in (q, k, v))
            a = torch.softmax(q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5, dim=-1)
            y = (a @ v).transpose(1, 2).reshape(b, t, d)
            x = x + self.proj(y)
            return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(x))))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(64, 32)
            self.blocks = nn.Sequential(Block(), Block())
            self.head = nn.Linear(32, 64)

        def forward(self, ids):
            return self.head(self.blocks(self.emb(ids)))

    torch.manual_seed(0)
    out = []
    ids = torch.tensor(rng.integers(0, 64, (2, 16)))
    img = torch.tensor(rng.standard_normal((2, 3, 32, 32)).astype(np.float32))
    resnet = torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock,
                                              [1, 1, 1, 1], num_classes=10).eval()
    for opset in (9, 11, 12):
        for name, net, x in (("block", Net().eval(), ids), ("resnet", resnet, img)):
            path = os.path.join(tmp, "%s_torch_opset%d.onnx" % (name, opset))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(net, (x,), path, opset_version=opset,
                                  input_names=["x"], output_names=["y"])
            out.append(("%s_torch_opset%d" % (name, opset), onnx.load(path), {}))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    opt = os.path.join(args.build, "bin", "colossal-opt")
    run = os.path.join(args.build, "bin", "colossal-run")
    rng = np.random.default_rng(0)
    check = Checks()

    with tempfile.TemporaryDirectory() as tmp:
        cases = [("mlp_opset9", mlp_opset9(rng), {}),
                 ("cnn_opset9", cnn_opset9(rng), {}),
                 ("split_opset11", split_reduce_opset11(rng), {}),
                 ("gemm_opset7", gemm_opset7(rng), {})]
        cases += torch_exports(tmp, rng)
        for name, model, bindings in cases:
            onnx.checker.check_model(model)
            path = os.path.join(tmp, name + ".onnx")
            onnx.save(model, path)
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            feeds = {}
            for vi in sess.get_inputs():
                shape = [bindings.get(d, d) if isinstance(d, str) else d for d in vi.shape]
                if vi.type == "tensor(int64)":
                    feeds[vi.name] = rng.integers(0, 60, size=shape).astype(np.int64)
                else:
                    feeds[vi.name] = rng.standard_normal(shape).astype(np.float32)
            outs = sess.run(None, feeds)
            expected = {o.name: v for o, v in zip(sess.get_outputs(), outs)}
            err = run_case(name, path, feeds, expected, bindings, opt, run, tmp)
            check(err is None, "%s (opset %d) runs equal to onnxruntime%s" % (
                name, model.opset_import[0].version, "" if err is None else ": " + err))

        # Refusals: older than the converter, newer than the importer.
        for opset, want in ((6, "older than 7, the oldest ONNX's version converter"),
                            (22, "is newer than the newest Colossal imports (21)")):
            model = gemm_opset7(rng)
            model.opset_import[0].version = opset
            path = os.path.join(tmp, "opset%d.onnx" % opset)
            onnx.save(model, path)
            p = subprocess.run([opt, path, "--mode=infer", "--emit=plan", "-o",
                                os.path.join(tmp, "x.cplan")], capture_output=True, text=True)
            check(p.returncode != 0 and want in p.stderr,
                  "opset %d refused: %s" % (opset, p.stderr.strip()[:160]))

        # The converter's own refusal: Softmax 12 -> 13 needs the input's
        # rank, which a model without shapes does not give.
        g = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=1)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
        path = os.path.join(tmp, "noshape11.onnx")
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)]), path)
        p = subprocess.run([opt, path, "--mode=infer", "--emit=plan", "-o",
                            os.path.join(tmp, "x.cplan")], capture_output=True, text=True)
        check(p.returncode != 0 and "version converter cannot upgrade it to 13" in p.stderr
              and "Softmax" in p.stderr, "a model the converter cannot upgrade is refused "
              "with its reason: " + p.stderr.strip()[-160:])

    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
