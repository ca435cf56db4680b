"""Images for export: test-set reference crops, int8 calibration inputs, smooth random images."""

import numpy as np

from keras_lnca.data import list_images
from keras_lnca.data import load_image
from keras_lnca.degradations import data_dir
from keras_lnca.degradations import degrade_for_eval
from keras_lnca.errors import UserError

# Number of calibration samples drawn when `representative_data` is None.
CALIBRATION_SAMPLES = 16
_TEST_SETS = {1: "gray/set12", 3: "color/cbsd68"}
_TRAIN_SETS = {1: "gray/train400", 3: "color/cbsd432"}


def degrade(images, degradation):
    """`images` degraded with the `degradation` spec, evaluation seed 0."""
    return np.stack(list(degrade_for_eval(list(images), degradation, seed=0))).astype(np.float32)


def reference_images(channels, size, count):
    """Clean center crops of the test set, or smooth random images; `(images, name)`."""
    folder = data_dir() / _TEST_SETS[channels]
    crops = _folder_crops(folder, channels, size, count, rng=None)
    if crops is not None:
        return crops, folder.name
    return smooth_images(count, size, channels, seed=1), "synthetic"


def _folder_crops(folder, channels, size, count, rng):
    """`count` crops of the images in `folder` (center crops when `rng` is None)."""
    if not folder.is_dir():
        return None
    files = list_images(folder)
    if rng is not None:
        files = [files[i] for i in rng.permutation(len(files))]
    crops = []
    for file in files:
        image = load_image(file, channels=channels)
        if image.shape[0] < size[0] or image.shape[1] < size[1]:
            continue
        crops.append(_crop(image, size, rng))
        if len(crops) == count:
            break
    return np.stack(crops).astype(np.float32) if crops else None


def _crop(image, size, rng=None):
    top_room, left_room = image.shape[0] - size[0], image.shape[1] - size[1]
    if rng is None:
        top, left = top_room // 2, left_room // 2
    else:
        top, left = int(rng.integers(0, top_room + 1)), int(rng.integers(0, left_room + 1))
    return image[top : top + size[0], left : left + size[1]]


def smooth_images(count, size, channels, seed):
    """Smooth random images in [0.1, 0.9]: a few random sinusoids and edges."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]] / max(size)
    images = []
    for _ in range(count):
        image = np.zeros((*size, channels))
        for _ in range(4):
            fy, fx, phase = rng.uniform(0, 12, 3)
            image += rng.uniform(0.2, 1, channels) * np.sin(fy * yy + fx * xx + phase)[..., None]
        edge = (rng.uniform(-1, 1) * yy + rng.uniform(-1, 1) * xx) > rng.uniform(-0.5, 0.5)
        image += rng.uniform(-1, 1, channels) * edge[..., None]
        image = (image - image.min()) / max(image.max() - image.min(), 1e-6)
        images.append(0.1 + 0.8 * image)
    return np.asarray(images, np.float32)


def calibration_images(channels, size, representative_data, degradation):
    """int8 calibration inputs `(N, H, W, C)` at the export size."""
    if representative_data is None:
        rng = np.random.default_rng(0)
        folder = data_dir() / _TRAIN_SETS[channels]
        clean = _folder_crops(folder, channels, size, CALIBRATION_SAMPLES, rng=rng)
        if clean is None:
            clean = smooth_images(CALIBRATION_SAMPLES, size, channels, seed=2)
        return np.clip(degrade(clean, degradation), 0.0, 1.0)
    data = representative_data() if callable(representative_data) else representative_data
    images = []
    for item in data:
        item = np.asarray(item, np.float32)
        images.extend(item if item.ndim == 4 else [item])
    if not images:
        raise UserError("representative_data holds no images")
    out = []
    for image in images:
        image = image[..., None] if image.ndim == 2 else image
        if image.ndim != 3 or image.shape[-1] != channels:
            raise UserError(
                f"representative_data images must be (H, W) or (H, W, {channels}), "
                f"got {image.shape}"
            )
        if image.shape[0] < size[0] or image.shape[1] < size[1]:
            raise UserError(
                f"representative_data image {image.shape[:2]} is smaller than the export "
                f"size {size}"
            )
        out.append(_crop(image, size))
    return np.stack(out).astype(np.float32)
