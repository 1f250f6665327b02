//===- RuntimeSafetensorsTest.cpp - Safetensors files and checkpoints -----===//

#include "runtime/core/CheckpointDir.h"
#include "runtime/core/Safetensors.h"
#include "test/unit/runtime-core/TestPlans.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace colossal;

namespace {

#define EXPECT_HAS(haystack, needle)                                           \
  EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

using Metadata = std::map<std::string, std::string>;

std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeBytes(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A safetensors file with a hand-written header (as other writers, or
// corruption, produce them).
std::string fileWithHeader(const std::string &json, const std::string &data) {
  std::string out;
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((json.size() >> (8 * i)) & 0xff));
  return out + json + data;
}

rt::SafetensorsEntry entry(const std::string &name, rt::DType dtype,
                           std::vector<int64_t> shape, char seed = 1) {
  rt::SafetensorsEntry e{name, dtype, std::move(shape), {}};
  size_t bytes = rt::numElements(e.shape) * rt::dtypeSize(dtype);
  for (size_t i = 0; i < bytes; ++i)
    e.data.push_back(dtype == rt::DType::Bool
                         ? static_cast<char>(i % 2)
                         : static_cast<char>(i * 7 + seed));
  return e;
}

rt::Status write(const std::string &path,
                 const std::vector<rt::SafetensorsEntry> &tensors,
                 const Metadata &metadata = {}) {
  std::vector<const rt::SafetensorsEntry *> ptrs;
  for (const rt::SafetensorsEntry &t : tensors)
    ptrs.push_back(&t);
  return rt::writeSafetensors(path, ptrs, metadata);
}

// The message of reading `bytes` as a file, which must fail.
std::string readError(const std::string &bytes) {
  std::string path = rttest::makeTempDir() + "/bad.safetensors";
  writeBytes(path, bytes);
  std::vector<rt::SafetensorsEntry> tensors;
  Metadata metadata;
  rt::Status s = rt::readSafetensors(path, tensors, metadata);
  EXPECT_FALSE(s.isOk());
  EXPECT_TRUE(tensors.empty());
  EXPECT_HAS(s.message(), path);
  return s.message();
}

std::vector<std::string> filesIn(const std::string &dir) {
  std::vector<std::string> names;
  for (const auto &e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Runs `body` in a child process (so it may drop privileges or limit file
// sizes) and returns its result: "" for success, else what went wrong.
std::string inChild(const std::function<std::string()> &body) {
  int fds[2];
  if (::pipe(fds) != 0)
    return "pipe failed";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    std::string result = body();
    ssize_t ignored = ::write(fds[1], result.data(), result.size());
    (void)ignored;
    ::_exit(0); // no atexit handlers: they would delete the temp dirs
  }
  ::close(fds[1]);
  std::string result;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;)
    result.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return "child died: " + result;
  return result;
}

// What is wrong with the file at `path` if it does not hold `expected`.
std::string checkHolds(const std::string &path,
                       const std::vector<rt::SafetensorsEntry> &expected) {
  std::vector<rt::SafetensorsEntry> tensors;
  Metadata metadata;
  rt::Status s = rt::readSafetensors(path, tensors, metadata);
  if (!s)
    return s.message();
  if (tensors.size() != expected.size())
    return "wrong number of tensors";
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].name != expected[i].name ||
        tensors[i].data != expected[i].data)
      return "tensor " + expected[i].name + " changed";
  return "";
}

//===----------------------------------------------------------------------===//
// Round trips and the exact format
//===----------------------------------------------------------------------===//

TEST(RuntimeSafetensors, RoundTripEveryDType) {
  std::string path = rttest::makeTempDir() + "/all.safetensors";
  // Not sorted by name: the file keeps the order given.
  std::vector<rt::SafetensorsEntry> tensors = {
      entry("w.f32", rt::DType::F32, {2, 3}),
      entry("b.f16", rt::DType::F16, {4}),
      entry("e.bf16", rt::DType::BF16, {3, 1}),
      entry("a.i64", rt::DType::I64, {1, 2, 2}),
      entry("scalar.i32", rt::DType::I32, {}),
      entry("mask", rt::DType::Bool, {5}),
      entry("empty.f32", rt::DType::F32, {0, 3}),
      entry("empty.bool", rt::DType::Bool, {0}),
      entry("scalar.bf16", rt::DType::BF16, {}),
  };
  rt::Status w = write(path, tensors);
  ASSERT_TRUE(w.isOk()) << w.message();
  std::vector<rt::SafetensorsEntry> back;
  Metadata metadata;
  rt::Status s = rt::readSafetensors(path, back, metadata);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_TRUE(metadata.empty());
  ASSERT_EQ(back.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    SCOPED_TRACE(tensors[i].name);
    EXPECT_EQ(back[i].name, tensors[i].name);
    EXPECT_EQ(back[i].dtype, tensors[i].dtype);
    EXPECT_EQ(back[i].shape, tensors[i].shape);
    EXPECT_EQ(back[i].data, tensors[i].data);
  }
  EXPECT_EQ(filesIn(std::filesystem::path(path).parent_path().string()),
            std::vector<std::string>{"all.safetensors"});
}

TEST(RuntimeSafetensors, MetadataRoundTrip) {
  std::string path = rttest::makeTempDir() + "/m.safetensors";
  Metadata metadata = {{"format", "pt"},
                       {"step", "1200"},
                       {"quote\"and\\slash", "line\nbreak"},
                       {"unicode", "\xc3\xa9t\xc3\xa9"},
                       {"empty", ""}};
  ASSERT_TRUE(write(path, {entry("x", rt::DType::F32, {2})}, metadata).isOk());
  std::vector<rt::SafetensorsEntry> tensors;
  Metadata back;
  ASSERT_TRUE(rt::readSafetensors(path, tensors, back).isOk());
  EXPECT_EQ(back, metadata);

  // A file with metadata only.
  ASSERT_TRUE(write(path, {}, {{"only", "metadata"}}).isOk());
  ASSERT_TRUE(rt::readSafetensors(path, tensors, back).isOk());
  EXPECT_TRUE(tensors.empty());
  EXPECT_EQ(back, (Metadata{{"only", "metadata"}}));
}

TEST(RuntimeSafetensors, ExactBytesOfTinyFile) {
  std::string path = rttest::makeTempDir() + "/tiny.safetensors";
  rt::SafetensorsEntry a{"a", rt::DType::F32, {2}, {}};
  float values[2] = {1.0f, 2.0f};
  a.data.assign(reinterpret_cast<const char *>(values), 8);
  ASSERT_TRUE(rt::writeSafetensors(path, {&a}, {{"k", "v"}}).isOk());
  // 79 bytes of JSON, padded with one space to 80 = 0x50.
  std::string json = "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\","
                     "\"shape\":[2],\"data_offsets\":[0,8]}} ";
  std::string expected("\x50\0\0\0\0\0\0\0", 8);
  expected += json;
  expected += std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);
  EXPECT_EQ(readBytes(path), expected);
}

