#!/usr/bin/env python3
"""ResNet style CNN (BasicBlocks) -> ONNX.

input  pixels <dtype> [batch, 3, image, image]
output logits <dtype> [batch, classes]

conv1 7x7/2 -> bn1 -> Relu -> MaxPool 3x3/2
-> layer{1..N}: BasicBlocks (conv 3x3 -> BN -> Relu -> conv 3x3 -> BN -> Add(identity) -> Relu),
   stage i has width*2^(i-1) channels, first block of stages i>1 has stride 2 and a
   downsample (Conv 1x1/2 -> BN) on the identity path
-> GlobalAveragePool -> Flatten -> fc (Gemm, weight [in, out]).
Defaults are ResNet-18 (--blocks 2,2,2,2 --width 64 --image 224 --classes 1000).
"""

from __future__ import annotations

import math
import os
import sys

from onnx import TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import GraphBuilder, linear  # noqa: E402


def get_parser():
    p = common.make_parser(__doc__, lm=False)
    m = p.add_argument_group("model")
    m.add_argument("--blocks", type=common.int_list, default="2,2,2,2",
                   help="BasicBlocks per stage, comma separated")
    m.add_argument("--width", type=common.positive_int, default=64, help="channels of the stem / stage 1")
    m.add_argument("--image", type=common.positive_int, default=224, help="input height = width")
    m.add_argument("--classes", type=common.positive_int, default=1000, help="output classes")
    m.add_argument("--eps", type=float, default=1e-5, help="BatchNormalization epsilon")
    return p


def conv(g: GraphBuilder, x: str, name: str, cin: int, cout: int, k: int, stride: int) -> str:
    std = math.sqrt(2.0 / (cin * k * k))  # He init keeps activations O(1)
    w = g.param(f"{name}.weight", [cout, cin, k, k], "normal", std)
    pad = k // 2
    return g.op("Conv", [x, w], name, kernel_shape=[k, k], strides=[stride, stride],
                pads=[pad, pad, pad, pad], dilations=[1, 1], group=1)


def bn(g: GraphBuilder, x: str, name: str, c: int, eps: float) -> str:
    scale = g.param(f"{name}.weight", [c], "ones")
    bias = g.param(f"{name}.bias", [c], "zeros")
    mean = g.param(f"{name}.running_mean", [c], "normal", 0.1)
    var = g.param(f"{name}.running_var", [c], "uniform", low=0.5, high=1.5)
    return g.op("BatchNormalization", [x, scale, bias, mean, var], name, epsilon=float(eps), momentum=0.9)


def basic_block(g, x, name, cin, cout, stride, eps):
    y = conv(g, x, f"{name}.conv1", cin, cout, 3, stride)
    y = bn(g, y, f"{name}.bn1", cout, eps)
    y = g.op("Relu", [y], f"{name}.relu1")
    y = conv(g, y, f"{name}.conv2", cout, cout, 3, 1)
    y = bn(g, y, f"{name}.bn2", cout, eps)
    if stride != 1 or cin != cout:
        x = conv(g, x, f"{name}.downsample.conv", cin, cout, 1, stride)
        x = bn(g, x, f"{name}.downsample.bn", cout, eps)
    y = g.op("Add", [y, x], f"{name}.residual")
    return g.op("Relu", [y], f"{name}.relu2")


def build(args) -> "onnx.ModelProto":  # noqa: F821
    g = GraphBuilder(args, "resnet")
    B = g.dim(args.batch, "batch")
    x = g.input("pixels", g.dtype, [B, 3, args.image, args.image])
    w = args.width
    x = conv(g, x, "conv1", 3, w, 7, 2)
    x = bn(g, x, "bn1", w, args.eps)
    x = g.op("Relu", [x], "relu")
    x = g.op("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = w
    for si, n in enumerate(args.blocks):
        cout = w * (2 ** si)
        for bi in range(n):
            stride = 2 if (si > 0 and bi == 0) else 1
            x = basic_block(g, x, f"layer{si + 1}.{bi}", cin, cout, stride, args.eps)
            cin = cout
    x = g.op("GlobalAveragePool", [x], "avgpool")
    x = g.op("Flatten", [x], "flatten", axis=1)
    x = linear(g, x, "fc", cin, args.classes, bias=True, std=1.0 / math.sqrt(cin), gemm=True)
    g.output(x, g.dtype, [B, args.classes], name="logits")
    return g.model(doc=f"ResNet (BasicBlock) blocks={args.blocks} width={w} image={args.image} "
                       f"classes={args.classes}",
                   metadata={"colossal.model": "resnet"})


def main(argv=None) -> int:
    return common.run_main(build, get_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
