func.func @main(%x: tensor<16x512x4096xf32> {cg.name = "x"}) -> tensor<16x512x4096xf32> {
  %w1 = cg.param "blocks.0.fc1.weight" : tensor<4096x16384xf32>
  %w2 = cg.param "blocks.0.fc2.weight" : tensor<16384x4096xf32>
  %h = cg.matmul %x, %w1 : (tensor<16x512x4096xf32>, tensor<4096x16384xf32>) -> tensor<16x512x16384xf32>
  %r = cg.relu %h : tensor<16x512x16384xf32>
  %y = cg.matmul %r, %w2 : (tensor<16x512x16384xf32>, tensor<16384x4096xf32>) -> tensor<16x512x4096xf32>
  return %y : tensor<16x512x4096xf32>
}