TEST(RuntimeSafetensors, ReadsOtherWritersLayouts) {
  // Entries listed out of data order, null metadata, no padding, spaces.
  std::string data(12, '\x01');
  std::string json = "{ \"__metadata__\": null,"
                     " \"z\": {\"dtype\": \"I32\", \"shape\": [1], "
                     "\"data_offsets\": [8, 12]},"
                     " \"y\": {\"dtype\": \"BOOL\", \"shape\": [2, 4], "
                     "\"data_offsets\": [0, 8]} }";
  std::string path = rttest::makeTempDir() + "/other.safetensors";
  writeBytes(path, fileWithHeader(json, data));
  std::vector<rt::SafetensorsEntry> tensors;
  Metadata metadata;
  rt::Status s = rt::readSafetensors(path, tensors, metadata);
  ASSERT_TRUE(s.isOk()) << s.message();
  ASSERT_EQ(tensors.size(), 2u);
  EXPECT_EQ(tensors[0].name, "y"); // in the order of the data
  EXPECT_EQ(tensors[0].shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(tensors[1].name, "z");
  EXPECT_EQ(tensors[1].dtype, rt::DType::I32);
}

//===----------------------------------------------------------------------===//
// Rejected files
//===----------------------------------------------------------------------===//

const char kEntryA[] =
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

TEST(RuntimeSafetensors, RejectsTruncatedFile) {
  std::string good =
      fileWithHeader(std::string("{") + kEntryA + "}", std::string(8, '\0'));
  EXPECT_HAS(readError(good.substr(0, good.size() - 3)), "out of range");
  EXPECT_HAS(readError(good.substr(0, good.size() - 3)), "truncated");
  EXPECT_HAS(readError(good.substr(0, 5)), "is truncated: it has 5 bytes");
  EXPECT_HAS(readError(""), "is truncated");
}

TEST(RuntimeSafetensors, RejectsHeaderLongerThanFile) {
  std::string bytes = fileWithHeader("{}", "");
  bytes[0] = static_cast<char>(200);
  std::string msg = readError(bytes);
  EXPECT_HAS(msg, "truncated: header says 200 bytes but file has 10");
  EXPECT_HAS(msg, "restore it");
  // A garbage length (a text file) is refused before allocating for it.
  EXPECT_HAS(readError("hello world, not a safetensors file"),
             "more than the 100000000 safetensors allows");
}

TEST(RuntimeSafetensors, RejectsBadJson) {
  std::string msg = readError(fileWithHeader("{\"a\": {", ""));
  EXPECT_HAS(msg, "malformed JSON header");
  EXPECT_HAS(msg, "corrupt or not a safetensors file");
  EXPECT_HAS(readError(fileWithHeader("[1, 2]", "")), "not an object");
  EXPECT_HAS(readError(fileWithHeader("{\"a\": 3}", "")),
             "header entry for tensor 'a' that is not an object");
  EXPECT_HAS(readError(fileWithHeader(
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[0]}}", "")),
             "without 'dtype', 'shape' or 'data_offsets'");
  EXPECT_HAS(
      readError(fileWithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],"
                               "\"data_offsets\":[0,0]}}",
                               "")),
      "invalid shape [-1]");
  EXPECT_HAS(readError(fileWithHeader("{\"__metadata__\":{\"step\":12}}", "")),
             "metadata 'step' whose value 12 is not a string");
  EXPECT_HAS(
      readError(fileWithHeader(std::string("{") + kEntryA + "," + kEntryA + "}",
                               std::string(8, '\0'))),
      "lists 'a' twice");
}

