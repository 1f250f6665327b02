// RUN: colossal-opt %s --split-input-file --colossal-propagate-sharding --colossal-partition | FileCheck %s

// A value moves between two layouts of a 2-axis mesh (rows over dp and
// columns over tp, to the transpose): both old splits are gathered, then
// each device keeps its new piece; the result is gathered whole for return.
// CHECK-LABEL: func.func @move
// CHECK-SAME: %[[X:.*]]: tensor<4x8xf32> {cg.shard_of = #cg.sharding<@mesh, {{\[}}["dp"], ["tp"]]>}
// CHECK: %[[A:.*]] = cgd.all_gather %[[X]] on @mesh ["dp"] {dim = 0 : i64} : (tensor<4x8xf32>) -> tensor<8x8xf32>
// CHECK: %[[B:.*]] = cgd.all_gather %[[A]] on @mesh ["tp"] {dim = 1 : i64} : (tensor<8x8xf32>) -> tensor<8x16xf32>
// CHECK: %[[C:.*]] = cgd.all_slice %[[B]] on @mesh ["tp"] {dim = 0 : i64} : (tensor<8x16xf32>) -> tensor<4x16xf32>
// CHECK: %[[D:.*]] = cgd.all_slice %[[C]] on @mesh ["dp"] {dim = 1 : i64} : (tensor<4x16xf32>) -> tensor<4x8xf32>
// CHECK: %[[R:.*]] = cg.relu %[[D]] : tensor<4x8xf32>
// CHECK: cgd.all_gather %[[R]] on @mesh ["tp"] {dim = 0 : i64}
// CHECK: cgd.all_gather %{{.*}} on @mesh ["dp"] {dim = 1 : i64} : (tensor<8x8xf32>) -> tensor<8x16xf32>
cg.mesh @mesh = <["dp" = 2, "tp" = 2]>
func.func @move(%x: tensor<8x16xf32> {cg.sharding = #cg.sharding<@mesh, [["dp"], ["tp"]]>}) -> tensor<8x16xf32> {
  %y = cg.shard %x to <@mesh, [["tp"], ["dp"]]> : tensor<8x16xf32>
  %z = cg.relu %y : tensor<8x16xf32>
  return %z : tensor<8x16xf32>
}

// -----

// A sum over a dimension split on both axes is a pending sum over both;
// wanted split along the remaining dimension over the same axes, it is
// reduce-scattered rather than all-reduced.
// CHECK-LABEL: func.func @scatter
// CHECK: %[[S:.*]] = cg.reduce_sum %{{.*}} {axes = array<i64: 1>} : (tensor<8x4xf32>) -> tensor<8xf32>
// CHECK: %[[RS:.*]] = cgd.reduce_scatter %[[S]] on @mesh ["dp", "tp"]  sum {dim = 0 : i64} : (tensor<8xf32>) -> tensor<2xf32>
// CHECK: cg.exp %[[RS]] : tensor<2xf32>
// CHECK-NOT: cgd.all_reduce
cg.mesh @mesh = <["dp" = 2, "tp" = 2]>
func.func @scatter(%x: tensor<8x16xf32> {cg.sharding = #cg.sharding<@mesh, [[], ["dp", "tp"]]>}) -> tensor<8xf32> {
  %s = cg.reduce_sum %x {axes = array<i64: 1>} : (tensor<8x16xf32>) -> tensor<8xf32>
  %y = cg.shard %s to <@mesh, [["dp", "tp"]]> : tensor<8xf32>
  %z = cg.exp %y : tensor<8xf32>
  return %z : tensor<8xf32>
}

// -----

// A mean over the split batch: each device's mean, scaled by its share,
// is a pending sum (all-reduced at the return). A split refined by a
// further axis needs no communication: each device slices its piece.
// CHECK-LABEL: func.func @refine_and_mean
// CHECK: %[[M:.*]] = cg.reduce_mean %[[X:.*]] {axes = array<i64: 0>} : (tensor<4x16xf32>) -> tensor<16xf32>
// CHECK: %[[H:.*]] = cg.constant dense<5.000000e-01> : tensor<f32>
// CHECK: %[[SC:.*]] = cg.mul %[[M]], %[[H]]
// CHECK: %[[P:.*]] = cgd.all_slice %[[X]] on @mesh ["tp"] {dim = 0 : i64} : (tensor<4x16xf32>) -> tensor<2x16xf32>
// CHECK: cgd.all_reduce %[[SC]] on @mesh ["dp"]  sum : tensor<16xf32>
// CHECK: cgd.all_gather %{{.*}} on @mesh ["dp", "tp"] {dim = 0 : i64} : (tensor<2x16xf32>) -> tensor<8x16xf32>
cg.mesh @mesh = <["dp" = 2, "tp" = 2]>
func.func @refine_and_mean(%x: tensor<8x16xf32> {cg.sharding = #cg.sharding<@mesh, [["dp"]]>}) -> (tensor<16xf32>, tensor<8x16xf32>) {
  %m = cg.reduce_mean %x {axes = array<i64: 0>} : (tensor<8x16xf32>) -> tensor<16xf32>
  %y = cg.shard %x to <@mesh, [["dp", "tp"]]> : tensor<8x16xf32>
  %z = cg.neg %y : tensor<8x16xf32>
  return %m, %z : tensor<16xf32>, tensor<8x16xf32>
}

// -----

// ZeRO-3: a weight split over dp is gathered right before each use (two
// gathers, not one kept alive between the uses); the parameter holds its
// piece and remembers the whole.
// CHECK-LABEL: func.func @zero3
// CHECK: %[[W:.*]] = cg.param "w" {{.*}}{cg.shard_of = [#cg.sharding<@mesh, {{\[}}["dp"]]>]} : tensor<4x8xf32>
// CHECK: %[[G1:.*]] = cgd.all_gather %[[W]] on @mesh ["dp"] {dim = 0 : i64} : (tensor<4x8xf32>) -> tensor<8x8xf32>
// CHECK: %[[A:.*]] = cg.matmul %{{.*}}, %[[G1]] : (tensor<2x8xf32>, tensor<8x8xf32>) -> tensor<2x8xf32>
// CHECK: %[[G2:.*]] = cgd.all_gather %[[W]] on @mesh ["dp"] {dim = 0 : i64}
// CHECK: cg.matmul %[[A]], %[[G2]]
cg.mesh @mesh = <["dp" = 2]>
func.func @zero3(%x: tensor<4x8xf32> {cg.sharding = #cg.sharding<@mesh, [["dp"]]>}) -> tensor<4x8xf32> {
  %w = cg.param "w" from(dense<1.0> : tensor<8x8xf32>) {cg.sharding = [#cg.sharding<@mesh, [["dp"]]>]} : tensor<8x8xf32>
  %a = cg.matmul %x, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  %b = cg.matmul %a, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  return %b : tensor<4x8xf32>
}

// -----

// Without a mesh there is nothing to partition.
// CHECK-LABEL: func.func @whole
// CHECK-NOT: cgd.
func.func @whole(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = cg.relu %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

// Vocab-parallel: a log-softmax over a split axis is computed from the
// pieces; its max and its sum of exponentials are all-reduced over the
// split, so no device holds the whole axis.
// CHECK-LABEL: func.func @split_log_softmax
// CHECK: %[[M:.*]] = cg.reduce_max %[[X:.*]] {axes = array<i64: 1>, keepdims} : (tensor<4x4xf32>) -> tensor<4x1xf32>
// CHECK: %[[MM:.*]] = cgd.all_reduce %[[M]] on @mesh ["tp"]  max : tensor<4x1xf32>
// CHECK: %[[S:.*]] = cg.sub %[[X]], %[[MM]]
// CHECK: %[[E:.*]] = cg.exp %[[S]] : tensor<4x4xf32>
// CHECK: %[[Z:.*]] = cg.reduce_sum %[[E]] {axes = array<i64: 1>, keepdims}
// CHECK: %[[ZZ:.*]] = cgd.all_reduce %[[Z]] on @mesh ["tp"]  sum : tensor<4x1xf32>
// CHECK: %[[L:.*]] = cg.log %[[ZZ]]
// CHECK: cg.sub %[[S]], %[[L]] : (tensor<4x4xf32>, tensor<4x1xf32>) -> tensor<4x4xf32>
// CHECK-NOT: cg.log_softmax
cg.mesh @mesh = <["tp" = 2]>
func.func @split_log_softmax(%x: tensor<4x8xf32> {cg.sharding = #cg.sharding<@mesh, [[], ["tp"]]>}) -> tensor<f32> {
  %l = cg.log_softmax %x {axis = 1 : i64} : tensor<4x8xf32>
  %s = cg.reduce_sum %l {axes = array<i64: 0, 1>} : (tensor<4x8xf32>) -> tensor<f32>
  return %s : tensor<f32>
}

// -----

// A vocab-parallel lookup: each device holds 4 of the 8 rows and finds its
// first row from its piece of the row numbers (no communication); indices
// outside its rows look up row 0 and are zeroed; the result is a pending
// sum, all-reduced before the first op that is not linear in it.
// CHECK-LABEL: func.func @vocab_lookup
// CHECK: %[[T:.*]] = cg.param "emb" {{.*}} : tensor<4x4xf32>
// CHECK: %[[ALL:.*]] = cg.constant dense<[0, 1, 2, 3, 4, 5, 6, 7]> : tensor<8xi64>
// CHECK: %[[MINE:.*]] = cgd.all_slice %[[ALL]] on @mesh ["tp"] {dim = 0 : i64} : (tensor<8xi64>) -> tensor<4xi64>
// CHECK: %[[REL:.*]] = cg.sub
// CHECK: %[[IN:.*]] = cg.and
// CHECK: %[[SAFE:.*]] = cg.where %[[IN]], %[[REL]]
// CHECK: %[[G:.*]] = cg.gather %[[T]], %[[SAFE]] {axis = 0 : i64} : (tensor<4x4xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32>
// CHECK: %[[M:.*]] = cg.mul %[[G]], %{{.*}} : (tensor<2x3x4xf32>, tensor<2x3x1xf32>)
// CHECK: %[[R:.*]] = cgd.all_reduce %[[M]] on @mesh ["tp"]  sum : tensor<2x3x4xf32>
// CHECK: cg.relu %[[R]]
cg.mesh @mesh = <["tp" = 2]>
func.func @vocab_lookup(%ids: tensor<2x3xi64>) -> tensor<2x3x4xf32> {
  %t = cg.param "emb" from(dense<1.0> : tensor<8x4xf32>) {cg.sharding = [#cg.sharding<@mesh, [["tp"]]>]} : tensor<8x4xf32>
  %e = cg.gather %t, %ids {axis = 0 : i64} : (tensor<8x4xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32>
  %r = cg.relu %e : tensor<2x3x4xf32>
  return %r : tensor<2x3x4xf32>
}

// -----

// A split moving from one dimension to another, unsplit one over the same
// axes (a sequence split becoming a head split: Ulysses) is one all-to-all.
// CHECK-LABEL: func.func @alltoall
// CHECK-SAME: %[[X:.*]]: tensor<2x4x2x8xf32>
// CHECK: %[[A:.*]] = cgd.all_to_all %[[X]] on @mesh ["sp"] {concat_dim = 2 : i64, split_dim = 1 : i64} : (tensor<2x4x2x8xf32>) -> tensor<2x2x4x8xf32>
// CHECK: cg.relu %[[A]] : tensor<2x2x4x8xf32>
cg.mesh @mesh = <["sp" = 2]>
func.func @alltoall(%x: tensor<2x4x4x8xf32> {cg.sharding = #cg.sharding<@mesh, [[], [], ["sp"], []]>}) -> tensor<2x4x4x8xf32> {
  %y = cg.shard %x to <@mesh, [[], ["sp"], [], []]> : tensor<2x4x4x8xf32>
  %z = cg.relu %y : tensor<2x4x4x8xf32>
  return %z : tensor<2x4x4x8xf32>
}
