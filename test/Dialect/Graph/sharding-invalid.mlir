// RUN: colossal-opt %s --split-input-file --verify-diagnostics

// Sharding attributes are checked against their mesh and the value's shape.

// expected-error @+1 {{mesh axis "dp" is declared twice}}
cg.mesh @m = #cg.mesh<["dp" = 2, "dp" = 4]>

// -----

// expected-error @+1 {{mesh axis "tp" must have a positive size, got 0}}
cg.mesh @m = #cg.mesh<["tp" = 0]>

// -----

cg.mesh @m = #cg.mesh<["dp" = 2, "tp" = 4]>
func.func @unknown_axis(%x: tensor<8x8xf32>) {
  // expected-error @+1 {{mesh axis "pp" does not exist in mesh @m}}
  %0 = cg.shard %x to <@m, [["pp"]]> : tensor<8x8xf32>
  return
}

// -----

cg.mesh @m = #cg.mesh<["dp" = 2, "tp" = 4]>
func.func @axis_twice(%x: tensor<8x8xf32>) {
  // expected-error @+1 {{mesh axis "tp" is used more than once in the sharding}}
  %0 = cg.shard %x to <@m, [["tp"], ["tp"]]> : tensor<8x8xf32>
  return
}

// -----

cg.mesh @m = #cg.mesh<["dp" = 2, "tp" = 4]>
func.func @split_and_partial(%x: tensor<8x8xf32>) {
  // expected-error @+1 {{mesh axis "dp" is used more than once in the sharding}}
  %0 = cg.shard %x to <@m, [["dp"]], partial = ["dp"]> : tensor<8x8xf32>
  return
}

// -----

cg.mesh @m = #cg.mesh<["dp" = 2, "tp" = 4]>
func.func @indivisible(%x: tensor<6x8xf32>) {
  // expected-error @+1 {{dimension 0 of size 6 cannot be split evenly over 8 devices}}
  %0 = cg.shard %x to <@m, [["dp", "tp"]]> : tensor<6x8xf32>
  return
}

// -----

cg.mesh @m = #cg.mesh<["dp" = 2]>
func.func @too_many_dims(%x: tensor<8xf32>) {
  // expected-error @+1 {{sharding lists 2 dimensions but the value has rank 1}}
  %0 = cg.shard %x to <@m, [[], ["dp"]]> : tensor<8xf32>
  return
}

// -----

func.func @missing_mesh(%x: tensor<8xf32>) {
  // expected-error @+1 {{refers to @nowhere, which is not a cg.mesh}}
  %0 = cg.shard %x to <@nowhere, [["dp"]]> : tensor<8xf32>
  return
}

// -----

cg.mesh @m = #cg.mesh<["dp" = 2]>
func.func @result_count(%x: tensor<8xf32>) {
  // expected-error @+1 {{'cg.sharding' must list one #cg.sharding per result (1)}}
  %0 = cg.relu %x {cg.sharding = []} : tensor<8xf32>
  return
}

// -----

cg.mesh @m = #cg.mesh<["dp" = 3]>
func.func @result_indivisible(%x: tensor<8xf32>) {
  // expected-error @+1 {{dimension 0 of size 8 cannot be split evenly over 3 devices}}
  %0 = cg.relu %x {cg.sharding = [#cg.sharding<@m, [["dp"]]>]} : tensor<8xf32>
  return
}

// -----

cg.mesh @m = #cg.mesh<["dp" = 3]>
// expected-error @+1 {{argument 0: dimension 0 of size 8 cannot be split evenly over 3 devices}}
func.func @arg_indivisible(%x: tensor<8xf32> {cg.sharding = #cg.sharding<@m, [["dp"]]>}) {
  return
}

// -----

// expected-error @+1 {{sharding of dimension 0 must be a list of mesh axes}}
func.func @malformed(%x: tensor<8xf32> {cg.sharding = #cg.sharding<@m, ["dp"]>}) {
  return
}
