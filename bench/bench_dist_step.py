#!/usr/bin/env python3
"""1 rank against 2 ranks (1 thread each): the training step time of a
small GPT for each executable layout (dp=2, dp=2 + ZeRO-3), measured side
by side, next to the cost model's prediction for the same plans on a cpu
cluster spec measured on this machine by this script (GEMM rate of one
thread, memory bandwidth and the share of it the runtime's memory-bound
kernels reach, Gloo all-reduce latency and bandwidth between two ranks). Also each plan's per-rank arena next to --estimate's predicted peak
memory. Prints figures; asserts nothing.

Usage: bench/bench_dist_step.py --build build [--steps 30] [--reps 5]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")

LAYERS, HIDDEN, HEADS, VOCAB, SEQ, BATCH = 4, 128, 4, 256, 64, 8
LAYOUTS = ["dp=2", "dp=2,zero=3", "tp=2"]


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def workspace(build, prefix):
    """A temporary directory with the benchmarks' GPT (LAYERS x HIDDEN, ...)
    and random tokens: the context the helpers below take."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    ctx = {"opt": os.path.join(build, "bin", "colossal-opt"),
           "run": os.path.join(build, "bin", "colossal-run"), "tmp": tmp}
    ctx["model"] = os.path.join(tmp, "gpt.onnx")
    sh([sys.executable, os.path.join(ROOT, "scripts", "models", "gpt2.py"),
        "--layers", str(LAYERS), "--hidden", str(HIDDEN), "--heads", str(HEADS),
        "--vocab", str(VOCAB), "--seq", str(SEQ), "-o", ctx["model"]])
    ctx["tokens"] = os.path.join(tmp, "tokens.bin")
    np.random.default_rng(0).integers(0, VOCAB, 1 << 16, dtype=np.uint16).tofile(ctx["tokens"])
    return ctx


GEMM_PROBE = """
import time, numpy as np
best = 0.0
for n in (128, 256, 512):
    a = np.random.rand(%d, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    a @ b
    t0 = time.perf_counter()
    for _ in range(20):
        a @ b
    dt = (time.perf_counter() - t0) / 20
    best = max(best, 2 * a.shape[0] * n * n / dt)
print(best)
"""


def gemm_flops_one_thread():
    """OpenBLAS SGEMM on one thread (a child process whose BLAS is pinned
    before it loads), at the sizes of the model's matmuls."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    out = sh([sys.executable, "-c", GEMM_PROBE % (BATCH * SEQ)], env=env)
    return float(out.stdout)


def memory_bandwidth():
    a = np.ones(32 << 20, dtype=np.float32)
    b = np.empty_like(a)
    np.copyto(b, a)
    t0 = time.perf_counter()
    for _ in range(5):
        np.copyto(b, a)
    dt = (time.perf_counter() - t0) / 5
    return 2 * a.nbytes / dt


def memory_bound_model(ctx, rows=BATCH * SEQ, n=4 * HIDDEN):
    """An ONNX model of the memory-bound kernels a transformer step runs,
    at the size of its MLP activations: a layer norm, GELU in its erf form
    (as torch exports it), a softmax, a residual add and a sum over rows."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    inits = [numpy_helper.from_array(np.ones(n, np.float32), "g"),
             numpy_helper.from_array(np.zeros(n, np.float32), "b"),
             numpy_helper.from_array(np.array(1.41421356, np.float32), "sqrt2"),
             numpy_helper.from_array(np.array(1.0, np.float32), "one"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half"),
             helper.make_tensor("axes", TensorProto.INT64, [1], [0])]
    node = helper.make_node
    nodes = [node("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1),
             node("Div", ["ln", "sqrt2"], ["d"]), node("Erf", ["d"], ["e"]),
             node("Add", ["e", "one"], ["e1"]), node("Mul", ["ln", "e1"], ["m"]),
             node("Mul", ["m", "half"], ["gelu"]),
             node("Softmax", ["gelu"], ["sm"], axis=-1),
             node("Add", ["sm", "x"], ["res"]),
             node("ReduceSum", ["res", "axes"], ["y"], keepdims=0)]
    g = helper.make_graph(
        nodes, "membound", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n])], initializer=inits)
    path = os.path.join(ctx["tmp"], "membound.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path, rows, n


def memory_bound_fraction(ctx, spec_path, runs=20):
    """The share of the copy bandwidth that the CPU runtime's memory-bound
    kernels reach (efficiency.memory_bandwidth_fraction as the spec defines
    it): the probe model's memory-bound instructions, each predicted by
    colossal-predict-times at the full copy bandwidth (`spec_path`), over
    their measured times (--profile of `runs` runs, 1 thread)."""
    model, rows, n = memory_bound_model(ctx)
    plan = os.path.join(ctx["tmp"], "membound.cplan")
    sh([ctx["opt"], model, "--mode=infer", "--emit=plan", "-o", plan,
        f"--cluster={spec_path}:gpus_per_node=1"])
    xs = os.path.join(ctx["tmp"], "membound.npy")
    np.save(xs, np.random.default_rng(0).standard_normal((rows, n)).astype(np.float32))
    trace = os.path.join(ctx["tmp"], "membound.trace.json")
    sh([ctx["run"], plan, "--threads", "1", "--input", f"x={xs}", "--bench", str(runs),
        "--warmup", "3", "--profile=" + trace])
    with open(trace.replace(".json", ".summary.json")) as f:
        rows_ = [r for r in json.load(f)["by_op"]
                 if r["category"] == "compute" and r["op"] != "matmul"]
    measured = sum(r["measured_s"] for r in rows_)
    predicted = sum(r["predicted_s"] for r in rows_)
    return min(1.0, predicted / measured), {r["op"]: r["measured_over_predicted"]
                                            for r in rows_}


def allreduce_model(ctx, n):
    """An ONNX model whose 2-rank plan is one all-reduce of n floats: the
    sum over a batch split over dp."""
    import onnx
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, n])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [n])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [0])
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)
    g = helper.make_graph([node], "ar", [x], [y], initializer=[axes])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    path = os.path.join(ctx["tmp"], f"ar{n}.onnx")
    onnx.save(m, path)
    return path


