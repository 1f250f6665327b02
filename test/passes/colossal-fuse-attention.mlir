// RUN: colossal-opt %s --split-input-file --colossal-fuse-attention --canonicalize | FileCheck %s

// Unmasked attention with a multiplicative scale; the key's transpose is
// folded into the op.
// CHECK-LABEL: func.func @plain
// CHECK-SAME: (%[[Q:.*]]: tensor<2x4x8x16xf32>, %[[K:.*]]: tensor<2x4x8x16xf32>, %[[V:.*]]: tensor<2x4x8x16xf32>)
// CHECK-NEXT: %[[A:.*]] = cg.attention %[[Q]], %[[K]], %[[V]] {scale = 2.500000e-01 : f64}
// CHECK-NEXT: return %[[A]]
func.func @plain(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %kt = cg.transpose %k {permutation = array<i64: 0, 1, 3, 2>} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
  %s = cg.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %c = cg.constant dense<0.25> : tensor<f32>
  %s1 = cg.mul %s, %c : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %p = cg.softmax %s1 {axis = 3} : tensor<2x4x8x8xf32>
  %o = cg.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  return %o : tensor<2x4x8x16xf32>
}

// -----

// Division by sqrt(d) is a scale of 1/sqrt(d). Keys laid out [B,S,H,D] and
// transposed to [B,H,D,S] keep one transpose to [B,H,S,D].
// CHECK-LABEL: func.func @div_scale_bshd_key
// CHECK: %[[KT:.*]] = cg.transpose %{{.*}} {permutation = array<i64: 0, 2, 1, 3>} : (tensor<2x8x4x16xf32>) -> tensor<2x4x8x16xf32>
// CHECK: cg.attention %{{.*}}, %[[KT]], %{{.*}} {scale = 2.500000e-01 : f64}
// CHECK-NOT: cg.softmax
func.func @div_scale_bshd_key(%q: tensor<2x4x8x16xf32>, %k: tensor<2x8x4x16xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %kt = cg.transpose %k {permutation = array<i64: 0, 2, 3, 1>} : (tensor<2x8x4x16xf32>) -> tensor<2x4x16x8xf32>
  %s = cg.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %c = cg.constant dense<4.0> : tensor<f32>
  %s1 = cg.div %s, %c : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %p = cg.softmax %s1 {axis = 3} : tensor<2x4x8x8xf32>
  %o = cg.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  return %o : tensor<2x4x8x16xf32>
}

// -----

// A constant additive mask with 0 on and below the diagonal and a large
// negative value above is causal: the mask disappears into the flag.
// CHECK-LABEL: func.func @causal_additive_constant
// CHECK: cg.attention %{{.*}}, %{{.*}}, %{{.*}} {causal, scale = 1.000000e+00 : f64} : (tensor<1x3x4xf32>, tensor<1x3x4xf32>, tensor<1x3x4xf32>)
func.func @causal_additive_constant(%q: tensor<1x3x4xf32>, %k: tensor<1x3x4xf32>, %v: tensor<1x3x4xf32>) -> tensor<1x3x4xf32> {
  %kt = cg.transpose %k {permutation = array<i64: 0, 2, 1>} : (tensor<1x3x4xf32>) -> tensor<1x4x3xf32>
  %s = cg.matmul %q, %kt : (tensor<1x3x4xf32>, tensor<1x4x3xf32>) -> tensor<1x3x3xf32>
  %m = cg.constant dense<[[0.0, -1.0e9, -1.0e9], [0.0, 0.0, -1.0e9], [0.0, 0.0, 0.0]]> : tensor<3x3xf32>
  %s1 = cg.add %s, %m : (tensor<1x3x3xf32>, tensor<3x3xf32>) -> tensor<1x3x3xf32>
  %p = cg.softmax %s1 {axis = 2} : tensor<1x3x3xf32>
  %o = cg.matmul %p, %v : (tensor<1x3x3xf32>, tensor<1x3x4xf32>) -> tensor<1x3x4xf32>
  return %o : tensor<1x3x4xf32>
}

// -----

