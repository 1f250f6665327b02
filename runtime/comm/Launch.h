//===- Launch.h - Where the ranks of a run come from ------------*- C++ -*-===//
//
// Reads this process's place in a multi-process run from the environment its
// launcher set (torchrun, Slurm, OpenMPI), and connects the run's ranks into
// one communicator. Also makes in-process worlds (ranks as threads) for tests
// and embedders.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_COMM_LAUNCH_H
#define COLOSSAL_RUNTIME_COMM_LAUNCH_H

#include "runtime/core/Communicator.h"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace colossal::rt {

/// This process's place in the run.
struct WorldInfo {
  int rank = 0, size = 1, localRank = 0;
  /// Where rank 0 serves the rendezvous store; empty when not given.
  std::string masterAddr;
  int masterPort = 0;
  /// Who started the run: "single", "torchrun", "slurm", "mpi" or
  /// "colossal-run" (torchrun's variables with COLOSSAL_LAUNCHER=colossal-run).
  std::string launcher = "single";
};

/// Fills `out` from the environment, trying in turn torchrun's variables
/// (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), Slurm's
/// (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, with MASTER_ADDR and
/// MASTER_PORT), and OpenMPI's (OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE,
/// OMPI_COMM_WORLD_LOCAL_RANK); with none of them, a single rank. Values that
/// are missing or malformed are errors naming the variable.
Status detectWorld(WorldInfo &out);

/// Connects the ranks of `world`. With one rank, `out` is null and the caller
/// uses the single-rank communicator. Otherwise rank 0 serves a TcpStore on
/// MASTER_ADDR:MASTER_PORT and every rank joins a GlooCommunicator through
/// it; under mpirun without MASTER_ADDR, the store's address is broadcast
/// over MPI (with -DCOLOSSAL_ENABLE_MPI=ON) or, on one node, ranks meet in a
/// directory under /tmp named after OpenMPI's job id. Peers listen on
/// COLOSSAL_COMM_HOST if set, else on this host's address facing MASTER_ADDR.
/// `timeout` bounds the rendezvous and every later operation.
Status createWorldCommunicator(const WorldInfo &world,
                               std::chrono::milliseconds timeout,
                               std::unique_ptr<Communicator> &out);

/// A TCP port on the loopback interface that nobody listens on right now
/// (bound, read back, released), for a launcher's MASTER_PORT.
Status pickFreePort(int &port);

/// `size` connected communicators in this process, one per rank (each to be
/// used from its own thread), over loopback TCP.
Status
createInProcessCommunicators(int size, std::chrono::milliseconds timeout,
                             std::vector<std::unique_ptr<Communicator>> &out);

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_COMM_LAUNCH_H
