//===- RuntimeApiTest.cpp - The C++ embedding API on the test backend -----===//

#include "runtime/core/PlanFile.h"
#include "runtime/include/colossal/Runtime.h"
#include "test/unit/runtime-core/TestPlans.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace colossal;

namespace {

#define EXPECT_HAS(haystack, needle)                                           \
  EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

class ApiTest : public ::testing::Test {
protected:
  void SetUp() override {
    rttest::registerTestBackend();
    dir = rttest::makeTempDir();
    path = dir + "/relu.cplan";
    ASSERT_TRUE(rt::writePlanFile(rttest::addReluPlan(), path).isOk());
    Status s = Plan::load(path, plan);
    ASSERT_TRUE(s.isOk()) << s.message();
    SessionOptions options;
    options.backend = "test";
    s = Session::create(plan, options, session);
    ASSERT_TRUE(s.isOk()) << s.message();
  }

  Status setX(const std::vector<float> &x) {
    return session->setInput(
        "x", TensorRef{const_cast<float *>(x.data()), DType::F32, {2, 3}});
  }

  std::vector<float> expected(const std::vector<float> &x) {
    std::vector<float> bias = rttest::reluBias(), y(6);
    for (int i = 0; i < 6; ++i)
      y[i] = std::max(0.0f, x[i] + bias[i]);
    return y;
  }

  std::string dir, path;
  std::shared_ptr<Plan> plan;
  std::unique_ptr<Session> session;
};

TEST_F(ApiTest, Metadata) {
  ASSERT_EQ(plan->inputs().size(), 1u);
  EXPECT_EQ(plan->inputs()[0].name, "x");
  EXPECT_EQ(plan->inputs()[0].dtype, DType::F32);
  EXPECT_EQ(plan->inputs()[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(plan->inputs()[0].bytes(), 24u);
  ASSERT_EQ(plan->outputs().size(), 1u);
  EXPECT_EQ(plan->outputs()[0].name, "y");
  EXPECT_EQ(plan->arenaBytes(), 192);
  EXPECT_EQ(plan->findInput("x"), 0);
  EXPECT_EQ(plan->findInput("y"), -1);
  EXPECT_EQ(plan->producer(), "test");
  EXPECT_EQ(plan->mode(), "infer");
  EXPECT_EQ(plan->source(), path);
  EXPECT_STREQ(session->backendName(), "test");
}

TEST_F(ApiTest, RunsAndPeakIsArena) {
  std::vector<float> x = {1, 2, -3, 4, -5, 0.5f};
  ASSERT_TRUE(setX(x).isOk());
  Status s = session->run();
  ASSERT_TRUE(s.isOk()) << s.message();
  TensorRef y;
  ASSERT_TRUE(session->output("y", y).isOk());
  EXPECT_EQ(y.dtype, DType::F32);
  EXPECT_EQ(y.shape, (std::vector<int64_t>{2, 3}));
  std::vector<float> got(y.as<float>(), y.as<float>() + 6);
  EXPECT_EQ(got, expected(x));
  EXPECT_EQ(session->peakDeviceBytes(), 192u);
  EXPECT_EQ(session->peakDeviceBytes(),
            static_cast<size_t>(plan->arenaBytes()));

  std::vector<float> copy(6);
  ASSERT_TRUE(session->copyOutput("y", copy.data(), 24).isOk());
  EXPECT_EQ(copy, expected(x));
}

TEST_F(ApiTest, InputsAreConsumedByEachRun) {
  std::vector<float> x = {1, 1, 1, 1, 1, 1};
  ASSERT_TRUE(setX(x).isOk());
  ASSERT_TRUE(session->run().isOk());
  Status s = session->run();
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "input 'x' was not set since the last run");
  std::vector<float> x2 = {-1, -2, -3, 4, 5, 6};
  ASSERT_TRUE(setX(x2).isOk());
  ASSERT_TRUE(session->run().isOk());
  std::vector<float> got(6);
  ASSERT_TRUE(session->copyOutput("y", got.data(), 24).isOk());
  EXPECT_EQ(got, expected(x2));
  EXPECT_EQ(session->peakDeviceBytes(), 192u);
}

TEST_F(ApiTest, MissingInput) {
  Status s = session->run();
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "input 'x' was not set");
}

TEST_F(ApiTest, ShapeMismatch) {
  std::vector<float> x(12);
  Status s = session->setInput("x", TensorRef{x.data(), DType::F32, {4, 3}});
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message(),
            "input 'x' has shape [4,3] but the plan expects [2,3]");
}

