import keras

from keras_lnca.layers.adj_conv import AdjConv
from keras_lnca.layers.adj_conv_transpose import AdjConvTranspose


@keras.saving.register_keras_serializable(package="keras_lnca")
class LatentDecoder(keras.layers.Layer):
    """The LNCA decoder: (latent, skip) → image, mirroring `LatentEncoder`.

    Transposed `AdjConv` levels bring the latent back to H/2, the encoder's
    skip is added, a stride-1 `AdjConv` mixes them, and a last stride-2
    transposed block (BatchNorm, then `output_activation`) returns the image.

    Args:
        channels: int, output image channels (1 gray, 3 colour).
        latent_channels: int, channels of the latent grid. Defaults to 16.
        downsampling: int in {1, 2, 3}, as in the encoder.
        filters: int, channels of the intermediate levels; must equal the
            encoder's skip width. Defaults to `latent_channels // 2`.
        activation: activation of the inner blocks. Defaults to `"swish"`.
        output_activation: activation of the output. Defaults to `"sigmoid"`.
        batch_norm: bool, BatchNormalization in every block.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    ```python
    decoder = kl.layers.LatentDecoder(channels=3)
    image = decoder([np.zeros((1, 8, 8, 16)), np.zeros((1, 16, 16, 8))])
    ```

    Reference:
        Menta, Archetti, Matteucci, arXiv:2403.15525.
    """

    def __init__(
        self,
        channels=3,
        latent_channels=16,
        downsampling=2,
        filters=None,
        activation="swish",
        output_activation="sigmoid",
        batch_norm=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if downsampling not in (1, 2, 3):
            raise ValueError(f"`downsampling` must be 1, 2 or 3, got {downsampling}.")
        self.channels = channels
        self.latent_channels = latent_channels
        self.downsampling = downsampling
        self.filters = filters
        self.activation = activation
        self.output_activation = output_activation
        self.batch_norm = batch_norm
        width = filters or max(latent_channels // 2, 1)
        block = dict(activation=activation, batch_norm=batch_norm)
        if downsampling == 1:
            self.up_blocks = [AdjConv(width, name="up_0", **block)]
        else:
            self.up_blocks = [
                AdjConvTranspose(width, strides=2, name=f"up_{i}", **block)
                for i in range(downsampling - 1)
            ]
        self.mix_block = AdjConv(width, name="mix", **block)
        self.output_block = AdjConvTranspose(
            channels,
            strides=2,
            activation=output_activation,
            batch_norm=batch_norm,
            name="output",
        )

    def build(self, input_shape):
        shape, skip_shape = input_shape
        for block in self.up_blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)
        self.mix_block.build(skip_shape)
        self.output_block.build(self.mix_block.compute_output_shape(skip_shape))

    def call(self, inputs, training=None):
        x, skip = inputs
        for block in self.up_blocks:
            x = block(x, training=training)
        x = self.mix_block(x + skip, training=training)
        return self.output_block(x, training=training)

    def compute_output_shape(self, input_shape):
        _, skip_shape = input_shape
        return self.output_block.compute_output_shape(
            self.mix_block.compute_output_shape(skip_shape)
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "channels": self.channels,
                "latent_channels": self.latent_channels,
                "downsampling": self.downsampling,
                "filters": self.filters,
                "activation": self.activation,
                "output_activation": self.output_activation,
                "batch_norm": self.batch_norm,
            }
        )
        return config
