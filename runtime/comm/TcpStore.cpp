//===- TcpStore.cpp - A key-value store over TCP for rendezvous -----------===//
//
// The server is one thread polling non-blocking sockets: requests are small
// and answered at once, so it needs no per-client state beyond buffers.
// Clients wait for keys by asking again with a growing pause rather than
// parking on the server, which keeps every request a plain round trip and
// lets a client give up at its own deadline without leaving a half-answered
// request behind.
//
// Wire format: every message is a 4-byte big-endian length and a payload;
// a request's payload starts with an op byte.
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/TcpStore.h"

#include <gloo/common/error.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <list>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace colossal::rt {
namespace {

using Clock = std::chrono::steady_clock;

// A frame larger than this is garbage (or not our protocol): drop the peer.
constexpr uint32_t kMaxFrame = 64u << 20;

enum Op : char {
  OpHello = 'H',
  OpSet = 'S',
  OpGet = 'G',
  OpCheck = 'C',
  OpJoined = 'J',
  OpDeparted = 'D',
};

void putU32(std::vector<char> &buf, uint32_t v) {
  uint32_t be = htonl(v);
  const char *p = reinterpret_cast<const char *>(&be);
  buf.insert(buf.end(), p, p + 4);
}

bool getU32(const char *&p, const char *end, uint32_t &v) {
  if (end - p < 4)
    return false;
  uint32_t be;
  std::memcpy(&be, p, 4);
  v = ntohl(be);
  p += 4;
  return true;
}

void putString(std::vector<char> &buf, const std::string &s) {
  putU32(buf, static_cast<uint32_t>(s.size()));
  buf.insert(buf.end(), s.begin(), s.end());
}

bool getString(const char *&p, const char *end, std::string &s) {
  uint32_t n;
  if (!getU32(p, end, n) || static_cast<size_t>(end - p) < n)
    return false;
  s.assign(p, n);
  p += n;
  return true;
}

std::string formatSeconds(std::chrono::milliseconds ms) {
  std::ostringstream os;
  os << static_cast<double>(ms.count()) / 1000.0;
  return os.str();
}

std::string joinKeys(const std::vector<std::string> &keys) {
  std::string s;
  for (size_t i = 0; i < keys.size(); ++i)
    s += (i ? ", '" : "'") + keys[i] + "'";
  return s;
}

void closeFd(int &fd) {
  if (fd >= 0)
    ::close(fd);
  fd = -1;
}

} // namespace

//===----------------------------------------------------------------------===//
// The server
//===----------------------------------------------------------------------===//

/// The key-value table and the thread serving it. Only that thread touches
/// the table, so it takes no lock.
class TcpStoreServer {
public:
  static Status start(int port, std::unique_ptr<TcpStoreServer> &out) {
    std::unique_ptr<TcpStoreServer> server(new TcpStoreServer());
    if (Status s = server->listenOn(port); !s)
      return s;
    server->thread_ = std::thread([s = server.get()] { s->run(); });
    out = std::move(server);
    return Status::ok();
  }

  ~TcpStoreServer() {
    if (thread_.joinable()) {
      char byte = 0;
      // The loop wakes on this byte and leaves once the other ranks have
      // hung up, or kLinger later; nothing else can stop poll().
      while (::write(wake_[1], &byte, 1) < 0 && errno == EINTR) {
      }
      thread_.join();
    }
    closeFd(listenFd_);
    closeFd(wake_[0]);
    closeFd(wake_[1]);
  }

  int port() const { return port_; }

private:
  struct Conn {
    int fd = -1;
    int rank = -1; // said in its hello
    std::vector<char> in;
    std::vector<char> out;
  };

  TcpStoreServer() = default;

  static constexpr std::chrono::milliseconds kLinger{3000};

