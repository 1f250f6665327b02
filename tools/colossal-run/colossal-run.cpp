//===- colossal-run.cpp - Run a compiled plan from the command line -------===//
//
// A thin CLI over the runtime's C++ API: load a .cplan, read inputs from .npy
// or ONNX TensorProto .pb files, run (or benchmark), and write each output
// as DIR/NAME.npy. Every user error is reported as "colossal-run: error: ..."
// with exit status 1; nothing a user passes makes it crash.
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/Launch.h"
#include "runtime/core/Backend.h"
#include "runtime/core/Communicator.h"
#include "runtime/core/Float16.h"
#include "runtime/core/HostTensor.h"
#include "runtime/core/Npy.h"
#include "runtime/core/OnnxTensor.h"
#include "runtime/core/PlanTypes.h"
#include "runtime/include/colossal/Runtime.h"
#include "runtime/proto/plan.pb.h"
#include "tools/colossal-run/Launcher.h"
#include "tools/colossal-run/Train.h"

#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <new>
#include <set>
#include <string>
#include <system_error>
#include <vector>

using namespace colossal;

namespace {

const char *kUsage =
    "usage: colossal-run PLAN.cplan [--input NAME=FILE]... [--output-dir DIR]\n"
    "                    [--backend cuda|cpu] [--device N] [--threads T]\n"
    "                    [--bench N] [--warmup W]\n"
    "\n"
    "Runs a plan compiled by colossal-opt on a GPU or on the CPU.\n"
    "  --input NAME=FILE  input NAME from FILE: a .npy file (float32, "
    "float16,\n"
    "                     int64, int32, bool; C order) or an ONNX TensorProto\n"
    "                     .pb file. Without NAME=, a .pb file's own tensor "
    "name\n"
    "                     or the file's stem (x.npy -> x) is used. A bfloat16\n"
    "                     input may be given as float32 (it is rounded).\n"
    "  --output-dir DIR   write each output to DIR/NAME.npy (DIR is created;\n"
    "                     characters other than A-Z a-z 0-9 . _ - become _;\n"
    "                     bfloat16 outputs are written as float32)\n"
    "  --backend B        cuda or cpu (default: cuda when this build has the "
    "CUDA\n"
    "                     backend and the machine a GPU, else cpu)\n"
    "  --device N         the CUDA device (default: LOCAL_RANK when a "
    "launcher\n"
    "                     set it, else 0)\n"
    "  --threads T        kernel threads (default: all cores)\n"
    "  --bench N          time N runs after the warm-up; print p50/p90 "
    "latency\n"
    "                     and throughput\n"
    "  --warmup W         warm-up runs before timing (default 3)\n"
    "\n"
    "Several ranks (a plan compiled with --parallel=dp=N,zero=K):\n"
    "  --ranks N          run N ranks on this machine (child processes; "
    "--threads\n"
    "                     is per rank). Without it, the world comes from "
    "torchrun's\n"
    "                     or Slurm's environment (RANK, WORLD_SIZE, "
    "MASTER_ADDR,\n"
    "                     MASTER_PORT; SLURM_PROCID, SLURM_NTASKS) or from "
    "mpirun.\n"
    "                     Only rank 0 prints progress and writes metrics,\n"
    "                     checkpoints and outputs.\n"
    "  --comm-timeout S   seconds any collective or the rendezvous may wait "
    "for\n"
    "                     the other ranks before the run fails (default 60)\n"
    "\n"
    "Training (a plan from colossal-opt --mode=train --loss=... "
    "--optimizer=...):\n"
    "  --train            run the training loop instead of one run\n"
    "  --steps N          train until optimizer step N\n"
    "  --data PATH        a flat token file (--data-dtype uint16|uint32, "
    "default\n"
    "                     uint16; windows of the plan's sequence length, "
    "labels =\n"
    "                     next tokens) or a directory of batches "
    "DIR/<batch>/<input>.npy\n"
    "  --data-order O     token files: random (default) or sequential "
    "windows\n"
    "  --seed S           data sampling seed (default 1337)\n"
    "  --log-every K      progress line every K steps (default 10)\n"
    "  --metrics FILE     append one JSON object per logged step (JSONL)\n"
    "  --checkpoint-dir D save safetensors checkpoints (weights, optimizer "
    "state,\n"
    "                     step, data position) in D, atomically\n"
    "  --checkpoint-every M  every M steps (default: at the end only)\n"
    "  --keep-checkpoints K  keep the newest K (default 3; 0 keeps all)\n"
    "  --resume           continue from the newest checkpoint in D\n"
    "  --profile FILE     write a Chrome trace of every run (per rank: "
    "FILE.rankR.json)\n"
    "                     and print where a run's time went (compute, "
    "collectives,\n"
    "                     sends, receives; a pipeline's measured idle share)\n"
    "  --export-onnx FILE write the trained weights into a copy of the "
    "plan's ONNX\n"
    "                     model (after training; without --train: from the "
    "newest\n"
    "                     checkpoint in --checkpoint-dir)\n";

struct Options {
  std::string plan;
  std::vector<std::string> inputs; // NAME=FILE or FILE
  std::string outputDir;
  int threads = 0;
  std::string backend; // empty: rt::defaultBackendName()
  int device = -1;     // -1: LOCAL_RANK, else 0
  int bench = 0;
  int warmup = 3;
  bool help = false;
  int ranks = 0;                      // --ranks: launch this many local ranks
  int commTimeout = 60;               // seconds
  std::vector<std::string> forwarded; // arguments for launched ranks
  bool train = false;
  bool trainFlags = false; // a training flag was given
  tools::TrainOptions training;
};

Status fail(const std::string &message) { return Status::error(message); }

/// The backend and device of this rank's session: --backend, else cuda when
/// there is a GPU; --device, else the launcher's LOCAL_RANK on cuda.
void chooseDevice(const Options &opts, const rt::WorldInfo &world,
                  SessionOptions &options) {
  options.backend =
      opts.backend.empty() ? rt::defaultBackendName() : opts.backend;
  if (opts.device >= 0)
    options.device = opts.device;
  else
    options.device = options.backend == "cuda" ? world.localRank : 0;
  if (options.backend == "cuda")
    std::printf("backend: cuda, device %d\n", options.device);
}

Status parseInt(const std::string &flag, const std::string &text, int min,
                int &out) {
  char *end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || v < min ||
      v > 1000000000)
    return fail(flag + " takes an integer >= " + std::to_string(min) +
                ", not '" + text + "'");
  out = static_cast<int>(v);
  return Status::ok();
}

