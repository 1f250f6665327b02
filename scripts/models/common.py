"""Shared helpers for the Colossal ONNX model generators.

Every generator (mlp.py, gpt2.py, llama.py, bert.py, resnet.py) builds its
graph through :class:`GraphBuilder`, which takes care of

* weight handling (``--weights real|external|none``) and dtypes
  (``--dtype float32|float16|bfloat16``),
* opset-dependent op signatures (ReduceMean axes as attribute/input, ...),
* unique, readable node / value names,
* building the final :class:`onnx.ModelProto`.

Weight modes
------------
real      initializers embedded in the .onnx (seeded numpy random values).
external  the same values, written at save time to ``<output basename>.data``
          (one file, every tensor at a 64-byte aligned offset).
none      "planning only": every tensor with >= ``INLINE_MAX_ELEMS`` elements is
          an EXTERNAL stub (location/offset/length set, 64-byte aligned) whose
          data file is never written and whose array is never materialized.
          Smaller tensors (shape constants, scalars, tiny biases) stay inline
          with real values.  The same threshold is used by ``external``, so
          ``external`` and ``none`` produce identical protos; only the data
          file differs.

Naming conventions
------------------
* Parameters: ``<module>.weight`` / ``<module>.bias`` (norms: ``.weight``/``.bias``,
  BatchNorm: ``.weight .bias .running_mean .running_var``).
* The main node of a module is named after the module (``h.0.attn.q_proj`` is
  the MatMul of that projection); helper nodes are ``<module>.<role>``
  (``h.0.attn.q_proj.bias_add``, ``h.0.attn.softmax`` ...).
* A node's output value has the node's name (``name:i`` for extra outputs).
* Shared constants are named ``const.<...>``; generated tables (causal mask,
  position ids, rotary cos/sin) carry a ``doc_string`` describing their content
  so a planner can recognize them even without data.
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Callable, List, Optional, Sequence, Union

import numpy as np
import onnx
from onnx import numpy_helper
from onnx import TensorProto, helper

INLINE_MAX_ELEMS = 64  # tensors with fewer elements are always stored inline
EXTERNAL_ALIGN = 64  # byte alignment of every tensor in the external data file
INT64_MAX = (1 << 63) - 1

DTYPES = {
    "float32": TensorProto.FLOAT,
    "float16": TensorProto.FLOAT16,
    "bfloat16": TensorProto.BFLOAT16,
}
_ITEMSIZE = {
    TensorProto.FLOAT: 4,
    TensorProto.FLOAT16: 2,
    TensorProto.BFLOAT16: 2,
    TensorProto.DOUBLE: 8,
    TensorProto.INT64: 8,
    TensorProto.INT32: 4,
    TensorProto.INT8: 1,
    TensorProto.UINT8: 1,
    TensorProto.BOOL: 1,
}
_NP_STORAGE = {  # numpy dtype used to produce raw_data
    TensorProto.FLOAT: np.float32,
    TensorProto.FLOAT16: np.float16,
    TensorProto.DOUBLE: np.float64,
    TensorProto.INT64: np.int64,
    TensorProto.INT32: np.int32,
    TensorProto.INT8: np.int8,
    TensorProto.UINT8: np.uint8,
    TensorProto.BOOL: np.bool_,
}
_FLOAT_TYPES = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE)

Shape = Sequence[int]


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def positive_int(s: str) -> int:
    v = int(s)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    return v


def int_list(s: str) -> List[int]:
    try:
        vals = [int(p) for p in s.replace(" ", "").split(",") if p != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma separated integers, got {s!r}")
    if not vals or any(v <= 0 for v in vals):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {s!r}")
    return vals


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except None / False ones (their help text says what happens)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help or ""
        return super()._get_help_string(action) if action.help else "(default: %(default)s)"


def make_parser(description: str, lm: bool = False, batch: bool = True) -> argparse.ArgumentParser:
    """Parser with the flags shared by every generator.

    lm=True adds --seq / --scale-op / --mask; batch=True adds --batch/--static.
    """
    p = argparse.ArgumentParser(description=description,
                                formatter_class=_HelpFormatter)
    g = p.add_argument_group("common")
    g.add_argument("-o", "--output", required=True, help="output .onnx path")
    g.add_argument("--opset", type=int, default=17, choices=range(13, 22), metavar="{13..21}",
                   help="ONNX opset version")
    g.add_argument("--seed", type=int, default=0, help="numpy seed for real/external weights")
    g.add_argument("--weights", choices=("real", "external", "none"), default="real",
                   help="real: embedded; external: <basename>.data file; "
                        "none: external stubs without data (planning only)")
    g.add_argument("--dtype", choices=tuple(DTYPES), default="float32",
                   help="parameter / compute dtype")
    if batch:
        g.add_argument("--batch", type=positive_int, default=1,
                       help="batch size (only written into the graph with --static)")
        g.add_argument("--static", action="store_true",
                       help="static input dims instead of dim_param 'batch'/'seq'")
    if lm:
        g.add_argument("--seq", type=positive_int, default=32,
                       help="max sequence length (position / mask / rotary table size); "
                            "the input seq dim with --static")
        g.add_argument("--scale-op", choices=("mul", "div"), default="mul",
                       help="attention scaling: Mul by 1/sqrt(D) or Div by sqrt(D)")
    return p


def add_mask_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mask", choices=("add", "where"), default="add",
                   help="causal mask: add = Add(scores, float mask const); "
                        "where = Where(bool tril const, scores, -1e9 const)")


def run_main(build: Callable[[argparse.Namespace], onnx.ModelProto],
             parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> int:
    args = parser.parse_args(argv)
    model = build(args)
    save_model(model, args.output, args.weights)
    size = os.path.getsize(args.output)
    n_params = count_parameters(model)
    print(f"wrote {args.output} ({size / 1024:.1f} KiB, {len(model.graph.node)} nodes, "
          f"{len(model.graph.initializer)} initializers, {n_params:,} parameters, "
          f"weights={args.weights})")
    return 0


# --------------------------------------------------------------------------
# tensors
# --------------------------------------------------------------------------

def numel(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def itemsize(data_type: int) -> int:
    return _ITEMSIZE[data_type]


def float32_to_bfloat16_bits(a: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even float32 -> bfloat16, returned as uint16 bits."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    bits = a.view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    out = rounded.astype(np.uint16)
    nan = np.isnan(a)
    if nan.any():
        out[nan] = 0x7FC0
    return out


def array_to_raw(a: np.ndarray, data_type: int) -> bytes:
    if data_type == TensorProto.BFLOAT16:
        return float32_to_bfloat16_bits(a).tobytes()
    return np.ascontiguousarray(a, dtype=_NP_STORAGE[data_type]).tobytes()


def make_tensor(name: str, data_type: int, shape: Shape, array: np.ndarray,
                doc: Optional[str] = None) -> TensorProto:
    t = TensorProto()
    t.name = name
    t.data_type = data_type
    t.dims.extend(int(d) for d in shape)
    t.raw_data = array_to_raw(np.asarray(array).reshape(tuple(shape)), data_type)
    if doc:
        t.doc_string = doc
    return t


def make_external_stub(name: str, data_type: int, shape: Shape, location: str,
                       offset: int, doc: Optional[str] = None) -> TensorProto:
    """A tensor whose data lives (would live) in an external file. No data allocated."""
    t = TensorProto()
    t.name = name
    t.data_type = data_type
    t.dims.extend(int(d) for d in shape)
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)),
                 ("length", str(numel(shape) * itemsize(data_type)))):
        e = t.external_data.add()
        e.key = k
        e.value = v
    if doc:
        t.doc_string = doc
    return t


def align(n: int, a: int = EXTERNAL_ALIGN) -> int:
    return (n + a - 1) // a * a


def data_file_name(output: Optional[str]) -> str:
    """External data file name for an output path: model.onnx -> model.data."""
    base = os.path.basename(output) if output else "model.onnx"
    stem = base[:-5] if base.endswith(".onnx") else base
    return stem + ".data"


def count_parameters(model: onnx.ModelProto) -> int:
    """Elements of all initializers except shared constants and generated tables."""
    return sum(numel(t.dims) for t in model.graph.initializer
               if not t.name.startswith("const.") and not t.doc_string.startswith("colossal.table"))


def save_model(model: onnx.ModelProto, output: str, weights: str) -> None:
    """Write the model.  For weights=external, first move every initializer with
    >= INLINE_MAX_ELEMS elements into ``<basename>.data`` (64-byte aligned)."""
    out_dir = os.path.dirname(os.path.abspath(output))
    os.makedirs(out_dir, exist_ok=True)
    if weights == "external":
        loc = data_file_name(output)
        with open(os.path.join(out_dir, loc), "wb") as f:
            offset = 0
            for t in model.graph.initializer:
                if numel(t.dims) < INLINE_MAX_ELEMS or t.data_location == TensorProto.EXTERNAL:
                    continue
                if not t.HasField("raw_data"):
                    raise RuntimeError(f"initializer {t.name} has no raw_data")
                raw = t.raw_data
                offset = align(offset)
                f.seek(offset)
                f.write(raw)
                t.ClearField("raw_data")
                t.data_location = TensorProto.EXTERNAL
                del t.external_data[:]
                for k, v in (("location", loc), ("offset", str(offset)), ("length", str(len(raw)))):
                    e = t.external_data.add()
                    e.key = k
                    e.value = v
                offset += len(raw)
    # Serialize ourselves: onnx.save_model would try to (re)write external data.
    with open(output, "wb") as f:
        f.write(model.SerializeToString())


# --------------------------------------------------------------------------
# graph builder
# --------------------------------------------------------------------------

class GraphBuilder:
    def __init__(self, args: argparse.Namespace, graph_name: str):
        self.args = args
        self.opset: int = args.opset
        self.weights: str = args.weights
        self.dtype_name: str = args.dtype
        self.dtype: int = DTYPES[args.dtype]
        self.rng = np.random.default_rng(args.seed)
        self.static: bool = bool(getattr(args, "static", False))
        self.location = data_file_name(getattr(args, "output", None))
        self.graph_name = graph_name
        self.nodes: List[onnx.NodeProto] = []
        self.initializers: List[TensorProto] = []
        self.inputs: List[onnx.ValueInfoProto] = []
        self.outputs: List[onnx.ValueInfoProto] = []
        self._values: set = set()
        self._node_names: set = set()
        self._const_cache: dict = {}
        self._cache: dict = {}
        self._ext_offset = 0

    # ---- naming -----------------------------------------------------------
    def _unique_node_name(self, name: str) -> str:
        base, i = name, 1
        while name in self._node_names or name in self._values:
            name = f"{base}_{i}"
            i += 1
        return name

    def _claim_value(self, name: str) -> str:
        if name in self._values:
            raise ValueError(f"duplicate value name {name!r}")
        self._values.add(name)
        return name

    # ---- graph IO ---------------------------------------------------------
    def dim(self, value: int, param: str) -> Union[int, str]:
        return int(value) if self.static else param

    def input(self, name: str, elem_type: int, shape: Sequence[Union[int, str]]) -> str:
        self._claim_value(name)
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))
        return name

    def output(self, value: str, elem_type: int, shape: Sequence[Union[int, str]],
               name: Optional[str] = None) -> str:
        if name is not None and name != value:
            value = self.rename_value(value, name)
        self.outputs.append(helper.make_tensor_value_info(value, elem_type, list(shape)))
        return value

    def rename_value(self, old: str, new: str) -> str:
        """Rename a node output (and its uses); falls back to an Identity for
        graph inputs / initializers."""
        producer = [n for n in self.nodes if old in n.output]
        if not producer:
            return self.op("Identity", [old], new, out=new)
        self._claim_value(new)
        self._values.discard(old)
        for n in self.nodes:
            for lst in (n.input, n.output):
                for i, v in enumerate(lst):
                    if v == old:
                        lst[i] = new
        return new

    # ---- nodes ------------------------------------------------------------
    def op(self, op_type: str, inputs: Sequence[str], name: str, n_out: int = 1,
           out: Optional[Union[str, Sequence[str]]] = None, **attrs) -> Union[str, List[str]]:
        name = self._unique_node_name(name)
        self._node_names.add(name)
        if out is None:
            outs = [name] if n_out == 1 else [f"{name}:{i}" for i in range(n_out)]
        else:
            outs = [out] if isinstance(out, str) else list(out)
        for o in outs:
            self._claim_value(o)
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        return outs[0] if len(outs) == 1 else outs

    # ---- tensors ----------------------------------------------------------
    def tensor(self, name: str, shape: Shape, data_type: int, fn: Callable[[], np.ndarray],
               doc: Optional[str] = None) -> str:
        """Add an initializer; ``fn`` produces the values and is only called if
        the values are stored (never for large tensors with --weights none)."""
        self._claim_value(name)
        shape = [int(d) for d in shape]
        n = numel(shape)
        if self.weights == "none" and n >= INLINE_MAX_ELEMS:
            self._ext_offset = align(self._ext_offset)
            t = make_external_stub(name, data_type, shape, self.location, self._ext_offset, doc)
            self._ext_offset += n * itemsize(data_type)
        else:
            arr = np.asarray(fn())
            if tuple(arr.shape) != tuple(shape):
                arr = np.broadcast_to(arr, shape)
            t = make_tensor(name, data_type, shape, arr, doc)
        self.initializers.append(t)
        return name

    def param(self, name: str, shape: Shape, init: str = "normal", std: float = 0.02,
              low: float = 0.0, high: float = 1.0, data_type: Optional[int] = None) -> str:
        """Learned parameter. init: normal(0, std) | ones | zeros | uniform(low, high)."""
        dt = self.dtype if data_type is None else data_type
        shape = tuple(int(d) for d in shape)

        def fn():
            if init == "normal":
                return self.rng.normal(0.0, std, size=shape).astype(np.float32)
            if init == "uniform":
                return self.rng.uniform(low, high, size=shape).astype(np.float32)
            if init == "ones":
                return np.ones(shape, np.float32)
            if init == "zeros":
                return np.zeros(shape, np.float32)
            raise ValueError(init)

        return self.tensor(name, shape, dt, fn)

    def const(self, values, data_type: Optional[int] = None, name: Optional[str] = None) -> str:
        """Small shared constant (deduplicated). Float constants default to the model dtype."""
        arr = np.asarray(values)
        if data_type is None:
            if arr.dtype == np.bool_:
                data_type = TensorProto.BOOL
            elif np.issubdtype(arr.dtype, np.integer):
                data_type = TensorProto.INT64
            else:
                data_type = self.dtype
        key = (data_type, arr.shape, array_to_raw(arr, data_type))
        if key in self._const_cache:
            return self._const_cache[key]
        if name is None:
            flat = arr.reshape(-1)
            if flat.size <= 8:
                txt = "_".join(_fmt(v) for v in flat)
                name = f"const.{txt}" if arr.ndim else f"const.scalar_{txt}"
            else:
                name = f"const.t{len(self._const_cache)}"
            if data_type != TensorProto.INT64:
                name += "." + TensorProto.DataType.Name(data_type).lower()
        while name in self._values:
            name += "_"
        self.tensor(name, arr.shape, data_type, lambda: arr)
        self._const_cache[key] = name
        return name

    def i64(self, values) -> str:
        return self.const(np.asarray(values, dtype=np.int64), TensorProto.INT64)

    def scalar(self, v: float) -> str:
        return self.const(np.asarray(v, dtype=np.float32), self.dtype)

    # ---- opset dependent helpers ---------------------------------------------
    def reduce(self, op_type: str, x: str, axes: Sequence[int], name: str, keepdims: int = 1) -> str:
        axes_as_input = self.opset >= 18 or op_type == "ReduceSum"
        if axes_as_input:
            return self.op(op_type, [x, self.i64(list(axes))], name, keepdims=keepdims)
        return self.op(op_type, [x], name, axes=list(axes), keepdims=keepdims)

    def unsqueeze(self, x: str, axes: Sequence[int], name: str) -> str:
        return self.op("Unsqueeze", [x, self.i64(list(axes))], name)

    def squeeze(self, x: str, axes: Sequence[int], name: str) -> str:
        return self.op("Squeeze", [x, self.i64(list(axes))], name)

    def reshape(self, x: str, shape: Sequence[int], name: str) -> str:
        return self.op("Reshape", [x, self.i64(list(shape))], name)

    def transpose(self, x: str, perm: Sequence[int], name: str) -> str:
        return self.op("Transpose", [x], name, perm=list(perm))

    def slice(self, x: str, starts, ends, axes: Sequence[int], name: str) -> str:
        """starts/ends: python int lists or names of 1-D int64 tensors."""
        s = starts if isinstance(starts, str) else self.i64(list(starts))
        e = ends if isinstance(ends, str) else self.i64(list(ends))
        return self.op("Slice", [x, s, e, self.i64(list(axes))], name)

    def split(self, x: str, sizes: Sequence[int], axis: int, name: str) -> List[str]:
        return self.op("Split", [x, self.i64(list(sizes))], name, n_out=len(sizes), axis=axis)

    def dim_of(self, x: str, axis: int, name: str) -> str:
        """1-D int64 tensor [x.shape[axis]] via Shape + Slice (cached)."""
        key = ("dim", x, axis)
        if key not in self._cache:
            shp = self._cache.get(("shape", x))
            if shp is None:
                shp = self.op("Shape", [x], f"{x}.shape" if name is None else f"{name}.shape")
                self._cache[("shape", x)] = shp
            self._cache[key] = self.slice(shp, [axis], [axis + 1], [0], name)
        return self._cache[key]

    # ---- model --------------------------------------------------------------
    def model(self, doc: str = "", metadata: Optional[dict] = None) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.graph_name, self.inputs, self.outputs,
                                  initializer=self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                                  producer_name="colossal-scripts", producer_version="0.1",
                                  doc_string=doc)
        # lowest IR version that supports the opset (7 for opset 13 ... 10 for opset 21),
        # so older ONNX readers accept the file.
        model.ir_version = max(7, helper.find_min_ir_version_for(list(model.opset_import)))
        md = {"colossal.weights": self.weights, "colossal.dtype": self.dtype_name}
        md.update(metadata or {})
        helper.set_model_props(model, {k: str(v) for k, v in md.items()})
        return model


def _fmt(v) -> str:
    if isinstance(v, (np.bool_, bool)):
        return str(bool(v)).lower()
    if isinstance(v, (np.integer, int)):
        return str(int(v)).replace("-", "m")
    f = float(v)
    if f == int(f) and abs(f) < 1e6:
        return str(int(f)).replace("-", "m")
    return f"{f:.6g}".replace("-", "m").replace("+", "")


# --------------------------------------------------------------------------
# layers
# --------------------------------------------------------------------------

def linear(g: GraphBuilder, x: str, name: str, d_in: int, d_out: int, bias: bool = True,
           std: float = 0.02, gemm: bool = False) -> str:
    """y = x @ W + b with W [d_in, d_out] (MatMul + Add, or Gemm for 2-D inputs)."""
    w = g.param(f"{name}.weight", [d_in, d_out], "normal", std)
    b = g.param(f"{name}.bias", [d_out], "zeros") if bias else None
    if gemm:
        return g.op("Gemm", [x, w] + ([b] if b else []), name, alpha=1.0, beta=1.0, transA=0, transB=0)
    y = g.op("MatMul", [x, w], name)
    if b:
        y = g.op("Add", [y, b], f"{name}.bias_add")
    return y


def lm_head(g: GraphBuilder, h: str, embedding: str, d: int, vocab: int, tied: bool) -> str:
    """Logits: h @ embedding^T when tied, else a bias-free linear `lm_head`."""
    if tied:
        wt = g.transpose(embedding, [1, 0], "lm_head.weight_transpose")
        return g.op("MatMul", [h, wt], "lm_head")
    return linear(g, h, "lm_head", d, vocab, bias=False)


def layer_norm(g: GraphBuilder, x: str, name: str, dim: int, eps: float = 1e-5) -> str:
    """LayerNormalization (opset >= 17) or its standard decomposition."""
    w = g.param(f"{name}.weight", [dim], "ones")
    b = g.param(f"{name}.bias", [dim], "zeros")
    if g.opset >= 17:
        return g.op("LayerNormalization", [x, w, b], name, axis=-1, epsilon=float(eps))
    mean = g.reduce("ReduceMean", x, [-1], f"{name}.mean")
    xc = g.op("Sub", [x, mean], f"{name}.sub")
    sq = g.op("Pow", [xc, g.scalar(2.0)], f"{name}.pow")
    var = g.reduce("ReduceMean", sq, [-1], f"{name}.var")
    ve = g.op("Add", [var, g.scalar(eps)], f"{name}.add_eps")
    std = g.op("Sqrt", [ve], f"{name}.sqrt")
    xn = g.op("Div", [xc, std], f"{name}.div")
    xs = g.op("Mul", [xn, w], f"{name}.mul_weight")
    return g.op("Add", [xs, b], name)


def rms_norm(g: GraphBuilder, x: str, name: str, dim: int, eps: float = 1e-6) -> str:
    """Pow 2 -> ReduceMean(-1) -> Add eps -> Sqrt -> Reciprocal -> Mul x -> Mul weight."""
    w = g.param(f"{name}.weight", [dim], "ones")
    sq = g.op("Pow", [x, g.scalar(2.0)], f"{name}.pow")
    ms = g.reduce("ReduceMean", sq, [-1], f"{name}.mean")
    me = g.op("Add", [ms, g.scalar(eps)], f"{name}.add_eps")
    rt = g.op("Sqrt", [me], f"{name}.sqrt")
    inv = g.op("Reciprocal", [rt], f"{name}.reciprocal")
    xn = g.op("Mul", [x, inv], f"{name}.mul_x")
    return g.op("Mul", [xn, w], name)


def gelu(g: GraphBuilder, x: str, name: str) -> str:
    """Erf GELU as exported by PyTorch: Mul(Mul(x, Add(Erf(Div(x, sqrt2)), 1)), 0.5)."""
    d = g.op("Div", [x, g.scalar(math.sqrt(2.0))], f"{name}.div")
    e = g.op("Erf", [d], f"{name}.erf")
    a = g.op("Add", [e, g.scalar(1.0)], f"{name}.add")
    m = g.op("Mul", [x, a], f"{name}.mul")
    return g.op("Mul", [m, g.scalar(0.5)], name)


def silu(g: GraphBuilder, x: str, name: str) -> str:
    s = g.op("Sigmoid", [x], f"{name}.sigmoid")
    return g.op("Mul", [x, s], name)


def neg_inf_value(g: GraphBuilder) -> float:
    """Large negative mask value that is finite in the model dtype."""
    return -1e4 if g.dtype == TensorProto.FLOAT16 else -1e9


def causal_mask(g: GraphBuilder, kind: str, max_seq: int, ref_input: str) -> tuple:
    """Causal mask shared by all layers, built in the graph (no stored table),
    the way exporters do (torch's generate_square_subsequent_mask):

    kind=add:   ('add', m) with m = Trilu(ConstantOfShape([S,S], -1e9), upper, k=1):
                0 on/below the diagonal, -1e9 above.
    kind=where: ('where', b, neg) with b = Cast(Trilu(ConstantOfShape([S,S], 1)),
                bool): True on/below the diagonal (keep).
    S is the sequence length: Shape(ref_input)[1], or max_seq with --static.
    Because nothing is stored, the compiler sees the causal structure even in
    planning-only models (--weights none). Below opset 14 (no Trilu) the mask
    is a stored [1,1,max_seq,max_seq] table sliced to [S,S].
    """
    n = max_seq
    neg = neg_inf_value(g)
    if g.opset < 14:
        # Trilu needs opset 14: store the table instead (its values are then
        # only known with real weights).
        if kind == "add":
            m = g.tensor("causal_mask", [1, 1, n, n], g.dtype,
                         lambda: np.triu(np.full((n, n), neg, np.float32), k=1)[None, None],
                         doc=f"colossal.table=causal_mask_add; shape [1,1,{n},{n}]; "
                             f"value[i,j] = 0 if j <= i else {neg:g}")
        else:
            m = g.tensor("causal_mask", [1, 1, n, n], TensorProto.BOOL,
                         lambda: np.tril(np.ones((n, n), np.bool_))[None, None],
                         doc=f"colossal.table=causal_mask_bool; shape [1,1,{n},{n}]; "
                             f"value[i,j] = (j <= i)")
        if not g.static:
            s = g.dim_of(ref_input, 1, "seq_len")
            ends = g.op("Concat", [s, s], "causal_mask.ends", axis=0)
            m = g.slice(m, [0, 0], ends, [2, 3], "causal_mask.slice")
        return ("add", m) if kind == "add" else ("where", m, g.scalar(neg))
    if g.static:
        shape = g.i64([n, n])
    else:
        s = g.dim_of(ref_input, 1, "seq_len")
        shape = g.op("Concat", [s, s], "causal_mask.shape", axis=0)
    f32 = lambda v: numpy_helper.from_array(np.asarray([v], dtype=np.float32))
    if kind == "add":
        full = g.op("ConstantOfShape", [shape], "causal_mask.fill", value=f32(neg))
        m = g.op("Trilu", [full, g.i64(1)], "causal_mask.triu", upper=1)
        if g.dtype != TensorProto.FLOAT:
            m = g.op("Cast", [m], "causal_mask.cast", to=g.dtype)
        return ("add", m)
    if kind == "where":
        ones = g.op("ConstantOfShape", [shape], "causal_mask.ones", value=f32(1.0))
        tril = g.op("Trilu", [ones], "causal_mask.tril", upper=0)
        b = g.op("Cast", [tril], "causal_mask", to=TensorProto.BOOL)
        return ("where", b, g.scalar(neg))
    raise ValueError(kind)


def position_ids(g: GraphBuilder, max_seq: int, ref_input: str) -> str:
    """int64 [1, S]: constant [1, max_seq] = 0..max_seq-1, sliced to S when symbolic."""
    p = g.tensor("position_ids", [1, max_seq], TensorProto.INT64,
                 lambda: np.arange(max_seq, dtype=np.int64)[None],
                 doc=f"colossal.table=position_ids; shape [1,{max_seq}]; value[0,j] = j")
    if not g.static:
        s = g.dim_of(ref_input, 1, "seq_len")
        p = g.slice(p, [0], s, [1], "position_ids.slice")
    return p


def attention(g: GraphBuilder, x: str, name: str, hidden: int, heads: int,
              kv_heads: Optional[int] = None, bias: bool = True, mask: Optional[tuple] = None,
              rope: Optional[Callable[[str, str], str]] = None, scale_op: str = "mul",
              head_dim: Optional[int] = None) -> str:
    """Standard multi-head attention.

    q/k/v = MatMul(x, W[in,out]) (+ Add bias)
    q: Reshape [0,0,H,D] (-> rope) -> Transpose [0,2,1,3]       => [B,H,S,D]
    k: Reshape [0,0,Hkv,D] (-> rope) (-> GQA repeat) -> Transpose [0,2,3,1] => [B,H,D,S]
    v: Reshape [0,0,Hkv,D] (-> GQA repeat) -> Transpose [0,2,1,3]     => [B,H,S,D]
    scores = MatMul(q, kT) -> Mul(1/sqrt(D)) | Div(sqrt(D))
          -> Add(mask) | Where(mask, scores, -1e9)   (if mask)
    probs = Softmax(axis=-1); ctx = MatMul(probs, v)
    ctx -> Transpose [0,2,1,3] -> Reshape [0,0,H*D] -> o_proj
    GQA repeat: Unsqueeze(3) -> Expand [1,1,1,H/Hkv,1] -> Reshape [0,0,H,D].
    """
    kv_heads = kv_heads or heads
    d = head_dim or hidden // heads
    if heads % kv_heads:
        raise ValueError(f"heads ({heads}) must be a multiple of kv_heads ({kv_heads})")
    q = linear(g, x, f"{name}.q_proj", hidden, heads * d, bias)
    k = linear(g, x, f"{name}.k_proj", hidden, kv_heads * d, bias)
    v = linear(g, x, f"{name}.v_proj", hidden, kv_heads * d, bias)
    q = g.reshape(q, [0, 0, heads, d], f"{name}.q_reshape")
    k = g.reshape(k, [0, 0, kv_heads, d], f"{name}.k_reshape")
    v = g.reshape(v, [0, 0, kv_heads, d], f"{name}.v_reshape")
    if rope is not None:
        q = rope(q, f"{name}.q_rope")
        k = rope(k, f"{name}.k_rope")
    if kv_heads != heads:
        rep = heads // kv_heads
        for t in ("k", "v"):
            src = k if t == "k" else v
            u = g.unsqueeze(src, [3], f"{name}.{t}_repeat.unsqueeze")
            e = g.op("Expand", [u, g.i64([1, 1, 1, rep, 1])], f"{name}.{t}_repeat.expand")
            r = g.reshape(e, [0, 0, heads, d], f"{name}.{t}_repeat")
            if t == "k":
                k = r
            else:
                v = r
    q = g.transpose(q, [0, 2, 1, 3], f"{name}.q_transpose")
    kt = g.transpose(k, [0, 2, 3, 1], f"{name}.k_transpose")
    v = g.transpose(v, [0, 2, 1, 3], f"{name}.v_transpose")
    s = g.op("MatMul", [q, kt], f"{name}.scores")
    if scale_op == "mul":
        s = g.op("Mul", [s, g.scalar(1.0 / math.sqrt(d))], f"{name}.scale")
    else:
        s = g.op("Div", [s, g.scalar(math.sqrt(d))], f"{name}.scale")
    if mask is not None:
        if mask[0] == "add":
            s = g.op("Add", [s, mask[1]], f"{name}.mask_add")
        else:
            s = g.op("Where", [mask[1], s, mask[2]], f"{name}.mask_where")
    p = g.op("Softmax", [s], f"{name}.softmax", axis=-1)
    c = g.op("MatMul", [p, v], f"{name}.context")
    c = g.transpose(c, [0, 2, 1, 3], f"{name}.context_transpose")
    c = g.reshape(c, [0, 0, heads * d], f"{name}.context_reshape")
    return linear(g, c, f"{name}.o_proj", heads * d, hidden, bias)


# --------------------------------------------------------------------------
# checking
# --------------------------------------------------------------------------

def check_model_without_data(model: onnx.ModelProto, full_check: bool = True) -> None:
    """onnx.checker on an in-memory model whose external data file is absent.

    onnx 1.16's checker stats every external ``location`` relative to the
    current directory even for in-memory protos (it never reads the data, nor
    checks its size).  Run it from a scratch directory holding empty
    placeholder files with those names.
    """
    import tempfile

    locations = {e.value for t in model.graph.initializer
                 for e in t.external_data if e.key == "location"}
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="colossal-check-") as d:
        for loc in locations:
            path = os.path.join(d, loc)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "wb").close()
        os.chdir(d)
        try:
            onnx.checker.check_model(model, full_check=full_check)
        finally:
            os.chdir(cwd)