  Status listenOn(int port) {
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0)
      return Status::error(std::string("cannot start the rendezvous server: "
                                       "pipe: ") +
                           std::strerror(errno));
    listenFd_ =
        ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listenFd_ < 0)
      return Status::error(std::string("cannot start the rendezvous server: "
                                       "socket: ") +
                           std::strerror(errno));
    int on = 1;
    ::setsockopt(listenFd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (::bind(listenFd_, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) !=
        0) {
      int err = errno;
      return Status::error("cannot serve the rendezvous store on port " +
                           std::to_string(port) + ": " + std::strerror(err) +
                           (err == EADDRINUSE
                                ? "; another job (or an earlier run still "
                                  "exiting) uses this MASTER_PORT: pick another"
                                : ""));
    }
    if (::listen(listenFd_, 128) != 0)
      return Status::error(std::string("cannot start the rendezvous server: "
                                       "listen: ") +
                           std::strerror(errno));
    socklen_t len = sizeof(addr);
    ::getsockname(listenFd_, reinterpret_cast<sockaddr *>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    return Status::ok();
  }

  void run() {
    std::list<Conn> conns;
    std::vector<pollfd> fds;
    std::vector<Conn *> order;
    // Asked to stop, the server lingers while other ranks are still
    // connected (a bounded while): survivors of a failed collective ask it
    // which rank left, and rank 0 often fails first.
    bool closing = false;
    auto deadline = std::chrono::steady_clock::now();
    while (true) {
      int waitMs = -1;
      if (closing) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
        if (conns.empty() || left <= 0)
          break;
        waitMs = static_cast<int>(left);
      }
      fds.clear();
      order.clear();
      fds.push_back({wake_[0], POLLIN, 0});
      fds.push_back({listenFd_, POLLIN, 0});
      for (Conn &c : conns) {
        fds.push_back(
            {c.fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)),
             0});
        order.push_back(&c);
      }
      if (::poll(fds.data(), fds.size(), waitMs) < 0) {
        if (errno == EINTR)
          continue;
        break;
      }
      if (fds[0].revents && !closing) {
        char byte;
        while (::read(wake_[0], &byte, 1) > 0) {
        }
        closing = true;
        deadline = std::chrono::steady_clock::now() + kLinger;
      }
      if (fds[1].revents & POLLIN)
        acceptAll(conns);
      for (size_t i = 0; i < order.size(); ++i) {
        Conn &c = *order[i];
        short ev = fds[i + 2].revents;
        bool alive = true;
        if (ev & (POLLIN | POLLHUP | POLLERR))
          alive = readFrom(c);
        if (alive && !c.out.empty())
          alive = flush(c);
        if (!alive) {
          // A rank whose connection closes has left the run (finished,
          // or died): peers whose collectives fail can name it.
          if (c.rank >= 0)
            departed_.insert(static_cast<uint32_t>(c.rank));
          closeFd(c.fd);
        }
      }
      conns.remove_if([](const Conn &c) { return c.fd < 0; });
    }
    for (Conn &c : conns)
      closeFd(c.fd);
  }

  void acceptAll(std::list<Conn> &conns) {
    while (true) {
      int fd =
          ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0)
        return;
      int on = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
      conns.emplace_back();
      conns.back().fd = fd;
    }
  }

  /// Reads what is there and answers every complete request; false drops
  /// the connection (closed, failed or spoke garbage).
  bool readFrom(Conn &c) {
    char buf[65536];
    while (true) {
      ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
      if (n > 0) {
        c.in.insert(c.in.end(), buf, buf + n);
        continue;
      }
      if (n == 0)
        return false;
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      return false;
    }
    size_t pos = 0;
    while (c.in.size() - pos >= 4) {
      const char *p = c.in.data() + pos;
      uint32_t len;
      getU32(p, p + 4, len);
      if (len > kMaxFrame || len == 0)
        return false;
      if (c.in.size() - pos - 4 < len)
        break;
      std::vector<char> reply;
      if (!answer(c, c.in.data() + pos + 4, len, reply))
        return false;
      putU32(c.out, static_cast<uint32_t>(reply.size()));
      c.out.insert(c.out.end(), reply.begin(), reply.end());
      pos += 4 + len;
    }
    c.in.erase(c.in.begin(), c.in.begin() + pos);
    return true;
  }

  bool answer(Conn &c, const char *p, uint32_t len, std::vector<char> &reply) {
    const char *end = p + len;
    char op = *p++;
    switch (op) {
    case OpHello: {
      uint32_t rank;
      if (!getU32(p, end, rank))
        return false;
      joined_.insert(rank);
      c.rank = static_cast<int>(rank);
      reply.push_back(0);
      return true;
    }
    case OpSet: {
      std::string key;
      if (!getString(p, end, key))
        return false;
      data_[key].assign(p, end);
      reply.push_back(0);
      return true;
    }
    case OpGet: {
      std::string key(p, end);
      auto it = data_.find(key);
      reply.push_back(it != data_.end() ? 1 : 0);
      if (it != data_.end())
        reply.insert(reply.end(), it->second.begin(), it->second.end());
      return true;
    }
    case OpCheck: {
      uint32_t n;
      if (!getU32(p, end, n))
        return false;
      bool all = true;
      for (uint32_t i = 0; i < n; ++i) {
        std::string key;
        if (!getString(p, end, key))
          return false;
        all = all && data_.count(key) != 0;
      }
      reply.push_back(all ? 1 : 0);
      return true;
    }
    case OpJoined:
      putU32(reply, static_cast<uint32_t>(joined_.size()));
      return true;
    case OpDeparted:
      putU32(reply, static_cast<uint32_t>(departed_.size()));
      for (uint32_t r : departed_)
        putU32(reply, r);
      return true;
    default:
      return false;
    }
  }

  bool flush(Conn &c) {
    size_t done = 0;
    while (done < c.out.size()) {
      ssize_t n =
          ::send(c.fd, c.out.data() + done, c.out.size() - done, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      return false;
    }
    c.out.erase(c.out.begin(), c.out.begin() + done);
    return true;
  }

  int listenFd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
  std::unordered_map<std::string, std::vector<char>> data_;
  std::set<uint32_t> joined_;
  std::set<uint32_t> departed_;
};

