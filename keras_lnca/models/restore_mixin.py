"""`RestoreMixin`: the numpy-facing inference of `NCAModel` (restore, presets)."""

import numpy as np

from keras_lnca.models import image_batches
from keras_lnca import tiling
from keras_lnca.models.checks import check_restore_arguments
from keras_lnca.models.checks import check_self_ensemble

# What one forward pass of `restore` may take unless told otherwise (MB).
DEFAULT_MEMORY_BUDGET_MB = 2048.0


def memory_budget(megabytes=None):
    """The memory budget of `restore` in bytes: `megabytes`, else the
    `LNCA_MEMORY_BUDGET_MB` environment variable, else the default."""
    import math
    import os

    source = "memory_budget_mb"
    if megabytes is None:
        megabytes, source = os.environ.get("LNCA_MEMORY_BUDGET_MB", DEFAULT_MEMORY_BUDGET_MB), "LNCA_MEMORY_BUDGET_MB"
    try:
        value = float(megabytes)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(megabytes, bool) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"`{source}` must be a positive number of megabytes, got {megabytes!r}.")
    return value * 2**20


class PredictFunctions:
    """The compiled predict functions of `predict_with_steps`, per (steps, tolerance).

    A plain object, so that TensorFlow's object tracking (SavedModel export)
    does not try to save the dict it holds.
    """

    def __init__(self):
        self.functions = {}


