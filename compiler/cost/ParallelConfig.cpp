//===- ParallelConfig.cpp - Parsing and checking parallel configs ---------===//

#include "compiler/cost/ParallelConfig.h"

#include "compiler/cost/ClusterSpec.h"
#include "compiler/cost/Workload.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace colossal::cost;
using llvm::StringRef;

llvm::StringRef colossal::cost::tpModeName(TpMode m) {
  switch (m) {
  case TpMode::OneD:
    return "1d";
  case TpMode::TwoD:
    return "2d";
  case TpMode::TwoPointFiveD:
    return "2.5d";
  case TpMode::ThreeD:
    return "3d";
  }
  return "?";
}

llvm::StringRef colossal::cost::scheduleName(Schedule s) {
  switch (s) {
  case Schedule::GPipe:
    return "gpipe";
  case Schedule::OneFOneB:
    return "1f1b";
  case Schedule::Interleaved:
    return "interleaved";
  }
  return "?";
}

llvm::StringRef colossal::cost::recomputeName(Recompute r) {
  switch (r) {
  case Recompute::None:
    return "none";
  case Recompute::Selective:
    return "selective";
  case Recompute::Full:
    return "full";
  }
  return "?";
}

llvm::StringRef colossal::cost::offloadName(Offload o) {
  switch (o) {
  case Offload::None:
    return "none";
  case Offload::Optimizer:
    return "optimizer";
  case Offload::Params:
    return "params";
  case Offload::Activations:
    return "activations";
  }
  return "?";
}

static int64_t exactRoot(int64_t x, int k) {
  int64_t r = static_cast<int64_t>(std::llround(std::pow(double(x), 1.0 / k)));
  for (int64_t c = std::max<int64_t>(1, r - 1); c <= r + 1; ++c) {
    int64_t p = 1;
    for (int i = 0; i < k; ++i)
      p *= c;
    if (p == x)
      return c;
  }
  return 0;
}

int64_t ParallelConfig::tpMeshSide() const {
  switch (tp_mode) {
  case TpMode::OneD:
    return tp;
  case TpMode::TwoD:
    return exactRoot(tp, 2);
  case TpMode::TwoPointFiveD:
    return tp % tp_depth == 0 ? exactRoot(tp / tp_depth, 2) : 0;
  case TpMode::ThreeD:
    return exactRoot(tp, 3);
  }
  return 0;
}

std::string colossal::cost::notYetExecutable(const ParallelConfig &c) {
  // Every layout the search emits executes today.
  (void)c;
  return "";
}

int64_t ParallelConfig::tpBatchSplit() const {
  int64_t q = tpMeshSide();
  switch (tp_mode) {
  case TpMode::OneD:
    return 1;
  case TpMode::TwoD:
    return q;
  case TpMode::TwoPointFiveD:
    return tp_depth * q;
  case TpMode::ThreeD:
    return q * q;
  }
  return 1;
}

//===----------------------------------------------------------------------===//
// Parsing
//===----------------------------------------------------------------------===//

static llvm::Error configError(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "parallel config: " + msg);
}

static constexpr const char *kKnownKeys =
    "dp, tp, tp-mode, tp-sp, pp, sp, sp-mode, micro-batch, schedule, "
    "recompute, zero, offload";

static llvm::Error parsePositive(StringRef key, StringRef value, int64_t &out) {
  if (value.getAsInteger(10, out) || out < 1)
    return configError("'" + key + "=" + value + "': " + key +
                       " must be a positive integer");
  return llvm::Error::success();
}

