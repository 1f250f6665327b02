//===- RuntimeWeightsTest.cpp - Parameters from every source --------------===//
//
// Each test builds a plan whose output is the buffer a parameter (slice) is
// loaded into, so a run with no kernels shows what was loaded.
//
//===----------------------------------------------------------------------===//

#include "runtime/core/OnnxTensor.h"
#include "runtime/core/PlanFile.h"
#include "runtime/include/colossal/Runtime.h"
#include "test/unit/runtime-core/TestPlans.h"

#include "onnx/onnx_pb.h"

#include <gtest/gtest.h>

#include <fstream>

using namespace colossal;

namespace {

#define EXPECT_HAS(haystack, needle)                                           \
  EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

class WeightsTest : public ::testing::Test {
protected:
  void SetUp() override { dir = rttest::makeTempDir(); }

  // A plan with parameter `param` (global shape `full`) whose slice at
  // `offsets` with `shape` is output "w".
  plan::Plan paramPlan(const plan::Parameter &param, std::vector<int64_t> shape,
                       std::vector<int64_t> offsets = {}) {
    plan::Plan p;
    *p.add_parameters() = param;
    plan::Binding *w = p.add_outputs();
    w->set_name("w");
    rt::DType dtype = static_cast<rt::DType>(param.type().dtype());
    *w->mutable_type() = rttest::tensorType(dtype, shape);
    plan::RankProgram &r = *p.add_ranks();
    plan::Buffer *b = rttest::addBuffer(r, 0, 0, dtype, shape);
    r.set_arena_bytes(b->size());
    plan::ParamSlice *s = r.add_parameters();
    s->set_parameter(0);
    s->set_buffer(0);
    for (int64_t o : offsets)
      s->add_offsets(o);
    r.add_outputs()->set_buffer(0);
    return p;
  }

  // Writes the plan next to its weights, loads it, runs it; returns the
  // status and fills `out` with the bytes of "w".
  Status load(const plan::Plan &p, std::string &out) {
    std::string path = dir + "/m.cplan";
    if (Status s = rt::writePlanFile(p, path); !s)
      return s;
    std::shared_ptr<Plan> plan;
    if (Status s = Plan::load(path, plan); !s)
      return s;
    std::unique_ptr<Session> session;
    if (Status s = Session::create(plan, SessionOptions(), session); !s)
      return s;
    if (Status s = session->run(); !s)
      return s;
    out.resize(plan->outputs()[0].bytes());
    return session->copyOutput("w", &out[0], out.size());
  }

  plan::Parameter param(rt::DType dtype, std::vector<int64_t> shape) {
    plan::Parameter p;
    p.set_name("w0");
    *p.mutable_type() = rttest::tensorType(dtype, shape);
    return p;
  }

  void writeFile(const std::string &name, const std::string &bytes) {
    std::ofstream out(dir + "/" + name, std::ios::binary);
    out.write(bytes.data(), bytes.size());
  }

  std::string dir;
};

std::vector<float> asFloats(const std::string &bytes) {
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

TEST_F(WeightsTest, Embedded) {
  plan::Parameter p = param(rt::DType::F32, {2, 2});
  p.set_embedded(rttest::floatBytes({1, 2, 3, 4}));
  std::string out;
  Status s = load(paramPlan(p, {2, 2}), out);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(asFloats(out), (std::vector<float>{1, 2, 3, 4}));
}

TEST_F(WeightsTest, EmbeddedSlice) {
  plan::Parameter p = param(rt::DType::F32, {2, 3});
  p.set_embedded(rttest::floatBytes({0, 1, 2, 3, 4, 5}));
  std::string out;
  Status s = load(paramPlan(p, {2, 2}, {0, 1}), out);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(asFloats(out), (std::vector<float>{1, 2, 4, 5}));
}

TEST_F(WeightsTest, ExternalFileRelativeToPlan) {
  writeFile("weights.bin", "xxxx" + rttest::floatBytes({5, 6, 7, 8}));
  plan::Parameter p = param(rt::DType::F32, {4});
  p.mutable_external()->set_location("weights.bin");
  p.mutable_external()->set_offset(4);
  p.mutable_external()->set_length(16);
  std::string out;
  Status s = load(paramPlan(p, {2}, {2}), out);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(asFloats(out), (std::vector<float>{7, 8}));
}

TEST_F(WeightsTest, ExternalFileAbsolutePath) {
  writeFile("abs.bin", rttest::floatBytes({9, 10}));
  plan::Parameter p = param(rt::DType::F32, {2});
  p.mutable_external()->set_location(dir + "/abs.bin");
  p.mutable_external()->set_length(8);
  std::string out;
  ASSERT_TRUE(load(paramPlan(p, {2}), out).isOk());
  EXPECT_EQ(asFloats(out), (std::vector<float>{9, 10}));
}

TEST_F(WeightsTest, MissingExternalFile) {
  plan::Parameter p = param(rt::DType::F32, {2});
  p.mutable_external()->set_location("gone.bin");
  p.mutable_external()->set_length(8);
  std::string out;
  Status s = load(paramPlan(p, {2}), out);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "parameter 'w0'");
  EXPECT_HAS(s.message(), "gone.bin");
  EXPECT_HAS(s.message(), "No such file");
  EXPECT_HAS(s.message(), "the plan's weights must be copied with it");
}

TEST_F(WeightsTest, ShortExternalFile) {
  writeFile("short.bin", "1234");
  plan::Parameter p = param(rt::DType::F32, {2});
  p.mutable_external()->set_location("short.bin");
  p.mutable_external()->set_length(8);
  std::string out;
  Status s = load(paramPlan(p, {2}), out);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "holds 4 bytes, but 8 bytes at offset 0 are needed");
  EXPECT_HAS(s.message(), "the plan's weights must be copied with it");
}

