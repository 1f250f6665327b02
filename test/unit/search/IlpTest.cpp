//===- IlpTest.cpp - The strategy-choice ILP against brute force ----------===//

#include "compiler/search/Ilp.h"

#include "gtest/gtest.h"

#include <cmath>
#include <random>
#include <string>

using namespace colossal::search;

namespace {

IlpProblem::Node node(std::string name, std::vector<double> cost,
                      std::vector<double> memory = {}) {
  IlpProblem::Node n;
  n.name = std::move(name);
  n.cost = std::move(cost);
  n.memory = std::move(memory);
  return n;
}

IlpProblem::Edge edge(int from, int to, std::vector<std::vector<double>> cost) {
  IlpProblem::Edge e;
  e.from = from;
  e.to = to;
  e.cost = std::move(cost);
  return e;
}

std::string errorOf(llvm::Expected<IlpSolution> result) {
  if (result)
    return "<no error>";
  return llvm::toString(result.takeError());
}

IlpSolution solved(llvm::Expected<IlpSolution> result) {
  if (!result) {
    ADD_FAILURE() << llvm::toString(result.takeError());
    return IlpSolution();
  }
  return std::move(*result);
}

/// The 0/1 resharding matrix of `n` strategies: free when both ends agree.
std::vector<std::vector<double>> reshard(int n, double price) {
  std::vector<std::vector<double>> cost(n, std::vector<double>(n, price));
  for (int s = 0; s < n; ++s)
    cost[s][s] = 0;
  return cost;
}

void expectSameOptimum(const IlpProblem &problem, const IlpSolution &ilp,
                       const IlpSolution &brute, const std::string &what) {
  EXPECT_TRUE(ilp.optimal) << what;
  EXPECT_EQ(ilp.gap, 0.0) << what;
  EXPECT_EQ(ilp.bound, ilp.objective) << what;
  EXPECT_EQ(evaluateChoice(problem, ilp.choice), ilp.objective) << what;
  double tolerance = 1e-9 * std::max(std::fabs(brute.objective), 1e-12);
  EXPECT_NEAR(ilp.objective, brute.objective, tolerance) << what;
  if (problem.memoryBudget > 0) {
    EXPECT_LE(choiceMemory(problem, ilp.choice), problem.memoryBudget) << what;
  }
}

} // namespace

// Each node alone prefers a different strategy than its neighbours, but
// switching between neighbours costs 5: the best is to agree on strategy 0
// (1 + 2 + 1) rather than take each cheapest (3 + 10 of resharding).
TEST(Ilp, ChainAgreesDespiteCheaperLocalChoices) {
  IlpProblem problem;
  problem.nodes = {node("a", {1, 2}), node("b", {2, 1}), node("c", {1, 2})};
  problem.edges = {edge(0, 1, reshard(2, 5)), edge(1, 2, reshard(2, 5))};
  IlpSolution ilp = solved(solveIlp(problem));
  EXPECT_EQ(ilp.choice, (std::vector<int>{0, 0, 0}));
  EXPECT_DOUBLE_EQ(ilp.objective, 4);
  EXPECT_TRUE(ilp.optimal);
  EXPECT_EQ(ilp.gap, 0);
  EXPECT_GT(ilp.variables, 0);
  EXPECT_GT(ilp.constraints, 0);
  EXPECT_EQ(evaluateChoice(problem, {0, 1, 0}), 13);

  // Cheap resharding flips the answer to each node's own favourite.
  problem.edges = {edge(0, 1, reshard(2, 0.25)), edge(1, 2, reshard(2, 0.25))};
  ilp = solved(solveIlp(problem));
  EXPECT_EQ(ilp.choice, (std::vector<int>{0, 1, 0}));
  EXPECT_DOUBLE_EQ(ilp.objective, 3.5);
}