llvm::Expected<ParallelConfig>
colossal::cost::parseParallelConfig(StringRef text) {
  ParallelConfig cfg;
  llvm::SmallVector<StringRef, 12> items;
  text.split(items, ',', /*MaxSplit=*/-1, /*KeepEmpty=*/false);
  for (StringRef raw : items) {
    StringRef item = raw.trim();
    if (item.empty())
      continue;
    if (!item.contains('='))
      return configError("'" + item +
                         "': expected KEY=VALUE (keys: " + kKnownKeys + ")");
    auto kv = item.split('=');
    StringRef key = kv.first.trim(), value = kv.second.trim();
    auto bad = [&](StringRef expected) {
      return configError("'" + key + "=" + value + "': " + key + " must be " +
                         expected);
    };
    if (key == "dp") {
      if (llvm::Error e = parsePositive(key, value, cfg.dp))
        return std::move(e);
    } else if (key == "tp") {
      if (llvm::Error e = parsePositive(key, value, cfg.tp))
        return std::move(e);
    } else if (key == "pp") {
      if (llvm::Error e = parsePositive(key, value, cfg.pp))
        return std::move(e);
    } else if (key == "sp") {
      if (llvm::Error e = parsePositive(key, value, cfg.sp))
        return std::move(e);
    } else if (key == "micro-batch") {
      if (llvm::Error e = parsePositive(key, value, cfg.micro_batch))
        return std::move(e);
    } else if (key == "tp-mode") {
      auto [mode, depth] = value.split(':');
      cfg.tp_depth = 1;
      if (mode == "1d" && depth.empty())
        cfg.tp_mode = TpMode::OneD;
      else if (mode == "2d" && depth.empty())
        cfg.tp_mode = TpMode::TwoD;
      else if (mode == "3d" && depth.empty())
        cfg.tp_mode = TpMode::ThreeD;
      else if (mode == "2.5d") {
        cfg.tp_mode = TpMode::TwoPointFiveD;
        if (depth.getAsInteger(10, cfg.tp_depth) || cfg.tp_depth < 1)
          return bad("2.5d:D with a positive depth D, e.g. 2.5d:2");
      } else
        return bad("one of 1d, 2d, 2.5d:D, 3d");
    } else if (key == "tp-sp") {
      if (value == "1" || value == "true")
        cfg.tp_sp = true;
      else if (value == "0" || value == "false")
        cfg.tp_sp = false;
      else
        return bad("0 or 1");
    } else if (key == "sp-mode") {
      if (value == "ring")
        cfg.sp_mode = SpMode::Ring;
      else if (value == "ulysses")
        cfg.sp_mode = SpMode::Ulysses;
      else
        return bad("ring or ulysses");
    } else if (key == "schedule") {
      auto [name, chunks] = value.split(':');
      cfg.virtual_stages = 1;
      if (name == "1f1b" && chunks.empty())
        cfg.schedule = Schedule::OneFOneB;
      else if (name == "gpipe" && chunks.empty())
        cfg.schedule = Schedule::GPipe;
      else if (name == "interleaved") {
        cfg.schedule = Schedule::Interleaved;
        if (chunks.getAsInteger(10, cfg.virtual_stages) ||
            cfg.virtual_stages < 2)
          return bad("interleaved:V with V >= 2 model chunks per stage, "
                     "e.g. interleaved:2");
      } else
        return bad("one of 1f1b, gpipe, interleaved:V");
    } else if (key == "recompute") {
      if (value == "none")
        cfg.recompute = Recompute::None;
      else if (value == "selective")
        cfg.recompute = Recompute::Selective;
      else if (value == "full")
        cfg.recompute = Recompute::Full;
      else if (value.consume_front("full:")) {
        cfg.recompute = Recompute::Full;
        if (value.getAsInteger(10, cfg.recompute_layers) ||
            cfg.recompute_layers < 1)
          return bad("full:K with K >= 1 layers per model chunk, e.g. full:4");
      } else
        return bad("one of none, selective, full, full:K (K layers per "
                   "model chunk)");
    } else if (key == "stage-layers") {
      // "stage-layers=22:24:24:26": transformer layers per stage.
      cfg.stage_layers.clear();
      llvm::SmallVector<llvm::StringRef> parts;
      value.split(parts, ':');
      for (llvm::StringRef part : parts) {
        int64_t n;
        if (part.getAsInteger(10, n) || n < 1)
          return bad("layers per stage separated by ':', each >= 1, e.g. "
                     "stage-layers=22:24:24:26");
        cfg.stage_layers.push_back(n);
      }
    } else if (key == "zero") {
      int64_t z;
      if (value.getAsInteger(10, z) || z < 0 || z > 3)
        return bad("0, 1, 2 or 3");
      cfg.zero = static_cast<int>(z);
    } else if (key == "offload") {
      if (value == "none")
        cfg.offload = Offload::None;
      else if (value == "optimizer")
        cfg.offload = Offload::Optimizer;
      else if (value == "params")
        cfg.offload = Offload::Params;
      else if (value == "activations")
        cfg.offload = Offload::Activations;
      else
        return bad("one of none, optimizer, params, activations");
    } else {
      return configError("unknown key '" + key +
                         "' (known keys: " + kKnownKeys + ")");
    }
  }
  return cfg;
}

