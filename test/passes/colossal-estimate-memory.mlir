// RUN: colossal-opt %s --colossal-estimate-memory | FileCheck %s
// RUN: colossal-opt %s --colossal-estimate-memory="in-place=false alignment=16" | FileCheck %s --check-prefix=NOINPLACE
// RUN: colossal-opt %s --colossal-estimate-memory=report 2>&1 >/dev/null | FileCheck %s --check-prefix=REPORT

// The buffers of @step added up op by op: w (1024 bytes) and the constant
// (64 aligned) for the whole run, the input (256), and at the peak (the
// add) the relu result, kept for the output, and the add's own 256 bytes.
// The matmul result is overwritten in place by the relu.
// CHECK: cg.memory_estimate = {backward_buffers = 0 : i64, collective_buffers = 0 : i64, constants = 64 : i64, forward_activations = 512 : i64, inputs = 256 : i64, optimizer_state = 0 : i64, peak_at = "op 5 (cg.add at {{.*}})", peak_bytes = 1856 : i64, weights = 1024 : i64}
// Without in-place writes the mul needs its own buffer beside the add's
// and the relu's (16-byte alignment: the constant takes 16): the same
// 2064 bytes colossal-plan-memory's arena takes with these options.
// NOINPLACE: constants = 16 : i64, forward_activations = 768 : i64
// NOINPLACE-SAME: peak_at = "op 6 (cg.mul at {{.*}})", peak_bytes = 2064 : i64
// REPORT: remark: peak 1856 bytes at op 5 (cg.add at {{.*}}): weights 1024, optimizer state 0, constants 64, inputs 256, forward activations 512, backward buffers 0, collective buffers 0
func.func @step(%x: tensor<4x16xf32>) -> (tensor<4x16xf32>, tensor<64xf32>) {
  %w = cg.param "w" from(dense<1.0> : tensor<16x16xf32>) : tensor<16x16xf32>
  %c = cg.constant dense<2.0> : tensor<f32>
  %a = cg.matmul %x, %w : (tensor<4x16xf32>, tensor<16x16xf32>) -> tensor<4x16xf32>
  %b = cg.relu %a : tensor<4x16xf32>
  %r = cg.reshape %b : (tensor<4x16xf32>) -> tensor<64xf32>
  %d = cg.add %b, %b : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %e = cg.mul %d, %c : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
  return %e, %r : tensor<4x16xf32>, tensor<64xf32>
}
