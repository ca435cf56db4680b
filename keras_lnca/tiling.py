"""Restoring huge images in overlapping tiles, in bounded memory."""

import math
import warnings

import numpy as np


def tile_windows(length, tile, margin, multiple):
    """Splits `[0, length)` into cores of `tile` and windows `margin` wider.

    Window starts are multiples of `multiple` (the model's pixels per cell),
    so every window's latent grid lines up with the whole image's.

    Returns:
        A list of `(window_start, window_end, core_start, core_end)`.
    """
    tile = max(multiple, -(-tile // multiple) * multiple)
    spans = []
    for core_start in range(0, length, tile):
        core_end = min(core_start + tile, length)
        start = max(0, core_start - margin) // multiple * multiple
        end = min(length, core_end + margin)
        spans.append((start, end, core_start, core_end))
    return spans


def choose_tile(model, shape, steps, tile, budget, batch_size=1):
    """The tile size `restore` uses: `tile` (raised to the context margin, with a
    warning, when smaller), or, when None, None if the whole batch of `shape`
    fits `budget` bytes, else the largest tile whose window fits it (a tile is at
    least the context margin; a budget below that window is exceeded, with a
    warning, and an image no larger than one window is not tiled)."""
    margin = model.receptive_radius(steps)
    factor = model.grid_factor
    if tile is not None:
        tile = int(tile)
        if tile < margin:
            warnings.warn(
                f"Tiles of {tile} pixels would each read {margin} pixels of context on every side "
                f"(the model's reach at {steps} steps), mostly repeated work; using {margin}.",
                stacklevel=3,
            )
            tile = margin
        return tile
    _, height, width, _ = shape
    per_pixel = model.inference_bytes_per_pixel()
    if min(batch_size, shape[0]) * height * width * per_pixel <= budget:
        return None
    side = int(math.sqrt(budget / per_pixel))
    tile = max(side - 2 * margin, margin, factor) // factor * factor
    window = tile + 2 * margin
    if window >= height and window >= width:
        return None  # every window would hold the whole image: tiling would save nothing
    if window > side:
        warnings.warn(
            f"A memory budget of {budget / 2**20:.1f} MB holds a {side} x {side}-pixel window; the "
            f"smallest useful one is {window} x {window} (tiles of {tile} pixels and the model's reach "
            f"of {margin} on every side), so restoring takes more than the budget.",
            stacklevel=3,
        )
    return tile


def restore_tiled(model, batch, steps, tile, margin=None, tolerance=None, progress=False):
    """Restores `batch` (N, H, W, C) tile by tile.

    Each output pixel is computed from a window that extends `margin`
    pixels (default: the model's receptive radius for `steps` steps) beyond
    its tile on every side, so with the deterministic inference path the
    result equals the untiled restoration (up to float rounding); tiles are
    pasted without blending because there is nothing to hide. Cells with a
    position-dependent rule (ViTCA's positional encoding) break that
    equality; there, a margin still removes seams.

    Args:
        model: an `NCAModel` (LNCA or PixelNCA).
        batch: float32 array `(N, H, W, C)`.
        steps: int, NCA steps.
        tile: int, core tile size in pixels.
        margin: int, context around each tile; defaults to the receptive radius.
        tolerance: float, early-stop tolerance of each tile's NCA (tiles then
            may stop at different steps, so tiled and untiled results differ).
        progress: show a progress bar over the windows.

    Returns:
        The restored float32 batch.
    """
    margin = model.receptive_radius(steps) if margin is None else int(margin)
    factor = model.grid_factor
    _, height, width, _ = batch.shape
    restored = np.empty(batch.shape[:-1] + (model.channels,), batch.dtype)  # the input may hold a noise map
    rows = tile_windows(height, tile, margin, factor)
    columns = tile_windows(width, tile, margin, factor)
    bar = None
    if progress and len(rows) * len(columns) > 1:
        import keras

        bar = keras.utils.Progbar(len(rows) * len(columns), unit_name="tile")
    for top, bottom, core_top, core_bottom in rows:
        for left, right, core_left, core_right in columns:
            window = batch[:, top:bottom, left:right]
            out = model.predict_with_steps(window, steps, tolerance=tolerance)
            restored[:, core_top:core_bottom, core_left:core_right] = out[
                :, core_top - top : core_bottom - top, core_left - left : core_right - left
            ]
            if bar is not None:
                bar.add(1)
    return restored