// Writes an ONNX model holding `inits` as initializers.
void writeModel(const std::string &path,
                const std::vector<onnx::TensorProto> &inits) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.add_opset_import()->set_version(17);
  onnx::GraphProto *g = model.mutable_graph();
  g->set_name("g");
  for (const onnx::TensorProto &t : inits)
    *g->add_initializer() = t;
  std::ofstream out(path, std::ios::binary);
  model.SerializeToOstream(&out);
}

plan::Parameter initializerParam(rt::DType dtype, std::vector<int64_t> shape,
                                 const std::string &name) {
  plan::Parameter p;
  p.set_name("p." + name);
  *p.mutable_type() = rttest::tensorType(dtype, shape);
  p.mutable_initializer()->set_model("model.onnx");
  p.mutable_initializer()->set_name(name);
  return p;
}

TEST_F(WeightsTest, OnnxInitializers) {
  onnx::TensorProto raw =
      rttest::onnxTensor("raw", onnx::TensorProto::FLOAT, {2, 2});
  raw.set_raw_data(rttest::floatBytes({1, 2, 3, 4}));
  onnx::TensorProto typed =
      rttest::onnxTensor("typed", onnx::TensorProto::FLOAT, {3});
  for (float f : {0.5f, 1.5f, 2.5f})
    typed.add_float_data(f);
  onnx::TensorProto half =
      rttest::onnxTensor("half", onnx::TensorProto::FLOAT16, {2});
  half.add_int32_data(0x3c00); // 1.0
  half.add_int32_data(0xc000); // -2.0
  onnx::TensorProto ids =
      rttest::onnxTensor("ids", onnx::TensorProto::INT64, {2});
  ids.add_int64_data(-7);
  ids.add_int64_data(1ll << 40);
  onnx::TensorProto mask =
      rttest::onnxTensor("mask", onnx::TensorProto::BOOL, {3});
  for (int v : {1, 0, 1})
    mask.add_int32_data(v);
  writeModel(dir + "/model.onnx", {raw, typed, half, ids, mask});

  std::string out;
  Status s = load(paramPlan(initializerParam(rt::DType::F32, {2, 2}, "raw"),
                            {1, 2}, {1, 0}),
                  out);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(asFloats(out), (std::vector<float>{3, 4}));

  ASSERT_TRUE(
      load(paramPlan(initializerParam(rt::DType::F32, {3}, "typed"), {3}), out)
          .isOk());
  EXPECT_EQ(asFloats(out), (std::vector<float>{0.5f, 1.5f, 2.5f}));

  ASSERT_TRUE(
      load(paramPlan(initializerParam(rt::DType::F16, {2}, "half"), {2}), out)
          .isOk());
  ASSERT_EQ(out.size(), 4u);
  uint16_t h[2];
  std::memcpy(h, out.data(), 4);
  EXPECT_EQ(h[0], 0x3c00);
  EXPECT_EQ(h[1], 0xc000);

  ASSERT_TRUE(
      load(paramPlan(initializerParam(rt::DType::I64, {2}, "ids"), {2}), out)
          .isOk());
  int64_t i[2];
  std::memcpy(i, out.data(), 16);
  EXPECT_EQ(i[0], -7);
  EXPECT_EQ(i[1], 1ll << 40);

  ASSERT_TRUE(
      load(paramPlan(initializerParam(rt::DType::Bool, {3}, "mask"), {3}), out)
          .isOk());
  EXPECT_EQ(out, std::string("\1\0\1", 3));

  // float32 initializer, bfloat16 parameter: rounded.
  ASSERT_TRUE(
      load(paramPlan(initializerParam(rt::DType::BF16, {3}, "typed"), {3}), out)
          .isOk());
  uint16_t b[3];
  std::memcpy(b, out.data(), 6);
  EXPECT_EQ(b[0], 0x3f00); // 0.5
  EXPECT_EQ(b[1], 0x3fc0); // 1.5
  EXPECT_EQ(b[2], 0x4020); // 2.5
}

