//===- Train.cpp - colossal-run's training loop ---------------------------===//
//
// Feeds micro-batches (TrainData.h) to a train plan, reports progress and
// metrics, and saves and resumes checkpoints: every plan parameter (weights
// and optimizer state) plus step, data position and seed, written
// atomically. The data position alone fixes the rest of the data stream, so
// a resumed run sees exactly the batches an uninterrupted one would.
//
//===----------------------------------------------------------------------===//

#include "tools/colossal-run/Train.h"
#include "tools/colossal-run/TrainData.h"

#include "runtime/core/CheckpointDir.h"
#include "runtime/core/Communicator.h"
#include "runtime/core/FileIO.h"
#include "runtime/core/HostTensor.h"
#include "runtime/core/OnnxTensor.h"
#include "runtime/core/PlanTypes.h"
#include "runtime/proto/plan.pb.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

namespace colossal::tools {
namespace {

Status fail(const std::string &message) { return Status::error(message); }

volatile std::sig_atomic_t interrupted = 0;
void onSignal(int) { interrupted = 1; }

//===----------------------------------------------------------------------===//
// Checkpoints
//===----------------------------------------------------------------------===//

/// Every rank takes part (split parameters are gathered); rank 0 writes
/// the file and prunes old ones.
Status saveCheckpoint(const Session &session, const std::string &dir,
                      int64_t step,
                      const std::map<std::string, std::string> &metadata,
                      int keep, bool lead, std::string &path) {
  if (lead)
    if (Status s = rt::ensureDirectory(dir); !s)
      return s;
  path = rt::checkpointPath(dir, step);
  if (Status s = session.saveParameters(path, metadata); !s)
    return s;
  return lead ? rt::pruneCheckpoints(dir, keep, step) : Status::ok();
}

/// Whether any rank was interrupted: ranks stop at the same step, so the
/// collective checkpoint that follows has every rank in it.
Status anyInterrupted(const SessionOptions &options, bool &out) {
  int32_t flag = interrupted ? 1 : 0;
  if (options.communicator && options.communicator->size() > 1) {
    TensorRef t{&flag, DType::I32, {}};
    if (Status s = options.communicator->allReduce(t, t, rt::ReduceOp::Max, {});
        !s)
      return s;
  }
  out = flag != 0;
  return Status::ok();
}

bool metaInt(const std::map<std::string, std::string> &meta,
             const std::string &key, int64_t &out) {
  auto it = meta.find(key);
  if (it == meta.end())
    return false;
  char *end = nullptr;
  errno = 0;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end || errno)
    return false;
  out = v;
  return true;
}

/// Keeps the metrics lines of steps <= `step` (a resumed run rewrites the
/// ones after its checkpoint).
Status truncateMetrics(const std::string &path, int64_t step) {
  std::ifstream in(path);
  if (!in)
    return Status::ok();
  std::string kept, line;
  while (std::getline(in, line)) {
    size_t at = line.find("\"step\":");
    long long s = 0;
    if (at == std::string::npos ||
        std::sscanf(line.c_str() + at + 7, "%lld", &s) != 1 || s > step)
      continue;
    kept += line + "\n";
  }
  in.close();
  std::string tmp = path + ".tmp";
  std::FILE *f = std::fopen(tmp.c_str(), "wb");
  if (!f || std::fwrite(kept.data(), 1, kept.size(), f) != kept.size() ||
      std::fclose(f) != 0 || std::rename(tmp.c_str(), path.c_str()) != 0)
    return fail("cannot rewrite metrics file '" + path +
                "': " + std::strerror(errno));
  return Status::ok();
}

/// `v` as a JSON number (exact for float32), or null when it is not finite
/// (a step skipped by dynamic loss scaling has an infinite gradient norm).
std::string jsonNumber(float v) {
  if (!std::isfinite(v))
    return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string clock(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0)
    return "?";
  int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%" PRId64 ":%02d:%02d", s / 3600,
                static_cast<int>(s / 60 % 60), static_cast<int>(s % 60));
  return buf;
}

Status readScalar(const Session &session, const std::string &name, float &out) {
  if (name.empty()) {
    out = NAN;
    return Status::ok();
  }
  return session.copyOutput(name, &out, sizeof out);
}

