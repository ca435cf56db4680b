import keras
from keras import ops

from keras_lnca.layers.space_to_depth import block_kernel


@keras.saving.register_keras_serializable(package="keras_lnca")
class DepthToSpace(keras.layers.Layer):
    """The exact inverse of `SpaceToDepth`: each cell back to its pixels.

    Args:
        block: int, pixels per cell along each side.
        channels: int, image channels of the output.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    ```python
    image = kl.layers.DepthToSpace(4, channels=1)(np.zeros((1, 8, 8, 16)))  # (1, 32, 32, 1)
    ```
    """

    def __init__(self, block, channels, **kwargs):
        super().__init__(**kwargs)
        self.block = int(block)
        self.channels = int(channels)

    def call(self, x):
        kernel = ops.convert_to_tensor(block_kernel(self.block, self.channels), x.dtype)
        return ops.conv_transpose(x, kernel, strides=self.block, padding="valid")

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        mul = lambda n: None if n is None else n * self.block  # noqa: E731
        return (b, mul(h), mul(w), self.channels)

    def get_config(self):
        config = super().get_config()
        config.update({"block": self.block, "channels": self.channels})
        return config
