//===- Passes.td - Colossal's passes on the graph dialect ------*- tablegen -*-===//

#ifndef COLOSSAL_PASSES_PASSES_TD
#define COLOSSAL_PASSES_PASSES_TD

include "mlir/Pass/PassBase.td"

def FuseAttentionPass : Pass<"colossal-fuse-attention", "::mlir::ModuleOp"> {
  let summary = "Forms cg.attention from the matmul-scale-mask-softmax-matmul pattern";
  let description = [{
    Finds scaled dot-product attention written out as separate ops, as
    exporters and model code emit it:

    ```mlir
    %kt = cg.transpose %k {permutation = array<i64: 0, 1, 3, 2>}
    %s  = cg.matmul %q, %kt
    %s1 = cg.mul %s, %scale          // or cg.div by a constant; optional
    %s2 = cg.add %s1, %mask          // or cg.where(%keep, %s1, -inf); optional
    %p  = cg.softmax %s2 {axis = 3}
    %o  = cg.matmul %p, %v
    ```

    and replaces it by

    ```mlir
    %o = cg.attention %q, %k, %v {scale = ..., causal}
    ```

    A mask is recognized as causal (and dropped in favour of the `causal`
    flag) when it is a constant lower-triangular pattern, or a `cg.trilu`
    of a splat constant; any other mask stays an operand (additive for
    float masks, keep-mask for `where`). The key's transpose is folded into
    the op. Statistics count fused and causal instances.
  }];
  let dependentDialects = ["::mlir::colossal::cg::CGDialect"];
  let statistics = [
    Statistic<"numFused", "fused", "Number of attention patterns fused">,
    Statistic<"numCausal", "causal", "Number of fused patterns recognized as causal">
  ];
}

def GraphSummaryPass : Pass<"colossal-graph-summary", "::mlir::ModuleOp"> {
  let summary = "Prints a summary of each graph: inputs, outputs, parameters, ops, FLOPs";
  let description = [{
    For every function: its inputs and outputs with their names and types,
    the parameters (count, elements, bytes, where their bytes live), a
    histogram of the ops, and the forward FLOPs of the contractions
    (matmul, linear, conv2d, attention). The IR is left unchanged. Output
    goes to stdout, so pair it with `-o FILE` (or `-o /dev/null`).

    ```
    graph @main
      inputs:  input_ids tensor<8x128xi64>
      outputs: logits tensor<8x128x1024xf32>
      parameters: 54 tensors, 3.42 M elements, 13.7 MB (54 in the ONNX file)
      ops: 230 (cg.add 52, cg.matmul 26, ...)
      forward FLOPs: 7.15 GFLOP
    ```
  }];
}

def PlanMemoryPass : Pass<"colossal-plan-memory", "::mlir::ModuleOp"> {
  let summary = "Assigns every tensor an offset in one arena per device";
  let description = [{
    The static memory plan of a single-device program: parameters and
    constants first, each in its own slot; then inputs (kept for the whole
    run, since callers set them once and may run many times) and
    intermediates (from the op that writes them to their last reader),
    placed by size, largest first, each in the smallest gap that the
    buffers living at the same time leave (greedy by size, as TensorFlow
    Lite plans its arenas). Reshapes and sharding annotations alias their input (no
    copy). An elementwise op whose operand dies at it and has the result's
    size writes in place. Outputs stay until the end.

    Results get `cg.offsets` (one byte offset per result), function
    arguments `cg.offset`, and the module `cg.arena_bytes`: the exact size
    of the one allocation the runtime makes.

    ```mlir
    %1 = cg.relu %0 {cg.offsets = array<i64: 256>} : tensor<4x16xf32>
    ```
  }];
  let options = [
    Option<"alignment", "alignment", "int64_t", "64",
           "Byte alignment of every buffer">,
    Option<"inPlace", "in-place", "bool", "true",
           "Let elementwise ops write over an operand that dies at them">
  ];
}

def EstimateMemoryPass : Pass<"colossal-estimate-memory", "::mlir::ModuleOp"> {
  let summary = "Predicts a per-device program's peak memory from its buffers' lifetimes";
  let description = [{
    Adds up, at every op of a single-device program, the bytes of the
    buffers the runtime keeps then (the lifetimes the memory plan uses:
    parameters and constants for the whole run, inputs for the whole run,
    intermediates from their writer to their last reader, aliases free,
    elementwise results written in place), without placing them. The
    largest sum is the program's peak: a lower bound of any arena, which the
    memory plan's arena should come close to. Records the module's
    `cg.memory_estimate`: the peak bytes, where it happens, and what is live
    then (weights, optimizer state, constants, inputs, forward activations
    kept for the backward, backward buffers, collective buffers).
    `colossal-opt --estimate` with the flags of a compiled training step
    runs it on each rank's program.

    ```mlir
    module attributes {cg.memory_estimate = {peak_bytes = 1856 : i64, ...}}
    ```
  }];
  let options = [
    Option<"alignment", "alignment", "int64_t", "64",
           "Byte alignment of every buffer">,
    Option<"inPlace", "in-place", "bool", "true",
           "Elementwise ops write over an operand that dies at them">,
    Option<"report", "report", "bool", "false",
           "Also print the peak and what is live then as a remark">
  ];
}

def MarkLayersPass : Pass<"colossal-mark-layers", "::mlir::ModuleOp"> {
  let summary = "Marks each forward op of a repeated block with its layer";
  let description = [{
    On the forward graph (before colossal-add-loss and colossal-autodiff):
    finds the layers from the graph's structure (as the cost model does) and
    marks every op of block L with `cg.layer = L`; ops before and after the
    blocks (embeddings, the head) are not marked. colossal-autodiff copies
    the marks onto each op's backward (with `cg.backward`), and
    colossal-offload{what=activations} offloads and prefetches by them, and
    colossal-bucket-collectives keeps ZeRO-3's weight gathers within a
    layer. A model without repeated blocks is an error that says so, unless
    `required` is false (then nothing is marked).
  }];
  let options = [
    Option<"required", "required", "bool", "true",
           "Whether a model without repeated blocks is an error (offloading activations needs layers; ZeRO-3's gather buckets only use them)">
  ];
}

