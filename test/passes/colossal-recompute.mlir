// RUN: colossal-opt %s --colossal-recompute | FileCheck %s
// RUN: sed -e 's/{cg.name = "loss"}//' %s | not colossal-opt --colossal-recompute 2>&1 | FileCheck %s --check-prefix=NOLOSS
// NOLOSS: error: cg.remat marks an op of the backward (or a graph without a training loss)

// Group 0 (a layer: relu then mul) feeds the loss; its output %b is read by
// a forward op outside the group (the next layer), so it stays the
// checkpoint. %a is read only by the group and by the backward: it is
// recomputed there, right before its first backward reader, from the
// group's input %x. The dropout counter's assignment moves after the clone
// of the mask draw that reads it.
// CHECK-LABEL: func.func @step
// CHECK-NOT: cg.remat
// CHECK: %[[CTR:.*]] = cg.param "rng.counter"
// CHECK: %[[A:.*]] = cg.relu %arg0
// CHECK: %[[K:.*]] = cg.random_keep %[[CTR]]
// CHECK: %[[M:.*]] = cg.where %[[K]]
// CHECK: %[[B:.*]] = cg.mul %[[A]], %[[M]]
// CHECK: %[[L:.*]] = cg.reduce_sum
// CHECK: %[[NEXT:.*]] = cg.add %[[CTR]]
// The backward: relu, mask draw and select again, then the readers.
// CHECK: %[[A2:.*]] = cg.relu %arg0
// CHECK: %[[K2:.*]] = cg.random_keep %[[CTR]]
// CHECK: cg.assign %[[NEXT]] to %[[CTR]]
// CHECK: %[[M2:.*]] = cg.where %[[K2]]
// CHECK: cg.mul %[[A2]], %[[M2]]
// CHECK: cg.mul %[[B]], %[[A2]]
// CHECK: return %[[L]]
func.func @step(%x: tensor<4xf32>) -> (tensor<f32> {cg.name = "loss"}, tensor<4xf32>, tensor<4xf32>) {
  %ctr = cg.param "rng.counter" from(dense<0> : tensor<i64>) {cg.role = "optimizer"} : tensor<i64>
  %a = cg.relu %x {cg.remat = 0 : i64} : tensor<4xf32>
  %keep = cg.random_keep %ctr {ratio = 5.000000e-01 : f64, seed = 7 : i64, stream = 0 : i64, cg.remat = 0 : i64} : (tensor<i64>) -> tensor<4xi1>
  %one = cg.constant dense<1.0> : tensor<4xf32>
  %zero = cg.constant dense<0.0> : tensor<4xf32>
  %m = cg.where %keep, %one, %zero {cg.remat = 0 : i64} : (tensor<4xi1>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %b = cg.mul %a, %m {cg.remat = 0 : i64} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %c = cg.add %b, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %l = cg.reduce_sum %c {axes = array<i64: 0>} : (tensor<4xf32>) -> tensor<f32>
  %step = cg.constant dense<1> : tensor<i64>
  %next = cg.add %ctr, %step : (tensor<i64>, tensor<i64>) -> tensor<i64>
  cg.assign %next to %ctr : tensor<i64>
  %g1 = cg.mul %a, %m : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %g2 = cg.mul %b, %a : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %l, %g1, %g2 : tensor<f32>, tensor<4xf32>, tensor<4xf32>
}
