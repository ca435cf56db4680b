"""The rules of a crop dataset: crop and batch sizes, crops per epoch, the seed, the degradation."""

import numpy as np

from keras_lnca.errors import UserError


def check_crop(arrays, paths_or_names, crop_size):
    """Every image must be at least `crop_size` on both sides."""
    for array, name in zip(arrays, paths_or_names):
        if min(array.shape[:2]) < crop_size:
            raise UserError(
                f"image {name} is {array.shape[0]}x{array.shape[1]}, "
                f"smaller than crop_size {crop_size}"
            )


def resolve_degradation(degradation):
    """A spec string, a `Degradation` or a `Curriculum` -> a degradation object."""
    from keras_lnca.degradations import parse

    if isinstance(degradation, str):
        return parse(degradation)
    if callable(degradation) and hasattr(degradation, "apply_tf"):
        return degradation
    raise UserError(
        f"degradation must be a spec string, a Degradation or a Curriculum, got {degradation!r}"
    )


def check_sizes(crop_size, batch_size, crops_per_image):
    """Crop, batch and crop counts must be positive integers (`crops_per_image` may be None)."""
    for name, value in (("crop_size", crop_size), ("batch_size", batch_size),
                        ("crops_per_image", 1 if crops_per_image is None else crops_per_image)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise UserError(f"{name} must be a positive integer, got {value!r}")


def crops_per_epoch(count, batch_size, crops_per_image):
    """Crops of each image per epoch: as given, or (None) just enough for one full batch.

    Raises a one-line `UserError` that says what to change when the given
    count makes no full batch.
    """
    enough = -(-int(batch_size) // count)
    if crops_per_image is None:
        return max(1, enough)
    if count * crops_per_image < batch_size:
        raise UserError(
            f"{count} image(s) x {crops_per_image} crop(s) make no full batch of {batch_size}: "
            f"pass crops_per_image={enough} (or None), or batch_size={count * crops_per_image}"
        )
    return int(crops_per_image)


def draw_seed(seed):
    """`seed` as an int; a fresh random one when `None`."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0] >> 1)
    return int(seed)
