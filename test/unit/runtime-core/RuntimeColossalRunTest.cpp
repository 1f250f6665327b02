//===- RuntimeColossalRunTest.cpp - colossal-run, end to end --------------===//
//
// Runs the colossal-run binary on the identity plan (no kernels, so it runs
// with or without the CPU kernels) and on broken plans, inputs and flags:
// every user error must print "colossal-run: error: ..." and exit 1.
//
//===----------------------------------------------------------------------===//

#include "runtime/core/Npy.h"
#include "runtime/core/PlanFile.h"
#include "test/unit/runtime-core/TestPlans.h"

#include "onnx/onnx_pb.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <sys/wait.h>

using namespace colossal;

namespace {

#define EXPECT_HAS(haystack, needle)                                           \
  EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

struct Result {
  int exitCode = -1; // -1: killed by a signal
  std::string output;
};

Result runTool(const std::string &args) {
  std::string cmd = std::string(COLOSSAL_RUN_PATH) + " " + args + " 2>&1";
  Result r;
  FILE *p = ::popen(cmd.c_str(), "r");
  if (!p)
    return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    r.output.append(buf, n);
  int status = ::pclose(p);
  if (WIFEXITED(status))
    r.exitCode = WEXITSTATUS(status);
  return r;
}

class ColossalRunTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir = rttest::makeTempDir();
    plan = dir + "/id.cplan";
    ASSERT_TRUE(rt::writePlanFile(rttest::identityPlan("out/y"), plan).isOk());
    x = {1, 2, 3, 4, 5, 6};
    ASSERT_TRUE(
        rt::writeNpy(dir + "/x.npy", rt::DType::F32, {2, 3}, x.data(), 24)
            .isOk());
  }

  // Expects a clean failure whose message contains `needle`.
  void expectError(const std::string &args, const std::string &needle) {
    Result r = runTool(args);
    EXPECT_EQ(r.exitCode, 1) << r.output;
    EXPECT_HAS(r.output, "colossal-run: error: ");
    EXPECT_HAS(r.output, needle);
  }

  void writeFile(const std::string &path, const std::string &bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), bytes.size());
  }

  std::string dir, plan;
  std::vector<float> x;
};

TEST_F(ColossalRunTest, RunsAndWritesSanitizedOutputs) {
  Result r = runTool(plan + " --input x=" + dir + "/x.npy --output-dir " + dir +
                     "/out --threads 1");
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_HAS(r.output, "arena: 64 bytes (0.00 MiB)");
  EXPECT_HAS(r.output, "peak device bytes: 64 (0.00 MiB)");
  EXPECT_HAS(r.output, "output out/y: float32[2,3] [1 2 3 4 5 6]");
  rt::HostTensor t;
  rt::Status s = rt::readNpy(dir + "/out/out_y.npy", t);
  ASSERT_TRUE(s.isOk()) << s.message() << "\n" << r.output;
  EXPECT_EQ(t.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t.data, rttest::floatBytes(x));
}

TEST_F(ColossalRunTest, InputNameFromFileStemAndFlagEqualsSyntax) {
  Result r = runTool(plan + " --input=" + dir + "/x.npy");
  EXPECT_EQ(r.exitCode, 0) << r.output;
}

TEST_F(ColossalRunTest, OnnxTensorProtoInput) {
  onnx::TensorProto t;
  t.set_name("x");
  t.set_data_type(onnx::TensorProto::FLOAT);
  t.add_dims(2);
  t.add_dims(3);
  for (float v : x)
    t.add_float_data(v * 10);
  writeFile(dir + "/input_0.pb", t.SerializeAsString());
  Result r = runTool(plan + " --input " + dir + "/input_0.pb");
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_HAS(r.output, "[10 20 30 40 50 60]");
}

TEST_F(ColossalRunTest, Bench) {
  Result r =
      runTool(plan + " --input x=" + dir + "/x.npy --bench 5 --warmup 1");
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_HAS(r.output, "bench: 5 runs after 1 warm-up");
  EXPECT_HAS(r.output, "latency: p50 ");
  EXPECT_HAS(r.output, " p90 ");
  EXPECT_HAS(r.output, "samples/s (batch 2)");
}

