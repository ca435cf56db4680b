"""Helpers shared by the numpy and TensorFlow degradation paths."""

import math
import numbers

import numpy as np

from keras_lnca.errors import UserError


def as_batch(x):
    """Returns `(batch, shape)`: `x` as an `N x H x W x C` float array.

    Accepts `H x W`, `H x W x C` and `N x H x W x C` float arrays. Every
    degradation keeps the shape, so `batch.reshape(shape)` undoes this.
    """
    array = np.asarray(x)
    if not np.issubdtype(array.dtype, np.floating):
        raise UserError(
            f"expected a float image with values in [0, 1], got dtype {array.dtype}"
        )
    if array.ndim == 2:
        batch = array[None, :, :, None]
    elif array.ndim == 3:
        batch = array[None]
    elif array.ndim == 4:
        batch = array
    else:
        raise UserError(
            f"expected an image of shape HxW, HxWxC or NxHxWxC, got shape {array.shape}"
        )
    return batch, array.shape


def is_range(value):
    """Whether `value` is a `(low, high)` pair (a blind, per-image range)."""
    return isinstance(value, (tuple, list)) and len(value) == 2


def check_value(value, name, low=0.0, high=None):
    """Validates a number or a `(low, high)` pair of numbers; returns it."""
    values = value if is_range(value) else (value,)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise UserError(f"{name} must be a finite number or a (low, high) pair, got {value!r:.60}")
        if v < low or (high is not None and v > high):
            bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
            raise UserError(f"{name} must be {bound}, got {value!r}")
    if is_range(value) and value[0] > value[1]:
        raise UserError(f"{name} range must have low <= high, got {value!r}")
    return value


def draw(value, rng, n, integer=False):
    """Per-image values: `value` repeated, or drawn uniformly from a range.

    Ranges are inclusive for integers. A fixed value draws nothing from
    `rng`, so a fixed-level degradation consumes only its noise draws.
    """
    if is_range(value):
        low, high = value
        if integer:
            return rng.integers(int(low), int(high) + 1, size=n).astype(np.float64)
        return rng.uniform(low, high, size=n)
    return np.full(n, float(value))


def tf_module():
    """Imports TensorFlow on first use (the numpy path never needs it)."""
    try:
        import tensorflow as tf
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "The TensorFlow degradation path needs TensorFlow "
            "(`pip install tensorflow-cpu`); use the numpy functions otherwise."
        ) from error
    return tf


def tf_seed(seed):
    """A stateless-op seed (shape `[2]`, int64) from an int or a seed tensor."""
    tf = tf_module()
    if seed is None:
        raise UserError("the TensorFlow path needs an explicit seed (int or shape-[2] tensor)")
    if isinstance(seed, numbers.Integral):
        return tf.constant([int(seed), 0], dtype=tf.int64)
    seed = tf.convert_to_tensor(seed)
    return tf.cast(tf.reshape(seed, [2]), tf.int64)


def tf_split(seed, num):
    """`num` independent stateless seeds derived from `seed`."""
    tf = tf_module()
    return tf.unstack(tf.random.experimental.stateless_split(tf_seed(seed), num))


def tf_as_batch(x):
    """Returns `(batch, unbatch)` for rank-3 or rank-4 float tensors."""
    tf = tf_module()
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        raise UserError(f"expected a float image tensor, got dtype {x.dtype.name}")
    if x.shape.rank == 3:
        return x[None], lambda y: y[0]
    if x.shape.rank == 4:
        return x, lambda y: y
    raise UserError(f"expected a HxWxC or NxHxWxC tensor, got rank {x.shape.rank}")


def tf_draw(value, seed, n, integer=False):
    """TensorFlow counterpart of `draw`; `value` may also be a scalar tensor."""
    tf = tf_module()
    if is_range(value):
        low, high = value
        if integer:
            drawn = tf.random.stateless_uniform(
                [n], seed, minval=int(low), maxval=int(high) + 1, dtype=tf.int64
            )
            return tf.cast(drawn, tf.float64)
        return tf.random.stateless_uniform(
            [n], seed, minval=float(low), maxval=float(high), dtype=tf.float64
        )
    value = tf.cast(tf.convert_to_tensor(value), tf.float64)
    return tf.fill([n], value)
