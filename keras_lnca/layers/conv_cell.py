import keras
from keras import ops

from keras_lnca.layers.flops import activation_cost
from keras_lnca.layers.nca_cell import NCACell


@keras.saving.register_keras_serializable(package="keras_lnca")
class ConvCell(NCACell):
    """A cell that perceives the whole state of its neighbours.

    One step, as the paper states it:

    1. perceive: a learned full `kernel_size` convolution of the *whole*
       state (every channel of every neighbour) to `perception_channels`,
       one convolution per entry of `dilation_rates` (a second, dilated
       perception scale sees further per step), concatenated with the cell's
       own state;
    2. update: a per-cell MLP (`mlp_layers` 1×1 layers of `hidden_units`)
       and a 1×1 head to the out + hidden channels, zero-initialised by
       default so that the untrained rule is the identity;
    3. stochastic mask and 4. residual, in `NCACell.call`.

    The perception is a full convolution on purpose: on XLA's CPU backend
    the gradient of a grouped or depthwise convolution is about 100× slower
    (see `ENVIRONMENT.md`), so every training path here uses full ones.

    Args:
        input_channels: int, fixed leading channels (the latent input).
        perception_channels: int, output channels of each perception
            convolution. Defaults to 48.
        hidden_units: int, width of the MLP. Defaults to 128.
        mlp_layers: int, hidden 1×1 layers of the MLP (at least 1).
        kernel_size: int, side of the perception convolution. Defaults to 3.
        dilation_rates: tuple of ints, one perception convolution per rate.
            Defaults to `(1,)`.
        activation: activation of the perception and the MLP. Defaults to
            `"gelu"`.
        head_initializer: initializer of the head's kernel. Defaults to
            `"zeros"`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    ```python
    cell = kl.layers.ConvCell(input_channels=16)
    state = cell(np.zeros((1, 8, 8, 64)))  # one step, same shape
    ```

    Reference:
        Menta, Archetti, Matteucci, arXiv:2403.15525 (the LNCA step);
        Mordvintsev et al., "Growing Neural Cellular Automata", Distill 2020
        (perceive → update → stochastic mask → residual); Chen and Pock,
        "Trainable Nonlinear Reaction Diffusion", TPAMI 2017 (iterated
        learned local filters for denoising).
    """

    def __init__(
        self,
        input_channels,
        perception_channels=48,
        hidden_units=128,
        mlp_layers=1,
        kernel_size=3,
        dilation_rates=(1,),
        activation="gelu",
        head_initializer="zeros",
        **kwargs,
    ):
        super().__init__(input_channels, **kwargs)
        dilation_rates = tuple(int(rate) for rate in dilation_rates)
        if not dilation_rates or min(dilation_rates) < 1:
            raise ValueError(f"`dilation_rates` must be positive ints, got {dilation_rates}.")
        if int(mlp_layers) < 1 or int(kernel_size) < 1 or int(perception_channels) < 1:
            raise ValueError("`mlp_layers`, `kernel_size` and `perception_channels` must be >= 1.")
        self.perception_channels = int(perception_channels)
        self.hidden_units = int(hidden_units)
        self.mlp_layers = int(mlp_layers)
        self.kernel_size = int(kernel_size)
        self.dilation_rates = dilation_rates
        self.activation = activation
        self.head_initializer = head_initializer
        # How far one step reads, in cells.
        self.radius = max(dilation_rates) * (self.kernel_size // 2)

    def build_rule(self, input_shape):
        shape = tuple(input_shape)
        self.perception = []
        for rate in self.dilation_rates:
            conv = keras.layers.Conv2D(
                self.perception_channels,
                self.kernel_size,
                padding="same",
                dilation_rate=rate,
                activation=self.activation,
                name=f"perceive_d{rate}",
            )
            conv.build(shape)
            self.perception.append(conv)
        width = self.state_channels + self.perception_channels * len(self.dilation_rates)
        self.mlp = []
        for i in range(self.mlp_layers):
            dense = keras.layers.Dense(self.hidden_units, activation=self.activation, name=f"mlp_{i}")
            dense.build(shape[:-1] + (width,))
            self.mlp.append(dense)
            width = self.hidden_units
        self.head = keras.layers.Dense(
            self.update_channels, kernel_initializer=self.head_initializer, name="head"
        )
        self.head.build(shape[:-1] + (width,))

    def perceive(self, state, training=None):
        """The cell's own state and learned filters of its neighbourhood."""
        return ops.concatenate([state] + [conv(state) for conv in self.perception], axis=-1)

    def update(self, perception, training=None):
        """The per-cell MLP: perception → update of the out + hidden channels."""
        x = perception
        for dense in self.mlp:
            x = dense(x)
        return self.head(x)

    def flops_per_cell(self):
        """FLOPs of one step per cell (a multiply-add is 2 FLOPs)."""
        act = activation_cost(self.activation)
        taps = self.kernel_size**2 * self.state_channels
        total = len(self.perception) * self.perception_channels * (2 * taps + 1 + act)
        width = self.state_channels + self.perception_channels * len(self.perception)
        for _ in self.mlp:
            total += self.hidden_units * (2 * width + 1 + act)
            width = self.hidden_units
        return total + self.update_channels * (2 * width + 1) + self.update_channels

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "perception_channels": self.perception_channels,
                "hidden_units": self.hidden_units,
                "mlp_layers": self.mlp_layers,
                "kernel_size": self.kernel_size,
                "dilation_rates": list(self.dilation_rates),
                "activation": self.activation,
                "head_initializer": self.head_initializer,
            }
        )
        return config