def gloo_allreduce(ctx):
    """The per-run times of 2-rank plans that are one all-reduce each, of
    256 floats and of 1 Mi floats."""
    times = {}
    for n in (256, 1 << 20):
        model = allreduce_model(ctx, n)
        plan = os.path.join(ctx["tmp"], f"ar{n}.cplan")
        sh([ctx["opt"], model, "--mode=infer", "--parallel=dp=2",
            "--emit=plan", "-o", plan])
        xs = os.path.join(ctx["tmp"], f"x{n}.npy")
        np.save(xs, np.ones((2, n), np.float32))
        out = sh([ctx["run"], plan, "--ranks", "2", "--threads", "1",
                  "--input", f"x={xs}", "--bench", "50", "--warmup", "5"]).stdout
        p50 = float(re.search(r"p50 ([0-9.]+) ms", out).group(1)) / 1e3
        times[n] = p50
    return times[256], times[1 << 20]


def chain_model(ctx, layers, batch, n=256):
    """An ONNX model of `layers` steps x -> tanh(x W + sum over the batch of
    x W): on 2 ranks (the batch split over dp) one all-reduce per step, each
    waiting for the compute before it, as a training step's collectives do."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    inits = [helper.make_tensor("axes", TensorProto.INT64, [1], [0])]
    nodes, cur = [], "x"
    for i in range(layers):
        inits.append(numpy_helper.from_array(
            (rng.standard_normal((n, n)) * 0.05).astype(np.float32), f"w{i}"))
        nodes += [helper.make_node("MatMul", [cur, f"w{i}"], [f"m{i}"]),
                  helper.make_node("ReduceSum", [f"m{i}", "axes"], [f"s{i}"], keepdims=1),
                  helper.make_node("Add", [f"m{i}", f"s{i}"], [f"a{i}"]),
                  helper.make_node("Tanh", [f"a{i}"], [f"t{i}"])]
        cur = f"t{i}"
    nodes.append(helper.make_node("Identity", [cur], ["y"]))
    g = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, n])],
        initializer=inits)
    path = os.path.join(ctx["tmp"], f"chain{batch}.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def in_step_latency(ctx, layers=32):
    """What one small all-reduce costs inside a chain of dependent work on 2
    ranks (the chain on 2 ranks minus its per-rank work on 1 rank, per
    all-reduce): more than a lone all-reduce repeated, since each waits for
    the slower rank's compute and for the ranks' threads to wake."""
    runs = {}
    for batch, ranks in ((2, 2), (1, 1)):
        model = chain_model(ctx, layers, batch)
        plan = os.path.join(ctx["tmp"], f"chain{batch}.cplan")
        sh([ctx["opt"], model, "--mode=infer", "--emit=plan", "-o", plan]
           + (["--parallel=dp=2"] if ranks > 1 else []))
        xs = os.path.join(ctx["tmp"], f"chain{batch}.npy")
        np.save(xs, np.ones((batch, 256), np.float32))
        out = sh([ctx["run"], plan, "--threads", "1", "--input", f"x={xs}",
                  "--bench", "30", "--warmup", "5"]
                 + (["--ranks", str(ranks)] if ranks > 1 else [])).stdout
        runs[ranks] = float(re.search(r"p50 ([0-9.]+) ms", out).group(1)) / 1e3
    return max(runs[2] - runs[1], 0.0) / layers


def hop_latency(ctx, layers=32, runs=50):
    """What one pipeline hop costs: the chain split into 2 stages on 2
    ranks (one activation sent between them per run) minus the chain on 1
    rank, medians of `runs` runs."""
    model = chain_model(ctx, layers, 1)
    xs = os.path.join(ctx["tmp"], "chain1.npy")
    np.save(xs, np.ones((1, 256), np.float32))
    times = {}
    for ranks in (1, 2):
        plan = os.path.join(ctx["tmp"], f"hop{ranks}.cplan")
        sh([ctx["opt"], model, "--mode=infer", "--emit=plan", "-o", plan]
           + (["--parallel=pp=2"] if ranks > 1 else []))
        out = sh([ctx["run"], plan, "--threads", "1", "--input", f"x={xs}",
                  "--bench", str(runs), "--warmup", "5"]
                 + (["--ranks", str(ranks)] if ranks > 1 else [])).stdout
        times[ranks] = float(re.search(r"p50 ([0-9.]+) ms", out).group(1)) / 1e3
    return max(times[2] - times[1], 0.0)


def measured_spec(ctx):
    with open(os.path.join(ROOT, "compiler", "cost", "clusters", "cpu.json")) as f:
        spec = json.load(f)
    flops = gemm_flops_one_thread()
    bw = memory_bandwidth()
    lone, large = gloo_allreduce(ctx)
    # The latency a step's collectives pay, not a lone one's (which swings
    # 0.2-4 ms between runs on a busy VM); the bandwidth from the large
    # all-reduce beyond it (a ring all-reduce of S bytes over 2 ranks moves
    # S bytes each way).
    alpha = in_step_latency(ctx)
    link = 4 * (1 << 20) / max(large - alpha, 1e-9)
    # A pipeline's hop is a send and a receive, not a collective's step:
    # measured on its own.
    hop = hop_latency(ctx)
    spec["name"] = "cpu-measured"
    spec["description"] = "this machine, one thread per rank, measured by bench/bench_dist_step.py"
    spec["sources"] = ("measured: numpy/OpenBLAS SGEMM (1 thread), numpy copy, colossal-run "
                       "Gloo all-reduce (2 ranks; latency inside a chain of dependent work), "
                       "a 2-stage pipeline's hop (p2p_latency)")
    spec["gpus_per_node"] = 2
    spec["device"]["name"] = "one CPU thread"
    for k in spec["device"]["peak_flops"]:
        spec["device"]["peak_flops"][k] = flops
    spec["device"]["memory_bandwidth"] = bw
    spec["efficiency"]["gemm_peak_fraction"] = 1.0
    spec["efficiency"]["memory_bandwidth_fraction"] = 1.0
    spec["efficiency"]["intra_node_link_fraction"] = 1.0
    # The CPU runtime runs collectives in its one instruction stream:
    # nothing overlaps with compute.
    spec["efficiency"]["comm_compute_slowdown"] = 1.0
    spec["efficiency"]["copy_compute_slowdown"] = 1.0
    spec["intra_node"]["bandwidth"] = link
    spec["intra_node"]["latency"] = alpha
    spec["intra_node"]["p2p_latency"] = hop
    path = os.path.join(ctx["tmp"], "cpu-measured.json")
    with open(path, "w") as f:
        json.dump(spec, f, indent=1)
    # What the runtime's memory-bound kernels reach of the copy bandwidth,
    # predicted with the spec so far (fraction 1) against measured.
    fraction, per_op = memory_bound_fraction(ctx, path)
    spec["efficiency"]["memory_bandwidth_fraction"] = fraction
    spec["sources"] += ("; memory_bandwidth_fraction: the runtime's layer norm, GELU, "
                        "softmax, add and sum kernels (bench_dist_step.memory_bound_fraction)")
    with open(path, "w") as f:
        json.dump(spec, f, indent=1)
    print(f"machine: SGEMM {flops / 1e9:.1f} GFLOP/s per thread, memory "
          f"{bw / 1e9:.1f} GB/s, Gloo all-reduce (2 ranks) latency "
          f"{alpha * 1e6:.0f} us inside a chain of work ({lone * 1e6:.0f} us "
          f"alone), bandwidth {link / 1e9:.2f} GB/s; a pipeline hop {hop * 1e6:.0f} us; "
          f"memory-bound kernels at {fraction:.2f} of the copy bandwidth ("
          + ", ".join(f"{k} {1 / v:.2f}" for k, v in sorted(per_op.items())) + ")")
    return path


def compile_plan(ctx, parallel):
    plan = os.path.join(ctx["tmp"], f"gpt-{parallel or '1'}.cplan".replace(",", "_"))
    cmd = [ctx["opt"], ctx["model"], f"--bind=batch={BATCH},seq={SEQ}",
           "--mode=train", "--loss=cross-entropy", "--optimizer=adamw",
           "--lr=1e-3", "--emit=plan", "-o", plan]
    if parallel:
        cmd.append("--parallel=" + parallel)
    r = subprocess.run(cmd, text=True, capture_output=True)
    if r.returncode != 0:
        return None, r.stderr.strip().splitlines()[-1]
    return plan, None


def step_time(ctx, plan, ranks, steps):
    cmd = [ctx["run"], plan, "--threads", "1", "--train", f"--steps={steps}",
           f"--data={ctx['tokens']}", f"--log-every={steps}"]
    if ranks > 1:
        cmd[2:2] = ["--ranks", str(ranks)]
    out = sh(cmd).stdout
    m = re.search(r"trained steps 1\.\.\d+ in ([0-9.]+) s", out)
    arena = int(re.search(r"arena: (\d+) bytes", out).group(1))
    return float(m.group(1)) / steps, arena


def estimate(ctx, spec, parallel, devices):
    """The cost model's step time and the predicted peak memory per rank of
    the same training step compile_plan compiles: --estimate with its flags
    (the per-rank program's buffers added up op by op), and the per-layer
    model's own figure beside it."""
    cmd = [ctx["opt"], ctx["model"], f"--bind=batch={BATCH},seq={SEQ}",
           "--mode=train", "--loss=cross-entropy", "--optimizer=adamw",
           "--lr=1e-3", "--estimate", f"--cluster={spec}:gpus_per_node={devices}",
           "--dtype=fp32"]
    if parallel:
        cmd.append("--parallel=" + parallel)
    e = json.loads(sh(cmd).stdout)
    return e["step_time_s"], e["peak_memory_bytes"], e["analytic_peak_memory_bytes"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    ctx = workspace(args.build, "colossal-bench-dist-")
    print(f"model: GPT {LAYERS} layers, hidden {HIDDEN}, seq {SEQ}, batch {BATCH}, "
          f"AdamW; {args.steps} steps x {args.reps} interleaved repetitions, "
          f"1 thread per rank; machine: {os.cpu_count()} cores")
    spec = measured_spec(ctx)

    base, _ = compile_plan(ctx, "")
    plans = {p: compile_plan(ctx, p) for p in LAYOUTS}
    times = {"1": []}
    arenas = {}
    for p, (plan, _) in plans.items():
        if plan:
            times[p] = []
    for _ in range(args.reps):  # interleaved: noise hits every side alike
        t, arenas["1"] = step_time(ctx, base, 1, args.steps)
        times["1"].append(t)
        for p, (plan, _) in plans.items():
            if plan:
                t, arenas[p] = step_time(ctx, plan, 2, args.steps)
                times[p].append(t)
    one = float(np.median(times["1"]))
    pred_one, mem_one, ana_one = estimate(ctx, spec, "", 1)
    print(f"\n{'layout':14} {'step (ms)':>10} {'spread':>7} {'measured':>9} "
          f"{'predicted':>10} {'arena':>10} {'pred. mem':>10} {'mem ratio':>9} "
          f"{'analytic':>9}")
    print(f"{'1 rank':14} {one * 1e3:10.2f} "
          f"{(max(times['1']) - min(times['1'])) / one * 100:6.1f}% {'1.00x':>9} "
          f"{'1.00x':>10} {arenas['1']:10d} {mem_one:10d} {mem_one / arenas['1']:8.3f}x "
          f"{ana_one / arenas['1']:8.2f}x")
    for p, (plan, why) in plans.items():
        if not plan:
            print(f"{p:14} not executable yet: {why[:90]}")
            continue
        med = float(np.median(times[p]))
        spread = (max(times[p]) - min(times[p])) / med * 100
        pred, mem, ana = estimate(ctx, spec, p, 2)
        print(f"{p:14} {med * 1e3:10.2f} {spread:6.1f}% {one / med:8.2f}x "
              f"{pred_one / pred:9.2f}x {arenas[p]:10d} {mem:10d} {mem / arenas[p]:8.3f}x "
              f"{ana / arenas[p]:8.2f}x")
    print("\nmeasured / predicted: speed-up of 2 ranks over 1 rank (higher is "
          "faster); mem ratio: --estimate's peak per rank over the plan's arena; "
          "analytic: the per-layer cost model's peak (what the search uses) "
          "over the arena")


if __name__ == "__main__":
    main()
