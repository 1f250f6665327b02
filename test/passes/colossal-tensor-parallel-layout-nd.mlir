// colossal-tensor-parallel-layout mode=2d|2.5d|3d: every linear layer as
// Colossal-AI's multi-dimensional tensor parallelism lays it out.
// RUN: colossal-opt %s --colossal-tensor-parallel-layout="tp=4 mode=2d" | FileCheck %s --check-prefix=TWOD
// RUN: colossal-opt %s --colossal-tensor-parallel-layout="dp=2 tp=8 mode=2.5d depth=2" | FileCheck %s --check-prefix=TESS
// RUN: colossal-opt %s --colossal-tensor-parallel-layout="tp=8 mode=3d" | FileCheck %s --check-prefix=THREED
// RUN: colossal-opt %s --colossal-tensor-parallel-layout="tp=4 mode=1d" | FileCheck %s --check-prefix=ONED

// 2d (SUMMA, all-gather form): activations [batch over tpr, hidden over
// tpc], weights [K over tpr, N over tpc], the embedding table too. Each
// linear layer: its input pinned (and its gradient), gathered along the
// columns for the local matmul and again in the backward (cg.regather);
// its weight gathered along the rows, the gradient reduce-scattered back
// onto the stored layout; the product handed on as the input was laid out.
// A norm's scale and bias split with the hidden dimension.
// TWOD: cg.mesh @mesh = <["tpr" = 2, "tpc" = 2]>
// TWOD: cg.param "emb" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}["tpr"], ["tpc"]]>]
// TWOD: %[[L:[0-9]+]] = cg.gather
// TWOD-NEXT: cg.shard %[[L]] to <@mesh, {{\[}}["tpr"], [], ["tpc"]]> {grad_sharding = #cg.sharding<@mesh, {{\[}}["tpr"], [], ["tpc"]]>}
// TWOD: cg.param "ln.scale" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}["tpc"]]>]
// TWOD: cg.param "fc1" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}["tpr"], ["tpc"]]>]
// TWOD: cg.param "b1" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}["tpc"]]>]
// TWOD: %[[IN:[0-9]+]] = cg.shard %{{[0-9]+}} to <@mesh, {{\[}}["tpr"], [], ["tpc"]]> {grad_sharding
// TWOD-NEXT: %[[X:[0-9]+]] = cg.shard %[[IN]] to <@mesh, {{\[}}["tpr"]]> {cg.regather}
// TWOD-NEXT: %[[W:[0-9]+]] = cg.shard %{{[0-9]+}} to <@mesh, {{\[}}[], ["tpc"]]> {cg.regather, cg.weight = "fc1", grad_sharding = #cg.sharding<@mesh, {{\[}}["tpr"], ["tpc"]]>}
// TWOD-NEXT: %[[Y:[0-9]+]] = cg.matmul %[[X]], %[[W]]
// TWOD-NEXT: cg.shard %[[Y]] to <@mesh, {{\[}}["tpr"], [], ["tpc"]]> {grad_sharding = #cg.sharding<@mesh, {{\[}}["tpr"], [], ["tpc"]]>}

// 2.5d (Tesseract, q=2, d=2) after dp: the batch also over tpd; the
// weights as in 2d, replicated over tpd.
// TESS: cg.mesh @mesh = <["dp" = 2, "tpd" = 2, "tpr" = 2, "tpc" = 2]>
// TESS: cg.param "fc1" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}["tpr"], ["tpc"]]>]
// TESS: cg.shard %{{[0-9]+}} to <@mesh, {{\[}}["dp", "tpd", "tpr"], [], ["tpc"]]>

// 3d (q=2): layers alternate between [batch over (tpx, tpy), hidden over
// tpz] and [batch over (tpx, tpz), hidden over tpy]; a weight [K, N] is
// stored K over (tpz, tpx) and N over tpy (then tpy, tpx and tpz). The
// lhs is gathered over tpy, the weight over tpx, the product reduce-
// scattered onto the batch over tpz.
// THREED: cg.mesh @mesh = <["tpx" = 2, "tpy" = 2, "tpz" = 2]>
// THREED: cg.param "fc1" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}["tpz", "tpx"], ["tpy"]]>]
// THREED: cg.param "fc2" {{.*}}cg.sharding = [#cg.sharding<@mesh, {{\[}}["tpy", "tpx"], ["tpz"]]>]
// THREED: %[[IN:[0-9]+]] = cg.shard %{{[0-9]+}} to <@mesh, {{\[}}["tpx", "tpy"], [], ["tpz"]]>
// THREED-NEXT: %[[X:[0-9]+]] = cg.shard %[[IN]] to <@mesh, {{\[}}["tpx"], [], ["tpz"]]> {cg.regather}
// THREED-NEXT: %[[W:[0-9]+]] = cg.shard %{{[0-9]+}} to <@mesh, {{\[}}["tpz"], ["tpy"]]> {cg.regather, cg.weight = "fc1"
// THREED-NEXT: %[[Y:[0-9]+]] = cg.matmul %[[X]], %[[W]]
// THREED-NEXT: cg.shard %[[Y]] to <@mesh, {{\[}}["tpx", "tpz"], [], ["tpy"]]> {grad_sharding = #cg.sharding<@mesh, {{\[}}["tpx"], [], ["tpy"]]>}

