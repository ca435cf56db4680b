"""Estimating the level of white Gaussian noise in an image (no model needed)."""

import functools

import numpy as np
from threadpoolctl import threadpool_limits

from keras_lnca.errors import UserError

# Patch side of the estimator (Chen, Zhu and Heng use 7 or 8).
PATCH_SIZE = 7
# At most this many patches enter the covariance (a regular subsample beyond).
MAX_PATCHES = 20_000


def _one_blas_thread(function):
    """Runs `function` with one BLAS thread. Its products are small (thousands of
    patches x 49): several threads gain little, and on a busy machine OpenBLAS's
    waiting threads made the estimate 5-10x slower than one thread."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return wrapper


@_one_blas_thread
def estimate_noise_level(image, patch_size=PATCH_SIZE, iterations=3):
    """Estimates the standard deviation of additive white Gaussian noise.

    Two published estimators, one after the other:

    1. Which patches (Liu, Tanaka and Okutomi 2013): the level is measured
       on weakly textured patches only, those whose gradient energy is what
       noise of the current estimate alone would give (below its 99th
       percentile); the selection and the estimate are refined
       `iterations` times, starting from all patches.
    2. The level of a set of patches (Chen, Zhu and Heng 2015): image
       content spans few directions of patch space, so the small eigenvalues
       of the patch covariance hold the noise alone; the estimate is the
       mean of the longest tail of eigenvalues whose mean equals its median
       (a tail of pure noise is symmetric about its mean).

    Texture alone reads as noise to (2): alone, it read the first 20 BSD68
    images at about 6.5 when clean and 8.5 at σ 5. Step (1) removes most of
    that bias
    (`lnca benchmark noise` measures it). A colour image is estimated on
    each channel of an orthonormal opponent transform (where white noise of
    the same σ in R, G and B stays white with that σ), and the median of
    the three is returned: smooth chroma channels read the noise cleanly,
    and one textured channel cannot sway the result.

    Args:
        image: float array in [0, 1], `H x W` or `H x W x C` (noisy values
            slightly outside [0, 1] are fine: pass them unclipped), or uint8.
        patch_size: side of the square patches.
        iterations: refinements of the weak-texture selection.

    Returns:
        float, the estimated level on the 0-255 scale.

    Example:

    >>> import numpy as np
    >>> from keras_lnca.degradations import estimate_noise_level, gaussian_noise
    >>> clean = np.tile(np.linspace(0, 1, 128, dtype="float32"), (128, 1))
    >>> round(estimate_noise_level(gaussian_noise(clean, 20, seed=0)))
    20

    References:
        Liu, Tanaka and Okutomi, "Single-Image Noise Level Estimation for
        Blind Denoising", IEEE TIP 2013; Chen, Zhu and Heng, "An Efficient
        Statistical Method for Image Noise Level Estimation", ICCV 2015.
    """
    return _level(image, patch_size, iterations, MAX_PATCHES)


def _level(image, patch_size, iterations, max_patches, dtype=np.float64):
    """`estimate_noise_level` from at most `max_patches` patches per channel,
    computed in `dtype`."""
    array = np.asarray(image)
    if array.dtype == np.uint8:
        array = array / 255.0
    elif not np.issubdtype(array.dtype, np.floating):
        raise UserError(f"noise estimation takes uint8 or float images, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3):
        raise UserError(
            f"noise estimation takes one HxW, HxWx1 or HxWx3 image, got shape {array.shape}"
        )
    if min(array.shape[:2]) < patch_size:
        raise UserError(
            f"noise estimation needs an image of at least {patch_size}x{patch_size} pixels, "
            f"got {array.shape[0]}x{array.shape[1]}"
        )
    if not np.all(np.isfinite(array)):
        raise UserError("noise estimation: the image holds NaN or infinite values")
    if array.shape[-1] == 3:
        # Each channel of an orthonormal opponent transform holds the same
        # white noise; the median of their estimates resists texture in any one.
        opponent = (array.astype(np.float64) @ _OPPONENT).astype(dtype, copy=False)
        return float(np.median([
            _estimate(opponent[..., i : i + 1], patch_size, iterations, max_patches) for i in range(3)
        ]))
    return _estimate(array.astype(dtype), patch_size, iterations, max_patches)


# Region side of `estimate_noise_map`, and at most this many regions (larger
# images get larger regions).
REGION_SIZE = 96
MAX_REGIONS = 256
# At most about this many patches per region (a 96-pixel region has 8,100; every
# second row and column of them is plenty for a 49 x 49 covariance).
REGION_PATCHES = 2_500
# Regions are read in float32 (3x faster products): their levels only shape the map and
# decide whether the noise varies; the whole image's level stays float64.
REGION_DTYPE = np.float32
# Region levels count as one level unless the 90th percentile is this many
# times the 10th and at least `VARYING_GAP` (0-255 scale) above it.
VARYING_RATIO = 1.5
VARYING_GAP = 4.0


@_one_blas_thread
def estimate_noise_map(image, region_size=REGION_SIZE):
    """Estimates the noise level of an image, region by region where it varies.

    The level is estimated (`estimate_noise_level`) on the whole image and on
    a grid of regions of about `region_size` pixels (fewer, larger regions
    beyond `MAX_REGIONS`). Where the regions agree (their 90th percentile
    within `VARYING_RATIO` times the 10th, or within `VARYING_GAP`: uniform
    noise, or a clean image whose textured regions read a little higher),
    the whole image's level is returned; otherwise a smooth map of the
    region levels, interpolated to every pixel, so that a model told it
    treats each part of the image at its own level.

    Args:
        image: as for `estimate_noise_level`.
        region_size: the side of a region in pixels.

    Returns:
        A float (one level, 0-255 scale), or a float32 `H x W` map.

    Example:

    >>> import numpy as np
    >>> from keras_lnca.degradations import estimate_noise_map, gaussian_noise
    >>> flat = np.full((192, 384), 0.5, "float32")
    >>> ramp = flat + np.random.default_rng(0).normal(size=flat.shape) * np.linspace(5, 50, 384) / 255
    >>> level = estimate_noise_map(ramp)
    >>> level.shape, round(float(level[:, :96].mean())) < round(float(level[:, -96:].mean()))
    ((192, 384), True)
    """
    whole = _level(image, PATCH_SIZE, 3, MAX_PATCHES)
    array = np.asarray(image)
    height, width = array.shape[:2]
    size = max(int(region_size), int(np.ceil(np.sqrt(height * width / MAX_REGIONS))), 2 * PATCH_SIZE)
    rows, cols = max(1, round(height / size)), max(1, round(width / size))
    if rows * cols < 2:
        return whole
    top = np.linspace(0, height, rows + 1).astype(int)
    left = np.linspace(0, width, cols + 1).astype(int)
    levels = np.array([[_level(array[top[i]:top[i + 1], left[j]:left[j + 1]], PATCH_SIZE, 3, REGION_PATCHES, REGION_DTYPE)
                        for j in range(cols)] for i in range(rows)], np.float32)
    low, high = np.percentile(levels, [10, 90])
    if high <= VARYING_RATIO * low or high - low <= VARYING_GAP:
        return whole
    return _interpolate(levels, height, width)


def _interpolate(levels, height, width):
    """Region levels (one per region centre) bilinearly spread over `height x width`."""
    rows, cols = levels.shape
    y = np.clip((np.arange(height) + 0.5) * rows / height - 0.5, 0, rows - 1)
    x = np.clip((np.arange(width) + 0.5) * cols / width - 0.5, 0, cols - 1)
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    y1, x1 = np.minimum(y0 + 1, rows - 1), np.minimum(x0 + 1, cols - 1)
    wy, wx = (y - y0)[:, None], (x - x0)[None, :]
    top = levels[y0][:, x0] * (1 - wx) + levels[y0][:, x1] * wx
    bottom = levels[y1][:, x0] * (1 - wx) + levels[y1][:, x1] * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32)


# Orthonormal opponent transform (columns): luma, and two chroma differences.
_OPPONENT = np.array([[1, 1, 1], [1, 0, -1], [1, -2, 1]], np.float64).T / np.sqrt([3.0, 2.0, 6.0])


def _estimate(array, patch_size, iterations, max_patches):
    """The level (0-255 scale) of one `H x W x C` float64 image, channels together."""
    channels = array.shape[-1]
    patches = _patches(array, patch_size, max_patches)
    texture = _gradient_energy(patches.reshape(-1, patch_size, patch_size, channels))
    dims = patches.shape[1]
    # The gradient energy of a patch of pure noise of variance v is about v
    # times Gamma(dims / 2, 2 * trace / dims) = v * trace / dims * chi2(dims),
    # trace = tr(Dh'Dh + Dv'Dv) of the difference operators (Liu et al.).
    trace = 4 * channels * patch_size * (patch_size - 1)
    threshold = _chi_square_quantile(dims, 2.326) * trace / dims  # 99th percentile
    variance = _patch_noise_variance(patches)
    for _ in range(iterations):
        weak = texture < variance * threshold
        if weak.sum() < 2 * dims:  # too few patches for a covariance
            break
        variance = _patch_noise_variance(patches[weak])
    return float(np.sqrt(variance) * 255.0)


def _chi_square_quantile(dof, z):
    """The chi-square quantile at standard normal score `z` (Wilson-Hilferty)."""
    a = 2.0 / (9.0 * dof)
    return dof * (1.0 - a + z * np.sqrt(a)) ** 3


def _gradient_energy(patches):
    """Sum of squared horizontal and vertical differences inside each patch."""
    return (np.square(np.diff(patches, axis=1)).sum(axis=(1, 2, 3))
            + np.square(np.diff(patches, axis=2)).sum(axis=(1, 2, 3)))


def _patch_noise_variance(patches):
    """Chen, Zhu and Heng's noise variance of a set of patches (rows)."""
    centred = patches - patches.mean(axis=0)
    # The sample covariance, as np.cov computes it, at a quarter of its time.
    covariance = centred.T @ centred / max(len(patches) - 1, 1)
    eigenvalues = np.linalg.eigvalsh(covariance)[::-1]
    return max(float(_noise_variance(eigenvalues)), 0.0)


