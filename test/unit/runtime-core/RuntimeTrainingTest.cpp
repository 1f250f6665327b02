//===- RuntimeTrainingTest.cpp - Train plans, parameters and ONNX export --===//
//
// What the runtime has for training: parameters that start from a fill
// value, assign instructions that carry state from one run to the next, the
// session's parameter read/write API, the validator's checks of both, and
// exporting trained weights into a copy of an ONNX model. Train plans run on
// the test backend and, when its kernels are built, on the CPU backend.
//
//===----------------------------------------------------------------------===//

#include "runtime/core/HostTensor.h"
#include "runtime/core/OnnxTensor.h"
#include "runtime/core/PlanFile.h"
#include "runtime/include/colossal/Runtime.h"
#include "runtime/include/colossal/colossal.h"
#include "test/unit/runtime-core/TestPlans.h"

#include "onnx/onnx_pb.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

using namespace colossal;

namespace {

#define EXPECT_HAS(haystack, needle)                                           \
  EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

// Buffers of trainPlan().
constexpr int64_t kX = 0, kW = 1, kT = 2, kU = 3, kM = 4;

/// The state handling of a training step, without the maths: t = w + x,
/// w := t, u = w + x. u reads the new w, so it shows that the assign runs in
/// program order. Parameter w starts at 0; the optimizer state m starts at
/// 0.5 and no instruction touches it.
plan::Plan trainPlan() {
  using rt::DType;
  plan::Plan p;
  p.set_producer("test");
  p.set_mode("train");
  p.mutable_training()->set_loss_output("t");
  plan::Binding *x = p.add_inputs();
  x->set_name("x");
  *x->mutable_type() = rttest::tensorType(DType::F32, {3});
  for (const char *name : {"t", "u"}) {
    plan::Binding *out = p.add_outputs();
    out->set_name(name);
    *out->mutable_type() = rttest::tensorType(DType::F32, {3});
  }
  plan::Parameter *w = p.add_parameters();
  w->set_name("w");
  *w->mutable_type() = rttest::tensorType(DType::F32, {3});
  w->set_fill(0);
  plan::Parameter *m = p.add_parameters();
  m->set_name("m");
  *m->mutable_type() = rttest::tensorType(DType::F32, {3});
  m->set_fill(0.5);
  m->set_role("optimizer");

  plan::RankProgram &r = *p.add_ranks();
  r.set_arena_bytes(320);
  rttest::addBuffer(r, kX, 0, DType::F32, {3});
  rttest::addBuffer(r, kW, 64, DType::F32, {3});
  rttest::addBuffer(r, kT, 128, DType::F32, {3});
  rttest::addBuffer(r, kU, 192, DType::F32, {3});
  rttest::addBuffer(r, kM, 256, DType::F32, {3});
  plan::ParamSlice *ws = r.add_parameters();
  ws->set_parameter(0);
  ws->set_buffer(kW);
  plan::ParamSlice *ms = r.add_parameters();
  ms->set_parameter(1);
  ms->set_buffer(kM);
  plan::IOBinding *in = r.add_inputs();
  in->set_index(0);
  in->set_buffer(kX);
  for (int i = 0; i < 2; ++i) {
    plan::IOBinding *out = r.add_outputs();
    out->set_index(i);
    out->set_buffer(i == 0 ? kT : kU);
  }
  rttest::addKernel(r, "add", {kW, kX}, {kT}, "step");
  plan::Assign *a = r.add_program()->mutable_assign();
  a->set_source(kT);
  a->set_destination(kW);
  rttest::addKernel(r, "add", {kW, kX}, {kU}, "after");
  return p;
}

/// Validates `p`; the message, or "" when it is accepted.
std::string validate(const plan::Plan &p) {
  std::shared_ptr<Plan> plan;
  Status s = Plan::fromProto(p, ".", plan);
  return s ? "" : s.message();
}

Status createSession(const plan::Plan &p, const std::string &backend,
                     std::unique_ptr<Session> &session) {
  std::shared_ptr<Plan> plan;
  if (Status s = Plan::fromProto(p, ".", plan); !s)
    return s;
  SessionOptions options;
  options.backend = backend;
  options.threads = 1;
  return Session::create(plan, options, session);
}

std::vector<float> readFloats(const Session &session, const std::string &name,
                              size_t n) {
  std::vector<float> v(n);
  Status s = session.readParameter(name, v.data(), n * sizeof(float));
  EXPECT_TRUE(s.isOk()) << s.message();
  return v;
}

//===----------------------------------------------------------------------===//
// A train plan on each backend
//===----------------------------------------------------------------------===//

class TrainPlanTest : public ::testing::TestWithParam<std::string> {
protected:
  void SetUp() override {
    rttest::registerTestBackend();
    Status s = createSession(trainPlan(), GetParam(), session);
    ASSERT_TRUE(s.isOk()) << s.message();
  }

