"""`PhasesMixin`: how `NCAModel` compiles, and switches between its training phases."""

import keras

from keras_lnca import backend_utils
from keras_lnca.optimizers import default_optimizer


class PhasesMixin:
    """Compiling an `NCAModel` and switching its training phase.

    `compile` keeps its arguments so that `set_phase` can re-compile with a
    fresh optimizer and fresh metrics for the new phase; which layers train
    in a phase is the model's `_phase_trainables(phase)`. The compile
    arguments are saved with the model (`get_compile_config`).
    """

    def compile(
        self,
        optimizer=None,
        metrics=None,
        learning_rate=1e-2,
        decay_steps=10_000,
        warmup_steps=0,
        **kwargs,
    ):
        """Configures training; every argument is reused by `set_phase`.

        Args:
            optimizer: a Keras optimizer, its name, or None for the paper's
                `NormalizedAdam` with cosine decay from `learning_rate` over
                `decay_steps` steps.
            metrics: metrics on (restored, clean); None for PSNR and SSIM.
            learning_rate: float, initial learning rate of the default optimizer.
            decay_steps: int, cosine decay length of the default optimizer.
            warmup_steps: int, linear warm-up from 0 to `learning_rate`
                before the decay (default optimizer only).
            **kwargs: the other arguments of `keras.Model.compile`
                (`jit_compile`, `run_eagerly`, `steps_per_execution`, ...).
        """
        self._compile_args = dict(
            optimizer=optimizer,
            metrics=metrics,
            learning_rate=learning_rate,
            decay_steps=decay_steps,
            **kwargs,
        )
        if warmup_steps:
            self._compile_args["warmup_steps"] = int(warmup_steps)
        self._compile_for_phase()

    def _compile_for_phase(self):
        from keras_lnca import metrics as lnca_metrics

        args = dict(self._compile_args)
        optimizer = args.pop("optimizer")
        metrics = args.pop("metrics")
        learning_rate = args.pop("learning_rate")
        decay_steps = args.pop("decay_steps")
        warmup_steps = args.pop("warmup_steps", 0)
        # Optimizer and metrics belong to the tf.distribute strategy the model
        # was created under, wherever compile or set_phase is called.
        with backend_utils.distribution_scope(self):
            if not self.built:
                # Build now rather than in `fit`: under tf.distribute, `fit`
                # builds in a stateless scope and creates the TensorFlow
                # variables only after the phase has frozen some layers, and
                # TensorFlow never watches a variable created non-trainable,
                # even once `set_phase` makes it trainable.
                self.build()
            if optimizer is None:
                optimizer = default_optimizer(learning_rate, decay_steps, warmup_steps)
            elif isinstance(optimizer, keras.optimizers.Optimizer):
                # A fresh copy, so that each phase starts with fresh moments.
                optimizer = type(optimizer).from_config(optimizer.get_config())
            if metrics is None:
                metrics = [lnca_metrics.PSNR(), lnca_metrics.SSIM()]
            else:
                metrics = [
                    keras.metrics.get(m) if isinstance(m, str) else type(m).from_config(m.get_config())
                    for m in metrics
                ]
            for tracker in self._loss_trackers.values():
                tracker.reset_state()
            super().compile(optimizer=optimizer, metrics=metrics, **args)

    def get_compile_config(self):
        if self._compile_args is None:
            return None
        return {
            key: keras.saving.serialize_keras_object(value)
            for key, value in self._compile_args.items()
        }

    def compile_from_config(self, config):
        self.compile(
            **{key: keras.saving.deserialize_keras_object(value) for key, value in config.items()}
        )
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def set_phase(self, phase):
        """Switches the training phase and re-compiles with the last `compile` arguments."""
        self._apply_phase(phase)
        if self._compile_args is not None:
            self._compile_for_phase()
        return self

    def _apply_phase(self, phase):
        if phase not in self.phases:
            raise ValueError(f"Unknown phase {phase!r}; choose one of {self.phases}.")
        self.phase = phase
        for layer, trainable in self._phase_trainables(phase).items():
            # Set every nested layer: Keras does not propagate the flag to
            # sub-layers created after it was first set (before build).
            for sublayer in layer._flatten_layers(include_self=True):
                sublayer.trainable = trainable

