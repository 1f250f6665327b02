//===- Types.h - Tensors, statuses and attributes of the runtime -*- C++
//-*-===//
//
// The vocabulary shared by the runtime's loader, executor and backends: a
// status type (the runtime uses no exceptions across its API), element
// types, non-owning tensor references, and kernel attributes. No LLVM/MLIR.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_CORE_TYPES_H
#define COLOSSAL_RUNTIME_CORE_TYPES_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace colossal::rt {

/// Success, or an error with a message that says what, where and what to do.
class Status {
public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(std::string message) {
    Status s;
    s.ok_ = false;
    s.message_ = std::move(message);
    return s;
  }
  bool isOk() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const std::string &message() const { return message_; }

private:
  bool ok_ = true;
  std::string message_;
};

/// Element types; values match colossal.plan.DType.
enum class DType : uint8_t {
  F32 = 1,
  F16 = 2,
  BF16 = 3,
  I64 = 4,
  I32 = 5,
  Bool = 6,
  F64 = 7
};

inline size_t dtypeSize(DType t) {
  switch (t) {
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::F16:
  case DType::BF16:
    return 2;
  case DType::I64:
  case DType::F64:
    return 8;
  case DType::Bool:
    return 1;
  }
  return 0;
}

inline const char *dtypeName(DType t) {
  switch (t) {
  case DType::F32:
    return "float32";
  case DType::F16:
    return "float16";
  case DType::BF16:
    return "bfloat16";
  case DType::I64:
    return "int64";
  case DType::I32:
    return "int32";
  case DType::Bool:
    return "bool";
  case DType::F64:
    return "float64";
  }
  return "unknown";
}

inline int64_t numElements(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

/// A contiguous, row-major tensor in memory someone else owns.
struct TensorRef {
  void *data = nullptr;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;

  int64_t numel() const { return numElements(shape); }
  size_t bytes() const {
    return static_cast<size_t>(numel()) * dtypeSize(dtype);
  }
  template <typename T> T *as() const { return static_cast<T *>(data); }
};

/// A kernel attribute: integer, float, string or integer list.
using Attribute =
    std::variant<int64_t, double, std::string, std::vector<int64_t>>;

/// A kernel's attributes by name, with typed accessors and defaults.
class AttributeMap {
public:
  void set(std::string name, Attribute value) {
    values_[std::move(name)] = std::move(value);
  }
  bool has(const std::string &name) const { return values_.count(name) != 0; }
  int64_t getInt(const std::string &name, int64_t fallback = 0) const {
    auto it = values_.find(name);
    if (it == values_.end())
      return fallback;
    if (auto *v = std::get_if<int64_t>(&it->second))
      return *v;
    if (auto *f = std::get_if<double>(&it->second))
      return static_cast<int64_t>(*f);
    return fallback;
  }
  double getFloat(const std::string &name, double fallback = 0) const {
    auto it = values_.find(name);
    if (it == values_.end())
      return fallback;
    if (auto *f = std::get_if<double>(&it->second))
      return *f;
    if (auto *v = std::get_if<int64_t>(&it->second))
      return static_cast<double>(*v);
    return fallback;
  }
  std::string getString(const std::string &name,
                        const std::string &fallback = "") const {
    auto it = values_.find(name);
    if (it == values_.end())
      return fallback;
    if (auto *s = std::get_if<std::string>(&it->second))
      return *s;
    return fallback;
  }
  std::vector<int64_t> getInts(const std::string &name) const {
    auto it = values_.find(name);
    if (it == values_.end())
      return {};
    if (auto *v = std::get_if<std::vector<int64_t>>(&it->second))
      return *v;
    return {};
  }
  const std::map<std::string, Attribute> &all() const { return values_; }

private:
  std::map<std::string, Attribute> values_;
};

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_CORE_TYPES_H