TEST_F(ColossalRunTest, InputErrors) {
  expectError(
      plan, "input 'x' (float32[2,3]) was not given; pass --input x=FILE.npy");
  expectError(plan + " --input z=" + dir + "/x.npy",
              "the plan has no input 'z'");
  expectError(plan + " --input x=" + dir + "/x.npy --input x=" + dir + "/x.npy",
              "input 'x' is given twice");
  std::vector<float> big(12);
  ASSERT_TRUE(
      rt::writeNpy(dir + "/big.npy", rt::DType::F32, {4, 3}, big.data(), 48)
          .isOk());
  expectError(plan + " --input x=" + dir + "/big.npy",
              "is float32[4,3] but the plan expects float32[2,3]");
  std::vector<int64_t> ints(6);
  ASSERT_TRUE(
      rt::writeNpy(dir + "/ints.npy", rt::DType::I64, {2, 3}, ints.data(), 48)
          .isOk());
  expectError(plan + " --input x=" + dir + "/ints.npy",
              "is int64[2,3] but the plan expects float32[2,3]");
  std::string f8("\x93NUMPY\1\0", 8);
  std::string header =
      "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
  header.append(128 - 10 - header.size() - 1, ' ');
  header += "\n";
  f8.push_back(static_cast<char>(header.size()));
  f8.push_back(0);
  writeFile(dir + "/f8.npy", f8 + header + std::string(48, '\0'));
  expectError(plan + " --input x=" + dir + "/f8.npy", "float64");
  writeFile(dir + "/junk.npy", "this is not numpy");
  expectError(plan + " --input x=" + dir + "/junk.npy", "is not a .npy file");
  expectError(plan + " --input x=" + dir + "/absent.npy",
              "cannot open input file");
  expectError(plan + " --input =" + dir + "/x.npy", "should be NAME=FILE");
}

TEST_F(ColossalRunTest, PlanErrors) {
  std::ifstream in(plan, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string bytes = ss.str();

  writeFile(dir + "/trunc.cplan", bytes.substr(0, bytes.size() - 3));
  expectError(dir + "/trunc.cplan", "truncated");
  std::string corrupt = bytes;
  corrupt[corrupt.size() - 2] ^= 1;
  writeFile(dir + "/corrupt.cplan", corrupt);
  expectError(dir + "/corrupt.cplan", "checksum mismatch");
  std::string version = bytes;
  version[8] = 9;
  writeFile(dir + "/version.cplan", version);
  expectError(dir + "/version.cplan", "plan format version 9");
  writeFile(dir + "/empty.cplan", "");
  expectError(dir + "/empty.cplan", "not a Colossal plan");
  expectError(dir + "/absent.cplan", "cannot open plan");
  expectError(dir, "is a directory, not a plan file");
}

TEST_F(ColossalRunTest, MissingWeights) {
  plan::Plan p = rttest::identityPlan();
  plan::Parameter *w = p.add_parameters();
  w->set_name("w");
  *w->mutable_type() = rttest::tensorType(rt::DType::F32, {2, 3});
  w->mutable_external()->set_location("weights.bin");
  w->mutable_external()->set_length(24);
  plan::ParamSlice *slice = p.mutable_ranks(0)->add_parameters();
  slice->set_buffer(7);
  ASSERT_TRUE(rt::writePlanFile(p, dir + "/w.cplan").isOk());
  expectError(dir + "/w.cplan --input x=" + dir + "/x.npy",
              "the plan's weights must be copied with it");
}

// The training loop's flags, checked before anything is loaded, and --train
// on a plan that is not a training step.
TEST_F(ColossalRunTest, TrainingFlagErrors) {
  writeFile(dir + "/tokens.bin", std::string(64, '\1'));
  std::string data = " --data " + dir + "/tokens.bin";
  expectError(plan + " --steps 3",
              "training flags belong to the training loop: add --train");
  expectError(plan + data, "add --train");
  expectError(plan + " --train" + data, "--train needs --steps N");
  expectError(plan + " --train --steps 1" + data,
              "is not a training step (mode 'infer')");
  expectError(plan + " --train --steps 1 --data-dtype=int8" + data,
              "--data-dtype=int8 is not known; use uint16 or uint32");
  expectError(plan + " --train --steps 1 --data-order=shuffle" + data,
              "--data-order=shuffle is not known; use random or sequential");
  expectError(plan + " --train --steps 1 --input x=" + dir + "/x.npy" + data,
              "--train takes its batches from --data");
}

TEST_F(ColossalRunTest, FlagErrors) {
  expectError("", "no plan given");
  expectError(plan + " --bench 0", "--bench takes an integer >= 1, not '0'");
  expectError(plan + " --threads many", "--threads takes an integer >= 1");
  expectError(plan + " --warmup", "--warmup needs a value");
  expectError(plan + " --frobnicate", "unknown flag '--frobnicate'");
  expectError(plan + " " + plan, "unexpected argument");
  Result r = runTool("--help");
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_HAS(r.output, "usage: colossal-run");
}

} // namespace
