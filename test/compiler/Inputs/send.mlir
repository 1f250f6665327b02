cg.mesh @mesh = <["dp" = 2]>
func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  cgd.send %x to 1 on @mesh : tensor<4xf32>
  %y = cg.relu %x : tensor<4xf32>
  return %y : tensor<4xf32>
}