/// Cross-entropy labels must name a class or be the ignore index; any other
/// value would silently count as a wrong prediction.
Status checkLabels(const rt::HostTensor &labels, const plan::Training &t,
                   const std::string &origin) {
  if (t.loss() != "cross-entropy" || t.num_classes() <= 0)
    return Status::ok();
  int64_t n = rt::numElements(labels.shape);
  for (int64_t i = 0; i < n; ++i) {
    int64_t v = labels.dtype == DType::I64
                    ? reinterpret_cast<const int64_t *>(labels.data.data())[i]
                    : reinterpret_cast<const int32_t *>(labels.data.data())[i];
    if ((v < 0 || v >= t.num_classes()) && v != t.ignore_index())
      return fail(origin + ": label " + std::to_string(v) + " (element " +
                  std::to_string(i) +
                  ") is not a class of the model, which "
                  "has " +
                  std::to_string(t.num_classes()) + " (0.." +
                  std::to_string(t.num_classes() - 1) +
                  "), nor the ignore index " +
                  std::to_string(t.ignore_index()));
  }
  return Status::ok();
}

Status checkTrainPlan(const Plan &plan) {
  if (plan.mode() != "train" || !plan.proto().has_training())
    return fail("plan '" + plan.source() + "' is not a training step (mode '" +
                plan.mode() +
                "'); compile one with colossal-opt M.onnx --mode=train "
                "--loss=cross-entropy --optimizer=adamw --emit=plan -o "
                "M.cplan");
  const plan::Training &t = plan.proto().training();
  if (plan.findOutput(t.loss_output()) < 0)
    return fail("plan '" + plan.source() + "' has no loss output '" +
                t.loss_output() + "'; recompile it");
  return Status::ok();
}

} // namespace

/// Weight `name`, whole, on rank 0 (every rank calls this for every weight,
/// in the same order). The ranks holding it gather its pieces
/// (readParameter); a pipeline stage that is not rank 0's sends it there.
static Status readWholeWeight(const Plan &plan, const Session &session,
                              rt::Communicator *comm, int rank, int index,
                              rt::HostTensor &out) {
  const plan::Plan &proto = plan.proto();
  const std::string &name = proto.parameters(index).name();
  // The first program holding it, and its first rank.
  int source = -1;
  bool rank0Holds = false, mine = false;
  for (int p = 0; p < proto.ranks_size(); ++p) {
    const plan::RankProgram &program = proto.ranks(p);
    bool holds = false;
    for (const plan::ParamSlice &slice : program.parameters())
      holds |= slice.parameter() == index;
    if (!holds)
      continue;
    std::vector<int> members(program.members().begin(),
                             program.members().end());
    if (members.empty())
      members.push_back(program.rank());
    if (source < 0)
      source = members.front();
    for (int r : members) {
      rank0Holds |= r == 0;
      mine |= r == rank;
    }
  }
  if (mine)
    if (Status s =
            session.readParameter(name, out.data.data(), out.data.size());
        !s)
      return s;
  if (rank0Holds || !comm)
    return Status::ok();
  TensorRef t{out.data.data(), out.dtype, out.shape};
  int64_t tag = (int64_t(1) << 40) + index; // apart from the plan's tags
  if (rank == source)
    return comm->send(t, 0, tag);
  if (rank == 0)
    return comm->recv(t, source, tag);
  return Status::ok();
}

