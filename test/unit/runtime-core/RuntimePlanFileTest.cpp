//===- RuntimePlanFileTest.cpp - .cplan header and body checks ------------===//

#include "runtime/core/PlanFile.h"
#include "test/unit/runtime-core/TestPlans.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

using namespace colossal;

namespace {

std::string readAll(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeAll(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), bytes.size());
}

class PlanFileTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir = rttest::makeTempDir();
    path = dir + "/m.cplan";
    ASSERT_TRUE(rt::writePlanFile(rttest::addReluPlan(), path).isOk());
    bytes = readAll(path);
  }
  std::string dir, path, bytes;
};

TEST_F(PlanFileTest, RoundTrip) {
  plan::Plan back;
  rt::Status s = rt::readPlanFile(path, back);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(back.version(), rt::kPlanFormatVersion);
  plan::Plan expected = rttest::addReluPlan();
  expected.set_version(rt::kPlanFormatVersion);
  EXPECT_EQ(back.SerializeAsString(), expected.SerializeAsString());
  EXPECT_EQ(bytes.substr(0, 5), "CPLAN");
}

TEST_F(PlanFileTest, BadMagic) {
  bytes[0] = 'X';
  writeAll(path, bytes);
  plan::Plan p;
  rt::Status s = rt::readPlanFile(path, p);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("not a Colossal plan (bad magic)"),
            std::string::npos)
      << s.message();
}

TEST_F(PlanFileTest, Truncated) {
  writeAll(path, bytes.substr(0, bytes.size() - 5));
  plan::Plan p;
  rt::Status s = rt::readPlanFile(path, p);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("truncated"), std::string::npos) << s.message();
}

TEST_F(PlanFileTest, ShorterThanHeader) {
  writeAll(path, bytes.substr(0, 10));
  plan::Plan p;
  rt::Status s = rt::readPlanFile(path, p);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("bad magic"), std::string::npos) << s.message();
}

TEST_F(PlanFileTest, ChecksumMismatch) {
  bytes[bytes.size() - 3] ^= 0x40;
  writeAll(path, bytes);
  plan::Plan p;
  rt::Status s = rt::readPlanFile(path, p);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("checksum mismatch"), std::string::npos)
      << s.message();
}

TEST_F(PlanFileTest, WrongVersion) {
  bytes[8] = 7;
  writeAll(path, bytes);
  plan::Plan p;
  rt::Status s = rt::readPlanFile(path, p);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("has plan format version 7, this runtime reads 1"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("recompile"), std::string::npos);
}

TEST_F(PlanFileTest, MissingFile) {
  plan::Plan p;
  rt::Status s = rt::readPlanFile(dir + "/nope.cplan", p);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("cannot open plan"), std::string::npos);
}

} // namespace
