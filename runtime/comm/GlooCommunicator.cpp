//===- GlooCommunicator.cpp - Collectives between CPU processes -----------===//
//
// Gloo moves flat buffers: all-gather concatenates whole inputs, all-to-all
// exchanges equal contiguous chunks. Collectives along an inner dimension are
// therefore packed into (or unpacked from) a rank-major temporary, and 16-bit
// floats are reduced as float32 and rounded once at the end. Gloo reports
// every failure by throwing; each call is wrapped so that exceptions become a
// Status naming the rank, the collective, the group and the likely cause.
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/GlooCommunicator.h"

#include "runtime/comm/TcpStore.h"

#include "runtime/core/Float16.h"

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/alltoall.h>
#include <gloo/common/error.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/transport/unbound_buffer.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstring>
#include <numeric>
#include <sstream>
#include <thread>

#include <netdb.h>
#include <sys/socket.h>

namespace colossal::rt {

struct GlooCommunicator::Group {
  /// Global ranks in group order, and this rank's position among them.
  std::vector<int> ranks;
  int index = 0;
  /// Null for a group of one, whose collectives are local copies.
  std::shared_ptr<gloo::Context> context;
  /// Members issue the same collectives in the same order, so counting them
  /// gives every member the same tag for the same call.
  uint32_t nextTag = 0;
  /// The first failure; Gloo has closed the group's connections by then.
  std::string failure;
};

namespace {

using Clock = std::chrono::steady_clock;

// Point-to-point slots live apart from the collectives' (gloo's slot
// prefixes 0x01-0x08 in the top byte).
constexpr uint64_t kSendRecvSlotPrefix = uint64_t(0x40) << 56;

std::string formatSeconds(std::chrono::milliseconds ms) {
  std::ostringstream os;
  os << static_cast<double>(ms.count()) / 1000.0;
  return os.str();
}

std::string formatRanks(const std::vector<int> &ranks) {
  std::string s = "[";
  for (size_t i = 0; i < ranks.size(); ++i)
    s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s + "]";
}

std::string formatShape(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

/// Gloo prefixes messages with "[/path/file.cc:123] ", sometimes twice; the
/// user needs the sentence, not our dependency's source layout.
std::string stripGlooLocation(std::string msg) {
  while (!msg.empty() && msg[0] == '[') {
    size_t close = msg.find("] ");
    if (close == std::string::npos)
      break;
    std::string inside = msg.substr(1, close - 1);
    size_t colon = inside.rfind(':');
    if (colon == std::string::npos || colon + 1 == inside.size() ||
        !std::all_of(inside.begin() + colon + 1, inside.end(),
                     [](char c) { return std::isdigit(c); }) ||
        inside.find('.') == std::string::npos)
      break;
    msg = msg.substr(close + 2);
  }
  return msg;
}

bool mentionsTimeout(const std::string &msg) {
  std::string lower(msg);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return lower.find("timed out") != std::string::npos ||
         lower.find("timeout") != std::string::npos;
}

bool normalizeDim(int64_t &dim, size_t rank) {
  int64_t r = static_cast<int64_t>(rank);
  if (dim < 0)
    dim += r;
  return dim >= 0 && dim < r;
}

int64_t product(const std::vector<int64_t> &shape, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t i = begin; i < end; ++i)
    n *= shape[i];
  return n;
}

bool overlaps(const void *a, size_t an, const void *b, size_t bn) {
  auto pa = reinterpret_cast<uintptr_t>(a);
  auto pb = reinterpret_cast<uintptr_t>(b);
  return an && bn && pa < pb + bn && pb < pa + an;
}

/// Copies `count` blocks of `blockBytes` from `src` (blocks `srcStride`
/// apart) to `dst` (blocks `dstStride` apart): the one strided copy every
/// pack and unpack here is made of.
void copyBlocks(char *dst, size_t dstStride, const char *src, size_t srcStride,
                size_t blockBytes, int64_t count) {
  for (int64_t i = 0; i < count; ++i)
    std::memcpy(dst + i * dstStride, src + i * srcStride, blockBytes);
}

template <typename T> gloo::AllreduceOptions::Func reduceFunction(ReduceOp op) {
  switch (op) {
  case ReduceOp::Sum:
  case ReduceOp::Avg:
    return [](void *c, const void *a, const void *b, size_t n) {
      auto *C = static_cast<T *>(c);
      auto *A = static_cast<const T *>(a);
      auto *B = static_cast<const T *>(b);
      for (size_t i = 0; i < n; ++i)
        C[i] = A[i] + B[i];
    };
  case ReduceOp::Prod:
    return [](void *c, const void *a, const void *b, size_t n) {
      auto *C = static_cast<T *>(c);
      auto *A = static_cast<const T *>(a);
      auto *B = static_cast<const T *>(b);
      for (size_t i = 0; i < n; ++i)
        C[i] = A[i] * B[i];
    };
  case ReduceOp::Max:
    return [](void *c, const void *a, const void *b, size_t n) {
      auto *C = static_cast<T *>(c);
      auto *A = static_cast<const T *>(a);
      auto *B = static_cast<const T *>(b);
      for (size_t i = 0; i < n; ++i)
        C[i] = std::max(A[i], B[i]);
    };
  case ReduceOp::Min:
    return [](void *c, const void *a, const void *b, size_t n) {
      auto *C = static_cast<T *>(c);
      auto *A = static_cast<const T *>(a);
      auto *B = static_cast<const T *>(b);
      for (size_t i = 0; i < n; ++i)
        C[i] = std::min(A[i], B[i]);
    };
  }
  return nullptr;
}

/// In-place all-reduce of `count` elements at `buf` over `context`.
template <typename T>
void allReduceInPlace(const std::shared_ptr<gloo::Context> &context, T *buf,
                      int64_t count, ReduceOp op, uint32_t tag,
                      std::chrono::milliseconds timeout) {
  gloo::AllreduceOptions opts(context);
  opts.setOutput(buf, static_cast<size_t>(count));
  opts.setReduceFunction(reduceFunction<T>(op));
  opts.setTag(tag);
  opts.setTimeout(timeout);
  gloo::allreduce(opts);
  if (op == ReduceOp::Avg) {
    // Integers divide with truncation, like an integer mean anywhere else.
    const T n = static_cast<T>(context->size);
    for (int64_t i = 0; i < count; ++i)
      buf[i] /= n;
  }
}

void toFloat(const void *src, DType dtype, float *dst, int64_t count) {
  auto *s = static_cast<const uint16_t *>(src);
  if (dtype == DType::F16)
    for (int64_t i = 0; i < count; ++i)
      dst[i] = halfToFloat(s[i]);
  else
    for (int64_t i = 0; i < count; ++i)
      dst[i] = bf16ToFloat(s[i]);
}

void fromFloat(const float *src, DType dtype, void *dst, int64_t count) {
  auto *d = static_cast<uint16_t *>(dst);
  if (dtype == DType::F16)
    for (int64_t i = 0; i < count; ++i)
      d[i] = floatToHalf(src[i]);
  else
    for (int64_t i = 0; i < count; ++i)
      d[i] = floatToBf16(src[i]);
}

Status checkResolvable(const std::string &hostname) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo *res = nullptr;
  int rv = ::getaddrinfo(hostname.c_str(), nullptr, &hints, &res);
  if (rv != 0)
    return Status::error("cannot listen for peer ranks on '" + hostname +
                         "': " + ::gai_strerror(rv) +
                         "; give an address of this host the other ranks "
                         "can reach");
  ::freeaddrinfo(res);
  return Status::ok();
}

} // namespace

