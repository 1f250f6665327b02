//===- Ilp.cpp - Choosing one sharding strategy per node with an ILP ------===//
//
// Steps: (1) validate the problem, (2) pre-solve: rule out strategies that
// cannot fit the memory budget, fold self-loops, parallel edges and edges
// whose cost separates into node costs, and settle nodes left with one
// strategy, (3) find a feasible start by greedy descent, (4) hand the rest to
// CBC as binaries x[v][s] with sum_s x[v][s] = 1 and, per coupled edge,
// continuous y[e][s][t] >= 0 whose marginals equal x on both ends (exact for
// 0/1 x and tighter than the big-M linearization), (5) read back the choice,
// re-evaluate it on the original problem, and report CBC's proven bound.
//
//===----------------------------------------------------------------------===//

#include "compiler/search/Ilp.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include "coin/Cbc_C_Interface.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>

using namespace colossal;
using namespace colossal::search;

namespace {

using Clock = std::chrono::steady_clock;

llvm::Error ilpError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string nodeLabel(const IlpProblem &problem, int v) {
  std::string label = "node " + std::to_string(v);
  if (!problem.nodes[v].name.empty())
    label += " ('" + problem.nodes[v].name + "')";
  return label;
}

std::string formatNumber(double value) {
  std::string text;
  llvm::raw_string_ostream os(text);
  if (std::isfinite(value) && value == std::floor(value) &&
      std::fabs(value) < 1e15)
    os << llvm::format("%.0f", value);
  else
    os << llvm::format("%.6g", value);
  return text;
}

std::string formatBytes(double bytes) {
  std::string text = formatNumber(bytes) + " bytes";
  if (std::fabs(bytes) >= (1 << 20)) {
    llvm::raw_string_ostream os(text);
    double gib = bytes / (1024.0 * 1024.0 * 1024.0);
    if (std::fabs(gib) >= 1)
      os << llvm::format(" (%.2f GiB)", gib);
    else
      os << llvm::format(" (%.2f MiB)", bytes / (1024.0 * 1024.0));
  }
  return text;
}

double strategyMemory(const IlpProblem::Node &node, int s) {
  return node.memory.empty() ? 0.0 : node.memory[s];
}

bool hasBudget(const IlpProblem &problem) {
  return problem.memoryBudget > 0 && std::isfinite(problem.memoryBudget);
}

llvm::Error validate(const IlpProblem &problem) {
  const int numNodes = static_cast<int>(problem.nodes.size());
  for (int v = 0; v < numNodes; ++v) {
    const IlpProblem::Node &node = problem.nodes[v];
    if (node.cost.empty())
      return ilpError(nodeLabel(problem, v) +
                      " has no strategies; give it at least one cost");
    if (!node.memory.empty() && node.memory.size() != node.cost.size())
      return ilpError(nodeLabel(problem, v) + " has " +
                      llvm::Twine(node.cost.size()) + " costs but " +
                      llvm::Twine(node.memory.size()) +
                      " memory entries; give one memory per strategy or none");
    for (size_t s = 0; s < node.cost.size(); ++s) {
      if (!std::isfinite(node.cost[s]))
        return ilpError(nodeLabel(problem, v) + " strategy " + llvm::Twine(s) +
                        " has a non-finite cost (" +
                        formatNumber(node.cost[s]) + ")");
      double memory = strategyMemory(node, s);
      if (!std::isfinite(memory) || memory < 0)
        return ilpError(nodeLabel(problem, v) + " strategy " + llvm::Twine(s) +
                        " has an invalid memory (" + formatNumber(memory) +
                        " bytes); memory must be finite and >= 0");
    }
  }
  for (size_t e = 0; e < problem.edges.size(); ++e) {
    const IlpProblem::Edge &edge = problem.edges[e];
    if (edge.from < 0 || edge.from >= numNodes || edge.to < 0 ||
        edge.to >= numNodes)
      return ilpError("edge " + llvm::Twine(e) + " goes from node " +
                      llvm::Twine(edge.from) + " to node " +
                      llvm::Twine(edge.to) + ", but the problem has " +
                      llvm::Twine(numNodes) + " nodes");
    size_t rows = problem.nodes[edge.from].cost.size();
    size_t cols = problem.nodes[edge.to].cost.size();
    std::string where = "edge " + std::to_string(e) + " (" +
                        nodeLabel(problem, edge.from) + " -> " +
                        nodeLabel(problem, edge.to) + ")";
    if (edge.cost.size() != rows)
      return ilpError(where + " has " + llvm::Twine(edge.cost.size()) +
                      " cost rows, but its source has " + llvm::Twine(rows) +
                      " strategies; give one row per source strategy");
    for (size_t s = 0; s < rows; ++s) {
      if (edge.cost[s].size() != cols)
        return ilpError(where + " row " + llvm::Twine(s) + " has " +
                        llvm::Twine(edge.cost[s].size()) +
                        " costs, but its target has " + llvm::Twine(cols) +
                        " strategies; give one cost per target strategy");
      for (size_t t = 0; t < cols; ++t)
        if (!std::isfinite(edge.cost[s][t]))
          return ilpError(where + " has a non-finite cost (" +
                          formatNumber(edge.cost[s][t]) + ") at [" +
                          llvm::Twine(s) + "][" + llvm::Twine(t) + "]");
    }
  }
  if (std::isnan(problem.memoryBudget))
    return ilpError("the memory budget is NaN; give a byte count, or <= 0 "
                    "for no memory constraint");
  return llvm::Error::success();
}

/// The smallest memory any choice can use; fails when even that exceeds the
/// budget, naming the node that needs the most.
llvm::Error checkMemoryFits(const IlpProblem &problem) {
  if (!hasBudget(problem))
    return llvm::Error::success();
  double total = 0, largest = -1;
  int largestNode = 0;
  for (size_t v = 0; v < problem.nodes.size(); ++v) {
    const IlpProblem::Node &node = problem.nodes[v];
    double least = std::numeric_limits<double>::infinity();
    for (size_t s = 0; s < node.cost.size(); ++s)
      least = std::min(least, strategyMemory(node, s));
    total += least;
    if (least > largest) {
      largest = least;
      largestNode = static_cast<int>(v);
    }
  }
  if (total <= problem.memoryBudget)
    return llvm::Error::success();
  return ilpError(
      "no choice fits the memory budget: the smallest possible memory is " +
      formatBytes(total) + " > budget " + formatBytes(problem.memoryBudget) +
      " (the largest share is " + nodeLabel(problem, largestNode) +
      ", at least " + formatBytes(largest) +
      "); raise the budget or offer strategies that use less memory");
}

//===----------------------------------------------------------------------===//
// Pre-solve
//===----------------------------------------------------------------------===//

/// An edge between two undecided nodes whose cost does not separate.
struct CoupledEdge {
  int a = 0, b = 0;         ///< a < b, indices into the original nodes
  std::vector<double> cost; ///< [s of a][t of b], row-major, shifted to min 0
};

/// What is left for CBC after pre-solving, in reduced terms: the objective of
/// a choice is `constant` plus the reduced node and coupled edge costs, all of
/// which are >= 0, so `constant` is a valid lower bound.
struct Reduced {
  double constant = 0;
  std::vector<std::vector<double>> nodeCost;
  std::vector<std::vector<int>> allowed; ///< strategies that can fit
  std::vector<CoupledEdge> edges;
  /// Per node, the coupled edges it is on.
  std::vector<std::vector<int>> incident;
  /// Memory row in excess over each node's least memory; `hasMemoryRow` is
  /// false when every remaining choice fits.
  bool hasMemoryRow = false;
  std::vector<std::vector<double>> excess;
  double slack = 0;
  /// The row is divided by max(slack, largest allowed excess) (> 0 when the
  /// row exists) so that its coefficients are at most about 1.
  double memoryScale = 0;
};

Reduced presolve(const IlpProblem &problem) {
  const int numNodes = static_cast<int>(problem.nodes.size());
  Reduced r;
  r.nodeCost.resize(numNodes);
  r.allowed.resize(numNodes);
  r.excess.resize(numNodes);
  r.incident.resize(numNodes);

  // Rule out strategies that cannot fit even with every other node at its
  // least memory. Conservative by a relative 1e-12 so rounding never removes
  // a strategy that fits.
  std::vector<double> least(numNodes, 0);
  double leastTotal = 0;
  for (int v = 0; v < numNodes; ++v) {
    const IlpProblem::Node &node = problem.nodes[v];
    r.nodeCost[v] = node.cost;
    least[v] = std::numeric_limits<double>::infinity();
    for (size_t s = 0; s < node.cost.size(); ++s)
      least[v] = std::min(least[v], strategyMemory(node, s));
    leastTotal += least[v];
  }
  const bool budget = hasBudget(problem);
  r.slack = budget ? problem.memoryBudget - leastTotal : 0;
  r.memoryScale = r.slack;
  const double tolerance = budget ? 1e-12 * problem.memoryBudget : 0;
  double largestExcessTotal = 0;
  for (int v = 0; v < numNodes; ++v) {
    const IlpProblem::Node &node = problem.nodes[v];
    double largestExcess = 0;
    r.excess[v].assign(node.cost.size(), 0);
    for (int s = 0, e = static_cast<int>(node.cost.size()); s < e; ++s) {
      double excess = strategyMemory(node, s) - least[v];
      r.excess[v][s] = excess;
      if (budget && excess > r.slack + tolerance)
        continue;
      r.allowed[v].push_back(s);
      largestExcess = std::max(largestExcess, excess);
    }
    largestExcessTotal += largestExcess;
  }
  // Kept when in doubt; a row that never binds costs CBC little.
  r.hasMemoryRow = budget && largestExcessTotal > r.slack;
  if (r.hasMemoryRow)
    for (int v = 0; v < numNodes; ++v)
      for (int s : r.allowed[v])
        r.memoryScale = std::max(r.memoryScale, r.excess[v][s]);

  // Self-loops add their diagonal to the node; parallel edges merge, oriented
  // from the lower index.
  std::map<std::pair<int, int>, std::vector<double>> merged;
  for (const IlpProblem::Edge &edge : problem.edges) {
    int u = edge.from, v = edge.to;
    if (u == v) {
      for (size_t s = 0; s < r.nodeCost[u].size(); ++s)
        r.nodeCost[u][s] += edge.cost[s][s];
      continue;
    }
    int a = std::min(u, v), b = std::max(u, v);
    size_t rows = problem.nodes[a].cost.size();
    size_t cols = problem.nodes[b].cost.size();
    std::vector<double> &matrix = merged[{a, b}];
    matrix.resize(rows * cols, 0.0);
    for (size_t s = 0; s < rows; ++s)
      for (size_t t = 0; t < cols; ++t)
        matrix[s * cols + t] += u == a ? edge.cost[s][t] : edge.cost[t][s];
  }

  // An edge whose cost is f(s) + g(t) over the allowed strategies (zero,
  // constant, or touching a node with one allowed strategy) is folded into
  // the two nodes.
  for (auto &[key, matrix] : merged) {
    auto [a, b] = key;
    size_t cols = problem.nodes[b].cost.size();
    auto at = [&](int s, int t) { return matrix[s * cols + t]; };
    int s0 = r.allowed[a].front(), t0 = r.allowed[b].front();
    bool separable = true;
    for (int s : r.allowed[a]) {
      for (int t : r.allowed[b]) {
        double folded = at(s, t0) + at(s0, t) - at(s0, t0);
        double scale = std::fabs(at(s, t)) + std::fabs(at(s, t0)) +
                       std::fabs(at(s0, t)) + std::fabs(at(s0, t0));
        if (std::fabs(folded - at(s, t)) > 1e-13 * scale) {
          separable = false;
          break;
        }
      }
      if (!separable)
        break;
    }
    if (separable) {
      for (int s : r.allowed[a])
        r.nodeCost[a][s] += at(s, t0);
      for (int t : r.allowed[b])
        r.nodeCost[b][t] += at(s0, t) - at(s0, t0);
      continue;
    }
    double lowest = std::numeric_limits<double>::infinity();
    for (int s : r.allowed[a])
      for (int t : r.allowed[b])
        lowest = std::min(lowest, at(s, t));
    CoupledEdge coupled;
    coupled.a = a;
    coupled.b = b;
    coupled.cost = std::move(matrix);
    for (double &c : coupled.cost)
      c -= lowest;
    r.constant += lowest;
    r.incident[a].push_back(static_cast<int>(r.edges.size()));
    r.incident[b].push_back(static_cast<int>(r.edges.size()));
    r.edges.push_back(std::move(coupled));
  }

  // Shift node costs to a minimum of 0 so that the constant is a bound and
  // CBC sees well-scaled coefficients.
  for (int v = 0; v < numNodes; ++v) {
    double lowest = std::numeric_limits<double>::infinity();
    for (int s : r.allowed[v])
      lowest = std::min(lowest, r.nodeCost[v][s]);
    for (double &c : r.nodeCost[v])
      c -= lowest;
    r.constant += lowest;
  }
  return r;
}

double edgeCost(const Reduced &r, const CoupledEdge &edge, int s, int t) {
  return edge.cost[s * r.nodeCost[edge.b].size() + t];
}

/// Cost of strategy `s` at `v` given the current choice of its neighbours.
double localCost(const Reduced &r, const std::vector<int> &choice, int v,
                 int s) {
  double cost = r.nodeCost[v][s];
  for (int e : r.incident[v]) {
    const CoupledEdge &edge = r.edges[e];
    cost += edge.a == v ? edgeCost(r, edge, s, choice[edge.b])
                        : edgeCost(r, edge, choice[edge.a], s);
  }
  return cost;
}

/// A feasible choice to start from: each node's cheapest strategy (or, when
/// that breaks the budget, its smallest), improved one node at a time while
/// the memory still fits.
std::vector<int> greedyStart(const Reduced &r) {
  const int numNodes = static_cast<int>(r.nodeCost.size());
  std::vector<int> choice(numNodes);
  double used = 0;
  for (int v = 0; v < numNodes; ++v) {
    int best = r.allowed[v].front();
    for (int s : r.allowed[v])
      if (r.nodeCost[v][s] < r.nodeCost[v][best])
        best = s;
    choice[v] = best;
    used += r.excess[v][best];
  }
  if (r.hasMemoryRow && used > r.slack) {
    used = 0;
    for (int v = 0; v < numNodes; ++v) {
      int best = r.allowed[v].front();
      for (int s : r.allowed[v])
        if (r.excess[v][s] < r.excess[v][best] ||
            (r.excess[v][s] == r.excess[v][best] &&
             r.nodeCost[v][s] < r.nodeCost[v][best]))
          best = s;
      choice[v] = best;
      used += r.excess[v][best];
    }
  }
  for (int sweep = 0; sweep < 50; ++sweep) {
    bool improved = false;
    for (int v = 0; v < numNodes; ++v) {
      int current = choice[v];
      double currentCost = localCost(r, choice, v, current);
      for (int s : r.allowed[v]) {
        double delta = r.excess[v][s] - r.excess[v][current];
        if (r.hasMemoryRow && used + delta > r.slack)
          continue;
        double cost = localCost(r, choice, v, s);
        if (cost < currentCost - 1e-15 * std::fabs(currentCost)) {
          used += delta;
          current = s;
          currentCost = cost;
          improved = true;
        }
      }
      choice[v] = current;
    }
    if (!improved)
      break;
  }
  return choice;
}

//===----------------------------------------------------------------------===//
// CBC
//===----------------------------------------------------------------------===//

/// The program handed to CBC, column-major.
struct Program {
  std::vector<std::vector<std::pair<int, double>>> columns;
  std::vector<double> objective, columnUpper, rowLower, rowUpper;
  std::vector<bool> integer;
  std::vector<std::vector<int>> xColumn;  ///< [node][strategy] -> column or -1
  std::vector<std::vector<int>> yColumns; ///< [edge][s * cols + t] -> column