  // Sets x to ones and runs; t and u, or empty vectors on failure.
  void step(std::vector<float> &t, std::vector<float> &u) {
    std::vector<float> x = {1, 1, 1};
    t.clear();
    u.clear();
    ASSERT_TRUE(
        session->setInput("x", TensorRef{x.data(), DType::F32, {3}}).isOk());
    Status s = session->run();
    ASSERT_TRUE(s.isOk()) << s.message();
    t.resize(3);
    u.resize(3);
    ASSERT_TRUE(session->copyOutput("t", t.data(), 12).isOk());
    ASSERT_TRUE(session->copyOutput("u", u.data(), 12).isOk());
  }

  std::unique_ptr<Session> session;
};

TEST_P(TrainPlanTest, StatePersistsAcrossRuns) {
  EXPECT_EQ(readFloats(*session, "w", 3), (std::vector<float>{0, 0, 0}));
  std::vector<float> t, u;
  for (float expected = 1; expected <= 3; ++expected) {
    ASSERT_NO_FATAL_FAILURE(step(t, u));
    EXPECT_EQ(t, std::vector<float>(3, expected));
    // The kernel after the assign sees the new w.
    EXPECT_EQ(u, std::vector<float>(3, expected + 1));
  }
  EXPECT_EQ(readFloats(*session, "w", 3), (std::vector<float>{3, 3, 3}));
  EXPECT_EQ(readFloats(*session, "m", 3),
            (std::vector<float>{0.5f, 0.5f, 0.5f}));
}

TEST_P(TrainPlanTest, WriteParameterContinuesFromTheWrittenValue) {
  std::vector<float> t, u;
  ASSERT_NO_FATAL_FAILURE(step(t, u));
  std::vector<float> w = {10, 20, 30};
  Status s = session->writeParameter("w", w.data(), 12);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(readFloats(*session, "w", 3), w);

  // The outputs were computed from the old w.
  TensorRef ref;
  s = session->output("t", ref);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "output 't' is not available");
  std::vector<float> copy(3);
  EXPECT_FALSE(session->copyOutput("u", copy.data(), 12).isOk());

  ASSERT_NO_FATAL_FAILURE(step(t, u));
  EXPECT_EQ(t, (std::vector<float>{11, 21, 31}));
  EXPECT_EQ(u, (std::vector<float>{12, 22, 32}));
  EXPECT_EQ(readFloats(*session, "w", 3), (std::vector<float>{11, 21, 31}));
}

TEST_P(TrainPlanTest, ParameterErrors) {
  std::vector<float> t, u;
  ASSERT_NO_FATAL_FAILURE(step(t, u));
  std::vector<float> buf(4);
  Status s = session->readParameter("v", buf.data(), 12);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "the plan has no parameter 'v'");
  s = session->writeParameter("v", buf.data(), 12);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "the plan has no parameter 'v'");
  s = session->readParameter("w", buf.data(), 16);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "parameter 'w' is 12 bytes (float32[3]), not 16");
  s = session->writeParameter("w", buf.data(), 8);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "parameter 'w' is 12 bytes (float32[3]), not 8");
  s = session->readParameter("w", nullptr, 12);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "null destination");
  s = session->writeParameter("w", nullptr, 12);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "null source");

  // Failed writes change nothing: w and the outputs are as the run left them.
  EXPECT_EQ(readFloats(*session, "w", 3), (std::vector<float>{1, 1, 1}));
  std::vector<float> copy(3);
  EXPECT_TRUE(session->copyOutput("t", copy.data(), 12).isOk());
}

TEST_P(TrainPlanTest, ParametersAreListedInPlanOrder) {
  const std::vector<ParameterInfo> &params = session->parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].name, "w");
  EXPECT_EQ(params[0].dtype, DType::F32);
  EXPECT_EQ(params[0].shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(params[0].bytes(), 12u);
  EXPECT_FALSE(params[0].optimizerState);
  EXPECT_EQ(params[1].name, "m");
  EXPECT_TRUE(params[1].optimizerState);
  EXPECT_EQ(session->plan().mode(), "train");
}

