"""Shared machinery of the numpy (`keras.utils.PyDataset`) training pipelines."""

import keras
import numpy as np

from keras_lnca.data import _crops
from keras_lnca.data.transforms import random_crop_flip_rot


class _CropPyDataset(keras.utils.PyDataset):
    """Batches of random crops of cached images; subclasses finish the batch.

    Batch `idx` of epoch `e` is drawn from `np.random.default_rng([seed, e,
    idx])` (`e` stays 0 when `shuffle=False`), so it is the same whichever
    worker builds it and in whatever order.
    """

    def __init__(self, arrays, scale, crop_size, batch_size, crops_per_image, shuffle, seed,
                 **kwargs):
        super().__init__(**kwargs)
        _crops.check_sizes(crop_size, batch_size, crops_per_image)
        self._arrays = arrays
        self._scale = np.float32(scale)
        self.crop_size = int(crop_size)
        self.batch_size = int(batch_size)
        self.crops_per_image = _crops.crops_per_epoch(len(arrays), batch_size, crops_per_image)
        self.shuffle = bool(shuffle)
        self.seed = _crops.draw_seed(seed)
        self._epoch = 0
        self._order_cache = (None, None)
        self._batches = len(arrays) * self.crops_per_image // self.batch_size

    def __len__(self):
        return self._batches

    @property
    def epoch(self):
        """How many epochs have ended (advances the shuffles and crops)."""
        return self._epoch

    @epoch.setter
    def epoch(self, value):
        self._epoch = int(value)

    def on_epoch_end(self):
        if self.shuffle:
            self._epoch += 1

    def _order(self):
        epoch, order = self._order_cache
        if epoch != self._epoch:
            order = np.tile(np.arange(len(self._arrays)), self.crops_per_image)
            if self.shuffle:
                order = np.random.default_rng([self.seed, self._epoch]).permutation(order)
            self._order_cache = (self._epoch, order)
        return order

    def _crops(self, idx):
        """`(crops float32 B x S x S x C, rng)` for batch `idx`."""
        if not 0 <= idx < self._batches:
            raise IndexError(f"batch {idx} out of range ({self._batches} batches)")
        rng = np.random.default_rng([self.seed, self._epoch, 1 + idx])
        chosen = self._order()[idx * self.batch_size : (idx + 1) * self.batch_size]
        crops = [random_crop_flip_rot(self._arrays[i], self.crop_size, rng) for i in chosen]
        return np.stack(crops).astype(np.float32) / self._scale, rng
