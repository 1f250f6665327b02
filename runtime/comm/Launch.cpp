//===- Launch.cpp - Where the ranks of a run come from --------------------===//
//
// Launchers differ in what they tell a process: torchrun sets everything,
// Slurm and mpirun set rank and size but know no rendezvous address. Without
// one, ranks under mpirun can still meet: through MPI itself when built with
// it, or through files when all ranks share a node (and so a /tmp).
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/Launch.h"

#include "runtime/comm/GlooCommunicator.h"
#include "runtime/comm/TcpStore.h"

#include <gloo/rendezvous/file_store.h>
#include <gloo/rendezvous/hash_store.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef COLOSSAL_HAVE_MPI
#include <mpi.h>
#endif

namespace colossal::rt {
namespace {

//===----------------------------------------------------------------------===//
// Environment
//===----------------------------------------------------------------------===//

const char *env(const char *name) {
  const char *v = std::getenv(name);
  return v && *v ? v : nullptr;
}

Status parseInt(const char *name, const char *value, int &out) {
  errno = 0;
  char *end = nullptr;
  long v = std::strtol(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || v < INT_MIN || v > INT_MAX)
    return Status::error("environment variable " + std::string(name) + "='" +
                         value + "' is not an integer");
  out = static_cast<int>(v);
  return Status::ok();
}

/// Reads rank, size and (optionally) local rank from three variables.
Status readRanks(const char *rankVar, const char *sizeVar, const char *localVar,
                 WorldInfo &w) {
  const char *rank = env(rankVar);
  const char *size = env(sizeVar);
  if (!rank || !size)
    return Status::error(std::string("environment variable ") +
                         (rank ? sizeVar : rankVar) + " is not set, but " +
                         (rank ? rankVar : sizeVar) +
                         " is; the launcher must set both");
  if (Status s = parseInt(rankVar, rank, w.rank); !s)
    return s;
  if (Status s = parseInt(sizeVar, size, w.size); !s)
    return s;
  if (w.size < 1)
    return Status::error("environment variable " + std::string(sizeVar) + "=" +
                         size + " must be at least 1");
  if (w.rank < 0 || w.rank >= w.size)
    return Status::error("environment variable " + std::string(rankVar) + "=" +
                         rank + " is not in [0, " + sizeVar + "=" + size + ")");
  w.localRank = 0;
  if (const char *local = env(localVar)) {
    if (Status s = parseInt(localVar, local, w.localRank); !s)
      return s;
    if (w.localRank < 0 || w.localRank >= w.size)
      return Status::error("environment variable " + std::string(localVar) +
                           "=" + local + " is not in [0, " + sizeVar + "=" +
                           size + ")");
  }
  return Status::ok();
}

/// Reads MASTER_ADDR and MASTER_PORT; `required` makes their absence an
/// error (with `hint` saying how to set them).
Status readMaster(bool required, const std::string &hint, WorldInfo &w) {
  const char *addr = env("MASTER_ADDR");
  const char *port = env("MASTER_PORT");
  if (!addr && !port && !required)
    return Status::ok();
  if (!addr || !port)
    return Status::error(
        std::string("environment variable ") +
        (addr ? "MASTER_PORT" : "MASTER_ADDR") + " is not set" +
        (addr || port ? std::string(", but ") +
                            (addr ? "MASTER_ADDR" : "MASTER_PORT") + " is"
                      : std::string()) +
        "; " + hint);
  w.masterAddr = addr;
  if (Status s = parseInt("MASTER_PORT", port, w.masterPort); !s)
    return s;
  if (w.masterPort < 1 || w.masterPort > 65535)
    return Status::error(std::string("environment variable MASTER_PORT=") +
                         port + " is not a TCP port (1-65535)");
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Addresses
//===----------------------------------------------------------------------===//

/// The first IPv4 address `host` resolves to, or "".
std::string resolveIPv4(const std::string &host) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo *res = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res)
    return "";
  char buf[INET_ADDRSTRLEN] = {0};
  auto *sin = reinterpret_cast<sockaddr_in *>(res->ai_addr);
  ::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
  ::freeaddrinfo(res);
  return buf;
}

std::string localHostname() {
  char name[HOST_NAME_MAX + 1] = {0};
  if (::gethostname(name, sizeof(name) - 1) != 0)
    return "";
  return name;
}

/// The local address the kernel would send from towards `ip` (a connected
/// UDP socket sends nothing but picks the source address), or "".
std::string sourceAddressTowards(const std::string &ip) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return "";
  sockaddr_in peer{};
  peer.sin_family = AF_INET;
  peer.sin_port = htons(9);
  sockaddr_in self{};
  socklen_t len = sizeof(self);
  char buf[INET_ADDRSTRLEN] = {0};
  bool ok =
      ::inet_pton(AF_INET, ip.c_str(), &peer.sin_addr) == 1 &&
      ::connect(fd, reinterpret_cast<sockaddr *>(&peer), sizeof(peer)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr *>(&self), &len) == 0 &&
      ::inet_ntop(AF_INET, &self.sin_addr, buf, sizeof(buf));
  ::close(fd);
  return ok ? buf : "";
}