class RestoreMixin:
    """What a user calls on a trained model with numpy arrays, PIL images or files.

    `restore` (images in, images out, any size, optionally in tiles, with
    the noise level of a noise-level-aware model), `model_input` (a float
    batch as the model's `predict` takes it), `predict_with_steps` (a
    compiled predict function per step count) and `from_preset`. Mixed into
    `NCAModel`, whose `predict`, `input_space` and `inference_steps` it uses.
    """

    def restore(self, image, steps=None, tile=None, batch_size=1, tolerance=None,
                noise_level=None, memory_budget_mb=None, progress=False, self_ensemble=None):
        """Restores images given as numpy arrays or PIL images.

        Args:
            image: array `(H, W)`, `(H, W, C)` or `(N, H, W, C)`, uint8,
                uint16 or float in [0, 1]; a PIL image; or an image file
                path (uint8 or uint16 out, as the file). A gray image given
                to a colour model (and the reverse) is converted, with a warning.
            steps: int, NCA steps (defaults to `inference_steps`).
            tile: int, restore in overlapping tiles of this size (bounded
                memory for huge images). None restores in one piece when the
                estimated memory (`inference_bytes_per_pixel`) fits
                `memory_budget_mb`, else in the largest tiles that fit. A tile
                smaller than the context each tile reads (the receptive
                radius) is raised to it, with a warning.
            batch_size: int, images per forward pass for `(N, H, W, C)` input.
            tolerance: float, stop before `steps` once the mean absolute
                update of a step falls below it (anytime restoration).
            noise_level: a noise-level-aware model's (`noise_map=True`) noise
                level on the 0-255 scale: a number, or a map of the image's
                height and width (noise that varies across the image); None
                estimates it per image: one level, or a map where the level
                varies across the image (`keras_lnca.degradations.estimate_noise_map`). Other
                models take none.
            memory_budget_mb: what the forward pass may take, in MB (default:
                the `LNCA_MEMORY_BUDGET_MB` environment variable, else
                `DEFAULT_MEMORY_BUDGET_MB`). The image's own arrays (input,
                output, conversions: about 40 bytes per pixel and channel)
                come on top.
            progress: show a progress bar over the tiles of a tiled restoration.
            self_ensemble: 1, 2, 4 or 8 views of the image to restore and
                average (a geometric self-ensemble: flips, and with 8 also
                transposes; each output is mapped back before averaging).
                Defaults to the model's `self_ensemble`. Each view costs one
                forward pass and one input-sized copy; the noise level is
                estimated once.

        Returns:
            A numpy array of the input's shape and dtype family (uint8 in,
            uint8 out; float in, float32 out).
        """
        check_restore_arguments(steps, tile, batch_size, tolerance)
        views = self.self_ensemble if self_ensemble is None else check_self_ensemble(self_ensemble)
        views = image_batches.DIHEDRAL_VIEWS[:views]
        budget = memory_budget(memory_budget_mb)
        if noise_level is not None and not self.noise_map:
            raise ValueError(
                "This model does not take a noise level (it was trained without a noise map); "
                "leave `noise_level` out or use a noise-level-aware model."
            )
        batch, restore_like = image_batches.to_batch(image, self.channels, self.grid_factor)
        batch = self.model_input(batch, noise_level, restore_like.size)
        steps = self.inference_steps if steps is None else int(steps)
        restored = None
        for view in views:
            seen = image_batches.dihedral_view(batch, view)
            # Chosen here, so that its warnings point at the caller of `restore`.
            chosen = tiling.choose_tile(self, seen.shape, steps, tile, budget, batch_size)
            out = image_batches.undo_dihedral_view(
                self._restore_batch(seen, steps, chosen, batch_size, tolerance, progress), view
            )
            if restored is None:  # a copy to sum into in place, where views follow
                restored = out if len(views) == 1 else np.array(out, dtype="float32")
            else:
                restored += out
        del batch
        if len(views) > 1:
            restored = restored / np.float32(len(views))
        if not np.all(np.isfinite(restored)):
            raise ValueError(
                "The model's output holds NaN or infinite values: its weights are broken "
                "(a diverged training run?); nothing was restored."
            )
        return restore_like(restored)

    def _restore_batch(self, batch, steps, tile, batch_size, tolerance, progress):
        """One forward pass of `restore` over a model input batch, in tiles of `tile` if any."""
        if tile:
            return tiling.restore_tiled(self, batch, steps=steps, tile=tile, tolerance=tolerance,
                                        progress=progress)
        return self.predict_with_steps(batch, steps, batch_size, tolerance)

    def inference_bytes_per_pixel(self):
        """An upper estimate of the bytes per image pixel a forward pass holds.

        Each cell of the automaton's grid holds `cell.memory_factor` buffers
        of the state's size during a step (state, perception, hidden layer,
        update), one grid per pass (a colour model restoring its channels as
        gray images makes three); the pixel side holds about eight input-sized
        buffers (input, codec, output). A quarter more covers the framework's
        own buffers: `lnca benchmark large` measures the real figure.
        """
        passes = self.channels // self.pass_channels
        cells = passes * self.nca.cell.memory_factor * self.state_channels / self.grid_factor**2
        return int(4 * 1.25 * (cells + 8 * self.input_channels))

    def model_input(self, batch, noise_level=None, size=None):
        """A float image batch `(N, H, W, C)` as this model takes it.

        The batch itself, or for a noise-level-aware model the batch with its
        noise map appended (see `restore` for `noise_level`). `size` is the
        images' own `(height, width)` when the batch was edge-padded beyond it.
        """
        return self.input_space.numpy_input(batch, noise_level, size)

    def predict_with_steps(self, images, steps=None, batch_size=1, tolerance=None):
        """`predict` with a given number of NCA steps and early-stop tolerance.

        One compiled predict function is kept per `(steps, tolerance)`.
        """
        steps = self.inference_steps if steps is None else int(steps)
        key = (steps, tolerance)
        default = (self.inference_steps, self.inference_tolerance)
        self._predict_cache.functions.setdefault(default, self.predict_function)
        self.predict_function = self._predict_cache.functions.get(key)
        self.inference_steps, self.inference_tolerance = key
        try:
            return self.predict(images, batch_size=batch_size, verbose=0)
        finally:
            self._predict_cache.functions[key] = self.predict_function
            self.inference_steps, self.inference_tolerance = default
            self.predict_function = self._predict_cache.functions.get(default)

    @classmethod
    def from_preset(cls, name_or_path, training=True, **compile_kwargs):
        """Loads a shipped preset (see `kl.presets.list()`) or a `.keras` file.

        The model comes back compiled with the default training setup (pass
        `compile()` arguments to change it) in the phase it was saved in, so
        `fit` on your own `(degraded, clean)` data fine-tunes it.
        `training=False` loads it to restore only (no training sample pool
        is allocated; `fit` then trains without one).
        """
        from keras_lnca.models import presets

        from keras_lnca.errors import UserError

        model = presets.load(name_or_path, training=training)
        if not isinstance(model, cls):
            raise UserError(f"{name_or_path} holds a {type(model).__name__}, not a {cls.__name__}.")
        model.compile(**compile_kwargs)
        return model