TEST_F(WeightsTest, OnnxInitializerErrors) {
  onnx::TensorProto raw =
      rttest::onnxTensor("raw", onnx::TensorProto::FLOAT, {2});
  raw.set_raw_data(rttest::floatBytes({1, 2}));
  writeModel(dir + "/model.onnx", {raw});
  std::string out;

  Status s = load(
      paramPlan(initializerParam(rt::DType::F32, {2}, "absent"), {2}), out);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "parameter 'p.absent'");
  EXPECT_HAS(s.message(), "model.onnx' has no initializer named 'absent'");
  EXPECT_HAS(s.message(), "the plan's weights must be copied with it");

  s = load(paramPlan(initializerParam(rt::DType::F32, {3}, "raw"), {3}), out);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "has shape [2] but the plan expects [3]");

  s = load(paramPlan(initializerParam(rt::DType::I32, {2}, "raw"), {2}), out);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "is float32 but the plan expects int32");

  plan::Parameter p = initializerParam(rt::DType::F32, {2}, "raw");
  p.mutable_initializer()->set_model("other.onnx");
  s = load(paramPlan(p, {2}), out);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "other.onnx");
  EXPECT_HAS(s.message(), "the plan's weights must be copied with it");

  writeFile("junk.onnx", "\xff\xff\xff\xff not a model");
  p.mutable_initializer()->set_model("junk.onnx");
  s = load(paramPlan(p, {2}), out);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "is not a readable ONNX model");
}

TEST_F(WeightsTest, OnnxExternalData) {
  writeFile("model.data", "pad!" + rttest::floatBytes({3, 1, 4}));
  onnx::TensorProto ext =
      rttest::onnxTensor("ext", onnx::TensorProto::FLOAT, {3});
  ext.set_data_location(onnx::TensorProto::EXTERNAL);
  auto *kv = ext.add_external_data();
  kv->set_key("location");
  kv->set_value("model.data");
  kv = ext.add_external_data();
  kv->set_key("offset");
  kv->set_value("4");
  writeModel(dir + "/model.onnx", {ext});
  std::string out;
  Status s =
      load(paramPlan(initializerParam(rt::DType::F32, {3}, "ext"), {3}), out);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(asFloats(out), (std::vector<float>{3, 1, 4}));
}

TEST_F(WeightsTest, OnnxTensorFileConversions) {
  auto read = [&](const onnx::TensorProto &t, bool hasWant, rt::DType want,
                  rt::HostTensor &out) {
    writeFile("t.pb", t.SerializeAsString());
    rt::WantedDType wanted;
    if (hasWant)
      wanted = [&](const std::string &name, rt::DType &w) {
        EXPECT_EQ(name, t.name());
        w = want;
        return true;
      };
    return rt::readOnnxTensorFile(dir + "/t.pb", out, wanted);
  };
  rt::HostTensor out;

  onnx::TensorProto u32 =
      rttest::onnxTensor("a", onnx::TensorProto::UINT32, {2});
  u32.add_uint64_data(7);
  u32.add_uint64_data(2147483647);
  ASSERT_TRUE(read(u32, true, rt::DType::I32, out).isOk());
  EXPECT_EQ(out.dtype, rt::DType::I32);
  int32_t i32[2];
  std::memcpy(i32, out.data.data(), 8);
  EXPECT_EQ(i32[1], 2147483647);
  u32.set_uint64_data(1, 2147483648u);
  Status s = read(u32, true, rt::DType::I32, out);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "element 1 does not fit int32");
  s = read(u32, false, rt::DType::I32, out);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(),
             "element type UINT32, which the runtime does not support");

  onnx::TensorProto i8 = rttest::onnxTensor("b", onnx::TensorProto::INT8, {3});
  i8.set_raw_data(std::string("\xff\x80\x05", 3));
  ASSERT_TRUE(read(i8, true, rt::DType::I64, out).isOk());
  int64_t i64[3];
  std::memcpy(i64, out.data.data(), 24);
  EXPECT_EQ(i64[0], -1);
  EXPECT_EQ(i64[1], -128);
  EXPECT_EQ(i64[2], 5);

  onnx::TensorProto u64 =
      rttest::onnxTensor("c", onnx::TensorProto::UINT64, {1});
  u64.add_uint64_data(~uint64_t(0));
  EXPECT_FALSE(read(u64, true, rt::DType::I64, out).isOk());

  onnx::TensorProto bf =
      rttest::onnxTensor("d", onnx::TensorProto::UINT16, {2});
  bf.add_int32_data(0x3f80);
  bf.add_int32_data(0xc040);
  ASSERT_TRUE(read(bf, true, rt::DType::BF16, out).isOk());
  EXPECT_EQ(out.dtype, rt::DType::BF16);
  uint16_t h[2];
  std::memcpy(h, out.data.data(), 4);
  EXPECT_EQ(h[0], 0x3f80);
  EXPECT_EQ(h[1], 0xc040);

  // A float tensor stays float even if the caller wants integers.
  onnx::TensorProto f = rttest::onnxTensor("e", onnx::TensorProto::FLOAT, {1});
  f.add_float_data(1.5f);
  ASSERT_TRUE(read(f, true, rt::DType::I64, out).isOk());
  EXPECT_EQ(out.dtype, rt::DType::F32);
}

} // namespace