TEST(RuntimeSafetensors, RejectsUnknownDType) {
  std::string msg = readError(fileWithHeader(
      "{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,2]}}",
      std::string(2, '\0')));
  EXPECT_HAS(msg, "tensor 'a' of unknown dtype 'Q7'");
  EXPECT_HAS(msg, "known: F32, F16, BF16, F64, I64, I32, BOOL");
  msg = readError(fileWithHeader(
      "{\"a\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
      std::string(1, '\0')));
  EXPECT_HAS(msg, "dtype I8, which the runtime does not support");
  EXPECT_HAS(msg, "convert it before saving");
}

TEST(RuntimeSafetensors, RejectsOffsetsOutOfRange) {
  std::string msg = readError(fileWithHeader(
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
      std::string(8, '\0')));
  EXPECT_HAS(msg, "data_offsets [8,16] for tensor 'a' out of range");
  EXPECT_HAS(msg, "holds only 8 bytes");
  EXPECT_HAS(readError(fileWithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":["
                                      "2],\"data_offsets\":[8,0]}}",
                                      std::string(8, '\0'))),
             "invalid data_offsets [8,0]");
}

TEST(RuntimeSafetensors, RejectsSizeMismatch) {
  std::string msg = readError(fileWithHeader(
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}",
      std::string(20, '\0')));
  EXPECT_HAS(msg, "size mismatch for tensor 'a': F32[2,3] needs 24 bytes");
  EXPECT_HAS(msg, "span 20");
}

TEST(RuntimeSafetensors, RejectsOverlapsAndGaps) {
  std::string msg = readError(fileWithHeader(
      std::string("{") + kEntryA +
          ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
      std::string(12, '\0')));
  EXPECT_HAS(msg,
             "overlapping entries: tensor 'a' [0,8] and tensor 'b' [4,12]");
  EXPECT_HAS(readError(fileWithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                                      "\"data_offsets\":[4,8]}}",
                                      std::string(8, '\0'))),
             "4 bytes before tensor 'a' [4,8] that no entry covers");
  EXPECT_HAS(readError(fileWithHeader(std::string("{") + kEntryA + "}",
                                      std::string(12, '\0'))),
             "4 bytes after the last tensor");
}

