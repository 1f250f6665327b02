// RUN: colossal-opt %s --split-input-file --verify-diagnostics

cg.mesh @mesh = #cg.mesh<["dp" = 2, "tp" = 4]>
func.func @unknown_axis(%x: tensor<8xf32>) {
  // expected-error @+1 {{mesh axis "pp" does not exist in @mesh}}
  %0 = cgd.all_reduce %x on @mesh ["pp"] sum : tensor<8xf32>
  return
}

// -----

func.func @no_mesh(%x: tensor<8xf32>) {
  // expected-error @+1 {{refers to @nowhere, which is not a cg.mesh}}
  %0 = cgd.all_reduce %x on @nowhere ["tp"] sum : tensor<8xf32>
  return
}

// -----

cg.mesh @mesh = #cg.mesh<["dp" = 2, "tp" = 4]>
func.func @gather_shape(%x: tensor<8x16xf32>) {
  // expected-error @+1 {{result dimension 1 should be 64, got 32}}
  %0 = cgd.all_gather %x on @mesh ["tp"] {dim = 1} : (tensor<8x16xf32>) -> tensor<8x32xf32>
  return
}

// -----

cg.mesh @mesh = #cg.mesh<["dp" = 2, "tp" = 4]>
func.func @scatter_indivisible(%x: tensor<6x16xf32>) {
  // expected-error @+1 {{dimension 0 of size 6 does not split over 4 devices}}
  %0 = cgd.reduce_scatter %x on @mesh ["tp"] sum {dim = 0} : (tensor<6x16xf32>) -> tensor<1x16xf32>
  return
}

// -----

cg.mesh @mesh = #cg.mesh<["dp" = 2, "tp" = 4]>
func.func @axis_twice(%x: tensor<8xf32>) {
  // expected-error @+1 {{lists mesh axis "tp" twice}}
  %0 = cgd.all_reduce %x on @mesh ["tp", "tp"] sum : tensor<8xf32>
  return
}

// -----

cg.mesh @mesh = #cg.mesh<["dp" = 2]>
func.func @bad_peer(%x: tensor<8xf32>) {
  // expected-error @+1 {{peer must be a device id >= 0, got -1}}
  cgd.send %x to -1 on @mesh : tensor<8xf32>
  return
}