Status parseArgs(int argc, char **argv, Options &opts) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string flag = arg, value;
    bool hasValue = false;
    if (arg.rfind("--", 0) == 0) {
      size_t eq = arg.find('=');
      if (eq != std::string::npos) {
        flag = arg.substr(0, eq);
        value = arg.substr(eq + 1);
        hasValue = true;
      }
    }
    auto takeValue = [&]() -> Status {
      if (hasValue)
        return Status::ok();
      if (i + 1 >= argc)
        return fail(flag + " needs a value (see --help)");
      value = argv[++i];
      return Status::ok();
    };
    if (flag == "--help" || flag == "-h") {
      opts.help = true;
    } else if (flag == "--input" || flag == "-i") {
      if (Status s = takeValue(); !s)
        return s;
      opts.inputs.push_back(value);
    } else if (flag == "--output-dir" || flag == "-o") {
      if (Status s = takeValue(); !s)
        return s;
      if (value.empty())
        return fail("--output-dir needs a directory");
      opts.outputDir = value;
    } else if (flag == "--backend") {
      if (Status s = takeValue(); !s)
        return s;
      if (value != "cuda" && value != "cpu")
        return fail("--backend " + value + ": expected cuda or cpu");
      opts.backend = value;
    } else if (flag == "--device") {
      if (Status s = takeValue(); !s)
        return s;
      if (Status s = parseInt(flag, value, 0, opts.device); !s)
        return s;
    } else if (flag == "--threads") {
      if (Status s = takeValue(); !s)
        return s;
      if (Status s = parseInt(flag, value, 1, opts.threads); !s)
        return s;
    } else if (flag == "--ranks") {
      if (Status s = takeValue(); !s)
        return s;
      if (Status s = parseInt(flag, value, 1, opts.ranks); !s)
        return s;
      if (opts.ranks > 1024)
        return fail("--ranks " + value +
                    " is more than this launcher "
                    "starts on one machine (1024); use torchrun, Slurm or "
                    "mpirun across machines");
      continue; // not forwarded to the ranks
    } else if (flag == "--comm-timeout") {
      if (Status s = takeValue(); !s)
        return s;
      if (Status s = parseInt(flag, value, 1, opts.commTimeout); !s)
        return s;
    } else if (flag == "--bench") {
      if (Status s = takeValue(); !s)
        return s;
      if (Status s = parseInt(flag, value, 1, opts.bench); !s)
        return s;
    } else if (flag == "--warmup") {
      if (Status s = takeValue(); !s)
        return s;
      if (Status s = parseInt(flag, value, 0, opts.warmup); !s)
        return s;
    } else if (flag == "--train") {
      opts.train = true;
    } else if (flag == "--resume") {
      opts.training.resume = true;
      opts.trainFlags = true;
    } else if (flag == "--steps" || flag == "--log-every" ||
               flag == "--checkpoint-every" || flag == "--keep-checkpoints" ||
               flag == "--seed") {
      if (Status s = takeValue(); !s)
        return s;
      // Counts and the seed are 64-bit.
      char *end = nullptr;
      errno = 0;
      long long v = std::strtoll(value.c_str(), &end, 10);
      long long least = flag == "--steps" ? 1 : 0;
      if (value.empty() || *end != '\0')
        return fail(flag + " takes a whole number, not '" + value + "'");
      if (errno == ERANGE || v < least)
        return fail(flag + " takes a whole number from " +
                    std::to_string(least) + " to 9223372036854775807, not '" +
                    value + "'");
      if (flag == "--keep-checkpoints" && v > 1000000)
        return fail("--keep-checkpoints takes at most 1000000");
      if (flag == "--steps")
        opts.training.steps = v;
      else if (flag == "--log-every")
        opts.training.logEvery = std::max<long long>(v, 1);
      else if (flag == "--checkpoint-every")
        opts.training.checkpointEvery = v;
      else if (flag == "--keep-checkpoints")
        opts.training.keepCheckpoints = static_cast<int>(v);
      else {
        opts.training.seed = static_cast<uint64_t>(v);
        opts.training.seedGiven = true;
      }
      opts.trainFlags = true;
    } else if (flag == "--data" || flag == "--data-dtype" ||
               flag == "--data-order" || flag == "--metrics" ||
               flag == "--checkpoint-dir" || flag == "--export-onnx" ||
               flag == "--profile") {
      if (Status s = takeValue(); !s)
        return s;
      if (value.empty())
        return fail(flag + " needs a value");
      if (flag == "--data")
        opts.training.data = value;
      else if (flag == "--data-dtype")
        opts.training.dataDtype = value;
      else if (flag == "--data-order")
        opts.training.dataOrder = value;
      else if (flag == "--metrics")
        opts.training.metrics = value;
      else if (flag == "--checkpoint-dir")
        opts.training.checkpointDir = value;
      else if (flag == "--profile")
        opts.training.profile = value;
      else
        opts.training.exportOnnx = value;
      if (flag != "--export-onnx" && flag != "--checkpoint-dir" &&
          flag != "--profile")
        opts.trainFlags = true;
    } else if (!arg.empty() && arg[0] == '-') {
      return fail("unknown flag '" + arg + "' (see --help)");
    } else if (opts.plan.empty()) {
      opts.plan = arg;
    } else {
      return fail("unexpected argument '" + arg +
                  "': give one plan; inputs go after --input");
    }
  }
  if (!opts.help && opts.plan.empty())
    return fail("no plan given\n" + std::string(kUsage));
  if (opts.trainFlags && !opts.train)
    return fail("--steps, --data, --metrics, --resume and the other training "
                "flags belong to the training loop: add --train");
  if (opts.training.checkpointEvery > 0 && opts.training.checkpointDir.empty())
    return fail("--checkpoint-every says how often to save; add "
                "--checkpoint-dir D (where to save)");
  if (!opts.train && opts.training.exportOnnx.empty() &&
      !opts.training.checkpointDir.empty())
    return fail("--checkpoint-dir belongs to --train (where checkpoints go) "
                "or --export-onnx (which checkpoint to export)");
  if (opts.train && opts.training.steps <= 0)
    return fail("--train needs --steps N (the optimizer step to train to)");
  if (opts.train && (!opts.inputs.empty() || opts.bench > 0))
    return fail("--train takes its batches from --data; --input and --bench "
                "run the plan once");
  if (opts.training.dataDtype != "uint16" &&
      opts.training.dataDtype != "uint32")
    return fail("--data-dtype=" + opts.training.dataDtype +
                " is not known; use uint16 or uint32");
  if (opts.training.dataOrder != "random" &&
      opts.training.dataOrder != "sequential")
    return fail("--data-order=" + opts.training.dataOrder +
                " is not known; use random or sequential");
  return Status::ok();
}

