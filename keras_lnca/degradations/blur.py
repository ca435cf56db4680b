"""Blur degradations: circular convolution with a given or a motion kernel.

Both blurs convolve circularly ("wrap" boundaries), so a known kernel can be
inverted exactly by FFT-based methods such as a Wiener filter. A kernel's
centre is element `(kh // 2, kw // 2)`, as in `skimage.restoration`.
"""

import functools
import math
import os
from pathlib import Path

import numpy as np

from keras_lnca.degradations import _common
from keras_lnca.errors import UserError

# Points sampled along a motion segment; each pixel's weight is the share of
# points that round to it, i.e. the length of the segment inside its cell.
_SEGMENT_SAMPLES = 1024

KERNEL_SETS = {"levin09": "Levin09.npz", "kernels12": "kernels_12.npz"}


def data_dir():
    """The shared data folder: `$LNCA_DATA`, default `../shared/data` (from the cwd)."""
    return Path(os.environ.get("LNCA_DATA", os.path.join("..", "shared", "data")))


def _segment_offsets(size, angle):
    """numpy: integer `(dy, dx)` pixel offsets of the points along a segment."""
    t = (np.arange(_SEGMENT_SAMPLES) + 0.5) / _SEGMENT_SAMPLES - 0.5
    t = t * float(size)
    theta = math.radians(float(angle))
    dx = np.floor(t * math.cos(theta) + 0.5).astype(np.int64)
    dy = np.floor(-t * math.sin(theta) + 0.5).astype(np.int64)
    return dy, dx


def motion_kernel(size, angle):
    """A normalised linear motion-blur kernel.

    The kernel is a line segment of length `size` pixels through the centre
    of a square, odd-sized grid, at `angle` degrees counter-clockwise from the
    horizontal; each pixel weighs the length of the segment inside it.

    Args:
        size: the length of the motion in pixels (>= 1).
        angle: the direction in degrees.

    Returns:
        A float32 `k x k` array summing to 1.

    Example:

    >>> from keras_lnca.degradations import motion_kernel
    >>> k = motion_kernel(7, 0)
    >>> k.shape, float(k.sum())
    ((7, 7), 1.0)
    """
    _common.check_value(size, "size", 1.0)
    dy, dx = _segment_offsets(size, angle)
    radius = int(max(np.abs(dy).max(), np.abs(dx).max()))
    kernel = np.zeros((2 * radius + 1, 2 * radius + 1), np.float64)
    np.add.at(kernel, (dy + radius, dx + radius), 1.0)
    return (kernel / kernel.sum()).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _load_npz(path):
    try:
        with np.load(path) as archive:
            keys = sorted(archive.files)
            kernels = tuple(np.asarray(archive[k], np.float32) for k in keys)
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read blur kernels from {path}: {error}") from None
    if not kernels:
        raise UserError(f"no kernels in {path}")
    for key, kernel in zip(keys, kernels):
        if kernel.ndim != 2 or not np.isfinite(kernel).all() or kernel.sum() <= 0:
            raise UserError(f"kernel {key!r} in {path} is not a 2-D finite kernel with a positive sum")
        if max(kernel.shape) > 255:
            raise UserError(f"kernel {key!r} in {path} is {kernel.shape}: at most 255 x 255")
        kernel.setflags(write=False)
    return kernels


def load_kernels(name_or_path):
    """Loads a set of blur kernels.

    Args:
        name_or_path: `"levin09"` (the 8 camera-shake kernels of Levin et al.
            2009, file `Levin09.npz`) or `"kernels12"` (the 12 USRNet/KAIR
            kernels, `kernels_12.npz`), looked up in `$LNCA_DATA/kernels/`
            (default `../shared/data/kernels/` relative to the working
            directory); or the path of any `.npz` file of 2-D arrays.

    Returns:
        A tuple of read-only float32 arrays, in key order (`k00`, `k01`, ...).

    Example:

    >>> from keras_lnca.degradations import load_kernels
    >>> kernels = load_kernels("levin09")  # doctest: +SKIP
    >>> len(kernels)  # doctest: +SKIP
    8
    """
    name = str(name_or_path)
    if name.lower() in KERNEL_SETS:
        path = data_dir() / "kernels" / KERNEL_SETS[name.lower()]
        if not path.is_file():
            raise UserError(
                f"blur kernels {name!r} not found at {path} "
                "(set LNCA_DATA to the folder that holds kernels/)"
            )
    else:
        path = Path(name)
        if not path.is_file():
            known = ", ".join(KERNEL_SETS)
            raise UserError(f"unknown blur kernels {name!r}: expected {known} or an .npz file")
    return _load_npz(str(path.resolve()))


