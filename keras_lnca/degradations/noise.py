"""Additive Gaussian noise and the LNCA paper's impulse noise.

Each degradation has a numpy implementation (the reference, used for
evaluation) and a TensorFlow one built from stateless random ops (for
`tf.data` pipelines, where it runs on any Keras backend). Noise levels are on
the 0-255 scale; images are floats in [0, 1].
"""

import numpy as np

from keras_lnca.degradations import _common


def gaussian_array(batch, sigma, rng):
    """numpy core: returns `(noisy batch, per-image sigmas)`."""
    n = batch.shape[0]
    sigmas = _common.draw(sigma, rng, n)
    noise = rng.standard_normal(batch.shape) * (sigmas / 255.0)[:, None, None, None]
    return (batch + noise).astype(batch.dtype, copy=False), sigmas


def ramp_levels(width, low, high):
    """The noise level of each column of a ramp: `low` at the left edge, `high` at the right."""
    return np.linspace(low, high, width) if width > 1 else np.array([(low + high) / 2.0])


def ramp_array(batch, low, high, rng):
    """numpy core of spatially varying noise: returns `(noisy batch, per-pixel sigma map)`."""
    n, h, w, _ = batch.shape
    levels = np.broadcast_to(ramp_levels(w, low, high)[None, :], (h, w))
    noise = rng.standard_normal(batch.shape) * (levels / 255.0)[None, :, :, None]
    return (batch + noise).astype(batch.dtype, copy=False), levels


def impulse_array(batch, p, sigma, rng):
    """numpy core: returns `(corrupted batch, per-image probabilities)`."""
    n, h, w, _ = batch.shape
    ps = _common.draw(p, rng, n)
    hit = rng.random((n, h, w, 1)) < ps[:, None, None, None]
    values = rng.standard_normal((n, h, w, 1)) * (sigma / 255.0)
    out = np.clip(batch + hit * values, 0.0, 1.0)
    return out.astype(batch.dtype, copy=False), ps


def gaussian_noise(x, sigma, *, seed=None):
    """Adds white Gaussian noise with standard deviation `sigma / 255`.

    The result is not clipped, as in the DnCNN / Restormer evaluation
    protocol; clip it yourself if you need values in [0, 1].

    Args:
        x: float image(s) in [0, 1], shape `HxW`, `HxWxC` or `NxHxWxC`.
        sigma: the noise level on the 0-255 scale, or a `(low, high)` pair
            from which one level is drawn uniformly per image (blind
            denoising).
        seed: anything `np.random.default_rng` accepts (an int, a
            `Generator`, ...). The same seed gives the same output.

    Returns:
        The noisy image(s), same shape and dtype as `x`.

    Example:

    >>> import numpy as np
    >>> from keras_lnca.degradations import gaussian_noise
    >>> noisy = gaussian_noise(np.full((64, 64, 1), 0.5, "float32"), 25, seed=0)
    >>> round(float(noisy.std() * 255))
    25
    """
    _common.check_value(sigma, "sigma")
    batch, shape = _common.as_batch(x)
    out, _ = gaussian_array(batch, sigma, np.random.default_rng(seed))
    return out.reshape(shape)


def impulse_noise(x, p, sigma=51.0, *, seed=None):
    """The LNCA paper's impulse noise: sparse Gaussian impulses.

    Each pixel is hit with probability `p`; a hit pixel gets one value drawn
    from `N(0, sigma / 255)` added to all of its channels. The result is
    clipped to [0, 1].

    Args:
        x: float image(s) in [0, 1], shape `HxW`, `HxWxC` or `NxHxWxC`.
        p: probability that a pixel is corrupted, in [0, 1], or a
            `(low, high)` pair drawn uniformly per image.
        sigma: standard deviation of the impulses on the 0-255 scale
            (default 51, i.e. 0.2 on the 0-1 scale, as in the paper).
        seed: anything `np.random.default_rng` accepts.

    Returns:
        The corrupted image(s), same shape and dtype as `x`.

    Example:

    >>> import numpy as np
    >>> from keras_lnca.degradations import impulse_noise
    >>> y = impulse_noise(np.full((100, 100), 0.5, "float32"), 0.5, seed=0)
    >>> round(float((y != 0.5).mean()), 1)
    0.5
    """
    _common.check_value(p, "p", 0.0, 1.0)
    _common.check_value(sigma, "sigma")
    batch, shape = _common.as_batch(x)
    out, _ = impulse_array(batch, p, float(sigma), np.random.default_rng(seed))
    return out.reshape(shape)


def tf_gaussian_noise(x, sigma, *, seed):
    """TensorFlow-native `gaussian_noise` for `tf.data` pipelines.

    Same distribution as `gaussian_noise` (not the same numbers), drawn with
    stateless random ops. Not clipped.

    Args:
        x: float tensor, `HxWxC` or `NxHxWxC`.
        sigma: a number, a `(low, high)` pair (drawn per image), or a scalar
            tensor / `tf.Variable` (e.g. a curriculum's current level).
        seed: an int or a shape-`[2]` integer tensor.

    Returns:
        A tensor like `x`.

    Example:

    >>> import tensorflow as tf
    >>> from keras_lnca.degradations import tf_gaussian_noise
    >>> y = tf_gaussian_noise(tf.fill([8, 32, 32, 1], 0.5), 25.0, seed=[1, 2])
    """
    tf = _common.tf_module()
    batch, unbatch = _common.tf_as_batch(x)
    level_seed, noise_seed = _common.tf_split(seed, 2)
    sigmas = _common.tf_draw(sigma, level_seed, tf.shape(batch)[0]) / 255.0
    noise = tf.random.stateless_normal(tf.shape(batch), noise_seed, dtype=batch.dtype)
    return unbatch(batch + noise * tf.cast(sigmas, batch.dtype)[:, None, None, None])


def tf_impulse_noise(x, p, sigma=51.0, *, seed):
    """TensorFlow-native `impulse_noise` for `tf.data` pipelines.

    Args:
        x: float tensor, `HxWxC` or `NxHxWxC`.
        p: a number, a `(low, high)` pair, or a scalar tensor / `tf.Variable`.
        sigma: impulse standard deviation on the 0-255 scale.
        seed: an int or a shape-`[2]` integer tensor.

    Returns:
        A tensor like `x`, clipped to [0, 1].

    Example:

    >>> import tensorflow as tf
    >>> from keras_lnca.degradations import tf_impulse_noise
    >>> y = tf_impulse_noise(tf.fill([32, 32, 3], 0.5), 0.5, seed=7)
    """
    tf = _common.tf_module()
    batch, unbatch = _common.tf_as_batch(x)
    level_seed, hit_seed, value_seed = _common.tf_split(seed, 3)
    shape = tf.shape(batch)
    mask_shape = tf.concat([shape[:3], [1]], axis=0)
    ps = _common.tf_draw(p, level_seed, shape[0])
    hit = tf.random.stateless_uniform(mask_shape, hit_seed, dtype=tf.float64)
    hit = tf.cast(hit < ps[:, None, None, None], batch.dtype)
    values = tf.random.stateless_normal(mask_shape, value_seed, dtype=batch.dtype)
    values = values * tf.cast(sigma / 255.0, batch.dtype)
    return unbatch(tf.clip_by_value(batch + hit * values, 0.0, 1.0))
