cg.mesh @mesh = #cg.mesh<["tp" = 8]>
func.func @main(%x: tensor<1x512x4096xf32> {cg.name = "x"}) -> tensor<1x512x4096xf32> {
  %w1 = cg.param "blocks.0.fc1.weight" : tensor<4096x16384xf32>
  %w2 = cg.param "blocks.0.fc2.weight" : tensor<16384x4096xf32>
  %h = cg.matmul %x, %w1 : (tensor<1x512x4096xf32>, tensor<4096x16384xf32>) -> tensor<1x512x16384xf32>
  %r = cg.relu %h : tensor<1x512x16384xf32>
  %hs = cg.shard %r to <@mesh, [[], [], []]> : tensor<1x512x16384xf32>
  %y = cg.matmul %hs, %w2 : (tensor<1x512x16384xf32>, tensor<16384x4096xf32>) -> tensor<1x512x4096xf32>
  return %y : tensor<1x512x4096xf32>
}
