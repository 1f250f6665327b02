// RUN: colossal-opt %s --split-input-file --colossal-plan-memory | FileCheck %s
// RUN: colossal-opt %s --split-input-file --colossal-plan-memory="in-place=false alignment=16" | FileCheck %s --check-prefix=NOINPLACE

// Parameters and constants take fixed slots first (64-byte aligned); the
// input follows; intermediates reuse what dead values leave; an elementwise
// op writes over an operand that dies at it.
// CHECK-LABEL: module attributes {cg.arena_bytes = 1856 : i64}
// CHECK: func.func @chain(%{{.*}}: tensor<4x16xf32> {cg.offset = 1088 : i64})
// CHECK: cg.param "w" {{.*}}cg.offsets = array<i64: 0>
// CHECK: cg.constant {cg.offsets = array<i64: 1024>}
// w is 1024 bytes, the scalar constant takes an aligned 64; the input's
// 256 bytes follow at 1088, the product at 1344.
// CHECK: %[[A:.*]] = cg.matmul {{.*}}cg.offsets = array<i64: 1344>
// In place: relu overwrites the matmul result, which dies here.
// CHECK: %[[B:.*]] = cg.relu %[[A]] {cg.offsets = array<i64: 1344>}
// The reshape aliases its input.
// CHECK: %[[C:.*]] = cg.reshape %[[B]] {cg.offsets = array<i64: 1344>}
// %b lives on (its alias is an output), so the add needs new memory.
// CHECK: %[[D:.*]] = cg.add %[[B]], %[[B]] {cg.offsets = array<i64: 1600>}
// %d dies at the mul, which writes over it.
// CHECK: cg.mul %[[D]], %{{.*}} {cg.offsets = array<i64: 1600>}
// Without in-place writes and with 16-byte alignment (constant 16 bytes,
// input at 1040, product at 1296), relu needs its own 256 bytes.
// NOINPLACE-LABEL: module attributes {cg.arena_bytes = 2064 : i64}
// NOINPLACE: cg.relu %{{.*}} {cg.offsets = array<i64: 1552>}
func.func @chain(%x: tensor<4x16xf32>) -> (tensor<4x16xf32>, tensor<64xf32>) {
  %w = cg.param "w" from(dense<1.0> : tensor<16x16xf32>) : tensor<16x16xf32>
  %c = cg.constant dense<2.0> : tensor<f32>
  %a = cg.matmul %x, %w : (tensor<4x16xf32>, tensor<16x16xf32>) -> tensor<4x16xf32>
  %b = cg.relu %a : tensor<4x16xf32>
  %r = cg.reshape %b : (tensor<4x16xf32>) -> tensor<64xf32>
  %d = cg.add %b, %b : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %e = cg.mul %d, %c : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
  return %e, %r : tensor<4x16xf32>, tensor<64xf32>
}

// -----

// A value whose last use has passed frees its memory for later values:
// %t1 and %t3 share bytes, bools take a byte per element (32, padded to 64).
// CHECK-LABEL: module attributes {cg.arena_bytes = 320 : i64}
// CHECK: func.func @reuse(%{{.*}}: tensor<32xf32> {cg.offset = 0 : i64})
// CHECK: cg.exp {{.*}}cg.offsets = array<i64: 128>
// CHECK: cg.cmp gt, {{.*}}cg.offsets = array<i64: 256>
// CHECK: cg.where {{.*}}cg.offsets = array<i64: 128>
func.func @reuse(%x: tensor<32xf32>) -> tensor<32xf32> {
  %t1 = cg.exp %x : tensor<32xf32>
  %m = cg.cmp gt, %t1, %x : (tensor<32xf32>, tensor<32xf32>) -> tensor<32xi1>
  %t3 = cg.where %m, %t1, %x : (tensor<32xi1>, tensor<32xf32>, tensor<32xf32>) -> tensor<32xf32>
  return %t3 : tensor<32xf32>
}
