import keras
import numpy as np
from keras import ops


def block_kernel(block, channels):
    """One-hot `(block, block, channels, block*block*channels)` kernel.

    Output channel `(i * block + j) * channels + c` picks pixel `(i, j)` of
    channel `c` in each block: a permutation, so the transform is lossless.
    """
    kernel = np.zeros((block, block, channels, block * block * channels), "float32")
    for i in range(block):
        for j in range(block):
            for c in range(channels):
                kernel[i, j, c, (i * block + j) * channels + c] = 1.0
    return kernel


@keras.saving.register_keras_serializable(package="keras_lnca")
class SpaceToDepth(keras.layers.Layer):
    """Lossless encoder: each `block × block` patch becomes one cell.

    `(B, H, W, C) → (B, H/block, W/block, block²·C)` by a strided convolution
    with a fixed one-hot kernel (no weights, exact). With
    `LNCA(autoencoder="space_to_depth")` it replaces the learned encoder: the
    automaton then works on a grid as small as the learned one, and nothing
    is lost before it starts; `DepthToSpace` inverts it.

    Args:
        block: int, pixels per cell along each side.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    ```python
    cells = kl.layers.SpaceToDepth(4)(np.zeros((1, 32, 32, 1)))  # (1, 8, 8, 16)
    ```
    """

    def __init__(self, block, **kwargs):
        super().__init__(**kwargs)
        self.block = int(block)

    def call(self, x):
        kernel = ops.convert_to_tensor(block_kernel(self.block, x.shape[-1]), x.dtype)
        return ops.conv(x, kernel, strides=self.block, padding="valid")

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        div = lambda n: None if n is None else n // self.block  # noqa: E731
        return (b, div(h), div(w), c * self.block**2)

    def get_config(self):
        config = super().get_config()
        config["block"] = self.block
        return config