std::string describe(const TensorInfo &info) {
  return std::string(rt::dtypeName(info.dtype)) + rt::formatShape(info.shape);
}

std::string planInputs(const Plan &plan) {
  std::string s;
  for (const TensorInfo &info : plan.inputs())
    s += (s.empty() ? "" : ", ") + info.name + " (" + describe(info) + ")";
  return s.empty() ? "none" : s;
}

// Reads one --input spec into `out` (named), by the file's content. ONNX
// data of other integer widths are converted to the plan's integer type.
Status readInput(const std::string &spec, const Plan &plan,
                 rt::HostTensor &out) {
  std::string name, file = spec;
  size_t eq = spec.find('=');
  if (eq != std::string::npos) {
    name = spec.substr(0, eq);
    file = spec.substr(eq + 1);
    if (name.empty() || file.empty())
      return fail("--input '" + spec + "' should be NAME=FILE");
  }
  // Sniff the format: .npy starts with its magic; anything else is tried
  // as a TensorProto.
  std::FILE *f = std::fopen(file.c_str(), "rb");
  if (!f)
    return fail("cannot open input file '" + file +
                "': " + std::strerror(errno));
  char magic[6] = {0};
  size_t got = std::fread(magic, 1, 6, f);
  std::fclose(f);
  bool npy = got == 6 && std::memcmp(magic, "\x93NUMPY", 6) == 0;
  auto wanted = [&](const std::string &own, DType &want) {
    int index = plan.findInput(name.empty() ? own : name);
    if (index < 0)
      return false;
    want = plan.inputs()[index].dtype;
    return true;
  };
  Status s =
      npy ? rt::readNpy(file, out) : rt::readOnnxTensorFile(file, out, wanted);
  if (!s) {
    if (!npy && file.size() > 4 && file.substr(file.size() - 4) == ".npy")
      return fail("'" + file +
                  "' is not a .npy file (bad magic); write it with "
                  "numpy.save");
    return s;
  }
  if (!name.empty())
    out.name = name;
  else if (!npy && !out.name.empty())
    ; // the TensorProto's own name
  else
    out.name = std::filesystem::path(file).stem().string();
  return Status::ok();
}