  int addColumn(double cost, bool isInteger) {
    columns.emplace_back();
    objective.push_back(cost);
    columnUpper.push_back(1.0);
    integer.push_back(isInteger);
    return static_cast<int>(columns.size()) - 1;
  }
  int addRow(double lower, double upper) {
    rowLower.push_back(lower);
    rowUpper.push_back(upper);
    return static_cast<int>(rowLower.size()) - 1;
  }
};

Program buildProgram(const Reduced &r, const std::vector<bool> &free) {
  const int numNodes = static_cast<int>(r.nodeCost.size());
  Program p;
  p.xColumn.resize(numNodes);
  for (int v = 0; v < numNodes; ++v) {
    p.xColumn[v].assign(r.nodeCost[v].size(), -1);
    if (!free[v])
      continue;
    int row = p.addRow(1.0, 1.0);
    for (int s : r.allowed[v]) {
      int column = p.addColumn(r.nodeCost[v][s], /*isInteger=*/true);
      p.xColumn[v][s] = column;
      p.columns[column].push_back({row, 1.0});
    }
  }
  p.yColumns.resize(r.edges.size());
  for (size_t e = 0; e < r.edges.size(); ++e) {
    const CoupledEdge &edge = r.edges[e];
    size_t cols = r.nodeCost[edge.b].size();
    p.yColumns[e].assign(r.nodeCost[edge.a].size() * cols, -1);
    // sum_t y[s][t] - x[a][s] = 0 and sum_s y[s][t] - x[b][t] = 0.
    std::map<int, int> rowOfA, rowOfB;
    for (int s : r.allowed[edge.a]) {
      rowOfA[s] = p.addRow(0.0, 0.0);
      p.columns[p.xColumn[edge.a][s]].push_back({rowOfA[s], -1.0});
    }
    for (int t : r.allowed[edge.b]) {
      rowOfB[t] = p.addRow(0.0, 0.0);
      p.columns[p.xColumn[edge.b][t]].push_back({rowOfB[t], -1.0});
    }
    for (int s : r.allowed[edge.a]) {
      for (int t : r.allowed[edge.b]) {
        int column = p.addColumn(edgeCost(r, edge, s, t), /*isInteger=*/false);
        p.yColumns[e][s * cols + t] = column;
        p.columns[column].push_back({rowOfA[s], 1.0});
        p.columns[column].push_back({rowOfB[t], 1.0});
      }
    }
  }
  if (r.hasMemoryRow) {
    // sum over nodes of (memory - least memory) <= budget - least total.
    int row = p.addRow(-std::numeric_limits<double>::infinity(),
                       r.slack / r.memoryScale);
    for (int v = 0; v < numNodes; ++v) {
      if (!free[v])
        continue;
      for (int s : r.allowed[v])
        if (r.excess[v][s] > 0)
          p.columns[p.xColumn[v][s]].push_back(
              {row, r.excess[v][s] / r.memoryScale});
    }
  }
  return p;
}

struct CbcResult {
  bool haveChoice = false;
  std::vector<int> choice;
  bool optimal = false;
  double bound = -std::numeric_limits<double>::infinity(); ///< reduced terms
};

std::string formatDouble(double value) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::format("%.17g", value);
  return text;
}