std::vector<std::string> backends() {
  std::vector<std::string> names = {"test"};
#ifdef COLOSSAL_HAVE_CPU_KERNELS
  names.push_back("cpu");
#endif
  return names;
}

INSTANTIATE_TEST_SUITE_P(Backends, TrainPlanTest,
                         ::testing::ValuesIn(backends()));

// A parameter the rank holds no slice of is declared but not readable.
TEST(RuntimeTraining, ParameterWithoutSlice) {
  rttest::registerTestBackend();
  plan::Plan p = trainPlan();
  p.mutable_ranks(0)->mutable_parameters()->RemoveLast();
  std::unique_ptr<Session> session;
  Status s = createSession(p, "test", session);
  ASSERT_TRUE(s.isOk()) << s.message();
  ASSERT_EQ(session->parameters().size(), 2u);
  std::vector<float> m(3);
  s = session->readParameter("m", m.data(), 12);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "parameter 'm' is not held by this session's device");
}

//===----------------------------------------------------------------------===//
// Parameter fill
//===----------------------------------------------------------------------===//

// The identity plan with one filled parameter of `dtype`/`shape`, held in a
// buffer of its own.
plan::Plan filledPlan(rt::DType dtype, std::vector<int64_t> shape,
                      double fill) {
  plan::Plan p = rttest::identityPlan();
  plan::Parameter *param = p.add_parameters();
  param->set_name("p");
  *param->mutable_type() = rttest::tensorType(dtype, shape);
  param->set_fill(fill);
  param->set_role("optimizer");
  plan::RankProgram &r = *p.mutable_ranks(0);
  r.set_arena_bytes(128);
  rttest::addBuffer(r, 1, 64, dtype, shape);
  r.add_parameters()->set_buffer(1);
  return p;
}

template <typename T>
std::vector<T> readFilled(rt::DType dtype, std::vector<int64_t> shape,
                          double fill) {
  rttest::registerTestBackend();
  std::unique_ptr<Session> session;
  Status s = createSession(filledPlan(dtype, shape, fill), "test", session);
  EXPECT_TRUE(s.isOk()) << s.message();
  if (!s)
    return {};
  std::vector<T> v(static_cast<size_t>(rt::numElements(shape)));
  s = session->readParameter("p", v.data(), v.size() * sizeof(T));
  EXPECT_TRUE(s.isOk()) << s.message();
  return v;
}

TEST(RuntimeTraining, FillFloat32) {
  EXPECT_EQ(readFilled<float>(DType::F32, {3}, 0.5),
            (std::vector<float>{0.5f, 0.5f, 0.5f}));
  EXPECT_EQ(readFilled<float>(DType::F32, {2, 2}, -3),
            (std::vector<float>(4, -3.0f)));
}

TEST(RuntimeTraining, FillHalfTypes) {
  // 0.5 is 0x3F00 in bfloat16 and 0x3800 in float16; -2 is 0xC000 in both.
  EXPECT_EQ(readFilled<uint16_t>(DType::BF16, {3}, 0.5),
            (std::vector<uint16_t>(3, 0x3F00)));
  EXPECT_EQ(readFilled<uint16_t>(DType::F16, {3}, 0.5),
            (std::vector<uint16_t>(3, 0x3800)));
  EXPECT_EQ(readFilled<uint16_t>(DType::BF16, {2}, -2),
            (std::vector<uint16_t>(2, 0xC000)));
  EXPECT_EQ(readFilled<uint16_t>(DType::F16, {2}, -2),
            (std::vector<uint16_t>(2, 0xC000)));
}

TEST(RuntimeTraining, FillOfAScalar) {
  EXPECT_EQ(readFilled<float>(DType::F32, {}, 7), (std::vector<float>{7}));
}

TEST(RuntimeTraining, FillNeedsAFloatType) {
  EXPECT_EQ(validate(filledPlan(DType::F32, {3}, 1)), "");
  std::string m = validate(filledPlan(DType::I64, {3}, 1));
  EXPECT_HAS(m, "parameter #0 'p' is filled with a number but is int64, not "
                "floating point");
  EXPECT_HAS(m, "recompile the model with colossal-opt");
  EXPECT_HAS(validate(filledPlan(DType::I32, {3}, 1)),
             "is filled with a number but is int32");
  EXPECT_HAS(validate(filledPlan(DType::Bool, {3}, 1)),
             "is filled with a number but is");
}

