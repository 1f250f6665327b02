// RUN: colossal-opt %s --colossal-tensor-parallel-layout="tp=2" | FileCheck %s
// RUN: colossal-opt %s --colossal-tensor-parallel-layout="dp=2 tp=2" | FileCheck %s --check-prefix=MESH
// RUN: colossal-opt %s --colossal-tensor-parallel-layout="tp=1" | FileCheck %s --check-prefix=ONE
// RUN: colossal-opt %s --colossal-tensor-parallel-layout="tp=4" | FileCheck %s --check-prefix=FOUR
// RUN: colossal-opt %s --colossal-tensor-parallel-layout="dp=2 tp=2 sequence=true" | FileCheck %s --check-prefix=SEQ
// RUN: colossal-opt %s --colossal-tensor-parallel-layout="dp=2 tp=2 sp=2" | FileCheck %s --check-prefix=SP
// RUN: colossal-opt %s --colossal-tensor-parallel-layout="tp=2 sp=2 sequence=true" | FileCheck %s --check-prefix=SPSEQ
// RUN: colossal-opt %s --colossal-tensor-parallel-layout="tp=4 sp=2 mode=2d" | FileCheck %s --check-prefix=SP2D

// An embedding, an MLP block and an attention block, Megatron's way: the
// embedding table splits its rows (vocab-parallel); the first MLP layer
// splits its columns (and its bias), the second its rows (its bias stays
// whole: it is added after the pending sum is reduced); q, k, v split their
// columns, so the heads are split through the reshape, transpose and
// attention, and the output projection splits its rows. The second bias
// stays whole. With tp=4 the 2 heads do not divide: the split is lost at the
// reshape, so the output projection sees a whole input and splits its
// columns instead.
// CHECK: cg.mesh @mesh = <["tp" = 2]>
// CHECK: cg.param "emb" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}["tp"]]>]
// CHECK: cg.param "fc1" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}[], ["tp"]]>]
// CHECK: cg.param "b1" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}["tp"]]>]
// CHECK: cg.param "fc2" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}["tp"]]>]
// CHECK-NOT: cg.param "b2" {{.*}}cg.sharding
// CHECK: cg.param "wq" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}[], ["tp"]]>]
// CHECK: cg.param "wk" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}[], ["tp"]]>]
// CHECK: cg.param "wv" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}[], ["tp"]]>]
// CHECK: cg.param "wo" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}["tp"]]>]
// MESH: cg.mesh @mesh = <["dp" = 2, "tp" = 2]>
// MESH-NOT: = cg.shard %
// Sequence parallelism: each row-parallel output is split along the
// sequence (and the batch over dp) right after the matmul, so its pending
// sum is reduce-scattered and the bias, residual and norm run on shards.
// SEQ: %[[O:.*]] = cg.matmul %{{.*}}, %{{.*}} : (tensor<2x4x16xf32>, tensor<16x8xf32>) -> tensor<2x4x8xf32>
// SEQ-NEXT: %[[S:.*]] = cg.shard %[[O]] to <@mesh, {{\[}}["dp"], ["tp"]]> : tensor<2x4x8xf32>
// SEQ-NEXT: cg.add %[[S]], %{{.*}}
// SEQ: cg.reshape %{{.*}} : (tensor<2x4x2x4xf32>) -> tensor<2x4x8xf32>
// SEQ-NEXT: %[[P:.*]] = cg.matmul %{{.*}}, %{{.*}} : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
// SEQ-NEXT: %[[Q:.*]] = cg.shard %[[P]] to <@mesh, {{\[}}["dp"], ["tp"]]>
// SEQ: return %{{.*}}, %[[Q]]
// sp: an sp axis between dp and tp (Ulysses beside Megatron's layout).
// SP: cg.mesh @mesh = <["dp" = 2, "sp" = 2, "tp" = 2]>
// SP: cg.param "fc1" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}[], ["tp"]]>]
// With sp and Megatron's sequence parallelism, each sp block of a
// row-parallel output splits further over tp.
// SPSEQ: cg.mesh @mesh = <["sp" = 2, "tp" = 2]>
// SPSEQ: cg.shard %{{.*}} to <@mesh, {{\[}}[], ["sp", "tp"]]>
// With 2D tensor parallelism the sp axis sits after dp, and the pinned
// activations keep their sequence split over it.
// SP2D: cg.mesh @mesh = <["sp" = 2, "tpr" = 2, "tpc" = 2]>
// SP2D: cg.shard %{{.*}} to <@mesh, {{\[}}["tpr"], ["sp"], ["tpc"]]>
// ONE-NOT: cg.mesh
// ONE-NOT: cg.sharding
// FOUR: cg.param "wo" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}[], ["tp"]]>]
func.func @blocks(%x: tensor<2x4x8xf32>, %ids: tensor<2x4xi64>) -> (tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>) {
  %emb = cg.param "emb" from(dense<1.0> : tensor<16x8xf32>) : tensor<16x8xf32>
  %looked = cg.gather %emb, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
  %fc1 = cg.param "fc1" from(dense<1.0> : tensor<8x16xf32>) : tensor<8x16xf32>
  %b1 = cg.param "b1" from(dense<1.0> : tensor<16xf32>) : tensor<16xf32>
  %fc2 = cg.param "fc2" from(dense<1.0> : tensor<16x8xf32>) : tensor<16x8xf32>
  %b2 = cg.param "b2" from(dense<1.0> : tensor<8xf32>) : tensor<8xf32>
  %h = cg.matmul %x, %fc1 : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
  %hb = cg.add %h, %b1 : (tensor<2x4x16xf32>, tensor<16xf32>) -> tensor<2x4x16xf32>
  %g = cg.gelu %hb : tensor<2x4x16xf32>
  %o = cg.matmul %g, %fc2 : (tensor<2x4x16xf32>, tensor<16x8xf32>) -> tensor<2x4x8xf32>
  %ob = cg.add %o, %b2 : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
  %y = cg.add %x, %ob : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
  %wq = cg.param "wq" from(dense<1.0> : tensor<8x8xf32>) : tensor<8x8xf32>
  %wk = cg.param "wk" from(dense<1.0> : tensor<8x8xf32>) : tensor<8x8xf32>
  %wv = cg.param "wv" from(dense<1.0> : tensor<8x8xf32>) : tensor<8x8xf32>
  %wo = cg.param "wo" from(dense<1.0> : tensor<8x8xf32>) : tensor<8x8xf32>
  %q = cg.matmul %y, %wq : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
  %k = cg.matmul %y, %wk : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
  %v = cg.matmul %y, %wv : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
  %qh = cg.reshape %q : (tensor<2x4x8xf32>) -> tensor<2x4x2x4xf32>
  %kh = cg.reshape %k : (tensor<2x4x8xf32>) -> tensor<2x4x2x4xf32>
  %vh = cg.reshape %v : (tensor<2x4x8xf32>) -> tensor<2x4x2x4xf32>
  %qt = cg.transpose %qh {permutation = array<i64: 0, 2, 1, 3>} : (tensor<2x4x2x4xf32>) -> tensor<2x2x4x4xf32>
  %kt = cg.transpose %kh {permutation = array<i64: 0, 2, 1, 3>} : (tensor<2x4x2x4xf32>) -> tensor<2x2x4x4xf32>
  %vt = cg.transpose %vh {permutation = array<i64: 0, 2, 1, 3>} : (tensor<2x4x2x4xf32>) -> tensor<2x2x4x4xf32>
  %a = cg.attention %qt, %kt, %vt {causal, scale = 0.5 : f64} : (tensor<2x2x4x4xf32>, tensor<2x2x4x4xf32>, tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  %at = cg.transpose %a {permutation = array<i64: 0, 2, 1, 3>} : (tensor<2x2x4x4xf32>) -> tensor<2x4x2x4xf32>
  %ar = cg.reshape %at : (tensor<2x4x2x4xf32>) -> tensor<2x4x8xf32>
  %out = cg.matmul %ar, %wo : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
  return %y, %out, %looked : tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>
}