// Without a budget both nodes take their fast, memory-hungry strategy; 160
// bytes admits only one of them, and giving it to `a` is cheaper.
TEST(Ilp, MemoryBudgetForcesCostlierChoice) {
  IlpProblem problem;
  problem.nodes = {node("a", {1, 3}, {100, 40}), node("b", {1, 2}, {100, 50}),
                   node("c", {1, 1.5}, {10, 10})};
  problem.edges = {edge(0, 2, {{0, 1}, {1, 0}}), edge(1, 2, {{0, 1}, {1, 0}})};
  IlpSolution free = solved(solveIlp(problem));
  EXPECT_EQ(free.choice, (std::vector<int>{0, 0, 0}));
  EXPECT_DOUBLE_EQ(free.objective, 3);

  problem.memoryBudget = 160;
  IlpSolution tight = solved(solveIlp(problem));
  EXPECT_EQ(tight.choice, (std::vector<int>{0, 1, 0}));
  EXPECT_DOUBLE_EQ(tight.objective, 5);
  EXPECT_DOUBLE_EQ(choiceMemory(problem, tight.choice), 160);
  EXPECT_TRUE(tight.optimal);
  IlpSolution brute = solved(solveBruteForce(problem));
  EXPECT_EQ(brute.choice, tight.choice);

  // Exactly the least memory: only the smallest strategies are left.
  problem.memoryBudget = 100;
  IlpSolution least = solved(solveIlp(problem));
  EXPECT_EQ(least.choice, (std::vector<int>{1, 1, 1}));
  EXPECT_DOUBLE_EQ(least.objective, 6.5);
}

TEST(Ilp, InfeasibleBudgetSaysHowFarOff) {
  IlpProblem problem;
  problem.nodes = {node("a", {1, 2}, {200, 150}), node("b", {1}, {150})};
  problem.memoryBudget = 250;
  std::string expected = "no choice fits the memory budget: the smallest "
                         "possible memory is 300 bytes > budget 250 bytes";
  std::string ilp = errorOf(solveIlp(problem));
  EXPECT_NE(ilp.find(expected), std::string::npos) << ilp;
  EXPECT_NE(ilp.find("node 0 ('a')"), std::string::npos) << ilp;
  std::string brute = errorOf(solveBruteForce(problem));
  EXPECT_NE(brute.find(expected), std::string::npos) << brute;
}

TEST(Ilp, MalformedProblemsAreNamed) {
  auto expectError = [](const IlpProblem &problem, const std::string &text) {
    std::string message = errorOf(solveIlp(problem));
    EXPECT_NE(message.find(text), std::string::npos) << message;
    message = errorOf(solveBruteForce(problem));
    EXPECT_NE(message.find(text), std::string::npos) << message;
  };
  IlpProblem base;
  base.nodes = {node("a", {1, 2}), node("b", {1, 2, 3})};
  base.edges = {edge(0, 1, {{0, 1, 1}, {1, 0, 1}})};
  ASSERT_TRUE(static_cast<bool>(solveIlp(base)));

  IlpProblem p = base;
  p.nodes[1].cost.clear();
  expectError(p, "node 1 ('b') has no strategies");

  p = base;
  p.nodes[0].memory = {1};
  expectError(p, "node 0 ('a') has 2 costs but 1 memory entries");

  p = base;
  p.edges[0].to = 2;
  expectError(p, "edge 0 goes from node 0 to node 2, but the problem has 2 "
                 "nodes");
  p.edges[0].from = -1;
  p.edges[0].to = 1;
  expectError(p, "edge 0 goes from node -1 to node 1");

  p = base;
  p.edges[0].cost.pop_back();
  expectError(p, "edge 0 (node 0 ('a') -> node 1 ('b')) has 1 cost rows, but "
                 "its source has 2 strategies");

  p = base;
  p.edges[0].cost[1].pop_back();
  expectError(p, "edge 0 (node 0 ('a') -> node 1 ('b')) row 1 has 2 costs, "
                 "but its target has 3 strategies");

  p = base;
  p.nodes[1].cost[2] = std::nan("");
  expectError(p, "node 1 ('b') strategy 2 has a non-finite cost");

  p = base;
  p.edges[0].cost[0][0] = INFINITY;
  expectError(p, "edge 0 (node 0 ('a') -> node 1 ('b')) has a non-finite cost");

  p = base;
  p.nodes[0].memory = {1, -1};
  expectError(p, "node 0 ('a') strategy 1 has an invalid memory");

  EXPECT_NE(errorOf(solveIlp(base, 0)).find("time limit must be positive"),
            std::string::npos);
}

