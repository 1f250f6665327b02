func.func @main(%x: tensor<2x3xf32> {cg.name = "x"}) -> (tensor<2x3xf32> {cg.name = "y"}) {
  %w = cg.param "w" from(dense<1.0> : tensor<3x3xf32>) : tensor<3x3xf32>
  %u = cg.relu %w : tensor<3x3xf32>
  %y = cg.neg %x : tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}
