//===- CheckpointDir.cpp - The checkpoints of a training run --------------===//

#include "runtime/core/CheckpointDir.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <new>
#include <system_error>

#include <signal.h>
#include <sys/types.h>

namespace colossal::rt {
namespace {

namespace fs = std::filesystem;

const char kPrefix[] = "step-";
const char kSuffix[] = ".safetensors";

std::string fileNameOf(int64_t step) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "step-%08lld.safetensors",
                static_cast<long long>(step));
  return buf;
}

bool allDigits(const std::string &s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return c >= '0' && c <= '9'; });
}

// The step of a checkpoint file name; only names checkpointPath would give
// count, so that every listed step maps back to its file.
bool stepOfName(const std::string &name, int64_t &step) {
  size_t pre = sizeof(kPrefix) - 1, suf = sizeof(kSuffix) - 1;
  if (name.size() <= pre + suf || name.compare(0, pre, kPrefix) != 0 ||
      name.compare(name.size() - suf, suf, kSuffix) != 0)
    return false;
  std::string digits = name.substr(pre, name.size() - pre - suf);
  if (!allDigits(digits) || digits.size() > 18)
    return false;
  step = std::stoll(digits);
  return fileNameOf(step) == name;
}

// The writer's pid of a temporary named "<file>.tmp-<pid>".
bool pidOfTemporary(const std::string &name, long &pid) {
  size_t at = name.rfind(".tmp-");
  if (at == std::string::npos || at == 0)
    return false;
  std::string digits = name.substr(at + 5);
  if (!allDigits(digits) || digits.size() > 9)
    return false;
  pid = std::stol(digits);
  return true;
}

