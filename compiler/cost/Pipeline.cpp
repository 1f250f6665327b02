//===- Pipeline.cpp - Pipeline schedules: bubbles and in-flight work ------===//

#include "compiler/cost/Pipeline.h"

#include <algorithm>
#include <cstddef>
#include <string>
#include <unordered_map>

using namespace colossal::cost;

double colossal::cost::bubbleFraction(Schedule s, int64_t p, int64_t m,
                                      int64_t v) {
  if (m <= 0)
    return 0;
  double vv = s == Schedule::Interleaved ? static_cast<double>(v) : 1.0;
  return static_cast<double>(p - 1) / static_cast<double>(m) / vv;
}

double colossal::cost::inFlightMicroBatches(Schedule s, int64_t p, int64_t m,
                                            int64_t v, int64_t stage) {
  switch (s) {
  case Schedule::GPipe:
    return static_cast<double>(m);
  case Schedule::OneFOneB:
    return static_cast<double>(std::min(p - stage, m));
  case Schedule::Interleaved: {
    int64_t chunks = std::min(m * v, 2 * (p - stage - 1) + (v - 1) * p + 1);
    return static_cast<double>(chunks) / static_cast<double>(v);
  }
  }
  return static_cast<double>(m);
}

PipelineTime colossal::cost::pipelineTime(llvm::ArrayRef<double> stageTimes,
                                          int64_t m, int64_t v) {
  PipelineTime t;
  double sum = 0, mx = 0;
  for (double x : stageTimes) {
    sum += x;
    mx = std::max(mx, x);
  }
  t.steady = static_cast<double>(m) * mx;
  t.bubble = (sum - mx) / static_cast<double>(std::max<int64_t>(v, 1));
  return t;
}

std::vector<ScheduleEntry> colossal::cost::scheduleOrder(Schedule s, int64_t p,
                                                         int64_t v, int64_t m,
                                                         int64_t stage,
                                                         bool training) {
  std::vector<ScheduleEntry> fwd, bwd;
  int64_t virt = s == Schedule::Interleaved ? std::max<int64_t>(v, 1) : 1;
  int64_t total = m * virt, warmup;
  if (virt > 1) {
    for (int64_t k = 0; k < total; ++k) {
      int64_t micro = (k / (p * virt)) * p + k % p;
      int64_t chunk = (k / p) % virt;
      fwd.push_back({false, chunk * p + stage, micro});
      bwd.push_back({true, (virt - 1 - chunk) * p + stage, micro});
    }
    warmup = std::min((p - stage - 1) * 2 + (virt - 1) * p, total);
  } else {
    for (int64_t micro = 0; micro < m; ++micro) {
      fwd.push_back({false, stage, micro});
      bwd.push_back({true, stage, micro});
    }
    warmup = s == Schedule::GPipe ? m : std::min(p - stage - 1, m);
  }
  if (!training)
    return fwd;
  std::vector<ScheduleEntry> out(fwd.begin(), fwd.begin() + warmup);
  int64_t f = warmup, b = 0;
  for (; f < total; ++f, ++b) {
    out.push_back(fwd[f]);
    out.push_back(bwd[b]);
  }
  for (; b < total; ++b)
    out.push_back(bwd[b]);
  return out;
}

