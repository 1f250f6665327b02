// RUN: colossal-opt %s --split-input-file --colossal-propagate-sharding --colossal-partition | FileCheck %s
// The matmul rule's choices, partitioned: which operand gives way when
// their splits conflict, and where a split moves instead of becoming a
// pending sum.

// A whole weight meets an input split along the contraction (Ulysses'
// head split reaching the output projection): the split moves onto the
// input's rows with one all-to-all; no pending sum, no slice of the weight.
// CHECK-LABEL: func.func @whole_weight
// CHECK: cgd.all_to_all %{{.*}} on @mesh ["sp"] {concat_dim = 1 : i64, split_dim = 0 : i64} : (tensor<4x4xf32>) -> tensor<2x8xf32>
// CHECK: cg.matmul %{{.*}}, %{{.*}} : (tensor<2x8xf32>, tensor<8x6xf32>) -> tensor<2x6xf32>
// CHECK-NOT: cgd.all_reduce
// CHECK: cgd.all_gather %{{.*}} on @mesh ["sp"] {dim = 0 : i64} : (tensor<2x6xf32>) -> tensor<4x6xf32>
cg.mesh @mesh = <["sp" = 2]>
func.func @whole_weight(%x: tensor<4x8xf32>) -> tensor<4x6xf32> {
  %w = cg.param "w" from(dense<1.0> : tensor<8x6xf32>) : tensor<8x6xf32>
  %xs = cg.shard %x to <@mesh, [[], ["sp"]]> : tensor<4x8xf32>
  %y = cg.matmul %xs, %w : (tensor<4x8xf32>, tensor<8x6xf32>) -> tensor<4x6xf32>
  return %y : tensor<4x6xf32>
}

// -----

// The input's contraction is split further than the weight's rows (heads
// over [tp, sp] into a row-parallel projection split over tp): the extra
// axis moves onto the rows (one all-to-all over sp) and the rest
// contracts, a pending sum over tp.
// CHECK-LABEL: func.func @further_split
// CHECK: cgd.all_to_all %{{.*}} on @mesh ["sp"] {concat_dim = 1 : i64, split_dim = 0 : i64} : (tensor<4x2xf32>) -> tensor<2x4xf32>
// CHECK: cg.matmul %{{.*}}, %{{.*}} : (tensor<2x4xf32>, tensor<4x6xf32>) -> tensor<2x6xf32>
// CHECK: cgd.all_reduce %{{.*}} on @mesh ["tp"]  sum : tensor<2x6xf32>
cg.mesh @mesh = <["sp" = 2, "tp" = 2]>
func.func @further_split(%x: tensor<4x8xf32>) -> tensor<4x6xf32> {
  %w = cg.param "w" from(dense<1.0> : tensor<8x6xf32>) {cg.sharding = [#cg.sharding<@mesh, [["tp"], []]>]} : tensor<8x6xf32>
  %xs = cg.shard %x to <@mesh, [[], ["tp", "sp"]]> : tensor<4x8xf32>
  %y = cg.matmul %xs, %w : (tensor<4x8xf32>, tensor<8x6xf32>) -> tensor<4x6xf32>
  return %y : tensor<4x6xf32>
}

// -----

// Rows and columns split over one axis: the smaller operand is gathered.
// Here the input (32 elements) gives way to the weight (128): Megatron's
// sequence parallelism at real sizes, the sequence gathered before a
// column-parallel layer.
// CHECK-LABEL: func.func @gather_input
// CHECK: cgd.all_gather %{{.*}} on @mesh ["tp"] {dim = 0 : i64} : (tensor<2x8xf32>) -> tensor<4x8xf32>
// CHECK: cg.matmul %{{.*}}, %{{.*}} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
cg.mesh @mesh = <["tp" = 2]>
func.func @gather_input(%x: tensor<4x8xf32>) -> tensor<4x16xf32> {
  %w = cg.param "w" from(dense<1.0> : tensor<8x16xf32>) {cg.sharding = [#cg.sharding<@mesh, [[], ["tp"]]>]} : tensor<8x16xf32>
  %xs = cg.shard %x to <@mesh, [["tp"], []]> : tensor<4x8xf32>
  %y = cg.matmul %xs, %w : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}

// -----

// ... and here the weight (32) gives way to the input (128).
// CHECK-LABEL: func.func @gather_weight
// CHECK: cgd.all_gather %{{.*}} on @mesh ["tp"] {dim = 1 : i64} : (tensor<8x2xf32>) -> tensor<8x4xf32>
// CHECK: cg.matmul %{{.*}}, %{{.*}} : (tensor<8x8xf32>, tensor<8x4xf32>) -> tensor<8x4xf32>
cg.mesh @mesh = <["tp" = 2]>
func.func @gather_weight(%x: tensor<16x8xf32>) -> tensor<16x4xf32> {
  %w = cg.param "w" from(dense<1.0> : tensor<8x4xf32>) {cg.sharding = [#cg.sharding<@mesh, [[], ["tp"]]>]} : tensor<8x4xf32>
  %xs = cg.shard %x to <@mesh, [["tp"], []]> : tensor<16x8xf32>
  %y = cg.matmul %xs, %w : (tensor<16x8xf32>, tensor<8x4xf32>) -> tensor<16x4xf32>
  return %y : tensor<16x4xf32>
}
