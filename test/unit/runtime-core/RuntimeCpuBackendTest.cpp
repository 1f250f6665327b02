//===- RuntimeCpuBackendTest.cpp - End to end on the real CPU backend -----===//
//
// Runs hand-built plans on the CPU backend with the kernels of
// runtime/backends/cpu. Skipped when that library is not part of the build.
//
//===----------------------------------------------------------------------===//

#include "runtime/core/Backend.h"
#include "runtime/core/PlanFile.h"
#include "runtime/include/colossal/Runtime.h"
#include "test/unit/runtime-core/TestPlans.h"

#include <gtest/gtest.h>

#include <algorithm>

using namespace colossal;

namespace {

TEST(RuntimeCpuBackend, AddReluEndToEnd) {
  if (!rt::createCpuBackend(0)->supports("add"))
    GTEST_SKIP() << "the CPU kernels are not part of this build";
  std::string dir = rttest::makeTempDir();
  std::string path = dir + "/relu.cplan";
  ASSERT_TRUE(rt::writePlanFile(rttest::addReluPlan(), path).isOk());
  std::shared_ptr<Plan> plan;
  Status s = Plan::load(path, plan);
  ASSERT_TRUE(s.isOk()) << s.message();
  std::unique_ptr<Session> session;
  SessionOptions options;
  options.threads = 2;
  s = Session::create(plan, options, session);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_STREQ(session->backendName(), "cpu");
  for (int run = 0; run < 3; ++run) {
    std::vector<float> x = {1.0f * run, -2, 3, -4, 5, -0.5f};
    ASSERT_TRUE(
        session->setInput("x", TensorRef{x.data(), DType::F32, {2, 3}}).isOk());
    s = session->run();
    ASSERT_TRUE(s.isOk()) << s.message();
    TensorRef y;
    ASSERT_TRUE(session->output("y", y).isOk());
    std::vector<float> bias = rttest::reluBias();
    for (int i = 0; i < 6; ++i)
      EXPECT_FLOAT_EQ(y.as<float>()[i], std::max(0.0f, x[i] + bias[i])) << i;
  }
  EXPECT_EQ(session->peakDeviceBytes(),
            static_cast<size_t>(plan->arenaBytes()));
}

TEST(RuntimeCpuBackend, MatmulWithBroadcastBias) {
  if (!rt::createCpuBackend(0)->supports("matmul"))
    GTEST_SKIP() << "the CPU kernels are not part of this build";
  using rt::DType;
  // y = x @ w + b: x [2,3], w [3,2] (embedded), b [2] broadcast over rows.
  plan::Plan p;
  plan::Binding *x = p.add_inputs();
  x->set_name("x");
  *x->mutable_type() = rttest::tensorType(DType::F32, {2, 3});
  plan::Binding *y = p.add_outputs();
  y->set_name("y");
  *y->mutable_type() = rttest::tensorType(DType::F32, {2, 2});
  plan::Parameter *w = p.add_parameters();
  w->set_name("w");
  *w->mutable_type() = rttest::tensorType(DType::F32, {3, 2});
  w->set_embedded(rttest::floatBytes({1, 2, 3, 4, 5, 6}));
  plan::RankProgram &r = *p.add_ranks();
  r.set_arena_bytes(256);
  rttest::addBuffer(r, 0, 0, DType::F32, {2, 3});
  rttest::addBuffer(r, 1, 64, DType::F32, {3, 2});
  rttest::addBuffer(r, 2, 128, DType::F32, {2});
  rttest::addBuffer(r, 3, 192, DType::F32, {2, 2});
  rttest::addBuffer(r, 4, 0, DType::F32, {2, 2}); // over x, dead by then
  r.add_parameters()->set_buffer(1);
  plan::Constant *c = r.add_constants();
  c->set_buffer(2);
  c->set_data(rttest::floatBytes({0.5f, -100}));
  r.add_inputs()->set_buffer(0);
  r.add_outputs()->set_buffer(4);
  rttest::addKernel(r, "matmul", {0, 1}, {3}, "mm");
  rttest::addKernel(r, "add", {3, 2}, {4}, "bias");
  std::shared_ptr<Plan> plan;
  Status s = Plan::fromProto(p, ".", plan);
  ASSERT_TRUE(s.isOk()) << s.message();
  std::unique_ptr<Session> session;
  s = Session::create(plan, SessionOptions(), session);
  ASSERT_TRUE(s.isOk()) << s.message();
  std::vector<float> xs = {1, 0, -1, 2, 1, 0};
  ASSERT_TRUE(
      session->setInput("x", TensorRef{xs.data(), DType::F32, {2, 3}}).isOk());
  s = session->run();
  ASSERT_TRUE(s.isOk()) << s.message();
  std::vector<float> out(4);
  ASSERT_TRUE(session->copyOutput("y", out.data(), 16).isOk());
  // [1,0,-1]@w = [1-5, 2-6] = [-4,-4]; [2,1,0]@w = [2+3, 4+4] = [5,8].
  EXPECT_EQ(out, (std::vector<float>{-3.5f, -104, 5.5f, -92}));
  EXPECT_EQ(session->peakDeviceBytes(), 256u);
}

TEST(RuntimeCpuBackend, MissingKernelsAreNamed) {
  plan::Plan p = rttest::addReluPlan();
  p.mutable_ranks(0)->mutable_program(0)->mutable_kernel()->set_op(
      "no_such_op");
  std::shared_ptr<Plan> plan;
  ASSERT_TRUE(Plan::fromProto(p, ".", plan).isOk());
  std::unique_ptr<Session> session;
  Status s = Session::create(plan, SessionOptions(), session);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("the cpu backend has no kernel for"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("'no_such_op' (at node_add)"), std::string::npos)
      << s.message();
}

} // namespace