TEST(Ilp, TrivialProblems) {
  IlpProblem empty;
  IlpSolution none = solved(solveIlp(empty));
  EXPECT_TRUE(none.choice.empty());
  EXPECT_EQ(none.objective, 0);
  EXPECT_TRUE(none.optimal);

  // One strategy everywhere: pre-solving settles it, self-loop included.
  IlpProblem fixed;
  fixed.nodes = {node("a", {2}), node("b", {3})};
  fixed.edges = {edge(0, 1, {{0.5}}), edge(1, 1, {{0.25}})};
  IlpSolution settled = solved(solveIlp(fixed));
  EXPECT_EQ(settled.choice, (std::vector<int>{0, 0}));
  EXPECT_DOUBLE_EQ(settled.objective, 5.75);
  EXPECT_EQ(settled.variables, 0);
  EXPECT_TRUE(settled.optimal);
}

TEST(Ilp, EvaluateChoiceRejectsBadChoices) {
  IlpProblem problem;
  problem.nodes = {node("a", {1, 2}), node("b", {1, 2})};
  problem.edges = {edge(0, 1, {{0, 1}, {2, 0}})};
  EXPECT_EQ(evaluateChoice(problem, {1, 0}), 2 + 1 + 2);
  EXPECT_TRUE(std::isnan(evaluateChoice(problem, {1})));
  EXPECT_TRUE(std::isnan(evaluateChoice(problem, {0, 2})));
  EXPECT_TRUE(std::isnan(evaluateChoice(problem, {-1, 0})));
}

TEST(Ilp, BruteForceRefusesLargeProblems) {
  IlpProblem problem;
  for (int v = 0; v < 21; ++v)
    problem.nodes.push_back(node("", {1, 2}));
  std::string message = errorOf(solveBruteForce(problem));
  EXPECT_NE(message.find("brute force refuses 2097152 combinations"),
            std::string::npos)
      << message;
}

// CBC must not write to stdout or stderr at log level 0.
TEST(Ilp, SolvesQuietly) {
  IlpProblem problem;
  problem.nodes = {node("a", {1, 2, 3}, {3, 2, 1}), node("b", {3, 1, 2}),
                   node("c", {2, 3, 1}, {1, 2, 3})};
  problem.edges = {edge(0, 1, reshard(3, 2)), edge(1, 2, reshard(3, 2)),
                   edge(0, 2, reshard(3, 1))};
  problem.memoryBudget = 4;
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  IlpSolution ilp = solved(solveIlp(problem));
  std::string errors = testing::internal::GetCapturedStderr();
  std::string output = testing::internal::GetCapturedStdout();
  EXPECT_EQ(output, "");
  EXPECT_EQ(errors, "");
  EXPECT_TRUE(ilp.optimal);
}