CbcResult runCbc(const Reduced &r, const std::vector<bool> &free,
                 const Program &p, const std::vector<int> &start,
                 double seconds) {
  // Objective scaled so that its largest coefficient is 1: CBC's absolute
  // tolerances then mean the same thing for microsecond and second costs.
  double largest = 0;
  for (double c : p.objective)
    largest = std::max(largest, std::fabs(c));
  const double scale = largest > 0 ? 1.0 / largest : 1.0;

  const int numColumns = static_cast<int>(p.columns.size());
  const int numRows = static_cast<int>(p.rowLower.size());
  std::vector<CoinBigIndex> starts{0};
  std::vector<int> indices;
  std::vector<double> values, lower(numColumns, 0.0), objective;
  for (int c = 0; c < numColumns; ++c) {
    for (auto [row, value] : p.columns[c]) {
      indices.push_back(row);
      values.push_back(value);
    }
    starts.push_back(static_cast<CoinBigIndex>(indices.size()));
    objective.push_back(p.objective[c] * scale);
  }

  // The start: x and y of the greedy choice.
  std::vector<double> startValues(numColumns, 0.0);
  for (int v = 0, e = static_cast<int>(free.size()); v < e; ++v)
    if (free[v])
      startValues[p.xColumn[v][start[v]]] = 1.0;
  for (size_t e = 0; e < r.edges.size(); ++e) {
    const CoupledEdge &edge = r.edges[e];
    size_t cols = r.nodeCost[edge.b].size();
    startValues[p.yColumns[e][start[edge.a] * cols + start[edge.b]]] = 1.0;
  }
  std::vector<int> allColumns(numColumns);
  for (int c = 0; c < numColumns; ++c)
    allColumns[c] = c;

  // CbcMain1, behind Cbc_solve, keeps global state; one solve at a time.
  static std::mutex cbcMutex;
  std::lock_guard<std::mutex> lock(cbcMutex);

  Cbc_Model *model = Cbc_newModel();
  Cbc_loadProblem(model, numColumns, numRows, starts.data(), indices.data(),
                  values.data(), lower.data(), p.columnUpper.data(),
                  objective.data(), p.rowLower.data(), p.rowUpper.data());
  for (int c = 0; c < numColumns; ++c)
    if (p.integer[c])
      Cbc_setInteger(model, c);
  Cbc_setParameter(model, "logLevel", "0");
  Cbc_setParameter(model, "slogLevel", "0");
  // Wall-clock seconds (CBC counts CPU time by default). CBC checks the limit
  // between steps: the root LP itself is not interrupted.
  Cbc_setParameter(model, "timeMode", "elapsed");
  Cbc_setParameter(model, "seconds", formatDouble(seconds).c_str());
  // Clp's presolve gains nothing on the marginal rows and, measured on
  // 100-300 node graphs, doubles the root LP's time.
  Cbc_setParameter(model, "presolve", "off");
  // Prove optimality to CBC's absolute gap, not to a percentage.
  Cbc_setParameter(model, "ratioGap", "0");
  Cbc_setParameter(model, "allowableGap", "1e-10");
  Cbc_setMIPStartI(model, numColumns, allColumns.data(), startValues.data());
  Cbc_solve(model);

  CbcResult result;
  const double *solution = Cbc_bestSolution(model);
  if (solution) {
    result.haveChoice = true;
    result.choice = start;
    for (int v = 0, e = static_cast<int>(free.size()); v < e; ++v) {
      if (!free[v])
        continue;
      int best = r.allowed[v].front();
      for (int s : r.allowed[v])
        if (solution[p.xColumn[v][s]] > solution[p.xColumn[v][best]])
          best = s;
      result.choice[v] = best;
    }
  }
  result.optimal = solution && Cbc_isProvenOptimal(model) &&
                   !Cbc_isProvenInfeasible(model) && !Cbc_isAbandoned(model);
  double bound = Cbc_getBestPossibleObjValue(model);
  if (std::isfinite(bound) && std::fabs(bound) < 1e40)
    result.bound = bound / scale;
  Cbc_deleteModel(model);
  return result;
}