bool processAlive(long pid) {
  if (pid <= 0)
    return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

// Messages become single warning lines.
std::string oneLine(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

// Calls `visit(name, path)` for each regular file in `dir`.
template <typename Visit>
Status forEachFile(const std::string &dir, Visit visit) {
  std::error_code ec;
  fs::directory_iterator it(dir.empty() ? "." : dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code typeEc;
    if (it->is_regular_file(typeEc))
      visit(it->path().filename().string(), it->path().string());
  }
  if (ec)
    return Status::error("cannot list checkpoint directory '" + dir +
                         "': " + ec.message());
  return Status::ok();
}

Status listSteps(const std::string &dir, std::vector<int64_t> &steps) {
  std::error_code ec;
  fs::file_status st = fs::status(dir.empty() ? "." : dir, ec);
  if (st.type() == fs::file_type::not_found)
    return Status::ok();
  if (ec)
    return Status::error("cannot read checkpoint directory '" + dir +
                         "': " + ec.message());
  if (!fs::is_directory(st))
    return Status::error("checkpoint directory '" + dir +
                         "' is not a directory; pass the directory the "
                         "checkpoints are saved in");
  Status s =
      forEachFile(dir, [&](const std::string &name, const std::string &) {
        int64_t step;
        if (stepOfName(name, step))
          steps.push_back(step);
      });
  std::sort(steps.begin(), steps.end());
  return s;
}

Status loadLatest(const std::string &dir, int64_t &step,
                  std::vector<SafetensorsEntry> &tensors,
                  std::map<std::string, std::string> &metadata,
                  std::vector<std::string> &warnings, bool &found) {
  std::vector<int64_t> steps;
  if (Status s = listSteps(dir, steps); !s)
    return s;
  for (size_t i = steps.size(); i-- > 0;) {
    Status s =
        readSafetensors(checkpointPath(dir, steps[i]), tensors, metadata);
    if (s) {
      step = steps[i];
      found = true;
      return Status::ok();
    }
    warnings.push_back(oneLine("skipped the step " + std::to_string(steps[i]) +
                               " checkpoint: " + s.message() +
                               (i ? "; trying the next older checkpoint"
                                  : "; no older checkpoint is left")));
  }
  if (steps.empty())
    return Status::ok();
  return Status::error(
      "none of the " + std::to_string(steps.size()) + " checkpoints in '" +
      dir +
      "' could be loaded (the warnings say why each was skipped); restore one "
      "from a copy, or move them away to start the run from scratch");
}

// The first existing prefix of `dir` that is not a directory, if any.
std::string blockerOf(const std::string &dir) {
  fs::path prefix;
  for (const fs::path &part : fs::path(dir)) {
    prefix /= part;
    std::error_code ec;
    fs::file_status st = fs::status(prefix, ec);
    if (fs::exists(st) && !fs::is_directory(st))
      return prefix.string();
  }
  return std::string();
}

Status ensureDir(const std::string &dir) {
  std::error_code ec;
  if (dir.empty() || fs::is_directory(dir, ec))
    return Status::ok();
  fs::create_directories(dir, ec);
  std::error_code checkEc;
  if (fs::is_directory(dir, checkEc))
    return Status::ok();
  std::string blocker = blockerOf(dir);
  if (!blocker.empty())
    return Status::error("cannot create directory '" + dir + "': '" + blocker +
                         "' is a file, not a directory; remove or rename it, "
                         "or choose another directory");
  return Status::error(
      "cannot create directory '" + dir +
      "': " + (ec ? ec.message() : std::string("unknown error")) +
      "; check the permissions of its parent or choose another directory");
}

Status prune(const std::string &dir, int keep, int64_t newest) {
  std::vector<int64_t> all, steps;
  if (Status s = listSteps(dir, all); !s)
    return s;
  // Only checkpoints up to `newest` (the one just written) compete; a later
  // step (a corrupt file the run skipped) is never a reason to delete one.
  for (int64_t step : all)
    if (step <= newest)
      steps.push_back(step);
  Status result;
  auto remove = [&](const std::string &path, const char *what) {
    std::error_code ec;
    if (!fs::remove(path, ec) && ec && result)
      result = Status::error("cannot delete " + std::string(what) + " '" +
                             path + "': " + ec.message() +
                             "; check the directory's permissions");
  };
  if (keep > 0 && steps.size() > static_cast<size_t>(keep))
    for (size_t i = 0; i < steps.size() - static_cast<size_t>(keep); ++i)
      remove(checkpointPath(dir, steps[i]), "old checkpoint");
  std::error_code ec;
  if (!fs::is_directory(dir.empty() ? "." : dir, ec))
    return result; // a missing directory holds nothing to prune
  std::vector<std::string> stale;
  Status s =
      forEachFile(dir, [&](const std::string &name, const std::string &path) {
        long pid;
        if (pidOfTemporary(name, pid) && !processAlive(pid))
          stale.push_back(path);
      });
  for (const std::string &path : stale)
    remove(path, "stale temporary");
  return result ? s : result;
}

// Runs `body`, turning exceptions (out of memory) into an error status.
template <typename Body> Status guarded(const std::string &what, Body body) {
  try {
    return body();
  } catch (const std::bad_alloc &) {
    return Status::error(what + ": out of host memory; free memory and retry");
  } catch (const std::exception &e) {
    return Status::error(what + ": " + e.what());
  }
}

} // namespace

std::string checkpointPath(const std::string &dir, int64_t step) {
  return (fs::path(dir) / fileNameOf(step)).string();
}

Status listCheckpoints(const std::string &dir, std::vector<int64_t> &steps) {
  steps.clear();
  Status s = guarded("listing checkpoints in '" + dir + "'",
                     [&] { return listSteps(dir, steps); });
  if (!s)
    steps.clear();
  return s;
}

Status loadLatestCheckpoint(const std::string &dir, int64_t &step,
                            std::vector<SafetensorsEntry> &tensors,
                            std::map<std::string, std::string> &metadata,
                            std::vector<std::string> &warnings, bool &found) {
  found = false;
  step = -1;
  tensors.clear();
  metadata.clear();
  return guarded("loading the latest checkpoint in '" + dir + "'", [&] {
    return loadLatest(dir, step, tensors, metadata, warnings, found);
  });
}

Status ensureDirectory(const std::string &dir) {
  return guarded("creating directory '" + dir + "'",
                 [&] { return ensureDir(dir); });
}

Status pruneCheckpoints(const std::string &dir, int keep, int64_t newest) {
  return guarded("pruning checkpoints in '" + dir + "'",
                 [&] { return prune(dir, keep, newest); });
}

} // namespace colossal::rt
