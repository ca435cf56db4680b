import keras
import numpy as np
from keras import ops

from keras_lnca import backend_utils
from keras_lnca.layers import get_cell
from keras_lnca.layers import NCA
from keras_lnca.models import image_batches
from keras_lnca.models.checks import check_model_arguments
from keras_lnca.models.checks import check_pool
from keras_lnca.models.input_space import InputSpace
from keras_lnca.models.losses import mse
from keras_lnca.models.losses import nca_losses
from keras_lnca.models.losses import PIXEL_WEIGHT
from keras_lnca.models.losses import psnr_balance
from keras_lnca.models.phases import PhasesMixin
from keras_lnca.models.restore_mixin import PredictFunctions
from keras_lnca.models.restore_mixin import RestoreMixin
from keras_lnca.models.sample_pool import allocation_allowed
from keras_lnca.models.sample_pool import SamplePool


class NCAModel(RestoreMixin, PhasesMixin, keras.Model):
    """Shared machinery of `LNCA` and `PixelNCA` (not used directly).

    A subclass says how an image becomes the automaton's input grid
    (`encode`), how the out channels become an image (`decode`), and how many
    pixels one cell covers per side (`grid_factor`). This class owns the rest:
    the cell state `[input | out = 0.5 | hidden = 0]`, the NCA loop and its
    step schedule, the sample pool, the losses of the NCA phase, the training
    hooks that make `fit` run unchanged on TensorFlow, JAX and PyTorch. The
    numpy-facing `restore` comes from `RestoreMixin` (`restore_mixin.py`),
    `compile` and `set_phase` from `PhasesMixin` (`phases.py`).

    Training data are `(degraded, clean)` pairs. A thin `train_step` hook
    hands both to `call(training=True)`, which returns a dict of everything
    the losses need; `compute_loss` and `compute_metrics` read that dict. At
    inference (`predict`, `evaluate`, `restore`) `call` runs the
    deterministic pipeline and returns the restored image.

    The sample pool (`keras_lnca.models.sample_pool.SamplePool`): `pool_size`
    entries at the training crop size `pool_image_size`, of which each batch
    draws a `pool_rate` share; bypassed for any other spatial size. Under
    JAX `keras.distribution.DataParallel` the compiled step sees the global
    batch (one pool); under a `tf.distribute` strategy each replica keeps its
    own pool and applies the rules to its slice of the batch, and a
    cross-replica read (a checkpoint with `save_pool`) sees replica 0's.
    Per-sample step counts and fire masks are drawn for the global batch on
    every backend, so replicas never share them.

    Noise-level-aware models (`noise_map=True`) take one more input channel
    than they restore: the last channel of every input batch is a per-pixel
    map of the noise level, as a standard deviation on the image's [0, 1]
    scale (σ / 255), as FFDNet takes it. It is averaged over each cell and
    joins the fixed channels of the state, `[input | noise | out | hidden]`:
    every cell sees the level of its own neighbourhood, so noise that varies
    across the image is handled too. `restore(image, noise_level=...)` builds
    the map (or estimates the level); `predict` and `fit` take it as the last
    channel of the degraded batch.

    `loss_balance="psnr"` weights each sample's reconstruction error by the
    inverse of itself (`keras_lnca.models.losses.psnr_balance`): training
    then descends the batch's mean PSNR, the figure evaluation reports,
    instead of its mean MSE, which the noisiest samples of a batch that mixes
    noise levels would rule.
    """

    phases = ("nca",)

    def __init__(
        self,
        channels=3,
        cell="nafca",
        hidden_channels=32,
        train_steps=(8, 32),
        inference_steps=64,
        fire_rate=1.0,
        pool_size=1024,
        pool_image_size=32,
        pool_rate=0.5,
        cell_config=None,
        out_seed="constant",
        noise_map=False,
        loss_balance=None,
        color_space=None,
        luma_guide=False,
        self_ensemble=1,
        phase=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)

        checked = check_model_arguments(
            self.dtype_policy, channels=channels, hidden_channels=hidden_channels,
            train_steps=train_steps, inference_steps=inference_steps, fire_rate=fire_rate,
            pool_size=pool_size, pool_image_size=pool_image_size, pool_rate=pool_rate,
            cell_config=cell_config, out_seed=out_seed, noise_map=noise_map,
            loss_balance=loss_balance, seed=seed, self_ensemble=self_ensemble,
        )
        for name, value in checked.items():  # each argument kept, as checked
            setattr(self, name, value)
        self.cell_name = cell
        self.color_space = color_space
        self.luma_guide = luma_guide
        seed = self.seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="schedule_seed")
        self.input_space = InputSpace(channels, noise_map, color_space, self.grid_factor, luma_guide)
        self._make_layers()
        self.nca = NCA(
            get_cell(cell, self.fixed_channels, **self.cell_config),
            steps=self.inference_steps,
            fire_rate=self.fire_rate,
            seed=None if seed is None else seed + 1,
            name="nca",
        )
        self._loss_trackers = {
            name: keras.metrics.Mean(name=name)
            for each_phase in self.phases
            for name in self._loss_names(each_phase)
        }
        # Whether build() allocates the pool: not for a model loaded to restore only.
        self.has_pool = self.pool_size > 0 and allocation_allowed()
        if self.has_pool:  # bounded before build() allocates it
            images, states = self._pool_shapes()
            check_pool(self.pool_size, images[0], images[2], states[0], states[2])
        self._compile_args = None
        self._predict_cache = PredictFunctions()
        self.phase = None
        self._apply_phase(phase or self.phases[0])

    # ------------------------------------------------------------------
    # What a subclass defines.
    # ------------------------------------------------------------------
    @property
    def cell_input_channels(self):
        """Channels of the automaton's input (and out) group."""
        raise NotImplementedError

    @property
    def grid_factor(self):
        """Pixels per cell along each side."""
        return 1

    def _make_layers(self):
        """Creates the sub-layers other than the NCA (called once by __init__)."""

    def encode(self, images, training=False):
        """Returns `(context, grid)`: what `decode` needs, and the input grid."""
        raise NotImplementedError

    def decode(self, out, context, training=False):
        """Maps the out channels of the final state to an image."""
        raise NotImplementedError

    def _phase_trainables(self, phase):
        """Maps each sub-layer to whether it trains in `phase`."""
        return {self.nca: True}

    # ------------------------------------------------------------------
    # Structure.
    # ------------------------------------------------------------------
    @property
    def input_channels(self):
        """Channels of an input batch: the image's, plus the noise map's."""
        return self.input_space.input_channels

    @property
    def pass_channels(self):
        """Image channels the automaton restores in one pass: the model's, or
        one, where a colour model restores each channel of `color_space` as a
        gray image (with the same rule)."""
        return self.input_space.pass_channels

    @property
    def fixed_channels(self):
        """Leading state channels the cells never change: the input grid, the
        noise level and the luma guide's grid."""
        return (self.cell_input_channels + int(self.noise_map)
                + self.cell_input_channels * self.input_space.guide_channels)

    @property
    def state_channels(self):
        return self.fixed_channels + self.cell_input_channels + self.hidden_channels

    def _pool_shapes(self):
        """Shapes of one pool entry: its image (with the noise map) and its cell state."""
        size, grid = self.pool_image_size, self.pool_image_size // self.grid_factor
        image_channels = self.pass_channels + self.input_space.guide_channels + int(self.noise_map)
        return (size, size, image_channels), (grid, grid, self.state_channels)

    def _build_core(self):
        self.nca.build((None, None, None, self.state_channels))
        if self.has_pool:
            images, states = self._pool_shapes()
            self.sample_pool = SamplePool(
                self.pool_size,
                images,
                states,
                rate=self.pool_rate,
                state_limit=self.pool_state_limit,
                dtype=self.variable_dtype,
                target_channels=self.pass_channels,
            )
            # Attributes of the model, so that Keras tracks them (fit, saving).
            self.pool_images, self.pool_targets, self.pool_states, self.pool_filled = (
                self.sample_pool.variables
            )
        # Variables created by build() take the current phase's trainability.
        self._apply_phase(self.phase)

    # A pooled state whose largest absolute value reaches this is dropped
    # from the pool (out lives in [0, 1] and hidden in [-1, 1] when healthy).
    pool_state_limit = 1000.0

    def seed_state(self, grid, noise=None, guide=None):
        """The initial cell state `[grid | noise | guide | out | hidden = 0]`.

        `out` starts at 0.5 (the paper's seed, `out_seed="constant"`) or as a
        copy of the input grid (`out_seed="input"`: the cells then refine the
        degraded signal instead of growing it from a constant). `noise` (a
        noise-level-aware model's only) is the per-cell level from
        `noise_grid`; `guide` (a `luma_guide` model's only) the encoded luma.
        """
        shape = ops.shape(grid)
        if self.out_seed == "input":
            out = grid
        else:
            out = ops.full(shape, 0.5, dtype=grid.dtype)
        hidden = ops.zeros(tuple(shape[:-1]) + (self.hidden_channels,), dtype=grid.dtype)
        if self.noise_map != (noise is not None):
            raise ValueError("A noise-level-aware model's state needs the noise grid; others take none.")
        if self.luma_guide != (guide is not None):
            raise ValueError("A `luma_guide` model's state needs the guide grid; others take none.")
        extras = [ops.cast(extra, grid.dtype) for extra in (noise, guide) if extra is not None]
        return ops.concatenate([grid, *extras, out, hidden], axis=-1)

    def _encode_passes(self, passes, training=False):
        """`(context, grid, noise grid, guide grid)` of padded degraded passes."""
        image, noise = self.input_space.image_and_noise_grid(passes)
        image, guide = self.input_space.split_guide(image)
        context, grid = self.encode(image, training=training)
        guide = None if guide is None else self.encode(guide, training=training)[1]
        return context, grid, noise, guide

    def split_state(self, state):
        """Returns the `(input, out, hidden)` channel groups of a state."""
        n, fixed = self.cell_input_channels, self.fixed_channels
        return state[..., :n], state[..., fixed : fixed + n], state[..., fixed + n :]

    # ------------------------------------------------------------------
    # Forward passes.
    # ------------------------------------------------------------------
    def call(self, inputs, training=False, steps=None, tolerance=None, unroll=False):
        if isinstance(inputs, (tuple, list)):
            degraded, clean = inputs
            if training:
                return self._training_outputs(degraded, clean)
            inputs = degraded
        if tolerance is None:
            tolerance = self.inference_tolerance
        return self._restore_tensor(inputs, steps=steps, tolerance=tolerance, unroll=unroll)

    # Early-stop tolerance of `predict` (None: always run `inference_steps`).
    inference_tolerance = None

    # ------------------------------------------------------------------
    # Inference stages (public: the quality benchmark reads them one by one).
    # ------------------------------------------------------------------
    def initial_state(self, images):
        """`(state, context)`: images padded to the cell size, encoded and seeded.

        `context` is what `readout` needs besides the state (the learned
        codec's skip), or None.
        """
        padded = backend_utils.pad_to_multiple(self.input_space.to_passes(images), self.grid_factor)
        context, grid, noise, guide = self._encode_passes(padded)
        return self.seed_state(grid, noise, guide), context

    def run(self, state, steps, tolerance=None, unroll=False):
        """Advances a cell state by `steps` deterministic NCA steps."""
        return self.nca(state, steps=steps, training=False, tolerance=tolerance, unroll=unroll)

    def readout(self, state, context=None):
        """Decodes a state's out channels to an image (padded size, not clipped;
        a colour model's passes are clipped before they return to RGB)."""
        _, out, _ = self.split_state(state)
        return self.input_space.from_passes(self.decode(out, context, training=False))

    def _restore_tensor(self, images, steps=None, tolerance=None, unroll=False):
        """The deterministic inference pipeline, for any height and width."""
        image_batches.check_image_tensor(images, self.input_channels)
        steps = self.inference_steps if steps is None else int(steps)
        height, width = ops.shape(images)[1], ops.shape(images)[2]
        state, context = self.initial_state(images)
        state = self.run(state, steps, tolerance=tolerance, unroll=unroll)
        restored = self.readout(state, context)
        return ops.clip(restored[:, :height, :width, :], 0.0, 1.0)

    def _training_outputs(self, degraded, clean):
        return self._nca_outputs(degraded, clean)

    def _uses_pool(self, images):
        return self.has_pool and self.sample_pool.applies_to(images)

    def _nca_outputs(self, degraded, clean):
        """One training forward pass of the NCA phase, pool included."""
        use_pool = self._uses_pool(degraded)
        degraded, clean = self.input_space.to_passes(degraded), self.input_space.to_passes(clean, with_map=False)
        batch = ops.shape(degraded)[0]
        if use_pool:
            slots, from_pool = self.sample_pool.draw(batch, self.seed_generator)
            degraded, clean = self.sample_pool.take(slots, from_pool, degraded, clean)
        context, grid, noise, guide = self._encode_passes(degraded)
        _, target_grid = self.encode(clean, training=False)
        state = self.seed_state(grid, noise, guide)
        if use_pool:
            state = self.sample_pool.take_state(slots, from_pool, state)
        low, high = self.train_steps
        step_counts = backend_utils.replica_draw(
            lambda n: keras.random.randint((n,), low, high + 1, seed=self.seed_generator),
            batch,
        )
        state = self.nca(state, steps=high, step_counts=step_counts, training=True)
        _, out, hidden = self.split_state(state)
        restored = self.decode(out, context, training=False)
        outputs = {
            "restored": self.input_space.from_passes(restored),
            "target": self.input_space.from_passes(clean),
            "out": out,
            "hidden": hidden,
            "out_target": ops.stop_gradient(target_grid),
            "state": state,
        }
        if use_pool:
            self.sample_pool.write(slots, degraded, clean, state)
            outputs.update(
                {"pool_slots": slots, "from_pool": from_pool, "step_counts": step_counts}
            )
        return outputs

    # ------------------------------------------------------------------
    # Losses and metrics.
    # ------------------------------------------------------------------
    def _phase_losses(self, outputs):
        return nca_losses(outputs, self._sample_weights(outputs))

    def _sample_weights(self, outputs):
        """Per-sample weights of the NCA phase's reconstruction terms, or None."""
        if self.loss_balance == "psnr":
            return psnr_balance(outputs["restored"], outputs["target"])
        return None

    def _loss_names(self, phase):
        return ("pixel_loss", "out_overflow", "hidden_overflow")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # Scaled by 1 / replicas under tf.distribute, which sums the replicas'
        # gradients (Keras does the same for compiled losses).
        if isinstance(y_pred, dict):
            total = 0.0
            for name, (weight, value) in self._phase_losses(y_pred).items():
                self._loss_trackers[name].update_state(value)
                total = total + weight * value
            return backend_utils.scale_loss_for_replicas(total)
        return backend_utils.scale_loss_for_replicas(PIXEL_WEIGHT * mse(y_pred, y))

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        # Keras builds the metrics on the first batch before any train_step.
        degraded = x[0] if isinstance(x, (tuple, list)) else x
        image_batches.check_pairs(degraded, y, self.channels, type(self).__name__, self.input_channels)
        if isinstance(y_pred, dict):
            y, y_pred = y_pred["target"], y_pred["restored"]
        return super().compute_metrics(x, y, y_pred, sample_weight)

    @property
    def metrics(self):
        # Only the current phase's loss components are reported.
        trackers = getattr(self, "_loss_trackers", {})
        active = {id(trackers[name]) for name in self._loss_names(self.phase) if name in trackers}
        idle = {id(t) for t in trackers.values()} - active
        metrics = [m for m in super().metrics if id(m) not in idle]
        known = {id(m) for m in metrics}
        metrics.extend(t for t in trackers.values() if id(t) in active - known)
        return metrics

    # ------------------------------------------------------------------
    # Training hooks (the same code on TensorFlow, JAX and PyTorch).
    # ------------------------------------------------------------------
    def train_step(self, *args):
        # JAX calls train_step(state, data); TensorFlow and torch train_step(data).
        *state, data = args
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            raise ValueError(
                f"{type(self).__name__}.fit needs (degraded, clean) pairs; got inputs only."
            )
        # Mismatched channels otherwise fail deep inside a layer.
        image_batches.check_pairs(x, y, self.channels, type(self).__name__, self.input_channels)
        return super().train_step(*state, ((x, y), y, sample_weight))

    def fit(self, x=None, y=None, *args, **kwargs):
        # Arrays without targets fail deep inside Keras on some backends: say why here.
        if y is None and hasattr(x, "shape") and hasattr(x, "dtype"):
            raise ValueError(
                f"{type(self).__name__}.fit needs (degraded, clean) pairs; got inputs only."
            )
        if isinstance(x, np.ndarray) and isinstance(y, np.ndarray):
            image_batches.check_pairs(x, y, self.channels, type(self).__name__, self.input_channels)
        if x is not None and not hasattr(x, "shape") and not args:
            # A dataset or PyDataset orders its own batches (ours shuffle
            # themselves); Keras would warn that its `shuffle` is ignored.
            kwargs.setdefault("shuffle", False)
        return super().fit(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        # Numpy batches get clear errors (rank, channels, dtype, NaN/Inf) here
        # rather than backend-specific ones, and tiny images the same padding
        # as `restore` on every backend.
        if isinstance(x, (list, tuple)):
            raise ValueError(
                f"predict takes one batch (N, H, W, {self.input_channels}), got a {type(x).__name__} "
                f"of {len(x)}: stack or concatenate the batches first."
            )
        if not isinstance(x, np.ndarray) and hasattr(x, "__array__") and hasattr(x, "shape"):
            x = np.asarray(x)  # a backend tensor: the same checks as a numpy batch
        if not isinstance(x, np.ndarray):
            return super().predict(x, *args, **kwargs)
        batch, crop = image_batches.check_batch(x, self.input_channels, self.grid_factor)
        return crop(super().predict(batch, *args, **kwargs))

    def receptive_radius(self, steps=None):
        """Pixels on each side that one output pixel depends on (an upper bound)."""
        steps = self.inference_steps if steps is None else int(steps)
        return steps * self.nca.cell.radius * self.grid_factor + self._codec_radius()

    def _codec_radius(self):
        return 0

    # ------------------------------------------------------------------
    # Serialisation.
    # ------------------------------------------------------------------
    # The sample pool is training state (megabytes of crops and cell states).
    # It is written only while `save_pool` is True (training checkpoints,
    # for an exact resume); `.keras` files otherwise carry an empty pool.
    save_pool = False

    def pool_variables(self):
        """The sample pool's variables (images, targets, states, filled), or []."""
        if not self.has_pool or not self.built:
            return []
        return self.sample_pool.variables

    def _seed_states(self):
        # Keras does not save SeedGenerator states; a resumed run needs them
        # to draw the same step counts, pool slots, masks and dropout.
        return [
            generator.state
            for layer in self._flatten_layers(include_self=True)
            for generator in layer._seed_generators
        ]

    def save_own_variables(self, store):
        for i, state in enumerate(self._seed_states()):
            store[f"seed_{i}"] = state
        if self.save_pool:
            for i, variable in enumerate(self.pool_variables()):
                store[f"{i}"] = variable

    def load_own_variables(self, store):
        keys = set(store.keys())
        for i, state in enumerate(self._seed_states()):
            if f"seed_{i}" in keys:
                state.assign(store[f"seed_{i}"])
        variables = self.pool_variables()
        if all(f"{i}" in keys for i in range(len(variables))):
            for i, variable in enumerate(variables):
                variable.assign(store[f"{i}"])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "channels": self.channels,
                "cell": self.cell_name,
                "hidden_channels": self.hidden_channels,
                "train_steps": list(self.train_steps),
                "inference_steps": self.inference_steps,
                "fire_rate": self.fire_rate,
                "pool_size": self.pool_size,
                "pool_image_size": self.pool_image_size,
                "pool_rate": self.pool_rate,
                "cell_config": self.cell_config,
                "out_seed": self.out_seed,
                "noise_map": self.noise_map,
                "loss_balance": self.loss_balance,
                "color_space": self.color_space,
                "luma_guide": self.luma_guide,
                "self_ensemble": self.self_ensemble,
                "phase": self.phase,
                "seed": self.seed,
            }
        )
        return config