bool isLoopback(const std::string &ip) { return ip.rfind("127.", 0) == 0; }

/// The address other ranks can reach this host at: COLOSSAL_COMM_HOST, else
/// the local address routed towards `master`, else the hostname.
std::string listenAddressFacing(const std::string &master) {
  if (const char *host = env("COLOSSAL_COMM_HOST"))
    return host;
  std::string ip = resolveIPv4(master);
  if (isLoopback(ip))
    return "127.0.0.1";
  if (!ip.empty()) {
    std::string self = sourceAddressTowards(ip);
    if (!self.empty())
      return self;
  }
  std::string name = localHostname();
  return name.empty() ? "127.0.0.1" : name;
}

#ifdef COLOSSAL_HAVE_MPI
/// An address of this host that other nodes can reach: the hostname's,
/// unless it is a loopback one (Debian maps the hostname to 127.0.1.1),
/// then the source address of the default route.
std::string reachableAddress() {
  if (const char *host = env("COLOSSAL_COMM_HOST"))
    return host;
  std::string ip = resolveIPv4(localHostname());
  if (!ip.empty() && !isLoopback(ip))
    return ip;
  // Any routable address works: no packet is sent.
  std::string routed = sourceAddressTowards("192.0.2.1");
  if (!routed.empty() && !isLoopback(routed))
    return routed;
  return "127.0.0.1";
}
#endif

//===----------------------------------------------------------------------===//
// Stores
//===----------------------------------------------------------------------===//

/// Makes get() wait for its key: gloo's HashStore returns nothing for a key
/// not yet set (and rendezvous reads some keys without waiting), and
/// FileStore waits a fixed 30 s rather than our timeout.
class BlockingStore : public gloo::rendezvous::Store {
public:
  BlockingStore(std::shared_ptr<gloo::rendezvous::Store> inner,
                std::chrono::milliseconds timeout)
      : inner_(std::move(inner)), timeout_(timeout) {}

  void set(const std::string &key, const std::vector<char> &data) override {
    inner_->set(key, data);
  }
  std::vector<char> get(const std::string &key) override {
    inner_->wait({key}, timeout_);
    return inner_->get(key);
  }
  void wait(const std::vector<std::string> &keys) override {
    inner_->wait(keys, timeout_);
  }
  void wait(const std::vector<std::string> &keys,
            const std::chrono::milliseconds &timeout) override {
    inner_->wait(keys, timeout);
  }

private:
  std::shared_ptr<gloo::rendezvous::Store> inner_;
  std::chrono::milliseconds timeout_;
};