//===----------------------------------------------------------------------===//
// Validation of assign
//===----------------------------------------------------------------------===//

TEST(RuntimeTraining, ValidatorAcceptsTheTrainPlan) {
  EXPECT_EQ(validate(trainPlan()), "");
}

TEST(RuntimeTraining, CApiParameters) {
  std::string path = rttest::makeTempDir() + "/train.cplan";
  ASSERT_TRUE(rt::writePlanFile(trainPlan(), path).isOk());
  colossal_plan_t *plan = nullptr;
  colossal_session_t *session = nullptr;
  ASSERT_EQ(colossal_plan_load(path.c_str(), &plan), COLOSSAL_OK)
      << colossal_last_error();
  ASSERT_EQ(colossal_session_create(plan, 1, &session), COLOSSAL_OK)
      << colossal_last_error();
  size_t n = 0;
  ASSERT_EQ(colossal_session_num_parameters(session, &n), COLOSSAL_OK);
  ASSERT_EQ(n, 2u);
  colossal_tensor_t info;
  int32_t optimizer = -1;
  ASSERT_EQ(colossal_session_parameter(session, 1, &info, &optimizer),
            COLOSSAL_OK);
  EXPECT_STREQ(info.name, "m");
  EXPECT_EQ(info.bytes, 12u);
  EXPECT_EQ(optimizer, 1);
  ASSERT_EQ(colossal_session_parameter(session, 0, &info, nullptr),
            COLOSSAL_OK);
  EXPECT_STREQ(info.name, "w");
  EXPECT_EQ(colossal_session_parameter(session, 2, &info, nullptr),
            COLOSSAL_ERROR_NOT_FOUND);

  float w[3] = {1, 2, 3}, back[3] = {0, 0, 0};
  ASSERT_EQ(colossal_session_write_parameter(session, "w", w, sizeof w),
            COLOSSAL_OK);
  ASSERT_EQ(colossal_session_read_parameter(session, "w", back, sizeof back),
            COLOSSAL_OK);
  EXPECT_EQ(back[2], 3.0f);
  EXPECT_EQ(colossal_session_read_parameter(session, "v", back, sizeof back),
            COLOSSAL_ERROR_NOT_FOUND);
  EXPECT_EQ(colossal_session_read_parameter(session, "w", back, 4),
            COLOSSAL_ERROR_INVALID_ARGUMENT);
  EXPECT_HAS(std::string(colossal_last_error()), "not 4");

  // Checkpoint round trip: save, change, load back.
  std::string ckpt = path + ".safetensors";
  ASSERT_EQ(colossal_session_save_parameters(session, ckpt.c_str()),
            COLOSSAL_OK)
      << colossal_last_error();
  float zeros[3] = {0, 0, 0};
  ASSERT_EQ(colossal_session_write_parameter(session, "w", zeros, sizeof zeros),
            COLOSSAL_OK);
  ASSERT_EQ(colossal_session_load_parameters(session, ckpt.c_str()),
            COLOSSAL_OK)
      << colossal_last_error();
  ASSERT_EQ(colossal_session_read_parameter(session, "w", back, sizeof back),
            COLOSSAL_OK);
  EXPECT_EQ(back[0], 1.0f);
  EXPECT_EQ(colossal_session_load_parameters(session, "/no/such.safetensors"),
            COLOSSAL_ERROR_LOAD);
  colossal_session_free(session);
  colossal_plan_free(plan);
}

TEST(RuntimeTraining, LoadParametersChecksThePlan) {
  rttest::registerTestBackend();
  std::unique_ptr<Session> session;
  ASSERT_TRUE(createSession(trainPlan(), "test", session).isOk());
  std::string dir = rttest::makeTempDir();
  // A file of other parameters: refused, naming what is missing.
  rt::HostTensor v;
  v.name = "v";
  v.dtype = DType::F32;
  v.shape = {3};
  v.data.assign(12, '\0');
  std::vector<rt::HostTensor> other = {v};
  Status s = session->restoreParameters(other, "the test file");
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "the test file does not match this plan: it has no "
                          "'w'");
  // Metadata round trip.
  ASSERT_TRUE(
      session->saveParameters(dir + "/p.safetensors", {{"step", "7"}}).isOk());
  std::map<std::string, std::string> meta;
  ASSERT_TRUE(session->loadParameters(dir + "/p.safetensors", &meta).isOk());
  EXPECT_EQ(meta["step"], "7");
}

