import keras
from keras import ops

from keras_lnca import backend_utils
from keras_lnca.layers.nca_cell import NCACell


@keras.saving.register_keras_serializable(package="keras_lnca")
class NCA(keras.layers.Layer):
    """Iterates a cell rule: the neural cellular automaton.

    The number of steps is static (a Python int), which every backend can
    compile and differentiate. Samples that should run fewer steps
    (`step_counts`) are masked: their cells stop changing once their count
    is reached. Stochastic fire-rate masks, like every other random draw,
    are drawn *before* the loop, so the loop body holds no random op; with
    `fire_rate=1` and no `step_counts` the path is deterministic and has no
    random op at all (what export needs).

    In training the loop is unrolled (differentiable on every backend,
    XLA included); at inference it is a `fori_loop`, which keeps a single
    state in memory and compiles once, whatever the step count. `unroll=True`
    unrolls the inference loop too: the full-integer TFLite export uses it
    so that each step's tensors get their own calibrated int8 ranges.

    Args:
        cell: an `NCACell` (e.g. `NAFCACell`), the local rule.
        steps: int, default number of steps. Defaults to 64.
        fire_rate: float in (0, 1], probability that a cell updates at a
            step. Defaults to 1.0 (the official LNCA setting).
        seed: int, seed of the fire-rate masks.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        state: `(batch, height, width, channels)` cell states.
        steps: int, overrides the default step count.
        step_counts: optional int tensor `(batch,)`, per-sample step counts
            (each at most `steps`).
        training: bool.
        tolerance: optional float, inference only: stop early once a step's
            mean absolute update (over the whole batch) falls below it
            (anytime restoration); `steps` stays the upper bound.
        unroll: bool, inference only: a Python loop of `steps` cell calls
            instead of a `fori_loop` (same result, one graph node per step).
            Training always unrolls.

    Example:
    ```python
    nca = kl.layers.NCA(kl.layers.SobelCell(input_channels=3), steps=16)
    final = nca(np.zeros((2, 32, 32, 16)))
    ```

    Reference:
        Mordvintsev et al., "Growing Neural Cellular Automata", Distill 2020.
    """

    def __init__(self, cell, steps=64, fire_rate=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(cell, dict):
            cell = keras.saving.deserialize_keras_object(cell)
        if not isinstance(cell, NCACell):
            raise TypeError(f"`cell` must be an NCACell, got {type(cell).__name__}.")
        if not 0.0 < fire_rate <= 1.0:
            raise ValueError(f"`fire_rate` must be in (0, 1], got {fire_rate}.")
        self.cell = cell
        self.steps = int(steps)
        self.fire_rate = float(fire_rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="fire_seed")

    def build(self, input_shape):
        # A cell deserialised from a config with its `build_config` is built already.
        if not self.cell.built:
            self.cell.build(input_shape)

    def update_masks(self, state, steps, step_counts=None):
        """Per-step update masks `(steps, batch, height, width, 1)`, or None."""
        if self.fire_rate >= 1.0 and step_counts is None:
            return None
        shape = ops.shape(state)
        masks = ops.ones((steps, shape[0], 1, 1, 1), dtype=state.dtype)
        if step_counts is not None:
            step_index = ops.arange(steps)[:, None]
            active = ops.cast(step_index < ops.cast(step_counts, "int32")[None, :], state.dtype)
            masks = masks * active[:, :, None, None, None]
        if self.fire_rate < 1.0:
            # Drawn for the global batch under tf.distribute (see
            # `backend_utils.replica_draw`): replicas do not share masks.
            uniform = backend_utils.replica_draw(
                lambda n: keras.random.uniform(
                    (steps, n, shape[1], shape[2], 1), seed=self.seed_generator
                ),
                shape[0],
                axis=1,
            )
            masks = masks * ops.cast(uniform < self.fire_rate, state.dtype)
        return masks

    def call(
        self, state, steps=None, step_counts=None, training=None, tolerance=None, unroll=False
    ):
        steps = self.steps if steps is None else int(steps)
        if steps <= 0:
            return state
        masks = self.update_masks(state, steps, step_counts)
        if tolerance is not None and not training:
            return self._run_until_converged(state, steps, masks, float(tolerance))
        if training or unroll:
            for t in range(steps):
                state = self.cell(
                    state, None if masks is None else masks[t], training=training
                )
            return state

        def body(t, current):
            mask = None if masks is None else ops.take(masks, t, axis=0)
            return self.cell(current, mask, training=False)

        return ops.fori_loop(0, steps, body, state)

    def _run_until_converged(self, state, steps, masks, tolerance):
        def keep_going(t, current, change):
            return ops.logical_and(t < steps, change >= tolerance)

        def step(t, current, change):
            mask = None if masks is None else ops.take(masks, t, axis=0)
            new = self.cell(current, mask, training=False)
            return t + 1, new, ops.mean(ops.abs(new - current))

        start = (ops.convert_to_tensor(0, "int32"), state, ops.convert_to_tensor(float("inf"), state.dtype))
        _, state, _ = ops.while_loop(keep_going, step, start)
        return state

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "cell": keras.saving.serialize_keras_object(self.cell),
                "steps": self.steps,
                "fire_rate": self.fire_rate,
                "seed": self.seed,
            }
        )
        return config