ScheduleRun colossal::cost::simulateSchedule(Schedule s,
                                             llvm::ArrayRef<double> fwd,
                                             llvm::ArrayRef<double> bwd,
                                             int64_t m, int64_t v, double hop) {
  const int64_t p = static_cast<int64_t>(fwd.size());
  const int64_t virt = s == Schedule::Interleaved ? std::max<int64_t>(v, 1) : 1;
  const int64_t chunks = p * virt;
  ScheduleRun run;
  run.busy.assign(static_cast<size_t>(p), 0.0);
  if (p == 0 || m <= 0)
    return run;
  // When each (phase, chunk, micro-batch) finished; < 0: not yet.
  auto index = [&](bool backward, int64_t chunk, int64_t micro) {
    return (static_cast<size_t>(backward) * static_cast<size_t>(chunks) +
            static_cast<size_t>(chunk)) *
               static_cast<size_t>(m) +
           static_cast<size_t>(micro);
  };
  std::vector<double> done(2 * static_cast<size_t>(chunks * m), -1.0);
  std::vector<std::vector<ScheduleEntry>> order;
  for (int64_t i = 0; i < p; ++i)
    order.push_back(scheduleOrder(s, p, virt, m, i));
  std::vector<size_t> next(static_cast<size_t>(p), 0);
  std::vector<double> freeAt(static_cast<size_t>(p), 0.0);
  // Its input's arrival, or < 0 while it is not made yet.
  auto ready = [&](const ScheduleEntry &e) -> double {
    if (!e.backward)
      return e.chunk == 0
                 ? 0.0
                 : (done[index(false, e.chunk - 1, e.micro)] < 0
                        ? -1.0
                        : done[index(false, e.chunk - 1, e.micro)] + hop);
    if (e.chunk == chunks - 1) // the loss: on this stage, no hop
      return done[index(false, e.chunk, e.micro)];
    double g = done[index(true, e.chunk + 1, e.micro)];
    return g < 0 ? -1.0 : g + hop;
  };
  for (bool progress = true; progress;) {
    progress = false;
    for (int64_t i = 0; i < p; ++i) {
      auto &mine = order[static_cast<size_t>(i)];
      size_t &k = next[static_cast<size_t>(i)];
      while (k < mine.size()) {
        const ScheduleEntry &e = mine[k];
        double at = ready(e);
        if (at < 0)
          break;
        double dur = (e.backward ? bwd[static_cast<size_t>(i)]
                                 : fwd[static_cast<size_t>(i)]) /
                     static_cast<double>(virt);
        double start = std::max(at, freeAt[static_cast<size_t>(i)]);
        freeAt[static_cast<size_t>(i)] = start + dur;
        done[index(e.backward, e.chunk, e.micro)] = start + dur;
        run.busy[static_cast<size_t>(i)] += dur;
        ++k;
        progress = true;
      }
    }
  }
  for (double t : freeAt)
    run.makespan = std::max(run.makespan, t);
  return run;
}

static double makespanOf(Schedule s, llvm::ArrayRef<double> fwd,
                         llvm::ArrayRef<double> bwd, int64_t m, int64_t v,
                         double hop, int64_t p) {
  // Whole blocks of d = 2p micro-batches (a multiple of the steady state's
  // period, p or a divisor of 2p) from m2 in [4p, 6p) up to m.
  const int64_t d = 2 * p;
  if (m < 6 * p)
    return simulateSchedule(s, fwd, bwd, m, v, hop).makespan;
  int64_t blocks = (m - 4 * p) / d;
  int64_t m2 = m - blocks * d, m1 = m2 - d;
  double t1 = simulateSchedule(s, fwd, bwd, m1, v, hop).makespan;
  double t2 = simulateSchedule(s, fwd, bwd, m2, v, hop).makespan;
  return t2 + static_cast<double>(blocks) * (t2 - t1);
}

double colossal::cost::scheduleMakespan(Schedule s, llvm::ArrayRef<double> fwd,
                                        llvm::ArrayRef<double> bwd, int64_t m,
                                        int64_t v, double hop) {
  const int64_t p = static_cast<int64_t>(fwd.size());
  // The search asks again for the same stages under other memory savers
  // (ZeRO stages and offload change no stage's time): remembered by value.
  thread_local std::unordered_map<std::string, double> seen;
  std::string key;
  auto put = [&](const void *data, size_t bytes) {
    key.append(static_cast<const char *>(data), bytes);
  };
  int64_t header[] = {static_cast<int64_t>(s), m, v};
  put(header, sizeof header);
  put(&hop, sizeof hop);
  put(fwd.data(), fwd.size() * sizeof(double));
  put(bwd.data(), bwd.size() * sizeof(double));
  if (auto it = seen.find(key); it != seen.end())
    return it->second;
  if (seen.size() > (1u << 16))
    seen.clear();
  double &result = seen[key];
  result = makespanOf(s, fwd, bwd, m, v, hop, p);
  return result;
}