// mode=1d is Megatron's layout (the default).
// ONED: cg.mesh @mesh = <["tp" = 4]>
// ONED-NOT: grad_sharding

// Errors: each names what the mode needs.
// RUN: not colossal-opt %s --colossal-tensor-parallel-layout="tp=8 mode=2d" 2>&1 | FileCheck %s --check-prefix=SQUARE
// SQUARE: mode=2d needs tp = q^2 with q >= 2; got tp=8
// RUN: not colossal-opt %s --colossal-tensor-parallel-layout="tp=4 mode=2.5d depth=2" 2>&1 | FileCheck %s --check-prefix=DEPTH
// DEPTH: mode=2.5d needs tp = depth x q^2 with q >= 2 and depth >= 2; got tp=4 depth=2
// RUN: not colossal-opt %s --colossal-tensor-parallel-layout="tp=4 mode=3d" 2>&1 | FileCheck %s --check-prefix=CUBE
// CUBE: mode=3d needs tp = q^3 with q >= 2; got tp=4
// RUN: not colossal-opt %s --colossal-tensor-parallel-layout="tp=4 mode=4d" 2>&1 | FileCheck %s --check-prefix=MODE
// MODE: mode=4d is not known; use 1d, 2d, 2.5d or 3d
// RUN: not colossal-opt %s --colossal-tensor-parallel-layout="tp=4 mode=2d sequence=true" 2>&1 | FileCheck %s --check-prefix=SEQ
// SEQ: sequence applies to mode=1d only
// RUN: not colossal-opt %s --colossal-tensor-parallel-layout="dp=8 tp=4 mode=2d" 2>&1 | FileCheck %s --check-prefix=BATCH
// BATCH: tp-mode=2d splits the leading (batch) dimension of every linear layer's input over 16 devices (dp and the tensor-parallel row axes), but this matmul's input is 'tensor<8x4x8xf32>'; bind a batch that is a multiple of 16
func.func @block(%ids: tensor<8x4xi64>) -> tensor<8x4x8xf32> {
  %emb = cg.param "emb" from(dense<1.0> : tensor<16x8xf32>) : tensor<16x8xf32>
  %x0 = cg.gather %emb, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<8x4xi64>) -> tensor<8x4x8xf32>
  %s = cg.param "ln.scale" from(dense<1.0> : tensor<8xf32>) : tensor<8xf32>
  %bb = cg.param "ln.bias" from(dense<0.0> : tensor<8xf32>) : tensor<8xf32>
  %x = cg.layer_norm %x0, %s, %bb {axis = 2 : i64, epsilon = 1.0e-5 : f64} : (tensor<8x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<8x4x8xf32>
  %fc1 = cg.param "fc1" from(dense<1.0> : tensor<8x16xf32>) : tensor<8x16xf32>
  %b1 = cg.param "b1" from(dense<1.0> : tensor<16xf32>) : tensor<16xf32>
  %fc2 = cg.param "fc2" from(dense<1.0> : tensor<16x8xf32>) : tensor<16x8xf32>
  %h = cg.matmul %x, %fc1 : (tensor<8x4x8xf32>, tensor<8x16xf32>) -> tensor<8x4x16xf32>
  %hb = cg.add %h, %b1 : (tensor<8x4x16xf32>, tensor<16xf32>) -> tensor<8x4x16xf32>
  %g = cg.gelu %hb : tensor<8x4x16xf32>
  %o = cg.matmul %g, %fc2 : (tensor<8x4x16xf32>, tensor<16x8xf32>) -> tensor<8x4x8xf32>
  %y = cg.add %x0, %o : (tensor<8x4x8xf32>, tensor<8x4x8xf32>) -> tensor<8x4x8xf32>
  return %y : tensor<8x4x8xf32>
}
