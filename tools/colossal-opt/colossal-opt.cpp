//===- colossal-opt.cpp - Colossal's compiler driver ----------------------===//
//
// mlir-opt with Colossal's dialects and passes, which also reads ONNX
// models: `colossal-opt model.onnx --bind batch=8,seq=2048` imports the
// model and runs the requested passes on it. Every standard mlir-opt flag
// works on both kinds of input.
//
//===----------------------------------------------------------------------===//

#include "compiler/cost/ClusterSpec.h"
#include "compiler/cost/ParallelConfig.h"
#include "compiler/estimate/Estimate.h"
#include "compiler/plan/PlanEmitter.h"
#include "dialects/Dist/IR/DistOps.h"
#include "dialects/Graph/IR/GraphOps.h"
#include "frontends/onnx/OnnxImporter.h"
#include "passes/Passes.h"

#include "mlir/Bytecode/BytecodeWriter.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Mesh/IR/MeshDialect.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;

static llvm::cl::OptionCategory colossalCategory("Colossal options");

static llvm::cl::list<std::string> constInputOption(
    "const-input",
    llvm::cl::desc("Make an ONNX graph input a constant at compile time "
                   "(its shape-determining uses then fold): "
                   "--const-input NAME=FILE.npy or NAME=v1,v2,... "
                   "(repeatable; not --freeze, which keeps weights from "
                   "training)"),
    llvm::cl::value_desc("name=values"), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> bindOption(
    "bind",
    llvm::cl::desc("Sizes of the ONNX model's symbolic dimensions, e.g. "
                   "--bind batch=8,seq=2048"),
    llvm::cl::value_desc("name=size,..."), llvm::cl::init(""),
    llvm::cl::cat(colossalCategory));

// Estimating a manual plan (issue 5): colossal-opt M.onnx --mode=train
// --cluster=SPEC --batch=B --parallel="dp=..,tp=.." --estimate
static llvm::cl::opt<bool> estimateOption(
    "estimate",
    llvm::cl::desc("Print the cost model's estimate of --parallel (JSON) "
                   "instead of the IR"),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> modeOption(
    "mode",
    llvm::cl::desc("Job kind: infer (run the compile pipeline: fuse, plan "
                   "memory, emit) or train (with --loss: the loss and its "
                   "gradients w.r.t. every parameter; or with --estimate / "
                   "--auto-parallel)"),
    llvm::cl::value_desc("train|infer"), llvm::cl::init(""),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> lossOption(
    "loss",
    llvm::cl::desc("With --mode=train: the loss over the model's output, "
                   "cross-entropy (integer labels) or mse"),
    llvm::cl::value_desc("cross-entropy|mse"), llvm::cl::init(""),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> lossOutputOption(
    "loss-output",
    llvm::cl::desc("With --loss: which model output is the prediction, by "
                   "index or name (default 0: the first output, the logits "
                   "of standard LMs and classifiers)"),
    llvm::cl::value_desc("N|name"), llvm::cl::init("0"),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> precisionOption(
    "precision",
    llvm::cl::desc("With --mode: the compute type; parameters, optimizer "
                   "state and the loss stay float32 (default fp32)"),
    llvm::cl::value_desc("fp32|bf16|fp16"), llvm::cl::init("fp32"),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> attentionBackwardOption(
    "attention-backward",
    llvm::cl::desc("With --mode=train: attention's gradients as decomposed "
                   "ops (probabilities recomputed, matmuls) or as one fused "
                   "kernel that keeps no score matrix (flash attention's "
                   "backward; what ring attention uses). Default: fused with "
                   "sp-mode=ring, else decomposed"),
    llvm::cl::value_desc("decomposed|fused"), llvm::cl::init(""),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> lossScaleOption(
    "loss-scale",
    llvm::cl::desc("With --loss: scale the loss gradient: none, a number, or "
                   "dynamic[:INIT] (skip overflowing steps, adapt the scale; "
                   "the default with --precision=fp16)"),
    llvm::cl::value_desc("none|S|dynamic[:INIT]"), llvm::cl::init(""),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> batchNormOption(
    "batch-norm",
    llvm::cl::desc("With --loss: batch norms normalize with the batch's "
                   "statistics and update their running ones (batch, the "
                   "default, as torch's train mode), or keep using the "
                   "running statistics (running, as torch's eval mode)"),
    llvm::cl::value_desc("batch|running"), llvm::cl::init("batch"),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<double> batchNormMomentumOption(
    "batch-norm-momentum",
    llvm::cl::desc("With --batch-norm=batch: weight of each batch in the "
                   "running statistics (default 0.1, as torch)"),
    llvm::cl::init(0.1), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> freezeOption(
    "freeze",
    llvm::cl::desc(
        "With --loss: comma-separated glob patterns of parameters "
        "that are not trained (default '*rope*,*rotary*,*inv_freq*': "
        "rotary tables the exporter stores as initializers; give "
        "'' to train everything)"),
    llvm::cl::value_desc("glob,..."),
    llvm::cl::init("*rope*,*rotary*,*inv_freq*"),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<int64_t> dropoutSeedOption(
    "dropout-seed",
    llvm::cl::desc("With --loss: seed of the masks of training-mode dropout "
                   "(ONNX Dropout with training_mode, from torch's TRAINING "
                   "exports); default 0"),
    llvm::cl::init(0), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<int64_t> classAxisOption(
    "class-axis",
    llvm::cl::desc("With --loss=cross-entropy: the logits' axis of classes "
                   "(default -1, the last; 1 for NCHW outputs, as torch's "
                   "CrossEntropyLoss); the labels have the other axes"),
    llvm::cl::init(-1), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> labelsNameOption(
    "labels-name",
    llvm::cl::desc("With --loss: name of the new labels/targets input "
                   "(default labels, or targets for mse)"),
    llvm::cl::init(""), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> tokensInputOption(
    "tokens-input",
    llvm::cl::desc("With --optimizer: the language model's token input, "
                   "whose next tokens are the labels (default: inferred; "
                   "none: not a language model)"),
    llvm::cl::init(""), llvm::cl::cat(colossalCategory));
// The optimizer step (colossal-optimizer); see passes/Passes.td.
static llvm::cl::opt<std::string> optimizerOption(
    "optimizer",
    llvm::cl::desc("With --loss: compile a whole training step that updates "
                   "the parameters with this optimizer (without it the plan "
                   "returns the loss and the gradients)"),
    llvm::cl::value_desc("sgd|adamw|lamb|lars"), llvm::cl::init(""),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<double>
    lrOption("lr",
             llvm::cl::desc("With --optimizer: learning rate (default 1e-3)"),
             llvm::cl::init(1e-3), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<double> weightDecayOption(
    "weight-decay",
    llvm::cl::desc("With --optimizer: weight decay (default 0.01 for adamw "
                   "and lamb, 0 for sgd and lars)"),
    llvm::cl::init(-1), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> betasOption(
    "betas",
    llvm::cl::desc("With --optimizer=adamw|lamb: moment decays (default "
                   "0.9,0.999)"),
    llvm::cl::value_desc("b1,b2"), llvm::cl::init("0.9,0.999"),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<double> epsOption(
    "eps",
    llvm::cl::desc("With --optimizer=adamw|lamb: epsilon (default 1e-8 for "
                   "adamw, 1e-6 for lamb)"),
    llvm::cl::init(-1), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<double> momentumOption(
    "momentum",
    llvm::cl::desc("With --optimizer=sgd|lars: momentum (default 0 for sgd, "
                   "0.9 for lars)"),
    llvm::cl::init(-1), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<double> trustCoefficientOption(
    "trust-coefficient",
    llvm::cl::desc("With --optimizer=lars: trust coefficient eta (default "
                   "0.001)"),
    llvm::cl::init(0.001), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<double> clipGradNormOption(
    "clip-grad-norm",
    llvm::cl::desc("With --optimizer: clip the global gradient norm to this "
                   "(default 0: no clipping)"),
    llvm::cl::init(0), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> lrScheduleOption(
    "lr-schedule",
    llvm::cl::desc("With --optimizer: constant, or warmup-cosine:W,T[,MIN] "
                   "(W warmup steps, cosine decay to MIN*lr at step T)"),
    llvm::cl::init("constant"), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<int64_t> microBatchesOption(
    "micro-batches",
    llvm::cl::desc("With --optimizer: accumulate gradients over K runs "
                   "(micro-batches) per optimizer step (default 1)"),
    llvm::cl::init(1), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<int64_t> ignoreIndexOption(
    "ignore-index",
    llvm::cl::desc("With --loss=cross-entropy: the label of positions that "
                   "do not count (default -100)"),
    llvm::cl::init(-100), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> emitOption(
    "emit",
    llvm::cl::desc("With --mode: what to write: mlir (the IR at the end of "
                   "the pipeline) or plan (a .cplan file for colossal-run; "
                   "needs -o)"),
    llvm::cl::value_desc("mlir|plan"), llvm::cl::init("mlir"),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> clusterOption(
    "cluster",
    llvm::cl::desc("Cluster spec: a preset (dgx-a100-80g, dgx-h100-80g, h200, "
                   "cpu) with overrides, e.g. dgx-a100-80g:nodes=4, or a JSON "
                   "file"),
    llvm::cl::value_desc("spec"), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<int64_t>
    batchOption("batch",
                llvm::cl::desc("Global batch: samples (sequences) per step"),
                llvm::cl::init(0), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> parallelOption(
    "parallel",
    llvm::cl::desc("Manual plan: dp=..,tp=..,tp-mode=1d|2d|2.5d:D|3d,tp-sp=0|1,"
                   "pp=..,sp=..,micro-batch=..,schedule=1f1b|gpipe|"
                   "interleaved:V,recompute=none|selective|full,zero=0..3,"
                   "offload=none|optimizer|params|activations"),
    llvm::cl::value_desc("key=value,..."), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> dtypeOption(
    "dtype",
    llvm::cl::desc("Compute dtype for estimates: bf16, fp16, tf32, fp32"),
    llvm::cl::init("bf16"), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<bool> flashOption(
    "flash-attention",
    llvm::cl::desc("Estimate with attention kernels that do not store scores"),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<bool> autoParallelOption(
    "auto-parallel",
    llvm::cl::desc("Search the fastest parallel plan that fits (with --mode, "
                   "--cluster, --batch) and annotate the IR with it"),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> memoryBudgetOption(
    "memory-budget",
    llvm::cl::desc("Bytes a device may use (e.g. 40GiB); default: the "
                   "device's usable memory"),
    llvm::cl::init(""), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string> constrainOption(
    "constrain",
    llvm::cl::desc("Limits on the search, e.g. tp<=8,pp=1,zero>=1,"
                   "schedule=1f1b,offload=none|optimizer (| lists the "
                   "allowed values of a named key)"),
    llvm::cl::init(""), llvm::cl::cat(colossalCategory));
static llvm::cl::opt<std::string>
    reportOption("report",
                 llvm::cl::desc("Write the auto-parallel report (JSON) here"),
                 llvm::cl::value_desc("file.json"), llvm::cl::init(""),
                 llvm::cl::cat(colossalCategory));
static llvm::cl::opt<bool> reportTextOption(
    "report-text",
    llvm::cl::desc("Also print the auto-parallel report as text (stderr)"),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<bool> dropoutOption(
    "dropout",
    llvm::cl::desc("Estimate a training that applies dropout (attention, "
                   "hidden, embeddings), as Megatron-LM's GPT does"),
    llvm::cl::cat(colossalCategory));
static llvm::cl::opt<bool> workloadOption(
    "estimate-workload",
    llvm::cl::desc("With --estimate: include the per-layer workload"),
    llvm::cl::cat(colossalCategory));

/// Imports (ONNX) or parses (MLIR) the input for the pipelines that
/// colossal-opt drives itself (--estimate, --mode).
static OwningOpRef<ModuleOp>
loadModule(MLIRContext &context, llvm::SourceMgr &sourceMgr, StringRef path,
           std::unique_ptr<llvm::MemoryBuffer> input, bool onnx,
           bool defaultBatch) {
  if (!onnx) {
    sourceMgr.AddNewSourceBuffer(std::move(input), llvm::SMLoc());
    return parseSourceFile<ModuleOp>(sourceMgr, &context);
  }
  mlir::colossal::onnx::ImportOptions options;
  options.constInputs.assign(constInputOption.begin(), constInputOption.end());
  std::string error =
      mlir::colossal::onnx::parseBindings(bindOption, options.bindings);
  if (!error.empty()) {
    llvm::errs() << "colossal-opt: " << error << "\n";
    return nullptr;
  }
  options.batchNormTrainingMode = modeOption == "train" &&
                                  !lossOption.empty() &&
                                  batchNormOption == "batch";
  options.dropoutTrainingMode = modeOption == "train" && !lossOption.empty();
  options.scalarParameters = options.dropoutTrainingMode;
  options.untieIdentityWeights = options.dropoutTrainingMode;
  options.forTraining = modeOption == "train";
  // Costs are per sample: an unbound batch dimension imports as 1.
  if (defaultBatch)
    options.bindings.try_emplace("batch", 1);
  return mlir::colossal::onnx::importOnnxModel(context, input->getBuffer(),
                                               path, options);
}

/// The job described by --mode, --cluster, --batch and friends.
static mlir::colossal::EstimateRequest jobFromFlags() {
  mlir::colossal::EstimateRequest job;
  job.mode = modeOption.empty() ? std::string("train") : modeOption;
  job.cluster = clusterOption;
  job.batch = batchOption;
  job.parallel = parallelOption;
  job.dtype = dtypeOption;
  job.flashAttention = flashOption;
  job.dropout = dropoutOption;
  job.includeWorkload = workloadOption;
  return job;
}

/// --loss-output as an index: a number, or the name of a model output.
static LogicalResult resolveLossOutput(ModuleOp module, int64_t &index) {
  StringRef text = lossOutputOption;
  if (!text.getAsInteger(10, index))
    return success();
  for (auto func : module.getOps<func::FuncOp>()) {
    if (func.isExternal())
      continue;
    std::string names;
    for (unsigned i = 0; i < func.getNumResults(); ++i) {
      auto name = func.getResultAttrOfType<StringAttr>(i, "cg.name");
      std::string n = name ? name.str() : "output" + std::to_string(i);
      if (n == text) {
        index = i;
        return success();
      }
      names += (names.empty() ? "" : ", ") + n;
    }
    return module.emitError("--loss-output=")
           << text << " names no model output; the outputs are " << names
           << " (or give an index from 0)";
  }
  return module.emitError("the module has no function to train");
}

/// The optimizer flags as pass options; false with `error` set when they
/// are not valid.
static bool optimizerFromFlags(mlir::colossal::OptimizerPassOptions &opt,
                               std::string &error) {
  opt.optimizer = optimizerOption;
  opt.lr = lrOption;
  opt.weightDecay = weightDecayOption;
  opt.eps = epsOption;
  opt.momentum = momentumOption;
  opt.trustCoefficient = trustCoefficientOption;
  opt.clipGradNorm = clipGradNormOption;
  opt.lrSchedule = lrScheduleOption;
  opt.microBatches = microBatchesOption;
  opt.tokensInput = tokensInputOption;
  auto [first, second] = StringRef(betasOption).split(',');
  if (first.trim().getAsDouble(opt.beta1) ||
      second.trim().getAsDouble(opt.beta2)) {
    error = "--betas=" + betasOption +
            " is not two numbers; write e.g. --betas=0.9,0.95";
    return false;
  }
  // A setting the chosen optimizer does not have is a mistake, not a no-op.
  bool adam = opt.optimizer == "adamw" || opt.optimizer == "lamb";
  if (adam && momentumOption.getNumOccurrences()) {
    error = "--momentum applies to sgd and lars; " + opt.optimizer +
            " keeps moments set by --betas";
    return false;
  }
  if (!adam &&
      (betasOption.getNumOccurrences() || epsOption.getNumOccurrences())) {
    error = "--betas and --eps apply to adamw and lamb, not " + opt.optimizer;
    return false;
  }
  if (opt.optimizer != "lars" && trustCoefficientOption.getNumOccurrences()) {
    error = "--trust-coefficient applies to lars only";
    return false;
  }
  // Negative values mean "the optimizer's default" to the pass; given on
  // the command line they are mistakes.
  for (auto [flag, option] : {std::pair<const char *, llvm::cl::opt<double> *>{
                                  "--weight-decay", &weightDecayOption},
                              {"--eps", &epsOption},
                              {"--momentum", &momentumOption}})
    if (option->getNumOccurrences() && !(*option >= 0)) {
      error = std::string(flag) + " must be a number >= 0, got " +
              std::to_string(double(*option));
      return false;
    }
  error = mlir::colossal::checkOptimizerOptions(opt);
  return error.empty();
}

/// The parallel layout a compiled plan executes (--parallel, checked against
/// --cluster): what can run today, or a message saying what cannot.
struct ExecutableParallel {
  int64_t dp = 1;
  int64_t tp = 1;
  std::string tpMode = "1d"; // 1d | 2d | 2.5d | 3d
  int64_t tpDepth = 1;       // the d of 2.5d
  bool sequence = false;     // Megatron sequence parallelism (tp-sp=1)
  int zero = 0;
  int64_t microBatch = 0; // given explicitly: sequences per replica per run
  std::string recompute = "none"; // none | selective | full
  int64_t recomputeLayers = 0;    // full:K; 0 = every block
  // Pipeline parallelism: stages, the schedule, model chunks per stage and
  // layers per chunk ("" = even); the micro-batches are --micro-batches.
  int64_t pp = 1;
  std::string schedule = "1f1b";
  int64_t virtualStages = 1;
  std::string stageLayers;
  bool offloadOptimizer = false;   // offload=optimizer (or params)
  bool offloadParams = false;      // offload=params: the weights too
  bool offloadActivations = false; // offload=activations
  int64_t sp = 1;                  // sequence parallelism
  std::string spMode = "ulysses";  // ulysses | ring
};
static bool executableParallelFromFlags(ExecutableParallel &out,
                                        std::string &error) {
  using namespace ::colossal::cost;
  int64_t clusterDevices = 1;
  if (!clusterOption.empty()) {
    auto cluster = parseClusterArg(clusterOption);
    if (!cluster) {
      error = llvm::toString(cluster.takeError());
      return false;
    }
    clusterDevices = cluster->numDevices();
  }
  if (parallelOption.empty()) {
    if (clusterDevices > 1) {
      error = "--cluster=" + clusterOption + " has " +
              std::to_string(clusterDevices) +
              " devices, but no --parallel says how to use them; add "
              "--parallel=dp=" +
              std::to_string(clusterDevices) +
              " (or zero=1..3), or plan with --auto-parallel";
      return false;
    }
    return true;
  }
  auto cfg = parseParallelConfig(parallelOption);
  if (!cfg) {
    error = llvm::toString(cfg.takeError());
    return false;
  }
  if (cfg->tp > 1 && cfg->tpMeshSide() < 2) {
    StringRef need = cfg->tp_mode == TpMode::TwoD     ? "a square (q^2)"
                     : cfg->tp_mode == TpMode::ThreeD ? "a cube (q^3)"
                     : cfg->tp_mode == TpMode::TwoPointFiveD
                         ? "depth x q^2 with q >= 2"
                         : "at least 2";
    error = "--parallel=" + parallelOption + ": tp=" + std::to_string(cfg->tp) +
            " with tp-mode=" + tpModeName(cfg->tp_mode).str() + " must be " +
            need.str() +
            " (the tensor-parallel mesh is q x q, d x q x q or "
            "q x q x q)";
    return false;
  }
  if (cfg->tp_sp && cfg->tp_mode != TpMode::OneD) {
    error = "--parallel=" + parallelOption +
            ": tp-sp=1 applies to tp-mode=1d only (2d/2.5d/3d already split "
            "every activation); leave tp-sp out";
    return false;
  }
  std::string unsupported = ::colossal::cost::notYetExecutable(*cfg);
  if (!unsupported.empty()) {
    error = "--parallel=" + parallelOption + ": " + unsupported +
            " cannot be executed yet; compiled plans run data parallelism, "
            "ZeRO, 1D/2D/2.5D/3D tensor parallelism, pipelines, Ulysses "
            "and ring sequence parallelism and offload of the "
            "optimizer state, the "
            "weights and the activations "
            "(dp=N,zero=0..3,tp=M,tp-mode=1d|2d|2.5d:D|3d,tp-sp=0|1,pp=P,"
            "schedule=gpipe|1f1b|interleaved:V,sp=S,sp-mode=ulysses|ring,"
            "offload=optimizer|params|activations). Use --estimate to see "
            "what the other "
            "layouts would cost";
    return false;
  }
  if (!clusterOption.empty() && cfg->devices() != clusterDevices) {
    error = "--parallel=" + parallelOption + " uses " +
            std::to_string(cfg->devices()) +
            " devices but --cluster=" + clusterOption + " has " +
            std::to_string(clusterDevices) + "; make them agree";
    return false;
  }
  if (cfg->recompute != Recompute::None && modeOption != "train") {
    error = "--parallel=" + parallelOption +
            ": recompute=" + recomputeName(cfg->recompute).str() +
            " recomputes activations in the backward of a training step; "
            "use it with --mode=train (inference keeps no activations)";
    return false;
  }
  if (cfg->pp > 1 && modeOption != "train" &&
      cfg->schedule == Schedule::Interleaved) {
    error = "--parallel=" + parallelOption +
            ": an inference pipeline runs each micro-batch through the stages "
            "in order; use it without schedule=interleaved";
    return false;
  }
  if (cfg->pp == 1 && (cfg->schedule == Schedule::Interleaved ||
                       StringRef(parallelOption).contains("stage-layers"))) {
    error = "--parallel=" + parallelOption +
            ": schedule=interleaved and stage-layers describe a pipeline; "
            "add pp=P (P >= 2)";
    return false;
  }
  if (cfg->offload == Offload::Activations && modeOption != "train") {
    error = "--parallel=" + parallelOption +
            ": offload=activations moves the activations a training step "
            "keeps for its backward to host memory; use it with --mode=train "
            "(inference keeps none)";
    return false;
  }
  if ((cfg->offload == Offload::Optimizer || cfg->offload == Offload::Params) &&
      (modeOption != "train" || optimizerOption.empty())) {
    error = "--parallel=" + parallelOption +
            ": offload moves the optimizer state (and with params the "
            "weights) to host memory; use it with --mode=train "
            "--optimizer=...";
    return false;
  }
  // (On one replica the piece is the whole weight.)
  if (cfg->offload == Offload::Params && cfg->zero != 3 && cfg->dp > 1) {
    error = "--parallel=" + parallelOption +
            ": offload=params keeps each rank's ZeRO-3 piece of the weights "
            "in host memory; add zero=3 (and dp >= 2)";
    return false;
  }
  out.offloadOptimizer =
      cfg->offload == Offload::Optimizer || cfg->offload == Offload::Params;
  out.offloadParams = cfg->offload == Offload::Params;
  out.offloadActivations = cfg->offload == Offload::Activations;
  out.sp = cfg->sp;
  out.spMode = cfg->sp_mode == SpMode::Ring ? "ring" : "ulysses";
  if (cfg->sp > 1 && cfg->sp_mode == SpMode::Ring) {
    if (precisionOption != "fp32") {
      error = "--parallel=" + parallelOption +
              ": ring attention runs in fp32, but --precision=" +
              precisionOption.getValue() +
              "; compile with --precision=fp32, or use sp-mode=ulysses";
      return false;
    }
    if (modeOption == "train" && attentionBackwardOption == "decomposed") {
      error = "--parallel=" + parallelOption +
              ": ring attention's backward is the fused one; leave "
              "--attention-backward=decomposed out";
      return false;
    }
  }
  out.pp = cfg->pp;
  out.schedule = scheduleName(cfg->schedule).str();
  out.virtualStages = cfg->virtual_stages;
  for (size_t i = 0; i < cfg->stage_layers.size(); ++i)
    out.stageLayers += (i ? ":" : "") + std::to_string(cfg->stage_layers[i]);
  out.recompute = recomputeName(cfg->recompute).str();
  out.recomputeLayers = cfg->recompute_layers;
  out.dp = cfg->dp;
  out.tp = cfg->tp;
  out.tpMode = tpModeName(cfg->tp_mode).str();
  out.tpDepth = cfg->tp_depth;
  out.sequence = cfg->tp > 1 && cfg->tp_sp;
  out.zero = cfg->zero;
  if (StringRef(parallelOption).contains("micro-batch"))
    out.microBatch = cfg->micro_batch;
  return true;
}

/// Gradient all-reduces in 25 MiB buckets; with ZeRO-3, weight gathers
/// joined into 4 MiB ones (about a layer of a small model; FSDP gathers a
/// wrapped layer at once), so a step pays far fewer collective latencies.
static mlir::colossal::BucketCollectivesPassOptions
bucketOptions(const ExecutableParallel &par) {
  mlir::colossal::BucketCollectivesPassOptions options;
  if (par.zero == 3)
    options.gatherBytes = 4 << 20;
  return options;
}

/// Fuses attention and canonicalizes (the form every pipeline starts from),
/// then, compiling (`compile` given: the devices to partition for),
/// partitions and plans memory; mlir-opt's pass-manager flags apply.
static LogicalResult runPipelinePasses(ModuleOp module,
                                       const ExecutableParallel *compile,
                                       bool trainStep,
                                       bool estimateMemory = false) {
  PassManager pm(module.getContext());
  if (failed(applyPassManagerCLOptions(pm)))
    return failure();
  pm.addPass(mlir::colossal::createFuseAttentionPass());
  pm.addPass(createCanonicalizerPass());
  if (compile && compile->tp > 1) {
    // Megatron's weight splits are read off the forward graph, before the
    // loss and the backward are built.
    mlir::colossal::TensorParallelLayoutPassOptions layout;
    layout.dp = compile->dp;
    layout.tp = compile->tp;
    layout.sequence = compile->sequence;
    layout.mode = compile->tpMode;
    layout.depth = compile->tpDepth;
    layout.sp = compile->sp;
    pm.addPass(mlir::colossal::createTensorParallelLayoutPass(layout));
  }
  if (trainStep) {
    mlir::colossal::DropoutPassOptions dropout;
    dropout.seed = dropoutSeedOption;
    pm.addPass(mlir::colossal::createDropoutPass(dropout));
  }
  if (trainStep && batchNormOption == "batch") {
    mlir::colossal::BatchNormTrainingPassOptions bn;
    bn.momentum = batchNormMomentumOption;
    pm.addPass(mlir::colossal::createBatchNormTrainingPass(bn));
  }
  if (precisionOption != "fp32") {
    mlir::colossal::MixedPrecisionPassOptions mixed;
    mixed.compute = precisionOption;
    pm.addPass(mlir::colossal::createMixedPrecisionPass(mixed));
  }
  // Pipeline stages are read off the forward (a training step's with its
  // loss); the backward and the update follow them.
  auto markStages = [&] {
    mlir::colossal::MarkStagesPassOptions stages;
    stages.stages = compile->pp;
    stages.virtualStages = compile->virtualStages;
    stages.stageLayers = compile->stageLayers;
    pm.addPass(mlir::colossal::createMarkStagesPass(stages));
  };
  if (!trainStep && compile && compile->pp > 1)
    markStages();
  if (trainStep && compile && compile->recompute != "none") {
    // The layers are read off the forward graph; the marks are carried
    // out once the backward exists.
    mlir::colossal::MarkRecomputePassOptions mark;
    mark.mode = compile->recompute;
    mark.layers = compile->recomputeLayers;
    pm.addPass(mlir::colossal::createMarkRecomputePass(mark));
  }
  // Offloaded activations leave and return layer by layer, offloaded
  // weights come a layer ahead; ZeRO-3 gathers a layer's weights at a time.
  if (trainStep && compile &&
      (compile->offloadActivations || compile->offloadParams ||
       compile->zero == 3)) {
    mlir::colossal::MarkLayersPassOptions layers;
    layers.required = compile->offloadActivations;
    pm.addPass(mlir::colossal::createMarkLayersPass(layers));
  }
  if (trainStep) {
    mlir::colossal::AddLossPassOptions loss;
    loss.loss = lossOption;
    if (failed(resolveLossOutput(module, loss.output)))
      return failure();
    loss.ignoreIndex = ignoreIndexOption;
    loss.targetName = labelsNameOption;
    loss.classAxis = classAxisOption;
    pm.addPass(mlir::colossal::createAddLossPass(loss));
    if (compile && compile->pp > 1)
      markStages();
    mlir::colossal::AutodiffPassOptions autodiff;
    autodiff.lossScale =
        lossScaleOption.empty()
            ? std::string(precisionOption == "fp16" ? "dynamic" : "none")
            : std::string(lossScaleOption);
    autodiff.freeze = freezeOption;
    autodiff.attention =
        !attentionBackwardOption.empty() ? std::string(attentionBackwardOption)
        : compile && compile->sp > 1 && compile->spMode == "ring"
            ? "fused"
            : "decomposed";
    pm.addPass(mlir::colossal::createAutodiffPass(autodiff));
    pm.addPass(createCanonicalizerPass());
    if (!optimizerOption.empty()) {
      mlir::colossal::OptimizerPassOptions opt;
      std::string error;
      if (!optimizerFromFlags(opt, error))
        return module.emitError(error);
      // A pipeline runs every micro-batch in one run and accumulates them
      // itself.
      if (compile && compile->pp > 1)
        opt.microBatches = 1;
      pm.addPass(mlir::colossal::createOptimizerPass(opt));
      pm.addPass(createCanonicalizerPass());
    }
    if (compile && compile->recompute != "none")
      pm.addPass(mlir::colossal::createRecomputePass());
  }
  if (compile) {
    // Partition for the devices of --parallel, then plan each device's
    // memory: the arena holds exactly its shards and buffers.
    const ExecutableParallel &par = *compile;
    // A run is one micro-batch of every replica; more are accumulated.
    if (par.microBatch > 0)
      for (auto func : module.getOps<func::FuncOp>())
        for (BlockArgument arg : func.getArguments()) {
          auto type = cast<ShapedType>(arg.getType());
          if (type.getRank() == 0 ||
              type.getDimSize(0) == par.dp * par.microBatch)
            continue;
          return module.emitError("--parallel=")
                 << parallelOption << " runs " << par.dp * par.microBatch
                 << " sequences at a time (dp x micro-batch), but the model "
                 << "is bound to batch " << type.getDimSize(0)
                 << "; bind batch=" << par.dp * par.microBatch
                 << " and accumulate with --micro-batches";
        }
    if (par.dp > 1 || par.tp > 1 || par.sp > 1) {
      mlir::colossal::ShardForParallelPassOptions shard;
      shard.dp = par.dp;
      shard.tp = par.tp;
      shard.sp = par.sp;
      shard.spMode = par.spMode;
      shard.zero = par.zero;
      shard.sequence = par.sequence;
      pm.addPass(mlir::colossal::createShardForParallelPass(shard));
      mlir::colossal::PropagateShardingPassOptions propagate;
      propagate.resolvePartial =
          par.zero >= 2 ? "reduce-scatter" : "all-reduce";
      pm.addPass(mlir::colossal::createPropagateShardingPass(propagate));
      pm.addPass(mlir::colossal::createPartitionPass());
      if (par.pp == 1)
        pm.addPass(
            mlir::colossal::createBucketCollectivesPass(bucketOptions(par)));
    }
    // On each rank's program, before it is split into stages.
    if (par.offloadActivations) {
      mlir::colossal::OffloadPassOptions offload;
      offload.what = "activations";
      pm.addPass(mlir::colossal::createOffloadPass(offload));
    }
    if (par.pp > 1) {
      mlir::colossal::PipelinePassOptions pipeline;
      pipeline.stages = par.pp;
      pipeline.virtualStages = par.virtualStages;
      pipeline.microBatches = microBatchesOption;
      pipeline.schedule =
          par.virtualStages > 1 ? std::string("interleaved") : par.schedule;
      pm.addPass(mlir::colossal::createPipelinePass(pipeline));
      // Each stage's gradients are reduced once per step, in buckets.
      if (par.dp > 1 || par.tp > 1 || par.sp > 1)
        pm.addPass(
            mlir::colossal::createBucketCollectivesPass(bucketOptions(par)));
    }
    if (par.offloadOptimizer) {
      mlir::colossal::OffloadPassOptions offload;
      offload.what = par.offloadParams ? "params" : "optimizer";
      pm.addPass(mlir::colossal::createOffloadPass(offload));
    }
    // GEMMs read transposed operands in place, and a weight gradient
    // summed over the batch is one GEMM over its rows.
    pm.addPass(mlir::colossal::createFoldIntoGemmPass());
    // Elementwise chains (the optimizer's updates, activations) as one
    // kernel each, as the cost model charges them.
    pm.addPass(mlir::colossal::createFuseElementwisePass());
    // Each instruction of a plan carries its predicted time, for
    // colossal-run --profile's measured-vs-predicted summary.
    if (!estimateMemory && emitOption == "plan") {
      mlir::colossal::PredictTimesPassOptions times;
      if (!clusterOption.empty())
        times.cluster = clusterOption;
      pm.addPass(mlir::colossal::createPredictTimesPass(times));
    }
    if (estimateMemory)
      pm.addPass(mlir::colossal::createEstimateMemoryPass());
    else
      pm.addPass(mlir::colossal::createPlanMemoryPass());
  }
  return pm.run(module);
}

static int printModule(ModuleOp module, StringRef outputFilename) {
  std::string message;
  auto output = openOutputFile(outputFilename, &message);
  if (!output) {
    llvm::errs() << "colossal-opt: " << message << "\n";
    return 1;
  }
  module.print(output->os());
  output->os() << "\n";
  output->keep();
  return 0;
}

static int reportError(llvm::Error error) {
  llvm::errs() << "colossal-opt: error: " << llvm::toString(std::move(error))
               << "\n";
  return 1;
}

/// Runs colossal-estimate or colossal-auto-parallel on `module`; their
/// errors (a bad cluster, a job that fits nowhere, with the explanation)
/// are printed as colossal-opt's own.
static LogicalResult runPlannerPass(ModuleOp module,
                                    std::unique_ptr<Pass> pass) {
  PassManager pm(module.getContext());
  if (failed(applyPassManagerCLOptions(pm)))
    return failure();
  pm.addPass(std::move(pass));
  ScopedDiagnosticHandler errors(module.getContext(), [](Diagnostic &d) {
    if (d.getSeverity() != DiagnosticSeverity::Error)
      return failure(); // to the usual handler
    llvm::errs() << "colossal-opt: error: " << d.str() << "\n";
    return success();
  });
  return pm.run(module);
}

/// The pipelines colossal-opt drives itself rather than mlir-opt's driver.
enum class Driven { Estimate, AutoParallel, Compile };

static int runDriven(Driven what, StringRef path,
                     std::unique_ptr<llvm::MemoryBuffer> input, bool onnx,
                     DialectRegistry &registry, StringRef outputFilename);

/// After --auto-parallel chose a layout (the module's cg.plan): compile the
/// training step for it, one run per micro-batch of every data-parallel
/// replica (dp x micro-batch sequences), accumulating the global batch.
static int compileSearchedPlan(ModuleOp searched, StringRef path,
                               DialectRegistry &registry,
                               StringRef outputFilename) {
  auto chosen = searched->getAttrOfType<StringAttr>("cg.plan");
  if (!chosen) {
    llvm::errs() << "colossal-opt: the search recorded no plan\n";
    return 1;
  }
  auto cfg = ::colossal::cost::parseParallelConfig(chosen.getValue());
  if (!cfg)
    return reportError(cfg.takeError());
  int64_t perRun = cfg->dp * cfg->micro_batch;
  if (batchOption <= 0 || perRun <= 0 || batchOption % perRun != 0) {
    llvm::errs() << "colossal-opt: the search chose " << chosen.getValue()
                 << ", whose dp x micro-batch (" << perRun
                 << ") does not divide --batch=" << batchOption << "\n";
    return 1;
  }
  int64_t accumulate = batchOption / perRun;
  if (microBatchesOption.getNumOccurrences() &&
      microBatchesOption != accumulate) {
    llvm::errs() << "colossal-opt: the searched plan accumulates " << accumulate
                 << " micro-batches per step, but "
                 << "--micro-batches=" << microBatchesOption
                 << " was given; drop --micro-batches\n";
    return 1;
  }
  if (cfg->pp > 1)
    llvm::errs() << "colossal-opt: auto-parallel chose " << chosen.getValue()
                 << "; compiling it: a pipeline of " << cfg->pp
                 << " stages running " << accumulate << " micro-batch(es) of "
                 << perRun << " sequences (" << cfg->dp
                 << " replica(s) x micro-batch " << cfg->micro_batch
                 << ") per run, one run per optimizer "
                 << "step\n";
  else
    llvm::errs() << "colossal-opt: auto-parallel chose " << chosen.getValue()
                 << "; compiling it: " << perRun << " sequences per run ("
                 << cfg->dp << " ranks x micro-batch " << cfg->micro_batch
                 << "), " << accumulate << " run(s) per optimizer step\n";
  microBatchesOption = accumulate;
  std::string parallel = "dp=" + std::to_string(cfg->dp);
  if (cfg->tp > 1)
    parallel +=
        ",tp=" + std::to_string(cfg->tp) + (cfg->tp_sp ? ",tp-sp=1" : "");
  if (cfg->tp > 1 && cfg->tp_mode != ::colossal::cost::TpMode::OneD) {
    parallel += ",tp-mode=" + ::colossal::cost::tpModeName(cfg->tp_mode).str();
    if (cfg->tp_mode == ::colossal::cost::TpMode::TwoPointFiveD)
      parallel += ":" + std::to_string(cfg->tp_depth);
  }
  if (cfg->sp > 1)
    parallel += ",sp=" + std::to_string(cfg->sp) + ",sp-mode=" +
                (cfg->sp_mode == ::colossal::cost::SpMode::Ulysses ? "ulysses"
                                                                   : "ring");
  // (ZeRO over one replica shards nothing: the search may keep the mark.)
  if (cfg->zero && cfg->dp > 1)
    parallel += ",zero=" + std::to_string(cfg->zero);
  if (cfg->pp > 1) {
    // The pipeline runs `accumulate` micro-batches per step.
    parallel += ",pp=" + std::to_string(cfg->pp) + ",schedule=" +
                ::colossal::cost::scheduleName(cfg->schedule).str();
    if (cfg->schedule == ::colossal::cost::Schedule::Interleaved)
      parallel += ":" + std::to_string(cfg->virtual_stages);
    // Layers per stage (the search balances them); with virtual stages
    // the chunks split evenly.
    if (!cfg->stage_layers.empty() && cfg->virtual_stages == 1) {
      parallel += ",stage-layers=";
      for (size_t i = 0; i < cfg->stage_layers.size(); ++i)
        parallel += (i ? ":" : "") + std::to_string(cfg->stage_layers[i]);
    }
  }
  if (cfg->offload == ::colossal::cost::Offload::Optimizer)
    parallel += ",offload=optimizer";
  if (cfg->offload == ::colossal::cost::Offload::Params)
    parallel += ",offload=params";
  if (cfg->offload == ::colossal::cost::Offload::Activations)
    parallel += ",offload=activations";
  if (cfg->recompute != ::colossal::cost::Recompute::None) {
    parallel +=
        ",recompute=" + ::colossal::cost::recomputeName(cfg->recompute).str();
    if (cfg->recompute == ::colossal::cost::Recompute::Full &&
        cfg->recompute_layers > 0)
      parallel += ":" + std::to_string(cfg->recompute_layers);
  }
  parallelOption = parallel;
  std::string bind;
  for (StringRef item : llvm::split(StringRef(bindOption), ','))
    if (!item.trim().empty() && !item.trim().starts_with("batch="))
      bind += (bind.empty() ? "" : ",") + item.trim().str();
  bindOption =
      bind + (bind.empty() ? "" : ",") + "batch=" + std::to_string(perRun);
  std::string message;
  auto input = openInputFile(path, &message);
  if (!input) {
    llvm::errs() << "colossal-opt: " << message << "\n";
    return 1;
  }
  bool onnx = mlir::colossal::onnx::looksLikeOnnx(path, input->getBuffer());
  return runDriven(Driven::Compile, path, std::move(input), onnx, registry,
                   outputFilename);
}

/// --estimate with --loss: compiles the training step these flags describe
/// for each rank (as --emit=plan would) and adds up its buffers op by op.
/// The job's global batch and micro-batch follow from the program: --batch,
/// if given, must agree.
static FailureOr<DictionaryAttr>
estimateProgram(MLIRContext &context, StringRef path,
                const ExecutableParallel &par,
                mlir::colossal::EstimateRequest &job) {
  std::string message;
  auto input = openInputFile(path, &message);
  if (!input) {
    llvm::errs() << "colossal-opt: " << message << "\n";
    return failure();
  }
  bool onnx = mlir::colossal::onnx::looksLikeOnnx(path, input->getBuffer());
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler handler(sourceMgr, &context, llvm::errs());
  OwningOpRef<ModuleOp> module = loadModule(
      context, sourceMgr, path, std::move(input), onnx, /*defaultBatch=*/false);
  if (!module)
    return failure();
  // The sequences one run takes (dp x micro-batch), before partitioning.
  int64_t perRun = 0;
  for (auto func : module->getOps<func::FuncOp>())
    for (BlockArgument arg : func.getArguments())
      if (auto type = dyn_cast<ShapedType>(arg.getType());
          type && type.getRank() > 0 && !perRun)
        perRun = type.getDimSize(0);
  if (perRun <= 0 || perRun % par.dp != 0) {
    llvm::errs() << "colossal-opt: --estimate of a training step needs the "
                    "model's batch bound to a multiple of dp="
                 << par.dp << " (--bind=batch=N)\n";
    return failure();
  }
  int64_t global = perRun * microBatchesOption;
  if (job.batch > 0 && job.batch != global) {
    llvm::errs() << "colossal-opt: --batch=" << job.batch
                 << " is not the batch of the training step these flags "
                    "compile: "
                 << perRun << " sequences per run x " << microBatchesOption
                 << " micro-batch(es) = " << global
                 << "; drop --batch or make them agree\n";
    return failure();
  }
  job.batch = global;
  int64_t micro = perRun / par.dp;
  if (par.microBatch > 0 && par.microBatch != micro) {
    llvm::errs() << "colossal-opt: --parallel=" << parallelOption
                 << " says micro-batch=" << par.microBatch
                 << ", but each of the " << par.dp << " replicas runs " << micro
                 << " sequences at a time\n";
    return failure();
  }
  std::string parallel =
      parallelOption.empty() ? std::string("dp=1") : parallelOption.getValue();
  if (par.microBatch == 0)
    parallel += ",micro-batch=" + std::to_string(micro);
  job.parallel = parallel;
  if (failed(runPipelinePasses(*module, &par, /*trainStep=*/true,
                               /*estimateMemory=*/true)))
    return failure();
  auto estimate =
      (*module)->getAttrOfType<DictionaryAttr>("cg.memory_estimate");
  if (!estimate) {
    llvm::errs() << "colossal-opt: the memory estimate recorded nothing\n";
    return failure();
  }
  return estimate;
}

/// --estimate (JSON of the cost model's estimate), --auto-parallel (the
/// annotated IR), --mode=infer (the compiled IR or a plan file).
static int runDriven(Driven what, StringRef path,
                     std::unique_ptr<llvm::MemoryBuffer> input, bool onnx,
                     DialectRegistry &registry, StringRef outputFilename) {
  // --auto-parallel --emit=plan: search, then compile what was chosen.
  bool searchThenCompile = what == Driven::AutoParallel && emitOption == "plan";
  if (searchThenCompile) {
    if (modeOption != "train" || lossOption.empty() ||
        optimizerOption.empty()) {
      llvm::errs() << "colossal-opt: --auto-parallel --emit=plan compiles the "
                      "searched training step: add --mode=train --loss=... "
                      "--optimizer=... (or drop --emit=plan to see the "
                      "annotated IR)\n";
      return 1;
    }
    if (!parallelOption.empty()) {
      llvm::errs() << "colossal-opt: --parallel and --auto-parallel both say "
                      "how to split the model; give one of them\n";
      return 1;
    }
    if (outputFilename == "-" || outputFilename.empty()) {
      llvm::errs() << "colossal-opt: --emit=plan writes a binary file; name it "
                      "with -o FILE.cplan\n";
      return 1;
    }
  }
  // --estimate with the flags of a training step: the estimate of the plan
  // those flags compile, whose memory comes from each rank's program.
  bool programEstimate = what == Driven::Estimate && !lossOption.empty();
  bool compiling = what == Driven::Compile || programEstimate;
  bool trainStep = compiling && modeOption == "train";
  ExecutableParallel par; // the devices a compiled plan runs on
  if (!lossOption.empty() && !trainStep && !searchThenCompile) {
    llvm::errs() << "colossal-opt: --loss compiles a training step; use it "
                    "with --mode=train (and without --auto-parallel)\n";
    return 1;
  }
  if (compiling) {
    if (modeOption != "infer" && modeOption != "train") {
      llvm::errs() << "colossal-opt: --mode=" << modeOption
                   << " is not a mode; use --mode=infer or --mode=train\n";
      return 1;
    }
    bool optimizerFlags =
        lrOption.getNumOccurrences() || weightDecayOption.getNumOccurrences() ||
        betasOption.getNumOccurrences() || epsOption.getNumOccurrences() ||
        momentumOption.getNumOccurrences() ||
        clipGradNormOption.getNumOccurrences() ||
        lrScheduleOption.getNumOccurrences() ||
        (microBatchesOption.getNumOccurrences() &&
         !(modeOption == "infer" &&
           StringRef(parallelOption).contains("pp="))) ||
        tokensInputOption.getNumOccurrences() ||
        trustCoefficientOption.getNumOccurrences();
    if (precisionOption != "fp32" && precisionOption != "bf16" &&
        precisionOption != "fp16") {
      llvm::errs() << "colossal-opt: --precision=" << precisionOption
                   << " is not known; use fp32, bf16 or fp16\n";
      return 1;
    }
    if (!attentionBackwardOption.empty() &&
        attentionBackwardOption != "decomposed" &&
        attentionBackwardOption != "fused") {
      llvm::errs() << "colossal-opt: --attention-backward="
                   << attentionBackwardOption
                   << " is not known; use decomposed or fused\n";
      return 1;
    }
    if (!attentionBackwardOption.empty() && modeOption != "train") {
      llvm::errs() << "colossal-opt: --attention-backward chooses how a "
                      "training step differentiates attention; use it with "
                      "--mode=train\n";
      return 1;
    }
    if (batchNormOption != "batch" && batchNormOption != "running") {
      llvm::errs() << "colossal-opt: --batch-norm=" << batchNormOption
                   << " is not known; use batch or running\n";
      return 1;
    }
    if ((batchNormOption.getNumOccurrences() ||
         batchNormMomentumOption.getNumOccurrences()) &&
        !trainStep) {
      llvm::errs() << "colossal-opt: --batch-norm and --batch-norm-momentum "
                      "choose how a training step normalizes; use them with "
                      "--mode=train --loss=...\n";
      return 1;
    }
    if (lossScaleOption.getNumOccurrences() && !trainStep) {
      llvm::errs() << "colossal-opt: --loss-scale scales the loss gradient of "
                      "a training step; use it with --mode=train --loss=...\n";
      return 1;
    }
    if (optimizerFlags && optimizerOption.empty()) {
      llvm::errs() << "colossal-opt: --lr, --weight-decay, --betas, --eps, "
                      "--momentum, --clip-grad-norm, --lr-schedule and "
                      "--micro-batches configure the optimizer step; add "
                      "--optimizer=sgd|adamw|lamb|lars\n";
      return 1;
    }
    if (!optimizerOption.empty() && !trainStep) {
      llvm::errs() << "colossal-opt: --optimizer compiles a training step; "
                      "use it with --mode=train --loss=...\n";
      return 1;
    }
    if (!optimizerOption.empty()) {
      mlir::colossal::OptimizerPassOptions opt;
      std::string error;
      if (!optimizerFromFlags(opt, error)) {
        llvm::errs() << "colossal-opt: " << error << "\n";
        return 1;
      }
    }
    if (trainStep && lossOption.empty()) {
      llvm::errs() << "colossal-opt: --mode=train needs a loss: "
                      "--loss=cross-entropy (integer labels) or --loss=mse; "
                      "or use --estimate / --auto-parallel to plan a "
                      "training job\n";
      return 1;
    }
    std::string parError;
    if (!executableParallelFromFlags(par, parError)) {
      llvm::errs() << "colossal-opt: " << parError << "\n";
      return 1;
    }
    if (emitOption != "mlir" && emitOption != "plan") {
      llvm::errs() << "colossal-opt: --emit=" << emitOption
                   << " is not known; use --emit=mlir or --emit=plan\n";
      return 1;
    }
    if (emitOption == "plan" &&
        (outputFilename == "-" || outputFilename.empty())) {
      llvm::errs() << "colossal-opt: --emit=plan writes a binary file; name it "
                      "with -o FILE.cplan\n";
      return 1;
    }
  }
  MLIRContext context(registry);
  // Errors say what is wrong where; dumping the whole op would bury that.
  context.printOpOnDiagnostic(false);
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler handler(sourceMgr, &context, llvm::errs());
  // Costs are per sample, so the planners import an unbound batch as 1.
  OwningOpRef<ModuleOp> module =
      loadModule(context, sourceMgr, path, std::move(input), onnx,
                 what != Driven::Compile);
  if (!module || failed(runPipelinePasses(
                     *module, what == Driven::Compile ? &par : nullptr,
                     what == Driven::Compile && trainStep)))
    return 1;

  switch (what) {
  case Driven::Estimate: {
    mlir::colossal::EstimateRequest job = jobFromFlags();
    DictionaryAttr program;
    if (programEstimate) {
      FailureOr<DictionaryAttr> estimated =
          estimateProgram(context, path, par, job);
      if (failed(estimated))
        return 1;
      program = *estimated;
    }
    if (job.mode != "train") {
      llvm::errs() << "colossal-opt: error: --estimate models training "
                      "steps; use --mode=train (inference estimates come with "
                      "the runtime issue)\n";
      return 1;
    }
    if (program)
      (*module)->setAttr("cg.program_memory", program);
    mlir::colossal::EstimatePassOptions options;
    options.cluster = job.cluster;
    options.batch = job.batch;
    options.parallel = job.parallel;
    options.dtype = job.dtype;
    options.flashAttention = job.flashAttention;
    options.dropout = job.dropout;
    options.workload = job.includeWorkload;
    options.report = outputFilename.str();
    return failed(runPlannerPass(*module,
                                 mlir::colossal::createEstimatePass(options)))
               ? 1
               : 0;
  }
  case Driven::AutoParallel: {
    mlir::colossal::AutoParallelRequest request;
    request.job = jobFromFlags();
    request.memoryBudget = memoryBudgetOption;
    request.constraints = constrainOption;
    // A plan to execute is searched among the layouts the runtime runs.
    request.executable = searchThenCompile;
    // Ring attention runs in fp32 only.
    if (searchThenCompile && precisionOption != "fp32" &&
        !StringRef(constrainOption).contains("sp-mode"))
      request.constraints +=
          std::string(request.constraints.empty() ? "" : ",") +
          "sp-mode=ulysses";
    if (request.job.mode != "train") {
      llvm::errs() << "colossal-opt: error: --auto-parallel plans training "
                      "steps; use --mode=train\n";
      return 1;
    }
    mlir::colossal::AutoParallelPassOptions options;
    options.cluster = request.job.cluster;
    options.batch = request.job.batch;
    options.dtype = request.job.dtype;
    options.flashAttention = request.job.flashAttention;
    options.dropout = request.job.dropout;
    options.memoryBudget = memoryBudgetOption;
    options.constrain = request.constraints;
    options.report = reportOption;
    options.reportText = reportTextOption;
    options.executable = request.executable;
    if (failed(runPlannerPass(*module,
                              mlir::colossal::createAutoParallelPass(options))))
      return 1;
    if (!searchThenCompile)
      return printModule(*module, outputFilename);
    return compileSearchedPlan(*module, path, registry, outputFilename);
  }
  case Driven::Compile:
    if (emitOption == "plan") {
      std::string producer = std::string("colossal-opt ") + COLOSSAL_VERSION;
      return failed(mlir::colossal::emitPlanFile(*module, outputFilename,
                                                 producer))
                 ? 1
                 : 0;
    }
    return printModule(*module, outputFilename);
  }
  return 1;
}

/// Imports the ONNX model at `path` and returns it as MLIR bytecode, so that
/// the standard mlir-opt driver can take over from there.
static FailureOr<std::unique_ptr<llvm::MemoryBuffer>>
importToBuffer(StringRef path, StringRef bytes, DialectRegistry &registry) {
  mlir::colossal::onnx::ImportOptions options;
  options.constInputs.assign(constInputOption.begin(), constInputOption.end());
  std::string error =
      mlir::colossal::onnx::parseBindings(bindOption, options.bindings);
  if (!error.empty()) {
    llvm::errs() << "colossal-opt: " << error << "\n";
    return failure();
  }
  MLIRContext context(registry);
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler handler(sourceMgr, &context, llvm::errs());
  OwningOpRef<ModuleOp> module =
      mlir::colossal::onnx::importOnnxModel(context, bytes, path, options);
  if (!module)
    return failure();
  std::string data;
  llvm::raw_string_ostream os(data);
  if (failed(writeBytecodeToFile(*module, os)))
    return failure();
  os.flush();
  return llvm::MemoryBuffer::getMemBufferCopy(data, path);
}

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  registerTransformsPasses();
  mlir::colossal::registerColossalPasses();

  DialectRegistry registry;
  registry
      .insert<mlir::colossal::cg::CGDialect, mlir::colossal::cgd::CGDDialect,
              func::FuncDialect, arith::ArithDialect, tensor::TensorDialect,
              mesh::MeshDialect>();

  llvm::cl::SetVersionPrinter([](llvm::raw_ostream &os) {
    os << "colossal-opt " << COLOSSAL_VERSION << " (MLIR "
       << LLVM_VERSION_STRING << ")\n";
  });
  auto [inputFilename, outputFilename] = registerAndParseCLIOptions(
      argc, argv,
      "Colossal compiler driver: reads .mlir or .onnx, runs passes\n",
      registry);

  std::string message;
  auto input = openInputFile(inputFilename, &message);
  if (!input) {
    llvm::errs() << "colossal-opt: " << message << "\n";
    return 1;
  }
  StringRef bytes = input->getBuffer();
  bool onnx = mlir::colossal::onnx::looksLikeOnnx(inputFilename, bytes);
  if (estimateOption || autoParallelOption || !modeOption.empty()) {
    Driven what = estimateOption       ? Driven::Estimate
                  : autoParallelOption ? Driven::AutoParallel
                                       : Driven::Compile;
    return runDriven(what, inputFilename, std::move(input), onnx, registry,
                     outputFilename);
  }
  // Without a job, the plain pass driver runs: it writes MLIR only, so a
  // plan asked for here would be MLIR text under a plan's name.
  if (emitOption.getNumOccurrences() && emitOption != "mlir") {
    llvm::errs() << "colossal-opt: --emit=" << emitOption
                 << " needs a job: add --mode=infer (an inference plan) or "
                    "--mode=train --loss=... (a training step); without one, "
                    "colossal-opt runs the passes named on the command line "
                    "and writes MLIR\n";
    return 1;
  }
  if (onnx) {
    auto imported = importToBuffer(inputFilename, bytes, registry);
    if (failed(imported))
      return 1;
    input = std::move(*imported);
  } else if (!bindOption.empty()) {
    llvm::errs() << "colossal-opt: --bind applies to ONNX input only\n";
    return 1;
  }

  auto output = openOutputFile(outputFilename, &message);
  if (!output) {
    llvm::errs() << "colossal-opt: " << message << "\n";
    return 1;
  }
  MlirOptMainConfig config = MlirOptMainConfig::createFromCLOptions();
  if (failed(MlirOptMain(output->os(), std::move(input), registry, config)))
    return 1;
  output->keep();
  return 0;
}
