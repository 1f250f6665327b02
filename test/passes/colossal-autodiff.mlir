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

func.func @no_rule(%x: tensor<4xf32>) -> tensor<f32> {
  %w = cg.param "w" from(dense<0.5> : tensor<4xf32>) : tensor<4xf32>
  %o = cg.mul %x, %w : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  // expected-error @+1 {{'cg.reduce_max' op has no gradient rule yet}}
  %l = cg.reduce_max %o {axes = array<i64: 0>} : (tensor<4xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// expected-error @+1 {{no trainable parameter has a differentiable path to the loss (1 floating-point parameter(s)}}
func.func @no_path(%x: tensor<4xf32>) -> tensor<f32> {
  %w = cg.param "w" from(dense<0.5> : tensor<4xf32>) : tensor<4xf32>
  %l = cg.reduce_sum %x {axes = array<i64: 0>} : (tensor<4xf32>) -> tensor<f32>
  return %l : tensor<f32>
}