// Matches `t` to the plan's input, converting float32 to bfloat16.
Status conform(rt::HostTensor &t, const TensorInfo &info,
               const std::string &source) {
  if (t.dtype == DType::F32 && info.dtype == DType::BF16) {
    std::string bf(t.data.size() / 2, '\0');
    for (size_t i = 0; i < t.data.size() / 4; ++i) {
      float v;
      std::memcpy(&v, &t.data[i * 4], 4);
      uint16_t h = rt::floatToBf16(v);
      std::memcpy(&bf[i * 2], &h, 2);
    }
    t.data = std::move(bf);
    t.dtype = DType::BF16;
  }
  if (t.dtype != info.dtype || t.shape != info.shape)
    return fail("input '" + info.name + "' from '" + source + "' is " +
                rt::dtypeName(t.dtype) + rt::formatShape(t.shape) +
                " but the plan expects " + describe(info));
  return Status::ok();
}

std::string sanitize(const std::string &name) {
  std::string s;
  for (char c : name)
    s.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '.' ||
                        c == '_' || c == '-'
                    ? c
                    : '_');
  // The same rule as the e2e scripts' safe(); '/' never survives, so a name
  // cannot leave DIR. Long names are cut to fit a file name.
  if (s.empty())
    s = "_";
  if (s.size() > 240)
    s.resize(240);
  return s;
}

