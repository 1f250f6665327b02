//===- RuntimeNpyTest.cpp - .npy reading and writing ----------------------===//

#include "runtime/core/Npy.h"
#include "test/unit/runtime-core/TestPlans.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace colossal;

namespace {

#define EXPECT_HAS(haystack, needle)                                           \
  EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

// A .npy file with a hand-written header (as NumPy or other writers do).
std::string npyWithHeader(const std::string &dict, const std::string &data,
                          int major = 1) {
  std::string header = dict;
  size_t prefix = major == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 64)
    header.push_back(' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  for (size_t i = 0; i < (major == 1 ? 2u : 4u); ++i)
    out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  return out + header + data;
}

TEST(RuntimeNpy, RoundTripEveryDType) {
  std::string dir = rttest::makeTempDir();
  struct Case {
    rt::DType dtype;
    std::vector<int64_t> shape;
  } cases[] = {{rt::DType::F32, {2, 3}},    {rt::DType::F16, {4}},
               {rt::DType::I64, {1, 2, 2}}, {rt::DType::I32, {}},
               {rt::DType::Bool, {5}},      {rt::DType::F32, {0, 3}}};
  for (const Case &c : cases) {
    size_t bytes = rt::numElements(c.shape) * rt::dtypeSize(c.dtype);
    std::string data(bytes, '\0');
    for (size_t i = 0; i < bytes; ++i)
      data[i] = c.dtype == rt::DType::Bool ? static_cast<char>(i % 2)
                                           : static_cast<char>(i * 7 + 1);
    std::string path = dir + "/t.npy";
    ASSERT_TRUE(
        rt::writeNpy(path, c.dtype, c.shape, data.data(), bytes).isOk());
    rt::HostTensor t;
    rt::Status s = rt::readNpy(path, t);
    ASSERT_TRUE(s.isOk()) << s.message();
    EXPECT_EQ(t.dtype, c.dtype);
    EXPECT_EQ(t.shape, c.shape);
    EXPECT_EQ(t.data, data);
  }
}

TEST(RuntimeNpy, HeaderIsAligned) {
  std::string out;
  float v[3] = {1, 2, 3};
  ASSERT_TRUE(rt::encodeNpy(rt::DType::F32, {3}, v, 12, out).isOk());
  EXPECT_EQ(out.size(), 128u + 12u);
  EXPECT_HAS(out, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }");
  EXPECT_EQ(out[127], '\n');
}

TEST(RuntimeNpy, ReadsOtherWritersHeaders) {
  std::string data(24, '\0');
  rt::HostTensor t;
  ASSERT_TRUE(rt::parseNpy(npyWithHeader("{\"descr\":\"<i8\",\"shape\":(3,),"
                                         "\"fortran_order\":False}",
                                         data),
                           "a.npy", t)
                  .isOk());
  EXPECT_EQ(t.dtype, rt::DType::I64);
  EXPECT_EQ(t.shape, (std::vector<int64_t>{3}));
  ASSERT_TRUE(rt::parseNpy(npyWithHeader("{'descr': '<f4', 'fortran_order': "
                                         "False, 'shape': (2, 3), }",
                                         data, 2),
                           "b.npy", t)
                  .isOk());
  EXPECT_EQ(t.shape, (std::vector<int64_t>{2, 3}));
  // Fortran order is harmless for 1-d arrays.
  ASSERT_TRUE(rt::parseNpy(npyWithHeader("{'descr': '<f4', 'fortran_order': "
                                         "True, 'shape': (6,), }",
                                         data),
                           "c.npy", t)
                  .isOk());
}

TEST(RuntimeNpy, Errors) {
  rt::HostTensor t;
  auto message = [&](const std::string &bytes) {
    rt::Status s = rt::parseNpy(bytes, "x.npy", t);
    return s ? std::string() : s.message();
  };
  // float64 is read (the CPU runs it); complex is not.
  std::string f8(48, '\0');
  EXPECT_EQ(message(npyWithHeader("{'descr': '<f8', 'fortran_order': False, "
                                  "'shape': (2, 3), }",
                                  f8)),
            "");
  EXPECT_EQ(t.dtype, rt::DType::F64);
  EXPECT_HAS(message(npyWithHeader("{'descr': '<c8', 'fortran_order': False, "
                                   "'shape': (2,), }",
                                   std::string(16, '\0'))),
             "'x.npy'");
  EXPECT_HAS(message(npyWithHeader("{'descr': '|u1', 'fortran_order': False, "
                                   "'shape': (2,), }",
                                   "ab")),
             "integer type '|u1'");
  EXPECT_HAS(message(npyWithHeader("{'descr': '>f4', 'fortran_order': False, "
                                   "'shape': (1,), }",
                                   "abcd")),
             "big-endian");
  EXPECT_HAS(message(npyWithHeader("{'descr': '<f4', 'fortran_order': True, "
                                   "'shape': (2, 2), }",
                                   std::string(16, '\0'))),
             "Fortran order");
  EXPECT_HAS(message(npyWithHeader("{'descr': '<f4', 'fortran_order': False, "
                                   "'shape': (2, 2), }",
                                   std::string(10, '\0'))),
             "holds 10 bytes of data, but a float32[2,2] array needs 16");
  EXPECT_HAS(message("PK\3\4 a zip file, really"), "is not a .npy file");
  EXPECT_HAS(message(npyWithHeader("{'descr': '<f4', 'shape': (2, ", "")),
             "malformed");
  EXPECT_HAS(message(npyWithHeader("{'descr': [('a', '<f4')], "
                                   "'fortran_order': False, 'shape': (1,), }",
                                   "abcd")),
             "structured");
  std::string truncated = npyWithHeader("{'descr': '<f4', 'fortran_order': "
                                        "False, 'shape': (1,), }",
                                        "abcd");
  EXPECT_HAS(message(truncated.substr(0, 30)), "truncated");
  rt::Status s = rt::readNpy("/nonexistent.npy", t);
  ASSERT_FALSE(s.isOk());
  EXPECT_HAS(s.message(), "cannot open '/nonexistent.npy'");
  std::string out;
  uint16_t bf[1] = {0};
  EXPECT_FALSE(rt::encodeNpy(rt::DType::BF16, {1}, bf, 2, out).isOk());
}

} // namespace