bool fitsBudget(const IlpProblem &problem, const std::vector<int> &choice) {
  return !hasBudget(problem) ||
         choiceMemory(problem, choice) <= problem.memoryBudget;
}

void finish(IlpSolution &solution, Clock::time_point start) {
  if (solution.optimal)
    solution.bound = solution.objective;
  solution.bound = std::min(solution.bound, solution.objective);
  solution.gap = solution.optimal
                     ? 0.0
                     : (solution.objective - solution.bound) /
                           std::max(std::fabs(solution.objective), 1e-12);
  solution.seconds = secondsSince(start);
}

} // namespace

/// Whether `choice` picks one existing strategy for every node.
static bool isValidChoice(const IlpProblem &problem,
                          const std::vector<int> &choice) {
  if (choice.size() != problem.nodes.size())
    return false;
  for (size_t v = 0; v < problem.nodes.size(); ++v)
    if (choice[v] < 0 ||
        choice[v] >= static_cast<int>(problem.nodes[v].cost.size()))
      return false;
  return true;
}

double colossal::search::evaluateChoice(const IlpProblem &problem,
                                        const std::vector<int> &choice) {
  if (!isValidChoice(problem, choice))
    return std::numeric_limits<double>::quiet_NaN();
  double total = 0;
  for (size_t v = 0; v < problem.nodes.size(); ++v)
    total += problem.nodes[v].cost[choice[v]];
  for (const IlpProblem::Edge &edge : problem.edges)
    total += edge.cost[choice[edge.from]][choice[edge.to]];
  return total;
}

