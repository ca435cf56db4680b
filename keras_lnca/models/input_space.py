"""`InputSpace`: how a model's inputs become the images its automaton restores."""

import numpy as np
from keras import ops

from keras_lnca.degradations import estimate_noise_map
from keras_lnca.models import color_space as color_space_lib

# Noise levels are on the 0-255 scale.
MAX_NOISE_LEVEL = 255.0


class InputSpace:
    """The input side of an `NCAModel`: noise map and colour space.

    A model's input batch is `(N, H, W, C)` images, plus, for a
    noise-level-aware model (`noise_map=True`), a last channel holding the
    noise level per pixel as σ / 255. A colour model with a `color_space`
    restores each channel of that space as a gray image with one rule: its
    images become `(N * 3, H, W, 1)` "passes" (each told its channel's noise
    level) and return to RGB afterwards. A plain model's passes are its images.
    With `luma_guide`, every pass of a degraded image also carries that
    image's (noisy) luma as a second channel, so that the chroma passes can
    follow the edges that luma shows: `(N * 3, H, W, 2 [+ map])`.

    Args:
        channels: int, image channels of the model (1 or 3).
        noise_map: bool, whether inputs carry the noise map.
        color_space: None or `"opponent"` (`keras_lnca.models.color_space`).
        grid_factor: int, pixels per cell along each side.
        luma_guide: bool, whether each pass carries the luma (needs a
            `color_space`).

    Example:
    ```python
    space = InputSpace(3, noise_map=True, color_space="opponent", grid_factor=4)
    passes = space.to_passes(batch)        # (N * 3, H, W, 2)
    ```
    """

    # The state's noise channel holds sigma / 50 (sigma on the 0-255 scale):
    # values of order one over the levels the models are trained on.
    noise_grid_scale = 255.0 / 50.0

    def __init__(self, channels, noise_map=False, color_space=None, grid_factor=1, luma_guide=False):
        if not isinstance(luma_guide, bool):
            raise ValueError(f"`luma_guide` must be True or False, got {luma_guide!r}.")
        if luma_guide and color_space is None:
            raise ValueError("`luma_guide=True` needs a `color_space` (the passes it guides).")
        if not isinstance(noise_map, bool):
            raise ValueError(f"`noise_map` must be True or False, got {noise_map!r}.")
        if color_space not in color_space_lib.COLOR_SPACES:
            raise ValueError(
                f"`color_space` must be one of {color_space_lib.COLOR_SPACES}, got {color_space!r}."
            )
        if color_space is not None and channels != 3:
            raise ValueError(f"`color_space={color_space!r}` needs `channels=3`, got {channels}.")
        self.channels = channels
        self.noise_map = noise_map
        self.color_space = color_space
        self.grid_factor = grid_factor
        self.luma_guide = luma_guide

    @property
    def input_channels(self):
        """Channels of an input batch: the image's, plus the noise map's."""
        return self.channels + int(self.noise_map)

    @property
    def pass_channels(self):
        """Image channels the automaton restores in one pass."""
        return 1 if self.color_space else self.channels

    @property
    def guide_channels(self):
        """Channels of the luma guide in a degraded pass (0 or 1)."""
        return int(self.luma_guide)

    def split(self, images):
        """`(image, noise map or None)`: a noise-level-aware model's input is both."""
        if not self.noise_map:
            return images, None
        return images[..., :-1], images[..., -1:]

    def to_passes(self, images, with_map=True):
        """Model inputs `(N, H, W, C [+ map])` → what the automaton restores.

        The identity, except with a `color_space`: the images go to that
        space and each channel becomes a gray image of its own, `(N * 3, H,
        W, 1 [+ map])`, with the noise map scaled to that channel's noise.
        `with_map=False`: images without a map (clean ones): no guide either.
        """
        if self.color_space is None:
            return images
        image, noise_map = self.split(images) if with_map else (images, None)
        opponent = color_space_lib.to_opponent(image)
        passes = _channels_to_batch(opponent)
        if self.luma_guide and with_map:
            luma = ops.repeat(opponent[..., :1], self.channels, axis=-1)
            passes = ops.concatenate([passes, _channels_to_batch(luma)], axis=-1)
        if noise_map is None:
            return passes
        scales = ops.cast(color_space_lib.OPPONENT_NOISE_SCALES, noise_map.dtype)
        return ops.concatenate([passes, _channels_to_batch(noise_map * scales)], axis=-1)

    def from_passes(self, passes):
        """The inverse of `to_passes` for restored images (no noise map).

        With a `color_space`, each channel is clipped to [0, 1], as a gray
        model's restore would be, before it returns to RGB.
        """
        if self.color_space is None:
            return passes
        passes = ops.clip(passes, 0.0, 1.0)
        return color_space_lib.from_opponent(_batch_to_channels(passes, self.channels))

    def image_and_noise_grid(self, passes):
        """`(image, noise grid or None)` of padded passes: the image the encoder
        reads (with the luma guide, if any, as its last channel: see
        `split_guide`) and, for a noise-level-aware model, its map as the
        state holds it."""
        image, noise_map = self.split(passes)
        return image, None if noise_map is None else self.noise_grid(noise_map)

    def split_guide(self, image):
        """`(pass image, luma guide or None)` of what `image_and_noise_grid` returned."""
        if not self.luma_guide:
            return image, None
        return image[..., :-1], image[..., -1:]

    def noise_grid(self, noise_map):
        """The noise map (σ / 255 per pixel) averaged over each cell, as the state holds it."""
        factor = self.grid_factor
        if factor > 1:
            noise_map = ops.average_pool(noise_map, factor, strides=factor, padding="valid")
        return noise_map * self.noise_grid_scale

    def numpy_input(self, batch, noise_level=None, size=None):
        """A float numpy batch `(N, H, W, C)` as the model takes it (see `NCAModel.model_input`)."""
        if not self.noise_map:
            return batch
        height, width = size or batch.shape[1:3]
        levels = noise_level_map(noise_level, batch, height, width)
        return np.concatenate([batch, levels.astype(batch.dtype)], axis=-1)


