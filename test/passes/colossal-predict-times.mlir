// colossal-predict-times: each op of a per-rank program gets the cost
// model's time on one device of the cluster (cg.predicted_s, seconds).
// RUN: colossal-opt %s --colossal-predict-times | FileCheck %s
// RUN: colossal-opt %s --colossal-predict-times="cluster=cpu:gpus_per_node=1" | FileCheck %s --check-prefix=NODES
// RUN: colossal-opt %s --colossal-predict-times="cluster=dgx-a100-80g" | FileCheck %s --check-prefix=A100
// RUN: not colossal-opt %s --colossal-predict-times="cluster=tpu" 2>&1 | FileCheck %s --check-prefix=BAD

// On the cpu preset (0.5 TFLOP/s at 0.7 of peak, GEMM efficiency
// 64 / (64 + 32); 51.2 GB/s at 0.7; 1 us a kernel): the 64^3 matmul
// 2*64^3 / (0.5e12 * 0.7 * 2/3) + 1 us; the add its 48 KiB over 35.84 GB/s
// + 1 us; the all-reduce over 2 ranks of a node 16 KiB / 14 GB/s + 2 x 5 us.
// CHECK: cg.matmul {{.*}}cg.predicted_s = 3.24694{{[0-9]*}}E-6 : f64
// CHECK: cg.add {{.*}}cg.predicted_s = 2.37142{{[0-9]*}}E-6 : f64
// CHECK: cgd.all_reduce {{.*}}cg.predicted_s = 1.11702{{[0-9]*}}E-5 : f64

// One device a node: the all-reduce crosses the 25 GbE links (2 x 20 us).
// NODES: cg.matmul {{.*}}cg.predicted_s = 3.24694{{[0-9]*}}E-6 : f64
// NODES: cgd.all_reduce {{.*}}cg.predicted_s = 4.74{{[0-9]*}}E-5 : f64

// Another cluster, other figures.
// A100: cg.matmul {{.*}}cg.predicted_s = 2.079{{[0-9]*}}E-6 : f64
// A100: cgd.all_reduce {{.*}}cg.predicted_s = 2.07{{[0-9]*}}E-6 : f64

// BAD: colossal-predict-times: unknown cluster preset 'tpu'

module {
  cg.mesh @mesh = #cg.mesh<["dp" = 2]>
  func.func @main(%x: tensor<64x64xf32>, %w: tensor<64x64xf32>) -> tensor<64x64xf32> {
    %y = cg.matmul %x, %w : (tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<64x64xf32>
    %z = cg.add %y, %x : (tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<64x64xf32>
    %r = cgd.all_reduce %z on @mesh ["dp"] sum : tensor<64x64xf32>
    return %r : tensor<64x64xf32>
  }
}
