import keras

from keras_lnca.layers.adj_conv import AdjConv


@keras.saving.register_keras_serializable(package="keras_lnca")
class LatentEncoder(keras.layers.Layer):
    """The LNCA encoder: image → (skip at H/2, latent at H/2^downsampling).

    The paper's encoder has two stride-2 `AdjConv` levels (8 then 16
    channels) and a stride-2 pass-through branch from the input that is added
    before the last level; the first level's output is the skip connection
    that the decoder receives. With `downsampling=3` both branches get one more
    stride-2 level; with `downsampling=1` the last level keeps stride 1, so the
    latent sits at H/2.

    Args:
        latent_channels: int, channels of the latent grid. Defaults to 16.
        downsampling: int in {1, 2, 3}, number of stride-2 levels; the latent
            grid is `2**downsampling` times smaller per side.
        filters: int, channels of the intermediate levels (and of the skip).
            Defaults to `latent_channels // 2`.
        activation: activation of every block. Defaults to `"swish"`.
        batch_norm: bool, BatchNormalization in every block.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    ```python
    encoder = kl.layers.LatentEncoder()
    skip, latent = encoder(np.zeros((1, 32, 32, 3)))  # (1,16,16,8), (1,8,8,16)
    ```

    Reference:
        Menta, Archetti, Matteucci, arXiv:2403.15525.
    """

    def __init__(
        self,
        latent_channels=16,
        downsampling=2,
        filters=None,
        activation="swish",
        batch_norm=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if downsampling not in (1, 2, 3):
            raise ValueError(f"`downsampling` must be 1, 2 or 3, got {downsampling}.")
        self.latent_channels = latent_channels
        self.downsampling = downsampling
        self.filters = filters
        self.activation = activation
        self.batch_norm = batch_norm
        width = filters or max(latent_channels // 2, 1)
        levels = max(downsampling - 1, 1)
        block = dict(activation=activation, batch_norm=batch_norm)
        self.main_blocks = [
            AdjConv(width, strides=2, name=f"main_{i}", **block) for i in range(levels)
        ]
        self.pass_blocks = [
            AdjConv(width, strides=2, name=f"pass_{i}", **block) for i in range(levels)
        ]
        self.latent_block = AdjConv(
            latent_channels,
            strides=2 if downsampling >= 2 else 1,
            name="latent",
            **block,
        )

    def build(self, input_shape):
        for blocks in (self.main_blocks, self.pass_blocks):
            shape = input_shape
            for block in blocks:
                block.build(shape)
                shape = block.compute_output_shape(shape)
        self.latent_block.build(shape)

    def call(self, x, training=None):
        main = x
        for block in self.main_blocks:
            main = block(main, training=training)
            if block is self.main_blocks[0]:
                skip = main
        passed = x
        for block in self.pass_blocks:
            passed = block(passed, training=training)
        latent = self.latent_block(main + passed, training=training)
        return skip, latent

    def compute_output_shape(self, input_shape):
        skip_shape = self.main_blocks[0].compute_output_shape(input_shape)
        shape = input_shape
        for block in self.main_blocks:
            shape = block.compute_output_shape(shape)
        return skip_shape, self.latent_block.compute_output_shape(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "latent_channels": self.latent_channels,
                "downsampling": self.downsampling,
                "filters": self.filters,
                "activation": self.activation,
                "batch_norm": self.batch_norm,
            }
        )
        return config
