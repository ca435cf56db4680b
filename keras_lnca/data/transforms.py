"""Random crop + flip + 90-degree rotation, one joint transform per image.

A paired sample is transformed by stacking GT and DAMAGED on the channel axis,
so both always get the same crop, flip and rotation. Flip and rotation
together give each of the 8 symmetries of the square with probability 1/8.
"""

import numpy as np


def random_crop_flip_rot(image, size, rng):
    """numpy: a random `size x size` crop, random flip and 90-degree rotation.

    Args:
        image: `H x W x C` array with `H, W >= size`.
        size: the crop side.
        rng: a `np.random.Generator`.

    Returns:
        A contiguous `size x size x C` array (dtype of `image`).

    Example:

    >>> import numpy as np
    >>> from keras_lnca.data.transforms import random_crop_flip_rot
    >>> random_crop_flip_rot(np.zeros((40, 50, 3)), 32, np.random.default_rng(0)).shape
    (32, 32, 3)
    """
    height, width = image.shape[:2]
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    patch = image[top : top + size, left : left + size]
    if rng.integers(2):
        patch = patch[:, ::-1]
    return np.ascontiguousarray(np.rot90(patch, int(rng.integers(4))))


def tf_random_crop_flip_rot(image, size, seed):
    """TensorFlow: the same transform with stateless random ops.

    Args:
        image: `H x W x C` tensor with `H, W >= size` (C static).
        size: the crop side (a Python int).
        seed: a shape-`[2]` integer tensor.

    Returns:
        A `size x size x C` tensor.

    Example:

    >>> import tensorflow as tf
    >>> from keras_lnca.data.transforms import tf_random_crop_flip_rot
    >>> tf_random_crop_flip_rot(tf.zeros([40, 50, 3]), 32, [1, 2]).shape
    TensorShape([32, 32, 3])
    """
    import tensorflow as tf

    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    shape = tf.shape(image)
    top = tf.random.stateless_uniform([], seeds[0], 0, shape[0] - size + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], seeds[1], 0, shape[1] - size + 1, dtype=tf.int32)
    patch = image[top : top + size, left : left + size]
    flip = tf.random.stateless_uniform([], seeds[2], 0, 2, dtype=tf.int32)
    patch = tf.cond(flip > 0, lambda: tf.reverse(patch, [1]), lambda: patch)
    turns = tf.random.stateless_uniform([], seeds[3], 0, 4, dtype=tf.int32)
    patch = tf.image.rot90(patch, turns)
    patch.set_shape([size, size, image.shape[-1]])
    return patch
