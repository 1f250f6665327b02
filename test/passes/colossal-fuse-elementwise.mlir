// RUN: colossal-opt %s --split-input-file --colossal-fuse-elementwise | FileCheck %s
// RUN: colossal-opt %s --split-input-file --colossal-fuse-elementwise="min-steps=4" | FileCheck %s --check-prefix=MIN4
// RUN: colossal-opt %s --split-input-file --colossal-fuse-elementwise="max-span=0" | FileCheck %s --check-prefix=SPAN0
// RUN: not colossal-opt %s --split-input-file --colossal-fuse-elementwise="min-steps=1" 2>&1 | FileCheck %s --check-prefix=BAD

// An AdamW-like update: two chains over the state (each with scalar
// hyperparameters) meet in one region, which yields what the assigns read.
// The scalar chain is a region of its own type. With min-steps=4 the
// two-op scalar chain stays as it is.
// CHECK-LABEL: func.func @update
// CHECK: %[[S:.*]] = cg.fused_elementwise %arg3, %arg4 {args = array<i64: 0, 1, 2, -1>, steps = "mul,sqrt", yields = array<i64: 1>} : (tensor<f32>, tensor<f32>) -> tensor<f32>
// CHECK: %[[U:.*]]:2 = cg.fused_elementwise %arg0, %arg3, %arg1, %arg2, %[[S]] {args = array<i64: 0, 1, 2, 1, 5, 6, 3, 3, 8, 4, 9, -1, 7, 10>, steps = "mul,mul,add,mul,div,sqrt,div", yields = array<i64: 2, 6>} : (tensor<4x8xf32>, tensor<f32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<f32>) -> (tensor<4x8xf32>, tensor<4x8xf32>)
// CHECK-NOT: cg.mul
// CHECK: return %[[U]]#0, %[[U]]#1
// MIN4-LABEL: func.func @update
// MIN4: cg.mul %arg3, %arg4 : (tensor<f32>, tensor<f32>) -> tensor<f32>
// MIN4: cg.sqrt
// MIN4: cg.fused_elementwise {{.*}} steps = "mul,mul,add,mul,div,sqrt,div"
func.func @update(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>, %v: tensor<4x8xf32>, %b: tensor<f32>, %c: tensor<f32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %s0 = cg.mul %b, %c : (tensor<f32>, tensor<f32>) -> tensor<f32>
  %s = cg.sqrt %s0 : tensor<f32>
  %a = cg.mul %m, %b : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %gb = cg.mul %g, %b : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %m2 = cg.add %a, %gb : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %vv = cg.mul %v, %v : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %vs = cg.div %vv, %s : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %r = cg.sqrt %vs : tensor<4x8xf32>
  %u = cg.div %m2, %r : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %m2, %u : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// What closes or limits a region: a value read by a non-elementwise op
// (the reduction) is yielded and the region ends there, so the later add
// starts a new one; a broadcast operand (the bias) is not fusible; host
// ops fuse only with host ops. With max-span=0 an op joins only the region
// right before it: the neg after the unrelated exp starts its own.
// CHECK-LABEL: func.func @closed
// CHECK: %[[A:.*]] = cg.fused_elementwise %arg0 {args = array<i64: 0, 0, 1, -1>, steps = "mul,exp", yields = array<i64: 1>}
// CHECK: cg.reduce_sum %[[A]]
// CHECK: cg.add %[[A]], %arg1 : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
// CHECK: cg.fused_elementwise %arg0 {args = array<i64: 0, -1, 1, -1>, cg.host, steps = "neg,abs", yields = array<i64: 1>}
// CHECK: cg.sqrt
// CHECK-NOT: cg.fused_elementwise
// SPAN0-LABEL: func.func @closed
// SPAN0: cg.fused_elementwise %arg0 {{.*}}steps = "mul,exp"
// SPAN0: cg.neg %arg0 {cg.host}
// SPAN0: cg.exp %arg0
// SPAN0: cg.abs
func.func @closed(%x: tensor<4x8xf32>, %bias: tensor<8xf32>) -> (tensor<4xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>) {
  %a = cg.mul %x, %x : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %e = cg.exp %a : tensor<4x8xf32>
  %r = cg.reduce_sum %e {axes = array<i64: 1>} : (tensor<4x8xf32>) -> tensor<4xf32>
  %y = cg.add %e, %bias : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %h = cg.neg %x {cg.host} : tensor<4x8xf32>
  %o = cg.exp %x : tensor<4x8xf32>
  %h2 = cg.abs %h {cg.host} : tensor<4x8xf32>
  %d = cg.sqrt %h2 : tensor<4x8xf32>
  return %r, %y, %o, %d : tensor<4xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>
}

// BAD: min-steps must be >= 2
