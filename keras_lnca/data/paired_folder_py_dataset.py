"""`PairedFolderPyDataset`: the numpy twin of `paired_folder_dataset`."""

from keras_lnca.data import _crops
from keras_lnca.data import _folders
from keras_lnca.data._crop_py_dataset import _CropPyDataset


class PairedFolderPyDataset(_CropPyDataset):
    """A `keras.utils.PyDataset` of `(damaged, gt)` crops from `GT/` + `DAMAGED/`.

    Files pair by stem; each pair gets one joint crop, flip and 90-degree
    rotation, so the two stay aligned. No TensorFlow needed.

    Args:
        folder: a folder with `GT/` and `DAMAGED/` subfolders.
        crop_size: the side of the square crops.
        batch_size: crops per batch (the last partial batch is dropped).
        channels: 1 or 3; both images are converted.
        crops_per_image: crops of each pair per epoch; None (default):
            just enough for one full batch.
        shuffle: reshuffle every epoch; `False` also fixes the crops.
        seed: makes the batches deterministic; random when `None`.
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size`.

    Example:

    >>> from keras_lnca.data import PairedFolderPyDataset
    >>> ds = PairedFolderPyDataset("my_pairs", crop_size=64, seed=0)  # doctest: +SKIP
    >>> damaged, gt = ds[0]  # doctest: +SKIP
    """

    def __init__(self, folder, crop_size=32, batch_size=8, channels=3, *, crops_per_image=None,
                 shuffle=True, seed=None, **kwargs):
        stacked, scale, self._channels, names = _folders.load_pairs(folder, channels)
        _crops.check_crop(stacked, names, crop_size)
        super().__init__(stacked, scale, crop_size, batch_size, crops_per_image, shuffle, seed,
                         **kwargs)

    def __getitem__(self, idx):
        both, _ = self._crops(idx)
        return both[..., self._channels :], both[..., : self._channels]