double colossal::search::choiceMemory(const IlpProblem &problem,
                                      const std::vector<int> &choice) {
  if (!isValidChoice(problem, choice))
    return std::numeric_limits<double>::quiet_NaN();
  double total = 0;
  for (size_t v = 0; v < problem.nodes.size(); ++v)
    total += strategyMemory(problem.nodes[v], choice[v]);
  return total;
}

llvm::Expected<IlpSolution>
colossal::search::solveIlp(const IlpProblem &problem, double timeLimitSeconds) {
  Clock::time_point start = Clock::now();
  if (!(timeLimitSeconds > 0))
    return ilpError("the ILP time limit must be positive, got " +
                    formatNumber(timeLimitSeconds) + " seconds");
  if (llvm::Error error = validate(problem))
    return std::move(error);
  if (llvm::Error error = checkMemoryFits(problem))
    return std::move(error);

  Reduced reduced = presolve(problem);
  const int numNodes = static_cast<int>(problem.nodes.size());
  std::vector<bool> free(numNodes);
  bool anyFree = false;
  for (int v = 0; v < numNodes; ++v) {
    free[v] = reduced.allowed[v].size() > 1;
    anyFree |= free[v];
  }

  IlpSolution solution;
  std::vector<int> greedy = greedyStart(reduced);
  solution.choice = greedy;
  solution.bound = reduced.constant;
  // With no coupled edge and no binding memory row, each node's cheapest
  // strategy is optimal: the greedy start already is the answer.
  if (!anyFree || (reduced.edges.empty() && !reduced.hasMemoryRow)) {
    solution.objective = evaluateChoice(problem, solution.choice);
    solution.optimal = true;
    finish(solution, start);
    return solution;
  }

  Program program = buildProgram(reduced, free);
  solution.variables = static_cast<int64_t>(program.columns.size());
  solution.constraints = static_cast<int64_t>(program.rowLower.size());
  double remaining = std::max(timeLimitSeconds - secondsSince(start), 1e-3);
  CbcResult cbc = runCbc(reduced, free, program, greedy, remaining);

  // Keep CBC's choice unless rounding let it past the budget or it is no
  // better than the start (CBC stopped early without improving on it).
  solution.objective = evaluateChoice(problem, greedy);
  solution.optimal = false;
  if (cbc.haveChoice && fitsBudget(problem, cbc.choice)) {
    double objective = evaluateChoice(problem, cbc.choice);
    if (cbc.optimal || objective <= solution.objective) {
      solution.choice = cbc.choice;
      solution.objective = objective;
      solution.optimal = cbc.optimal;
    }
  }
  if (std::isfinite(cbc.bound))
    solution.bound = reduced.constant + std::max(0.0, cbc.bound);
  finish(solution, start);
  return solution;
}