def _patches(array, size, max_patches):
    """Overlapping `size x size x C` patches as rows, subsampled to about `max_patches`."""
    windows = np.lib.stride_tricks.sliding_window_view(array, (size, size), axis=(0, 1))
    rows, cols = windows.shape[:2]
    stride = max(1, int(np.ceil(np.sqrt(rows * cols / max_patches))))
    # (rows, cols, C, size, size) -> (rows, cols, size, size, C), one patch per row.
    windows = np.moveaxis(windows[::stride, ::stride], 2, -1)
    return windows.reshape(-1, size * size * windows.shape[-1])


def _noise_variance(eigenvalues):
    """The mean of the longest tail of (descending) eigenvalues whose mean is its median."""
    count = len(eigenvalues)
    # Every tail eigenvalues[start:] at once: its mean, and how many of its
    # eigenvalues lie above and below that mean.
    means = np.cumsum(eigenvalues[::-1])[::-1] / np.arange(count, 0, -1)
    in_tail = np.arange(count)[None, :] >= np.arange(count)[:, None]
    above = np.sum((eigenvalues[None, :] > means[:, None]) & in_tail, axis=1)
    below = np.sum((eigenvalues[None, :] < means[:, None]) & in_tail, axis=1)
    balanced = np.flatnonzero(above == below)
    return means[balanced[0]] if balanced.size else eigenvalues[-1]