TEST(RuntimeSafetensors, WriterRejectsInvalidTensors) {
  std::string dir = rttest::makeTempDir();
  std::string path = dir + "/w.safetensors";
  rt::SafetensorsEntry bad = entry("x", rt::DType::F32, {2, 3});
  bad.data.pop_back();
  rt::Status s = write(path, {bad});
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "tensor 'x' holds 23 bytes, but F32[2,3] needs 24");
  EXPECT_HAS(s.message(), "nothing was written");
  s = write(path,
            {entry("x", rt::DType::F32, {1}), entry("x", rt::DType::I32, {1})});
  EXPECT_HAS(s.message(), "two tensors are named 'x'");
  s = write(path, {entry("__metadata__", rt::DType::F32, {1})});
  EXPECT_HAS(s.message(), "reserves");
  EXPECT_TRUE(filesIn(dir).empty());
}

//===----------------------------------------------------------------------===//
// Atomic writes
//===----------------------------------------------------------------------===//

TEST(RuntimeSafetensors, KeepsOldFileWhenDirectoryNotWritable) {
  std::string top = rttest::makeTempDir();
  std::string dir = top + "/ro";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  std::string path = dir + "/ckpt.safetensors";
  std::vector<rt::SafetensorsEntry> old = {entry("w", rt::DType::F32, {4})};
  ASSERT_TRUE(write(path, old).isOk());
  // Root ignores permissions, so the child writes as "nobody" then.
  ::chmod(top.c_str(), 0755);
  ::chmod(dir.c_str(), 0555);
  std::string result = inChild([&]() -> std::string {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0))
      return "SKIP";
    rt::Status s = write(path, {entry("w", rt::DType::F32, {4}, 9)});
    if (s)
      return "the write succeeded";
    if (s.message().find("cannot create the temporary file") ==
        std::string::npos)
      return "unexpected message: " + s.message();
    return checkHolds(path, old);
  });
  ::chmod(dir.c_str(), 0755);
  if (result == "SKIP")
    GTEST_SKIP() << "cannot drop root privileges to test permissions";
  EXPECT_EQ(result, "");
  EXPECT_EQ(checkHolds(path, old), "");
  EXPECT_EQ(filesIn(dir), std::vector<std::string>{"ckpt.safetensors"});
}

TEST(RuntimeSafetensors, KeepsOldFileWhenWriteFails) {
  std::string dir = rttest::makeTempDir();
  std::string path = dir + "/ckpt.safetensors";
  std::vector<rt::SafetensorsEntry> old = {entry("w", rt::DType::F32, {4})};
  ASSERT_TRUE(write(path, old).isOk());
  // A file size limit makes write() fail part way, as a full disk does.
  std::string result = inChild([&]() -> std::string {
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit = {64 * 1024, 64 * 1024};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0)
      return "setrlimit failed";
    rt::Status s = write(path, {entry("w", rt::DType::F32, {1 << 20}, 9)});
    if (s)
      return "the write succeeded";
    if (s.message().find("writing the temporary file") == std::string::npos)
      return "unexpected message: " + s.message();
    return checkHolds(path, old);
  });
  EXPECT_EQ(result, "");
  EXPECT_EQ(checkHolds(path, old), "");
  EXPECT_EQ(filesIn(dir), std::vector<std::string>{"ckpt.safetensors"});
}

TEST(RuntimeSafetensors, KeepsOldFileWhenTemporaryIsBlocked) {
  std::string dir = rttest::makeTempDir();
  std::string path = dir + "/ckpt.safetensors";
  std::vector<rt::SafetensorsEntry> old = {entry("w", rt::DType::F32, {4})};
  ASSERT_TRUE(write(path, old).isOk());
  std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  ASSERT_EQ(::mkdir(tmp.c_str(), 0755), 0);
  rt::Status s = write(path, {entry("w", rt::DType::F32, {4}, 9)});
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "cannot create the temporary file '" + tmp + "'");
  EXPECT_HAS(s.message(), "previous file, if any, is unchanged");
  EXPECT_EQ(checkHolds(path, old), "");
  EXPECT_TRUE(std::filesystem::is_directory(tmp)); // not ours to remove
}