llvm::Expected<IlpSolution>
colossal::search::solveBruteForce(const IlpProblem &problem) {
  Clock::time_point start = Clock::now();
  if (llvm::Error error = validate(problem))
    return std::move(error);
  const double limit = 1e6;
  double combinations = 1;
  for (const IlpProblem::Node &node : problem.nodes)
    combinations *= static_cast<double>(node.cost.size());
  if (combinations > limit)
    return ilpError("brute force refuses " + formatNumber(combinations) +
                    " combinations (more than " + formatNumber(limit) +
                    "); use solveIlp");
  if (llvm::Error error = checkMemoryFits(problem))
    return std::move(error);

  IlpSolution solution;
  solution.objective = std::numeric_limits<double>::infinity();
  std::vector<int> choice(problem.nodes.size(), 0);
  while (true) {
    if (fitsBudget(problem, choice)) {
      double objective = evaluateChoice(problem, choice);
      if (objective < solution.objective) {
        solution.objective = objective;
        solution.choice = choice;
      }
    }
    // Next combination, odometer style.
    size_t v = 0;
    for (; v < choice.size(); ++v) {
      if (++choice[v] < static_cast<int>(problem.nodes[v].cost.size()))
        break;
      choice[v] = 0;
    }
    if (v == choice.size())
      break;
  }
  // checkMemoryFits guarantees the least-memory choice fits.
  solution.optimal = true;
  finish(solution, start);
  return solution;
}