//===----------------------------------------------------------------------===//
// The client
//===----------------------------------------------------------------------===//

TcpStore::TcpStore(const TcpStoreOptions &options)
    : options_(options), port_(options.port) {}

TcpStore::~TcpStore() {
  closeFd(fd_);
  // The server goes last: rank 0's own client has hung up by now.
  server_.reset();
}

Status TcpStore::create(const TcpStoreOptions &options,
                        std::shared_ptr<TcpStore> &out) {
  if (options.port < 0 || options.port > 65535 ||
      (options.port == 0 && !options.isServer))
    return Status::error("rendezvous port " + std::to_string(options.port) +
                         " is not a TCP port (1-65535); check MASTER_PORT");
  std::shared_ptr<TcpStore> store(new TcpStore(options));
  if (options.isServer) {
    if (Status s = TcpStoreServer::start(options.port, store->server_); !s)
      return s;
    store->port_ = store->server_->port();
  }
  if (Status s = store->connectToServer(); !s)
    return s;
  out = std::move(store);
  return Status::ok();
}

std::string TcpStore::address() const {
  return options_.host + ":" + std::to_string(port_);
}

Status TcpStore::connectToServer() {
  const auto deadline = Clock::now() + options_.timeout;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  std::string lastError;
  auto pause = std::chrono::milliseconds(20);
  while (true) {
    addrinfo *res = nullptr;
    int rv = ::getaddrinfo(options_.host.c_str(), std::to_string(port_).c_str(),
                           &hints, &res);
    if (rv != 0) {
      // A name that does not resolve now may resolve in a moment (DNS of a
      // just-started node), so this is retried like a refused connection.
      lastError = std::string("cannot resolve '") + options_.host +
                  "': " + ::gai_strerror(rv);
    } else {
      for (addrinfo *ai = res; ai && fd_ < 0; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family,
                          ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                          ai->ai_protocol);
        if (fd < 0) {
          lastError = std::string("socket: ") + std::strerror(errno);
          continue;
        }
        // Non-blocking connect, so an unreachable host costs at most the
        // time left rather than the kernel's minutes of SYN retries.
        int c = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (c != 0 && errno == EINPROGRESS) {
          auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
              deadline - Clock::now());
          pollfd pfd{fd, POLLOUT, 0};
          int pr = ::poll(&pfd, 1, std::max<int64_t>(left.count(), 1));
          int err = ETIMEDOUT;
          socklen_t len = sizeof(err);
          if (pr > 0)
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
          c = err == 0 ? 0 : -1;
          errno = err;
        }
        if (c != 0) {
          lastError = std::strerror(errno);
          ::close(fd);
          continue;
        }
        int flags = ::fcntl(fd, F_GETFL);
        ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        int on = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
        fd_ = fd;
      }
      ::freeaddrinfo(res);
    }
    if (fd_ >= 0)
      break;
    auto now = Clock::now();
    if (now >= deadline)
      return Status::error(
          "rank " + std::to_string(options_.rank) +
          ": cannot reach the rendezvous server at " + address() + " (" +
          lastError + ") after " + formatSeconds(options_.timeout) +
          " s; is rank 0 running, and are MASTER_ADDR and MASTER_PORT the "
          "same on every rank and reachable from this node?");
    std::this_thread::sleep_for(
        std::min<Clock::duration>(pause, deadline - now));
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
  try {
    std::vector<char> hello{OpHello};
    putU32(hello, static_cast<uint32_t>(options_.rank));
    request(hello, Clock::now() + options_.timeout);
  } catch (const std::exception &e) {
    return Status::error("rank " + std::to_string(options_.rank) +
                         ": rendezvous with " + address() +
                         " failed: " + e.what());
  }
  return Status::ok();
}