// A child saves a 64 MiB checkpoint over one path again and again and is
// SIGKILLed at a random moment; the path must always hold a whole file.
TEST(RuntimeSafetensors, SurvivesSigkillDuringWrite) {
  std::string dir = rttest::makeTempDir();
  std::string path = dir + "/ckpt.safetensors";
  constexpr size_t kBytes = 64u << 20;
  rt::SafetensorsEntry big{"w", rt::DType::F32, {kBytes / 4}, {}};
  big.data.assign(kBytes, '\0');
  ASSERT_TRUE(rt::writeSafetensors(path, {&big}, {{"fill", "0"}}).isOk());

  unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> delayMs(5, 400);
  int changes = 0;
  std::string lastFill = "0";
  for (int round = 1; round <= 10; ++round) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int i = round * 1000;; ++i) {
        std::memset(&big.data[0], i % 251, big.data.size());
        rt::writeSafetensors(path, {&big}, {{"fill", std::to_string(i)}});
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delayMs(rng)));
    ::kill(pid, SIGKILL);
    int status;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);

    std::vector<rt::SafetensorsEntry> tensors;
    Metadata metadata;
    rt::Status s = rt::readSafetensors(path, tensors, metadata);
    ASSERT_TRUE(s.isOk()) << "round " << round << ": " << s.message();
    ASSERT_EQ(tensors.size(), 1u);
    ASSERT_EQ(tensors[0].data.size(), kBytes);
    char fill = static_cast<char>(std::stoi(metadata["fill"]) % 251);
    EXPECT_EQ(tensors[0].data.find_first_not_of(fill), std::string::npos)
        << "round " << round << ": data does not match its metadata";
    changes += metadata["fill"] != lastFill;
    lastFill = metadata["fill"];
  }
  // Killed children leave temporaries behind; pruning removes them.
  ASSERT_TRUE(rt::pruneCheckpoints(dir, 0).isOk());
  EXPECT_EQ(filesIn(dir), std::vector<std::string>{"ckpt.safetensors"});
  std::cout << "[          ] " << changes
            << " of 10 kills found a newer file than before\n";
}

//===----------------------------------------------------------------------===//
// Checkpoint directories
//===----------------------------------------------------------------------===//

TEST(RuntimeCheckpointDir, PathsAndListing) {
  std::string dir = rttest::makeTempDir();
  EXPECT_EQ(rt::checkpointPath(dir, 1200), dir + "/step-00001200.safetensors");
  EXPECT_EQ(rt::checkpointPath(dir, 123456789),
            dir + "/step-123456789.safetensors");
  for (int64_t step : {30, 1200, 5})
    ASSERT_TRUE(
        write(rt::checkpointPath(dir, step), {entry("w", rt::DType::F32, {1})})
            .isOk());
  for (const char *other :
       {"step-00000040.safetensors.tmp-123", "step-7.safetensors",
        "step-000000050.safetensors", "step-00000060.npy", "notes.txt",
        "step-0000007x.safetensors"})
    writeBytes(dir + "/" + other, "x");
  ASSERT_EQ(::mkdir((dir + "/step-00000070.safetensors").c_str(), 0755), 0);
  std::vector<int64_t> steps;
  rt::Status s = rt::listCheckpoints(dir, steps);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(steps, (std::vector<int64_t>{5, 30, 1200}));

  ASSERT_TRUE(rt::listCheckpoints(dir + "/missing", steps).isOk());
  EXPECT_TRUE(steps.empty());
  s = rt::listCheckpoints(dir + "/notes.txt", steps);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "is not a directory");
}

TEST(RuntimeCheckpointDir, LoadLatestSkipsCorruptNewest) {
  std::string dir = rttest::makeTempDir();
  ASSERT_TRUE(write(rt::checkpointPath(dir, 100),
                    {entry("w", rt::DType::F32, {3}, 1)}, {{"step", "100"}})
                  .isOk());
  ASSERT_TRUE(write(rt::checkpointPath(dir, 200),
                    {entry("w", rt::DType::F32, {3}, 2)}, {{"step", "200"}})
                  .isOk());
  // The newest was cut short, as by a copy that did not finish.
  std::string newest = rt::checkpointPath(dir, 300);
  ASSERT_TRUE(
      write(newest, {entry("w", rt::DType::F32, {1000}, 3)}, {}).isOk());
  std::string bytes = readBytes(newest);
  writeBytes(newest, bytes.substr(0, bytes.size() / 2));

  int64_t step;
  std::vector<rt::SafetensorsEntry> tensors;
  Metadata metadata;
  std::vector<std::string> warnings;
  bool found;
  rt::Status s =
      rt::loadLatestCheckpoint(dir, step, tensors, metadata, warnings, found);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_TRUE(found);
  EXPECT_EQ(step, 200);
  EXPECT_EQ(metadata["step"], "200");
  ASSERT_EQ(tensors.size(), 1u);
  EXPECT_EQ(tensors[0].data, entry("w", rt::DType::F32, {3}, 2).data);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_HAS(warnings[0], "skipped the step 300 checkpoint");
  EXPECT_HAS(warnings[0], newest);
  EXPECT_HAS(warnings[0], "truncated");
  EXPECT_HAS(warnings[0], "trying the next older checkpoint");
}