namespace {

enum class Shape { Chain, Tree, Dag, Dense };

/// A random problem: per-node strategy counts in [1, 4] (mostly >= 2), costs
/// at a random scale between microseconds and seconds, resharding matrices
/// that are random, zero on the diagonal, or separable (to exercise
/// pre-solving), parallel edges and the odd self-loop.
IlpProblem randomProblem(std::mt19937 &rng, Shape shape, bool budget) {
  auto uniform = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  auto integer = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  IlpProblem problem;
  int numNodes = integer(3, 7);
  double scale = std::pow(10.0, uniform(-6, 0));
  for (int v = 0; v < numNodes; ++v) {
    int strategies = integer(0, 9) == 0 ? 1 : integer(2, 4);
    IlpProblem::Node n;
    n.name = "n" + std::to_string(v);
    for (int s = 0; s < strategies; ++s) {
      n.cost.push_back(scale * uniform(0, 1));
      n.memory.push_back(std::round(uniform(1, 1000)) * 1e6);
    }
    if (!budget && integer(0, 1))
      n.memory.clear();
    problem.nodes.push_back(std::move(n));
  }
  auto addEdge = [&](int from, int to) {
    int rows = static_cast<int>(problem.nodes[from].cost.size());
    int cols = static_cast<int>(problem.nodes[to].cost.size());
    std::vector<std::vector<double>> cost(rows, std::vector<double>(cols));
    int kind = integer(0, 5);
    std::vector<double> f(rows), g(cols);
    for (double &x : f)
      x = scale * uniform(0, 1);
    for (double &x : g)
      x = scale * uniform(0, 1);
    double price = scale * uniform(0, 2);
    for (int s = 0; s < rows; ++s)
      for (int t = 0; t < cols; ++t) {
        if (kind == 0)
          cost[s][t] = f[s] + g[t];
        else if (kind <= 2)
          cost[s][t] = s == t ? 0 : price * uniform(0.5, 1);
        else
          cost[s][t] = scale * uniform(0, 2);
      }
    problem.edges.push_back(edge(from, to, std::move(cost)));
  };
  for (int v = 1; v < numNodes; ++v) {
    switch (shape) {
    case Shape::Chain:
      addEdge(v - 1, v);
      break;
    case Shape::Tree:
      addEdge(integer(0, v - 1), v);
      break;
    case Shape::Dag:
      // Fan-out: each earlier node feeds later ones with probability 1/2.
      for (int u = 0; u < v; ++u)
        if (integer(0, 1))
          addEdge(u, v);
      break;
    case Shape::Dense:
      // Random directions; now and then a self-loop.
      for (int u = 0; u < v; ++u)
        addEdge(integer(0, 1) ? u : v, integer(0, 1) ? v : u);
      break;
    }
  }
  if (integer(0, 4) == 0) {
    int v = integer(0, numNodes - 1);
    addEdge(v, v);
  }
  if (integer(0, 4) == 0 && numNodes > 1)
    addEdge(numNodes - 1, 0); // parallel or back edge
  if (budget) {
    double least = 0, most = 0;
    for (const IlpProblem::Node &n : problem.nodes) {
      least += *std::min_element(n.memory.begin(), n.memory.end());
      most += *std::max_element(n.memory.begin(), n.memory.end());
    }
    problem.memoryBudget = least + uniform(0, 1) * (most - least);
  }
  return problem;
}

} // namespace

// The key property: CBC's optimum is brute force's on many small graphs.
TEST(Ilp, MatchesBruteForceOnRandomGraphs) {
  const Shape shapes[] = {Shape::Chain, Shape::Tree, Shape::Dag, Shape::Dense};
  int withMemoryRow = 0;
  for (int seed = 0; seed < 200; ++seed) {
    std::mt19937 rng(seed);
    Shape shape = shapes[seed % 4];
    bool budget = (seed / 4) % 2 == 1;
    IlpProblem problem = randomProblem(rng, shape, budget);
    std::string what = "seed " + std::to_string(seed);
    llvm::Expected<IlpSolution> brute = solveBruteForce(problem);
    ASSERT_TRUE(static_cast<bool>(brute))
        << what << ": " << llvm::toString(brute.takeError());
    llvm::Expected<IlpSolution> ilp = solveIlp(problem);
    ASSERT_TRUE(static_cast<bool>(ilp))
        << what << ": " << llvm::toString(ilp.takeError());
    expectSameOptimum(problem, *ilp, *brute, what);
    withMemoryRow += budget && ilp->variables > 0;
  }
  EXPECT_GT(withMemoryRow, 50);
}

// A tight budget leaves few choices; still exact.
TEST(Ilp, MatchesBruteForceUnderTightBudgets) {
  for (int seed = 0; seed < 50; ++seed) {
    std::mt19937 rng(1000 + seed);
    IlpProblem problem = randomProblem(rng, Shape::Dag, /*budget=*/true);
    double least = 0;
    for (const IlpProblem::Node &n : problem.nodes)
      least += *std::min_element(n.memory.begin(), n.memory.end());
    problem.memoryBudget = least + (problem.memoryBudget - least) * 0.1;
    IlpSolution brute = solved(solveBruteForce(problem));
    IlpSolution ilp = solved(solveIlp(problem));
    expectSameOptimum(problem, ilp, brute, "seed " + std::to_string(seed));
  }
}