std::string formatValue(DType dtype, const char *p) {
  char buf[64];
  switch (dtype) {
  case DType::F32: {
    float v;
    std::memcpy(&v, p, 4);
    std::snprintf(buf, sizeof buf, "%g", v);
    break;
  }
  case DType::F16:
  case DType::BF16: {
    uint16_t h;
    std::memcpy(&h, p, 2);
    std::snprintf(buf, sizeof buf, "%g",
                  dtype == DType::F16 ? rt::halfToFloat(h)
                                      : rt::bf16ToFloat(h));
    break;
  }
  case DType::I64: {
    int64_t v;
    std::memcpy(&v, p, 8);
    std::snprintf(buf, sizeof buf, "%" PRId64, v);
    break;
  }
  case DType::I32: {
    int32_t v;
    std::memcpy(&v, p, 4);
    std::snprintf(buf, sizeof buf, "%" PRId32, v);
    break;
  }
  case DType::Bool:
    return *p ? "true" : "false";
  case DType::F64: {
    double v;
    std::memcpy(&v, p, 8);
    std::snprintf(buf, sizeof buf, "%.17g", v);
    break;
  }
  }
  return buf;
}

std::string mib(int64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%" PRId64 " bytes (%.2f MiB)", bytes,
                bytes / (1024.0 * 1024.0));
  return buf;
}

double percentile(std::vector<double> sorted, double p) {
  size_t rank = static_cast<size_t>(std::ceil(p * sorted.size()));
  return sorted[std::min(sorted.size(), std::max<size_t>(rank, 1)) - 1];
}

Status writeOutputs(const Session &session, const std::string &dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return fail("cannot create output directory '" + dir +
                "': " + ec.message());
  std::set<std::string> used;
  for (const TensorInfo &info : session.plan().outputs()) {
    TensorRef ref;
    if (Status s = session.output(info.name, ref); !s)
      return s;
    std::string host(ref.bytes(), '\0');
    if (Status s = session.copyOutput(
            info.name, host.empty() ? nullptr : &host[0], host.size());
        !s)
      return s;
    DType dtype = info.dtype;
    if (dtype == DType::BF16) { // NumPy has no bfloat16
      std::string f32(host.size() * 2, '\0');
      for (size_t i = 0; i < host.size() / 2; ++i) {
        uint16_t h;
        std::memcpy(&h, &host[i * 2], 2);
        float v = rt::bf16ToFloat(h);
        std::memcpy(&f32[i * 4], &v, 4);
      }
      host = std::move(f32);
      dtype = DType::F32;
    }
    std::string base = sanitize(info.name), file = base;
    for (int n = 1; !used.insert(file).second; ++n)
      file = base + "_" + std::to_string(n);
    std::string path = (std::filesystem::path(dir) / (file + ".npy")).string();
    if (Status s =
            rt::writeNpy(path, dtype, info.shape, host.data(), host.size());
        !s)
      return s;
    std::printf("wrote %s -> %s%s\n", info.name.c_str(), path.c_str(),
                info.dtype == DType::BF16 ? " (bfloat16 as float32)" : "");
  }
  return Status::ok();
}