std::string colossal::cost::toString(const ParallelConfig &c) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "dp=" << c.dp << ",tp=" << c.tp << ",tp-mode=" << tpModeName(c.tp_mode);
  if (c.tp_mode == TpMode::TwoPointFiveD)
    os << ":" << c.tp_depth;
  os << ",tp-sp=" << (c.tp_sp ? 1 : 0) << ",pp=" << c.pp << ",sp=" << c.sp
     << ",sp-mode=" << (c.sp_mode == SpMode::Ring ? "ring" : "ulysses")
     << ",micro-batch=" << c.micro_batch
     << ",schedule=" << scheduleName(c.schedule);
  if (c.schedule == Schedule::Interleaved)
    os << ":" << c.virtual_stages;
  os << ",recompute=" << recomputeName(c.recompute);
  if (c.recompute == Recompute::Full && c.recompute_layers > 0)
    os << ":" << c.recompute_layers;
  os << ",zero=" << c.zero << ",offload=" << offloadName(c.offload);
  if (!c.stage_layers.empty()) {
    os << ",stage-layers=";
    for (size_t i = 0; i < c.stage_layers.size(); ++i)
      os << (i ? ":" : "") << c.stage_layers[i];
  }
  return os.str();
}

//===----------------------------------------------------------------------===//
// Validation
//===----------------------------------------------------------------------===//

