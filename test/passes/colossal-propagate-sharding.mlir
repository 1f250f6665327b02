// RUN: colossal-opt %s --split-input-file --colossal-propagate-sharding | FileCheck %s
// RUN: colossal-opt %s --split-input-file --colossal-propagate-sharding=resolve-partial=reduce-scatter | FileCheck %s --check-prefix=RS
// RUN: not colossal-opt %s --split-input-file --colossal-propagate-sharding=resolve-partial=broadcast 2>&1 | FileCheck %s --check-prefix=BAD

// The rules on a 2-axis mesh: a column-split weight times a batch-split
// input is split both ways; softmax keeps both splits (a split axis is
// reduced across devices by the partitioner); transpose permutes the
// layout; contracting the split batch leaves a pending sum over dp, which
// is resolved before the product that is not linear in it (keeping the tp
// split of its columns), and stays resolved for the later use; an
// embedding lookup follows its indices.
// CHECK-LABEL: func.func @rules
// CHECK: cg.param "e" {{.*}}cg.sharding = [#cg.sharding<@mesh, []>]
// CHECK: cg.matmul {{.*}}cg.operand_sharding = [#cg.sharding<@mesh, {{\[}}["dp"]]>, #cg.sharding<@mesh, {{\[}}[], ["tp"]]>], cg.sharding = [#cg.sharding<@mesh, {{\[}}["dp"], ["tp"]]>]
// CHECK: cg.softmax {{.*}}cg.operand_sharding = [#cg.sharding<@mesh, {{\[}}["dp"], ["tp"]]>], cg.sharding = [#cg.sharding<@mesh, {{\[}}["dp"], ["tp"]]>]
// CHECK: cg.transpose {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}[], ["dp"]]>]
// CHECK: %[[G:.*]] = cg.matmul {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}[], ["tp"]], partial = ["dp"]>]
// CHECK: cg.mul %[[G]], %[[G]] {cg.operand_sharding = [#cg.sharding<@mesh, {{\[}}[], ["tp"]]>, #cg.sharding<@mesh, {{\[}}[], ["tp"]]>], cg.sharding = [#cg.sharding<@mesh, {{\[}}[], ["tp"]]>]}
// CHECK: cg.gather {{.*}}cg.operand_sharding = [#cg.sharding<@mesh, []>, #cg.sharding<@mesh, {{\[}}["dp"]]>], cg.sharding = [#cg.sharding<@mesh, {{\[}}["dp"]]>]
// CHECK: return {cg.operand_sharding = [#cg.sharding<@mesh, []>, #cg.sharding<@mesh, []>, #cg.sharding<@mesh, []>]}
// BAD: resolve-partial=broadcast is not known; use all-reduce or reduce-scatter
cg.mesh @mesh = <["dp" = 2, "tp" = 2]>
func.func @rules(%x: tensor<8x16xf32> {cg.sharding = #cg.sharding<@mesh, [["dp"]]>}, %ids: tensor<8x4xi64> {cg.sharding = #cg.sharding<@mesh, [["dp"]]>}) -> (tensor<f32>, tensor<16x32xf32>, tensor<8x4x16xf32>) {
  %w = cg.param "w" from(dense<1.0> : tensor<16x32xf32>) {cg.sharding = [#cg.sharding<@mesh, [[], ["tp"]]>]} : tensor<16x32xf32>
  %e = cg.param "e" from(dense<1.0> : tensor<10x16xf32>) : tensor<10x16xf32>
  %y = cg.matmul %x, %w : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %sm = cg.softmax %y {axis = 1 : i64} : tensor<8x32xf32>
  %t = cg.transpose %x {permutation = array<i64: 1, 0>} : (tensor<8x16xf32>) -> tensor<16x8xf32>
  %g = cg.matmul %t, %sm : (tensor<16x8xf32>, tensor<8x32xf32>) -> tensor<16x32xf32>
  %g2 = cg.mul %g, %g : (tensor<16x32xf32>, tensor<16x32xf32>) -> tensor<16x32xf32>
  %s = cg.reduce_sum %g2 {axes = array<i64: 0, 1>} : (tensor<16x32xf32>) -> tensor<f32>
  %emb = cg.gather %e, %ids {axis = 0 : i64} : (tensor<10x16xf32>, tensor<8x4xi64>) -> tensor<8x4x16xf32>
  return %s, %g, %emb : tensor<f32>, tensor<16x32xf32>, tensor<8x4x16xf32>
}

// -----

// Slices sink: the broadcast operand and the negation are wanted split by
// their only user, so they compute just the piece (no all_slice later).
// CHECK-LABEL: func.func @sink
// CHECK: cg.expand %{{.*}} {cg.operand_sharding = [#cg.sharding<@mesh, []>], cg.sharding = [#cg.sharding<@mesh, {{\[}}["dp"]]>]}
// CHECK: cg.neg %{{.*}} {cg.operand_sharding = [#cg.sharding<@mesh, {{\[}}["dp"]]>], cg.sharding = [#cg.sharding<@mesh, {{\[}}["dp"]]>]}
cg.mesh @mesh = <["dp" = 2]>
func.func @sink(%x: tensor<4x8xf32> {cg.sharding = #cg.sharding<@mesh, [["dp"]]>}, %c: tensor<1x8xf32>) -> tensor<4x8xf32> {
  %e = cg.expand %c : (tensor<1x8xf32>) -> tensor<4x8xf32>
  %n = cg.neg %e : tensor<4x8xf32>
  %y = cg.mul %x, %n : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

// A pending sum with no split to follow: all-reduced to a whole value, or,
// with reduce-scatter resolution (ZeRO-2/3), split along its leading
// dimension.
// CHECK-LABEL: func.func @resolve
// CHECK: cg.mul %{{.*}}, %{{.*}} {cg.operand_sharding = [#cg.sharding<@mesh, []>, #cg.sharding<@mesh, []>], cg.sharding = [#cg.sharding<@mesh, []>]}
// RS-LABEL: func.func @resolve
// RS: cg.mul %{{.*}}, %{{.*}} {cg.operand_sharding = [#cg.sharding<@mesh, {{\[}}["dp"]]>, #cg.sharding<@mesh, {{\[}}["dp"]]>], cg.sharding = [#cg.sharding<@mesh, {{\[}}["dp"]]>]}
cg.mesh @mesh = <["dp" = 2]>
func.func @resolve(%x: tensor<4x8xf32> {cg.sharding = #cg.sharding<@mesh, [["dp"]]>}, %y: tensor<4x6xf32> {cg.sharding = #cg.sharding<@mesh, [["dp"]]>}) -> tensor<8x6xf32> {
  %t = cg.transpose %x {permutation = array<i64: 1, 0>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  %g = cg.matmul %t, %y : (tensor<8x4xf32>, tensor<4x6xf32>) -> tensor<8x6xf32>
  %q = cg.mul %g, %g : (tensor<8x6xf32>, tensor<8x6xf32>) -> tensor<8x6xf32>
  return %q : tensor<8x6xf32>
}

// -----

// The update of a replicated weight with replicated state runs whole: a
// gradient summed from an activation split along a kept dimension is
// summed with the split moved onto the summed dimension (a pending sum,
// reduced like every gradient), and a gradient that arrives split is
// gathered at the update's first op, so the assigns need nothing. Where the
// state is split (ZeRO), the update keeps following the split.
// CHECK-LABEL: func.func @whole_update
// CHECK: cg.reduce_sum %arg0 {axes = array<i64: 0>, cg.operand_sharding = [#cg.sharding<@mesh, {{\[}}["sp"]]>], cg.sharding = [#cg.sharding<@mesh, [], partial = ["sp"]>]}
// CHECK: cg.add {{.*}}cg.sharding = [#cg.sharding<@mesh, []>]
// CHECK: cg.mul %arg1, %{{.*}} {cg.operand_sharding = [#cg.sharding<@mesh, []>, #cg.sharding<@mesh, []>], cg.sharding = [#cg.sharding<@mesh, []>]}
// CHECK: cg.sub {{.*}}cg.sharding = [#cg.sharding<@mesh, []>]
// CHECK: %[[G2:.*]] = cg.reduce_sum {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}["sp"]]>]
// CHECK: cg.mul %[[G2]], %{{.*}} {cg.operand_sharding = [#cg.sharding<@mesh, {{\[}}["sp"]]>, #cg.sharding<@mesh, []>], cg.sharding = [#cg.sharding<@mesh, {{\[}}["sp"]]>]}
cg.mesh @mesh = <["sp" = 2]>
func.func @whole_update(%x: tensor<4x8xf32> {cg.sharding = #cg.sharding<@mesh, [[], ["sp"]]>}, %gu: tensor<8xf32> {cg.sharding = #cg.sharding<@mesh, [["sp"]]>}) {
  %w = cg.param "w" from(dense<1.0> : tensor<8xf32>) : tensor<8xf32>
  %m = cg.param "adamw.m:w" from(dense<0.0> : tensor<8xf32>) {cg.role = "optimizer"} : tensor<8xf32>
  %c = cg.constant dense<0.5> : tensor<f32>
  %g = cg.reduce_sum %x {axes = array<i64: 0>} : (tensor<4x8xf32>) -> tensor<8xf32>
  %m2 = cg.add %m, %g : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  cg.assign %m2 to %m : tensor<8xf32>
  %u = cg.param "u" from(dense<1.0> : tensor<8xf32>) : tensor<8xf32>
  %guc = cg.mul %gu, %c : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %u2 = cg.sub %u, %guc : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  cg.assign %u2 to %u : tensor<8xf32>
  %v = cg.param "v" from(dense<1.0> : tensor<8xf32>) : tensor<8xf32>
  %s = cg.param "adamw.m:v" from(dense<0.0> : tensor<8xf32>) {cg.role = "optimizer", cg.sharding = [#cg.sharding<@mesh, [["sp"]]>]} : tensor<8xf32>
  %g2 = cg.reduce_sum %x {axes = array<i64: 0>} : (tensor<4x8xf32>) -> tensor<8xf32>
  %gc2 = cg.mul %g2, %c : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %s2 = cg.add %s, %gc2 : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  %v2 = cg.sub %v, %s2 : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  cg.assign %s2 to %s : tensor<8xf32>
  cg.assign %v2 to %v : tensor<8xf32>
  return
}
