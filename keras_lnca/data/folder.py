"""`tf.data` pipelines over image folders, and full-resolution evaluation images.

TensorFlow is imported inside the functions that build `tf.data` pipelines;
the rest of `keras_lnca.data` works without it.
"""

import numpy as np

from keras_lnca.data import _crops
from keras_lnca.data import _folders
from keras_lnca.data import transforms
from keras_lnca.data.io import load_image
from keras_lnca.errors import UserError


def _crop_dataset(arrays, scale, crop_size, batch_size, crops_per_image, shuffle,
                  repeat, seed, drop_remainder):
    """tf.data of batched float32 crops (`B x S x S x C`) and a degradation seed."""
    import tensorflow as tf

    count = len(arrays)
    if drop_remainder or crops_per_image is None:
        crops_per_image = _crops.crops_per_epoch(count, batch_size, crops_per_image)
    channels = arrays[0].shape[-1]
    flat = tf.constant(np.concatenate([a.reshape(-1) for a in arrays]))
    offsets = tf.constant(np.cumsum([0] + [a.size for a in arrays]), tf.int64)
    shapes = tf.constant([a.shape for a in arrays], tf.int32)

    def crop(index, crop_seed):
        image = tf.reshape(flat[offsets[index] : offsets[index + 1]], shapes[index])
        image.set_shape([None, None, channels])
        patch = transforms.tf_random_crop_flip_rot(image, crop_size, crop_seed)
        return tf.cast(patch, tf.float32) / tf.constant(scale, tf.float32)

    # shuffle=False also fixes the crops and noise: the same batches every epoch.
    vary = bool(shuffle)
    ds = tf.data.Dataset.range(count)
    if crops_per_image > 1:
        ds = ds.repeat(crops_per_image)
    if shuffle:
        ds = ds.shuffle(count * crops_per_image, seed=seed, reshuffle_each_iteration=True)
    if repeat is True:
        ds = ds.repeat()
    elif repeat:
        ds = ds.repeat(int(repeat))
    crop_seeds = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=vary).batch(2)
    ds = tf.data.Dataset.zip(ds, crop_seeds)
    ds = ds.map(crop, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    batch_seeds = tf.data.Dataset.random(seed=seed + 2, rerandomize_each_iteration=vary).batch(2)
    return tf.data.Dataset.zip(ds, batch_seeds)


def folder_dataset(
    folder,
    degradation,
    crop_size=32,
    batch_size=8,
    channels=3,
    *,
    crops_per_image=None,
    shuffle=True,
    repeat=False,
    seed=None,
    augment=None,
    clip=False,
    drop_remainder=True,
    backend="tf",
):
    """A training pipeline of `(degraded, clean)` crops from an image folder.

    All images are read once and cached in memory in their 8/16-bit form
    (Train400: 13 MB; CBSD432: about 200 MB). Each epoch visits every image
    `crops_per_image` times: a random `crop_size` square, a random flip and
    90-degree rotation (one transform for the clean crop), then `augment`
    on the clean batch, then the degradation through its TensorFlow path
    (stateless random ops). Gaussian noise is not clipped unless
    `clip=True`; impulse noise always is.

    Args:
        folder: a folder of images (PNG, JPEG, ...).
        degradation: a spec string (`"gaussian:25"`, `"blur:levin09,gaussian:2.55"`,
            ...), a `Degradation` or a `Curriculum`.
        crop_size: the side of the square training crops.
        batch_size: crops per batch.
        channels: 1 (gray) or 3 (colour); images are converted.
        crops_per_image: crops of each image per epoch; None (default):
            just enough for one full batch (1 once the folder holds `batch_size`
            images).
        shuffle: shuffle every epoch. `False` also fixes the crops and the
            noise, so every epoch sees the same batches (validation).
        repeat: `False` (one pass per epoch; `fit` restarts it), `True`
            (endless: give `fit` a `steps_per_epoch`) or a number of passes.
        seed: makes the pipeline deterministic (shuffles, crops, noise); a
            random one when `None`.
        augment: an optional Keras augmentation layer (e.g.
            `keras.layers.RandomContrast`) applied to the clean batch before
            it is degraded; it runs inside `tf.data` on every backend.
        clip: clip the degraded batch to [0, 1].
        drop_remainder: drop a last, smaller batch.
        backend: `"tf"` returns a `tf.data.Dataset`; `"numpy"` returns the
            equivalent `FolderPyDataset` (no TensorFlow needed).

    Returns:
        A `tf.data.Dataset` of `(degraded, clean)` float32 `B x S x S x C`
        batches (or a `FolderPyDataset`).

    Example:

    >>> import keras_lnca as kl
    >>> train = kl.data.folder_dataset("train400", "gaussian:0-50", crop_size=64,
    ...                                batch_size=16, channels=1, seed=0)  # doctest: +SKIP
    >>> model.fit(train, epochs=10)  # doctest: +SKIP
    """
    if backend == "numpy":
        if repeat:
            raise UserError("repeat is not available with backend='numpy' (a PyDataset is per epoch)")
        from keras_lnca.data.folder_py_dataset import FolderPyDataset

        return FolderPyDataset(
            folder, degradation, crop_size, batch_size, channels,
            crops_per_image=crops_per_image, shuffle=shuffle, seed=seed,
            augment=augment, clip=clip,
        )
    if backend != "tf":
        raise UserError(f"backend must be 'tf' or 'numpy', got {backend!r}")
    import tensorflow as tf

    _crops.check_sizes(crop_size, batch_size, crops_per_image)
    degradation = _crops.resolve_degradation(degradation)
    getattr(degradation, "variable", None)  # creates a curriculum's tf.Variable eagerly
    paths = _folders.folder_paths(folder)
    arrays, scale = _folders.load_images(paths, channels)
    _crops.check_crop(arrays, paths, crop_size)
    seed = _crops.draw_seed(seed)
    ds = _crop_dataset(arrays, scale, crop_size, batch_size, crops_per_image, shuffle,
                       repeat, seed, drop_remainder)

    def degrade(clean, batch_seed):
        if augment is not None:
            clean = tf.cast(augment(clean, training=True), tf.float32)
        degraded = tf.cast(degradation.apply_tf(clean, seed=batch_seed), tf.float32)
        if clip:
            degraded = tf.clip_by_value(degraded, 0.0, 1.0)
        return degraded, clean

    ds = ds.map(degrade, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def paired_folder_dataset(
    folder,
    crop_size=32,
    batch_size=8,
    channels=3,
    *,
    crops_per_image=None,
    shuffle=True,
    repeat=False,
    seed=None,
    drop_remainder=True,
    backend="tf",
):
    """A training pipeline of `(damaged, gt)` crops from a paired folder.

    `folder` holds `GT/` and `DAMAGED/` with images of matching file stems
    (`GT/0001.png` pairs with `DAMAGED/0001.jpg`) and equal sizes. Each pair
    is cropped, flipped and rotated by one joint transform, so the two stay
    pixel-aligned. Images are cached in memory.

    Args:
        folder: the paired folder.
        crop_size: the side of the square crops.
        batch_size: crops per batch.
        channels: 1 or 3; both images are converted.
        crops_per_image: crops of each pair per epoch; None (default):
            just enough for one full batch.
        shuffle: shuffle every epoch; `False` also fixes the crops.
        repeat: `False`, `True` (endless) or a number of passes.
        seed: makes the pipeline deterministic; random when `None`.
        drop_remainder: drop a last, smaller batch.
        backend: `"tf"` (a `tf.data.Dataset`) or `"numpy"` (a
            `PairedFolderPyDataset`).

    Returns:
        A `tf.data.Dataset` of `(damaged, gt)` float32 `B x S x S x C`
        batches (or a `PairedFolderPyDataset`).

    Example:

    >>> from keras_lnca.data import paired_folder_dataset
    >>> ds = paired_folder_dataset("my_pairs", crop_size=64, seed=0)  # doctest: +SKIP
    """
    if backend == "numpy":
        if repeat:
            raise UserError("repeat is not available with backend='numpy' (a PyDataset is per epoch)")
        from keras_lnca.data.paired_folder_py_dataset import PairedFolderPyDataset

        return PairedFolderPyDataset(
            folder, crop_size, batch_size, channels,
            crops_per_image=crops_per_image, shuffle=shuffle, seed=seed,
        )
    if backend != "tf":
        raise UserError(f"backend must be 'tf' or 'numpy', got {backend!r}")
    import tensorflow as tf

    _crops.check_sizes(crop_size, batch_size, crops_per_image)
    stacked, scale, c, names = _folders.load_pairs(folder, channels)
    _crops.check_crop(stacked, names, crop_size)
    seed = _crops.draw_seed(seed)
    ds = _crop_dataset(stacked, scale, crop_size, batch_size, crops_per_image, shuffle,
                       repeat, seed, drop_remainder)
    ds = ds.map(lambda both, _: (both[..., c:], both[..., :c]), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def evaluation_images(folder, channels=None):
    """Full-resolution images of a folder, in sorted file order.

    Args:
        folder: a folder of images of any sizes.
        channels: `None` keeps each file's channels; 1 or 3 converts.

    Returns:
        An iterator of `(file_name, image)`, `image` float32 `H x W x C` in
        [0, 1]. The folder is listed (and checked) when this is called.

    Example:

    >>> from keras_lnca.data import evaluation_images
    >>> for name, image in evaluation_images("set12"):  # doctest: +SKIP
    ...     print(name, image.shape)
    """
    paths = _folders.folder_paths(folder)
    return ((path.name, load_image(path, channels)) for path in paths)


def paired_evaluation_images(folder, channels=None):
    """Full-resolution pairs of a `GT/` + `DAMAGED/` folder, sorted by stem.

    Args:
        folder: the paired folder.
        channels: `None` keeps each file's channels; 1 or 3 converts.

    Returns:
        An iterator of `(file_name, clean, damaged)` (the GT file's name;
        float32 `H x W x C` arrays in [0, 1]).

    Example:

    >>> from keras_lnca.data import paired_evaluation_images
    >>> for name, clean, damaged in paired_evaluation_images("pairs"):  # doctest: +SKIP
    ...     print(name, clean.shape)
    """
    pairs = _folders.find_pairs(folder)

    def generate():
        for stem, gt_path, damaged_path in pairs:
            clean, damaged = load_image(gt_path, channels), load_image(damaged_path, channels)
            if clean.shape != damaged.shape:
                raise UserError(
                    f"GT and DAMAGED {stem!r} differ in shape: {clean.shape} vs {damaged.shape}"
                )
            yield gt_path.name, clean, damaged

    return generate()
