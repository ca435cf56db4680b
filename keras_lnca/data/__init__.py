"""Data pipelines for training and evaluation.

* `load_image`, `list_images`, `save_image`: image files (numpy, Pillow).
* `folder_dataset`, `paired_folder_dataset`: `tf.data` training pipelines of
  `(degraded, clean)` crops; `FolderPyDataset`, `PairedFolderPyDataset`:
  the same as `keras.utils.PyDataset`s, without TensorFlow.
* `evaluation_images`, `paired_evaluation_images`: full-resolution images in
  sorted order.
* `keras_lnca.data.tfds_builder`: a tensorflow-datasets builder for the
  benchmark sets (imported on its own: it needs tensorflow-datasets).

Nothing here imports TensorFlow until a `tf.data` pipeline is built, nor
Keras until a `PyDataset` class is first used (so that image files can be
read and written, e.g. `io.atomic_write`, without loading a backend).
"""

from keras_lnca.data._folders import find_pairs
from keras_lnca.data._folders import is_paired_folder
from keras_lnca.data.folder import evaluation_images
from keras_lnca.data.folder import folder_dataset
from keras_lnca.data.folder import paired_evaluation_images
from keras_lnca.data.folder import paired_folder_dataset
from keras_lnca.data.io import list_images
from keras_lnca.data.io import load_image
from keras_lnca.data.io import save_image

__all__ = [
    "FolderPyDataset",
    "PairedFolderPyDataset",
    "evaluation_images",
    "find_pairs",
    "folder_dataset",
    "is_paired_folder",
    "list_images",
    "load_image",
    "paired_evaluation_images",
    "paired_folder_dataset",
    "save_image",
]

# The PyDataset classes subclass `keras.utils.PyDataset`: loaded on first use.
_LAZY = {
    "FolderPyDataset": "keras_lnca.data.folder_py_dataset",
    "PairedFolderPyDataset": "keras_lnca.data.paired_folder_py_dataset",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