/// Removes a rendezvous directory once every rank's communicator is gone:
/// each leaves a mark, and whoever leaves the last one removes it all.
class RendezvousDirCleanup {
public:
  RendezvousDirCleanup(std::filesystem::path dir, int rank, int size)
      : dir_(std::move(dir)), rank_(rank), size_(size) {}
  ~RendezvousDirCleanup() {
    std::error_code ec;
    std::ofstream(dir_ / ("done." + std::to_string(rank_))).put('1');
    int done = 0;
    for (const auto &entry : std::filesystem::directory_iterator(dir_, ec))
      if (entry.path().filename().string().rfind("done.", 0) == 0)
        ++done;
    if (done >= size_)
      std::filesystem::remove_all(dir_, ec);
  }

private:
  std::filesystem::path dir_;
  int rank_, size_;
};

Status connectThroughStore(std::shared_ptr<gloo::rendezvous::Store> store,
                           const WorldInfo &world,
                           std::chrono::milliseconds timeout,
                           const std::string &listenHost,
                           std::shared_ptr<void> keepAlive,
                           std::unique_ptr<Communicator> &out) {
  std::unique_ptr<Communicator> comm;
  if (Status s = createGlooCommunicator(std::move(store), world.rank,
                                        world.size, timeout, listenHost, comm);
      !s)
    return s;
  if (keepAlive)
    static_cast<GlooCommunicator *>(comm.get())->keepAlive(keepAlive);
  out = std::move(comm);
  return Status::ok();
}

Status connectThroughTcpStore(const WorldInfo &world, const std::string &host,
                              int port, std::chrono::milliseconds timeout,
                              std::shared_ptr<void> keepAlive,
                              std::unique_ptr<Communicator> &out) {
  TcpStoreOptions options;
  options.host = host;
  options.port = port;
  options.isServer = world.rank == 0;
  options.rank = world.rank;
  options.worldSize = world.size;
  options.timeout = timeout;
  std::shared_ptr<TcpStore> store;
  if (Status s = TcpStore::create(options, store); !s)
    return s;
  return connectThroughStore(store, world, timeout, listenAddressFacing(host),
                             std::move(keepAlive), out);
}

#ifdef COLOSSAL_HAVE_MPI
/// Finalizes MPI when the communicator goes, if we were the ones to start it.
struct MpiSession {
  ~MpiSession() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized)
      MPI_Finalize();
  }
};

/// Rank 0 serves the store on an ephemeral port and tells the others where
/// over MPI.
Status connectThroughMpi(const WorldInfo &world,
                         std::chrono::milliseconds timeout,
                         std::unique_ptr<Communicator> &out) {
  std::shared_ptr<void> session;
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    if (MPI_Init(nullptr, nullptr) != MPI_SUCCESS)
      return Status::error("MPI_Init failed; cannot meet the other ranks");
    session = std::make_shared<MpiSession>();
  }
  int mpiRank = 0, mpiSize = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &mpiRank);
  MPI_Comm_size(MPI_COMM_WORLD, &mpiSize);
  if (mpiRank != world.rank || mpiSize != world.size)
    return Status::error("MPI says rank " + std::to_string(mpiRank) + " of " +
                         std::to_string(mpiSize) + ", the environment rank " +
                         std::to_string(world.rank) + " of " +
                         std::to_string(world.size));
  char address[256] = {0};
  std::shared_ptr<TcpStore> store;
  Status status;
  if (world.rank == 0) {
    TcpStoreOptions options;
    options.host = reachableAddress();
    options.isServer = true;
    options.worldSize = world.size;
    options.timeout = timeout;
    status = TcpStore::create(options, store);
    // An empty address tells the others that rank 0 failed, so they stop
    // instead of waiting out the timeout.
    if (status)
      std::snprintf(address, sizeof(address), "%s", store->address().c_str());
  }
  MPI_Bcast(address, sizeof(address), MPI_CHAR, 0, MPI_COMM_WORLD);
  if (world.rank == 0 && !status)
    return status;
  std::string hostPort(address);
  size_t colon = hostPort.rfind(':');
  if (colon == std::string::npos)
    return Status::error("rank " + std::to_string(world.rank) +
                         ": rank 0 could not start the rendezvous server "
                         "(see its error)");
  if (world.rank == 0)
    return connectThroughStore(store, world, timeout,
                               listenAddressFacing(hostPort.substr(0, colon)),
                               session, out);
  return connectThroughTcpStore(world, hostPort.substr(0, colon),
                                std::atoi(hostPort.c_str() + colon + 1),
                                timeout, session, out);
}
#endif