def MarkRecomputePass : Pass<"colossal-mark-recompute", "::mlir::ModuleOp"> {
  let summary = "Marks the forward ops a recomputation plan recomputes";
  let description = [{
    On the forward graph (before colossal-add-loss and colossal-autodiff):
    finds the layers from the graph's structure (as the cost model does) and
    marks the ops that `mode` recomputes with `cg.remat = <layer>`, which
    colossal-recompute carries out after the backward is built. `full`:
    every op of the first `layers` blocks (0: of all blocks); `selective`:
    Megatron's choice, the attention core of every block (the fused
    attention, or the score softmax of an unfused one). `none` marks
    nothing. A model without repeated blocks has no layers to recompute;
    asking for it is an error that says so.
  }];
  let options = [
    Option<"mode", "mode", "std::string", "\"full\"",
           "What to recompute: none, selective or full">,
    Option<"layers", "layers", "int64_t", "0",
           "With full: recompute the first N blocks (0: all of them)">
  ];
}

def MarkStagesPass : Pass<"colossal-mark-stages", "::mlir::ModuleOp"> {
  let summary = "Assigns the forward's ops to pipeline stages by the model's layers";
  let description = [{
    On a training step's forward with its loss (after colossal-add-loss,
    before colossal-autodiff): finds the layers from the graph's structure
    (as the cost model does) and marks every op with `cg.stage` (and, with
    `virtual` > 1, `cg.virtual`, the model chunk on that stage). The blocks
    are split over the `stages` x `virtual` model chunks as `stage-layers`
    lists (first to last chunk, e.g. `3:5`), or evenly, a remainder going to
    the middle chunks; what precedes the blocks goes with the first chunk,
    the head and the loss with the last. Chunk `v * stages + s` runs on
    stage `s` (Megatron-LM's interleaved placement). colossal-autodiff copies
    the marks onto the backward; colossal-pipeline splits by them. A model
    without repeated blocks cannot be split, and asking is an error that
    says what was found.

    ```mlir
    %h = cg.linear %x, %w, %b {cg.stage = 1 : i64} ...
    ```
  }];
  let options = [
    Option<"stages", "stages", "int64_t", "2", "Pipeline stages (pp)">,
    Option<"virtualStages", "virtual", "int64_t", "1",
           "Model chunks per stage (the interleaved schedule's v)">,
    Option<"stageLayers", "stage-layers", "std::string", "\"\"",
           "Layers per model chunk, first to last, separated by ':' (empty: even)">
  ];
}

def PipelinePass : Pass<"colossal-pipeline", "::mlir::ModuleOp"> {
  let summary = "Splits a partitioned training step into one program per pipeline stage, with its schedule";
  let description = [{
    After colossal-partition (and colossal-recompute), on a program for one
    micro-batch whose ops carry `cg.stage` (colossal-mark-stages, copied onto
    the backward by colossal-autodiff with `cg.backward`): makes one function
    per stage, `@stage0` .. , each the stage's whole training step unrolled
    as its schedule orders it:

    * `gpipe`: every micro-batch's forward, then every backward;
    * `1f1b`: `stages - s - 1` warm-up forwards, then one forward and one
      backward in turn, then the remaining backwards;
    * `interleaved`: 1F1B over `virtual` model chunks per stage, in
      Megatron-LM's order (micro-batches a multiple of the stages).

    Values a stage needs from another one arrive by `cgd.recv` right before
    their first use in that micro-batch and leave by `cgd.send` right after
    they are made (activations forward, their gradients backward, tagged
    by value and micro-batch); what a micro-batch's forward keeps for its
    backward stays in the stage's program until that backward, so the
    memory plan made afterwards sees every micro-batch in flight. Values the
    optimizer step reads from the backward (the gradients) and the loss are
    summed over the micro-batches as they are made and divided by their
    count once: the step's mean, as gradient accumulation computes it. The
    optimizer step runs once, after the last backward, each stage updating
    the weights it holds; a weight two stages use (a tied embedding and
    head) is updated on the first and its new value sent to the other, and
    its gradient pieces meet on the first. Inputs take all micro-batches at
    once (dim 0 grows by `micro-batches`; each replica's rows are its
    micro-batches in order), every stage returns every output (training
    outputs are scalars, the mean over micro-batches; inference outputs are
    concatenated back in input order), and the mesh gains a leading `pp`
    axis. Parameters and constants are made where they are used; a pure
    function of them is computed on each stage that needs it rather than
    sent. With `micro-batches` = 1 and `stages` = 1 the program is unchanged
    but for its name.

    ```mlir
    func.func @stage0(...) attributes {cg.pipeline_stage = 0 : i64}
      ...
      cgd.send %h to 1 on @mesh {axis = "pp", tag = 12 : i64} : tensor<2x16x32xf32>
      ...
      %g = cgd.recv from 1 on @mesh {axis = "pp", tag = 40 : i64} : tensor<2x16x32xf32>
    ```
  }];
  let options = [
    Option<"stages", "stages", "int64_t", "2", "Pipeline stages (pp)">,
    Option<"virtualStages", "virtual", "int64_t", "1",
           "Model chunks per stage (the interleaved schedule)">,
    Option<"microBatches", "micro-batches", "int64_t", "1",
           "Micro-batches per training step">,
    Option<"schedule", "schedule", "std::string", "\"1f1b\"",
           "gpipe, 1f1b or interleaved">
  ];
  let dependentDialects = ["::mlir::colossal::cg::CGDialect",
                           "::mlir::colossal::cgd::CGDDialect"];
}

