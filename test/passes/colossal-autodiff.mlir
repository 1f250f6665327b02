// RUN: colossal-opt %s --split-input-file --verify-diagnostics --colossal-autodiff | FileCheck %s

// One gradient result per float parameter, named grad:<param>, after the
// loss; the bias gradient reduces the broadcast batch dimension; a parameter
// with no path to the loss gets zeros.
// CHECK-LABEL: func.func @linear_loss
// CHECK-SAME: -> (tensor<f32>, tensor<3x2xf32> {cg.name = "grad:w"}, tensor<2xf32> {cg.name = "grad:b"}, tensor<5xf32> {cg.name = "grad:unused"})
// CHECK: %[[R:.*]] = cg.reduce_sum %{{.*}} {axes = array<i64: 0>} : (tensor<4x2xf32>) -> tensor<2xf32>
// CHECK: %[[GB:.*]] = cg.reshape %[[R]] : (tensor<2xf32>) -> tensor<2xf32>
// CHECK: %[[T:.*]] = cg.transpose %arg0 {permutation = array<i64: 1, 0>}
// CHECK: %[[GW:.*]] = cg.matmul %[[T]], %{{.*}} : (tensor<3x4xf32>, tensor<4x2xf32>) -> tensor<3x2xf32>
// CHECK: %[[Z:.*]] = cg.expand %{{.*}} : (tensor<f32>) -> tensor<5xf32>
// CHECK: return %{{.*}}, %[[GW]], %[[GB]], %[[Z]]
func.func @linear_loss(%x: tensor<4x3xf32>) -> tensor<f32> {
  %w = cg.param "w" from(dense<0.5> : tensor<3x2xf32>) : tensor<3x2xf32>
  %b = cg.param "b" from(dense<0.1> : tensor<2xf32>) : tensor<2xf32>
  %u = cg.param "unused" from(dense<0.0> : tensor<5xf32>) : tensor<5xf32>
  %h = cg.matmul %x, %w : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
  %o = cg.add %h, %b : (tensor<4x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
  %l = cg.reduce_sum %o {axes = array<i64: 0, 1>} : (tensor<4x2xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// expected-error @+1 {{the first result must be a scalar floating-point loss}}
func.func @not_scalar(%x: tensor<4xf32>) -> tensor<4xf32> {
  %w = cg.param "w" from(dense<0.5> : tensor<4xf32>) : tensor<4xf32>
  %o = cg.mul %x, %w : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %o : tensor<4xf32>
}

// -----

func.func @no_rule(%x: tensor<1x1x4x4xf32>) -> tensor<f32> {
  %w = cg.param "w" from(dense<0.5> : tensor<1x1x2x2xf32>) : tensor<1x1x2x2xf32>
  // Most gradient ops are not differentiated again.
  // expected-error @+1 {{'cg.max_pool2d_backward' op has no gradient rule yet}}
  %s = cg.max_pool2d_backward %x, %w {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, padding = array<i64: 0, 0, 0, 0>} : (tensor<1x1x4x4xf32>, tensor<1x1x2x2xf32>) -> tensor<1x1x4x4xf32>
  %l = cg.reduce_sum %s {axes = array<i64: 0, 1, 2, 3>} : (tensor<1x1x4x4xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// conv2d differentiates into the two conv2d gradient ops with conv2d's
// attributes (its bias into a sum over batch and space), max_pool2d into
// max_pool2d_backward, batch_norm into per-channel sums; its running mean
// and variance get zero gradients.
// CHECK-LABEL: func.func @cnn
// CHECK-DAG: cg.max_pool2d_backward %{{.*}}, %{{.*}} {kernel = array<i64: 3, 3>, padding = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>} : (tensor<1x2x4x4xf32>, tensor<1x2x2x2xf32>) -> tensor<1x2x4x4xf32>
// CHECK-DAG: cg.conv2d_backward_input %{{.*}}, %{{.*}} {dilations = array<i64: 1, 1>, groups = 1 : i64, padding = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>} : (tensor<1x2x4x4xf32>, tensor<2x3x3x3xf32>) -> tensor<1x3x8x8xf32>
// CHECK-DAG: cg.conv2d_backward_weight %arg0, %{{.*}} {dilations = array<i64: 1, 1>, groups = 1 : i64, padding = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>} : (tensor<1x3x8x8xf32>, tensor<1x2x4x4xf32>) -> tensor<2x3x3x3xf32>
// CHECK-DAG: cg.reduce_sum %{{.*}} {axes = array<i64: 0, 2, 3>} : (tensor<1x2x4x4xf32>) -> tensor<2xf32>
// CHECK: return
func.func @cnn(%x: tensor<1x3x8x8xf32>) -> tensor<f32> {
  %w = cg.param "w" from(dense<0.5> : tensor<2x3x3x3xf32>) : tensor<2x3x3x3xf32>
  %b = cg.param "b" from(dense<0.1> : tensor<2xf32>) : tensor<2xf32>
  %s = cg.param "s" from(dense<1.0> : tensor<2xf32>) : tensor<2xf32>
  %mean = cg.param "mean" from(dense<0.0> : tensor<2xf32>) : tensor<2xf32>
  %var = cg.param "var" from(dense<1.0> : tensor<2xf32>) : tensor<2xf32>
  %c = cg.conv2d %x, %w, %b {strides = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1} : (tensor<1x3x8x8xf32>, tensor<2x3x3x3xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %bn = cg.batch_norm %c, %s, %b, %mean, %var {epsilon = 1.0e-5} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %mp = cg.max_pool2d %bn {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x2x2xf32>
  %l = cg.reduce_sum %mp {axes = array<i64: 0, 1, 2, 3>} : (tensor<1x2x2x2xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// expected-error @+1 {{no trainable parameter has a differentiable path to the loss (1 floating-point parameter(s)}}
func.func @no_path(%x: tensor<4xf32>) -> tensor<f32> {
  %w = cg.param "w" from(dense<0.5> : tensor<4xf32>) : tensor<4xf32>
  %l = cg.reduce_sum %x {axes = array<i64: 0>} : (tensor<4xf32>) -> tensor<f32>
  return %l : tensor<f32>
}
