"""Turning user images (numpy, PIL, files) into model batches and back."""

import os
import warnings

import numpy as np

from keras_lnca.data.io import FLOAT_SLACK as _FLOAT_LIMIT
from keras_lnca.data.io import convert_channels


def to_batch(image, channels, multiple=1):
    """Converts a user image to a float32 `(N, H, W, channels)` batch in [0, 1].

    Accepts `(H, W)`, `(H, W, C)` and `(N, H, W, C)` arrays (uint8, uint16,
    bool, or float on the [0, 1] scale: noisy values slightly outside it are
    kept as they are), PIL images (palette, 16-bit and other modes are
    converted) and image file paths (read as `keras_lnca.data.load_image`
    does, alpha dropped, but keeping the file's bit depth: uint8 or uint16
    out). Gray input to a colour model is replicated to three channels and
    colour input to a gray model is converted to luma, each with a warning;
    an alpha channel of an array or PIL image is set aside and put back
    unchanged. Images smaller than `multiple` on a side are edge-padded (and
    cropped back).

    Returns:
        `(batch, restore_like)`: the batch, and a function that maps a restored
        batch back to the input's shape and dtype family; its `size`
        attribute is the image's `(height, width)` before any padding.

    Raises:
        ValueError: a missing, empty or corrupt file, wrong rank, an empty
            image, an unsupported dtype, NaN/Inf, or floats far outside [0, 1].
    """
    if isinstance(image, (str, bytes, os.PathLike)):
        from keras_lnca.data.io import read_raw

        image, _ = read_raw(os.fsdecode(image))
    elif hasattr(image, "mode") and hasattr(image, "size"):  # a PIL image
        image = _from_pil(image)
    array = np.asarray(image)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"Expected a numeric image array; got dtype {array.dtype}.")
    if not array.dtype.isnative:  # big-endian 16-bit data
        array = array.astype(array.dtype.newbyteorder("="))
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
        _check_float_values(batch, "image")
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
            batch = convert_channels(batch, 1)

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
                    base = convert_channels(base, array.shape[-1] - 1)
                restored = np.concatenate([base, alpha], axis=-1)
            else:
                restored = convert_channels(restored, array.shape[-1])
        elif len(input_shape) == 2 and restored.shape[-1] != 1:
            restored = convert_channels(restored, 1)
        restored = np.clip(restored, 0.0, 1.0)
        if scale is not None and input_dtype != bool:
            restored = np.round(restored * scale).astype(input_dtype)
        else:
            restored = restored.astype("float32")
        return restored.reshape(input_shape)

    restore_like.size = (height, width)
    return batch, restore_like


def _from_pil(image):
    """A numpy array of a PIL image, in a mode `to_batch` understands."""
    mode = image.mode
    if mode in ("1", "L", "LA", "RGB", "RGBA", "F") or mode.startswith("I;16"):
        return np.asarray(image)
    if mode == "I":  # 32-bit integers: how Pillow may open 16-bit gray files
        array = np.asarray(image)
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise ValueError(
                "32-bit integer PIL images must hold 16-bit values (0 to 65535); got "
                f"values from {array.min()} to {array.max()}."
            )
        return array.astype(np.uint16)
    if mode in ("P", "PA"):  # palette indices are not intensities
        transparent = mode == "PA" or "transparency" in image.info
        return np.asarray(image.convert("RGBA" if transparent else "RGB"))
    if mode in ("La", "RGBa"):  # premultiplied alpha
        return np.asarray(image.convert("LA" if mode == "La" else "RGBA"))
    return np.asarray(image.convert("RGB"))  # CMYK, YCbCr, LAB, HSV, ...


def _check_float_values(batch, what):
    if not np.all(np.isfinite(batch)):
        raise ValueError(f"The {what} contains NaN or Inf values.")
    largest = float(np.abs(batch).max())
    if largest > _FLOAT_LIMIT:
        raise ValueError(
            f"Float images must be on the [0, 1] scale; got values up to {largest:.3g} "
            "(divide 0-255 data by 255, or pass it as a uint8 array to `restore`)."
        )


def check_batch(images, channels, multiple=1):
    """Checks a numpy batch given to `predict`, with clear errors.

    `predict` takes float `(N, H, W, channels)` batches in [0, 1] as they
    are (`restore` is the forgiving entry point: it converts dtypes, ranks
    and channel counts). Images smaller than `multiple` on a side, which the
    model cannot reflect-pad, are edge-padded as `restore` does.

    Returns:
        `(batch, crop)`: the batch to predict, and a function that crops a
        predicted batch back to the input's height and width.

    Raises:
        ValueError: wrong rank, channel count or dtype, an empty batch, or
            NaN/Inf values.
    """
    if images.ndim != 4:
        raise ValueError(
            f"predict takes a batch of shape (N, H, W, {channels}); got shape {images.shape} "
            "(`restore` takes single images)."
        )
    if images.shape[-1] != channels:
        raise ValueError(
            f"This model restores {channels}-channel images; got {images.shape[-1]} channels "
            f"in shape {images.shape} (`restore` converts gray and colour images)."
        )
    if images.size == 0:
        raise ValueError(f"The batch is empty (shape {images.shape}).")
    if images.dtype.kind != "f":
        raise ValueError(
            f"predict takes float images in [0, 1]; got dtype {images.dtype} (`restore` "
            "scales uint8 and uint16 images to [0, 1] and back)."
        )
    _check_float_values(images, "batch")
    height, width = images.shape[1:3]
    pad_h, pad_w = max(multiple - height, 0), max(multiple - width, 0)
    if pad_h or pad_w:
        images = np.pad(images, [(0, 0), (0, pad_h), (0, pad_w), (0, 0)], mode="edge")

    def crop(predicted):
        return predicted[:, :height, :width]

    return images, crop


