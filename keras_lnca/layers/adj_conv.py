import keras


@keras.saving.register_keras_serializable(package="keras_lnca")
class AdjConv(keras.layers.Layer):
    """Convolution → BatchNormalization → activation → optional dropout.

    The building block of the LNCA autoencoder ("AdjConv2D" in the paper's
    code). With `batch_norm=False` the activation is applied right after the
    convolution.

    Args:
        filters: int, output channels.
        kernel_size: int, square kernel size. Defaults to 3.
        strides: int, convolution stride. Defaults to 1.
        activation: activation name or callable. Defaults to `"swish"`.
        batch_norm: bool, whether to normalise after the convolution.
        dropout: float, dropout rate after the activation (0 disables it).
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    ```python
    block = kl.layers.AdjConv(8, strides=2)
    y = block(np.zeros((1, 32, 32, 3)))  # (1, 16, 16, 8)
    ```

    Reference:
        Menta, Archetti, Matteucci, "Latent Neural Cellular Automata for
        Resource-Efficient Image Restoration", arXiv:2403.15525.
    """

    def __init__(
        self,
        filters,
        kernel_size=3,
        strides=1,
        activation="swish",
        batch_norm=True,
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.activation = activation
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.conv = self._make_conv()
        self.norm = (
            keras.layers.BatchNormalization(name="norm") if batch_norm else None
        )
        self.act = keras.layers.Activation(activation, name="act")
        self.drop = keras.layers.Dropout(dropout) if dropout > 0 else None

    def _make_conv(self):
        return keras.layers.Conv2D(
            self.filters,
            self.kernel_size,
            strides=self.strides,
            padding="same",
            name="conv",
        )

    def build(self, input_shape):
        self.conv.build(input_shape)
        output_shape = self.conv.compute_output_shape(input_shape)
        if self.norm is not None:
            self.norm.build(output_shape)

    def call(self, x, training=None):
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x, training=training)
        x = self.act(x)
        if self.drop is not None:
            x = self.drop(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "activation": self.activation,
                "batch_norm": self.batch_norm,
                "dropout": self.dropout,
            }
        )
        return config
