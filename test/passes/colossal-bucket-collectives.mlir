// RUN: colossal-opt %s --split-input-file --colossal-bucket-collectives | FileCheck %s
// RUN: colossal-opt %s --split-input-file --colossal-bucket-collectives="bucket-bytes=64" | FileCheck %s --check-prefix=SMALL
// RUN: colossal-opt %s --split-input-file --colossal-bucket-collectives="bucket-bytes=0" | FileCheck %s --check-prefix=OFF

// Three gradient all-reduces (64 + 16 + 64 bytes), produced in backward
// order g1, g2, g3 and used only at the end: one bucket, issued right after
// g3 is computed, split back for the users. With 64-byte buckets, g1 fills
// one alone (not rewritten) and g2 + g3 form the next. The max reduction
// stays alone.
// CHECK-LABEL: func.func @grads
// CHECK: %[[G1:.*]] = cg.mul
// CHECK: %[[G2:.*]] = cg.mul
// CHECK: %[[G3:.*]] = cg.mul
// CHECK: %[[F1:.*]] = cg.reshape %[[G1]] : (tensor<4x4xf32>) -> tensor<16xf32>
// CHECK: %[[F2:.*]] = cg.reshape %[[G2]] : (tensor<4xf32>) -> tensor<4xf32>
// CHECK: %[[F3:.*]] = cg.reshape %[[G3]] : (tensor<4x4xf32>) -> tensor<16xf32>
// CHECK: %[[C:.*]] = cg.concat %[[F1]], %[[F2]], %[[F3]] {axis = 0 : i64}
// CHECK: %[[R:.*]] = cgd.all_reduce %[[C]] on @mesh ["dp"]  sum {cg.bucket = 3 : i64} : tensor<36xf32>
// CHECK: %[[S:.*]]:3 = cg.split %[[R]] {axis = 0 : i64, sizes = array<i64: 16, 4, 16>}
// CHECK: cg.reshape %[[S]]#0 : (tensor<16xf32>) -> tensor<4x4xf32>
// CHECK: cgd.all_reduce %{{.*}} on @mesh ["dp"]  max : tensor<4xf32>
// CHECK-NOT: cgd.all_reduce
// SMALL-DAG: cgd.all_reduce %{{.*}} on @mesh ["dp"]  sum : tensor<4x4xf32>
// SMALL-DAG: cgd.all_reduce %{{.*}} on @mesh ["dp"]  sum {cg.bucket = 2 : i64} : tensor<20xf32>
// OFF-NOT: cg.bucket
cg.mesh @mesh = <["dp" = 2]>
func.func @grads(%x: tensor<4x4xf32>, %y: tensor<4xf32>) -> (tensor<4x4xf32>, tensor<4xf32>, tensor<4x4xf32>, tensor<4xf32>) {
  %g1 = cg.mul %x, %x : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  %g2 = cg.mul %y, %y : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %g3 = cg.mul %g1, %x : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  %r1 = cgd.all_reduce %g1 on @mesh ["dp"] sum : tensor<4x4xf32>
  %r2 = cgd.all_reduce %g2 on @mesh ["dp"] sum : tensor<4xf32>
  %r3 = cgd.all_reduce %g3 on @mesh ["dp"] sum : tensor<4x4xf32>
  %m = cgd.all_reduce %y on @mesh ["dp"] max : tensor<4xf32>
  return %r1, %r2, %r3, %m : tensor<4x4xf32>, tensor<4xf32>, tensor<4x4xf32>, tensor<4xf32>
}

// -----

// A gradient whose all-reduce is used before the next one is produced
// cannot wait for it: no bucket.
// CHECK-LABEL: func.func @used_early
// CHECK-NOT: cg.bucket
cg.mesh @mesh = <["dp" = 2]>
func.func @used_early(%x: tensor<4xf32>) -> tensor<4xf32> {
  %r1 = cgd.all_reduce %x on @mesh ["dp"] sum : tensor<4xf32>
  %a = cg.exp %r1 : tensor<4xf32>
  %r2 = cgd.all_reduce %a on @mesh ["dp"] sum : tensor<4xf32>
  return %r2 : tensor<4xf32>
}