//===----------------------------------------------------------------------===//
// Setup
//===----------------------------------------------------------------------===//

GlooCommunicator::GlooCommunicator(
    std::shared_ptr<gloo::rendezvous::Store> store, int rank, int size,
    std::chrono::milliseconds timeout)
    : rank_(rank), size_(size), timeout_(timeout), store_(std::move(store)) {}

GlooCommunicator::~GlooCommunicator() {
  // Contexts close their pairs before the device (and its event loop) goes.
  groups_.clear();
  device_.reset();
}

void GlooCommunicator::keepAlive(std::shared_ptr<void> resource) {
  keepAlive_.push_back(std::move(resource));
}

Status createGlooCommunicator(std::shared_ptr<gloo::rendezvous::Store> store,
                              int rank, int size,
                              std::chrono::milliseconds timeout,
                              const std::string &hostname,
                              std::unique_ptr<Communicator> &out) {
  if (!store)
    return Status::error("cannot create a Gloo communicator without a "
                         "rendezvous store");
  if (size < 1 || rank < 0 || rank >= size)
    return Status::error("cannot create a Gloo communicator for rank " +
                         std::to_string(rank) + " of " + std::to_string(size) +
                         " ranks: the rank must be in [0, size)");
  if (timeout.count() <= 0)
    return Status::error("the communication timeout must be positive (got " +
                         std::to_string(timeout.count()) + " ms)");
  // Gloo writes to sockets without MSG_NOSIGNAL: a peer that died would kill
  // this process with SIGPIPE instead of failing the collective. Someone
  // else's handler is left alone.
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) == 0 &&
      current.sa_handler == SIG_DFL)
    std::signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<GlooCommunicator> comm(
      new GlooCommunicator(std::move(store), rank, size, timeout));
  if (Status s = comm->connectWorld(hostname); !s)
    return s;
  out = std::move(comm);
  return Status::ok();
}