TEST(RuntimeCheckpointDir, LoadLatestWithNoneOrNoneValid) {
  std::string dir = rttest::makeTempDir();
  int64_t step;
  std::vector<rt::SafetensorsEntry> tensors;
  Metadata metadata;
  std::vector<std::string> warnings;
  bool found = true;
  ASSERT_TRUE(rt::loadLatestCheckpoint(dir + "/none", step, tensors, metadata,
                                       warnings, found)
                  .isOk());
  EXPECT_FALSE(found);
  ASSERT_TRUE(
      rt::loadLatestCheckpoint(dir, step, tensors, metadata, warnings, found)
          .isOk());
  EXPECT_FALSE(found);
  EXPECT_TRUE(warnings.empty());

  writeBytes(rt::checkpointPath(dir, 1), "garbage");
  writeBytes(rt::checkpointPath(dir, 2), fileWithHeader("{", ""));
  rt::Status s =
      rt::loadLatestCheckpoint(dir, step, tensors, metadata, warnings, found);
  ASSERT_FALSE(s.isOk());
  EXPECT_FALSE(found);
  EXPECT_HAS(s.message(), "none of the 2 checkpoints in '" + dir + "'");
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_HAS(warnings[0], "step 2");
  EXPECT_HAS(warnings[1], "no older checkpoint is left");
}

TEST(RuntimeCheckpointDir, EnsureDirectory) {
  std::string top = rttest::makeTempDir();
  std::string nested = top + "/a/b/c";
  ASSERT_TRUE(rt::ensureDirectory(nested).isOk());
  EXPECT_TRUE(std::filesystem::is_directory(nested));
  EXPECT_TRUE(rt::ensureDirectory(nested).isOk());
  writeBytes(top + "/file", "x");
  rt::Status s = rt::ensureDirectory(top + "/file/sub");
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "'" + top + "/file' is a file, not a directory");
  EXPECT_HAS(s.message(), "choose another directory");
}

TEST(RuntimeCheckpointDir, PruneKeepsNewest) {
  std::string dir = rttest::makeTempDir();
  for (int64_t step = 1; step <= 5; ++step)
    ASSERT_TRUE(write(rt::checkpointPath(dir, step * 10),
                      {entry("w", rt::DType::F32, {1})})
                    .isOk());
  // A temporary of a writer that died, and one of a live writer (us).
  std::string dead = rt::checkpointPath(dir, 60) + ".tmp-999999999";
  std::string live =
      rt::checkpointPath(dir, 60) + ".tmp-" + std::to_string(::getpid());
  writeBytes(dead, "partial");
  writeBytes(live, "partial");
  writeBytes(dir + "/notes.txt", "kept");

  ASSERT_TRUE(rt::pruneCheckpoints(dir, 0).isOk());
  std::vector<int64_t> steps;
  ASSERT_TRUE(rt::listCheckpoints(dir, steps).isOk());
  EXPECT_EQ(steps.size(), 5u);
  EXPECT_FALSE(std::filesystem::exists(dead));
  EXPECT_TRUE(std::filesystem::exists(live));

  ASSERT_TRUE(rt::pruneCheckpoints(dir, 2).isOk());
  ASSERT_TRUE(rt::listCheckpoints(dir, steps).isOk());
  EXPECT_EQ(steps, (std::vector<int64_t>{40, 50}));
  EXPECT_TRUE(std::filesystem::exists(dir + "/notes.txt"));
  EXPECT_TRUE(rt::pruneCheckpoints(dir + "/missing", 1).isOk());
}

} // namespace
