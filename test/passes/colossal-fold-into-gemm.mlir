// RUN: colossal-opt %s --split-input-file --colossal-fold-into-gemm | FileCheck %s
// RUN: colossal-opt %s --split-input-file --colossal-fold-into-gemm="transposes=false" | FileCheck %s --check-prefix=NOT
// RUN: colossal-opt %s --split-input-file --colossal-fold-into-gemm="batch-reductions=false" | FileCheck %s --check-prefix=NOSUM

// The backward of x @ W with x [8, 32, 128] and W [128, 64]: dx = g @ W^T
// reads W transposed, and dW = sum_b x[b]^T g[b] becomes one GEMM over the
// 256 rows of x and g, viewed as matrices. Without `transposes` nothing
// changes (the sum folds only into a matmul that reads its lhs transposed);
// without `batch-reductions` both transposes fold and the batched product
// and its sum stay.
// CHECK-LABEL: func.func @weight_gradient
// CHECK-NOT: cg.transpose
// CHECK: %[[DX:.*]] = cg.matmul %arg1, %arg2 {transpose_rhs} : (tensor<8x32x64xf32>, tensor<128x64xf32>) -> tensor<8x32x128xf32>
// CHECK: %[[X2:.*]] = cg.reshape %arg0 : (tensor<8x32x128xf32>) -> tensor<256x128xf32>
// CHECK: %[[G2:.*]] = cg.reshape %arg1 : (tensor<8x32x64xf32>) -> tensor<256x64xf32>
// CHECK: %[[DW:.*]] = cg.matmul %[[X2]], %[[G2]] {transpose_lhs} : (tensor<256x128xf32>, tensor<256x64xf32>) -> tensor<128x64xf32>
// CHECK-NOT: cg.reduce_sum
// CHECK: return %[[DX]], %[[DW]]
// NOT-LABEL: func.func @weight_gradient
// NOT-COUNT-2: cg.transpose
// NOT: cg.reduce_sum
// NOT-NOT: transpose_
// NOSUM-LABEL: func.func @weight_gradient
// NOSUM-NOT: cg.transpose
// NOSUM: cg.matmul %arg1, %arg2 {transpose_rhs}
// NOSUM: %[[P:.*]] = cg.matmul %arg0, %arg1 {transpose_lhs} : (tensor<8x32x128xf32>, tensor<8x32x64xf32>) -> tensor<8x128x64xf32>
// NOSUM: cg.reduce_sum %[[P]]
func.func @weight_gradient(%x: tensor<8x32x128xf32>, %g: tensor<8x32x64xf32>, %w: tensor<128x64xf32>) -> (tensor<8x32x128xf32>, tensor<128x64xf32>) {
  %wt = cg.transpose %w {permutation = array<i64: 1, 0>} : (tensor<128x64xf32>) -> tensor<64x128xf32>
  %dx = cg.matmul %g, %wt : (tensor<8x32x64xf32>, tensor<64x128xf32>) -> tensor<8x32x128xf32>
  %xt = cg.transpose %x {permutation = array<i64: 0, 2, 1>} : (tensor<8x32x128xf32>) -> tensor<8x128x32xf32>
  %p = cg.matmul %xt, %g : (tensor<8x128x32xf32>, tensor<8x32x64xf32>) -> tensor<8x128x64xf32>
  %dw = cg.reduce_sum %p {axes = array<i64: 0>} : (tensor<8x128x64xf32>) -> tensor<128x64xf32>
  return %dx, %dw : tensor<8x32x128xf32>, tensor<128x64xf32>
}

// -----

// What does not fold: a transpose that moves a batch dimension, an integer
// matmul, a sum over only some of the batch dimensions (its transpose
// still folds), and a transpose another op also reads (it stays for that
// reader; the matmul reads its input).
// CHECK-LABEL: func.func @kept
// CHECK: cg.transpose %arg0 {permutation = array<i64: 1, 0, 2>}
// CHECK: cg.matmul %{{.*}}, %arg1 :
// CHECK: cg.transpose %arg2
// CHECK: cg.matmul %{{.*}}, %arg2 :
// CHECK: %[[P:.*]] = cg.matmul %arg3, %arg4 {transpose_lhs} : (tensor<2x3x4x5xf32>, tensor<2x3x4x6xf32>) -> tensor<2x3x5x6xf32>
// CHECK: cg.reduce_sum %[[P]] {axes = array<i64: 0>}
// CHECK: %[[T:.*]] = cg.transpose %arg5
// CHECK: cg.matmul %arg5, %arg6 {transpose_lhs}
// CHECK: cg.neg %[[T]]
func.func @kept(%a: tensor<4x2x3xf32>, %b: tensor<2x3x5xf32>, %i: tensor<3x3xi64>, %x: tensor<2x3x4x5xf32>, %g: tensor<2x3x4x6xf32>, %y: tensor<6x5xf32>, %z: tensor<6x7xf32>) -> (tensor<2x4x5xf32>, tensor<3x3xi64>, tensor<3x5x6xf32>, tensor<5x7xf32>, tensor<5x6xf32>) {
  %at = cg.transpose %a {permutation = array<i64: 1, 0, 2>} : (tensor<4x2x3xf32>) -> tensor<2x4x3xf32>
  %ab = cg.matmul %at, %b : (tensor<2x4x3xf32>, tensor<2x3x5xf32>) -> tensor<2x4x5xf32>
  %it = cg.transpose %i {permutation = array<i64: 1, 0>} : (tensor<3x3xi64>) -> tensor<3x3xi64>
  %ii = cg.matmul %it, %i : (tensor<3x3xi64>, tensor<3x3xi64>) -> tensor<3x3xi64>
  %xt = cg.transpose %x {permutation = array<i64: 0, 1, 3, 2>} : (tensor<2x3x4x5xf32>) -> tensor<2x3x5x4xf32>
  %p = cg.matmul %xt, %g : (tensor<2x3x5x4xf32>, tensor<2x3x4x6xf32>) -> tensor<2x3x5x6xf32>
  %s = cg.reduce_sum %p {axes = array<i64: 0>} : (tensor<2x3x5x6xf32>) -> tensor<3x5x6xf32>
  %yt = cg.transpose %y {permutation = array<i64: 1, 0>} : (tensor<6x5xf32>) -> tensor<5x6xf32>
  %yz = cg.matmul %yt, %z : (tensor<5x6xf32>, tensor<6x7xf32>) -> tensor<5x7xf32>
  %n = cg.neg %yt : tensor<5x6xf32>
  return %ab, %ii, %s, %yz, %n : tensor<2x4x5xf32>, tensor<3x3xi64>, tensor<3x5x6xf32>, tensor<5x7xf32>, tensor<5x6xf32>
}
