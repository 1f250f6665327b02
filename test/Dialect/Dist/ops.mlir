// RUN: colossal-opt %s | colossal-opt | FileCheck %s

// The per-device dialect's collectives, point-to-point and host copies.
// Shapes are per device: a 2x4 mesh, groups along "tp" have 4 devices.

cg.mesh @mesh = #cg.mesh<["dp" = 2, "tp" = 4]>

// CHECK-LABEL: func.func @collectives
func.func @collectives(%x: tensor<8x16xf32>) {
  // CHECK: cgd.all_reduce %{{.*}} on @mesh ["tp"] sum : tensor<8x16xf32>
  %0 = cgd.all_reduce %x on @mesh ["tp"] sum : tensor<8x16xf32>
  // CHECK: cgd.all_gather %{{.*}} on @mesh ["tp"] {dim = 1 : i64} : (tensor<8x16xf32>) -> tensor<8x64xf32>
  %1 = cgd.all_gather %x on @mesh ["tp"] {dim = 1} : (tensor<8x16xf32>) -> tensor<8x64xf32>
  // All eight devices: both axes.
  // CHECK: cgd.reduce_scatter %{{.*}} on @mesh ["dp", "tp"] avg {dim = 0 : i64} : (tensor<8x16xf32>) -> tensor<1x16xf32>
  %2 = cgd.reduce_scatter %x on @mesh ["dp", "tp"] avg {dim = 0} : (tensor<8x16xf32>) -> tensor<1x16xf32>
  // CHECK: cgd.all_to_all %{{.*}} on @mesh ["tp"] {concat_dim = 1 : i64, split_dim = 0 : i64} : (tensor<8x16xf32>) -> tensor<2x64xf32>
  %3 = cgd.all_to_all %x on @mesh ["tp"] {split_dim = 0, concat_dim = 1} : (tensor<8x16xf32>) -> tensor<2x64xf32>
  // CHECK: cgd.send %{{.*}} to 3 on @mesh : tensor<8x16xf32>
  cgd.send %x to 3 on @mesh : tensor<8x16xf32>
  // CHECK: cgd.recv from 1 on @mesh {tag = 7 : i64} : tensor<8x16xf32>
  %4 = cgd.recv from 1 on @mesh {tag = 7} : tensor<8x16xf32>
  // CHECK: cgd.copy_to_host %{{.*}} : tensor<8x16xf32>
  %5 = cgd.copy_to_host %x : tensor<8x16xf32>
  // CHECK: cgd.copy_to_device %{{.*}} : tensor<8x16xf32>
  %6 = cgd.copy_to_device %5 : tensor<8x16xf32>
  return
}