def EstimatePass : Pass<"colossal-estimate", "::mlir::ModuleOp"> {
  let summary = "Predicts a training step's time and memory under a parallel plan";
  let description = [{
    Builds the cost model's workload of the module's function (layers found
    from the graph's structure), runs the estimator for the parallel
    configuration on the cluster, and records the prediction on the module
    (`cg.predicted_step_time_s`, `cg.predicted_peak_memory_bytes`); the whole
    report (time and memory breakdowns, per stage, MFU) goes to `report`
    as JSON. When the module carries `cg.program_memory` (the
    `cg.memory_estimate` of the compiled per-rank program, which
    `colossal-opt --estimate` with a training step's flags attaches), that
    is the predicted peak and the per-layer figure is reported beside it.
    `colossal-opt --estimate` runs this pass.

    ```sh
    colossal-opt m.mlir --pass-pipeline='builtin.module(colossal-estimate{cluster=dgx-a100-80g batch=16 parallel=dp=2,tp=4 report=-})'
    ```
  }];
  let options = [
    Option<"cluster", "cluster", "std::string", "",
           "Cluster: a preset (dgx-a100-80g, dgx-h100-80g, h200, cpu) with "
           "':key=value' overrides, or a JSON spec file">,
    Option<"batch", "batch", "int64_t", "0",
           "Global batch: sequences (samples) per optimizer step">,
    Option<"parallel", "parallel", "std::string", "",
           "Parallel configuration 'dp=..,tp=..,pp=..,...' (empty: data "
           "parallel over every device)">,
    Option<"dtype", "dtype", "std::string", "\"bf16\"",
           "Compute dtype: bf16, fp16, fp32 or tf32">,
    Option<"flashAttention", "flash-attention", "bool", "false",
           "Attention never stores the score matrix">,
    Option<"dropout", "dropout", "bool", "false",
           "Training applies dropout as Megatron's GPT does">,
    Option<"workload", "workload", "bool", "false",
           "Add the layer-by-layer workload to the report">,
    Option<"report", "report", "std::string", "",
           "Write the JSON report to this file ('-': standard output; "
           "empty: only the module attributes)">
  ];
}

def PredictTimesPass : Pass<"colossal-predict-times", "::mlir::ModuleOp"> {
  let summary = "Records each op's predicted time on one device of the cluster";
  let description = [{
    On the per-rank programs (after partitioning, the pipeline split and
    offload; colossal-opt runs it before the memory plan of `--emit=plan`),
    every op gets `cg.predicted_s`: the seconds the cost model's formulas
    give it on one device of `cluster` (the ones the estimator charges):
    matmuls by the GEMM roofline with the efficiency curve for small
    shapes, attention (and its fused backward) as its batched GEMMs,
    convolutions and other contractions by FLOPs at the GEMM peak fraction
    or their bytes, whichever is slower, every other op by its bytes over
    achieved memory bandwidth (host ops over the host's share), collectives
    by the alpha-beta model over the group of their mesh axes, sends,
    receives and ring attention's hops as point-to-point transfers between
    stages or neighbours, and offload copies over PCIe. The plan carries it
    on each instruction (`Instruction.predicted_s`) and `colossal-run
    --profile` reports it beside the measured time.

    ```mlir
    %3 = cg.matmul %1, %2 {cg.predicted_s = 4.1e-06 : f64} : ...
    %4 = cgd.all_reduce %3 on @mesh ["dp"] sum {cg.predicted_s = 3.3e-04 : f64} : ...
    ```
  }];
  let options = [
    Option<"cluster", "cluster", "std::string", "\"cpu\"",
           "Cluster: a preset (dgx-a100-80g, dgx-h100-80g, h200, cpu) with "
           "':key=value' overrides, or a JSON spec file">
  ];
}

def AutoParallelPass : Pass<"colossal-auto-parallel", "::mlir::ModuleOp"> {
  let summary = "Searches the fastest parallel plan that fits and annotates it";
  let description = [{
    The plan-level search (every data, tensor, pipeline and sequence
    parallel degree, micro-batch, schedule and memory saver the model and
    cluster admit, scored by the cost model) followed by the per-op
    tensor-parallel integer program. Annotates the module with the chosen
    plan: `cg.mesh @mesh` with named axes, `cg.plan`, the predicted step
    time and peak memory, `cg.sharding` on weights and inputs, `cg.stage` on
    ops, `cg.remat` where the plan recomputes. A job that fits nowhere fails
    with the closest plan, its device and host memory deficits and what
    would make it fit. `colossal-opt --auto-parallel` runs this pass.

    ```sh
    colossal-opt m.mlir --pass-pipeline='builtin.module(colossal-auto-parallel{cluster=dgx-a100-80g:nodes=2 batch=512})'
    ```
  }];
  let options = [
    Option<"cluster", "cluster", "std::string", "",
           "Cluster: a preset with ':key=value' overrides, or a JSON spec "
           "file">,
    Option<"batch", "batch", "int64_t", "0",
           "Global batch: sequences (samples) per optimizer step">,
    Option<"dtype", "dtype", "std::string", "\"bf16\"",
           "Compute dtype: bf16, fp16, fp32 or tf32">,
    Option<"flashAttention", "flash-attention", "bool", "false",
           "Attention never stores the score matrix">,
    Option<"dropout", "dropout", "bool", "false",
           "Training applies dropout as Megatron's GPT does">,
    Option<"memoryBudget", "memory-budget", "std::string", "",
           "Device memory a plan may use (bytes, or with K/M/G/KiB/MiB/GiB; "
           "empty: the device's memory less its reserve)">,
    Option<"constrain", "constrain", "std::string", "",
           "Constraints on the plan, e.g. 'tp<=4,pp=1,zero=3' (ListOption "
           "syntax: quote it in a pipeline string)">,
    Option<"report", "report", "std::string", "",
           "Write the JSON report (plan, breakdowns, alternatives and why "
           "they lost) to this file ('-': standard output)">,
    Option<"reportText", "report-text", "bool", "false",
           "Also print the readable report to standard error">,
    Option<"executable", "executable", "bool", "false",
           "Search only plans colossal-run executes (today every layout "
           "the search emits; cost::notYetExecutable is where a new one "
           "waits for its runtime); colossal-opt --auto-parallel "
           "--emit=plan sets it">
  ];
}

def RecomputePass : Pass<"colossal-recompute", "::mlir::ModuleOp"> {
  let summary = "Recomputes marked forward activations in the backward instead of keeping them";
  let description = [{
    Activation checkpointing. The forward ops of a training step marked
    `cg.remat = G` (colossal-mark-recompute, or the auto-parallel plan) form
    recompute group G, one per layer. Of each group, the values the backward
    reads are recomputed, except the group's outputs (values forward ops
    outside the group read: the next layer's input, kept as the
    checkpoint): the group's ops that produce them are cloned right before
    the first backward op that reads one, from the same inputs, and the
    backward reads the clones. The forward values then die at their last
    forward use, and the memory plan made afterwards gives their bytes back.
    Counter-based dropout masks (cg.random_keep) are drawn again equal, so
    the step computes exactly what it computes without recomputation. The
    marks are removed.

    ```mlir
    %h = cg.gelu %a {cg.remat = 3 : i64} ...   // forward, layer 3
    ...
    %h2 = cg.gelu %a ...                        // cloned before its first
    %d = cg.mul %g, %h2 ...                     // backward reader
    ```
  }];
}

def PrintTpStrategiesPass : Pass<"colossal-print-tp-strategies", "::mlir::ModuleOp"> {
  let summary = "Lists each op's tensor-parallel strategies (what the search chooses from)";
  let description = [{
    For every op implementing TensorParallelOpInterface, prints the
    strategies it offers over `tp` devices: the layout each needs of its
    operands and gives its result (`-` whole, `dN` split along dimension N,
    `partial` a pending sum). The IR is left unchanged; output goes to
    stdout.

    ```
    cg.linear #2: replicated(-,-,- -> -) column(-,d1,d0 -> d1) row(d1,d0,- -> partial) batch0(d0,-,- -> d0)
    ```
  }];
  let options = [
    Option<"tp", "tp", "int64_t", "2", "Devices on the tensor-parallel axis">
  ];
}

def AutodiffPass : Pass<"colossal-autodiff", "::mlir::ModuleOp"> {
  let summary = "Reverse-mode differentiation: gradients of a scalar loss w.r.t. every parameter";
  let description = [{
    The function's first result must be a scalar floating-point loss. The
    pass walks the ops backwards from it, applying each op's gradient rule
    (written with graph-dialect ops, so the runtime runs gradients with the
    kernels it already has), accumulates gradients that meet, reduces
    broadcast dimensions back to the operand's shape, and appends one result
    per trainable parameter (named `grad:<parameter>`), in parameter order.

    First slice of training-step construction (issue 4): rules for
    elementwise arithmetic and activations (gelu in both forms), where,
    expand, cast, matmul, linear, layer/RMS norm, sum/mean reductions,
    reshape, transpose, softmax/log_softmax, slice (step 1), concat, split
    embedding gathers (axis 0) and attention (probabilities recomputed). An op on the path to the
    loss without a rule is an error naming it.

    `loss-scale` multiplies the seed gradient (float16 training keeps small
    gradients from flushing to zero): `none`, a number, or `dynamic[:INIT]`,
    which reads the scale from an optimizer-state parameter
    `optimizer.loss_scale` (starting at INIT, default 65536) that
    colossal-optimizer unscales, checks for overflow and adjusts.
  }];
  let options = [
    Option<"lossScale", "loss-scale", "std::string", "\"none\"",
           "none, a number, or dynamic[:INIT]">,
    Option<"freeze", "freeze", "std::string", "\"\"",
           "Comma-separated glob patterns of parameters that get no gradient "
           "(frozen: buffers such as rotary tables, or layers to keep)">,
    Option<"attention", "attention", "std::string", "\"decomposed\"",
           "decomposed (attention's gradients from recomputed probabilities, "
           "matmuls and a softmax rule) or fused (one cg.attention_backward, "
           "flash attention's form: no score matrix kept; ring attention "
           "needs it)">
  ];
}

def BatchNormTrainingPass : Pass<"colossal-batch-norm-training", "::mlir::ModuleOp"> {
  let summary = "Batch norms normalize with batch statistics and update their running ones";
  let description = [{
    Rewrites each cg.batch_norm (the inference form) as torch's train-mode
    batch norm: the mean and biased variance over every dimension but the
    channels (1) normalize the input, and running statistics that are
    parameters are updated, `running := (1 - momentum) running + momentum
    batch` (the variance unbiased), with cg.assign at the end of the forward
    pass. Written with graph ops, so autodiff needs no new rule. Run before
    colossal-add-loss.
  }];
  let options = [
    Option<"momentum", "momentum", "double", "0.1",
           "Weight of the batch statistics in the running ones">
  ];
}

def DropoutPass : Pass<"colossal-dropout", "::mlir::ModuleOp"> {
  let summary = "Lowers training-mode dropout to random masks that change every run";
  let description = [{
    `cg.dropout %x {ratio}` becomes `where(keep, x / (1 - ratio), 0)` with
    `keep = cg.random_keep %counter {ratio, seed, stream}`, where the counter
    is an int64 optimizer-state parameter `rng.counter` that each run
    advances (cg.assign): masks differ from run to run and a resumed run
    repeats an uninterrupted one's. Run before colossal-add-loss.
  }];
  let options = [
    Option<"seed", "seed", "int64_t", "0", "Seed of the dropout masks">
  ];
}

def MixedPrecisionPass : Pass<"colossal-mixed-precision", "::mlir::ModuleOp"> {
  let summary = "Computes in bfloat16 or float16 with float32 storage (master weights)";
  let description = [{
    Float32 parameters and inputs are cast to the compute type where they
    enter; every op that produced float32 produces the compute type; float
    constants are rounded to it; float results are cast back to float32.
    Parameters (master weights), optimizer state and the loss stay float32,
    and autodiff returns float32 gradients through the casts. Run before
    colossal-add-loss. `compute=fp32` leaves the module as it is.
  }];
  let options = [
    Option<"compute", "compute", "std::string", "\"bf16\"",
           "The compute type: bf16, fp16 or fp32">
  ];
}

def AddLossPass : Pass<"colossal-add-loss", "::mlir::ModuleOp"> {
  let summary = "Replaces a model's outputs by a loss over one of them and a new target input";
  let description = [{
    Appends a target argument to each function and returns the loss (a
    scalar) as the only result, ready for `colossal-autodiff`:

    * `cross-entropy`: the chosen output holds logits `[..., classes]`; the
      target `labels` is int64 `[...]`. Mean over the positions whose label
      is not `ignore-index` of `-log_softmax(logits)[label]` (as
      torch.nn.functional.cross_entropy); zero when every label is ignored.
    * `mse`: the target `targets` has the output's shape and type; the mean
      of the squared differences.
  }];
  let options = [
    Option<"loss", "loss", "std::string", "\"cross-entropy\"",
           "cross-entropy or mse">,
    Option<"output", "output", "int64_t", "0",
           "Which result is the prediction (logits for cross-entropy)">,
    Option<"ignoreIndex", "ignore-index", "int64_t", "-100",
           "Cross-entropy: the label that marks positions to skip">,
    Option<"classAxis", "class-axis", "int64_t", "-1",
           "Cross-entropy: the axis of the logits that holds the classes "
           "(-1: the last, as for language models; 1 for NCHW outputs as "
           "torch's CrossEntropyLoss)">,
    Option<"targetName", "target-name", "std::string", "\"\"",
           "Name of the new target input (default: labels, or targets for "
           "mse)">
  ];
}

def OptimizerPass : Pass<"colossal-optimizer", "::mlir::ModuleOp"> {
  let summary = "Appends the optimizer update to a loss-and-gradients function: one training step";
  let description = [{
    Input: a function returning a scalar loss followed by `grad:<param>`
    results (`colossal-autodiff`). Output: a function returning `loss`,
    `lr` and `grad_norm` that updates every parameter in place with
    `cg.assign`. Optimizer state (moments, momentum buffers, the step
    counter, gradient accumulators) becomes zero-initialized `cg.param`s
    marked `cg.role = "optimizer"`, so it persists between runs and is
    checkpointed with the weights. Everything is graph-dialect ops:

    * `sgd`: torch.optim.SGD (momentum, weight decay added to the gradient).
    * `adamw`: torch.optim.AdamW (decoupled weight decay, bias correction).
    * `lamb`: You et al. 2019, Algorithm 2: Adam direction plus weight
      decay, scaled by the layer-wise trust ratio ||w|| / ||update||
      (1 when either norm is 0).
    * `lars`: You et al. 2017, Algorithm 1: local lr = eta * ||w|| /
      (||g|| + wd ||w||), momentum on lr * local lr * (g + wd w).

    `clip-grad-norm` > 0 scales all gradients by min(1, c / (norm + 1e-6))
    over the global norm (torch.nn.utils.clip_grad_norm_). `lr-schedule`:
    `constant`, or `warmup-cosine:W,T[,MIN]` (linear warmup over W steps,
    cosine decay to MIN (default 0) times lr at step T, then MIN).
    `micro-batches` K > 1 accumulates gradients over K runs (each run one
    micro-batch; the update, with the mean gradient, happens on every K-th).
  }];
  let options = [
    Option<"optimizer", "optimizer", "std::string", "\"adamw\"",
           "sgd, adamw, lamb or lars">,
    Option<"lr", "lr", "double", "1e-3", "Base learning rate">,
    Option<"weightDecay", "weight-decay", "double", "-1",
           "Weight decay (negative: the optimizer's default: 0.01 for adamw "
           "and lamb, 0 for sgd and lars)">,
    Option<"beta1", "beta1", "double", "0.9", "Adam/LAMB first-moment decay">,
    Option<"beta2", "beta2", "double", "0.999", "Adam/LAMB second-moment decay">,
    Option<"eps", "eps", "double", "-1",
           "Adam/LAMB epsilon (negative: 1e-8 for adamw, 1e-6 for lamb)">,
    Option<"momentum", "momentum", "double", "-1",
           "SGD/LARS momentum (negative: 0 for sgd, 0.9 for lars)">,
    Option<"trustCoefficient", "trust-coefficient", "double", "0.001",
           "LARS trust coefficient eta">,
    Option<"clipGradNorm", "clip-grad-norm", "double", "0",
           "Clip the global gradient norm to this (0: no clipping)">,
    Option<"lrSchedule", "lr-schedule", "std::string", "\"constant\"",
           "constant or warmup-cosine:W,T[,MIN]">,
    Option<"microBatches", "micro-batches", "int64_t", "1",
           "Runs (micro-batches) per optimizer step">,
    Option<"tokensInput", "tokens-input", "std::string", "\"\"",
           "The token input of a language model, whose next tokens are the "
           "labels (empty: the one integer input shaped like the labels; "
           "none: not a language model)">
  ];
}

//===----------------------------------------------------------------------===//
// Partitioning: from a whole-model program to one program per device
//===----------------------------------------------------------------------===//

def ShardForParallelPass : Pass<"colossal-shard-for-parallel", "::mlir::ModuleOp"> {
  let summary = "Lays out inputs and state for data parallelism and ZeRO over a `dp` mesh axis";
  let description = [{
    The entry of partitioning for a hand-written or searched
    `--parallel=dp=N,zero=K` configuration. Adds the module's mesh and the
    shardings the rest of the program follows from:

    * every function argument with a leading (batch) dimension is split
      over `dp` (each data-parallel rank reads its part of the global
      batch); a batch that does not divide is an error;
    * `zero >= 1`: optimizer state (`cg.role = "optimizer"`) is split over
      `dp` along its first dimension that divides (ZeRO-1; the gradient
      resolution of colossal-propagate-sharding makes it ZeRO-2);
    * `zero = 3`: the model's weights too (each use gathers them).
    * `tp > 1`: the mesh and the weights' tensor-parallel splits come from
      colossal-tensor-parallel-layout, run on the forward graph; optimizer
      state (named `<optimizer>.<state>:<weight>` by colossal-optimizer)
      takes its weight's split, and ZeRO splits another dimension over dp.

    ```mlir
    // dp=2 zero=1
    cg.mesh @mesh = <["dp" = 2]>
    func.func @main(%x: tensor<8x16xf32> {cg.sharding = #cg.sharding<@mesh, [["dp"]]>})
    %m = cg.param "adamw.m:w" ... {cg.role = "optimizer", cg.sharding = [#cg.sharding<@mesh, [["dp"]]>]}
    ```
  }];
  let options = [
    Option<"dp", "dp", "int64_t", "1", "Devices on the data-parallel axis">,
    Option<"tp", "tp", "int64_t", "1", "Devices on the tensor-parallel axis (the mesh must come from colossal-tensor-parallel-layout)">,
    Option<"zero", "zero", "int64_t", "0", "ZeRO stage: 0 (none), 1 (optimizer state), 2 (and gradients), 3 (and weights)">,
    Option<"sequence", "sequence", "bool", "false",
           "With tp: integer inputs [batch, sequence, ...] (token ids, labels) also split their sequence over tp (Megatron sequence parallelism)">,
    Option<"sp", "sp", "int64_t", "1",
           "Devices on the sequence-parallel axis `sp` (after dp): integer inputs [batch, sequence, ...] split their sequence over it; attention then runs on a split of the heads (Ulysses) or on the sequence's blocks (sp-mode=ring). With tp the axis comes from colossal-tensor-parallel-layout's mesh (sp=); with sequence, each sp block of the inputs' sequence splits further over tp">,
    Option<"spMode", "sp-mode", "std::string", "\"ulysses\"",
           "How attention meets the sequence split over sp: ulysses (an all-to-all onto the heads) or ring (the sequence stays split; key/value blocks travel around the sp ring: cgd.ring_attention, which needs colossal-autodiff attention=fused in a training step)">
  ];
  let dependentDialects = ["::mlir::colossal::cg::CGDialect"];
}

def TensorParallelLayoutPass : Pass<"colossal-tensor-parallel-layout", "::mlir::ModuleOp"> {
  let summary = "Splits the weights of linear layers over `tp` as Megatron-LM does";
  let description = [{
    On the forward graph (before colossal-add-loss): adds the mesh
    (`["dp" = D, "tp" = T]`, tp minor) and walks the ops in order, tracking
    which dimension of each activation is split over tp. A matmul whose
    input is whole splits its weight by output columns (and the bias added
    next with them); one whose input is split along the contraction splits
    its weight by rows, leaving a pending sum that colossal-partition
    reduces where it meets the residual stream. q, k and v projections are
    column-parallel, so attention runs on a split of the heads, and the
    output projection and the second MLP layer are row-parallel. Weights the
    walk cannot place stay whole. With `sequence`, each row-parallel output
    gets a `cg.shard` splitting its sequence (dimension 1) over tp: its
    pending sum is then reduce-scattered rather than all-reduced, and what
    follows up to the next column-parallel layer (bias, dropout, residual,
    layer norm) runs on a sequence shard, whose input is all-gathered. Only weights are annotated: the
    propagation derives activations, gradients and the backward's
    collectives from them.

    `mode=2d|2.5d|3d` lays out every linear layer as Colossal-AI's
    multi-dimensional tensor parallelism does, on a mesh of tp axes after dp
    (2d: `tpr` x `tpc`; 2.5d: `tpd` x `tpr` x `tpc`; 3d: `tpx` x `tpy` x
    `tpz`). Activations [batch, ..., hidden] are split along the batch over
    dp and the row axes and along the hidden dimension over a column axis,
    so norms, residual adds and attention (heads split) run on pieces and a
    layer norm all-reduces its statistics. Weights are split along both
    dimensions (2.5d: replicated over `tpd`), embedding tables too (their
    lookup is vocab-parallel). Each linear layer gets `cg.shard`s with
    `grad_sharding` pinning its forward and backward to the algorithm:
    SUMMA in its all-gather form (the lhs gathered along the columns, the
    weight along the rows: the bytes of the broadcast loop), and in 3d the
    lhs gathered over one axis, the weight over another and the product
    reduce-scattered over the third, the axes swapping roles from one
    layer to the next as in Colossal-AI.

    ```mlir
    %w1 = cg.param "fc.weight" ... {cg.sharding = [#cg.sharding<@mesh, [[], ["tp"]]>]}   // column
    %w2 = cg.param "proj.weight" ... {cg.sharding = [#cg.sharding<@mesh, [["tp"]]>]}    // row
    ```
  }];
  let options = [
    Option<"dp", "dp", "int64_t", "1", "Devices on the data-parallel axis (the mesh's major axis)">,
    Option<"tp", "tp", "int64_t", "1", "Devices on the tensor-parallel axis">,
    Option<"sequence", "sequence", "bool", "false",
           "Megatron sequence parallelism: each row-parallel output is reduce-scattered along the sequence (a cg.shard), so norms, dropout and residual adds run on sequence shards">,
    Option<"mode", "mode", "std::string", "\"1d\"",
           "1d (Megatron), 2d (SUMMA on a q x q mesh: tp = q^2), 2.5d (Tesseract on d x q x q: tp = depth q^2) or 3d (q x q x q: tp = q^3)">,
    Option<"depth", "depth", "int64_t", "1", "The depth d of mode=2.5d">,
    Option<"sp", "sp", "int64_t", "1",
           "With mode=1d: an `sp` mesh axis of this size between dp and tp, for sequence parallelism (colossal-shard-for-parallel sp=, ring or Ulysses) beside Megatron's layout; with sequence, each sp block of a row-parallel output is split over tp">
  ];
  let dependentDialects = ["::mlir::colossal::cg::CGDialect"];
}

def PropagateShardingPass : Pass<"colossal-propagate-sharding", "::mlir::ModuleOp"> {
  let summary = "Gives every value a sharding, following the per-op rules from the annotated ones";
  let description = [{
    Walks the program in order. Function arguments, parameters and
    `cg.shard` ops keep the shardings they were given; every other op asks
    its sharding rule (passes/ShardingRules.cpp) how it handles its
    operands' layouts. The op gets `cg.sharding` (one per result) and
    `cg.operand_sharding` (the layout each operand must arrive in: where it
    differs from the operand's own, colossal-partition inserts a
    collective). Returned values must be whole; `cg.assign` writes in the
    parameter's own layout. Ops without a rule run on whole tensors. A
    pointwise op whose result flows, through pointwise ops of its shape
    only, into assigns of replicated parameters (and of no split one: the
    update of a replicated weight with replicated optimizer state) runs on
    whole tensors even when an operand arrives split: the gradient is
    gathered once, not the new weight and each state after the update; and
    a `reduce_sum` making such a gradient from an activation split along a
    dimension it keeps (a bias's gradient from head-split activations under
    Ulysses) moves the split onto its last summed dimension instead, so the
    gradient is a pending sum reduced like the others.

    ```mlir
    %y = cg.matmul %x, %w {cg.sharding = [#cg.sharding<@mesh, [["dp"]]>],
                           cg.operand_sharding = [#cg.sharding<@mesh, [["dp"]]>, #cg.sharding<@mesh, []>]}
    %g = cg.reduce_sum %p {axes = array<i64: 0>, cg.sharding = [#cg.sharding<@mesh, [], partial = ["dp"]>], ...}
    ```
  }];
  let options = [
    Option<"resolvePartial", "resolve-partial", "std::string", "\"all-reduce\"",
           "How a pending sum is resolved when its consumer has no split to follow: all-reduce (replicated) or reduce-scatter (split along dim 0)">
  ];
  let dependentDialects = ["::mlir::colossal::cg::CGDialect"];
}

def PartitionPass : Pass<"colossal-partition", "::mlir::ModuleOp"> {
  let summary = "Rewrites a sharded program into the per-device (SPMD) program, with cgd collectives";
  let description = [{
    After colossal-propagate-sharding: every value takes its per-device
    shape, and where an operand's layout differs from the one its consumer
    wants, the reshard is inserted right before the consumer, in steps that
    work on meshes of any number of axes:

    1. pending sums the consumer does not keep: `cgd.reduce_scatter` when
       the wanted layout splits a whole dimension over exactly those axes,
       else `cgd.all_reduce`;
    2. dimensions split differently: `cgd.all_gather` of the old split;
    3. dimensions split further: `cgd.all_slice` (local, no communication).

    ```mlir
    // before: %g partial over dp, consumer wants it whole
    %r = cgd.all_reduce %g on @mesh ["dp"] sum : tensor<16x16xf32>
    ```

    A reshard is made once per value and layout, except for parameters
    (and views of them), which are regathered at every use so a ZeRO-3
    weight is whole only while an op reads it. A mean over a split
    dimension is rescaled into a pending sum. `cg.sharding` stays on
    parameters and function arguments (the plan records which slice each
    device holds).
  }];
  let dependentDialects = ["::mlir::colossal::cg::CGDialect",
                           "::mlir::colossal::cgd::CGDDialect"];
}

def OffloadPass : Pass<"colossal-offload", "::mlir::ModuleOp"> {
  let summary = "Keeps the optimizer state (and the weights, or the activations) in host memory";
  let description = [{
    After partitioning (and colossal-pipeline), before the memory plan: the
    optimizer state tensors (parameters with `cg.role = "optimizer"` of more
    than one element: moments, momentum, accumulated gradients) are marked
    `cg.host`, so colossal-plan-memory places them in the rank's host pool
    (`cg.host_pool_bytes`) instead of its device arena.

    With `update=host` (the default; ZeRO-Offload's placement) the weights
    those states update live in the host pool too, and so does the
    optimizer step: every op reading a host value, and each elementwise op
    only host ops read, is marked `cg.host` (the runtime runs it on the
    host, its result in the host pool); each gradient (or scalar) a host op
    reads is copied to the host once (`cgd.copy_to_host`), and each weight
    comes to the device once, before its first reader of the step (so the
    device holds it for the step, as without offload; the new weight is
    written to the host pool and the next step brings it over).

    With `update=device` each state tensor is copied to the device
    (`cgd.copy_to_device`) right before its first reader, the
    update of its weight, and its assignment writes the new value back to
    the host pool; the device holds one weight's state at a time and the
    update runs on the device. `what=params` also keeps the weights
    there (with either update), as ZeRO-Infinity places them: on a program
    whose layers colossal-mark-layers marked, each weight is copied to the
    device once per layer run that reads it (a stretch of one layer's ops
    in one phase and micro-batch; with ZeRO-3, through its gather), at the
    start of the run before it, so it is prefetched a layer ahead and the
    device holds two layers' weights at a time, the double-buffered
    working set the cost model charges; consecutive runs that read it
    share the copy. A reader outside the layers (the embedding, the head,
    a device update) gets a copy right before it. `what=activations` (after partitioning, before colossal-pipeline,
    on a step whose layers colossal-mark-layers marked) leaves the optimizer
    state alone and moves the activations instead: each forward value a
    backward op of a layer reads is copied to the host pool
    (`cgd.copy_to_host`, marked `cg.host`: the host pool places it by its
    lifetime) right after it is made, and back (`cgd.copy_to_device`) at
    the start of the backward of the layer before it in backward order, a
    layer ahead of its first reader; so the device holds two layers' kept
    activations at a time, as the cost model assumes. Values the backward's
    first layer reads stay, as do values that cross pipeline stages.
    `what=none` changes nothing.

    ```mlir
    %m = cg.param "adam.m:w" {cg.host, cg.role = "optimizer"} ...
    %md = cgd.copy_to_device %m : tensor<64x64xf32>
    %m2 = cg.add %a, %b ...          // reads %md
    cg.assign %m2 to %m ...          // written back to the host pool
    ```
  }];
  let options = [
    Option<"what", "what", "std::string", "\"optimizer\"",
           "What lives in host memory: optimizer, params (and the optimizer state), activations or none">,
    Option<"update", "update", "std::string", "\"host\"",
           "With optimizer or params: where the optimizer step runs: host (the state, the weights it updates and the step in host memory; gradients come to the host, new weights go back: ZeRO-Offload) or device (each state tensor comes to the device for its weight's update and goes back)">
  ];
  let dependentDialects = ["::mlir::colossal::cgd::CGDDialect"];
}

def FoldIntoGemmPass : Pass<"colossal-fold-into-gemm", "::mlir::ModuleOp"> {
  let summary = "Folds transposes and batch sums into the GEMMs that read them";
  let description = [{
    On the programs about to be planned (colossal-opt runs it after
    partitioning, the pipeline split and offload, before the memory plan):
    a matmul whose operand is a transpose of its last two dimensions reads
    the transpose's input instead, marked `transpose_lhs` / `transpose_rhs`,
    as a GEMM takes a transposed operand (`transposes`); the transpose goes
    when nothing else reads it. The backward's `x^T @ g` of every matmul
    against a weight, and the decomposed attention's, stop copying their
    operands. Then a sum over every batch dimension of a batched `A^T @ B`
    (the weight gradient of a matmul whose weight is shared by the batch:
    one product per sample, summed) becomes one GEMM over the batch's rows
    (`batch-reductions`): A [b, s, m] and B [b, s, n] are viewed as
    [b*s, m] and [b*s, n], so the b partial products are neither written nor
    summed. Only float matmuls fold; the results are the same tensors.

    ```mlir
    %t = cg.transpose %x {permutation = array<i64: 0, 2, 1>} : (tensor<8x32x128xf32>) -> tensor<8x128x32xf32>
    %p = cg.matmul %t, %g : (tensor<8x128x32xf32>, tensor<8x32x64xf32>) -> tensor<8x128x64xf32>
    %w = cg.reduce_sum %p {axes = array<i64: 0>} : (tensor<8x128x64xf32>) -> tensor<128x64xf32>
    // becomes
    %x2 = cg.reshape %x : (tensor<8x32x128xf32>) -> tensor<256x128xf32>
    %g2 = cg.reshape %g : (tensor<8x32x64xf32>) -> tensor<256x64xf32>
    %w = cg.matmul %x2, %g2 {transpose_lhs} : (tensor<256x128xf32>, tensor<256x64xf32>) -> tensor<128x64xf32>
    ```
  }];
  let options = [
    Option<"transposes", "transposes", "bool", "true",
           "Fold a transpose of an operand's last two dimensions into the matmul (transpose_lhs / transpose_rhs)">,
    Option<"batchReductions", "batch-reductions", "bool", "true",
           "Turn a sum over all batch dimensions of a batched A^T @ B into one GEMM over the batch's rows">
  ];
}

def FuseElementwisePass : Pass<"colossal-fuse-elementwise", "::mlir::ModuleOp"> {
  let summary = "Runs chains of float32 elementwise ops as one kernel each";
  let description = [{
    On the programs about to be planned (colossal-opt runs it last, after
    colossal-fold-into-gemm, before the memory plan): in program order, a
    float32 elementwise op (add sub mul div pow max min, and the unary math
    and activations of cg.fused_elementwise's list) whose operands have its
    shape or one element joins the regions of its operands made by such ops
    of its type (merged into one) that ended at most `max-span` ops before
    it; a region closes once an op outside it reads one of its
    values, so every reader outside comes after its last op. Each region of
    at least `min-steps` ops becomes one `cg.fused_elementwise` there,
    yielding the values read outside; the values between its steps are not
    stored. The optimizer's update of a weight (a dozen ops over the weight,
    its gradient and its state, with scalar hyperparameters) becomes one
    pass over them, as a fused multi-tensor optimizer is. Host ops
    (`cg.host`) fuse only with host ops.

    ```mlir
    %a = cg.mul %m, %b1 : (tensor<64xf32>, tensor<f32>) -> tensor<64xf32>
    %b = cg.add %a, %g : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
    // becomes
    %b = cg.fused_elementwise %m, %b1, %g {steps = "mul,add", args = array<i64: 0, 1, 3, 2>, yields = array<i64: 1>} : (tensor<64xf32>, tensor<f32>, tensor<64xf32>) -> tensor<64xf32>
    ```
  }];
  let options = [
    Option<"minSteps", "min-steps", "int64_t", "2",
           "Fewest ops a region needs to be fused (>= 2)">,
    Option<"maxSpan", "max-span", "int64_t", "16",
           "Most ops between a region's last op and an op that joins it: a region runs at its last op, so a longer gap would keep its inputs alive longer than the ops one by one do (gradient sums across a pipeline's micro-batches)">
  ];
}

def BucketCollectivesPass : Pass<"colossal-bucket-collectives", "::mlir::ModuleOp"> {
  let summary = "Joins gradient all-reduces and reduce-scatters into buckets, issued as backward produces them";
  let description = [{
    After colossal-partition: all-reduces of one kind (mesh axes, reduction,
    element type) are grouped, in the order their inputs are produced, into
    buckets of about `bucket-bytes`, as PyTorch DDP does; each bucket is one
    all-reduce of the flattened, concatenated members, placed right after
    the last member's input is computed (so a backend with a communication
    stream can overlap it with the rest of the backward), then split and
    reshaped back. Reduce-scatters along dim 0 (ZeRO-2/3's gradients)
    bucket alike: each input laid out as [group, piece], joined along the
    pieces, so one reduce-scatter gives each device its piece of every
    member; these buckets stay within a layer (colossal-mark-layers'
    `cg.layer` on the gradients' producers), so whole gradients do not
    outlive it. A member joins only while every member's input exists
    before any member's result is used. Buckets are marked `cg.bucket`
    (their member count).

    ```mlir
    %f1 = cg.reshape %g1 : (tensor<4x4xf32>) -> tensor<16xf32>
    %f2 = cg.reshape %g2 : (tensor<4xf32>) -> tensor<4xf32>
    %c = cg.concat %f1, %f2 {axis = 0 : i64} : (...) -> tensor<20xf32>
    %r = cgd.all_reduce %c on @mesh ["dp"] sum {cg.bucket = 2 : i64} : tensor<20xf32>
    %p:2 = cg.split %r {axis = 0 : i64, sizes = array<i64: 16, 4>} : ...
    ```
  }];
  let options = [
    Option<"bucketBytes", "bucket-bytes", "int64_t", "26214400",
           "Bytes per bucket (PyTorch DDP's 25 MiB); 0 keeps every all-reduce on its own">,
    Option<"gatherBytes", "gather-bytes", "int64_t", "0",
           "ZeRO-3: join consecutive gathers of weight pieces (along dim 0) into one of about this many bytes, issued where the first was (FSDP's per-unit gather), never across layers (colossal-mark-layers' cg.layer of each gather's first reader); a gather of a transposed piece (the backward's W^T) is first turned into the transpose of the piece's gather so it joins too; 0 keeps every gather on its own">
  ];
  let statistics = [
    Statistic<"numBuckets", "buckets", "Number of buckets formed">
  ];
  let dependentDialects = ["::mlir::colossal::cg::CGDialect",
                           "::mlir::colossal::cgd::CGDDialect"];
}

#endif // COLOSSAL_PASSES_PASSES_TD
