// Ring attention through the partitioning passes: colossal-shard-for-parallel
// {sp-mode=ring} marks attention and its fused backward, their sharding rule
// keeps the sequence split, and colossal-partition makes the ring ops (the
// backward takes the forward's log-sum-exp). Under sp-mode=ulysses the same
// program runs attention on a split of the heads instead.
// RUN: colossal-opt %s --colossal-shard-for-parallel="sp=2 sp-mode=ring" | FileCheck %s --check-prefix=MARK
// RUN: colossal-opt %s --colossal-shard-for-parallel="sp=2 sp-mode=ring" --colossal-propagate-sharding --colossal-partition | FileCheck %s --check-prefix=RING
// RUN: colossal-opt %s --colossal-shard-for-parallel="sp=2 sp-mode=ulysses" --colossal-propagate-sharding --colossal-partition | FileCheck %s --check-prefix=ULYSSES
// RUN: not colossal-opt %s --colossal-shard-for-parallel="sp=2 sp-mode=zigzag" 2>&1 | FileCheck %s --check-prefix=BAD

// MARK: cg.attention {{.*}}cg.ring_attention
// MARK: cg.attention_backward {{.*}}cg.ring_attention
// RING: func.func @main(%{{.*}}: tensor<2x4xi64> {{.*}}, %{{.*}}: tensor<2x1x8x8xf32>)
// RING: %[[Q:.*]] = cg.transpose {{.*}} -> tensor<2x1x4x8xf32>
// RING: %[[O:[^,]*]], %[[LSE:[^,]*]], %{{.*}} = cgd.ring_attention %[[Q]], %[[Q]], %[[Q]] on @mesh ["sp"] {{.*}} -> (tensor<2x1x4x8xf32>, tensor<2x1x4xf32>, tensor<144xf32>)
// RING-NOT: cgd.all_gather
// RING: cgd.ring_attention_backward %[[Q]], %[[Q]], %[[Q]], %[[O]], %[[LSE]], %[[O]] on @mesh ["sp"] {{.*}} -> (tensor<2x1x4x8xf32>, tensor<2x1x4x8xf32>, tensor<2x1x4x8xf32>, tensor<264xf32>)
// With one head there is nothing to split the heads over: Ulysses runs
// attention on the whole sequence (gathered), never as a ring.
// ULYSSES-NOT: cgd.ring_attention
// ULYSSES: cgd.all_gather %{{.*}} on @mesh ["sp"] {{.*}} -> tensor<2x1x8x8xf32>
// ULYSSES: cg.attention {{.*}} : (tensor<2x1x8x8xf32>, tensor<2x1x8x8xf32>, tensor<2x1x8x8xf32>) -> tensor<2x1x8x8xf32>
// BAD: sp-mode=zigzag is not known; use ulysses or ring
func.func @main(%ids: tensor<2x8xi64>, %g: tensor<2x1x8x8xf32>) -> (tensor<2x1x8x8xf32>, tensor<2x1x8x8xf32>, tensor<2x1x8x8xf32>, tensor<2x1x8x8xf32>) {
  // The token ids carry the sequence split over sp; q, k and v follow it
  // through an embedding, as a model's would.
  %table = cg.param "wte" from(dense<0.5> : tensor<16x8xf32>) : tensor<16x8xf32>
  %e = cg.gather %table, %ids {axis = 0} : (tensor<16x8xf32>, tensor<2x8xi64>) -> tensor<2x8x8xf32>
  %r = cg.reshape %e : (tensor<2x8x8xf32>) -> tensor<2x8x1x8xf32>
  %q = cg.transpose %r {permutation = array<i64: 0, 2, 1, 3>} : (tensor<2x8x1x8xf32>) -> tensor<2x1x8x8xf32>
  %o = cg.attention %q, %q, %q {scale = 0.35 : f64, causal} : (tensor<2x1x8x8xf32>, tensor<2x1x8x8xf32>, tensor<2x1x8x8xf32>) -> tensor<2x1x8x8xf32>
  %dq, %dk, %dv = cg.attention_backward %q, %q, %q, %o, %o {scale = 0.35 : f64, causal} : (tensor<2x1x8x8xf32>, tensor<2x1x8x8xf32>, tensor<2x1x8x8xf32>, tensor<2x1x8x8xf32>, tensor<2x1x8x8xf32>) -> (tensor<2x1x8x8xf32>, tensor<2x1x8x8xf32>, tensor<2x1x8x8xf32>)
  return %o, %dq, %dk, %dv : tensor<2x1x8x8xf32>, tensor<2x1x8x8xf32>, tensor<2x1x8x8xf32>, tensor<2x1x8x8xf32>
}
