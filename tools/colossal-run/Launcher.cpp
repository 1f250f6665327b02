//===- Launcher.cpp - colossal-run --ranks N: ranks as child processes ----===//

#include "tools/colossal-run/Launcher.h"

#include "runtime/comm/Launch.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

namespace colossal::tools {
namespace {

using rt::Status;

std::string describeExit(int status) {
  if (WIFEXITED(status))
    return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char *name = ::strsignal(sig);
    return "was killed by signal " + std::to_string(sig) +
           (name ? std::string(" (") + name + ")" : std::string());
  }
  return "stopped";
}

volatile sig_atomic_t forwardSignal = 0;
void onSignal(int sig) { forwardSignal = sig; }

} // namespace

Status launchRanks(int ranks, const std::vector<std::string> &args,
                   int timeoutSeconds) {
  int port = 0;
  if (Status s = rt::pickFreePort(port); !s)
    return s;
  std::fflush(stdout);
  std::fflush(stderr);
  std::vector<pid_t> pids(ranks, -1);
  for (int r = 0; r < ranks; ++r) {
    pid_t pid = ::fork();
    if (pid < 0) {
      for (pid_t p : pids)
        if (p > 0)
          ::kill(p, SIGKILL);
      return Status::error(std::string("cannot start rank ") +
                           std::to_string(r) + ": " + std::strerror(errno));
    }
    if (pid == 0) {
      // The environment torchrun sets: the child finds its world there.
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(ranks).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(ranks).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      ::setenv("COLOSSAL_LAUNCHER", "colossal-run", 1);
      std::vector<char *> argv;
      static const char self[] = "colossal-run";
      argv.push_back(const_cast<char *>(self));
      for (const std::string &a : args)
        argv.push_back(const_cast<char *>(a.c_str()));
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "colossal-run: rank %d: cannot start: %s\n", r,
                   std::strerror(errno));
      ::_exit(127);
    }
    pids[r] = pid;
  }

  // Ctrl-C reaches the children through the terminal's process group; a
  // signal sent to this process alone is passed on.
  struct sigaction action {
  }, oldInt{}, oldTerm{};
  action.sa_handler = onSignal;
  ::sigaction(SIGINT, &action, &oldInt);
  ::sigaction(SIGTERM, &action, &oldTerm);
  forwardSignal = 0;

  using Clock = std::chrono::steady_clock;
  int failedRank = -1, alive = ranks;
  std::string failure;
  Clock::time_point deadline{};
  while (alive > 0) {
    if (forwardSignal) {
      for (pid_t p : pids)
        if (p > 0)
          ::kill(p, forwardSignal);
      forwardSignal = 0;
    }
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (int r = 0; r < ranks; ++r) {
        if (pids[r] != pid)
          continue;
        pids[r] = -1;
        --alive;
        bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!ok && failedRank < 0) {
          failedRank = r;
          failure = describeExit(status);
          // The others notice through their collectives' timeout.
          deadline = Clock::now() + std::chrono::seconds(timeoutSeconds + 10);
        }
      }
      continue;
    }
    if (pid < 0 && errno != EINTR && errno != ECHILD)
      break;
    if (failedRank >= 0 && Clock::now() > deadline) {
      for (int r = 0; r < ranks; ++r)
        if (pids[r] > 0) {
          std::fprintf(stderr,
                       "colossal-run: rank %d did not stop within %d s after "
                       "rank %d failed; stopping it\n",
                       r, timeoutSeconds + 10, failedRank);
          ::kill(pids[r], SIGKILL);
        }
      deadline = Clock::now() + std::chrono::hours(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::sigaction(SIGINT, &oldInt, nullptr);
  ::sigaction(SIGTERM, &oldTerm, nullptr);
  if (failedRank >= 0)
    return Status::error("rank " + std::to_string(failedRank) + " of " +
                         std::to_string(ranks) + " " + failure +
                         "; the run failed (the ranks' own messages are "
                         "above)");
  return Status::ok();
}

} // namespace colossal::tools
