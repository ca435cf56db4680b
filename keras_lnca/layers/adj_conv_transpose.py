import keras

from keras_lnca.layers.adj_conv import AdjConv


@keras.saving.register_keras_serializable(package="keras_lnca")
class AdjConvTranspose(AdjConv):
    """Transposed convolution → BatchNormalization → activation → dropout.

    The upsampling twin of `AdjConv`; with `strides=2` it doubles the spatial
    size exactly (`padding="same"`).

    Args:
        filters: int, output channels.
        kernel_size: int, square kernel size. Defaults to 3.
        strides: int, upsampling factor. Defaults to 1.
        activation: activation name or callable. Defaults to `"swish"`.
        batch_norm: bool, whether to normalise after the convolution.
        dropout: float, dropout rate after the activation.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    ```python
    up = kl.layers.AdjConvTranspose(3, strides=2, activation="sigmoid")
    y = up(np.zeros((1, 16, 16, 8)))  # (1, 32, 32, 3)
    ```

    Reference:
        Menta, Archetti, Matteucci, arXiv:2403.15525.
    """

    def _make_conv(self):
        return keras.layers.Conv2DTranspose(
            self.filters,
            self.kernel_size,
            strides=self.strides,
            padding="same",
            name="conv",
        )