llvm::Error colossal::cost::validateParallelConfig(const ParallelConfig &c,
                                                   const Workload &w,
                                                   const ClusterSpec &cl) {
  if (c.devices() != cl.numDevices())
    return configError(
        "dp*tp*pp*sp = " + llvm::Twine(c.dp) + "*" + llvm::Twine(c.tp) + "*" +
        llvm::Twine(c.pp) + "*" + llvm::Twine(c.sp) + " = " +
        llvm::Twine(c.devices()) + " does not match the cluster's " +
        llvm::Twine(cl.numDevices()) + " devices (" + llvm::Twine(cl.nodes) +
        " nodes x " + llvm::Twine(cl.gpus_per_node) + ")");

  int64_t q = c.tpMeshSide();
  if (q == 0) {
    StringRef need = c.tp_mode == TpMode::TwoD     ? "a square (q^2)"
                     : c.tp_mode == TpMode::ThreeD ? "a cube (q^3)"
                                                   : "depth * q^2";
    return configError("tp=" + llvm::Twine(c.tp) + " with tp-mode=" +
                       tpModeName(c.tp_mode) + " must be " + need);
  }
  if (c.tp_sp && c.tp_mode != TpMode::OneD)
    return configError("tp-sp=1 applies to tp-mode=1d only (2d/2.5d/3d "
                       "already split activations)");

  // Heads are split over TP (1D) or over the whole TP mesh, and over the
  // Ulysses group.
  int64_t headDiv = c.tp * (c.sp_mode == SpMode::Ulysses ? c.sp : 1);
  if (w.heads > 0 && w.heads % headDiv != 0)
    return configError((c.sp_mode == SpMode::Ulysses && c.sp > 1
                            ? "tp*sp = " + llvm::Twine(headDiv)
                            : "tp=" + llvm::Twine(c.tp)) +
                       " does not divide the number of heads (" +
                       llvm::Twine(w.heads) + ")");
  if (c.tp > 1 && !w.layers.empty()) {
    // Tensor parallelism splits linear layers (column/row) and attention
    // heads; a model with neither (a CNN: convolutions stay whole) would
    // only replicate its work over the tp ranks.
    bool splittable = false;
    for (const LayerSpec &l : w.layers)
      for (const OpSpec &op : l.ops)
        splittable |= op.tp_role != TpRole::Replicated ||
                      (op.kind == OpKind::Attention && op.heads > 1);
    if (!splittable)
      return configError("tp=" + llvm::Twine(c.tp) +
                         ": the model has no linear layers or attention "
                         "heads that tensor parallelism can split; use dp "
                         "(and zero) instead");
  }
  if (w.hidden > 0 && w.hidden % c.tp != 0)
    return configError("tp=" + llvm::Twine(c.tp) +
                       " does not divide the hidden size (" +
                       llvm::Twine(w.hidden) + ")");
  int64_t seqDiv = c.sp * (c.tp_sp ? c.tp : 1);
  if (w.seq_len % seqDiv != 0)
    return configError("sequence length " + llvm::Twine(w.seq_len) +
                       " is not divisible by " +
                       (c.tp_sp ? "sp*tp = " : "sp = ") + llvm::Twine(seqDiv));

  if (w.layers.empty())
    return configError("the workload has no layers");
  if (w.global_batch < 1 || w.seq_len < 1)
    return configError("the workload's global batch (" +
                       llvm::Twine(w.global_batch) + ") and sequence length (" +
                       llvm::Twine(w.seq_len) + ") must be positive");
  int64_t v = c.schedule == Schedule::Interleaved ? c.virtual_stages : 1;
  int64_t chunks = c.pp * v;
  int64_t blocks = w.blockLayerCount();
  if (!c.stage_layers.empty()) {
    if (v != 1)
      return configError("stage-layers applies to schedule=1f1b or gpipe");
    if (static_cast<int64_t>(c.stage_layers.size()) != c.pp)
      return configError("stage-layers lists " +
                         llvm::Twine(c.stage_layers.size()) +
                         " stages but pp=" + llvm::Twine(c.pp));
    int64_t sum = 0;
    for (int64_t n : c.stage_layers)
      sum += n;
    if (sum != blocks)
      return configError("stage-layers add up to " + llvm::Twine(sum) +
                         " but the model has " + llvm::Twine(blocks) +
                         " layers");
  } else if (blocks % chunks != 0)
    return configError("layers (" + llvm::Twine(blocks) +
                       ") not divisible by pp*v = " + llvm::Twine(c.pp) + "*" +
                       llvm::Twine(v) + " = " + llvm::Twine(chunks));
  if (chunks > 1 && blocks < chunks)
    return configError("pp*v = " + llvm::Twine(chunks) +
                       " exceeds the number of layers (" + llvm::Twine(blocks) +
                       ")");

  int64_t perStep = c.dp * c.micro_batch;
  if (w.global_batch % perStep != 0)
    return configError(
        "global batch " + llvm::Twine(w.global_batch) +
        " not divisible by dp*micro_batch = " + llvm::Twine(c.dp) + "*" +
        llvm::Twine(c.micro_batch) + " = " + llvm::Twine(perStep));
  int64_t m = w.global_batch / perStep;
  if (c.schedule == Schedule::Interleaved) {
    if (c.pp < 2)
      return configError("schedule=interleaved needs pp >= 2");
    if (m % c.pp != 0)
      return configError("schedule=interleaved needs the micro-batch count (" +
                         llvm::Twine(m) +
                         " = global batch / (dp*micro_batch)"
                         ") to be a multiple of pp (" +
                         llvm::Twine(c.pp) + ")");
  }
  if (c.offload == Offload::Params && c.zero != 3)
    return configError("offload=params needs zero=3 (parameters are "
                       "partitioned and fetched per layer)");
  return llvm::Error::success();
}
