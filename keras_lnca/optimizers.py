"""The optimizer the paper trains with."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_lnca")
class NormalizedAdam(keras.optimizers.Adam):
    """Adam on per-variable normalised gradients, `g / (||g|| + epsilon_norm)`.

    Normalising each variable's gradient to unit L2 norm before the Adam
    update is how the NCA literature (and the LNCA code) keeps the long
    iterated rule from producing exploding or vanishing gradients. The
    normalisation lives in `update_step`, so it runs inside the compiled
    train step on every backend, after gradient clipping and accumulation,
    and, under `tf.distribute`, after the replicas' gradients are summed: the
    gradient of the global batch is normalised, as on a single device.

    Args:
        learning_rate: float or `keras.optimizers.schedules.LearningRateSchedule`.
        epsilon_norm: float, added to the gradient norm. Defaults to 1e-8.
        **kwargs: the arguments of `keras.optimizers.Adam`.

    Example:
    ```python
    schedule = keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=10_000)
    model.compile(optimizer=kl.optimizers.NormalizedAdam(schedule))
    ```

    Reference:
        Menta, Archetti, Matteucci, arXiv:2403.15525.
    """

    def __init__(self, learning_rate=1e-2, epsilon_norm=1e-8, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.epsilon_norm = epsilon_norm

    def update_step(self, gradient, variable, learning_rate):
        gradient = gradient / (ops.sqrt(ops.sum(ops.square(gradient))) + self.epsilon_norm)
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config["epsilon_norm"] = self.epsilon_norm
        return config


def default_optimizer(learning_rate=1e-2, decay_steps=10_000, warmup_steps=0):
    """The paper's optimizer: `NormalizedAdam` with a cosine decay of the learning rate
    over `decay_steps`, after a linear warm-up from 0 over `warmup_steps` (if any)."""
    if warmup_steps:
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps, warmup_target=learning_rate, warmup_steps=warmup_steps
        )
    else:
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    return NormalizedAdam(schedule)