// torch's generate_square_subsequent_mask: triu(full(-inf), diagonal=1).
// CHECK-LABEL: func.func @causal_triu_of_splat
// CHECK: cg.attention {{.*}}causal
// CHECK-NOT: cg.trilu
func.func @causal_triu_of_splat(%q: tensor<2x64x8xf32>, %k: tensor<2x64x8xf32>, %v: tensor<2x64x8xf32>) -> tensor<2x64x8xf32> {
  %kt = cg.transpose %k {permutation = array<i64: 0, 2, 1>} : (tensor<2x64x8xf32>) -> tensor<2x8x64xf32>
  %s = cg.matmul %q, %kt : (tensor<2x64x8xf32>, tensor<2x8x64xf32>) -> tensor<2x64x64xf32>
  %inf = cg.constant dense<0xFF800000> : tensor<64x64xf32>
  %m = cg.trilu %inf {upper, diagonal = 1} : tensor<64x64xf32>
  %s1 = cg.add %m, %s : (tensor<64x64xf32>, tensor<2x64x64xf32>) -> tensor<2x64x64xf32>
  %p = cg.softmax %s1 {axis = 2} : tensor<2x64x64xf32>
  %o = cg.matmul %p, %v : (tensor<2x64x64xf32>, tensor<2x64x8xf32>) -> tensor<2x64x8xf32>
  return %o : tensor<2x64x8xf32>
}

// -----

// where(tril(ones) as bool, scores, -1e9): a causal keep-mask.
// CHECK-LABEL: func.func @causal_where_tril
// CHECK: cg.attention {{.*}}causal
// CHECK-NOT: cg.where
func.func @causal_where_tril(%q: tensor<2x16x8xf32>, %k: tensor<2x16x8xf32>, %v: tensor<2x16x8xf32>) -> tensor<2x16x8xf32> {
  %kt = cg.transpose %k {permutation = array<i64: 0, 2, 1>} : (tensor<2x16x8xf32>) -> tensor<2x8x16xf32>
  %s = cg.matmul %q, %kt : (tensor<2x16x8xf32>, tensor<2x8x16xf32>) -> tensor<2x16x16xf32>
  %ones = cg.constant dense<1.0> : tensor<16x16xf32>
  %tril = cg.trilu %ones : tensor<16x16xf32>
  %keep = cg.cast %tril : tensor<16x16xf32> to tensor<16x16xi1>
  %neg = cg.constant dense<-1.0e9> : tensor<f32>
  %s1 = cg.where %keep, %s, %neg : (tensor<16x16xi1>, tensor<2x16x16xf32>, tensor<f32>) -> tensor<2x16x16xf32>
  %p = cg.softmax %s1 {axis = 2} : tensor<2x16x16xf32>
  %o = cg.matmul %p, %v : (tensor<2x16x16xf32>, tensor<2x16x8xf32>) -> tensor<2x16x8xf32>
  return %o : tensor<2x16x8xf32>
}

// -----

// masked_fill(drop, -inf) is where(drop, -inf, scores): the keep-mask is
// the negation of the condition, kept as an operand when not causal.
// CHECK-LABEL: func.func @masked_fill
// CHECK: %[[KEEP:.*]] = cg.not %{{.*}} : tensor<8x8xi1>
// CHECK: cg.attention %{{.*}}, %{{.*}}, %{{.*}}, %[[KEEP]] {scale = 1.000000e+00 : f64}
func.func @masked_fill(%q: tensor<8x4xf32>, %k: tensor<8x4xf32>, %v: tensor<8x4xf32>, %drop: tensor<8x8xi1>) -> tensor<8x4xf32> {
  %kt = cg.transpose %k {permutation = array<i64: 1, 0>} : (tensor<8x4xf32>) -> tensor<4x8xf32>
  %s = cg.matmul %q, %kt : (tensor<8x4xf32>, tensor<4x8xf32>) -> tensor<8x8xf32>
  %neg = cg.constant dense<0xFF800000> : tensor<f32>
  %s1 = cg.where %drop, %neg, %s : (tensor<8x8xi1>, tensor<f32>, tensor<8x8xf32>) -> tensor<8x8xf32>
  %p = cg.softmax %s1 {axis = 1} : tensor<8x8xf32>
  %o = cg.matmul %p, %v : (tensor<8x8xf32>, tensor<8x4xf32>) -> tensor<8x4xf32>
  return %o : tensor<8x4xf32>
}