TEST_F(ApiTest, DTypeMismatch) {
  std::vector<int64_t> x(6);
  Status s = session->setInput("x", TensorRef{x.data(), DType::I64, {2, 3}});
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message(),
            "input 'x' has dtype int64 but the plan expects float32");
}

TEST_F(ApiTest, UnknownNames) {
  std::vector<float> x(6);
  Status s = session->setInput("z", TensorRef{x.data(), DType::F32, {2, 3}});
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message(), "the plan has no input 'z'; its inputs are 'x'");
  TensorRef y;
  s = session->output("q", y);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message(), "the plan has no output 'q'; its outputs are 'y'");
}

TEST_F(ApiTest, OutputBeforeRun) {
  TensorRef y;
  Status s = session->output("y", y);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "output 'y' is not available");
}

TEST_F(ApiTest, CopyOutputWrongSize) {
  std::vector<float> x(6, 1.0f);
  ASSERT_TRUE(setX(x).isOk());
  ASSERT_TRUE(session->run().isOk());
  std::vector<float> y(6);
  Status s = session->copyOutput("y", y.data(), 20);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "output 'y' is 24 bytes (float32[2,3]), not 20");
}

TEST_F(ApiTest, NullInputData) {
  Status s = session->setInput("x", TensorRef{nullptr, DType::F32, {2, 3}});
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "null pointer");
}

TEST_F(ApiTest, KernelFailureNamesTheInstruction) {
  plan::Plan p = rttest::addReluPlan();
  p.mutable_ranks(0)->mutable_program(1)->mutable_kernel()->set_op("fail");
  std::shared_ptr<Plan> failing;
  ASSERT_TRUE(Plan::fromProto(p, dir, failing).isOk());
  std::unique_ptr<Session> s2;
  SessionOptions options;
  options.backend = "test";
  ASSERT_TRUE(Session::create(failing, options, s2).isOk());
  std::vector<float> x(6);
  ASSERT_TRUE(
      s2->setInput("x", TensorRef{x.data(), DType::F32, {2, 3}}).isOk());
  Status s = s2->run();
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message(), "kernel 'fail' (instruction #1 at node_relu) failed: "
                         "the test kernel fails");
  TensorRef y;
  EXPECT_FALSE(s2->output("y", y).isOk());
}

TEST_F(ApiTest, SessionsShareAPlan) {
  SessionOptions options;
  options.backend = "test";
  std::unique_ptr<Session> other;
  ASSERT_TRUE(Session::create(plan, options, other).isOk());
  std::vector<float> a(6, 1.0f), b(6, -10.0f);
  ASSERT_TRUE(setX(a).isOk());
  ASSERT_TRUE(
      other->setInput("x", TensorRef{b.data(), DType::F32, {2, 3}}).isOk());
  ASSERT_TRUE(session->run().isOk());
  ASSERT_TRUE(other->run().isOk());
  std::vector<float> ya(6), yb(6);
  ASSERT_TRUE(session->copyOutput("y", ya.data(), 24).isOk());
  ASSERT_TRUE(other->copyOutput("y", yb.data(), 24).isOk());
  EXPECT_EQ(ya, expected(a));
  EXPECT_EQ(yb, expected(b));
}

// In the identity plan the output is the input's buffer: setting the input
// invalidates the previous output.
TEST(RuntimeApi, InputOverOutputInvalidatesIt) {
  std::shared_ptr<Plan> plan;
  ASSERT_TRUE(Plan::fromProto(rttest::identityPlan(), ".", plan).isOk());
  std::unique_ptr<Session> session;
  ASSERT_TRUE(Session::create(plan, SessionOptions(), session).isOk());
  std::vector<float> x = {1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(
      session->setInput("x", TensorRef{x.data(), DType::F32, {2, 3}}).isOk());
  ASSERT_TRUE(session->run().isOk());
  TensorRef y;
  ASSERT_TRUE(session->output("y", y).isOk());
  EXPECT_EQ(std::vector<float>(y.as<float>(), y.as<float>() + 6), x);
  ASSERT_TRUE(
      session->setInput("x", TensorRef{x.data(), DType::F32, {2, 3}}).isOk());
  EXPECT_FALSE(session->output("y", y).isOk());
  EXPECT_EQ(session->peakDeviceBytes(), 64u);
}

TEST(RuntimeApi, LoadReportsFileErrors) {
  std::shared_ptr<Plan> plan;
  Status s = Plan::load("/nonexistent/dir/m.cplan", plan);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "cannot open plan '/nonexistent/dir/m.cplan'");
  EXPECT_EQ(plan, nullptr);
}

TEST(RuntimeApi, NullPlan) {
  std::unique_ptr<Session> session;
  EXPECT_FALSE(Session::create(nullptr, SessionOptions(), session).isOk());
}

} // namespace
