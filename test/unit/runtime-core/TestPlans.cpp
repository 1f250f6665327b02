//===- TestPlans.cpp - Hand-built plans and a test backend ----------------===//

#include "test/unit/runtime-core/TestPlans.h"

#include "runtime/core/Backend.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>
#include <unistd.h>

namespace colossal::rttest {

plan::TensorType tensorType(rt::DType dtype, std::vector<int64_t> shape) {
  plan::TensorType t;
  t.set_dtype(static_cast<plan::DType>(dtype));
  for (int64_t d : shape)
    t.add_shape(d);
  return t;
}

plan::Buffer *addBuffer(plan::RankProgram &rank, int64_t id, int64_t offset,
                        rt::DType dtype, std::vector<int64_t> shape) {
  plan::Buffer *b = rank.add_buffers();
  b->set_id(id);
  b->set_offset(offset);
  b->set_size(rt::numElements(shape) *
              static_cast<int64_t>(rt::dtypeSize(dtype)));
  *b->mutable_type() = tensorType(dtype, shape);
  return b;
}

plan::Kernel *addKernel(plan::RankProgram &rank, const std::string &op,
                        std::vector<int64_t> inputs,
                        std::vector<int64_t> outputs,
                        const std::string &location) {
  plan::Kernel *k = rank.add_program()->mutable_kernel();
  k->set_op(op);
  for (int64_t id : inputs)
    k->add_inputs(id);
  for (int64_t id : outputs)
    k->add_outputs(id);
  k->set_location(location);
  return k;
}

std::string floatBytes(const std::vector<float> &values) {
  return std::string(reinterpret_cast<const char *>(values.data()),
                     values.size() * sizeof(float));
}

std::vector<float> reluBias() {
  return {0.5f, -1.0f, 2.0f, -0.25f, 0.0f, 1.0f};
}

plan::Plan addReluPlan() {
  using rt::DType;
  plan::Plan p;
  p.set_producer("test");
  p.set_mode("infer");
  plan::Binding *x = p.add_inputs();
  x->set_name("x");
  *x->mutable_type() = tensorType(DType::F32, {2, 3});
  plan::Binding *y = p.add_outputs();
  y->set_name("y");
  *y->mutable_type() = tensorType(DType::F32, {2, 3});
  plan::Parameter *b = p.add_parameters();
  b->set_name("b");
  *b->mutable_type() = tensorType(DType::F32, {2, 3});
  b->set_embedded(floatBytes(reluBias()));

  plan::RankProgram &r = *p.add_ranks();
  r.set_rank(0);
  r.set_arena_bytes(192);
  addBuffer(r, 0, 0, DType::F32, {2, 3});   // x
  addBuffer(r, 1, 64, DType::F32, {2, 3});  // b
  addBuffer(r, 2, 128, DType::F32, {2, 3}); // y
  addBuffer(r, 3, 0, DType::F32, {2, 3});   // x + b, over x
  plan::ParamSlice *slice = r.add_parameters();
  slice->set_parameter(0);
  slice->set_buffer(1);
  plan::IOBinding *in = r.add_inputs();
  in->set_index(0);
  in->set_buffer(0);
  plan::IOBinding *out = r.add_outputs();
  out->set_index(0);
  out->set_buffer(2);
  addKernel(r, "add", {0, 1}, {3}, "node_add");
  addKernel(r, "relu", {3}, {2}, "node_relu");
  r.add_program()->mutable_free()->set_buffer(3);
  return p;
}

plan::Plan identityPlan(const std::string &outputName) {
  using rt::DType;
  plan::Plan p;
  p.set_producer("test");
  p.set_mode("infer");
  plan::Binding *x = p.add_inputs();
  x->set_name("x");
  *x->mutable_type() = tensorType(DType::F32, {2, 3});
  plan::Binding *y = p.add_outputs();
  y->set_name(outputName);
  *y->mutable_type() = tensorType(DType::F32, {2, 3});
  plan::RankProgram &r = *p.add_ranks();
  r.set_arena_bytes(64);
  addBuffer(r, 7, 0, DType::F32, {2, 3});
  plan::IOBinding *in = r.add_inputs();
  in->set_index(0);
  in->set_buffer(7);
  plan::IOBinding *out = r.add_outputs();
  out->set_index(0);
  out->set_buffer(7);
  return p;
}

namespace {
// Removes the test's temporary directories when the process exits.
struct TempDirs {
  std::vector<std::string> dirs;
  ~TempDirs() {
    std::error_code ec;
    for (const std::string &d : dirs)
      std::filesystem::remove_all(d, ec);
  }
};
TempDirs tempDirs;
} // namespace

onnx::TensorProto onnxTensor(const std::string &name, int type,
                             std::vector<int64_t> dims) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(type);
  for (int64_t d : dims)
    t.add_dims(d);
  return t;
}

std::string makeTempDir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "colossal-rt-XXXXXX").string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  char *dir = ::mkdtemp(buf.data());
  if (!dir)
    return std::string();
  tempDirs.dirs.push_back(dir);
  return dir;
}

namespace {

class TestBackend final : public rt::Backend {
public:
  const char *name() const override { return "test"; }
  bool hostAccessible() const override { return true; }
  rt::Status copyToDevice(void *dst, const void *src, size_t n) override {
    std::memcpy(dst, src, n);
    return rt::Status::ok();
  }
  rt::Status copyToHost(void *dst, const void *src, size_t n) override {
    std::memcpy(dst, src, n);
    return rt::Status::ok();
  }
  rt::Status copyOnDevice(void *dst, const void *src, size_t n) override {
    std::memmove(dst, src, n);
    return rt::Status::ok();
  }
  bool supports(const std::string &op) const override {
    return op == "add" || op == "relu" || op == "fail";
  }
  std::vector<std::string> supportedOps() const override {
    return {"add", "fail", "relu"};
  }
  rt::Status launch(const std::string &op, const std::vector<rt::TensorRef> &in,
                    const std::vector<rt::TensorRef> &out,
                    const rt::AttributeMap &) override {
    if (op == "fail")
      return rt::Status::error("the test kernel fails");
    const float *a = in.at(0).as<float>();
    float *y = out.at(0).as<float>();
    int64_t n = out[0].numel();
    for (int64_t i = 0; i < n; ++i) {
      float v = op == "add" ? a[i] + in.at(1).as<float>()[i] : a[i];
      y[i] = op == "relu" && v < 0 ? 0 : v;
    }
    return rt::Status::ok();
  }
  rt::Status synchronize() override { return rt::Status::ok(); }

protected:
  rt::Status allocateImpl(size_t bytes, size_t alignment, void **out) override {
    *out = std::aligned_alloc(alignment,
                              (bytes + alignment - 1) / alignment * alignment);
    return *out ? rt::Status::ok() : rt::Status::error("out of memory");
  }
  void releaseImpl(void *p) override { std::free(p); }
};

} // namespace

void registerTestBackend() {
  rt::registerBackend("test", [](const rt::BackendOptions &,
                                 std::unique_ptr<rt::Backend> &out) {
    out = std::make_unique<TestBackend>();
    return rt::Status::ok();
  });
}

} // namespace colossal::rttest
