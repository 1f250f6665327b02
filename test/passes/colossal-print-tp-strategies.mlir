// RUN: colossal-opt %s --colossal-print-tp-strategies=tp=4 -o /dev/null | FileCheck %s
// RUN: colossal-opt %s --colossal-print-tp-strategies=tp=3 -o /dev/null | FileCheck %s --check-prefix=TP3

// What ops declare through TensorParallelOpInterface over 4 devices.
func.func @block(%x: tensor<2x8x16xf32>, %q: tensor<2x4x8x4xf32>, %ids: tensor<2x8xi64>) {
  %w = cg.param "w" : tensor<16x32xf32>
  %b = cg.param "b" : tensor<32xf32>
  %t = cg.param "table" : tensor<100x16xf32>
  // A weight GEMM: column (weight split on its output, bias too), row
  // (input split on the contracted dimension, result a pending sum), or rows
// (dimension 0 has 2 rows: too few for 4 devices).
  // CHECK: cg.linear #0: replicated(-,-,- -> -) column(-,d1,d0 -> d2) row(d2,d0,- -> partial) batch1(d1,-,- -> d1)
  %y = cg.linear %x, %w, %b : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>) -> tensor<2x8x32xf32>
  // Elementwise: any dimension that divides (broadcast operands stay whole).
  // CHECK: cg.add #1: replicated(-,- -> -) split1(d1,- -> d1) split2(d2,d0 -> d2)
  %z = cg.add %y, %b : (tensor<2x8x32xf32>, tensor<32xf32>) -> tensor<2x8x32xf32>
  // Attention: heads (dimension 1 here).
  // CHECK: cg.attention #2: replicated(-,-,- -> -) heads(d1,d1,d1 -> d1)
  %a = cg.attention %q, %q, %q {causal, scale = 0.5 : f64} : (tensor<2x4x8x4xf32>, tensor<2x4x8x4xf32>, tensor<2x4x8x4xf32>) -> tensor<2x4x8x4xf32>
  // Softmax never splits its axis.
  // CHECK: cg.softmax #3: replicated(- -> -) split1(d1 -> d1) split2(d2 -> d2)
  %s = cg.softmax %y {axis = 0} : tensor<2x8x32xf32>
  // Embedding: vocabulary-parallel (a pending sum) or split tokens.
  // CHECK: cg.gather #4: replicated(-,- -> -) vocab(d0,- -> partial) split1(-,d1 -> d1)
  %e = cg.gather %t, %ids {axis = 0} : (tensor<100x16xf32>, tensor<2x8xi64>) -> tensor<2x8x16xf32>
  // A reshape maps the split of h onto the heads dimension.
  // CHECK: cg.reshape #5: replicated(- -> -) split1(d1 -> d1) split2(d2 -> d2)
  %r = cg.reshape %y : (tensor<2x8x32xf32>) -> tensor<2x8x4x8xf32>
  // Transposes permute the split.
  // CHECK: cg.transpose #6: replicated(- -> -) split1(d2 -> d1) split2(d1 -> d2) split3(d3 -> d3)
  %p = cg.transpose %r {permutation = array<i64: 0, 2, 1, 3>} : (tensor<2x8x4x8xf32>) -> tensor<2x4x8x8xf32>
  // A reduced dimension split leaves a pending sum.
  // CHECK: cg.reduce_sum #7: replicated(- -> -) split1(d1 -> d0) reduce2(d2 -> partial)
  %u = cg.reduce_sum %y {axes = array<i64: 0, 2>} : (tensor<2x8x32xf32>) -> tensor<8xf32>
  return
}
// With 3 devices nothing divides: replicated only.
// TP3: cg.linear #0: replicated(-,-,- -> -){{$}}
