//===- RuntimeCApiTest.cpp - The C API ------------------------------------===//
//
// Uses the identity plan (no kernels), so it runs on the CPU backend with or
// without its kernels.
//
//===----------------------------------------------------------------------===//

#include "runtime/core/PlanFile.h"
#include "runtime/include/colossal/colossal.h"
#include "test/unit/runtime-core/TestPlans.h"

#include <gtest/gtest.h>

#include <string>

using namespace colossal;

namespace {

#define EXPECT_HAS(haystack, needle)                                           \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

class CApiTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir = rttest::makeTempDir();
    path = dir + "/id.cplan";
    ASSERT_TRUE(rt::writePlanFile(rttest::identityPlan("out/y"), path).isOk());
    ASSERT_EQ(colossal_plan_load(path.c_str(), &plan), COLOSSAL_OK)
        << colossal_last_error();
    ASSERT_EQ(colossal_session_create(plan, 1, &session), COLOSSAL_OK)
        << colossal_last_error();
  }
  void TearDown() override {
    colossal_session_free(session);
    colossal_plan_free(plan);
  }
  std::string dir, path;
  colossal_plan_t *plan = nullptr;
  colossal_session_t *session = nullptr;
};

TEST_F(CApiTest, Metadata) {
  size_t n = 0;
  ASSERT_EQ(colossal_plan_num_inputs(plan, &n), COLOSSAL_OK);
  EXPECT_EQ(n, 1u);
  ASSERT_EQ(colossal_plan_num_outputs(plan, &n), COLOSSAL_OK);
  EXPECT_EQ(n, 1u);
  colossal_tensor_t info;
  ASSERT_EQ(colossal_plan_input(plan, 0, &info), COLOSSAL_OK);
  EXPECT_STREQ(info.name, "x");
  EXPECT_EQ(info.dtype, COLOSSAL_DTYPE_F32);
  ASSERT_EQ(info.rank, 2);
  EXPECT_EQ(info.shape[0], 2);
  EXPECT_EQ(info.shape[1], 3);
  EXPECT_EQ(info.bytes, 24u);
  ASSERT_EQ(colossal_plan_output(plan, 0, &info), COLOSSAL_OK);
  EXPECT_STREQ(info.name, "out/y");
  EXPECT_EQ(colossal_plan_output(plan, 1, &info), COLOSSAL_ERROR_NOT_FOUND);
  EXPECT_HAS(colossal_last_error(), "index 1 is out of range");
  int64_t arena = 0;
  ASSERT_EQ(colossal_plan_arena_bytes(plan, &arena), COLOSSAL_OK);
  EXPECT_EQ(arena, 64);
  EXPECT_STREQ(colossal_last_error(), "");
  EXPECT_EQ(colossal_dtype_size(COLOSSAL_DTYPE_BF16), 2u);
  EXPECT_STREQ(colossal_dtype_name(COLOSSAL_DTYPE_I64), "int64");
  EXPECT_STREQ(colossal_status_string(COLOSSAL_ERROR_LOAD), "load error");
}

TEST_F(CApiTest, RunAndReadOutput) {
  float x[6] = {1, -2, 3, -4, 5, -6};
  int64_t shape[2] = {2, 3};
  ASSERT_EQ(
      colossal_session_set_input(session, "x", COLOSSAL_DTYPE_F32, shape, 2, x),
      COLOSSAL_OK);
  ASSERT_EQ(colossal_session_run(session), COLOSSAL_OK)
      << colossal_last_error();
  colossal_tensor_t y;
  ASSERT_EQ(colossal_session_output(session, "out/y", &y), COLOSSAL_OK);
  EXPECT_EQ(y.dtype, COLOSSAL_DTYPE_F32);
  EXPECT_EQ(y.rank, 2);
  EXPECT_EQ(y.bytes, 24u);
  const float *data = static_cast<const float *>(y.data);
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(data[i], x[i]);
  float copy[6];
  ASSERT_EQ(colossal_session_copy_output(session, "out/y", copy, sizeof copy),
            COLOSSAL_OK);
  EXPECT_EQ(copy[5], -6.0f);
  EXPECT_EQ(colossal_session_copy_output(session, "out/y", copy, 4),
            COLOSSAL_ERROR_INVALID_ARGUMENT);
  int64_t peak = 0;
  ASSERT_EQ(colossal_session_peak_device_bytes(session, &peak), COLOSSAL_OK);
  EXPECT_EQ(peak, 64);
}

