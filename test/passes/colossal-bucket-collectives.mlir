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

// ZeRO-2/3's gradient reduce-scatters (dim 0) bucket too: each input laid
// out as [group, piece] (row r: device r's piece), joined along the pieces,
// one reduce-scatter gives each device its piece of every member. A
// reduce-scatter along another dimension stays alone.
// CHECK-LABEL: func.func @scattered
// CHECK: %[[A:.*]] = cg.reshape %{{.*}} : (tensor<4x4xf32>) -> tensor<2x8xf32>
// CHECK: %[[B:.*]] = cg.reshape %{{.*}} : (tensor<4xf32>) -> tensor<2x2xf32>
// CHECK: %[[C:.*]] = cg.concat %[[A]], %[[B]] {axis = 1 : i64} : (tensor<2x8xf32>, tensor<2x2xf32>) -> tensor<2x10xf32>
// CHECK: %[[R:.*]] = cgd.reduce_scatter %[[C]] on @mesh ["dp"]  sum {cg.bucket = 2 : i64, dim = 0 : i64} : (tensor<2x10xf32>) -> tensor<1x10xf32>
// CHECK: %[[F:.*]] = cg.reshape %[[R]] : (tensor<1x10xf32>) -> tensor<10xf32>
// CHECK: %[[S:.*]]:2 = cg.split %[[F]] {axis = 0 : i64, sizes = array<i64: 8, 2>}
// CHECK: cg.reshape %[[S]]#0 : (tensor<8xf32>) -> tensor<2x4xf32>
// CHECK: cg.reshape %[[S]]#1 : (tensor<2xf32>) -> tensor<2xf32>
// CHECK: cgd.reduce_scatter %{{.*}} on @mesh ["dp"]  sum {dim = 1 : i64}
// OFF-LABEL: func.func @scattered
// OFF-NOT: cg.bucket
cg.mesh @mesh = <["dp" = 2]>
func.func @scattered(%x: tensor<4x4xf32>, %y: tensor<4xf32>) -> (tensor<2x4xf32>, tensor<2xf32>, tensor<4x2xf32>) {
  %g1 = cg.mul %x, %x : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  %g2 = cg.mul %y, %y : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %r1 = cgd.reduce_scatter %g1 on @mesh ["dp"] sum {dim = 0} : (tensor<4x4xf32>) -> tensor<2x4xf32>
  %r2 = cgd.reduce_scatter %g2 on @mesh ["dp"] sum {dim = 0} : (tensor<4xf32>) -> tensor<2xf32>
  %r3 = cgd.reduce_scatter %x on @mesh ["dp"] sum {dim = 1} : (tensor<4x4xf32>) -> tensor<4x2xf32>
  return %r1, %r2, %r3 : tensor<2x4xf32>, tensor<2xf32>, tensor<4x2xf32>
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

// -----

// gather-bytes: ZeRO-3's gathers of weight pieces (dim 0, from parameters)
// join into one gather where the first was; each weight is cut out of the
// rank-major result. Off by default.
// RUN: colossal-opt %s --split-input-file --colossal-bucket-collectives="gather-bytes=4096" | FileCheck %s --check-prefix=GATHER
// GATHER-LABEL: func.func @weights
// GATHER: %[[F1:.*]] = cg.reshape %{{.*}} : (tensor<2x4xf32>) -> tensor<8xf32>
// GATHER: %[[F2:.*]] = cg.reshape %{{.*}} : (tensor<4xf32>) -> tensor<4xf32>
// GATHER: %[[C:.*]] = cg.concat %[[F1]], %[[F2]] {axis = 0 : i64}
// GATHER: %[[G:.*]] = cgd.all_gather %[[C]] on @mesh ["dp"] {cg.bucket = 2 : i64, dim = 0 : i64} : (tensor<12xf32>) -> tensor<24xf32>
// GATHER: %[[R:.*]] = cg.reshape %[[G]] : (tensor<24xf32>) -> tensor<2x12xf32>
// GATHER: cg.slice %[[R]] {limits = array<i64: 2, 8>, starts = array<i64: 0, 0>
// GATHER: cg.slice %[[R]] {limits = array<i64: 2, 12>, starts = array<i64: 0, 8>
// GATHER-NOT: cgd.all_gather
// OFF-LABEL: func.func @weights
// OFF-COUNT-2: cgd.all_gather
cg.mesh @mesh = <["dp" = 2]>
func.func @weights(%x: tensor<3x4xf32>) -> tensor<3x8xf32> {
  %w = cg.param "w" from(dense<1.0> : tensor<2x4xf32>) {cg.sharding = [#cg.sharding<@mesh, [["dp"]]>]} : tensor<2x4xf32>
  %b = cg.param "b" from(dense<1.0> : tensor<4xf32>) {cg.sharding = [#cg.sharding<@mesh, [["dp"]]>]} : tensor<4xf32>
  %wg = cgd.all_gather %w on @mesh ["dp"] {dim = 0 : i64} : (tensor<2x4xf32>) -> tensor<4x4xf32>
  %y = cg.matmul %x, %wg : (tensor<3x4xf32>, tensor<4x4xf32>) -> tensor<3x4xf32>
  %bg = cgd.all_gather %b on @mesh ["dp"] {dim = 0 : i64} : (tensor<4xf32>) -> tensor<8xf32>
  %z = cg.concat %y, %y {axis = 1 : i64} : (tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x8xf32>
  %o = cg.add %z, %bg : (tensor<3x8xf32>, tensor<8xf32>) -> tensor<3x8xf32>
  return %o : tensor<3x8xf32>
}

// -----

// The backward's W^T of a weight split along dim 0: the gather of the
// transposed piece (along dim 1) becomes the transpose of the piece's
// gather along dim 0, which then joins the bucket with the bias's.
// GATHER-LABEL: func.func @transposed
// GATHER: %[[W:.*]] = cg.param "w"
// GATHER: %[[B:.*]] = cg.param "b"
// GATHER: %[[F1:.*]] = cg.reshape %[[W]] : (tensor<2x4xf32>) -> tensor<8xf32>
// GATHER: %[[F2:.*]] = cg.reshape %[[B]] : (tensor<4xf32>) -> tensor<4xf32>
// GATHER: cgd.all_gather %{{.*}} on @mesh ["dp"] {cg.bucket = 2 : i64, dim = 0 : i64} : (tensor<12xf32>) -> tensor<24xf32>
// GATHER: %[[WG:.*]] = cg.reshape %{{.*}} : (tensor<2x8xf32>) -> tensor<4x4xf32>
// GATHER: %[[WT:.*]] = cg.transpose %[[WG]] {cg.layer = 0 : i64, permutation = array<i64: 1, 0>} : (tensor<4x4xf32>) -> tensor<4x4xf32>
// GATHER: cg.matmul %arg0, %[[WT]]
// GATHER-NOT: cgd.all_gather
// OFF-LABEL: func.func @transposed
// OFF: cg.transpose %{{.*}} : (tensor<2x4xf32>) -> tensor<4x2xf32>
// OFF: cgd.all_gather %{{.*}} {dim = 1 : i64} : (tensor<4x2xf32>) -> tensor<4x4xf32>
cg.mesh @mesh = <["dp" = 2]>
func.func @transposed(%x: tensor<3x4xf32>) -> tensor<3x8xf32> {
  %w = cg.param "w" from(dense<1.0> : tensor<2x4xf32>) {cg.sharding = [#cg.sharding<@mesh, [["dp"]]>]} : tensor<2x4xf32>
  %b = cg.param "b" from(dense<1.0> : tensor<4xf32>) {cg.sharding = [#cg.sharding<@mesh, [["dp"]]>]} : tensor<4xf32>
  %wt = cg.transpose %w {cg.layer = 0 : i64, permutation = array<i64: 1, 0>} : (tensor<2x4xf32>) -> tensor<4x2xf32>
  %wg = cgd.all_gather %wt on @mesh ["dp"] {dim = 1 : i64} : (tensor<4x2xf32>) -> tensor<4x4xf32>
  %y = cg.matmul %x, %wg {cg.layer = 0 : i64} : (tensor<3x4xf32>, tensor<4x4xf32>) -> tensor<3x4xf32>
  %bg = cgd.all_gather %b on @mesh ["dp"] {dim = 0 : i64} : (tensor<4xf32>) -> tensor<8xf32>
  %z = cg.concat %y, %y {axis = 1 : i64, cg.layer = 0 : i64} : (tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x8xf32>
  %o = cg.add %z, %bg {cg.layer = 0 : i64} : (tensor<3x8xf32>, tensor<8xf32>) -> tensor<3x8xf32>
  return %o : tensor<3x8xf32>
}

// -----

// Layers marked (colossal-mark-layers): gathers whose first readers are in
// different layers, and gradient reduce-scatters made by different layers,
// stay in separate buckets, so a rank holds one layer's gathered weights
// and one layer's whole gradients at a time.
// GATHER-LABEL: func.func @layers
// GATHER: cgd.all_gather %{{.*}} on @mesh ["dp"] {dim = 0 : i64} : (tensor<2x4xf32>) -> tensor<4x4xf32>
// GATHER: cgd.all_gather %{{.*}} on @mesh ["dp"] {dim = 0 : i64} : (tensor<2x4xf32>) -> tensor<4x4xf32>
// GATHER-NOT: cg.bucket
// CHECK-LABEL: func.func @layers
// CHECK-COUNT-2: cgd.reduce_scatter %{{.*}} on @mesh ["dp"]  sum {dim = 0 : i64}
// CHECK-NOT: cg.bucket
cg.mesh @mesh = <["dp" = 2]>
func.func @layers(%x: tensor<3x4xf32>) -> (tensor<3x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>) {
  %w0 = cg.param "w0" from(dense<1.0> : tensor<2x4xf32>) {cg.sharding = [#cg.sharding<@mesh, [["dp"]]>]} : tensor<2x4xf32>
  %w1 = cg.param "w1" from(dense<1.0> : tensor<2x4xf32>) {cg.sharding = [#cg.sharding<@mesh, [["dp"]]>]} : tensor<2x4xf32>
  %g0 = cgd.all_gather %w0 on @mesh ["dp"] {dim = 0 : i64} : (tensor<2x4xf32>) -> tensor<4x4xf32>
  %g1 = cgd.all_gather %w1 on @mesh ["dp"] {dim = 0 : i64} : (tensor<2x4xf32>) -> tensor<4x4xf32>
  %y0 = cg.matmul %x, %g0 {cg.layer = 0 : i64} : (tensor<3x4xf32>, tensor<4x4xf32>) -> tensor<3x4xf32>
  %y1 = cg.matmul %y0, %g1 {cg.layer = 1 : i64} : (tensor<3x4xf32>, tensor<4x4xf32>) -> tensor<3x4xf32>
  %d1 = cg.mul %g1, %g1 {cg.layer = 1 : i64} : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  %d0 = cg.mul %g0, %g0 {cg.layer = 0 : i64} : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  %r1 = cgd.reduce_scatter %d1 on @mesh ["dp"] sum {dim = 0} : (tensor<4x4xf32>) -> tensor<2x4xf32>
  %r0 = cgd.reduce_scatter %d0 on @mesh ["dp"] sum {dim = 0} : (tensor<4x4xf32>) -> tensor<2x4xf32>
  return %y1, %r1, %r0 : tensor<3x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>
}