Status GlooCommunicator::connectWorld(const std::string &hostname) {
  // Gloo does not check getaddrinfo's errors and would crash on a name that
  // does not resolve.
  if (Status s = checkResolvable(hostname); !s)
    return Status::error("rank " + std::to_string(rank_) + ": " + s.message());
  try {
    gloo::transport::tcp::attr attr;
    attr.hostname = hostname;
    device_ = gloo::transport::tcp::CreateDevice(attr);
  } catch (const std::exception &e) {
    return Status::error("rank " + std::to_string(rank_) +
                         ": cannot listen for peer ranks on '" + hostname +
                         "': " + stripGlooLocation(e.what()));
  }
  std::vector<int> world(size_);
  std::iota(world.begin(), world.end(), 0);
  // Ranks started with different world sizes would otherwise fail deep in
  // Gloo with an address-length mismatch; compare with rank 0 first.
  Group probe;
  probe.ranks = world;
  std::string mismatch;
  Status s = guarded(probe, describe("connecting", probe), [&] {
    const std::string mine = std::to_string(size_);
    store_->set("size/" + std::to_string(rank_),
                std::vector<char>(mine.begin(), mine.end()));
    if (rank_ == 0)
      return;
    std::vector<char> theirs = store_->get("size/0");
    if (std::string(theirs.begin(), theirs.end()) != mine)
      mismatch = std::string(theirs.begin(), theirs.end());
  });
  if (!s)
    return s;
  if (!mismatch.empty())
    return Status::error("rank " + std::to_string(rank_) +
                         ": this rank was started for a world of " +
                         std::to_string(size_) + " ranks, rank 0 for " +
                         mismatch +
                         "; every rank must be given the same world size");
  Group *g = nullptr;
  return connectGroup(world, g);
}