/// Ranks of one node meet in a directory named after the job, which
/// OpenMPI gives every rank of a job alike.
Status connectThroughFiles(const WorldInfo &world,
                           std::chrono::milliseconds timeout,
                           std::unique_ptr<Communicator> &out) {
  const char *job = env("PMIX_NAMESPACE");
  if (!job)
    job = env("OMPI_MCA_ess_base_jobid");
  if (!job)
    return Status::error("rank " + std::to_string(world.rank) +
                         ": found no OpenMPI job id (PMIX_NAMESPACE, "
                         "OMPI_MCA_ess_base_jobid) to meet the other ranks "
                         "by; export MASTER_ADDR and MASTER_PORT");
  std::string id;
  for (const char *p = job; *p; ++p)
    id += std::isalnum(static_cast<unsigned char>(*p)) || *p == '-' ||
                  *p == '_' || *p == '.'
              ? *p
              : '_';
  std::filesystem::path dir = "/tmp/colossal-rdzv-" + id;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return Status::error("rank " + std::to_string(world.rank) +
                         ": cannot create the rendezvous directory " +
                         dir.string() + ": " + ec.message() +
                         "; export MASTER_ADDR and MASTER_PORT instead");
  std::shared_ptr<gloo::rendezvous::Store> store;
  try {
    store = std::make_shared<BlockingStore>(
        std::make_shared<gloo::rendezvous::FileStore>(dir.string()), timeout);
  } catch (const std::exception &e) {
    return Status::error("rank " + std::to_string(world.rank) +
                         ": cannot use the rendezvous directory " +
                         dir.string() + ": " + e.what());
  }
  return connectThroughStore(
      store, world, timeout, "127.0.0.1",
      std::make_shared<RendezvousDirCleanup>(dir, world.rank, world.size), out);
}

} // namespace

//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