/// Ranks must run one plan: they compare a fingerprint of it before any
/// step, since different programs would deadlock or compute nonsense.
Status checkSamePlan(rt::Communicator &comm, const std::string &path) {
  // The file's bytes (a re-serialized message would not do: protobuf
  // writes map fields in an order that differs between processes).
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof())
    return fail("cannot read plan '" + path + "' again to compare it");
  uint64_t h = 1469598103934665603ull; // FNV-1a
  for (unsigned char c : bytes)
    h = (h ^ c) * 1099511628211ull;
  // Compared as two halves so that the max and min of each tell equality.
  int64_t hi[2] = {static_cast<int64_t>(h >> 32),
                   static_cast<int64_t>(h >> 32)};
  int64_t lo[2] = {static_cast<int64_t>(h & 0xffffffff),
                   static_cast<int64_t>(h & 0xffffffff)};
  for (int64_t *v : {hi, lo}) {
    TensorRef mx{&v[0], DType::I64, {}}, mn{&v[1], DType::I64, {}};
    if (Status s = comm.allReduce(mx, mx, rt::ReduceOp::Max, {}); !s)
      return s;
    if (Status s = comm.allReduce(mn, mn, rt::ReduceOp::Min, {}); !s)
      return s;
  }
  if (hi[0] != hi[1] || lo[0] != lo[1])
    return fail("the ranks of this run were given different plans (this "
                "rank runs '" +
                path +
                "'); give every rank the same .cplan file, compiled once");
  return Status::ok();
}

