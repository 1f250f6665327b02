// RUN: colossal-opt %s | colossal-opt | FileCheck %s
// RUN: colossal-opt %s --mlir-print-op-generic | colossal-opt | FileCheck %s

// Every op of the graph dialect parses, verifies and prints back.

// CHECK-LABEL: func.func @params_and_constants
func.func @params_and_constants() -> (tensor<4x8xf32>, tensor<2xf32>, tensor<3xi64>, tensor<2xbf16>) {
  // CHECK: cg.param "w" from(#cg.external<"w.data", offset = 64, length = 128>) : tensor<4x8xf32>
  %w = cg.param "w" from(#cg.external<"w.data", offset = 64, length = 128>) : tensor<4x8xf32>
  // CHECK: cg.param "b" from(#cg.initializer<"m.onnx", "b">) : tensor<2xf32>
  %b = cg.param "b" from(#cg.initializer<"m.onnx", "b">) : tensor<2xf32>
  // CHECK: cg.param "s" from(dense<[1, 2, 3]> : tensor<3xi64>) : tensor<3xi64>
  %s = cg.param "s" from(dense<[1, 2, 3]> : tensor<3xi64>) : tensor<3xi64>
  // CHECK: cg.constant dense<1.000000e+00> : tensor<2xbf16>
  %c = cg.constant dense<1.0> : tensor<2xbf16>
  return %w, %b, %s, %c : tensor<4x8xf32>, tensor<2xf32>, tensor<3xi64>, tensor<2xbf16>
}

// CHECK-LABEL: func.func @unary
func.func @unary(%x: tensor<2x3xf32>, %i: tensor<2x3xi64>, %b: tensor<2x3xi1>) {
  // CHECK: cg.neg %{{.*}} : tensor<2x3xi64>
  %0 = cg.neg %i : tensor<2x3xi64>
  // CHECK: cg.abs
  %1 = cg.abs %x : tensor<2x3xf32>
  // CHECK: cg.sqrt
  %2 = cg.sqrt %x : tensor<2x3xf32>
  // CHECK: cg.rsqrt
  %3 = cg.rsqrt %x : tensor<2x3xf32>
  // CHECK: cg.exp
  %4 = cg.exp %x : tensor<2x3xf32>
  // CHECK: cg.log
  %5 = cg.log %x : tensor<2x3xf32>
  // CHECK: cg.tanh
  %6 = cg.tanh %x : tensor<2x3xf32>
  // CHECK: cg.erf
  %7 = cg.erf %x : tensor<2x3xf32>
  // CHECK: cg.reciprocal
  %8 = cg.reciprocal %x : tensor<2x3xf32>
  // CHECK: cg.relu
  %9 = cg.relu %x : tensor<2x3xf32>
  // CHECK: cg.sigmoid
  %10 = cg.sigmoid %x : tensor<2x3xf32>
  // CHECK: cg.silu
  %11 = cg.silu %x : tensor<2x3xf32>
  // CHECK: cg.gelu %{{.*}} : tensor<2x3xf32>
  %12 = cg.gelu %x : tensor<2x3xf32>
  // CHECK: cg.gelu %{{.*}} {approximate = #cg<gelu_approximation tanh>} : tensor<2x3xf32>
  %13 = cg.gelu %x {approximate = #cg<gelu_approximation tanh>} : tensor<2x3xf32>
  // CHECK: cg.not
  %14 = cg.not %b : tensor<2x3xi1>
  return
}

// CHECK-LABEL: func.func @binary_broadcast
func.func @binary_broadcast(%a: tensor<2x1x4xf32>, %b: tensor<3x1xf32>, %p: tensor<2x3x4xi1>, %q: tensor<4xi1>) {
  // CHECK: cg.add %{{.*}}, %{{.*}} : (tensor<2x1x4xf32>, tensor<3x1xf32>) -> tensor<2x3x4xf32>
  %0 = cg.add %a, %b : (tensor<2x1x4xf32>, tensor<3x1xf32>) -> tensor<2x3x4xf32>
  // CHECK: cg.sub
  %1 = cg.sub %a, %b : (tensor<2x1x4xf32>, tensor<3x1xf32>) -> tensor<2x3x4xf32>
  // CHECK: cg.mul
  %2 = cg.mul %a, %b : (tensor<2x1x4xf32>, tensor<3x1xf32>) -> tensor<2x3x4xf32>
  // CHECK: cg.div
  %3 = cg.div %a, %b : (tensor<2x1x4xf32>, tensor<3x1xf32>) -> tensor<2x3x4xf32>
  // CHECK: cg.pow
  %4 = cg.pow %a, %b : (tensor<2x1x4xf32>, tensor<3x1xf32>) -> tensor<2x3x4xf32>
  // CHECK: cg.max
  %5 = cg.max %a, %b : (tensor<2x1x4xf32>, tensor<3x1xf32>) -> tensor<2x3x4xf32>
  // CHECK: cg.min
  %6 = cg.min %a, %b : (tensor<2x1x4xf32>, tensor<3x1xf32>) -> tensor<2x3x4xf32>
  // CHECK: cg.and
  %7 = cg.and %p, %q : (tensor<2x3x4xi1>, tensor<4xi1>) -> tensor<2x3x4xi1>
  // CHECK: cg.or
  %8 = cg.or %p, %q : (tensor<2x3x4xi1>, tensor<4xi1>) -> tensor<2x3x4xi1>
  // CHECK: cg.cmp lt, %{{.*}}, %{{.*}} : (tensor<2x1x4xf32>, tensor<3x1xf32>) -> tensor<2x3x4xi1>
  %9 = cg.cmp lt, %a, %b : (tensor<2x1x4xf32>, tensor<3x1xf32>) -> tensor<2x3x4xi1>
  // CHECK: cg.where
  %10 = cg.where %p, %a, %b : (tensor<2x3x4xi1>, tensor<2x1x4xf32>, tensor<3x1xf32>) -> tensor<2x3x4xf32>
  // CHECK: cg.cast %{{.*}} : tensor<2x1x4xf32> to tensor<2x1x4xf16>
  %11 = cg.cast %a : tensor<2x1x4xf32> to tensor<2x1x4xf16>
  return
}

// CHECK-LABEL: func.func @normalization
func.func @normalization(%x: tensor<2x8x16xf32>, %g: tensor<16xf32>, %c: tensor<1x3x4x4xf32>, %s: tensor<3xf32>) {
  // CHECK: cg.softmax %{{.*}} {axis = 2 : i64}
  %0 = cg.softmax %x {axis = 2} : tensor<2x8x16xf32>
  // CHECK: cg.log_softmax %{{.*}} {axis = -1 : i64}
  %1 = cg.log_softmax %x {axis = -1} : tensor<2x8x16xf32>
  // CHECK: cg.layer_norm %{{.*}}, %{{.*}}, %{{.*}} {axis = 2 : i64, epsilon = 1.000000e-05 : f64}
  %2 = cg.layer_norm %x, %g, %g {axis = 2, epsilon = 1.0e-5} : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  // CHECK: cg.layer_norm %{{.*}}, %{{.*}} {axis
  %3 = cg.layer_norm %x, %g {axis = -1, epsilon = 1.0e-5} : (tensor<2x8x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  // CHECK: cg.rms_norm
  %4 = cg.rms_norm %x, %g {axis = 2, epsilon = 1.0e-6} : (tensor<2x8x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  // CHECK: cg.batch_norm
  %5 = cg.batch_norm %c, %s, %s, %s, %s {epsilon = 1.0e-5} : (tensor<1x3x4x4xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32>
  return
}

// CHECK-LABEL: func.func @contractions
func.func @contractions(%a: tensor<2x4x8xf32>, %w: tensor<8x16xf32>, %wt: tensor<16x8xf32>, %bias: tensor<16xf32>,
                        %v: tensor<8xf32>, %q: tensor<2x4x6x8xf32>, %k: tensor<2x4x10x8xf32>, %m: tensor<6x10xi1>) {
  // CHECK: cg.matmul %{{.*}}, %{{.*}} : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
  %0 = cg.matmul %a, %w : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
  // A 1-D right operand is a vector: the last dimension disappears.
  // CHECK: cg.matmul %{{.*}}, %{{.*}} : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4xf32>
  %1 = cg.matmul %a, %v : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4xf32>
  // CHECK: cg.linear %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x4x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<2x4x16xf32>
  %2 = cg.linear %a, %w, %bias : (tensor<2x4x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<2x4x16xf32>
  // CHECK: cg.linear %{{.*}}, %{{.*}} {transpose_weight}
  %3 = cg.linear %a, %wt {transpose_weight} : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32>
  // CHECK: cg.attention %{{.*}}, %{{.*}}, %{{.*}} {causal, scale = 1.250000e-01 : f64} : {{.*}} -> tensor<2x4x6x8xf32>
  %4 = cg.attention %q, %k, %k {causal, scale = 0.125 : f64} : (tensor<2x4x6x8xf32>, tensor<2x4x10x8xf32>, tensor<2x4x10x8xf32>) -> tensor<2x4x6x8xf32>
  // CHECK: cg.attention %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {scale
  %5 = cg.attention %q, %k, %k, %m {scale = 0.125 : f64} : (tensor<2x4x6x8xf32>, tensor<2x4x10x8xf32>, tensor<2x4x10x8xf32>, tensor<6x10xi1>) -> tensor<2x4x6x8xf32>
  return
}

// CHECK-LABEL: func.func @convolution
func.func @convolution(%x: tensor<1x3x32x32xf32>, %w: tensor<16x3x3x3xf32>, %b: tensor<16xf32>, %dw: tensor<3x1x3x3xf32>) {
  // CHECK: cg.conv2d {{.*}} -> tensor<1x16x16x16xf32>
  %0 = cg.conv2d %x, %w, %b {strides = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1} : (tensor<1x3x32x32xf32>, tensor<16x3x3x3xf32>, tensor<16xf32>) -> tensor<1x16x16x16xf32>
  // Depthwise: one group per channel.
  // CHECK: cg.conv2d {{.*}} -> tensor<1x3x30x30xf32>
  %1 = cg.conv2d %x, %dw {strides = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 3} : (tensor<1x3x32x32xf32>, tensor<3x1x3x3xf32>) -> tensor<1x3x30x30xf32>
  // CHECK: cg.max_pool2d {{.*}} -> tensor<1x3x16x16xf32>
  %2 = cg.max_pool2d %x {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>} : (tensor<1x3x32x32xf32>) -> tensor<1x3x16x16xf32>
  // CHECK: cg.avg_pool2d {{.*}}ceil_mode{{.*}} -> tensor<1x3x11x11xf32>
  %3 = cg.avg_pool2d %x {kernel = array<i64: 3, 3>, strides = array<i64: 3, 3>, padding = array<i64: 0, 0, 0, 0>, ceil_mode} : (tensor<1x3x32x32xf32>) -> tensor<1x3x11x11xf32>
  return
}

// The gradient ops of conv2d and max_pool2d state their result types.
// CHECK-LABEL: func.func @convolution_gradients
func.func @convolution_gradients(%x: tensor<1x3x32x32xf32>, %w: tensor<16x3x3x3xf32>, %g: tensor<1x16x16x16xf32>) {
  // CHECK: cg.conv2d_backward_input {{.*}} -> tensor<1x3x32x32xf32>
  %0 = cg.conv2d_backward_input %g, %w {strides = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1} : (tensor<1x16x16x16xf32>, tensor<16x3x3x3xf32>) -> tensor<1x3x32x32xf32>
  // CHECK: cg.conv2d_backward_weight {{.*}} -> tensor<16x3x3x3xf32>
  %1 = cg.conv2d_backward_weight %x, %g {strides = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1} : (tensor<1x3x32x32xf32>, tensor<1x16x16x16xf32>) -> tensor<16x3x3x3xf32>
  %p = cg.max_pool2d %x {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>} : (tensor<1x3x32x32xf32>) -> tensor<1x3x16x16xf32>
  // CHECK: cg.max_pool2d_backward {{.*}} -> tensor<1x3x32x32xf32>
  %2 = cg.max_pool2d_backward %x, %p {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>} : (tensor<1x3x32x32xf32>, tensor<1x3x16x16xf32>) -> tensor<1x3x32x32xf32>
  return
}

// CHECK-LABEL: func.func @reductions
func.func @reductions(%x: tensor<2x3x4xf32>) {
  // CHECK: cg.reduce_sum %{{.*}} {axes = array<i64: 1>} : (tensor<2x3x4xf32>) -> tensor<2x4xf32>
  %0 = cg.reduce_sum %x {axes = array<i64: 1>} : (tensor<2x3x4xf32>) -> tensor<2x4xf32>
  // CHECK: cg.reduce_mean %{{.*}} {axes = array<i64: -1>, keepdims} : (tensor<2x3x4xf32>) -> tensor<2x3x1xf32>
  %1 = cg.reduce_mean %x {axes = array<i64: -1>, keepdims} : (tensor<2x3x4xf32>) -> tensor<2x3x1xf32>
  // CHECK: cg.reduce_max
  %2 = cg.reduce_max %x {axes = array<i64: 0, 2>} : (tensor<2x3x4xf32>) -> tensor<3xf32>
  return
}

// CHECK-LABEL: func.func @data_movement
func.func @data_movement(%x: tensor<2x3x4xf32>, %table: tensor<100x8xf32>, %ids: tensor<2x5xi64>) {
  // CHECK: cg.reshape %{{.*}} : (tensor<2x3x4xf32>) -> tensor<6x4xf32>
  %0 = cg.reshape %x : (tensor<2x3x4xf32>) -> tensor<6x4xf32>
  // CHECK: cg.transpose %{{.*}} {permutation = array<i64: 2, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  %1 = cg.transpose %x {permutation = array<i64: 2, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  // CHECK: cg.slice {{.*}} -> tensor<2x2x2xf32>
  %2 = cg.slice %x {starts = array<i64: 0, 1, 0>, limits = array<i64: 2, 3, 4>, steps = array<i64: 1, 1, 2>} : (tensor<2x3x4xf32>) -> tensor<2x2x2xf32>
  // A negative step walks backwards; limit -1 runs through index 0.
  // CHECK: cg.slice {{.*}} -> tensor<2x3x4xf32>
  %3 = cg.slice %x {starts = array<i64: 0, 0, 3>, limits = array<i64: 2, 3, -1>, steps = array<i64: 1, 1, -1>} : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  // CHECK: cg.concat %{{.*}}, %{{.*}} {axis = 1 : i64} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x6x4xf32>
  %4 = cg.concat %x, %x {axis = 1} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x6x4xf32>
  // CHECK: cg.split %{{.*}} {axis = 2 : i64, sizes = array<i64: 1, 3>} : (tensor<2x3x4xf32>) -> (tensor<2x3x1xf32>, tensor<2x3x3xf32>)
  %5:2 = cg.split %x {axis = 2, sizes = array<i64: 1, 3>} : (tensor<2x3x4xf32>) -> (tensor<2x3x1xf32>, tensor<2x3x3xf32>)
  // CHECK: cg.gather %{{.*}}, %{{.*}} {axis = 0 : i64} : (tensor<100x8xf32>, tensor<2x5xi64>) -> tensor<2x5x8xf32>
  %6 = cg.gather %table, %ids {axis = 0} : (tensor<100x8xf32>, tensor<2x5xi64>) -> tensor<2x5x8xf32>
  // CHECK: cg.expand %{{.*}} : (tensor<2x3x4xf32>) -> tensor<5x2x3x4xf32>
  %7 = cg.expand %x : (tensor<2x3x4xf32>) -> tensor<5x2x3x4xf32>
  // CHECK: cg.trilu %{{.*}} {diagonal = 1 : i64, upper} : tensor<2x3x4xf32>
  %8 = cg.trilu %x {upper, diagonal = 1} : tensor<2x3x4xf32>
  // CHECK: cg.scatter_add_rows %{{.*}}, %{{.*}} : (tensor<10xi64>, tensor<10x8xf32>) -> tensor<100x8xf32>
  %ids10 = cg.reshape %ids : (tensor<2x5xi64>) -> tensor<10xi64>
  %rows = cg.reshape %6 : (tensor<2x5x8xf32>) -> tensor<10x8xf32>
  %9 = cg.scatter_add_rows %ids10, %rows : (tensor<10xi64>, tensor<10x8xf32>) -> tensor<100x8xf32>
  // CHECK: cg.topk %{{.*}} {axis = 2 : i64, k = 2 : i64, smallest} : (tensor<2x3x4xf32>) -> (tensor<2x3x2xf32>, tensor<2x3x2xi64>)
  %10:2 = cg.topk %x {k = 2, axis = 2, smallest} : (tensor<2x3x4xf32>) -> (tensor<2x3x2xf32>, tensor<2x3x2xi64>)
  return
}