TEST_F(CApiTest, Errors) {
  float x[12] = {0};
  int64_t bad[2] = {4, 3};
  EXPECT_EQ(
      colossal_session_set_input(session, "x", COLOSSAL_DTYPE_F32, bad, 2, x),
      COLOSSAL_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(colossal_last_error(),
               "input 'x' has shape [4,3] but the plan expects [2,3]");
  int64_t shape[2] = {2, 3};
  EXPECT_EQ(
      colossal_session_set_input(session, "x", COLOSSAL_DTYPE_I32, shape, 2, x),
      COLOSSAL_ERROR_INVALID_ARGUMENT);
  EXPECT_HAS(colossal_last_error(),
             "has dtype int32 but the plan expects float32");
  EXPECT_EQ(colossal_session_set_input(session, "nope", COLOSSAL_DTYPE_F32,
                                       shape, 2, x),
            COLOSSAL_ERROR_NOT_FOUND);
  EXPECT_HAS(colossal_last_error(), "the plan has no input 'nope'");
  EXPECT_EQ(colossal_session_set_input(session, "x", (colossal_dtype_t)42,
                                       shape, 2, x),
            COLOSSAL_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(colossal_session_run(session), COLOSSAL_ERROR_RUN);
  EXPECT_HAS(colossal_last_error(), "input 'x' was not set");
  colossal_tensor_t y;
  EXPECT_EQ(colossal_session_output(session, "out/y", &y), COLOSSAL_ERROR_RUN);
  EXPECT_EQ(colossal_session_output(session, "zzz", &y),
            COLOSSAL_ERROR_NOT_FOUND);
  EXPECT_EQ(colossal_session_run(nullptr), COLOSSAL_ERROR_INVALID_ARGUMENT);
  EXPECT_HAS(colossal_last_error(), "'session' is null");
  EXPECT_EQ(colossal_session_set_input(session, "x", COLOSSAL_DTYPE_F32,
                                       nullptr, 2, x),
            COLOSSAL_ERROR_INVALID_ARGUMENT);
}

TEST_F(CApiTest, LoadErrors) {
  colossal_plan_t *p = reinterpret_cast<colossal_plan_t *>(1);
  EXPECT_EQ(colossal_plan_load((dir + "/missing.cplan").c_str(), &p),
            COLOSSAL_ERROR_LOAD);
  EXPECT_EQ(p, nullptr);
  EXPECT_HAS(colossal_last_error(), "cannot open plan");
  EXPECT_EQ(colossal_plan_load(nullptr, &p), COLOSSAL_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(colossal_plan_load(path.c_str(), nullptr),
            COLOSSAL_ERROR_INVALID_ARGUMENT);
  colossal_session_t *s = nullptr;
  EXPECT_EQ(colossal_session_create(nullptr, 0, &s),
            COLOSSAL_ERROR_INVALID_ARGUMENT);
  colossal_plan_free(nullptr);
  colossal_session_free(nullptr);
}

// A session on a named backend: the CPU by name and by default; a backend
// that is not there is an error saying what to do.
TEST_F(CApiTest, SessionOnANamedBackend) {
  colossal_session_t *s = nullptr;
  ASSERT_EQ(colossal_session_create_on(plan, "cpu", 0, 1, &s), COLOSSAL_OK)
      << colossal_last_error();
  colossal_session_free(s);
  s = nullptr;
  EXPECT_NE(colossal_session_create_on(plan, "cpu", 2, 1, &s), COLOSSAL_OK);
  EXPECT_HAS(colossal_last_error(), "which has only device 0");
  EXPECT_EQ(s, nullptr);
  EXPECT_NE(colossal_session_create_on(plan, "tpu", 0, 1, &s), COLOSSAL_OK);
  EXPECT_HAS(colossal_last_error(), "unknown backend 'tpu'");
  EXPECT_EQ(colossal_session_create_on(plan, nullptr, 0, 1, nullptr),
            COLOSSAL_ERROR_INVALID_ARGUMENT);
  // The default is the CPU where there is no GPU (this test's machines).
  if (colossal_session_create_on(plan, nullptr, 0, 1, &s) == COLOSSAL_OK)
    colossal_session_free(s);
  else
    EXPECT_HAS(colossal_last_error(), "cuda");
}

// A session keeps its plan alive.
TEST_F(CApiTest, PlanFreedBeforeSession) {
  colossal_plan_free(plan);
  plan = nullptr;
  float x[6] = {0};
  int64_t shape[2] = {2, 3};
  ASSERT_EQ(
      colossal_session_set_input(session, "x", COLOSSAL_DTYPE_F32, shape, 2, x),
      COLOSSAL_OK);
  EXPECT_EQ(colossal_session_run(session), COLOSSAL_OK);
  colossal_tensor_t y;
  ASSERT_EQ(colossal_session_output(session, "out/y", &y), COLOSSAL_OK);
  EXPECT_STREQ(y.name, "out/y");
}

} // namespace

namespace {

/// Sets (or, with null, clears) an environment variable for one test.
struct EnvVar {
  EnvVar(const char *name, const char *value) : name(name) {
    if (const char *old = std::getenv(name))
      saved = old, had = true;
    if (value)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~EnvVar() {
    if (had)
      ::setenv(name, saved.c_str(), 1);
    else
      ::unsetenv(name);
  }
  const char *name;
  std::string saved;
  bool had = false;
};

TEST_F(CApiTest, SessionInWorldWithoutLauncherIsOneRank) {
  EnvVar rank("RANK", nullptr), ompi("OMPI_COMM_WORLD_RANK", nullptr),
      slurm("SLURM_PROCID", nullptr);
  colossal_session_t *s = nullptr;
  ASSERT_EQ(colossal_session_create_in_world(plan, 1, 5, &s), COLOSSAL_OK)
      << colossal_last_error();
  int32_t r = -1, n = -1;
  EXPECT_EQ(colossal_session_world(s, &r, &n), COLOSSAL_OK);
  EXPECT_EQ(r, 0);
  EXPECT_EQ(n, 1);
  colossal_session_free(s);
}

TEST_F(CApiTest, SessionInWorldReportsBadEnvironment) {
  EnvVar rank("RANK", "one"), size("WORLD_SIZE", "2");
  colossal_session_t *s = nullptr;
  EXPECT_EQ(colossal_session_create_in_world(plan, 1, 5, &s),
            COLOSSAL_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(s, nullptr);
  EXPECT_HAS(colossal_last_error(), "RANK");
}

} // namespace