Status train(std::shared_ptr<Plan> plan, const SessionOptions &sessionOptions,
             const TrainOptions &opts) {
  if (Status s = checkTrainPlan(*plan); !s)
    return s;
  const plan::Training &t = plan->proto().training();
  int64_t k = std::max<int64_t>(1, t.micro_batches());
  // An export that cannot happen is reported before hours of training.
  if (!opts.exportOnnx.empty()) {
    if (plan->proto().source_model().empty())
      return fail("--export-onnx: the plan was not compiled from an ONNX "
                  "file, so there is no model to write the weights into");
    std::string model = rt::resolvePath(rt::directoryOf(plan->source()),
                                        plan->proto().source_model());
    std::error_code ec;
    if (!std::filesystem::is_regular_file(model, ec))
      return fail("--export-onnx: the plan's model '" + model +
                  "' is missing; the trained weights are written into a "
                  "copy of it, so it must stay where the plan was compiled "
                  "from (relative to the plan)");
    std::error_code same;
    if (std::filesystem::equivalent(model, opts.exportOnnx, same))
      return fail("--export-onnx " + opts.exportOnnx +
                  " is the plan's own model; write the trained weights to "
                  "another file (the plan reads its initial weights from "
                  "this one)");
    std::string parent =
        std::filesystem::path(opts.exportOnnx).parent_path().string();
    if (!parent.empty())
      if (Status s = rt::ensureDirectory(parent); !s)
        return fail("--export-onnx " + opts.exportOnnx + ": " + s.message());
  }

  // Kernel threads: sums split per thread, so bitwise-equal resumes need
  // the same number.
  int threads = sessionOptions.threads > 0
                    ? sessionOptions.threads
                    : static_cast<int>(std::thread::hardware_concurrency());

  // State to start from.
  int64_t step = 0, position = 0;
  uint64_t seed = opts.seed;
  std::vector<rt::SafetensorsEntry> restored;
  std::string restoredFrom;
  if (opts.resume) {
    if (opts.checkpointDir.empty())
      return fail("--resume continues from the newest checkpoint in "
                  "--checkpoint-dir; give the directory");
    std::map<std::string, std::string> meta;
    std::vector<std::string> warnings;
    bool found = false;
    int64_t ckptStep = 0;
    Status loaded = rt::loadLatestCheckpoint(opts.checkpointDir, ckptStep,
                                             restored, meta, warnings, found);
    for (const std::string &w : warnings)
      std::printf("warning: %s\n", w.c_str());
    if (!loaded)
      return loaded;
    if (found) {
      int64_t seedValue = 0;
      if (!metaInt(meta, "step", step) ||
          !metaInt(meta, "data_position", position) ||
          !metaInt(meta, "seed", seedValue))
        return fail("checkpoint '" +
                    rt::checkpointPath(opts.checkpointDir, ckptStep) +
                    "' has no step, data position or seed in its metadata; "
                    "it was not written by colossal-run --train");
      if (opts.seedGiven && static_cast<uint64_t>(seedValue) != opts.seed)
        return fail("the checkpoint was trained with --seed " +
                    std::to_string(seedValue) +
                    "; resuming with another seed would change the data "
                    "order: drop --seed or pass --seed " +
                    std::to_string(seedValue));
      seed = static_cast<uint64_t>(seedValue);
      restoredFrom = rt::checkpointPath(opts.checkpointDir, ckptStep);
      auto saved = meta.find("threads");
      if (saved != meta.end() && saved->second != std::to_string(threads))
        std::printf("warning: the checkpoint was trained with %s threads, "
                    "this run uses %d; it continues from the same state, but "
                    "its losses may differ in the last bits from an "
                    "uninterrupted run's (sums are split per thread)\n",
                    saved->second.c_str(), threads);
      auto data = meta.find("data");
      if (data != meta.end() && !opts.data.empty() && data->second != opts.data)
        std::printf("warning: the checkpoint was trained on '%s', this run "
                    "reads '%s'; the data position carries over\n",
                    data->second.c_str(), opts.data.c_str());
      auto order = meta.find("data_order");
      if (order != meta.end() && order->second != opts.dataOrder)
        std::printf("warning: the checkpoint read its data in %s order, this "
                    "run in %s order\n",
                    order->second.c_str(), opts.dataOrder.c_str());
    } else if (opts.steps == 0) {
      return fail("no checkpoint in '" + opts.checkpointDir +
                  "' to export; train first, or check the directory");
    } else {
      // Nothing to resume. A run creates its checkpoint directory first, so
      // a missing one with a metrics history is a typo, which should not
      // cost that history (a run killed before its first checkpoint left
      // the directory and starts over).
      std::ifstream history(opts.metrics);
      std::string line;
      std::error_code ec;
      if (!std::filesystem::exists(opts.checkpointDir, ec) &&
          !opts.metrics.empty() && history && std::getline(history, line))
        return fail("--resume found no checkpoint in '" + opts.checkpointDir +
                    "', but metrics file '" + opts.metrics +
                    "' holds a run's history; check --checkpoint-dir, or "
                    "move the metrics file away to start from step 0");
      std::printf("resume: no checkpoint in %s yet; starting at step 0\n",
                  opts.checkpointDir.c_str());
    }
  } else if (!opts.checkpointDir.empty()) {
    // A fresh run must not overwrite or prune another run's checkpoints.
    std::vector<int64_t> existing;
    if (Status s = rt::listCheckpoints(opts.checkpointDir, existing); !s)
      return s;
    if (!existing.empty())
      return fail("'" + opts.checkpointDir +
                  "' already holds checkpoints "
                  "(newest: step " +
                  std::to_string(existing.back()) +
                  "); continue that run with --resume, or give a new "
                  "--checkpoint-dir");
  }
  // A checkpoint directory that cannot be written is found now, not after
  // the training (rank 0 writes checkpoints).
  bool lead = sessionOptions.rank == 0;
  if (!opts.checkpointDir.empty() && opts.steps > 0 && lead) {
    if (Status s = rt::ensureDirectory(opts.checkpointDir); !s)
      return fail("--checkpoint-dir: " + s.message());
    std::string probe =
        (std::filesystem::path(opts.checkpointDir) / ".write-test").string();
    std::FILE *f = std::fopen(probe.c_str(), "wb");
    if (!f)
      return fail("--checkpoint-dir '" + opts.checkpointDir +
                  "' is not writable: " + std::strerror(errno));
    std::fclose(f);
    std::remove(probe.c_str());
  }

  // Data is opened only when there is something to train.
  std::unique_ptr<BatchSource> data;
  if (step < opts.steps) {
    if (opts.data.empty())
      return fail("--train needs --data: a token file (uint16/uint32) or a "
                  "directory of .npy batches");
    if (Status s = openBatchSource(opts.data, opts.dataDtype, opts.dataOrder,
                                   seed, *plan, data);
        !s)
      return s;
  }

  std::unique_ptr<Session> session;
  if (Status s = Session::create(plan, sessionOptions, session); !s)
    return s;
  if (!restoredFrom.empty()) {
    if (Status s = session->restoreParameters(restored, "checkpoint '" +
                                                            restoredFrom + "'");
        !s)
      return fail(s.message() + ", or train from scratch with another "
                                "--checkpoint-dir");
    restored.clear();
    std::printf("resumed from %s (step %" PRId64 ", data position %" PRId64
                ")\n",
                restoredFrom.c_str(), step, position);
  }
  std::printf("training: %s\n", t.options().c_str());
  {
    int64_t weights = 0, weightElements = 0, state = 0, stateBytes = 0;
    for (const ParameterInfo &p : session->parameters()) {
      if (p.optimizerState) {
        ++state;
        stateBytes += static_cast<int64_t>(p.bytes());
      } else {
        ++weights;
        weightElements += rt::numElements(p.shape);
      }
    }
    std::printf("parameters: %" PRId64 " tensors, %" PRId64
                " elements; optimizer state: %" PRId64 " tensors, %.2f MiB\n",
                weights, weightElements, state, stateBytes / (1024.0 * 1024.0));
  }
  // A cosine schedule ends at its T; later steps keep its final lr.
  const std::string &schedule = t.lr_schedule();
  long long warmup = 0, total = 0;
  if (std::sscanf(schedule.c_str(), "warmup-cosine:%lld,%lld", &warmup,
                  &total) == 2 &&
      opts.steps > total)
    std::printf("warning: --steps %" PRId64 " runs past the lr schedule's end "
                "(step %lld of %s); the steps after it keep its final lr "
                "(MIN x lr, 0 unless given): compile with a longer schedule "
                "to keep learning\n",
                opts.steps, total, schedule.c_str());
  if (data)
    std::printf("data: %s\n", data->describe().c_str());

  std::FILE *metrics = nullptr;
  if (!opts.metrics.empty() && lead) {
    if (opts.resume)
      if (Status s = truncateMetrics(opts.metrics, step); !s)
        return s;
    metrics = std::fopen(opts.metrics.c_str(), opts.resume ? "ab" : "wb");
    if (!metrics)
      return fail("cannot open metrics file '" + opts.metrics +
                  "': " + std::strerror(errno));
  }
  struct Closer {
    std::FILE *f;
    ~Closer() {
      if (f)
        std::fclose(f);
    }
  } closeMetrics{metrics};

  auto metadata = [&](int64_t atStep, int64_t atPosition) {
    std::map<std::string, std::string> m;
    m["format"] = "colossal-checkpoint";
    m["version"] = "1";
    m["step"] = std::to_string(atStep);
    m["data_position"] = std::to_string(atPosition);
    m["seed"] = std::to_string(seed);
    m["rng"] = "splitmix64(seed, sample number); state = data_position";
    m["micro_batches"] = std::to_string(k);
    m["threads"] = std::to_string(threads);
    m["data"] = opts.data;
    m["data_order"] = opts.dataOrder;
    m["training"] = t.options();
    m["producer"] = plan->producer();
    return m;
  };

  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);
  interrupted = 0;

  if (step >= opts.steps && opts.steps > 0) {
    std::printf("already at step %" PRId64 " (--steps %" PRId64
                "): nothing to train\n",
                step, opts.steps);
  }
  using Clock = std::chrono::steady_clock;
  auto start = Clock::now(), lastLog = start;
  double checkpointSeconds = 0, lastLogCheckpoint = 0;
  int64_t firstStep = step, lastLogStep = step;
  std::string lastCheckpoint = restoredFrom;
  float loss = NAN;
  std::vector<rt::HostTensor> inputs;
  while (step < opts.steps) {
    double lossSum = 0;
    float lr = NAN, gradNorm = NAN;
    for (int64_t micro = 0; micro < k; ++micro) {
      if (Status s = data->batch(position, inputs); !s)
        return s;
      for (const rt::HostTensor &in : inputs)
        if (in.name == t.labels_input())
          if (Status s = checkLabels(in, t, data->origin(position, in.name));
              !s)
            return s;
      ++position;
      for (rt::HostTensor &in : inputs)
        if (Status s = session->setInput(in.name, in.ref()); !s)
          return s;
      if (Status s = session->run(); !s)
        return fail("step " + std::to_string(step + 1) + ": " + s.message());
      float microLoss;
      if (Status s = readScalar(*session, t.loss_output(), microLoss); !s)
        return s;
      lossSum += microLoss;
    }
    if (Status s = readScalar(*session, t.lr_output(), lr); !s)
      return s;
    if (Status s = readScalar(*session, t.grad_norm_output(), gradNorm); !s)
      return s;
    ++step;
    loss = k == 1 ? static_cast<float>(lossSum)
                  : static_cast<float>(lossSum / static_cast<double>(k));
    if (!std::isfinite(loss))
      return fail("the loss became " +
                  std::string(std::isnan(loss) ? "NaN" : "inf") + " at step " +
                  std::to_string(step) +
                  (step == firstStep + 1
                       ? ", before any update: check the data (NaN or "
                         "infinite inputs or targets) and the weights"
                       : ": lower --lr or add --clip-grad-norm when compiling, "
                         "or check the data") +
                  (lastCheckpoint.empty()
                       ? std::string()
                       : "; the last good checkpoint is " + lastCheckpoint));

    bool stop = false;
    if (Status s = anyInterrupted(sessionOptions, stop); !s)
      return s;
    bool log = step % std::max<int64_t>(1, opts.logEvery) == 0 ||
               step == firstStep + 1 || step == opts.steps || stop;
    if (log) {
      auto now = Clock::now();
      double interval = std::chrono::duration<double>(now - lastLog).count() -
                        (checkpointSeconds - lastLogCheckpoint);
      double perStep = interval / static_cast<double>(step - lastLogStep);
      double rate = 0;
      const char *unit = data->tokensPerBatch ? "tok/s" : "samples/s";
      int64_t perBatch =
          data->tokensPerBatch ? data->tokensPerBatch : data->samplesPerBatch;
      if (perStep > 0)
        rate = static_cast<double>(perBatch * k) / perStep;
      double elapsed = std::chrono::duration<double>(now - start).count();
      double eta = elapsed / static_cast<double>(step - firstStep) *
                   static_cast<double>(opts.steps - step);
      std::printf("step %" PRId64 "/%" PRId64
                  " | loss %.4f | lr %.3e | grad norm %.3f | %.0f %s | "
                  "ETA %s%s\n",
                  step, opts.steps, loss, lr, gradNorm, rate, unit,
                  clock(eta).c_str(),
                  std::isfinite(gradNorm)
                      ? ""
                      : " | update skipped: the gradients overflowed (the "
                        "loss scale halves)");
      std::fflush(stdout);
      if (metrics) {
        std::fprintf(metrics,
                     "{\"step\": %" PRId64
                     ", \"loss\": %s, \"lr\": %s, \"grad_norm\": %s, "
                     "\"%s\": %.3f, \"elapsed_s\": %.3f}\n",
                     step, jsonNumber(loss).c_str(), jsonNumber(lr).c_str(),
                     jsonNumber(gradNorm).c_str(),
                     data->tokensPerBatch ? "tokens_per_s" : "samples_per_s",
                     rate, elapsed);
        std::fflush(metrics);
      }
      lastLog = now;
      lastLogStep = step;
      lastLogCheckpoint = checkpointSeconds;
    }

    bool save =
        !opts.checkpointDir.empty() &&
        ((opts.checkpointEvery > 0 && step % opts.checkpointEvery == 0) ||
         step == opts.steps || stop);
    if (save) {
      auto t0 = Clock::now();
      if (Status s = saveCheckpoint(*session, opts.checkpointDir, step,
                                    metadata(step, position),
                                    opts.keepCheckpoints, lead, lastCheckpoint);
          !s)
        return s;
      checkpointSeconds +=
          std::chrono::duration<double>(Clock::now() - t0).count();
      std::printf("checkpoint: %s\n", lastCheckpoint.c_str());
    }
    if (stop)
      return fail(
          "interrupted at step " + std::to_string(step) +
          (opts.checkpointDir.empty()
               ? std::string("; no --checkpoint-dir, so nothing was "
                             "saved")
               : "; saved " + lastCheckpoint + ": continue with --resume"));
  }
  if (step > firstStep) {
    double elapsed =
        std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("trained steps %" PRId64 "..%" PRId64 " in %.2f s; final "
                "loss %.4f\n",
                firstStep + 1, step, elapsed, loss);
    // What the compiler planned is what the run used, on every rank.
    int64_t peak = static_cast<int64_t>(session->peakDeviceBytes());
    int64_t arena = plan->arenaBytes(sessionOptions.rank);
    if (peak != arena)
      return fail("this rank held " + std::to_string(peak) +
                  " device bytes at its peak, but its plan's arena is " +
                  std::to_string(arena) +
                  ": the runtime allocated memory the plan did not predict");
    std::printf("peak device bytes: %" PRId64 " (%.2f MiB; the plan's arena: "
                "%" PRId64 ")\n",
                peak, peak / (1024.0 * 1024.0), arena);
    if (int64_t measured = session->measuredDeviceBytes(); measured >= 0)
      std::printf("device memory the %s backend took, as the device reports "
                  "it: %" PRId64 " bytes (%.2f MiB)\n",
                  session->backendName(), measured,
                  measured / (1024.0 * 1024.0));
  }

  if (!opts.profile.empty())
    if (Status s =
            writeRankProfile(*session, opts.profile, sessionOptions.rank);
        !s)
      return s;

  if (!opts.exportOnnx.empty()) {
    std::map<std::string, rt::HostTensor> weights;
    // Session::parameters() is in plan order: its index is the plan's.
    const std::vector<ParameterInfo> &params = session->parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      const ParameterInfo &p = params[i];
      if (p.optimizerState)
        continue;
      rt::HostTensor &h = weights[p.name];
      h.name = p.name;
      h.dtype = p.dtype;
      h.shape = p.shape;
      h.data.assign(p.bytes(), '\0');
      if (Status s = readWholeWeight(
              *plan, *session, sessionOptions.communicator.get(),
              sessionOptions.rank, static_cast<int>(i), h);
          !s)
        return s;
    }
    if (sessionOptions.communicator)
      if (Status s = sessionOptions.communicator->waitSends(); !s)
        return s;
    // Every rank helped gather the split weights; rank 0 writes the model.
    if (!lead)
      return Status::ok();
    std::map<std::string, const rt::HostTensor *> refs;
    for (const auto &w : weights)
      refs[w.first] = &w.second;
    const std::string &source = plan->proto().source_model();
    std::string model =
        rt::resolvePath(rt::directoryOf(plan->source()), source);
    int64_t replaced = 0;
    std::map<std::string, std::string> derived(
        plan->proto().derived_weights().begin(),
        plan->proto().derived_weights().end());
    if (Status s = rt::exportOnnxModel(model, refs, opts.exportOnnx, replaced,
                                       int64_t(1) << 30, derived);
        !s)
      return s;
    std::printf("exported %" PRId64 " trained weights into %s (from %s)\n",
                replaced, opts.exportOnnx.c_str(), model.c_str());
  }
  return Status::ok();
}