std::vector<char> TcpStore::request(const std::vector<char> &payload,
                                    Clock::time_point deadline) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (fd_ < 0)
    throw gloo::IoException("the connection to the rendezvous server at " +
                            address() + " was lost earlier");
  std::vector<char> frame;
  putU32(frame, static_cast<uint32_t>(payload.size()));
  frame.insert(frame.end(), payload.begin(), payload.end());
  auto lost = [&](const std::string &why) {
    // A half-sent request or half-read reply leaves the stream out of step:
    // the connection is unusable from here on.
    closeFd(fd_);
    return gloo::IoException("the connection to the rendezvous server at " +
                             address() + " " + why +
                             " (has rank 0 exited or failed?)");
  };
  size_t done = 0;
  while (done < frame.size()) {
    ssize_t n =
        ::send(fd_, frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      throw lost(std::string("failed: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  auto readExactly = [&](char *dst, size_t size) {
    size_t got = 0;
    while (got < size) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - Clock::now());
      pollfd pfd{fd_, POLLIN, 0};
      int pr = ::poll(&pfd, 1, std::max<int64_t>(left.count(), 0));
      if (pr < 0 && errno == EINTR)
        continue;
      if (pr == 0)
        throw lost("timed out waiting for an answer");
      ssize_t n = ::recv(fd_, dst + got, size - got, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n == 0)
        throw lost("was closed by the server");
      if (n < 0)
        throw lost(std::string("failed: ") + std::strerror(errno));
      got += static_cast<size_t>(n);
    }
  };
  char header[4];
  readExactly(header, 4);
  const char *p = header;
  uint32_t len;
  getU32(p, header + 4, len);
  if (len > kMaxFrame)
    throw lost("sent a malformed answer");
  std::vector<char> reply(len);
  readExactly(reply.data(), len);
  return reply;
}

void TcpStore::set(const std::string &key, const std::vector<char> &data) {
  std::vector<char> payload{OpSet};
  putString(payload, key);
  payload.insert(payload.end(), data.begin(), data.end());
  request(payload, Clock::now() + options_.timeout);
}

std::vector<char> TcpStore::get(const std::string &key) {
  wait({key});
  std::vector<char> payload(1 + key.size());
  payload[0] = OpGet;
  std::copy(key.begin(), key.end(), payload.begin() + 1);
  std::vector<char> reply = request(payload, Clock::now() + options_.timeout);
  if (reply.empty() || reply[0] != 1)
    throw gloo::IoException("rendezvous store at " + address() + " lost key '" +
                            key + "'");
  return std::vector<char>(reply.begin() + 1, reply.end());
}

bool TcpStore::allPresent(const std::vector<std::string> &keys,
                          Clock::time_point deadline) {
  std::vector<char> payload{OpCheck};
  putU32(payload, static_cast<uint32_t>(keys.size()));
  for (const std::string &k : keys)
    putString(payload, k);
  std::vector<char> reply = request(payload, deadline);
  return !reply.empty() && reply[0] == 1;
}

int TcpStore::joinedRanks() {
  std::vector<char> reply =
      request({OpJoined}, Clock::now() + options_.timeout);
  const char *p = reply.data();
  uint32_t n = 0;
  getU32(p, p + reply.size(), n);
  return static_cast<int>(n);
}

bool TcpStore::departedRanks(std::vector<int> &out) {
  out.clear();
  try {
    std::vector<char> reply =
        request({OpDeparted}, Clock::now() + std::chrono::milliseconds(2000));
    const char *p = reply.data(), *end = p + reply.size();
    uint32_t n = 0, r = 0;
    getU32(p, end, n);
    for (uint32_t i = 0; i < n && getU32(p, end, r); ++i)
      out.push_back(static_cast<int>(r));
    return true;
  } catch (const std::exception &) {
    return false;
  }
}

void TcpStore::wait(const std::vector<std::string> &keys) {
  wait(keys, options_.timeout);
}

void TcpStore::wait(const std::vector<std::string> &keys,
                    const std::chrono::milliseconds &timeout) {
  const bool forever = timeout == gloo::kNoTimeout;
  const auto start = Clock::now();
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    // Each round trip gets the store's own timeout: a key may take long to
    // appear, but a live server answers at once.
    if (allPresent(keys, Clock::now() + options_.timeout))
      return;
    auto now = Clock::now();
    if (!forever && now - start >= timeout)
      failWait(keys, timeout);
    auto sleep = forever
                     ? Clock::duration(pause)
                     : std::min<Clock::duration>(pause, start + timeout - now);
    std::this_thread::sleep_for(sleep);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
}

void TcpStore::failWait(const std::vector<std::string> &keys,
                        std::chrono::milliseconds timeout) {
  std::string why;
  try {
    int joined = joinedRanks();
    if (joined < options_.worldSize)
      why = ": not every rank has started (" + std::to_string(joined) + " of " +
            std::to_string(options_.worldSize) + " joined)";
    else
      why = ": all " + std::to_string(options_.worldSize) +
            " ranks joined, but not all reached this point (a rank failed, "
            "hangs or runs a different plan)";
  } catch (const std::exception &) {
    // The count is only a hint; the timeout is the error.
  }
  throw gloo::IoException("rendezvous with " + address() + " timed out after " +
                          formatSeconds(timeout) + " s waiting for key(s) " +
                          joinKeys(keys) + why);
}

} // namespace colossal::rt
