"""Networks: the sparse-convolution 3D backbone and the frozen image teachers with their trainable heads."""
