// RUN: colossal-opt %s --colossal-shard-for-parallel="dp=2" | FileCheck %s --check-prefix=DP
// RUN: colossal-opt %s --colossal-shard-for-parallel="dp=2 zero=1" | FileCheck %s --check-prefix=Z1
// RUN: colossal-opt %s --colossal-shard-for-parallel="dp=2 zero=3" | FileCheck %s --check-prefix=Z3
// RUN: colossal-opt %s --colossal-shard-for-parallel="dp=1" | FileCheck %s --check-prefix=ONE
// RUN: colossal-opt %s --colossal-tensor-parallel-layout="dp=2 tp=2" --colossal-shard-for-parallel="dp=2 tp=2 zero=1 sequence=true" | FileCheck %s --check-prefix=TPSEQ
// RUN: colossal-opt %s --colossal-shard-for-parallel="dp=2 sp=2" | FileCheck %s --check-prefix=SP
// RUN: not colossal-opt %s --colossal-shard-for-parallel="sp=4" 2>&1 | FileCheck %s --check-prefix=SPSEQ
// RUN: not colossal-opt %s --colossal-tensor-parallel-layout="dp=1 tp=2" --colossal-shard-for-parallel="tp=2 sp=2" 2>&1 | FileCheck %s --check-prefix=SPTP
// RUN: colossal-opt %s --colossal-tensor-parallel-layout="dp=1 tp=2 sp=2" --colossal-shard-for-parallel="tp=2 sp=2" | FileCheck %s --check-prefix=SPTPOK
// RUN: not colossal-opt %s --colossal-shard-for-parallel="dp=3" 2>&1 | FileCheck %s --check-prefix=BATCH
// RUN: not colossal-opt %s --colossal-shard-for-parallel="dp=2 tp=2" 2>&1 | FileCheck %s --check-prefix=TP
// RUN: not colossal-opt %s --colossal-shard-for-parallel="dp=1 zero=2" 2>&1 | FileCheck %s --check-prefix=ZERO

// Data parallel: the mesh, and the batch of every input split over dp;
// weights and optimizer state stay whole.
// DP: cg.mesh @mesh = <["dp" = 2]>
// DP: func.func @step(%{{.*}}: tensor<4x6xf32> {cg.name = "x", cg.sharding = #cg.sharding<@mesh, {{\[}}["dp"]]>}, %{{.*}}: tensor<f32>, %{{.*}}: tensor<4x2xi64> {cg.sharding = #cg.sharding<@mesh, {{\[}}["dp"]]>})
// DP-NOT: cg.sharding = [
// ZeRO-1: optimizer state split along its first dimension that divides
// (the 3x4 moment along dim 1, the step counter stays whole).
// Z1: cg.param "w" {{.*}}: tensor<6x4xf32>
// Z1-NOT: cg.sharding
// Z1: cg.param "m:w" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}["dp"]]>]
// Z1: cg.param "m:b" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}[], ["dp"]]>]
// Z1: cg.param "step" {{.*}}cg.role = "optimizer"} : tensor<f32>
// ZeRO-3: the weights too.
// Z3: cg.param "w" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}["dp"]]>]
// With tensor parallelism (the mesh from colossal-tensor-parallel-layout):
// the column-parallel weight's optimizer state takes its split, ZeRO adds
// dp on the other dimension; sequence parallelism splits integer inputs'
// sequence (the float input keeps its batch split only).
// TPSEQ: cg.mesh @mesh = <["dp" = 2, "tp" = 2]>
// TPSEQ: %{{.*}}: tensor<4x6xf32> {cg.name = "x", cg.sharding = #cg.sharding<@mesh, {{\[}}["dp"]]>}, %{{.*}}: tensor<f32>, %{{.*}}: tensor<4x2xi64> {cg.sharding = #cg.sharding<@mesh, {{\[}}["dp"], ["tp"]]>}
// TPSEQ: cg.param "w" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}[], ["tp"]]>]
// TPSEQ: cg.param "m:w" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}["dp"], ["tp"]]>]
// Sequence (context) parallelism: an sp axis after dp; integer inputs
// [batch, sequence] split their sequence over it, the float input only
// its batch.
// SP: cg.mesh @mesh = <["dp" = 2, "sp" = 2]>
// SP: %{{.*}}: tensor<4x6xf32> {cg.name = "x", cg.sharding = #cg.sharding<@mesh, {{\[}}["dp"]]>}, %{{.*}}: tensor<f32>, %{{.*}}: tensor<4x2xi64> {cg.sharding = #cg.sharding<@mesh, {{\[}}["dp"], ["sp"]]>}
// SPSEQ: has sequence 2, which does not split over sp=4; bind a sequence that is a multiple of 4
// sp with tp: the layout pass makes the mesh with the sp axis between dp
// and tp; without it, this pass says where the mesh must come from.
// SPTP: tp=2 needs the mesh and weight splits of colossal-tensor-parallel-layout{dp=1 tp=2 sp=2}, run on the forward graph first
// SPTPOK: cg.mesh @mesh = <["sp" = 2, "tp" = 2]>
// SPTPOK: %{{.*}}: tensor<4x2xi64> {cg.sharding = #cg.sharding<@mesh, {{\[}}[], ["sp"]]>}
// One device: nothing to lay out.
// ONE-NOT: cg.mesh
// BATCH: input 'x' has batch 4, which does not split over dp=3; compile with a global batch that is a multiple of 3
// TP: tp=2 needs the mesh and weight splits of colossal-tensor-parallel-layout{dp=2 tp=2}, run on the forward graph first
// ZERO: zero=2 shards over the data-parallel axis; it needs dp > 1
func.func @step(%x: tensor<4x6xf32> {cg.name = "x"}, %s: tensor<f32>, %ids: tensor<4x2xi64>) -> tensor<4x4xf32> {
  %w = cg.param "w" from(dense<1.0> : tensor<6x4xf32>) : tensor<6x4xf32>
  %mw = cg.param "m:w" from(dense<0.0> : tensor<6x4xf32>) {cg.role = "optimizer"} : tensor<6x4xf32>
  %mb = cg.param "m:b" from(dense<0.0> : tensor<3x4xf32>) {cg.role = "optimizer"} : tensor<3x4xf32>
  %st = cg.param "step" from(dense<0.0> : tensor<f32>) {cg.role = "optimizer"} : tensor<f32>
  %y = cg.matmul %x, %w : (tensor<4x6xf32>, tensor<6x4xf32>) -> tensor<4x4xf32>
  return %y : tensor<4x4xf32>
}