def noise_level_map(noise_level, batch, height, width):
    """The noise map (σ / 255 per pixel, `(N, H', W', 1)`) of a restore batch.

    `batch` is the float `(N, H', W', C)` batch `restore` built (edge-padded
    to at least the cell size); `height` and `width` are the image's own
    size. `noise_level` (0-255 scale) is None (estimated per image with
    `keras_lnca.degradations.estimate_noise_map`: one level, or a map where
    the level varies across the image), a number, or a map of
    the image's size: `(H, W)`, `(H, W, 1)` or `(N, H, W)` / `(N, H, W, 1)`.
    A map is edge-padded as the image was.
    """
    n, padded_h, padded_w = batch.shape[:3]
    if noise_level is None:
        estimates = [estimate_noise_map(image[:height, :width]) for image in batch]
        if all(np.ndim(level) == 0 for level in estimates):  # one level per image
            levels = np.clip(np.array(estimates, np.float32), 0, MAX_NOISE_LEVEL)
            return np.broadcast_to(levels[:, None, None, None] / 255.0, (n, padded_h, padded_w, 1))
        noise_level = np.clip(np.stack([np.broadcast_to(np.float32(level), (height, width))
                                        for level in estimates]), 0, MAX_NOISE_LEVEL)
    if isinstance(noise_level, bool):
        raise ValueError(f"`noise_level` must be a number or a map, got {noise_level!r}.")
    level = np.asarray(noise_level, dtype=np.float32)
    if level.dtype.kind != "f" or not np.all(np.isfinite(level)):
        raise ValueError("`noise_level` must hold finite numbers.")
    if level.size and (level.min() < 0 or level.max() > MAX_NOISE_LEVEL):
        raise ValueError(
            f"`noise_level` is on the 0-255 scale: values in [0, {MAX_NOISE_LEVEL:g}], "
            f"got {level.min():g} to {level.max():g}."
        )
    if level.ndim == 0:
        return np.full((n, padded_h, padded_w, 1), level / 255.0, np.float32)
    if level.ndim >= 3 and level.shape[-1] == 1 and level.shape[-3:-1] == (height, width):
        level = level[..., 0]
    if level.shape[-2:] != (height, width) or level.ndim not in (2, 3) or (
        level.ndim == 3 and level.shape[0] != n
    ):
        raise ValueError(
            f"A `noise_level` map must be {height}x{width} (the image's size), optionally "
            f"per image ({n}x{height}x{width}); got shape {level.shape}."
        )
    level = np.broadcast_to(level, (n, height, width))
    pad = [(0, 0), (0, padded_h - height), (0, padded_w - width)]
    return np.pad(level, pad, mode="edge")[..., None] / 255.0


def _channels_to_batch(images):
    """`(N, H, W, C)` → `(N * C, H, W, 1)`: each channel an image of its own."""
    shape = ops.shape(images)
    channels_first = ops.transpose(images, (0, 3, 1, 2))
    return ops.reshape(channels_first, (-1, shape[1], shape[2], 1))


def _batch_to_channels(images, channels):
    """The inverse of `_channels_to_batch`."""
    shape = ops.shape(images)
    grouped = ops.reshape(images, (-1, channels, shape[1], shape[2]))
    return ops.transpose(grouped, (0, 2, 3, 1))
