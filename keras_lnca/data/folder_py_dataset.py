"""`FolderPyDataset`: the numpy twin of `folder_dataset` (no TensorFlow)."""

import keras
import numpy as np

from keras_lnca.data import _crops
from keras_lnca.data import _folders
from keras_lnca.data._crop_py_dataset import _CropPyDataset
from keras_lnca.errors import UserError


class FolderPyDataset(_CropPyDataset):
    """A `keras.utils.PyDataset` of `(degraded, clean)` crops from a folder.

    Same behaviour as `folder_dataset` (cached images, random crop + flip +
    90-degree rotation, optional augmentation of the clean batch, then the
    degradation), but in numpy: it needs no TensorFlow, so a JAX-only or
    torch-only install can train with it. The degradation runs its numpy
    reference path, seeded per batch. A `Curriculum` is read at every
    `__getitem__`, so `CurriculumCallback` steers it (use threads, not
    `use_multiprocessing`).

    Args:
        folder: a folder of images.
        degradation: a spec string, a `Degradation` or a `Curriculum`.
        crop_size: the side of the square crops.
        batch_size: crops per batch (the last partial batch is dropped).
        channels: 1 or 3; images are converted.
        crops_per_image: crops of each image per epoch; None (default):
            just enough for one full batch (1 once the folder holds `batch_size`
            images).
        shuffle: reshuffle every epoch; `False` also fixes crops and noise.
        seed: makes the batches deterministic; random when `None`.
        augment: an optional Keras augmentation layer for the clean batch
            (its randomness comes from the layer's own seed).
        clip: clip the degraded batch to [0, 1].
        noise_map: append the noise level each crop was given, as a map of
            σ / 255 per pixel, to the degraded batch: the input of a
            noise-level-aware model (`LNCA(noise_map=True)`). The
            degradation needs a Gaussian stage.
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` of
            `keras.utils.PyDataset`.

    Example:

    >>> from keras_lnca.data import FolderPyDataset
    >>> train = FolderPyDataset("train400", "gaussian:25", crop_size=64,
    ...                         batch_size=16, channels=1, seed=0)  # doctest: +SKIP
    >>> degraded, clean = train[0]  # doctest: +SKIP
    """

    def __init__(self, folder, degradation, crop_size=32, batch_size=8, channels=3, *,
                 crops_per_image=None, shuffle=True, seed=None, augment=None, clip=False,
                 noise_map=False, **kwargs):
        self.degradation = _crops.resolve_degradation(degradation)
        if noise_map and "gaussian" not in self.degradation.kinds:
            raise UserError(
                f"noise_map=True needs a Gaussian noise stage in the degradation; "
                f"{self.degradation.spec!r} has none"
            )
        self.noise_map = bool(noise_map)
        paths = _folders.folder_paths(folder)
        arrays, scale = _folders.load_images(paths, channels)
        _crops.check_crop(arrays, paths, crop_size)
        super().__init__(arrays, scale, crop_size, batch_size, crops_per_image, shuffle, seed,
                         **kwargs)
        self.augment = augment
        self.clip = bool(clip)

    def __getitem__(self, idx):
        clean, rng = self._crops(idx)
        if self.augment is not None:
            clean = keras.ops.convert_to_numpy(self.augment(clean, training=True))
            clean = np.asarray(clean, np.float32)
        degraded, info = self.degradation.apply(clean, seed=rng, index=idx * self.batch_size)
        if self.clip:
            degraded = np.clip(degraded, 0.0, 1.0)
        degraded = degraded.astype(np.float32, copy=False)
        if self.noise_map:
            # One level per crop, or a map per crop (spatially varying noise).
            levels = np.stack([
                np.broadcast_to(np.asarray(record["sigma"], np.float32), degraded.shape[1:3])
                for record in info
            ])[..., None] / np.float32(255.0)
            degraded = np.concatenate([degraded, levels], axis=-1)
        return degraded, clean