def _torus(kernel, height, width):
    """numpy: `kernel` wrapped onto an `height x width` torus, centre at (0, 0)."""
    kh, kw = kernel.shape
    rows = (np.arange(kh) - kh // 2) % height
    cols = (np.arange(kw) - kw // 2) % width
    out = np.zeros((height, width), np.float64)
    np.add.at(out, (rows[:, None], cols[None, :]), kernel)
    return out


def convolve_array(batch, kernels):
    """numpy core: circular convolution of image `i` with `kernels[i]` (or one kernel)."""
    _, h, w, _ = batch.shape
    tori = np.stack([_torus(np.asarray(k, np.float64), h, w) for k in kernels])
    spectrum = np.fft.rfft2(batch.astype(np.float64), axes=(1, 2))
    spectrum *= np.fft.rfft2(tori, axes=(1, 2))[..., None]
    out = np.fft.irfft2(spectrum, s=(h, w), axes=(1, 2))
    return out.astype(batch.dtype, copy=False)


def _check_kernel(kernel):
    kernel = np.asarray(kernel)
    if kernel.ndim != 2 or kernel.size == 0:
        raise UserError(f"a blur kernel must be a non-empty 2-D array, got shape {kernel.shape}")
    return kernel


def motion_array(batch, size, angle, rng):
    """numpy core: returns `(blurred batch, per-image kernels)`."""
    n = batch.shape[0]
    sizes = _common.draw(size, rng, n, integer=True)
    angles = rng.uniform(0.0, 180.0, n) if angle is None else np.full(n, float(angle))
    kernels = [motion_kernel(s, a) for s, a in zip(sizes, angles)]
    return convolve_array(batch, kernels), kernels


def kernel_blur(x, kernel, *, seed=None):
    """Blurs by circular ("wrap") convolution with a given kernel.

    Args:
        x: float image(s) in [0, 1], shape `HxW`, `HxWxC` or `NxHxWxC`.
        kernel: a 2-D kernel (normally summing to 1), centre at
            `(kh // 2, kw // 2)`; it may be larger than the image.
        seed: unused (the blur is deterministic); accepted so that every
            degradation has the same signature.

    Returns:
        The blurred image(s), same shape and dtype as `x`.

    Example:

    >>> import numpy as np
    >>> from keras_lnca.degradations import kernel_blur
    >>> y = kernel_blur(np.random.rand(32, 32, 3), np.full((3, 3), 1 / 9))
    """
    del seed
    kernel = _check_kernel(kernel)
    batch, shape = _common.as_batch(x)
    return convolve_array(batch, [kernel]).reshape(shape)


def motion_blur(x, size, angle=None, *, seed=None):
    """The LNCA paper's motion blur: circular convolution with a line kernel.

    Args:
        x: float image(s) in [0, 1], shape `HxW`, `HxWxC` or `NxHxWxC`.
        size: the kernel length in pixels, or an inclusive `(low, high)`
            integer range drawn per image.
        angle: the direction in degrees; `None` draws one uniformly in
            [0, 180) per image.
        seed: anything `np.random.default_rng` accepts.

    Returns:
        The blurred image(s), same shape and dtype as `x`.

    Example:

    >>> import numpy as np
    >>> from keras_lnca.degradations import motion_blur
    >>> y = motion_blur(np.random.rand(4, 32, 32, 3), 7, seed=0)
    """
    _common.check_value(size, "size", 1.0)
    batch, shape = _common.as_batch(x)
    out, _ = motion_array(batch, size, angle, np.random.default_rng(seed))
    return out.reshape(shape)


def _tf_convolve(batch, tori):
    """TF core: circular convolution of `batch` (NHWC) with `tori` (`[N or 1, H, W]`)."""
    tf = _common.tf_module()
    shape = tf.shape(batch)
    images = tf.transpose(batch, [0, 3, 1, 2])
    spectrum = tf.signal.rfft2d(images)
    spectrum *= tf.signal.rfft2d(tf.cast(tori, batch.dtype))[:, None]
    out = tf.signal.irfft2d(spectrum, fft_length=shape[1:3])
    return tf.transpose(out, [0, 2, 3, 1])


def _tf_tori(kernels, height, width):
    """TF: `kernels` (`[K, kh, kw]`, static kh, kw) wrapped onto `[K, H, W]` tori."""
    tf = _common.tf_module()
    kernels = tf.convert_to_tensor(kernels)
    kh, kw = kernels.shape[1], kernels.shape[2]
    rows = np.repeat(np.arange(kh) - kh // 2, kw)
    cols = np.tile(np.arange(kw) - kw // 2, kh)
    indices = tf.stack(
        [
            tf.math.floormod(tf.constant(rows, tf.int32), height),
            tf.math.floormod(tf.constant(cols, tf.int32), width),
        ],
        axis=1,
    )
    updates = tf.transpose(tf.reshape(kernels, [-1, kh * kw]))
    zeros = tf.zeros(tf.stack([height, width, tf.shape(kernels)[0]]), kernels.dtype)
    return tf.transpose(tf.tensor_scatter_nd_add(zeros, indices, updates), [2, 0, 1])


def tf_kernel_blur(x, kernel, *, seed=None):
    """TensorFlow-native `kernel_blur` for `tf.data` pipelines.

    Args:
        x: float tensor, `HxWxC` or `NxHxWxC`.
        kernel: one 2-D kernel, or `[N, kh, kw]` kernels, one per image.
        seed: unused (deterministic).

    Returns:
        A tensor like `x`.

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> from keras_lnca.degradations import tf_kernel_blur
    >>> y = tf_kernel_blur(tf.random.uniform([2, 32, 32, 1]), np.full((5, 5), 0.04))
    """
    del seed
    tf = _common.tf_module()
    batch, unbatch = _common.tf_as_batch(x)
    kernel = tf.cast(tf.convert_to_tensor(kernel), tf.float64)
    if kernel.shape.rank == 2:
        kernel = kernel[None]
    if kernel.shape.rank != 3:
        raise UserError(f"a blur kernel must be 2-D or [N, kh, kw], got rank {kernel.shape.rank}")
    shape = tf.shape(batch)
    return unbatch(_tf_convolve(batch, _tf_tori(kernel, shape[1], shape[2])))


def tf_motion_blur(x, size, angle=None, *, seed):
    """TensorFlow-native `motion_blur` for `tf.data` pipelines.

    For the same size and angle the kernel equals `motion_kernel`'s (up to
    float rounding), so the two paths blur identically.

    Args:
        x: float tensor, `HxWxC` or `NxHxWxC`.
        size: a number, an inclusive integer `(low, high)` range drawn per
            image, or a scalar tensor / `tf.Variable`.
        angle: degrees, or `None` to draw one uniformly in [0, 180) per image.
        seed: an int or a shape-`[2]` integer tensor.

    Returns:
        A tensor like `x`.

    Example:

    >>> import tensorflow as tf
    >>> from keras_lnca.degradations import tf_motion_blur
    >>> y = tf_motion_blur(tf.random.uniform([2, 32, 32, 3]), 7, seed=3)
    """
    tf = _common.tf_module()
    batch, unbatch = _common.tf_as_batch(x)
    size_seed, angle_seed = _common.tf_split(seed, 2)
    shape = tf.shape(batch)
    n, h, w = shape[0], shape[1], shape[2]
    sizes = _common.tf_draw(size, size_seed, n, integer=True)
    if angle is None:
        angles = tf.random.stateless_uniform([n], angle_seed, 0.0, 180.0, dtype=tf.float64)
    else:
        angles = tf.fill([n], tf.constant(float(angle), tf.float64))
    t = (np.arange(_SEGMENT_SAMPLES) + 0.5) / _SEGMENT_SAMPLES - 0.5
    t = tf.constant(t, tf.float64)[None] * sizes[:, None]
    theta = angles[:, None] * (math.pi / 180.0)
    dx = tf.cast(tf.floor(t * tf.cos(theta) + 0.5), tf.int32)
    dy = tf.cast(tf.floor(-t * tf.sin(theta) + 0.5), tf.int32)
    image_index = tf.broadcast_to(tf.range(n)[:, None], tf.shape(dx))
    indices = tf.stack([image_index, tf.math.floormod(dy, h), tf.math.floormod(dx, w)], axis=-1)
    updates = tf.fill(tf.shape(dx), tf.constant(1.0 / _SEGMENT_SAMPLES, tf.float64))
    tori = tf.tensor_scatter_nd_add(tf.zeros(tf.stack([n, h, w]), tf.float64), indices, updates)
    return unbatch(_tf_convolve(batch, tori))


def stack_kernels(kernels):
    """Zero-pads kernels to one odd square size, keeping each centre; `[K, M, M]`."""
    size = max(max(k.shape) for k in kernels)
    size += 1 - size % 2
    out = np.zeros((len(kernels), size, size), np.float64)
    for i, kernel in enumerate(kernels):
        kh, kw = kernel.shape
        top, left = size // 2 - kh // 2, size // 2 - kw // 2
        out[i, top : top + kh, left : left + kw] = kernel
    return out
