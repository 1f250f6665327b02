# -*- Python -*-
# lit configuration for Colossal's compiler tests.

import os

import lit.formats
from lit.llvm import llvm_config

config.name = "Colossal"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test", ".onnxtext"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.colossal_obj_root, "test")
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "models",
                   "unit", "e2e", "Inputs"]

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.colossal_tools_dir, append_path=True)
# Tests must not depend on where they were run from.
llvm_config.with_system_environment(["HOME", "TMPDIR"])

# Ahead of lit's own %python (the interpreter running lit): tests need the
# virtual environment with onnx, onnxruntime and numpy.
config.substitutions.insert(0, ("%python", config.python_executable))
config.substitutions.append(
    ("%scripts", os.path.join(config.colossal_src_root, "scripts")))
config.substitutions.append(
    ("%models", os.path.join(config.colossal_src_root, "test", "models")))
# Converts an ONNX text model (onnx.parser syntax) to a binary model.
config.substitutions.append(
    ("%onnxtext", config.python_executable + " " +
     os.path.join(config.colossal_src_root, "scripts", "onnxtext.py")))

# Decodes a .cplan file (32-byte header, then the Plan message) as text.
config.substitutions.append(
    ("%decode-plan", "sh -c 'tail -c +33 \"$0\" | protoc "
     "--decode=colossal.plan.Plan -I " +
     os.path.join(config.colossal_src_root, "runtime", "proto") + " " +
     os.path.join(config.colossal_src_root, "runtime", "proto", "plan.proto") +
     "'"))

# `cuda-backend`: this build has the CUDA backend; `gpu`: a CUDA device is
# usable here (nvidia-smi lists one). GPU tests say REQUIRES: gpu.
if getattr(config, "colossal_have_cuda", False):
    config.available_features.add("cuda-backend")
try:
    import subprocess
    if subprocess.run(["nvidia-smi", "-L"], capture_output=True,
                      timeout=20).returncode == 0:
        config.available_features.add("gpu")
except (OSError, subprocess.TimeoutExpired):
    pass

llvm_config.add_tool_substitutions(
    ["colossal-opt", "FileCheck", "not", "count", "split-file"],
    [config.colossal_tools_dir, config.llvm_tools_dir])
