//===- make_plan.cpp - Writes the plan the embed_c example runs -----------===//
//
// y = relu(x + b) for x float32[2,3] and an embedded bias b float32[3],
// broadcast over rows. colossal-opt would emit the same from a two-node ONNX
// model; building it here keeps the example independent of the compiler.
//
//===----------------------------------------------------------------------===//

#include "runtime/core/PlanFile.h"

#include <cstdio>

using namespace colossal;

static plan::TensorType f32(std::initializer_list<int64_t> shape) {
  plan::TensorType t;
  t.set_dtype(plan::F32);
  for (int64_t d : shape)
    t.add_shape(d);
  return t;
}

static void buffer(plan::RankProgram &r, int64_t id, int64_t offset,
                   std::initializer_list<int64_t> shape) {
  plan::Buffer *b = r.add_buffers();
  b->set_id(id);
  b->set_offset(offset);
  int64_t n = 4;
  for (int64_t d : shape)
    n *= d;
  b->set_size(n);
  *b->mutable_type() = f32(shape);
}

static void kernel(plan::RankProgram &r, const char *op,
                   std::initializer_list<int64_t> in, int64_t out) {
  plan::Kernel *k = r.add_program()->mutable_kernel();
  k->set_op(op);
  for (int64_t id : in)
    k->add_inputs(id);
  k->add_outputs(out);
  k->set_location(std::string("node_") + op);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT.cplan\n", argv[0]);
    return 1;
  }
  plan::Plan p;
  p.set_producer("colossal-embed-c-make-plan");
  p.set_mode("infer");
  plan::Binding *x = p.add_inputs();
  x->set_name("x");
  *x->mutable_type() = f32({2, 3});
  plan::Binding *y = p.add_outputs();
  y->set_name("y");
  *y->mutable_type() = f32({2, 3});
  plan::Parameter *b = p.add_parameters();
  b->set_name("b");
  *b->mutable_type() = f32({3});
  const float bias[3] = {1.5f, -1.0f, 1.0f};
  b->set_embedded(
      std::string(reinterpret_cast<const char *>(bias), sizeof bias));

  plan::RankProgram &r = *p.add_ranks();
  r.set_rank(0);
  r.set_arena_bytes(128);
  buffer(r, 0, 0, {2, 3});  // x, then x + b over it
  buffer(r, 1, 32, {3});    // b
  buffer(r, 2, 64, {2, 3}); // y
  r.add_parameters()->set_buffer(1);
  r.add_inputs()->set_buffer(0);
  r.add_outputs()->set_buffer(2);
  kernel(r, "add", {0, 1}, 0);
  kernel(r, "relu", {0}, 2);

  rt::Status s = rt::writePlanFile(p, argv[1]);
  if (!s) {
    std::fprintf(stderr, "error: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}
