//===- RuntimeValidatorTest.cpp - Load-time plan validation ---------------===//

#include "runtime/core/PlanValidator.h"
#include "runtime/include/colossal/Runtime.h"
#include "test/unit/runtime-core/TestPlans.h"

#include <gtest/gtest.h>

using namespace colossal;

namespace {

// The validator's message for `p`, or "" if it accepts it.
std::string validate(const plan::Plan &p) {
  rt::Status s = rt::validatePlan(p, "m.cplan");
  if (s)
    s = rt::checkRunnable(p, "m.cplan");
  return s ? "" : s.message();
}

#define EXPECT_HAS(haystack, needle)                                           \
  EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

TEST(RuntimeValidator, AcceptsGoodPlans) {
  EXPECT_EQ(validate(rttest::addReluPlan()), "");
  EXPECT_EQ(validate(rttest::identityPlan()), "");
}

TEST(RuntimeValidator, NoRanks) {
  plan::Plan p = rttest::addReluPlan();
  p.clear_ranks();
  EXPECT_HAS(validate(p), "no rank programs");
}

TEST(RuntimeValidator, BufferPastArenaEnd) {
  plan::Plan p = rttest::addReluPlan();
  p.mutable_ranks(0)->mutable_buffers(2)->set_offset(176);
  std::string m = validate(p);
  EXPECT_HAS(m, "plan 'm.cplan': rank 0: buffer 2 (offset 176, size 24) ends "
                "past the end of the 192-byte arena");
  EXPECT_HAS(m, "recompile the model with colossal-opt");
}

TEST(RuntimeValidator, NegativeOffset) {
  plan::Plan p = rttest::addReluPlan();
  p.mutable_ranks(0)->mutable_buffers(1)->set_offset(-8);
  EXPECT_HAS(validate(p), "buffer 1 has a negative offset or size");
}

TEST(RuntimeValidator, SizeMismatch) {
  plan::Plan p = rttest::addReluPlan();
  p.mutable_ranks(0)->mutable_buffers(1)->set_size(20);
  EXPECT_HAS(validate(p),
             "buffer 1 has size 20 bytes but its type float32[2,3] "
             "needs 24");
}

TEST(RuntimeValidator, DuplicateBufferId) {
  plan::Plan p = rttest::addReluPlan();
  p.mutable_ranks(0)->mutable_buffers(3)->set_id(2);
  EXPECT_HAS(validate(p), "buffer 2 is defined twice");
}

TEST(RuntimeValidator, UnknownBufferInKernel) {
  plan::Plan p = rttest::addReluPlan();
  p.mutable_ranks(0)->mutable_program(1)->mutable_kernel()->set_inputs(0, 42);
  EXPECT_HAS(validate(p), "instruction #1 (kernel 'relu' at node_relu) uses "
                          "buffer 42, which the rank does not define");
}

TEST(RuntimeValidator, UnknownBufferInIOBinding) {
  plan::Plan p = rttest::addReluPlan();
  p.mutable_ranks(0)->mutable_outputs(0)->set_buffer(9);
  EXPECT_HAS(validate(p), "output 'y' uses buffer 9");
}

TEST(RuntimeValidator, IOTypeMismatch) {
  plan::Plan p = rttest::addReluPlan();
  *p.mutable_inputs(0)->mutable_type() =
      rttest::tensorType(rt::DType::F32, {3, 2});
  EXPECT_HAS(validate(p), "input 'x' is float32[3,2] but its buffer 0 is "
                          "float32[2,3]");
}

TEST(RuntimeValidator, BadIOIndex) {
  plan::Plan p = rttest::addReluPlan();
  p.mutable_ranks(0)->mutable_inputs(0)->set_index(3);
  EXPECT_HAS(validate(p),
             "input binding 3 refers to input 3 but the plan has 1");
}

TEST(RuntimeValidator, BadParameterIndex) {
  plan::Plan p = rttest::addReluPlan();
  p.mutable_ranks(0)->mutable_parameters(0)->set_parameter(5);
  EXPECT_HAS(validate(p),
             "parameter slice #0 refers to parameter 5 but the plan "
             "has 1");
}

TEST(RuntimeValidator, SliceOutsideParameter) {
  plan::Plan p = rttest::addReluPlan();
  p.mutable_ranks(0)->mutable_parameters(0)->add_offsets(1);
  p.mutable_ranks(0)->mutable_parameters(0)->add_offsets(0);
  EXPECT_HAS(validate(p), "the slice at [1,0] of shape [2,3] is outside the "
                          "parameter's shape [2,3]");
}

TEST(RuntimeValidator, EmbeddedSizeMismatch) {
  plan::Plan p = rttest::addReluPlan();
  p.mutable_parameters(0)->set_embedded("abc");
  EXPECT_HAS(validate(p), "parameter #0 'b' embeds 3 bytes but its type "
                          "float32[2,3] needs 24");
}

TEST(RuntimeValidator, ConstantSizeMismatch) {
  plan::Plan p = rttest::addReluPlan();
  plan::Constant *c = p.mutable_ranks(0)->add_constants();
  c->set_buffer(1);
  c->set_data("12345678");
  EXPECT_HAS(validate(p), "constant #0 has 8 bytes for buffer 1 of 24");
}

TEST(RuntimeValidator, RankOutsideMesh) {
  plan::Plan p = rttest::addReluPlan();
  *p.add_ranks() = p.ranks(0);
  p.mutable_ranks(1)->set_rank(1);
  EXPECT_HAS(validate(p), "a program is for rank 1, outside its mesh");
}

/// The test plans leave the mesh out (one device); these tests name one.
plan::Plan withMesh(int64_t devices) {
  plan::Plan p = rttest::addReluPlan();
  p.mutable_mesh()->add_axis_names("device");
  p.mutable_mesh()->add_axis_sizes(devices);
  return p;
}

TEST(RuntimeValidator, RankWithoutProgram) {
  plan::Plan p = withMesh(2);
  EXPECT_HAS(validate(p), "rank 1 of its mesh (device=2) has no program");
  p.mutable_ranks(0)->add_members(0);
  p.mutable_ranks(0)->add_members(1);
  EXPECT_EQ(validate(p), "");
}

TEST(RuntimeValidator, CollectivesChecked) {
  plan::Plan p = withMesh(1);
  plan::Collective *c = p.mutable_ranks(0)->add_program()->mutable_collective();
  c->set_kind("all_reduce");
  c->set_input(2);
  c->set_output(2);
  c->add_axes("device");
  EXPECT_EQ(validate(p), "");
  c->set_axes(0, "tp");
  EXPECT_HAS(validate(p), "names mesh axis 'tp', which the mesh (one device)");
  c->set_kind("broadcast_all");
  EXPECT_HAS(validate(p), "instruction #3 is an unknown collective");
}

TEST(RuntimeValidator, RingAttentionChecked) {
  // q, k, v blocks [1, 2, 4] over an sp axis of 2: the workspace holds a
  // key and a value block and two row statistics (8 + 8 + 2 + 2 floats).
  plan::Plan p = withMesh(2);
  p.mutable_mesh()->set_axis_names(0, "sp");
  p.mutable_ranks(0)->add_members(0);
  p.mutable_ranks(0)->add_members(1);
  plan::RankProgram &r = *p.mutable_ranks(0);
  r.set_arena_bytes(1024);
  for (int64_t id : {10, 11, 12, 13})
    rttest::addBuffer(r, id, 256 + (id - 10) * 32, rt::DType::F32, {1, 2, 4});
  rttest::addBuffer(r, 14, 512, rt::DType::F32, {1, 2});
  plan::Buffer *ws = rttest::addBuffer(r, 15, 576, rt::DType::F32, {20});
  plan::RingAttention *ring = r.add_program()->mutable_ring_attention();
  ring->add_axes("sp");
  for (int64_t id : {10, 11, 12})
    ring->add_inputs(id);
  for (int64_t id : {13, 14, 15})
    ring->add_outputs(id);
  ring->set_scale(0.5);
  ring->set_causal(true);
  EXPECT_EQ(validate(p), "");
  *ws->mutable_type() = rttest::tensorType(rt::DType::F32, {16});
  ws->set_size(64);
  EXPECT_HAS(validate(p), "(ring attention): query [1,2,4], key [1,2,4], "
                          "value [1,2,4], lse [1,2] and workspace [16] do "
                          "not fit a ring of f32 blocks");
  ring->add_outputs(15);
  EXPECT_HAS(validate(p), "has 3 inputs and 4 outputs");
  ring->mutable_outputs()->RemoveLast();
  *ws->mutable_type() = rttest::tensorType(rt::DType::F32, {20});
  ws->set_size(80);
  ring->set_axes(0, "tp");
  EXPECT_HAS(validate(p), "names mesh axis 'tp', which the mesh (sp=2)");
}

TEST(RuntimeValidator, HostKernelsStayInTheHostPool) {
  // Two host buffers (an offloaded state and a host step's value) beside
  // the arena: a host kernel and an assignment within the pool pass; a
  // host kernel reading the arena, or a device kernel reading the pool,
  // does not.
  plan::Plan p = rttest::addReluPlan();
  plan::RankProgram &r = *p.mutable_ranks(0);
  r.set_host_pool_bytes(64);
  rttest::addBuffer(r, 4, 0, rt::DType::F32, {2, 3})->set_host(true);
  rttest::addBuffer(r, 5, 32, rt::DType::F32, {2, 3})->set_host(true);
  plan::Kernel *k = rttest::addKernel(r, "neg", {4}, {5});
  k->set_host(true);
  plan::Assign *a = r.add_program()->mutable_assign();
  a->set_source(5);
  a->set_destination(4);
  plan::ParamSlice *state = r.add_parameters();
  state->set_parameter(0);
  state->set_buffer(4);
  EXPECT_EQ(validate(p), "");
  k->set_inputs(0, 0);
  EXPECT_HAS(validate(p), "runs on the host but uses buffer 0, which is not "
                          "in the host pool");
  k->set_inputs(0, 4);
  k->set_host(false);
  EXPECT_HAS(validate(p), "uses buffer 4, which lives in the host pool");
}

TEST(RuntimeValidator, SendWithoutPeerRejected) {
  plan::Plan p = rttest::addReluPlan();
  p.mutable_ranks(0)->add_program()->mutable_send()->set_buffer(2);
  EXPECT_HAS(validate(p), "instruction #3 is a send, but the plan runs on one "
                          "rank: it has no peer");
}

TEST(RuntimeValidator, SendPeerChecked) {
  plan::Plan p = rttest::addReluPlan();
  p.mutable_mesh()->clear_axis_names();
  p.mutable_mesh()->clear_axis_sizes();
  p.mutable_mesh()->add_axis_names("dp");
  p.mutable_mesh()->add_axis_sizes(2);
  p.mutable_ranks(0)->clear_members();
  p.mutable_ranks(0)->add_members(0);
  p.mutable_ranks(0)->add_members(1);
  plan::SendRecv *send = p.mutable_ranks(0)->add_program()->mutable_send();
  send->set_buffer(2);
  send->set_peer(1);
  EXPECT_EQ(validate(p), "");
  send->set_peer(2);
  EXPECT_HAS(validate(p), "names peer 2, outside 2");
  send->set_peer(1);
  send->set_axis("pp");
  EXPECT_HAS(validate(p), "names mesh axis 'pp', which the mesh");
}

TEST(RuntimeValidator, EmptyInstruction) {
  plan::Plan p = rttest::addReluPlan();
  p.mutable_ranks(0)->add_program();
  EXPECT_HAS(validate(p), "instruction #3 is empty");
}

TEST(RuntimeValidator, BadDType) {
  plan::Plan p = rttest::addReluPlan();
  p.mutable_ranks(0)->mutable_buffers(0)->mutable_type()->set_dtype(
      plan::DTYPE_UNSPECIFIED);
  EXPECT_HAS(validate(p), "buffer 0 has no valid element type");
}

TEST(RuntimeValidator, UnknownOpAtSessionCreation) {
  rttest::registerTestBackend();
  plan::Plan p = rttest::addReluPlan();
  p.mutable_ranks(0)->mutable_program(1)->mutable_kernel()->set_op("softmax");
  std::shared_ptr<Plan> plan;
  ASSERT_TRUE(Plan::fromProto(p, ".", plan).isOk());
  std::unique_ptr<Session> session;
  SessionOptions options;
  options.backend = "test";
  Status s = Session::create(plan, options, session);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "the test backend has no kernel for op 'softmax' (at "
                          "node_relu)");
}

TEST(RuntimeValidator, UnknownBackend) {
  std::shared_ptr<Plan> plan;
  ASSERT_TRUE(Plan::fromProto(rttest::identityPlan(), ".", plan).isOk());
  std::unique_ptr<Session> session;
  SessionOptions options;
  options.backend = "tpu";
  Status s = Session::create(plan, options, session);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "unknown backend 'tpu'; this build has: cpu");
}

} // namespace
