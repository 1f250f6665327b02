//===- Ilp.h - One sharding strategy per node, by ILP -----------*- C++ -*-===//
//
// The integer program behind the intra-op auto-parallel search: every node of
// a graph picks one strategy, paying its cost and, on every edge, the
// resharding cost between the two ends' strategies, under an optional memory
// budget. Solved exactly with COIN-OR CBC; a brute-force solver and the
// objective are exposed for checking.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_COMPILER_SEARCH_ILP_H
#define COLOSSAL_COMPILER_SEARCH_ILP_H

#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace colossal {
namespace search {

/// Strategies per node, resharding costs per edge, and a memory budget.
struct IlpProblem {
  struct Node {
    std::string name;
    /// Seconds of each strategy (one entry per strategy, at least one).
    std::vector<double> cost;
    /// Bytes of each strategy: the same size as `cost`, or empty for all 0.
    std::vector<double> memory;
  };
  struct Edge {
    int from = 0, to = 0; ///< node indices (several edges may join a pair)
    /// Resharding seconds: cost[strategy of from][strategy of to].
    std::vector<std::vector<double>> cost;
  };
  std::vector<Node> nodes;
  std::vector<Edge> edges;
  /// <= 0 (or infinite): no memory constraint; else the chosen strategies'
  /// memory must sum to at most this many bytes.
  double memoryBudget = 0;
};

struct IlpSolution {
  std::vector<int> choice; ///< strategy per node
  /// Sum of the chosen node costs and edge costs (evaluateChoice).
  double objective = 0;
  /// Best lower bound proven on the objective; equals `objective` when
  /// `optimal`.
  double bound = 0;
  /// (objective - bound) / max(|objective|, 1e-12); 0 when `optimal`.
  double gap = 0;
  /// Proven optimal (up to CBC's tolerances, about 1e-9 of the largest cost).
  bool optimal = false;
  /// Size of the program handed to CBC after pre-solving; 0 when pre-solving
  /// alone settled every choice.
  int64_t variables = 0, constraints = 0;
  double seconds = 0; ///< wall time of the whole call
};

/// Solves `problem` with CBC (branch and cut), stopping after
/// `timeLimitSeconds` with the best choice found and the proven bound. Fails
/// with a message naming the node or edge when the problem is malformed
/// (a node without strategies, sizes that disagree, an edge to a missing
/// node, a non-finite number) and when no choice fits the memory budget.
/// Not safe to call from several threads at once; calls are serialized.
llvm::Expected<IlpSolution> solveIlp(const IlpProblem &problem,
                                     double timeLimitSeconds = 10);

/// Enumerates every combination; for tests and tiny problems. Refuses
/// problems with more than 1e6 combinations.
llvm::Expected<IlpSolution> solveBruteForce(const IlpProblem &problem);

/// The objective both solvers minimize: chosen node costs plus edge costs.
/// Ignores memory. NaN when `choice` has the wrong size or an index out of
/// range; the problem itself is assumed well formed.
double evaluateChoice(const IlpProblem &problem,
                      const std::vector<int> &choice);

/// Sum of the chosen strategies' memory (same assumptions as evaluateChoice).
double choiceMemory(const IlpProblem &problem, const std::vector<int> &choice);

} // namespace search
} // namespace colossal

#endif // COLOSSAL_COMPILER_SEARCH_ILP_H
