//===- RuntimeExecutorTest.cpp - Backends, communicator and helpers -------===//

#include "runtime/core/Backend.h"
#include "runtime/core/Communicator.h"
#include "runtime/core/Executor.h"
#include "runtime/core/Float16.h"
#include "runtime/core/PlanValidator.h"
#include "runtime/core/WeightLoader.h"
#include "test/unit/runtime-core/TestPlans.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <numeric>

using namespace colossal;
using rt::DType;
using rt::TensorRef;

namespace {

TEST(RuntimeExecutor, PeakTracking) {
  std::unique_ptr<rt::Backend> cpu = rt::createCpuBackend(0);
  void *a = nullptr, *b = nullptr, *z = nullptr;
  ASSERT_TRUE(cpu->allocate(100, 64, &a).isOk());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  ASSERT_TRUE(cpu->allocate(50, 64, &b).isOk());
  ASSERT_TRUE(cpu->allocate(0, 64, &z).isOk());
  EXPECT_EQ(z, nullptr);
  EXPECT_EQ(cpu->allocatedBytes(), 150u);
  cpu->release(a);
  EXPECT_EQ(cpu->allocatedBytes(), 50u);
  EXPECT_EQ(cpu->peakAllocatedBytes(), 150u);
  cpu->release(b);
  EXPECT_EQ(cpu->allocatedBytes(), 0u);
  EXPECT_FALSE(cpu->allocate(8, 48, &a).isOk()); // not a power of two
}

TEST(RuntimeExecutor, ExecutorOnTestBackend) {
  rttest::registerTestBackend();
  plan::Plan p = rttest::addReluPlan();
  ASSERT_TRUE(rt::validatePlan(p, "t").isOk());
  std::unique_ptr<rt::Backend> backend;
  ASSERT_TRUE(rt::createBackend("test", {}, backend).isOk());
  ASSERT_TRUE(rt::checkBackendSupport(p.ranks(0), *backend, "t").isOk());
  {
    std::unique_ptr<rt::Executor> exec;
    rt::Status s =
        rt::Executor::create(p, 0, 0, nullptr, ".", "t", *backend, exec);
    ASSERT_TRUE(s.isOk()) << s.message();
    EXPECT_EQ(backend->allocatedBytes(), 192u);
    // The parameter is in its buffer, x and the sum share bytes.
    const TensorRef *bias = exec->buffer(1);
    ASSERT_NE(bias, nullptr);
    EXPECT_EQ(std::vector<float>(bias->as<float>(), bias->as<float>() + 6),
              rttest::reluBias());
    EXPECT_EQ(exec->buffer(0)->data, exec->buffer(3)->data);
    EXPECT_EQ(exec->buffer(99), nullptr);
    EXPECT_EQ(exec->bufferRange(2), std::make_pair(int64_t(128), int64_t(152)));
    std::fill(exec->buffer(0)->as<float>(), exec->buffer(0)->as<float>() + 6,
              1.0f);
    ASSERT_TRUE(exec->run().isOk());
    const float *y = exec->buffer(2)->as<float>();
    EXPECT_EQ(y[0], 1.5f);
    EXPECT_EQ(y[1], 0.0f);
    EXPECT_EQ(y[2], 3.0f);
  }
  EXPECT_EQ(backend->allocatedBytes(), 0u);
  EXPECT_EQ(backend->peakAllocatedBytes(), 192u);
}

TEST(RuntimeExecutor, SingleRankCommunicator) {
  std::unique_ptr<rt::Backend> cpu = rt::createCpuBackend(0);
  std::unique_ptr<rt::Communicator> comm =
      rt::createSingleRankCommunicator(*cpu);
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->size(), 1);
  std::vector<float> in = {1, 2, 3, 4}, out(4);
  TensorRef a{in.data(), DType::F32, {4}}, b{out.data(), DType::F32, {4}};
  ASSERT_TRUE(comm->allReduce(a, b, rt::ReduceOp::Sum, {}).isOk());
  EXPECT_EQ(out, in);
  std::fill(out.begin(), out.end(), 0.0f);
  ASSERT_TRUE(comm->allGather(a, b, 0, {0}).isOk());
  EXPECT_EQ(out, in);
  ASSERT_TRUE(comm->reduceScatter(a, b, rt::ReduceOp::Max, 0, {}).isOk());
  ASSERT_TRUE(comm->allToAll(a, b, 0, 0, {}).isOk());
  ASSERT_TRUE(comm->allReduce(a, a, rt::ReduceOp::Sum, {}).isOk()); // in place
  EXPECT_FALSE(comm->allReduce(a, b, rt::ReduceOp::Sum, {0, 1}).isOk());
  TensorRef small{out.data(), DType::F32, {2}};
  EXPECT_FALSE(comm->allGather(a, small, 0, {}).isOk());
  rt::Status s = comm->send(a, 1, 0);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("single-rank world"), std::string::npos);
  EXPECT_FALSE(comm->recv(a, 1, 0).isOk());
}