namespace {

/// Exact optimum of a chain by dynamic programming over strategies.
double chainOptimum(const IlpProblem &problem) {
  std::vector<double> best = problem.nodes[0].cost;
  for (size_t v = 1; v < problem.nodes.size(); ++v) {
    const std::vector<double> &cost = problem.nodes[v].cost;
    const std::vector<std::vector<double>> &edgeCost =
        problem.edges[v - 1].cost;
    std::vector<double> next(cost.size(), INFINITY);
    for (size_t t = 0; t < cost.size(); ++t)
      for (size_t s = 0; s < best.size(); ++s)
        next[t] = std::min(next[t], best[s] + edgeCost[s][t] + cost[t]);
    best = std::move(next);
  }
  return *std::min_element(best.begin(), best.end());
}

IlpProblem randomChain(int numNodes, int strategies, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uniform(0, 1);
  IlpProblem problem;
  for (int v = 0; v < numNodes; ++v) {
    IlpProblem::Node n;
    for (int s = 0; s < strategies; ++s)
      n.cost.push_back(1e-3 * uniform(rng));
    problem.nodes.push_back(std::move(n));
    if (v == 0)
      continue;
    std::vector<std::vector<double>> cost(strategies,
                                          std::vector<double>(strategies));
    for (auto &row : cost)
      for (double &c : row)
        c = 1e-3 * uniform(rng);
    problem.edges.push_back(edge(v - 1, v, std::move(cost)));
  }
  return problem;
}

} // namespace

// Too large for brute force; a chain's optimum is known by DP.
TEST(Ilp, LongChainMatchesDynamicProgramming) {
  IlpProblem problem = randomChain(100, 8, 7);
  IlpSolution ilp = solved(solveIlp(problem));
  EXPECT_TRUE(ilp.optimal);
  EXPECT_NEAR(ilp.objective, chainOptimum(problem), 1e-9 * ilp.objective);
  EXPECT_EQ(evaluateChoice(problem, ilp.choice), ilp.objective);
}

// Stopped early, the answer is still a valid choice with a sound bound.
// Random full resharding matrices between near neighbours under a memory
// budget: the LP relaxation is weak and CBC needs seconds to close the gap.
TEST(Ilp, TimeLimitKeepsAValidChoice) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> uniform(0, 1);
  IlpProblem problem;
  const int numNodes = 40, strategies = 5;
  for (int v = 0; v < numNodes; ++v) {
    IlpProblem::Node n;
    for (int s = 0; s < strategies; ++s) {
      n.cost.push_back(uniform(rng));
      n.memory.push_back(1 + s);
    }
    problem.nodes.push_back(std::move(n));
    for (int u = std::max(0, v - 4); u < v; ++u) {
      std::vector<std::vector<double>> cost(strategies,
                                            std::vector<double>(strategies));
      for (auto &row : cost)
        for (double &c : row)
          c = uniform(rng);
      problem.edges.push_back(edge(u, v, std::move(cost)));
    }
  }
  problem.memoryBudget = 2.5 * numNodes;
  IlpSolution ilp = solved(solveIlp(problem, 0.2));
  ASSERT_EQ(ilp.choice.size(), static_cast<size_t>(numNodes));
  EXPECT_EQ(evaluateChoice(problem, ilp.choice), ilp.objective);
  EXPECT_LE(choiceMemory(problem, ilp.choice), problem.memoryBudget);
  EXPECT_LE(ilp.bound, ilp.objective);
  EXPECT_GT(ilp.bound, 0);
  EXPECT_GE(ilp.gap, 0);
  if (!ilp.optimal) {
    EXPECT_GT(ilp.gap, 0);
  }
  // The root LP takes a few hundredths of a second here; the rest is
  // limited. Generous for loaded machines.
  EXPECT_LT(ilp.seconds, 3);
}