Status detectWorld(WorldInfo &out) {
  WorldInfo w;
  const std::string slurmHint =
      "export them before srun, e.g. export MASTER_ADDR=$(scontrol show "
      "hostnames \"$SLURM_JOB_NODELIST\" | head -n 1) MASTER_PORT=29500";
  const std::string torchHint =
      "the launcher must set MASTER_ADDR (rank 0's host) and MASTER_PORT";
  if (env("RANK") || env("WORLD_SIZE")) {
    if (Status s = readRanks("RANK", "WORLD_SIZE", "LOCAL_RANK", w); !s)
      return s;
    if (Status s = readMaster(w.size > 1, torchHint, w); !s)
      return s;
    const char *launcher = env("COLOSSAL_LAUNCHER");
    w.launcher = launcher && std::string(launcher) == "colossal-run"
                     ? "colossal-run"
                     : "torchrun";
  } else if (env("SLURM_PROCID") && !env("OMPI_COMM_WORLD_RANK")) {
    // (Under mpirun inside an allocation SLURM_PROCID numbers the nodes'
    // daemons, not the ranks: OpenMPI's variables win then.)
    const char *sizeVar = env("SLURM_NTASKS") ? "SLURM_NTASKS" : "SLURM_NPROCS";
    if (!env(sizeVar))
      sizeVar = "SLURM_NTASKS";
    if (Status s = readRanks("SLURM_PROCID", sizeVar, "SLURM_LOCALID", w); !s)
      return s;
    if (Status s = readMaster(w.size > 1, slurmHint, w); !s)
      return s;
    w.launcher = "slurm";
  } else if (env("OMPI_COMM_WORLD_RANK") || env("OMPI_COMM_WORLD_SIZE")) {
    if (Status s = readRanks("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                             "OMPI_COMM_WORLD_LOCAL_RANK", w);
        !s)
      return s;
    if (Status s = readMaster(false, torchHint, w); !s)
      return s;
    w.launcher = "mpi";
  } else {
    // A lone process may still name a master (for tools that read it).
    if (Status s = readMaster(false, torchHint, w); !s)
      return s;
  }
  out = w;
  return Status::ok();
}

Status createWorldCommunicator(const WorldInfo &world,
                               std::chrono::milliseconds timeout,
                               std::unique_ptr<Communicator> &out) {
  out.reset();
  if (world.size <= 1)
    return Status::ok();
  if (world.rank < 0 || world.rank >= world.size)
    return Status::error("rank " + std::to_string(world.rank) +
                         " is not in [0, " + std::to_string(world.size) + ")");
  if (!world.masterAddr.empty())
    return connectThroughTcpStore(world, world.masterAddr, world.masterPort,
                                  timeout, nullptr, out);
  if (world.launcher == "mpi") {
#ifdef COLOSSAL_HAVE_MPI
    return connectThroughMpi(world, timeout, out);
#else
    const char *local = env("OMPI_COMM_WORLD_LOCAL_SIZE");
    int localSize = 0;
    if (local && parseInt("OMPI_COMM_WORLD_LOCAL_SIZE", local, localSize) &&
        localSize == world.size)
      return connectThroughFiles(world, timeout, out);
    return Status::error(
        "rank " + std::to_string(world.rank) + " of " +
        std::to_string(world.size) +
        ": the ranks of this mpirun span several nodes and no rendezvous "
        "address is set; export MASTER_ADDR (rank 0's host) and MASTER_PORT "
        "(a free port) to every rank (mpirun -x MASTER_ADDR -x MASTER_PORT), "
        "or build with -DCOLOSSAL_ENABLE_MPI=ON");
#endif
  }
  return Status::error("rank " + std::to_string(world.rank) + " of " +
                       std::to_string(world.size) +
                       ": no rendezvous address; export MASTER_ADDR (rank "
                       "0's host) and MASTER_PORT (a free port) on every rank");
}

Status
createInProcessCommunicators(int size, std::chrono::milliseconds timeout,
                             std::vector<std::unique_ptr<Communicator>> &out) {
  out.clear();
  if (size < 1)
    return Status::error("an in-process world needs at least one rank (got " +
                         std::to_string(size) + ")");
  auto store = std::make_shared<BlockingStore>(
      std::make_shared<gloo::rendezvous::HashStore>(), timeout);
  std::vector<std::unique_ptr<Communicator>> comms(size);
  std::vector<Status> statuses(size);
  // Rendezvous blocks until every rank has arrived, so each rank connects
  // from its own thread.
  std::vector<std::thread> threads;
  threads.reserve(size);
  for (int r = 0; r < size; ++r)
    threads.emplace_back([&, r] {
      statuses[r] = createGlooCommunicator(store, r, size, timeout, "127.0.0.1",
                                           comms[r]);
    });
  for (std::thread &t : threads)
    t.join();
  for (const Status &s : statuses)
    if (!s)
      return s;
  out = std::move(comms);
  return Status::ok();
}

Status pickFreePort(int &port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return Status::error(std::string("cannot open a socket: ") +
                         std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) == 0;
  int err = errno;
  ::close(fd);
  if (!ok)
    return Status::error(std::string("cannot find a free port: ") +
                         std::strerror(err));
  port = ntohs(addr.sin_port);
  return Status::ok();
}

} // namespace colossal::rt
