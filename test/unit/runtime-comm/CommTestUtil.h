//===- CommTestUtil.h - Helpers of the communicator tests -------*- C++ -*-===//
//
// Owned tensors readable and writable as doubles whatever their dtype, index
// arithmetic for reference results, and running one function per rank on
// threads of an in-process world.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_TEST_UNIT_RUNTIME_COMM_COMMTESTUTIL_H
#define COLOSSAL_TEST_UNIT_RUNTIME_COMM_COMMTESTUTIL_H

#include "runtime/comm/Launch.h"
#include "runtime/core/Float16.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace colossal::rt::test {

#define EXPECT_HAS(haystack, needle)                                           \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

/// A tensor that owns its bytes.
struct Buffer {
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<char> bytes;

  Buffer(DType dtype, std::vector<int64_t> shape)
      : dtype(dtype), shape(std::move(shape)),
        bytes(static_cast<size_t>(numElements(this->shape)) *
              dtypeSize(dtype)) {}

  TensorRef ref() { return TensorRef{bytes.data(), dtype, shape}; }
  int64_t numel() const { return numElements(shape); }

  double get(int64_t i) const {
    const char *p = bytes.data() + i * dtypeSize(dtype);
    switch (dtype) {
    case DType::F32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::F16:
    case DType::BF16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return dtype == DType::F16 ? halfToFloat(v) : bf16ToFloat(v);
    }
    case DType::I64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      return static_cast<double>(v);
    }
    case DType::I32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::Bool:
      return static_cast<unsigned char>(*p);
    case DType::F64: {
      double v;
      std::memcpy(&v, p, 8);
      return v;
    }
    }
    return 0;
  }

  void put(int64_t i, double value) {
    char *p = bytes.data() + i * dtypeSize(dtype);
    switch (dtype) {
    case DType::F32: {
      float v = static_cast<float>(value);
      std::memcpy(p, &v, 4);
      return;
    }
    case DType::F16:
    case DType::BF16: {
      float f = static_cast<float>(value);
      uint16_t v = dtype == DType::F16 ? floatToHalf(f) : floatToBf16(f);
      std::memcpy(p, &v, 2);
      return;
    }
    case DType::F64:
      std::memcpy(p, &value, 8);
      return;
    case DType::I64: {
      int64_t v = static_cast<int64_t>(value);
      std::memcpy(p, &v, 8);
      return;
    }
    case DType::I32: {
      int32_t v = static_cast<int32_t>(value);
      std::memcpy(p, &v, 4);
      return;
    }
    case DType::Bool:
      *p = value != 0 ? 1 : 0;
      return;
    }
  }

  /// Fills element i with fn(i).
  void fill(const std::function<double(int64_t)> &fn) {
    for (int64_t i = 0; i < numel(); ++i)
      put(i, fn(i));
  }
};

inline std::vector<int64_t> unravel(int64_t flat,
                                    const std::vector<int64_t> &shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx;
}

inline int64_t ravel(const std::vector<int64_t> &idx,
                     const std::vector<int64_t> &shape) {
  int64_t flat = 0;
  for (size_t d = 0; d < shape.size(); ++d)
    flat = flat * shape[d] + idx[d];
  return flat;
}

/// An in-process world of `n` ranks (empty, with a test failure, if it
/// cannot be made).
inline std::vector<std::unique_ptr<Communicator>>
makeWorld(int n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  std::vector<std::unique_ptr<Communicator>> comms;
  Status s = createInProcessCommunicators(n, timeout, comms);
  EXPECT_TRUE(s.isOk()) << s.message();
  return comms;
}

/// Runs fn(rank, communicator) for every rank, each on its own thread.
inline void runRanks(std::vector<std::unique_ptr<Communicator>> &comms,
                     const std::function<void(int, Communicator &)> &fn) {
  std::vector<std::thread> threads;
  for (size_t r = 0; r < comms.size(); ++r)
    threads.emplace_back([&, r] { fn(static_cast<int>(r), *comms[r]); });
  for (std::thread &t : threads)
    t.join();
}

/// A loopback port nobody listens on.
inline int unusedPort() {
  int port = 0;
  EXPECT_TRUE(rt::pickFreePort(port).isOk());
  return port;
}

} // namespace colossal::rt::test

#endif // COLOSSAL_TEST_UNIT_RUNTIME_COMM_COMMTESTUTIL_H