Status runMain(const Options &opts, const rt::WorldInfo &world,
               std::shared_ptr<rt::Communicator> comm) {
  std::shared_ptr<Plan> plan;
  if (Status s = Plan::load(opts.plan, plan); !s)
    return s;
  // A plan runs on the world it was compiled for; say so before any work.
  if (Status s = plan->checkWorld(
          world.size, world.launcher == "single" ? "" : world.launcher);
      !s)
    return s;
  std::printf("plan: %s (%s%s%s)\n", opts.plan.c_str(),
              plan->producer().empty() ? "unknown producer"
                                       : plan->producer().c_str(),
              plan->mode().empty() ? "" : ", ", plan->mode().c_str());
  std::printf("arena: %s\n", mib(plan->arenaBytes(world.rank)).c_str());
  const plan::Plan &proto = plan->proto();
  if (proto.ranks_size() > 1) {
    // A pipeline: each stage's program has its own arena.
    std::printf("arenas per program:");
    for (const plan::RankProgram &r : proto.ranks())
      std::printf(" %s", mib(r.arena_bytes()).c_str());
    std::printf("\n");
  }
  for (const plan::RankProgram &r : proto.ranks())
    if (r.host_pool_bytes() > 0)
      std::printf("host pool (offloaded state) of rank %d's "
                  "program: %s\n",
                  r.rank(), mib(r.host_pool_bytes()).c_str());
  if (plan->numRanks() > 1) {
    std::printf("ranks: %" PRId64 " (mesh %s, from %s)\n", plan->numRanks(),
                plan->meshDescription().c_str(), world.launcher.c_str());
    if (Status s = checkSamePlan(*comm, opts.plan); !s)
      return s;
  }
  if (opts.train || !opts.training.exportOnnx.empty()) {
    SessionOptions options;
    options.threads = opts.threads;
    chooseDevice(opts, world, options);
    options.rank = world.rank;
    options.communicator = comm;
    options.profile = opts.train && !opts.training.profile.empty();
    return opts.train ? tools::train(plan, options, opts.training)
                      : tools::exportOnly(plan, options, opts.training);
  }

  // Inputs, all read and checked before the (possibly slow) weight loading.
  std::map<std::string, rt::HostTensor> inputs;
  for (const std::string &spec : opts.inputs) {
    rt::HostTensor t;
    if (Status s = readInput(spec, *plan, t); !s)
      return s;
    int index = plan->findInput(t.name);
    if (index < 0)
      return fail("the plan has no input '" + t.name + "' (from --input " +
                  spec + "); its inputs are: " + planInputs(*plan));
    if (inputs.count(t.name))
      return fail("input '" + t.name + "' is given twice");
    if (Status s = conform(t, plan->inputs()[index], spec); !s)
      return s;
    inputs.emplace(t.name, std::move(t));
  }
  for (const TensorInfo &info : plan->inputs())
    if (!inputs.count(info.name))
      return fail("input '" + info.name + "' (" + describe(info) +
                  ") was not given; pass --input " + info.name +
                  "=FILE.npy (the plan's inputs: " + planInputs(*plan) + ")");

  SessionOptions options;
  options.threads = opts.threads;
  chooseDevice(opts, world, options);
  options.rank = world.rank;
  options.communicator = comm;
  options.profile = !opts.training.profile.empty();
  std::unique_ptr<Session> session;
  if (Status s = Session::create(plan, options, session); !s)
    return s;

  auto runOnce = [&]() -> Status {
    for (auto &entry : inputs)
      if (Status s = session->setInput(entry.first, entry.second.ref()); !s)
        return s;
    return session->run();
  };

  if (opts.bench > 0) {
    for (int i = 0; i < opts.warmup; ++i)
      if (Status s = runOnce(); !s)
        return s;
    std::vector<double> ms;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < opts.bench; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      if (Status s = runOnce(); !s)
        return s;
      auto t1 = std::chrono::steady_clock::now();
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    double total =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    std::sort(ms.begin(), ms.end());
    double runsPerSec = total > 0 ? opts.bench / total : 0;
    int64_t batch = 1;
    if (!plan->inputs().empty() && !plan->inputs()[0].shape.empty())
      batch = plan->inputs()[0].shape[0];
    std::printf("bench: %d runs after %d warm-up (each copies the inputs in "
                "and runs)\n",
                opts.bench, opts.warmup);
    std::printf("latency: p50 %.3f ms, p90 %.3f ms, min %.3f ms, max %.3f ms\n",
                percentile(ms, 0.5), percentile(ms, 0.9), ms.front(),
                ms.back());
    std::printf("throughput: %.2f runs/s, %.2f samples/s (batch %" PRId64 ")\n",
                runsPerSec, runsPerSec * static_cast<double>(batch), batch);
  } else if (Status s = runOnce(); !s) {
    return s;
  }

  for (const TensorInfo &info : plan->outputs()) {
    TensorRef ref;
    if (Status s = session->output(info.name, ref); !s)
      return s;
    std::string values;
    int64_t n = std::min<int64_t>(ref.numel(), 8);
    // Outputs are read through a host copy, which works on every backend.
    std::string all(ref.bytes(), '\0');
    if (Status s = session->copyOutput(
            info.name, all.empty() ? nullptr : &all[0], all.size());
        !s)
      return s;
    for (int64_t i = 0; i < n; ++i)
      values +=
          (i ? " " : "") +
          formatValue(info.dtype, all.data() + i * rt::dtypeSize(info.dtype));
    std::printf("output %s: %s [%s%s]\n", info.name.c_str(),
                describe(info).c_str(), values.c_str(),
                ref.numel() > n ? " ..." : "");
  }
  // Outputs are whole on every rank; rank 0 writes them.
  if (!opts.outputDir.empty() && world.rank == 0)
    if (Status s = writeOutputs(*session, opts.outputDir); !s)
      return s;
  if (!opts.training.profile.empty())
    if (Status s = tools::writeRankProfile(*session, opts.training.profile,
                                           world.rank);
        !s)
      return s;
  // "peak device bytes" equal to "arena" is what scripts check: the runtime
  // used exactly the memory the compiler planned.
  int64_t peak = static_cast<int64_t>(session->peakDeviceBytes());
  std::printf("peak device bytes: %" PRId64 " (%.2f MiB)\n", peak,
              peak / (1024.0 * 1024.0));
  if (int64_t measured = session->measuredDeviceBytes(); measured >= 0)
    std::printf("device memory the %s backend took, as the device reports "
                "it: %" PRId64 " bytes (%.2f MiB)\n",
                session->backendName(), measured, measured / (1024.0 * 1024.0));
  return Status::ok();
}

} // namespace