def check_image_tensor(images, channels):
    """Checks a tensor batch given to `call` (any backend, traced or not): rank 4 and the
    model's channel count, where known."""
    if len(images.shape) != 4:
        raise ValueError(
            f"Expected images of shape (batch, height, width, {channels}), "
            f"got shape {tuple(images.shape)}."
        )
    if images.shape[-1] is not None and images.shape[-1] != channels:
        raise ValueError(
            f"This model restores {channels}-channel images; got {images.shape[-1]} channels."
        )


def _static_shape(x):
    """The shape of an array or tensor as a tuple (None for unknown parts), or None."""
    try:
        return tuple(None if d is None else int(d) for d in x.shape)
    except (AttributeError, TypeError, ValueError):  # no shape, or unknown rank
        return None


def check_pairs(degraded, clean, channels, model_name="The model", degraded_channels=None):
    """Checks `(degraded, clean)` training pairs against a model's channels.

    Works on numpy arrays and on backend tensors (TensorFlow, JAX, torch)
    inside a traced `train_step`; unknown dimensions are not checked.
    `degraded_channels` (default `channels`) is the input's channel count: a
    noise-level-aware model's degraded batch also carries the noise map.

    Raises:
        ValueError: a batch that is not `(N, H, W, C)`, a channel count other
            than the model's, or degraded and clean images of different sizes.
    """
    if degraded_channels is None:
        degraded_channels = channels
    shapes = {"degraded": _static_shape(degraded), "clean": _static_shape(clean)}
    expected = {"degraded": degraded_channels, "clean": channels}
    for name, shape in shapes.items():
        if shape is None:
            continue
        if len(shape) != 4:
            raise ValueError(
                f"{model_name} trains on (degraded, clean) batches of shape (N, H, W, "
                f"{channels}); got {name} images of shape {shape}."
            )
        if shape[-1] is not None and shape[-1] != expected[name]:
            if name == "degraded" and degraded_channels != channels:
                raise ValueError(
                    f"{model_name} is noise-level-aware: its degraded images have "
                    f"{channels} channel(s) plus a noise map (sigma / 255 per pixel) as "
                    f"the last channel, {degraded_channels} in all; got {shape[-1]} (shape "
                    f"{shape}). Use `noise_map=True` in the data pipeline."
                )
            raise ValueError(
                f"{model_name} restores {channels}-channel images; got {shape[-1]}-channel "
                f"{name} images (shape {shape}). Convert the data (e.g. `channels={channels}` "
                f"in the data pipeline) or use a model with `channels={shape[-1]}`."
            )
    first, second = shapes["degraded"], shapes["clean"]
    if first is not None and second is not None:
        if any(a is not None and b is not None and a != b for a, b in zip(first[:3], second[:3])):
            raise ValueError(
                f"Degraded and clean images must have the same shape; got {first} and {second}."
            )


# The views of a geometric self-ensemble, as (transpose, flip rows, flip
# columns): the first 1, 2 or 4 keep an image's shape, all 8 are the
# symmetries of the square.
DIHEDRAL_VIEWS = (
    (False, False, False), (False, False, True), (False, True, False), (False, True, True),
    (True, False, False), (True, False, True), (True, True, False), (True, True, True),
)


def dihedral_view(batch, view):
    """`batch` seen through one of `DIHEDRAL_VIEWS`, as a contiguous array.

    Args:
        batch: array `(N, H, W, C)`.
        view: `(transpose, flip_rows, flip_columns)`, an entry of `DIHEDRAL_VIEWS`.

    Returns:
        `(N, W, H, C)` for a transposing view, else `(N, H, W, C)`.
    """
    transpose, flip_rows, flip_columns = view
    if transpose:
        batch = np.swapaxes(batch, 1, 2)
    if flip_rows:
        batch = batch[:, ::-1]
    if flip_columns:
        batch = batch[:, :, ::-1]
    return np.ascontiguousarray(batch)


def undo_dihedral_view(batch, view):
    """The inverse of `dihedral_view(batch, view)` (a view of `batch`, not a copy).

    Args:
        batch: array `(N, H, W, C)`, as `dihedral_view(..., view)` returned it.
        view: the same entry of `DIHEDRAL_VIEWS`.
    """
    transpose, flip_rows, flip_columns = view
    if flip_columns:
        batch = batch[:, :, ::-1]
    if flip_rows:
        batch = batch[:, ::-1]
    if transpose:
        batch = np.swapaxes(batch, 1, 2)
    return batch