Status GlooCommunicator::connectGroup(const std::vector<int> &ranks,
                                      Group *&out) {
  auto group = std::make_unique<Group>();
  group->ranks = ranks;
  group->index = static_cast<int>(std::find(ranks.begin(), ranks.end(), rank_) -
                                  ranks.begin());
  Status status;
  if (ranks.size() > 1) {
    bool world = static_cast<int>(ranks.size()) == size_ &&
                 std::is_sorted(ranks.begin(), ranks.end());
    // Each group rendezvouses under its own prefix, so groups connect
    // independently (and concurrently) through one store.
    std::string prefix = "world" + std::to_string(size_);
    if (!world) {
      prefix = "group:";
      for (size_t i = 0; i < ranks.size(); ++i)
        prefix += (i ? "," : "") + std::to_string(ranks[i]);
    }
    status = guarded(*group, describe("connecting", *group), [&] {
      gloo::rendezvous::PrefixStore store(prefix, *store_);
      auto context = std::make_shared<gloo::rendezvous::Context>(
          group->index, static_cast<int>(ranks.size()));
      context->setTimeout(timeout_);
      context->connectFullMesh(store, device_);
      group->context = std::move(context);
    });
  }
  // A failed group is kept: its members are gone or out of step, and a
  // second rendezvous under the same keys could not work anyway.
  out = group.get();
  groups_[ranks] = std::move(group);
  return status;
}

Status GlooCommunicator::normalize(const char *what, const RankGroup &group,
                                   std::vector<int> &ranks) const {
  ranks = group;
  if (ranks.empty()) {
    ranks.resize(size_);
    std::iota(ranks.begin(), ranks.end(), 0);
  }
  std::string head = "rank " + std::to_string(rank_) + ": " + what +
                     " over ranks " + formatRanks(ranks) + ": ";
  std::vector<bool> seen(size_, false);
  for (int r : ranks) {
    if (r < 0 || r >= size_)
      return Status::error(head + "rank " + std::to_string(r) +
                           " is not in this run of " + std::to_string(size_) +
                           " ranks; the plan was made for more devices than "
                           "this run has");
    if (seen[r])
      return Status::error(head + "rank " + std::to_string(r) +
                           " appears twice in the group");
    seen[r] = true;
  }
  return Status::ok();
}

Status GlooCommunicator::findGroup(const char *what, const RankGroup &group,
                                   Group *&out) {
  std::vector<int> ranks;
  if (Status s = normalize(what, group, ranks); !s)
    return s;
  if (std::find(ranks.begin(), ranks.end(), rank_) == ranks.end())
    return Status::error("rank " + std::to_string(rank_) + ": " + what +
                         " over ranks " + formatRanks(ranks) +
                         " called on a rank outside the group; only the "
                         "group's ranks take part in its collectives");
  auto it = groups_.find(ranks);
  if (it != groups_.end()) {
    out = it->second.get();
    return Status::ok();
  }
  // First use: the other members reach their first use of this group at the
  // same point of the same program, so they connect here too.
  return connectGroup(ranks, out);
}

