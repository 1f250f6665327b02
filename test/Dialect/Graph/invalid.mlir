// RUN: colossal-opt %s --split-input-file --verify-diagnostics

// Shape and element-type errors of graph ops are diagnosed by the verifier.

func.func @broadcast_mismatch(%a: tensor<2x3xf32>, %b: tensor<4xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{operand shapes [2, 3] and [4] do not broadcast}}
  %0 = cg.add %a, %b : (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @wrong_result_shape(%a: tensor<2x3xf32>, %b: tensor<3xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{'cg.add' op inferred type(s) 'tensor<2x3xf32>' are incompatible with return type(s) of operation 'tensor<3x3xf32>'}}
  %0 = cg.add %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<3x3xf32>
  return
}

// -----

func.func @mixed_element_types(%a: tensor<2xf32>, %b: tensor<2xf16>) {
  // expected-error @+1 {{requires the same element type for all operands}}
  %0 = cg.mul %a, %b : (tensor<2xf32>, tensor<2xf16>) -> tensor<2xf32>
  return
}

// -----

func.func @unsupported_element_type(%a: tensor<2xf80>) {
  // expected-error @+1 {{must be statically shaped tensor of 32-bit float or 16-bit float or bfloat16 type or 64-bit float}}
  %0 = cg.exp %a : tensor<2xf80>
  return
}

// -----

func.func @dynamic_shape(%a: tensor<?x3xf32>) {
  // expected-error @+1 {{must be statically shaped tensor}}
  %0 = cg.relu %a : tensor<?x3xf32>
  return
}

// -----

func.func @matmul_mismatch(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{matmul operands [2, 3] and [4, 5] are incompatible}}
  %0 = cg.matmul %a, %b : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x5xf32>
  return
}

// -----

func.func @linear_mismatch(%a: tensor<2x3xf32>, %w: tensor<4x5xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{linear input [2, 3] does not match weight [4, 5]}}
  %0 = cg.linear %a, %w : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x5xf32>
  return
}

// -----

func.func @reshape_count(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{cannot reshape [2, 3] (6 elements) to [4, 2] (8 elements)}}
  %0 = cg.reshape %a : (tensor<2x3xf32>) -> tensor<4x2xf32>
  return
}

// -----

func.func @bad_permutation(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{transpose permutation [0, 0] is not a permutation}}
  %0 = cg.transpose %a {permutation = array<i64: 0, 0>} : (tensor<2x3xf32>) -> tensor<2x2xf32>
  return
}

// -----

func.func @softmax_axis(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{axis 2 is out of range for rank 2}}
  %0 = cg.softmax %a {axis = 2} : tensor<2x3xf32>
  return
}

// -----

func.func @layer_norm_scale(%a: tensor<2x3xf32>, %g: tensor<4xf32>) {
  // expected-error @+1 {{scale has shape [4] but the normalized dimensions are [3]}}
  %0 = cg.layer_norm %a, %g {axis = 1, epsilon = 1.0e-5} : (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @negative_epsilon(%a: tensor<2x3xf32>, %g: tensor<3xf32>) {
  // expected-error @+1 {{epsilon must not be negative}}
  %0 = cg.rms_norm %a, %g {axis = 1, epsilon = -1.0} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @batch_norm_channels(%x: tensor<1x3x4x4xf32>, %s: tensor<4xf32>) {
  // expected-error @+1 {{scale must have shape [3] (the channel count), got [4]}}
  %0 = cg.batch_norm %x, %s, %s, %s, %s {epsilon = 1.0e-5} : (tensor<1x3x4x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x3x4x4xf32>
  return
}

// -----

func.func @conv_channels(%x: tensor<1x3x8x8xf32>, %w: tensor<4x2x3x3xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{conv2d input [1, 3, 8, 8] does not match weight [4, 2, 3, 3] with 1 group(s)}}
  %0 = cg.conv2d %x, %w {strides = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1} : (tensor<1x3x8x8xf32>, tensor<4x2x3x3xf32>) -> tensor<1x4x6x6xf32>
  return
}

// -----

// A stride-1 convolution of an 8x8 input gives 6x6, not 5x5.
func.func @conv_grad_shape(%g: tensor<1x4x5x5xf32>, %w: tensor<4x3x3x3xf32>) {
  // expected-error @+1 {{gradient shape [1, 4, 5, 5] is not conv2d's result shape [1, 4, 6, 6]}}
  %0 = cg.conv2d_backward_input %g, %w {strides = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1} : (tensor<1x4x5x5xf32>, tensor<4x3x3x3xf32>) -> tensor<1x3x8x8xf32>
  return
}

// -----

func.func @max_pool_grad_shape(%x: tensor<1x3x8x8xf32>, %g: tensor<1x3x3x3xf32>) {
  // expected-error @+1 {{gradient type 'tensor<1x3x3x3xf32>' is not max_pool2d's result type 'tensor<1x3x4x4xf32>'}}
  %0 = cg.max_pool2d_backward %x, %g {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, padding = array<i64: 0, 0, 0, 0>} : (tensor<1x3x8x8xf32>, tensor<1x3x3x3xf32>) -> tensor<1x3x8x8xf32>
  return
}

// -----

func.func @pool_window(%x: tensor<1x3x2x2xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{max_pool2d window does not fit the input [1, 3, 2, 2]}}
  %0 = cg.max_pool2d %x {kernel = array<i64: 3, 3>, strides = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>} : (tensor<1x3x2x2xf32>) -> tensor<1x3x1x1xf32>
  return
}

// -----

func.func @reduce_axis(%x: tensor<2x3xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{reduction axis -1 is listed twice}}
  %0 = cg.reduce_sum %x {axes = array<i64: 1, -1>} : (tensor<2x3xf32>) -> tensor<2xf32>
  return
}

// -----

func.func @slice_bounds(%x: tensor<4xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{slice bounds start 0, limit 5, step 1 are invalid for dimension 0 of size 4}}
  %0 = cg.slice %x {starts = array<i64: 0>, limits = array<i64: 5>, steps = array<i64: 1>} : (tensor<4xf32>) -> tensor<5xf32>
  return
}

