"""Turning user images (numpy, PIL) into model batches and back."""

import warnings

import numpy as np


def to_batch(image, channels, multiple=1):
    """Converts a user image to a float32 `(N, H, W, channels)` batch in [0, 1].

    Accepts `(H, W)`, `(H, W, C)` and `(N, H, W, C)` arrays (uint8, uint16,
    bool, or float on the [0, 1] scale: noisy values slightly outside it are
    kept as they are) and PIL images. Gray input to a colour model is
    replicated to three channels and colour input to a gray model is converted
    to luma, each with a warning; an alpha channel is dropped. Images smaller
    than `multiple` on a side are edge-padded (and cropped back).

    Returns:
        `(batch, restore_like)`: the batch, and a function that maps a restored
        batch back to the input's shape and dtype family.

    Raises:
        ValueError: wrong rank, empty image, NaN/Inf, or floats outside [0, 1].
    """
    if hasattr(image, "mode") and hasattr(image, "size"):  # a PIL image
        image = np.asarray(image)
    array = np.asarray(image)
    if array.dtype == object:
        raise ValueError("Expected a numeric image array.")
    if array.ndim not in (2, 3, 4):
        raise ValueError(
            f"Expected an image of shape (H, W), (H, W, C) or (N, H, W, C); got shape {array.shape}."
        )
    if array.size == 0:
        raise ValueError(f"The image is empty (shape {array.shape}).")
    input_shape, input_dtype = array.shape, array.dtype
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim == 3:
        array = array[None]
    if array.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(
            f"Expected 1 to 4 channels in the last axis; got shape {input_shape}."
        )

    if input_dtype == np.uint8:
        scale = 255.0
    elif input_dtype == np.uint16:
        scale = 65535.0
    elif input_dtype == bool:
        scale = 1.0
    elif np.issubdtype(input_dtype, np.integer):
        raise ValueError(f"Integer images must be uint8 or uint16; got {input_dtype}.")
    else:
        scale = None
    batch = array.astype("float32")
    if scale is None:
        # Float images are taken as they are: noisy inputs legitimately leave
        # [0, 1] (evaluation does not clip them), so only non-finite values fail.
        if not np.all(np.isfinite(batch)):
            raise ValueError("The image contains NaN or Inf values.")
        if float(np.abs(batch).max()) > 4.0:
            raise ValueError(
                "Float images must be on the [0, 1] scale; got values up to "
                f"{float(np.abs(batch).max()):.3g} (pass uint8 arrays for 0-255 data)."
            )
    else:
        batch = batch / scale

    given = batch.shape[-1]
    if given in (2, 4):  # drop alpha
        batch = batch[..., : given - 1]
        given -= 1
    if given != channels:
        if channels == 3:
            warnings.warn("Gray image given to a colour model: replicating it to RGB.")
            batch = np.repeat(batch, 3, axis=-1)
        else:
            warnings.warn("Colour image given to a gray model: converting it to luma.")
            batch = batch @ np.array([0.299, 0.587, 0.114], "float32")[:, None]

    height, width = batch.shape[1:3]
    pad_h, pad_w = max(multiple - height, 0), max(multiple - width, 0)
    if pad_h or pad_w:
        batch = np.pad(batch, [(0, 0), (0, pad_h), (0, pad_w), (0, 0)], mode="edge")
    batch = np.ascontiguousarray(batch, dtype="float32")

    def restore_like(restored):
        restored = np.asarray(restored)[:, :height, :width, :]
        if restored.shape[-1] != array.shape[-1] and len(input_shape) >= 3:
            if array.shape[-1] in (2, 4):
                # Put the alpha channel back unchanged.
                alpha = array[..., -1:].astype("float32") / (scale or 1.0)
                base = restored
                if base.shape[-1] != array.shape[-1] - 1:
                    base = _match_channels(base, array.shape[-1] - 1)
                restored = np.concatenate([base, alpha], axis=-1)
            else:
                restored = _match_channels(restored, array.shape[-1])
        elif len(input_shape) == 2 and restored.shape[-1] != 1:
            restored = _match_channels(restored, 1)
        restored = np.clip(restored, 0.0, 1.0)
        if scale is not None and input_dtype != bool:
            restored = np.round(restored * scale).astype(input_dtype)
        else:
            restored = restored.astype("float32")
        return restored.reshape(input_shape)

    return batch, restore_like


def _match_channels(batch, channels):
    if batch.shape[-1] == channels:
        return batch
    if channels == 1:
        return batch @ np.array([0.299, 0.587, 0.114], "float32")[:, None]
    return np.repeat(batch, channels, axis=-1)