int main(int argc, char **argv) {
  // A corrupt plan is reported once, as our error; protobuf's own log lines
  // about it would only be noise.
  google::protobuf::SetLogHandler(nullptr);
  std::string who; // "rank R: " in a run of several ranks
  try {
    Options opts;
    if (Status s = parseArgs(argc, argv, opts); !s) {
      std::fprintf(stderr, "colossal-run: error: %s\n", s.message().c_str());
      return 1;
    }
    if (opts.help) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (opts.ranks > 0) {
      if (std::getenv("RANK") || std::getenv("OMPI_COMM_WORLD_RANK")) {
        std::fprintf(stderr,
                     "colossal-run: error: --ranks starts its own ranks, but "
                     "this process is already one rank of a launched job "
                     "(RANK or OMPI_COMM_WORLD_RANK is set); drop --ranks "
                     "under torchrun, Slurm or mpirun\n");
        return 1;
      }
      if (opts.ranks > 1) {
        std::vector<std::string> args;
        for (int i = 1; i < argc; ++i) {
          std::string a = argv[i];
          if (a == "--ranks") {
            ++i;
            continue;
          }
          if (a.rfind("--ranks=", 0) == 0)
            continue;
          args.push_back(a);
        }
        if (Status s = tools::launchRanks(opts.ranks, args, opts.commTimeout);
            !s) {
          std::fprintf(stderr, "colossal-run: error: %s\n",
                       s.message().c_str());
          return 1;
        }
        return 0;
      }
    }
    rt::WorldInfo world;
    if (Status s = rt::detectWorld(world); !s) {
      std::fprintf(stderr, "colossal-run: error: %s\n", s.message().c_str());
      return 1;
    }
    std::shared_ptr<rt::Communicator> comm;
    if (world.size > 1) {
      who = "rank " + std::to_string(world.rank) + ": ";
      // Only rank 0 reports progress; every rank reports its errors.
      if (world.rank != 0 && !std::freopen("/dev/null", "w", stdout))
        return 1;
      std::unique_ptr<rt::Communicator> created;
      if (Status s = rt::createWorldCommunicator(
              world, std::chrono::seconds(opts.commTimeout), created);
          !s) {
        std::fprintf(stderr, "colossal-run: %serror: %s\n", who.c_str(),
                     s.message().c_str());
        return 1;
      }
      comm = std::move(created);
    }
    if (Status s = runMain(opts, world, comm); !s) {
      std::fflush(stdout);
      std::fprintf(stderr, "colossal-run: %serror: %s\n", who.c_str(),
                   s.message().c_str());
      return 1;
    }
    return 0;
  } catch (const std::bad_alloc &) {
    std::fprintf(stderr, "colossal-run: %serror: out of host memory\n",
                 who.c_str());
  } catch (const std::exception &e) {
    std::fprintf(stderr, "colossal-run: %serror: internal error: %s\n",
                 who.c_str(), e.what());
  }
  return 1;
}
