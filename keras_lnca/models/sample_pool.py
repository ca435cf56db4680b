"""The sample pool of NCA training, as its own small object."""

import contextlib
import contextvars

import keras
from keras import ops

_ALLOCATE = contextvars.ContextVar("keras_lnca_allocate_pools", default=True)


@contextlib.contextmanager
def not_allocated():
    """Within this block, models built for inference allocate no sample pool.

    The pool is training state; a model loaded only to restore images (the
    CLI's `restore`, `evaluate`, `demo`) needs none, whatever size its file
    asks for. Such a model still saves its config unchanged.
    """
    token = _ALLOCATE.set(False)
    try:
        yield
    finally:
        _ALLOCATE.reset(token)


def allocation_allowed():
    """False inside `not_allocated()`."""
    return _ALLOCATE.get()


class SamplePool:
    """Training samples that persist across steps (the NCA sample pool).

    `size` entries of (degraded image, clean image, final cell state) at one
    training crop size. Each training step draws `batch` distinct random
    slots; the first `ceil(rate * batch)` samples of the batch are replaced by
    the entries in their slots when those are filled, so these samples go on
    from the state an earlier step left them in (the model learns to keep a
    restored image stable). After the step every sample of the batch is
    written to its slot.

    Hygiene: a final state whose largest absolute value reaches `state_limit`
    (or is not finite) is not kept; its slot is marked empty and the next
    sample drawn into it starts from a fresh seed. Healthy states have `out`
    in [0, 1] and `hidden` in [-1, 1].

    The entries are non-trainable `keras.Variable`s (`variables`: images,
    targets, states, filled), created with `synchronization="on_read"` so
    that under `tf.distribute` each replica keeps its own pool; other
    backends ignore that argument. The owning model keeps them as attributes,
    so that Keras tracks them for `fit` on every backend; this object holds
    the rule that reads and writes them.

    Args:
        size: number of entries.
        image_shape: `(height, width, channels)` of a degraded training crop
            (the model's input, noise map included); the pool is used only
            for batches of this spatial size.
        state_shape: `(grid_height, grid_width, state_channels)` of a cell
            state.
        rate: fraction of each batch that is drawn from the pool.
        target_channels: channels of a clean crop, when they differ from
            the degraded input's (a noise-level-aware model's input carries
            a noise map besides the image).
        state_limit: a final state with `max |x| >= state_limit` is not kept.
        dtype: the variables' dtype.

    Example:
    ```python
    pool = SamplePool(256, (32, 32, 1), (8, 8, 40), rate=0.5)
    slots, from_pool = pool.draw(batch=8, seed=keras.random.SeedGenerator(0))
    degraded, clean = pool.take(slots, from_pool, degraded, clean)
    ...  # seed and run the automaton; state = pool.take_state(slots, from_pool, state)
    pool.write(slots, degraded, clean, final_state)
    ```

    Reference:
    - [Mordvintsev et al., Growing Neural Cellular Automata, Distill 2020](
      https://distill.pub/2020/growing-ca/) (the pool)
    """

    def __init__(self, size, image_shape, state_shape, rate=0.5, state_limit=1000.0,
                 dtype="float32", target_channels=None):
        self.size = int(size)
        self.image_shape = tuple(int(d) for d in image_shape)
        if target_channels is None:
            target_channels = self.image_shape[-1]
        self.target_shape = self.image_shape[:-1] + (int(target_channels),)
        self.state_shape = tuple(int(d) for d in state_shape)
        self.rate = float(rate)
        self.state_limit = float(state_limit)
        self.images = self._variable(self.image_shape, "pool_images", dtype)
        self.targets = self._variable(self.target_shape, "pool_targets", dtype)
        self.states = self._variable(self.state_shape, "pool_states", dtype)
        self.filled = self._variable((), "pool_filled", dtype)

    def _variable(self, entry_shape, name, dtype):
        return keras.Variable(
            initializer="zeros",
            shape=(self.size,) + tuple(entry_shape),
            dtype=dtype,
            trainable=False,
            synchronization="on_read",
            aggregation="only_first_replica",
            name=name,
        )

    @property
    def variables(self):
        """`[images, targets, states, filled]`, the order checkpoints store."""
        return [self.images, self.targets, self.states, self.filled]

    def applies_to(self, images):
        """Whether a batch of `images` has the pool's crop size."""
        return tuple(images.shape[1:3]) == self.image_shape[:2]

    def draw(self, batch, seed):
        """Distinct random `slots` for a batch, and which samples come `from_pool`."""
        slots = ops.argsort(keras.random.uniform((self.size,), seed=seed))[:batch]
        position = ops.cast(ops.arange(batch), "float32") / ops.cast(batch, "float32")
        from_pool = ops.logical_and(
            ops.take(self.filled, slots, axis=0) > 0.5, position < self.rate
        )
        return slots, from_pool

    def take(self, slots, from_pool, degraded, clean):
        """The batch's images, with the pooled samples' images swapped in."""
        pick = from_pool[:, None, None, None]
        degraded = ops.where(pick, ops.take(self.images, slots, axis=0), degraded)
        clean = ops.where(pick, ops.take(self.targets, slots, axis=0), clean)
        return degraded, clean

    def take_state(self, slots, from_pool, state):
        """The batch's seed states, with the pooled samples' states swapped in."""
        pick = from_pool[:, None, None, None]
        return ops.where(pick, ops.take(self.states, slots, axis=0), state)

    def write(self, slots, degraded, clean, final):
        """Stores the batch in its slots; a blown-up final state leaves its slot empty."""
        index = slots[:, None]
        final = ops.stop_gradient(final)
        self.images.assign(ops.scatter_update(self.images, index, degraded))
        self.targets.assign(ops.scatter_update(self.targets, index, clean))
        self.states.assign(ops.scatter_update(self.states, index, final))
        bound = ops.max(ops.abs(final), axis=(1, 2, 3))
        healthy = ops.cast(bound < self.state_limit, "float32")
        self.filled.assign(ops.scatter_update(self.filled, index, healthy))