TEST(RuntimeTraining, ParameterNamesAreUnique) {
  // Checkpoints and ONNX export find parameters by name.
  plan::Plan p = trainPlan();
  p.mutable_parameters(1)->set_name(p.parameters(0).name());
  EXPECT_HAS(validate(p), "two parameters are named 'w'");
}

plan::Assign *theAssign(plan::Plan &p) {
  return p.mutable_ranks(0)->mutable_program(1)->mutable_assign();
}

TEST(RuntimeTraining, AssignOfAnotherType) {
  plan::Plan p = trainPlan();
  rttest::addBuffer(*p.mutable_ranks(0), 9, 128, DType::I32, {3});
  theAssign(p)->set_source(9);
  std::string m = validate(p);
  EXPECT_HAS(m, "rank 0: instruction #1 (assign) copies int32[3] into "
                "float32[3]");
  EXPECT_HAS(m, "recompile the model with colossal-opt");
}

TEST(RuntimeTraining, AssignOfAnotherShape) {
  plan::Plan p = trainPlan();
  rttest::addBuffer(*p.mutable_ranks(0), 9, 128, DType::F32, {1, 3});
  theAssign(p)->set_source(9);
  EXPECT_HAS(validate(p),
             "instruction #1 (assign) copies float32[1,3] into float32[3]");
}

TEST(RuntimeTraining, AssignIntoANonParameter) {
  plan::Plan p = trainPlan();
  theAssign(p)->set_destination(kU);
  EXPECT_HAS(validate(p), "instruction #1 (assign) writes buffer 3, which "
                          "holds no parameter; only parameters keep state "
                          "between runs");
  // An input's buffer holds no parameter either.
  theAssign(p)->set_destination(kX);
  EXPECT_HAS(validate(p), "writes buffer 0, which holds no parameter");
}

TEST(RuntimeTraining, AssignOfUnknownBuffers) {
  plan::Plan p = trainPlan();
  theAssign(p)->set_source(99);
  EXPECT_HAS(validate(p), "rank 0: instruction #1 (assign) uses buffer 99, "
                          "which the rank does not define");
  p = trainPlan();
  theAssign(p)->set_destination(98);
  EXPECT_HAS(validate(p), "instruction #1 (assign) uses buffer 98, which the "
                          "rank does not define");
}

//===----------------------------------------------------------------------===//
// ONNX export
//===----------------------------------------------------------------------===//

rt::HostTensor hostTensor(const std::string &name, rt::DType dtype,
                          std::vector<int64_t> shape, std::string data) {
  rt::HostTensor t;
  t.name = name;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data = std::move(data);
  return t;
}

