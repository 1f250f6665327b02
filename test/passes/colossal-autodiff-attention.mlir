// RUN: colossal-opt %s --split-input-file --colossal-autodiff --canonicalize | FileCheck %s --check-prefix=DECOMPOSED
// RUN: colossal-opt %s --split-input-file --colossal-autodiff="attention=fused" --canonicalize | FileCheck %s --check-prefix=FUSED
// RUN: not colossal-opt %s --split-input-file --colossal-autodiff="attention=flash" 2>&1 | FileCheck %s --check-prefix=BAD

// attention=decomposed (the default) recomputes the probabilities with a
// softmax and differentiates through matmuls; attention=fused makes one
// cg.attention_backward of q, k, v, the attention's result and its
// gradient, and nothing else of the rule survives.
// DECOMPOSED-LABEL: func.func @causal
// DECOMPOSED-NOT: cg.attention_backward
// DECOMPOSED: cg.softmax
// FUSED-LABEL: func.func @causal
// FUSED: %[[O:.*]] = cg.attention %[[Q:.*]], %[[K:.*]], %[[V:[^ ]*]] {causal
// FUSED-NOT: cg.softmax
// FUSED: cg.attention_backward %[[Q]], %[[K]], %[[V]], %[[O]], %{{.*}} {causal, scale = 2.500000e-01 : f64} : (tensor<2x8x4xf32>, tensor<2x8x4xf32>, tensor<2x8x4xf32>, tensor<2x8x4xf32>, tensor<2x8x4xf32>) -> (tensor<2x8x4xf32>, tensor<2x8x4xf32>, tensor<2x8x4xf32>)
// FUSED-NOT: cg.softmax
// BAD: attention=flash is not known; use decomposed or fused
func.func @causal(%x: tensor<2x8x4xf32>) -> tensor<f32> {
  %wq = cg.param "wq" from(dense<0.5> : tensor<4x4xf32>) : tensor<4x4xf32>
  %wk = cg.param "wk" from(dense<0.25> : tensor<4x4xf32>) : tensor<4x4xf32>
  %wv = cg.param "wv" from(dense<0.125> : tensor<4x4xf32>) : tensor<4x4xf32>
  %q = cg.matmul %x, %wq : (tensor<2x8x4xf32>, tensor<4x4xf32>) -> tensor<2x8x4xf32>
  %k = cg.matmul %x, %wk : (tensor<2x8x4xf32>, tensor<4x4xf32>) -> tensor<2x8x4xf32>
  %v = cg.matmul %x, %wv : (tensor<2x8x4xf32>, tensor<4x4xf32>) -> tensor<2x8x4xf32>
  %a = cg.attention %q, %k, %v {scale = 0.25 : f64, causal} : (tensor<2x8x4xf32>, tensor<2x8x4xf32>, tensor<2x8x4xf32>) -> tensor<2x8x4xf32>
  %l = cg.reduce_sum %a {axes = array<i64: 0, 1, 2>} : (tensor<2x8x4xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// A float mask that is a parameter still gets its gradient (built as the
// decomposed rule builds it) beside the fused q/k/v gradients.
// FUSED-LABEL: func.func @learned_mask
// FUSED-SAME: {cg.name = "grad:bias"}
// FUSED: cg.attention_backward
// FUSED: cg.softmax
func.func @learned_mask(%q: tensor<2x8x4xf32>) -> tensor<f32> {
  %bias = cg.param "bias" from(dense<0.0> : tensor<8x8xf32>) : tensor<8x8xf32>
  %wv = cg.param "wv" from(dense<0.125> : tensor<4x4xf32>) : tensor<4x4xf32>
  %v = cg.matmul %q, %wv : (tensor<2x8x4xf32>, tensor<4x4xf32>) -> tensor<2x8x4xf32>
  %a = cg.attention %q, %q, %v, %bias {scale = 0.5 : f64} : (tensor<2x8x4xf32>, tensor<2x8x4xf32>, tensor<2x8x4xf32>, tensor<8x8xf32>) -> tensor<2x8x4xf32>
  %l = cg.reduce_sum %a {axes = array<i64: 0, 1, 2>} : (tensor<2x8x4xf32>) -> tensor<f32>
  return %l : tensor<f32>
}