// -----

func.func @concat_mismatch(%a: tensor<2x3xf32>, %b: tensor<3x3xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{concat inputs [2, 3] and [3, 3] differ outside the axis}}
  %0 = cg.concat %a, %b {axis = 1} : (tensor<2x3xf32>, tensor<3x3xf32>) -> tensor<2x6xf32>
  return
}

// -----

func.func @split_sizes(%a: tensor<2x6xf32>) {
  // expected-error @+1 {{split sizes add up to 5 but dimension 1 has size 6}}
  %0:2 = cg.split %a {axis = 1, sizes = array<i64: 2, 3>} : (tensor<2x6xf32>) -> (tensor<2x2xf32>, tensor<2x3xf32>)
  return
}

// -----

func.func @gather_indices(%t: tensor<10x4xf32>, %i: tensor<3xf32>) {
  // expected-error @+1 {{must be statically shaped tensor of 64-bit signless integer or 32-bit signless integer values}}
  %0 = cg.gather %t, %i {axis = 0} : (tensor<10x4xf32>, tensor<3xf32>) -> tensor<3x4xf32>
  return
}

// -----

func.func @expand_incompatible(%a: tensor<3xf32>) {
  // expected-error @+1 {{cannot broadcast [3] to [2, 4]}}
  %0 = cg.expand %a : (tensor<3xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @attention_head_size(%q: tensor<2x4x8xf32>, %k: tensor<2x4x6xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{attention query [2, 4, 8] and key [2, 4, 6] differ in head size}}
  %0 = cg.attention %q, %k, %k {scale = 1.0 : f64} : (tensor<2x4x8xf32>, tensor<2x4x6xf32>, tensor<2x4x6xf32>) -> tensor<2x4x6xf32>
  return
}

// -----

func.func @attention_mask(%q: tensor<2x4x8xf32>, %m: tensor<3x4xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{attention mask [3, 4] does not broadcast to the scores [2, 4, 4]}}
  %0 = cg.attention %q, %q, %q, %m {scale = 1.0 : f64} : (tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<3x4xf32>) -> tensor<2x4x8xf32>
  return
}

// -----

func.func @param_external_length() {
  // expected-error @+1 {{external data holds 100 bytes but 'tensor<4x8xf32>' needs 128}}
  %0 = cg.param "w" from(#cg.external<"w.data", offset = 0, length = 100>) : tensor<4x8xf32>
  return
}

// -----

func.func @param_inline_type() {
  // expected-error @+1 {{inline value of type 'tensor<2xf32>' does not match the result type 'tensor<3xf32>'}}
  %0 = cg.param "w" from(dense<1.0> : tensor<2xf32>) : tensor<3xf32>
  return
}

// -----

func.func @param_name() {
  // expected-error @+1 {{needs a non-empty name}}
  %0 = cg.param "" : tensor<3xf32>
  return
}

// -----

func.func @topk_k(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{k = 4 is not between 0 and the axis' size 3}}
  %0:2 = cg.topk %a {k = 4, axis = 1} : (tensor<2x3xf32>) -> (tensor<2x4xf32>, tensor<2x4xi64>)
  return
}

// -----

func.func @topk_shape(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{values type 'tensor<2x3xf32>' is not [2, 2] of the input's element type}}
  %0:2 = cg.topk %a {k = 2, axis = 1} : (tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x2xi64>)
  return
}

// -----

func.func @trilu_rank(%a: tensor<3xf32>) {
  // expected-error @+1 {{needs a tensor of rank >= 2}}
  %0 = cg.trilu %a : tensor<3xf32>
  return
}

// -----

func.func @scatter_add_rows_width(%i: tensor<4xi64>, %u: tensor<4x3xf32>) {
  // expected-error @+1 {{disagree (indices [n], updates [n, width], result [rows, width])}}
  %0 = cg.scatter_add_rows %i, %u : (tensor<4xi64>, tensor<4x3xf32>) -> tensor<10x2xf32>
  return
}