std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool exists(const std::string &path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

// A source model dir/model.onnx with three initializers: "w" (float [2,2] in
// float_data), "ids" (int64 [3] in int64_data) and "big" (float [300], 1200
// bytes, in the external file model.onnx.data after 8 bytes of padding).
class OnnxExportTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir = rttest::makeTempDir();
    source = dir + "/model.onnx";
    for (int i = 0; i < 300; ++i)
      big.push_back(0.25f * i - 7);
    std::ofstream data(dir + "/model.onnx.data", std::ios::binary);
    data << "padding!" << rttest::floatBytes(big);
    data.close();

    onnx::ModelProto model;
    model.set_ir_version(8);
    model.add_opset_import()->set_version(17);
    onnx::GraphProto *g = model.mutable_graph();
    g->set_name("g");
    onnx::TensorProto w =
        rttest::onnxTensor("w", onnx::TensorProto::FLOAT, {2, 2});
    for (float v : {1.0f, 2.0f, 3.0f, 4.0f})
      w.add_float_data(v);
    *g->add_initializer() = w;
    onnx::TensorProto ids =
        rttest::onnxTensor("ids", onnx::TensorProto::INT64, {3});
    for (int64_t v : {7, -8, 9})
      ids.add_int64_data(v);
    *g->add_initializer() = ids;
    onnx::TensorProto ext =
        rttest::onnxTensor("big", onnx::TensorProto::FLOAT, {300});
    ext.set_data_location(onnx::TensorProto::EXTERNAL);
    const char *external[][2] = {
        {"location", "model.onnx.data"}, {"offset", "8"}, {"length", "1200"}};
    for (const auto &entry : external) {
      auto *kv = ext.add_external_data();
      kv->set_key(entry[0]);
      kv->set_value(entry[1]);
    }
    *g->add_initializer() = ext;
    std::ofstream out(source, std::ios::binary);
    ASSERT_TRUE(model.SerializeToOstream(&out));
    out.close();

    std::filesystem::create_directory(dir + "/out");
    out_ = dir + "/out/trained.onnx";
    newW = hostTensor("w", DType::F32, {2, 2},
                      rttest::floatBytes({10, 20, 30, 40}));
  }

  Status exportWith(const std::map<std::string, const rt::HostTensor *> &w,
                    int64_t externalAbove = int64_t(1) << 30) {
    replaced = -1;
    return rt::exportOnnxModel(source, w, out_, replaced, externalAbove);
  }

  // The exported model's initializers by name.
  std::map<std::string, onnx::TensorProto> exported() {
    onnx::ModelProto model;
    EXPECT_TRUE(model.ParseFromString(readBytes(out_))) << out_;
    std::map<std::string, onnx::TensorProto> inits;
    for (const onnx::TensorProto &t : model.graph().initializer())
      inits[t.name()] = t;
    EXPECT_EQ(inits.size(), 3u);
    return inits;
  }

  // The runtime's own reader of the exported model, with the source's data
  // file gone: the copy must stand alone.
  void expectReadable(const std::string &name, const std::string &bytes) {
    std::filesystem::remove(dir + "/model.onnx.data");
    rt::OnnxModelCache cache;
    rt::HostTensor t;
    std::string why;
    ASSERT_TRUE(cache.initializer(out_, name, t, why)) << why;
    EXPECT_EQ(t.data, bytes);
  }

  void expectNoOutput() {
    EXPECT_FALSE(exists(out_));
    EXPECT_FALSE(exists(out_ + ".tmp"));
    EXPECT_FALSE(exists(out_ + ".data"));
    EXPECT_FALSE(exists(out_ + ".data.tmp"));
  }

  std::string dir, source, out_;
  std::vector<float> big;
  rt::HostTensor newW;
  int64_t replaced = -1;
};

