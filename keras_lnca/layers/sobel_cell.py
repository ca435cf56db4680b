import keras
import numpy as np
from keras import ops

from keras_lnca.layers.flops import dense_flops
from keras_lnca.layers.nca_cell import NCACell

_IDENTITY = np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], "float32")
_SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], "float32") / 8.0


@keras.saving.register_keras_serializable(package="keras_lnca")
class SobelCell(NCACell):
    """The classic Growing-NCA cell: fixed Sobel perception, then a 1×1 MLP.

    Each channel is perceived through three fixed 3×3 filters (identity,
    Sobel x, Sobel y); a 1×1 ReLU layer of `hidden_units` and a
    zero-initialised 1×1 output layer give the update.

    Args:
        input_channels: int, fixed leading channels.
        hidden_units: int, width of the MLP. Defaults to 128.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    ```python
    cell = kl.layers.SobelCell(input_channels=3)
    state = cell(np.zeros((1, 32, 32, 16)))
    ```

    Reference:
        Mordvintsev, Randazzo, Niklasson, Levin, "Growing Neural Cellular
        Automata", Distill 2020.
    """

    def __init__(self, input_channels, hidden_units=128, **kwargs):
        super().__init__(input_channels, **kwargs)
        self.hidden_units = hidden_units

    def build_rule(self, input_shape):
        shape = tuple(input_shape)
        filters = np.stack([_IDENTITY, _SOBEL_X, _SOBEL_X.T], axis=-1)  # (3, 3, 3)
        self._perception_kernel = np.repeat(
            filters[:, :, None, :], self.state_channels, axis=2
        )  # (3, 3, channels, 3): a depthwise kernel with multiplier 3
        self.hidden = keras.layers.Dense(self.hidden_units, activation="relu", name="hidden")
        self.hidden.build(shape[:-1] + (3 * self.state_channels,))
        self.head = keras.layers.Dense(
            self.update_channels,
            kernel_initializer="zeros",
            bias_initializer="zeros",
            name="head",
        )
        self.head.build(shape[:-1] + (self.hidden_units,))

    def perceive(self, state, training=None):
        """Identity and Sobel x/y filters of every channel: the textbook perception."""
        kernel = ops.cast(ops.convert_to_tensor(self._perception_kernel), state.dtype)
        return ops.depthwise_conv(state, kernel, strides=1, padding="same")

    def update(self, perception, training=None):
        """The per-cell MLP."""
        return self.head(self.hidden(perception))

    def flops_per_cell(self):
        perception = 2 * int(np.prod(np.asarray(self._perception_kernel).shape))  # depthwise 3x3, x3
        return perception + dense_flops(self.hidden) + dense_flops(self.head) + self.update_channels

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_units": self.hidden_units})
        return config