// -----

// A padding mask (BERT) is additive and not causal: it stays an operand.
// CHECK-LABEL: func.func @padding_mask
// CHECK: cg.attention %{{.*}}, %{{.*}}, %{{.*}}, %arg3 {scale = 1.250000e-01 : f64}
func.func @padding_mask(%q: tensor<2x4x8x8xf32>, %k: tensor<2x4x8x8xf32>, %v: tensor<2x4x8x8xf32>, %mask: tensor<2x1x1x8xf32>) -> tensor<2x4x8x8xf32> {
  %kt = cg.transpose %k {permutation = array<i64: 0, 1, 3, 2>} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %s = cg.matmul %q, %kt : (tensor<2x4x8x8xf32>, tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %c = cg.constant dense<0.125> : tensor<f32>
  %s1 = cg.mul %c, %s : (tensor<f32>, tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %s2 = cg.add %s1, %mask : (tensor<2x4x8x8xf32>, tensor<2x1x1x8xf32>) -> tensor<2x4x8x8xf32>
  %p = cg.softmax %s2 {axis = 3} : tensor<2x4x8x8xf32>
  %o = cg.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  return %o : tensor<2x4x8x8xf32>
}

// -----

// Not attention: the probabilities are used twice (returned too).
// CHECK-LABEL: func.func @probs_escape
// CHECK-NOT: cg.attention
// CHECK: cg.softmax
func.func @probs_escape(%q: tensor<8x4xf32>, %k: tensor<8x4xf32>, %v: tensor<8x4xf32>) -> (tensor<8x4xf32>, tensor<8x8xf32>) {
  %kt = cg.transpose %k {permutation = array<i64: 1, 0>} : (tensor<8x4xf32>) -> tensor<4x8xf32>
  %s = cg.matmul %q, %kt : (tensor<8x4xf32>, tensor<4x8xf32>) -> tensor<8x8xf32>
  %p = cg.softmax %s {axis = 1} : tensor<8x8xf32>
  %o = cg.matmul %p, %v : (tensor<8x8xf32>, tensor<8x4xf32>) -> tensor<8x4xf32>
  return %o, %p : tensor<8x4xf32>, tensor<8x8xf32>
}

// -----

// Not attention: softmax over the query dimension.
// CHECK-LABEL: func.func @wrong_axis
// CHECK-NOT: cg.attention
func.func @wrong_axis(%q: tensor<8x4xf32>, %k: tensor<8x4xf32>, %v: tensor<8x4xf32>) -> tensor<8x4xf32> {
  %kt = cg.transpose %k {permutation = array<i64: 1, 0>} : (tensor<8x4xf32>) -> tensor<4x8xf32>
  %s = cg.matmul %q, %kt : (tensor<8x4xf32>, tensor<4x8xf32>) -> tensor<8x8xf32>
  %p = cg.softmax %s {axis = 0} : tensor<8x8xf32>
  %o = cg.matmul %p, %v : (tensor<8x8xf32>, tensor<8x4xf32>) -> tensor<8x4xf32>
  return %o : tensor<8x4xf32>
}

// -----

// Not attention: the scale is a runtime value, not a constant.
// CHECK-LABEL: func.func @runtime_scale
// CHECK-NOT: cg.attention
func.func @runtime_scale(%q: tensor<8x4xf32>, %k: tensor<8x4xf32>, %v: tensor<8x4xf32>, %t: tensor<f32>) -> tensor<8x4xf32> {
  %kt = cg.transpose %k {permutation = array<i64: 1, 0>} : (tensor<8x4xf32>) -> tensor<4x8xf32>
  %s = cg.matmul %q, %kt : (tensor<8x4xf32>, tensor<4x8xf32>) -> tensor<8x8xf32>
  %s1 = cg.mul %s, %t : (tensor<8x8xf32>, tensor<f32>) -> tensor<8x8xf32>
  %p = cg.softmax %s1 {axis = 1} : tensor<8x8xf32>
  %o = cg.matmul %p, %v : (tensor<8x8xf32>, tensor<8x4xf32>) -> tensor<8x4xf32>
  return %o : tensor<8x4xf32>
}