TEST(RuntimeExecutor, CopyBox) {
  // A [3,4] tensor of 0..11; the box at [1,1] of shape [2,2] is 5 6 / 9 10.
  std::vector<int32_t> full(12);
  std::iota(full.begin(), full.end(), 0);
  std::vector<int32_t> box(4);
  rt::copyBox(reinterpret_cast<const char *>(full.data()), {3, 4}, {1, 1},
              {2, 2}, 4, reinterpret_cast<char *>(box.data()));
  EXPECT_EQ(box, (std::vector<int32_t>{5, 6, 9, 10}));
  // 3-d: [2,2,3], box at [1,0,1] of shape [1,2,2] -> 7 8 10 11.
  rt::copyBox(reinterpret_cast<const char *>(full.data()), {2, 2, 3}, {1, 0, 1},
              {1, 2, 2}, 4, reinterpret_cast<char *>(box.data()));
  EXPECT_EQ(box, (std::vector<int32_t>{7, 8, 10, 11}));
  // 1-d.
  rt::copyBox(reinterpret_cast<const char *>(full.data()), {12}, {8}, {4}, 4,
              reinterpret_cast<char *>(box.data()));
  EXPECT_EQ(box, (std::vector<int32_t>{8, 9, 10, 11}));
}

TEST(RuntimeExecutor, HalfAndBFloat16) {
  EXPECT_EQ(rt::floatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(rt::floatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(rt::floatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(rt::floatToHalf(65520.0f), 0x7c00); // rounds to infinity
  EXPECT_EQ(rt::floatToHalf(0.0f), 0x0000);
  EXPECT_EQ(rt::floatToHalf(5.960464477539063e-08f), 0x0001); // 2^-24
  EXPECT_EQ(rt::floatToHalf(6.103515625e-05f), 0x0400);       // 2^-14
  EXPECT_EQ(rt::floatToHalf(1.0f + 1.0f / 2048), 0x3c00);     // tie -> even
  EXPECT_EQ(rt::floatToHalf(1.0f + 3.0f / 2048), 0x3c02);     // tie -> even
  EXPECT_TRUE(std::isnan(rt::halfToFloat(rt::floatToHalf(NAN))));
  for (uint32_t h = 0; h < 0x7c00; ++h) // every finite positive half
    ASSERT_EQ(rt::floatToHalf(rt::halfToFloat(static_cast<uint16_t>(h))), h)
        << h;
  EXPECT_EQ(rt::floatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(rt::bf16ToFloat(0xc040), -3.0f);
  EXPECT_EQ(rt::floatToBf16(1.0f + 1.0f / 256), 0x3f80); // tie -> even
  EXPECT_TRUE(std::isnan(rt::bf16ToFloat(rt::floatToBf16(NAN))));
}

} // namespace

namespace {

TEST(RuntimeExecutor, CorruptCollectiveIsAnError) {
  rttest::registerTestBackend();
  plan::Plan p = rttest::addReluPlan();
  p.mutable_mesh()->add_axis_names("device");
  p.mutable_mesh()->add_axis_sizes(1);
  plan::Collective *c = p.mutable_ranks(0)->add_program()->mutable_collective();
  c->set_kind("all_slice");
  c->add_axes("device");
  c->set_input(0);
  c->set_output(3);
  c->set_dim(5);
  std::unique_ptr<rt::Backend> backend;
  ASSERT_TRUE(rt::createBackend("test", {}, backend).isOk());
  std::unique_ptr<rt::Executor> exec;
  rt::Status s =
      rt::Executor::create(p, 0, 0, nullptr, ".", "t", *backend, exec);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("dimension 5 is out of range"), std::string::npos)
      << s.message();
  // A collective that needs other ranks, without a communicator.
  c->set_kind("all_reduce");
  s = rt::Executor::create(p, 0, 0, nullptr, ".", "t", *backend, exec);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("this session has no communicator"),
            std::string::npos)
      << s.message();
}

} // namespace
