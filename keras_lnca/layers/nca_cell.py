import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_lnca")
class NCACell(keras.layers.Layer):
    """Base class of the cell rules: one NCA step on a grid of cells.

    A cell state has three groups of channels, `[input | out | hidden]`. The
    first `input_channels` hold the (latent) image the automaton conditions on
    and are never changed; the rule updates the others. One step is the
    paper's:

    1. perceive: `perception = self.perceive(state)`, the features a cell
       gathers from its neighbourhood (learned or Sobel filters, a NAF block,
       local attention);
    2. update: `update = self.update(perception)`, the per-cell map from those
       features to the change of its out and hidden channels (steps 1 and 2
       together are `compute_update`; every cell implements both hooks);
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

    def perceive(self, state, training=None):
        """What each cell gathers from its neighbourhood (subclasses implement it)."""
        raise NotImplementedError

    def update(self, perception, training=None):
        """The per-cell update of out + hidden from the perception."""
        raise NotImplementedError

    def compute_update(self, state, training=None):
        """Perceive the neighbourhood and return the update of out + hidden."""
        return self.update(self.perceive(state, training=training), training=training)

    def flops_per_cell(self):
        """FLOPs of one step per cell (grid position); a multiply-add is 2 FLOPs.

        Counted analytically: dense and convolution kernels as multiply-adds,
        biases, activations, normalisations and gates per element (see
        `keras_lnca.layers.flops`), and the residual add. The
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
