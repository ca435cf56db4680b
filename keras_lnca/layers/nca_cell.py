import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_lnca")
class NCACell(keras.layers.Layer):
    """Base class of the cell rules: one NCA step on a grid of cells.

    A cell state has three groups of channels, `[input | out | hidden]`. The
    first `input_channels` hold the (latent) image the automaton conditions on
    and are never changed; the rule updates the others. One step is the
    paper's:

    1. perceive: `perception = self.perceive(state)`, what a cell sees of
       its neighbourhood;
    2. update: `update = self.update(perception)`, the per-cell rule (steps 1
       and 2 together are `compute_update`; a cell whose perception and
       update do not separate overrides `compute_update` instead);
    3. stochastic mask: the update is multiplied by `update_mask` (1 where a
       cell fires this step, 0 elsewhere), drawn by the caller before the loop;
    4. residual: `new = state + update` on the out and hidden channels.

    Args:
        input_channels: int, number of leading channels that are fixed.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        state: tensor `(batch, height, width, state_channels)`.
        update_mask: optional tensor broadcastable to
            `(batch, height, width, 1)`; `None` updates every cell.
        training: bool, training mode (dropout).

    Returns:
        The new state, same shape as `state`.
    """

    # How far (in cells) one step reads around a cell.
    radius = 1
    # State-sized buffers a cell holds during a step (state, perception,
    # hidden layer, update, new state): the memory estimate of `restore`.
    memory_factor = 8

    def __init__(self, input_channels, **kwargs):
        super().__init__(**kwargs)
        self.input_channels = input_channels

    def build(self, input_shape):
        self.state_channels = int(input_shape[-1])
        self.update_channels = self.state_channels - self.input_channels
        if self.update_channels <= 0:
            raise ValueError(
                f"A state of {self.state_channels} channels leaves nothing to "
                f"update after {self.input_channels} input channels."
            )
        self.build_rule(input_shape)

    def build_rule(self, input_shape):
        """Creates the rule's weights; `self.update_channels` is known."""
        raise NotImplementedError

    def perceive(self, state):
        """What each cell sees of its neighbourhood (subclasses implement it)."""
        raise NotImplementedError

    def update(self, perception, training=None):
        """The per-cell update of out + hidden from the perception."""
        raise NotImplementedError

    def compute_update(self, state, training=None):
        """Perceive the neighbourhood and return the update of out + hidden."""
        return self.update(self.perceive(state), training=training)

    def flops_per_cell(self):
        """FLOPs of one step per cell (grid position); a multiply-add is 2 FLOPs.

        Counted analytically: dense and convolution kernels as multiply-adds,
        biases, activations, normalisations and gates per element (see
        `ACTIVATION_COSTS`, `LAYER_NORM_COST`), and the residual add. The
        efficiency benchmark reads it, so a new cell reports its own cost.
        """
        raise NotImplementedError(f"{type(self).__name__} does not count its FLOPs")

    def call(self, state, update_mask=None, training=None):
        update = self.compute_update(state, training=training)
        if update_mask is not None:
            update = update * ops.cast(update_mask, update.dtype)
        fixed = state[..., : self.input_channels]
        evolving = state[..., self.input_channels :] + update
        return ops.concatenate([fixed, evolving], axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"input_channels": self.input_channels})
        return config


# FLOPs per element of a layer normalisation: mean, centre, square + sum, scale, affine.
LAYER_NORM_COST = 7
SOFTMAX_COST = 4  # max-subtract, exp, sum, divide

# FLOPs per element of the activations the cells use (for `flops_per_cell`).
ACTIVATION_COSTS = {None: 0, "linear": 0, "relu": 1, "sigmoid": 3, "swish": 4, "silu": 4, "gelu": 5}


def activation_cost(activation):
    """FLOPs per element of an activation given by name."""
    try:
        return ACTIVATION_COSTS[activation]
    except KeyError:
        raise ValueError(f"No FLOP cost for activation {activation!r}.") from None


def dense_flops(layer):
    """FLOPs of a Dense layer (or a 1x1 convolution) at one position."""
    fan_in, units = (int(d) for d in layer.kernel.shape[-2:])
    kernel_taps = 1
    for d in layer.kernel.shape[:-2]:
        kernel_taps *= int(d)
    bias = units if layer.use_bias else 0
    name = getattr(layer.activation, "__name__", layer.activation)
    return 2 * kernel_taps * fan_in * units + bias + activation_cost(name) * units
