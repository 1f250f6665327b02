#!/usr/bin/env python3
"""The planner finds a model's layers from its graph, not from its names.

GPT-2, LLaMA, BERT and a ResNet-style CNN are exported by torch in three
naming schemes (scripts/models/export_naming.py: descriptive HF/torchvision
names, `l0.qkv.w`-style names, and torch's anonymous `onnx::MatMul_243`
names with equal initializers shared between layers). For each model the
three exports must give the same layer structure (block count, how they
were found, the per-layer workload with names stripped), the same searched
plan and the same predicted step time; a pipeline (`--parallel=pp=2`)
plans and estimates on every export. The torch exports under
test/models/torch (nanoGPT, nn.TransformerEncoder with and without masks,
torchvision ResNets) find their blocks too, and a model with nothing
repeated says so and still plans.

Usage: test/e2e/layer_structure.py --build BUILD
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from checks import Checks  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SCHEMES = ["descriptive", "short", "anon"]
# model -> (blocks expected, extra colossal-opt flags)
MODELS = {"gpt2": 4, "llama": 4, "bert": 4, "cnn": 6}
CLUSTER = "--cluster=dgx-a100-80g:nodes=1,gpus_per_node=8"
# Torch exports shipped with the tests: file -> blocks.
SHIPPED = {
    "gpt_opset17.onnx": 2,
    "gpt_mha_opset13.onnx": 2,
    "encoder_opset17.onnx": 2,
    "encoder_causal_opset17.onnx": 2,
    "encoder_prenorm_opset13.onnx": 2,
    "resnet18_opset17.onnx": 8,
    "resnet50_opset17.onnx": 16,
    "resnet_tiny_opset17.onnx": 4,
}


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("failed (%d): %s\n%s" % (p.returncode, " ".join(cmd),
                                                    p.stderr[-2000:]))
    return p.stdout


def estimate(opt, model, extra):
    out = run([opt, model, "--estimate", "--batch=8", CLUSTER,
               "--estimate-workload"] + extra)
    return json.loads(out)


def strip_names(workload):
    """The workload description without labels and weight names."""
    text = re.sub(r"'[^']*'", "''", workload)
    return re.sub(r"^(\s+(?:gemm|embedding)) \S+", r"\1", text, flags=re.M)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    opt = os.path.join(args.build, "bin", "colossal-opt")
    check = Checks()

    with tempfile.TemporaryDirectory() as tmp:
        run([sys.executable, os.path.join(ROOT, "scripts", "models",
                                          "export_naming.py"), "--out", tmp])
        for model, blocks in MODELS.items():
            seen = {}
            for scheme in SCHEMES:
                path = os.path.join(tmp, "%s_%s.onnx" % (model, scheme))
                est = estimate(opt, path, [])
                plan_json = os.path.join(tmp, "%s_%s.plan.json" % (model, scheme))
                run([opt, path, "--mode=train", "--auto-parallel", "--batch=64",
                     CLUSTER, "--report=" + plan_json, "-o", os.devnull])
                with open(plan_json) as f:
                    plan = json.load(f)["plan"]
                pp = estimate(opt, path, ["--parallel=pp=2,dp=4"])
                seen[scheme] = {
                    "blocks": est["model"]["blocks"],
                    "structure": est["model"]["structure"],
                    "parameters": est["model"]["parameters"],
                    "workload": strip_names(est["workload"]),
                    "step": est["step_time_s"],
                    "plan": plan["config"],
                    "plan_step": plan["step_time_s"],
                    "pp_step": pp["step_time_s"],
                    "pp_blocks": pp["model"]["blocks"],
                }
            ref = seen["descriptive"]
            check(ref["blocks"] == blocks,
                  "%s: %d blocks found (want %d): %s" %
                  (model, ref["blocks"], blocks, ref["structure"]))
            for scheme in SCHEMES[1:]:
                got = seen[scheme]
                for key in ("blocks", "structure", "parameters", "workload",
                            "step", "plan", "plan_step", "pp_step"):
                    check(got[key] == ref[key],
                          "%s %s: %s equals the descriptive export's%s" %
                          (model, scheme, key,
                           "" if got[key] == ref[key] else
                           " (%r vs %r)" % (got[key], ref[key])))
            check(ref["pp_step"] > 0,
                  "%s: pp=2 plans and estimates (%.3g s)" % (model, ref["pp_step"]))
            print("     %s plan: %s, %.3g s" % (model, ref["plan"], ref["plan_step"]))

        for name, blocks in SHIPPED.items():
            path = os.path.join(ROOT, "test", "models", "torch", name)
            est = estimate(opt, path, ["--bind", "batch=2,seq=32"])
            check(est["model"]["blocks"] == blocks,
                  "%s: %d blocks (want %d): %s" %
                  (name, est["model"]["blocks"], blocks, est["model"]["structure"]))

        # Nothing repeated: one linear layer. Said, and still planned.
        mlp = os.path.join(tmp, "mlp1.onnx")
        run([sys.executable, os.path.join(ROOT, "scripts", "models", "mlp.py"),
             "--layers", "1", "-o", mlp])
        est = estimate(opt, mlp, [])
        check(est["model"]["structure"].startswith("no repeated structure")
              and est["step_time_s"] > 0,
              "one linear layer: %s" % est["model"]["structure"])

    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