Status writeRankProfile(const Session &session, const std::string &file,
                        int rank) {
  const Plan &plan = session.plan();
  std::string path = file;
  if (plan.numRanks() > 1) {
    std::filesystem::path p(file);
    path = (p.parent_path() / (p.stem().string() + ".rank" +
                               std::to_string(rank) + p.extension().string()))
               .string();
  }
  std::map<std::string, double> summary;
  if (Status s = session.writeProfile(path, &summary); !s)
    return s;
  if (rank != 0)
    return Status::ok();
  double run = summary["run_s"];
  std::printf("profile: %s%s; a run takes %.3f ms:", path.c_str(),
              plan.numRanks() > 1 ? " (one per rank)" : "", run * 1e3);
  for (const char *category :
       {"compute", "host", "collective", "send", "recv", "copy"}) {
    double s = summary[std::string(category) + "_s_per_run"];
    if (s > 0)
      std::printf(" %s %.3f ms (%.0f%%)", category, s * 1e3,
                  run > 0 ? 100 * s / run : 0.0);
  }
  std::printf("\n");
  // Measured against predicted, per op kind (the slowest first).
  double predicted = summary["predicted_s_per_run"];
  if (predicted > 0) {
    std::vector<std::pair<double, std::string>> ops;
    const std::string prefix = "op.measured_s.";
    for (const auto &[key, value] : summary)
      if (key.rfind(prefix, 0) == 0)
        ops.push_back({value, key.substr(prefix.size())});
    std::sort(ops.rbegin(), ops.rend());
    double measured = summary["measured_instructions_s_per_run"];
    std::printf("measured vs predicted (rank 0, per run): instructions "
                "%.3f ms, predicted %.3f ms (%.2fx); per instruction in %s\n",
                measured * 1e3, predicted * 1e3, measured / predicted,
                profileSummaryPath(path).c_str());
    for (size_t i = 0; i < ops.size() && i < 8; ++i) {
      double p = summary["op.predicted_s." + ops[i].second];
      std::printf("  %-24s %9.3f ms  predicted %9.3f ms", ops[i].second.c_str(),
                  ops[i].first * 1e3, p * 1e3);
      if (p > 0)
        std::printf("  (%.2fx)", ops[i].first / p);
      std::printf("\n");
    }
  }
  const plan::Plan &proto = plan.proto();
  if (proto.has_pipeline() && proto.pipeline().stages() > 1) {
    const plan::Pipeline &p = proto.pipeline();
    double stages = static_cast<double>(p.stages());
    double chunks =
        static_cast<double>(p.micro_batches()) *
        static_cast<double>(std::max<int64_t>(1, p.virtual_stages()));
    double bubble = (stages - 1) / (chunks + stages - 1);
    std::printf("pipeline: %lld stages, %s, %lld micro-batches: rank 0 waited "
                "in receives %.0f%% of a run; the schedule's bubble is "
                "(p-1)/(m*v+p-1) = %.0f%%\n",
                static_cast<long long>(p.stages()), p.schedule().c_str(),
                static_cast<long long>(p.micro_batches()),
                100 * summary["recv_wait_fraction"], 100 * bubble);
  }
  return Status::ok();
}

Status exportOnly(std::shared_ptr<Plan> plan,
                  const SessionOptions &sessionOptions,
                  const TrainOptions &opts) {
  if (Status s = checkTrainPlan(*plan); !s)
    return s;
  // Nothing to train: the loop only restores the checkpoint and exports.
  TrainOptions o = opts;
  o.steps = 0;
  o.resume = !opts.checkpointDir.empty();
  o.metrics.clear();
  return train(std::move(plan), sessionOptions, o);
}

} // namespace colossal::tools