Status GlooCommunicator::prepareGroups(const std::vector<RankGroup> &groups) {
  for (const RankGroup &group : groups) {
    std::vector<int> ranks;
    if (Status s = normalize("preparing a group", group, ranks); !s)
      return s;
    if (std::find(ranks.begin(), ranks.end(), rank_) == ranks.end() ||
        groups_.count(ranks))
      continue;
    Group *g = nullptr;
    if (Status s = connectGroup(ranks, g); !s)
      return s;
  }
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Error handling
//===----------------------------------------------------------------------===//

std::string GlooCommunicator::describe(const char *what, const Group &g) const {
  return "rank " + std::to_string(rank_) + ": " + what + " over ranks " +
         formatRanks(g.ranks);
}

std::string GlooCommunicator::whoLeft(bool timedOut) {
  const char *unknown = "a peer rank has died, hung or runs a different plan";
  auto *tcp = dynamic_cast<TcpStore *>(store_.get());
  if (!tcp)
    return unknown;
  // The rendezvous server sees a dead rank's connection close; after a
  // closed connection here, give it a moment to notice.
  std::vector<int> gone;
  for (int attempt = 0; attempt < (timedOut ? 1 : 10); ++attempt) {
    if (!tcp->departedRanks(gone))
      return rank_ == 0 ? unknown
                        : "rank 0, which serves the rendezvous, is gone "
                          "(died or exited)";
    if (!gone.empty())
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (gone.empty())
    return unknown;
  std::string list;
  for (int r : gone)
    list += (list.empty() ? "" : ", ") + std::to_string(r);
  return (gone.size() == 1 ? "rank " : "ranks ") + list +
         (gone.size() == 1 ? " has" : " have") +
         " left the run (died or exited: the connection to the rendezvous "
         "closed)";
}

template <typename Fn>
Status GlooCommunicator::guarded(Group &g, const std::string &what, Fn &&fn) {
  if (!g.failure.empty())
    return Status::error(what +
                         " cannot run: an earlier operation on this group "
                         "failed, which closed its connections (" +
                         g.failure + ")");
  const auto start = Clock::now();
  std::string cause;
  try {
    fn();
    return Status::ok();
  } catch (const std::exception &e) {
    cause = stripGlooLocation(e.what());
  } catch (...) {
    cause = "unknown error";
  }
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      Clock::now() - start);
  std::string msg = what;
  if (mentionsTimeout(cause))
    msg += " timed out after " + formatSeconds(elapsed) + " s: ";
  else if (elapsed >= timeout_ * 9 / 10)
    // The first rank to time out closes its connections; its peers then see
    // a closed connection at about the same moment.
    msg += " timed out after " + formatSeconds(elapsed) +
           " s (here or on a peer, which then closed its connections): ";
  else
    msg += " failed: ";
  msg += cause + "; " + whoLeft(mentionsTimeout(cause)) + " (timeout " +
         formatSeconds(timeout_) + " s, set with --comm-timeout)";
  g.failure = msg;
  return Status::error(msg);
}

//===----------------------------------------------------------------------===//
// Collectives
//===----------------------------------------------------------------------===//

Status GlooCommunicator::reduceInto(const char *what, Group &g, const void *in,
                                    void *out, DType dtype, int64_t count,
                                    ReduceOp op) {
  const size_t bytes = static_cast<size_t>(count) * dtypeSize(dtype);
  if (!g.context || count == 0) {
    if (in != out)
      std::memmove(out, in, bytes);
    return Status::ok();
  }
  std::vector<float> wide;
  if (dtype == DType::F16 || dtype == DType::BF16) {
    wide.resize(static_cast<size_t>(count));
    toFloat(in, dtype, wide.data(), count);
  } else if (in != out) {
    std::memmove(out, in, bytes);
  }
  Status s = guarded(g, describe(what, g), [&] {
    uint32_t tag = g.nextTag++;
    switch (dtype) {
    case DType::F32:
      allReduceInPlace(g.context, static_cast<float *>(out), count, op, tag,
                       timeout_);
      break;
    case DType::I32:
      allReduceInPlace(g.context, static_cast<int32_t *>(out), count, op, tag,
                       timeout_);
      break;
    case DType::I64:
      allReduceInPlace(g.context, static_cast<int64_t *>(out), count, op, tag,
                       timeout_);
      break;
    case DType::F16:
    case DType::BF16:
      allReduceInPlace(g.context, wide.data(), count, op, tag, timeout_);
      break;
    case DType::F64:
      allReduceInPlace(g.context, static_cast<double *>(out), count, op, tag,
                       timeout_);
      break;
    case DType::Bool:
      break; // Rejected by the callers.
    }
  });
  if (s && !wide.empty())
    fromFloat(wide.data(), dtype, out, count);
  return s;
}

Status GlooCommunicator::allReduce(const TensorRef &in, const TensorRef &out,
                                   ReduceOp op, const RankGroup &group) {
  Group *g = nullptr;
  if (Status s = findGroup("all_reduce", group, g); !s)
    return s;
  std::string head = describe("all_reduce", *g) + ": ";
  if (in.dtype != out.dtype || in.numel() != out.numel())
    return Status::error(
        head + "the output (" + dtypeName(out.dtype) + " " +
        formatShape(out.shape) + ") must have the input's type and size (" +
        dtypeName(in.dtype) + " " + formatShape(in.shape) + ")");
  if (in.dtype == DType::Bool)
    return Status::error(head + "bool tensors cannot be reduced; reduce them "
                                "as int32");
  return reduceInto("all_reduce", *g, in.data, out.data, in.dtype, in.numel(),
                    op);
}

Status GlooCommunicator::allGather(const TensorRef &in, const TensorRef &out,
                                   int64_t dim, const RankGroup &group) {
  Group *g = nullptr;
  if (Status s = findGroup("all_gather", group, g); !s)
    return s;
  const int64_t n = static_cast<int64_t>(g->ranks.size());
  std::string head = describe("all_gather", *g) + ": ";
  int64_t d = dim;
  if (!normalizeDim(d, in.shape.size()))
    return Status::error(head + "dim " + std::to_string(dim) +
                         " is out of range for an input of shape " +
                         formatShape(in.shape));
  std::vector<int64_t> expected = in.shape;
  expected[d] *= n;
  if (in.dtype != out.dtype || out.shape != expected)
    return Status::error(head + "gathering " + dtypeName(in.dtype) + " " +
                         formatShape(in.shape) + " along dim " +
                         std::to_string(dim) + " from " + std::to_string(n) +
                         " ranks makes " + dtypeName(in.dtype) + " " +
                         formatShape(expected) + ", but the output is " +
                         dtypeName(out.dtype) + " " + formatShape(out.shape));
  if (!g->context || in.bytes() == 0) {
    if (in.data != out.data)
      std::memmove(out.data, in.data, in.bytes());
    return Status::ok();
  }
  // Gloo lays the inputs end to end; that is `out` itself only when nothing
  // precedes `dim`.
  const int64_t outer = product(in.shape, 0, d);
  const size_t block = in.bytes() / static_cast<size_t>(outer);
  const bool direct =
      outer == 1 && !overlaps(in.data, in.bytes(), out.data, out.bytes());
  std::vector<char> temp(direct ? 0 : out.bytes());
  char *gathered = direct ? static_cast<char *>(out.data) : temp.data();
  std::vector<char> input;
  const void *src = in.data;
  if (!direct && overlaps(in.data, in.bytes(), out.data, out.bytes())) {
    input.assign(static_cast<char *>(in.data),
                 static_cast<char *>(in.data) + in.bytes());
    src = input.data();
  }
  Status s = guarded(*g, describe("all_gather", *g), [&] {
    gloo::AllgatherOptions opts(g->context);
    opts.setInput(static_cast<char *>(const_cast<void *>(src)), in.bytes());
    opts.setOutput(gathered, out.bytes());
    opts.setTag(g->nextTag++);
    opts.setTimeout(timeout_);
    gloo::allgather(opts);
  });
  if (!s || direct)
    return s;
  // gathered is [rank][outer][block]; out is [outer][rank][block].
  for (int64_t r = 0; r < n; ++r)
    copyBlocks(static_cast<char *>(out.data) + r * block, n * block,
               gathered + r * in.bytes(), block, block, outer);
  return Status::ok();
}

Status GlooCommunicator::reduceScatter(const TensorRef &in,
                                       const TensorRef &out, ReduceOp op,
                                       int64_t dim, const RankGroup &group) {
  Group *g = nullptr;
  if (Status s = findGroup("reduce_scatter", group, g); !s)
    return s;
  const int64_t n = static_cast<int64_t>(g->ranks.size());
  std::string head = describe("reduce_scatter", *g) + ": ";
  int64_t d = dim;
  if (!normalizeDim(d, in.shape.size()))
    return Status::error(head + "dim " + std::to_string(dim) +
                         " is out of range for an input of shape " +
                         formatShape(in.shape));
  if (in.shape[d] % n != 0)
    return Status::error(
        head + "dim " + std::to_string(dim) + " of " + formatShape(in.shape) +
        " (" + std::to_string(in.shape[d]) + ") does not split evenly over " +
        std::to_string(n) + " ranks");
  std::vector<int64_t> expected = in.shape;
  expected[d] /= n;
  if (in.dtype != out.dtype || out.shape != expected)
    return Status::error(
        head + "scattering " + dtypeName(in.dtype) + " " +
        formatShape(in.shape) + " along dim " + std::to_string(dim) + " over " +
        std::to_string(n) + " ranks leaves " + dtypeName(in.dtype) + " " +
        formatShape(expected) + " on each, but the output is " +
        dtypeName(out.dtype) + " " + formatShape(out.shape));
  if (in.dtype == DType::Bool)
    return Status::error(head + "bool tensors cannot be reduced; reduce them "
                                "as int32");
  if (in.bytes() == 0)
    return Status::ok();
  // The whole reduction, then this rank's slice of it: Gloo's reduce-scatter
  // only cuts flat buffers at power-of-two-friendly offsets.
  std::vector<char> reduced(in.bytes());
  if (Status s = reduceInto("reduce_scatter", *g, in.data, reduced.data(),
                            in.dtype, in.numel(), op);
      !s)
    return s;
  const int64_t outer = product(in.shape, 0, d);
  const size_t block = out.bytes() / static_cast<size_t>(outer);
  copyBlocks(static_cast<char *>(out.data), block,
             reduced.data() + g->index * block, n * block, block, outer);
  return Status::ok();
}

Status GlooCommunicator::allToAll(const TensorRef &in, const TensorRef &out,
                                  int64_t splitDim, int64_t concatDim,
                                  const RankGroup &group) {
  Group *g = nullptr;
  if (Status s = findGroup("all_to_all", group, g); !s)
    return s;
  const int64_t n = static_cast<int64_t>(g->ranks.size());
  std::string head = describe("all_to_all", *g) + ": ";
  int64_t sd = splitDim, cd = concatDim;
  if (!normalizeDim(sd, in.shape.size()) || !normalizeDim(cd, in.shape.size()))
    return Status::error(head + "split dim " + std::to_string(splitDim) +
                         " or concat dim " + std::to_string(concatDim) +
                         " is out of range for an input of shape " +
                         formatShape(in.shape));
  if (in.shape[sd] % n != 0)
    return Status::error(
        head + "split dim " + std::to_string(splitDim) + " of " +
        formatShape(in.shape) + " (" + std::to_string(in.shape[sd]) +
        ") does not split evenly over " + std::to_string(n) + " ranks");
  std::vector<int64_t> chunk = in.shape;
  chunk[sd] /= n;
  std::vector<int64_t> expected = chunk;
  expected[cd] *= n;
  if (in.dtype != out.dtype || out.shape != expected)
    return Status::error(
        head + "splitting " + dtypeName(in.dtype) + " " +
        formatShape(in.shape) + " along dim " + std::to_string(splitDim) +
        " and concatenating along " + std::to_string(concatDim) + " makes " +
        dtypeName(in.dtype) + " " + formatShape(expected) +
        ", but the output is " + dtypeName(out.dtype) + " " +
        formatShape(out.shape));
  if (!g->context || in.bytes() == 0) {
    if (in.data != out.data)
      std::memmove(out.data, in.data, in.bytes());
    return Status::ok();
  }
  const size_t es = dtypeSize(in.dtype);
  const size_t chunkBytes = in.bytes() / static_cast<size_t>(n);
  // Send buffer: chunk j (for group rank j) contiguous. `in` is
  // [outerS][n][innerS].
  const int64_t outerS = product(in.shape, 0, sd);
  const size_t innerS =
      static_cast<size_t>(product(chunk, sd, chunk.size())) * es;
  std::vector<char> packed;
  char *sendBuf = static_cast<char *>(in.data);
  if (outerS != 1) {
    packed.resize(in.bytes());
    for (int64_t j = 0; j < n; ++j)
      copyBlocks(packed.data() + j * chunkBytes, innerS,
                 static_cast<char *>(in.data) + j * innerS, n * innerS, innerS,
                 outerS);
    sendBuf = packed.data();
  }
  // Receive buffer: chunk j from group rank j contiguous. `out` is
  // [outerC][n][innerC].
  const int64_t outerC = product(chunk, 0, cd);
  const size_t innerC =
      static_cast<size_t>(product(chunk, cd, chunk.size())) * es;
  const bool direct =
      outerC == 1 && !overlaps(sendBuf, in.bytes(), out.data, out.bytes());
  std::vector<char> received(direct ? 0 : out.bytes());
  char *recvBuf = direct ? static_cast<char *>(out.data) : received.data();
  Status s = guarded(*g, describe("all_to_all", *g), [&] {
    gloo::AlltoallOptions opts(g->context);
    opts.setInput(sendBuf, in.bytes());
    opts.setOutput(recvBuf, out.bytes());
    opts.setTag(g->nextTag++);
    opts.setTimeout(timeout_);
    gloo::alltoall(opts);
  });
  if (!s || direct)
    return s;
  for (int64_t j = 0; j < n; ++j)
    copyBlocks(static_cast<char *>(out.data) + j * innerC, n * innerC,
               recvBuf + j * chunkBytes, innerC, innerC, outerC);
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Point-to-point
//===----------------------------------------------------------------------===//

Status GlooCommunicator::send(const TensorRef &tensor, int peer, int64_t tag) {
  return pointToPoint(/*sending=*/true, tensor, peer, tag);
}

Status GlooCommunicator::recv(const TensorRef &tensor, int peer, int64_t tag) {
  return pointToPoint(/*sending=*/false, tensor, peer, tag);
}

Status GlooCommunicator::pointToPoint(bool sending, const TensorRef &tensor,
                                      int peer, int64_t tag) {
  std::string what = "rank " + std::to_string(rank_) +
                     (sending ? ": send to rank " : ": receive from rank ") +
                     std::to_string(peer) + " (tag " + std::to_string(tag) +
                     ")";
  if (peer < 0 || peer >= size_ || peer == rank_)
    return Status::error(what +
                         ": the peer must be another rank of this run "
                         "of " +
                         std::to_string(size_) + " ranks");
  Group *world = nullptr;
  if (Status s = findGroup(sending ? "send" : "recv", {}, world); !s)
    return s;
  if (tensor.bytes() == 0)
    return Status::ok();
  uint64_t slot = kSendRecvSlotPrefix |
                  (static_cast<uint64_t>(tag) & ((uint64_t(1) << 56) - 1));
  return guarded(*world, what, [&] {
    if (sending) {
      // Posted now, waited for by waitSends(): a pipeline's stages send
      // to each other at the same time, and a send waits for its receive.
      PendingSend pending;
      pending.bytes.assign(static_cast<const char *>(tensor.data),
                           static_cast<const char *>(tensor.data) +
                               tensor.bytes());
      pending.buffer = world->context->createUnboundBuffer(
          pending.bytes.data(), pending.bytes.size());
      pending.what = what;
      pending.buffer->send(peer, slot);
      pendingSends_.push_back(std::move(pending));
      return;
    }
    {
      auto buf =
          world->context->createUnboundBuffer(tensor.data, tensor.bytes());
      buf->recv(peer, slot);
      if (!buf->waitRecv(timeout_))
        throw std::runtime_error("the receive was aborted");
    }
  });
}

Status GlooCommunicator::waitSends() {
  if (pendingSends_.empty())
    return Status::ok();
  Group *world = nullptr;
  if (Status s = findGroup("send", {}, world); !s)
    return s;
  Status status = Status::ok();
  for (PendingSend &p : pendingSends_) {
    if (!status)
      break;
    status = guarded(*world, p.what, [&] {
      if (!p.buffer->waitSend(timeout_))
        throw std::runtime_error("the send was aborted");
    });
  }
  pendingSends_.clear();
  return status;
}

} // namespace colossal::rt
