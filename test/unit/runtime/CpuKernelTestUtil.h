//===- CpuKernelTestUtil.h - Tensors and checks for CPU kernel tests -*- C++
//-*-===//
//
// Owning tensors to hand to the CPU kernels by reference, a way to run a
// kernel by op name, random data and closeness checks against references
// computed in double.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_TEST_UNIT_RUNTIME_CPUKERNELTESTUTIL_H
#define COLOSSAL_TEST_UNIT_RUNTIME_CPUKERNELTESTUTIL_H

#include "runtime/backends/cpu/CpuKernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace colossal::rt::cpu::test {

/// A tensor that owns its bytes.
struct Tensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;

  Tensor() = default;
  Tensor(DType t, std::vector<int64_t> s) : dtype(t), shape(std::move(s)) {
    bytes.assign(static_cast<size_t>(numElements(shape)) * dtypeSize(t), 0);
  }
  int64_t numel() const { return numElements(shape); }
  TensorRef ref() const {
    return TensorRef{const_cast<uint8_t *>(bytes.data()), dtype, shape};
  }
  template <class T> T *as() { return reinterpret_cast<T *>(bytes.data()); }
  template <class T> const T *as() const {
    return reinterpret_cast<const T *>(bytes.data());
  }
  template <class T> std::vector<T> values() const {
    return std::vector<T>(as<T>(), as<T>() + numel());
  }
};

template <class T>
inline Tensor make(DType t, std::vector<int64_t> shape,
                   const std::vector<T> &values) {
  Tensor r(t, std::move(shape));
  EXPECT_EQ(static_cast<int64_t>(values.size()), r.numel());
  std::memcpy(r.bytes.data(), values.data(),
              std::min(r.bytes.size(), values.size() * sizeof(T)));
  return r;
}
inline Tensor f32(std::vector<int64_t> shape, const std::vector<float> &v) {
  return make(DType::F32, std::move(shape), v);
}
inline Tensor i64(std::vector<int64_t> shape, const std::vector<int64_t> &v) {
  return make(DType::I64, std::move(shape), v);
}
inline Tensor i32(std::vector<int64_t> shape, const std::vector<int32_t> &v) {
  return make(DType::I32, std::move(shape), v);
}
inline Tensor boolean(std::vector<int64_t> shape,
                      const std::vector<uint8_t> &v) {
  return make(DType::Bool, std::move(shape), v);
}

/// Uniform random floats in [lo, hi), reproducible per seed.
inline Tensor randomF32(std::vector<int64_t> shape, unsigned seed,
                        float lo = -1.0f, float hi = 1.0f) {
  Tensor t(DType::F32, std::move(shape));
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.as<float>()[i] = dist(gen);
  return t;
}

/// Runs the kernel for `op`; fails the test if there is none.
inline Status run(const std::string &op, const std::vector<const Tensor *> &in,
                  const std::vector<Tensor *> &out,
                  const AttributeMap &attrs = {}) {
  KernelFn fn = findKernel(op);
  EXPECT_NE(fn, nullptr) << "no kernel for " << op;
  if (!fn)
    return Status::error("no kernel");
  std::vector<TensorRef> ins, outs;
  for (const Tensor *t : in)
    ins.push_back(t->ref());
  for (Tensor *t : out)
    outs.push_back(t->ref());
  return fn(ins, outs, attrs);
}

#define ASSERT_OK(expr)                                                        \
  do {                                                                         \
    ::colossal::rt::Status _s = (expr);                                        \
    ASSERT_TRUE(_s.isOk()) << _s.message();                                    \
  } while (0)

/// Elementwise |a - e| <= atol + rtol * |e| (onnxruntime's fp32 tolerance).
inline void expectClose(const std::vector<float> &actual,
                        const std::vector<double> &expected, double rtol = 1e-4,
                        double atol = 1e-5) {
  ASSERT_EQ(actual.size(), expected.size());
  int failures = 0;
  for (size_t i = 0; i < actual.size() && failures < 10; ++i) {
    const double a = actual[i], e = expected[i];
    if (std::isnan(e) ? !std::isnan(a)
                      : !(std::abs(a - e) <= atol + rtol * std::abs(e))) {
      ADD_FAILURE() << "element " << i << ": got " << a << ", expected " << e;
      ++failures;
    }
  }
}

inline std::vector<double> toDouble(const Tensor &t) {
  std::vector<double> r(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < r.size(); ++i)
    r[i] = t.as<float>()[i];
  return r;
}

inline AttributeMap
attrs(std::initializer_list<std::pair<std::string, Attribute>> values) {
  AttributeMap m;
  for (const auto &[k, v] : values)
    m.set(k, v);
  return m;
}

/// Row-major strides of `shape`.
inline std::vector<int64_t> stridesOf(const std::vector<int64_t> &shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;)
    s[d - 1] = s[d] * shape[d];
  return s;
}

} // namespace colossal::rt::cpu::test

#endif // COLOSSAL_TEST_UNIT_RUNTIME_CPUKERNELTESTUTIL_H