TEST_F(OnnxExportTest, ReplacesAndInlinesEverything) {
  Status s = exportWith({{"w", &newW}});
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(replaced, 1);
  EXPECT_FALSE(exists(out_ + ".data"));
  EXPECT_FALSE(exists(out_ + ".tmp"));
  std::map<std::string, onnx::TensorProto> inits = exported();

  const onnx::TensorProto &w = inits["w"];
  EXPECT_EQ(w.data_type(), onnx::TensorProto::FLOAT);
  EXPECT_EQ(std::vector<int64_t>(w.dims().begin(), w.dims().end()),
            (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(w.float_data_size(), 0);
  EXPECT_EQ(w.raw_data(), newW.data);

  const onnx::TensorProto &b = inits["big"];
  EXPECT_NE(b.data_location(), onnx::TensorProto::EXTERNAL);
  EXPECT_EQ(b.external_data_size(), 0);
  EXPECT_EQ(b.raw_data(), rttest::floatBytes(big));

  const onnx::TensorProto &ids = inits["ids"];
  EXPECT_EQ(ids.data_type(), onnx::TensorProto::INT64);
  EXPECT_EQ(
      std::vector<int64_t>(ids.int64_data().begin(), ids.int64_data().end()),
      (std::vector<int64_t>{7, -8, 9}));
  EXPECT_FALSE(ids.has_raw_data());

  expectReadable("big", rttest::floatBytes(big));
  expectReadable("w", newW.data);
}

TEST_F(OnnxExportTest, LargeModelsKeepTheirBytesInADataFile) {
  Status s = exportWith({{"w", &newW}}, /*externalAbove=*/16);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(replaced, 1);
  EXPECT_FALSE(exists(out_ + ".data.tmp"));
  EXPECT_EQ(readBytes(out_ + ".data"), rttest::floatBytes(big));
  std::map<std::string, onnx::TensorProto> inits = exported();

  const onnx::TensorProto &b = inits["big"];
  EXPECT_EQ(b.data_location(), onnx::TensorProto::EXTERNAL);
  EXPECT_FALSE(b.has_raw_data());
  std::map<std::string, std::string> kv;
  for (const auto &e : b.external_data())
    kv[e.key()] = e.value();
  // The location is relative to the exported model, not the source.
  EXPECT_EQ(kv["location"], "trained.onnx.data");
  EXPECT_EQ(kv["offset"], "0");
  EXPECT_EQ(kv["length"], "1200");

  // Small tensors stay inline.
  EXPECT_EQ(inits["w"].raw_data(), newW.data);
  EXPECT_EQ(inits["ids"].int64_data_size(), 3);

  expectReadable("big", rttest::floatBytes(big));
}

TEST_F(OnnxExportTest, ReplacesAnExternalInitializer) {
  std::vector<float> trained(300, 1.5f);
  rt::HostTensor newBig =
      hostTensor("big", DType::F32, {300}, rttest::floatBytes(trained));
  Status s = exportWith({{"w", &newW}, {"big", &newBig}});
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(replaced, 2);
  std::map<std::string, onnx::TensorProto> inits = exported();
  EXPECT_NE(inits["big"].data_location(), onnx::TensorProto::EXTERNAL);
  EXPECT_EQ(inits["big"].external_data_size(), 0);
  EXPECT_EQ(inits["big"].raw_data(), newBig.data);
  expectReadable("big", newBig.data);
}

TEST_F(OnnxExportTest, NoWeightsIsACopy) {
  Status s = exportWith({});
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(replaced, 0);
  expectReadable("w", rttest::floatBytes({1, 2, 3, 4}));
}

TEST_F(OnnxExportTest, WeightNamingNoInitializer) {
  rt::HostTensor v = hostTensor("v", DType::F32, {1}, rttest::floatBytes({1}));
  for (int64_t externalAbove : {int64_t(1) << 30, int64_t(0)}) {
    Status s = exportWith({{"w", &newW}, {"v", &v}}, externalAbove);
    ASSERT_FALSE(s.isOk());
    EXPECT_HAS(s.message(), "cannot export weight 'v'");
    EXPECT_HAS(s.message(), "has no initializer of that name");
    expectNoOutput();
  }
}

TEST_F(OnnxExportTest, ShapeMismatch) {
  rt::HostTensor flat = hostTensor("w", DType::F32, {4}, newW.data);
  for (int64_t externalAbove : {int64_t(1) << 30, int64_t(0)}) {
    Status s = exportWith({{"w", &flat}}, externalAbove);
    ASSERT_FALSE(s.isOk());
    EXPECT_HAS(s.message(), "cannot export weight 'w': it is float32[4] but "
                            "the model's initializer has shape [2,2]");
    expectNoOutput();
  }
}

TEST_F(OnnxExportTest, TypeMismatch) {
  rt::HostTensor half =
      hostTensor("w", DType::BF16, {2, 2}, std::string(8, '\0'));
  Status s = exportWith({{"w", &half}});
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "cannot export weight 'w': it is bfloat16[2,2]");
  expectNoOutput();
}

TEST_F(OnnxExportTest, AFailedExportKeepsTheOldFile) {
  {
    std::ofstream old(out_, std::ios::binary);
    old << "old model";
  }
  rt::HostTensor flat = hostTensor("w", DType::F32, {4}, newW.data);
  ASSERT_FALSE(exportWith({{"w", &flat}}).isOk());
  EXPECT_EQ(readBytes(out_), "old model");
  EXPECT_FALSE(exists(out_ + ".tmp"));
}

TEST_F(OnnxExportTest, UnreadableSources) {
  source = dir + "/absent.onnx";
  Status s = exportWith({{"w", &newW}});
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "the source model is unreadable");
  expectNoOutput();

  source = dir + "/junk.onnx";
  {
    std::ofstream junk(source, std::ios::binary);
    junk << "\xff\xff\xff\xff not a model";
  }
  s = exportWith({{"w", &newW}});
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "is not a readable ONNX model");
  expectNoOutput();

  // The source's external data is gone.
  source = dir + "/model.onnx";
  std::filesystem::remove(dir + "/model.onnx.data");
  s = exportWith({{"w", &newW}});
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "cannot export: initializer 'big'");
  expectNoOutput();
}

} // namespace
