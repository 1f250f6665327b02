cg.mesh @mesh = <["dp" = 2]>
func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  %h = cgd.copy_to_host %x : tensor<4xf32>
  %y = cg.relu %h : tensor<4xf32>
  return %y : tensor<4xf32>
}
