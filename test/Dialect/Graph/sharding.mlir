// RUN: colossal-opt %s | colossal-opt | FileCheck %s

// Meshes with named axes and shardings (per-dimension axis lists and pending
// partial sums) parse, verify and print back, on cg.shard annotations, on
// op results (cg.sharding) and on function arguments.

// CHECK: cg.mesh @mesh = <["dp" = 2, "tp" = 4]>
cg.mesh @mesh = #cg.mesh<["dp" = 2, "tp" = 4]>
// CHECK: cg.mesh @cube = <["x" = 2, "y" = 2, "z" = 2]>
cg.mesh @cube = #cg.mesh<["x" = 2, "y" = 2, "z" = 2]>

// CHECK-LABEL: func.func @annotate
// CHECK-SAME: {cg.sharding = #cg.sharding<@mesh, {{\[\[}}"dp"], []]>}
func.func @annotate(%x: tensor<8x16xf32> {cg.sharding = #cg.sharding<@mesh, [["dp"], []]>},
                    %w: tensor<16x32xf32>) -> tensor<8x32xf32> {
  // Column split of the weight over "tp".
  // CHECK: cg.shard %{{.*}} to <@mesh, {{\[\[}}], ["tp"]]> : tensor<16x32xf32>
  %ws = cg.shard %w to <@mesh, [[], ["tp"]]> : tensor<16x32xf32>
  // Both axes on one dimension, major to minor.
  // CHECK: cg.shard %{{.*}} to <@mesh, {{\[\[}}"dp", "tp"]]> : tensor<8x16xf32>
  %xs = cg.shard %x to <@mesh, [["dp", "tp"]]> : tensor<8x16xf32>
  // A row-parallel product leaves a pending sum over "tp".
  // CHECK: cg.sharding = [#cg.sharding<@mesh, {{\[\[}}"dp"], []], partial = ["tp"]>]
  %y = cg.matmul %x, %ws {cg.sharding = [#cg.sharding<@mesh, [["dp"], []], partial = ["tp"]>]} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  // 3-D tensor parallel layout over a cube.
  // CHECK: cg.shard %{{.*}} to <@cube, {{\[\[}}"x"], ["y", "z"]]>
  %c = cg.shard %y to <@cube, [["x"], ["y", "z"]]> : tensor<8x32xf32>
  return %y : tensor<8x32xf32>
}
