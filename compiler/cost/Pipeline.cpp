//===- Pipeline.cpp - Pipeline schedules: bubbles and in-flight work ------===//

#include "compiler/cost/Pipeline.h"

#include <algorithm>

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
