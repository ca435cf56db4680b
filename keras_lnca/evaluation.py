"""Full-resolution evaluation of restoration methods (behind `lnca evaluate`).

Every method sees the same degraded images: image `i` of the sorted folder is
degraded with a fresh `np.random.default_rng(seed)` and `index=i` (see
`keras_lnca.degradations.degrade_for_eval`); Gaussian noise is not clipped.
Method outputs are clipped to [0, 1] (as saving them would); the `identity`
baseline is scored unclipped, so it reports the degraded input itself (for
`gaussian:25`, 20.17 dB: the usual "noisy" row). Scores use scikit-image's
reference formulas:

* PSNR: `peak_signal_noise_ratio(clean, restored, data_range=1)`;
* SSIM: `structural_similarity(..., gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1)`, over the channel axis for
  colour images;

each per image, then averaged over the images. The numbers are the same on
every Keras backend (nothing here uses one).
"""

import itertools
import json
import math
import time

import numpy as np

from keras_lnca.data import evaluation_images
from keras_lnca.data import is_paired_folder
from keras_lnca.data import list_images
from keras_lnca.data import paired_evaluation_images
from keras_lnca.data import find_pairs
from keras_lnca.data.io import atomic_write
from keras_lnca.degradations import degrade_for_eval
from keras_lnca.degradations import parse
from keras_lnca.errors import UserError

BASELINES = ("identity", "bm3d", "wiener", "median")
# The median baseline's window: of 3, 5 and 7, 3 x 3 scores best on impulse
# noise p = 0.5 (first 10 CBSD68 images, full resolution: 26.28 / 25.26 /
# 24.31 dB; the noisy images 17.95).
MEDIAN_SIZE = 3
WIENER_BALANCE = 0.003
# SSIM window: Gaussian, sigma 1.5, truncated at 3.5 sigma (11x11), as skimage.
_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5
# The row name of a noise-level-aware model told the true level, after its name.
TOLD_SUFFIX = "@told"


def psnr(clean, restored, clip=True):
    """PSNR in dB of `restored` against `clean` (data range 1).

    Args:
        clean: the reference, float `H x W (x C)` in [0, 1].
        restored: the estimate, same shape.
        clip: clip `restored` to [0, 1] first.

    Returns:
        A float (`inf` for identical images).

    Example:

    >>> import numpy as np
    >>> from keras_lnca.evaluation import psnr
    >>> round(psnr(np.zeros((8, 8)), np.full((8, 8), 0.1)), 2)
    20.0
    """
    clean = np.asarray(clean, np.float64)
    restored = np.asarray(restored, np.float64)
    restored = np.clip(restored, 0.0, 1.0) if clip else restored
    if clean.shape != restored.shape:
        raise UserError(f"cannot compare images of shapes {clean.shape} and {restored.shape}")
    mse = float(np.mean(np.square(clean - restored)))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(1.0 / mse)


def ssim(clean, restored, clip=True):
    """SSIM of `restored` against `clean`.

    Gaussian 11x11 window with sigma 1.5, population covariance, data range
    1 (the Wang et al. reference settings); colour images are averaged over
    channels.

    Args:
        clean: the reference, float `H x W`, `H x W x 1` or `H x W x 3`.
        restored: the estimate, same shape.
        clip: clip `restored` to [0, 1] first.

    Returns:
        A float in [-1, 1].

    Example:

    >>> import numpy as np
    >>> from keras_lnca.evaluation import ssim
    >>> image = np.random.default_rng(0).random((32, 32))
    >>> ssim(image, image)
    1.0
    """
    clean = np.asarray(clean, np.float64)
    restored = np.asarray(restored, np.float64)
    restored = np.clip(restored, 0.0, 1.0) if clip else restored
    if clean.shape != restored.shape:
        raise UserError(f"cannot compare images of shapes {clean.shape} and {restored.shape}")
    if clean.ndim == 2:
        clean, restored = clean[..., None], restored[..., None]
    if min(clean.shape[:2]) < 11:
        raise UserError(f"SSIM needs images of at least 11x11 pixels, got {clean.shape[:2]}")
    return float(np.mean([_ssim_2d(clean[..., c], restored[..., c]) for c in range(clean.shape[-1])]))


def _gaussian_filter(image, sigma=_SSIM_SIGMA, radius=_SSIM_RADIUS):
    """Separable Gaussian filter, mirrored borders (`scipy.ndimage`'s "reflect")."""
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    padded = np.pad(image, radius, mode="symmetric")
    height, width = image.shape
    rows = sum(w * padded[i : i + height, :] for i, w in enumerate(taps))
    return sum(w * rows[:, i : i + width] for i, w in enumerate(taps))


def _ssim_2d(x, y, c1=(0.01) ** 2, c2=(0.03) ** 2):
    """Mean SSIM of two 2-D images (Wang et al. 2004; skimage's definition with
    `gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1`:
    the map is averaged without the `radius` pixels at each border)."""
    mx, my = _gaussian_filter(x), _gaussian_filter(y)
    vx = _gaussian_filter(x * x) - mx * mx
    vy = _gaussian_filter(y * y) - my * my
    vxy = _gaussian_filter(x * y) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    r = _SSIM_RADIUS
    return ssim_map[r:-r, r:-r].mean()


def _bm3d(degraded, info):
    try:
        import bm3d
    except ImportError:
        raise UserError("the bm3d baseline needs the bm3d package (`pip install bm3d`)") from None
    sigma = float(np.mean(info["sigma"])) / 255.0  # spatially varying noise: its mean level
    if degraded.shape[-1] == 1:
        return np.asarray(bm3d.bm3d(degraded[..., 0], sigma_psd=sigma)).reshape(degraded.shape)
    return np.asarray(bm3d.bm3d_rgb(degraded, sigma_psd=sigma)).reshape(degraded.shape)


def _wiener(degraded, info):
    from skimage.restoration import wiener

    kernel = np.asarray(info["kernel"], np.float64)
    channels = [
        wiener(degraded[..., c].astype(np.float64), kernel, balance=WIENER_BALANCE)
        for c in range(degraded.shape[-1])
    ]
    return np.stack(channels, axis=-1)


def _median(degraded, info):
    from scipy import ndimage

    return ndimage.median_filter(degraded, size=(MEDIAN_SIZE, MEDIAN_SIZE, 1), mode="reflect")


def baseline(name, degradation):
    """A classical restoration baseline for `degradation`.

    * `identity`: returns the degraded image (the "noisy" row of a table).
    * `bm3d`: BM3D (`bm3d.bm3d`, `bm3d.bm3d_rgb` for colour) with the true
      noise level; only for pure Gaussian noise (`gaussian:SIGMA`, or a
      blind range, where each image's drawn sigma is used; `ramp:LOW-HIGH`,
      where it is told the mean level).
    * `wiener`: `skimage.restoration.wiener` with the known blur kernel and
      balance 0.003, per channel; needs one blur stage (`blur:...` or
      `motion:...`), optionally with noise.
    * `median`: a 3 x 3 median filter per channel (`scipy.ndimage`), the
      classical baseline of impulse noise; any degradation.

    Args:
        name: `"identity"`, `"bm3d"`, `"wiener"` or `"median"`.
        degradation: the `Degradation` that made the images (or `None` when
            unknown, which only `identity` accepts).

    Returns:
        A function `restore(degraded, info) -> restored`, where `info` is the
        dict of drawn parameters from `Degradation.apply`.

    Raises:
        keras_lnca.errors.UserError: unknown name, or a degradation the
            baseline cannot handle.

    Example:

    >>> from keras_lnca.degradations import parse
    >>> from keras_lnca.evaluation import baseline
    >>> restore = baseline("bm3d", parse("gaussian:25"))
    """
    if name == "identity":
        return lambda degraded, info: degraded
    if name not in BASELINES:
        raise UserError(f"unknown baseline {name!r}: expected one of {', '.join(BASELINES)}")
    if name == "median":
        return _median
    kinds = () if degradation is None else degradation.kinds
    spec = None if degradation is None else degradation.spec
    if name == "bm3d":
        if kinds != ("gaussian",):
            raise UserError(
                f"bm3d is a Gaussian denoiser: it needs --degradation gaussian:SIGMA, got {spec}"
            )
        return _bm3d
    blurs = [k for k in kinds if k in ("blur", "motion")]
    if len(blurs) != 1:
        raise UserError(
            "wiener deconvolves a known kernel: it needs exactly one blur:... or motion:... "
            f"stage in --degradation, got {spec}"
        )
    return _wiener


def count_images(dataset, paired, limit):
    """How many images an evaluation of `dataset` visits (at most `limit`)."""
    total = len(find_pairs(dataset)) if paired else len(list_images(dataset))
    if total == 0:
        raise UserError(f"no images in {dataset}")
    return total if limit is None else min(total, int(limit))


def samples(dataset, degradation, paired, seed, channels):
    """Yields `(file_name, clean, degraded, info)` under the evaluation contract."""
    if paired:
        for i, (name, clean, damaged) in enumerate(paired_evaluation_images(dataset, channels)):
            info = {}
            if degradation is not None:  # parameters the spec would use (for baselines)
                info = degradation.apply(clean, seed=np.random.default_rng(seed), index=i)[1][0]
            yield name, clean, damaged, info
        return
    named, cleans = itertools.tee(evaluation_images(dataset, channels))
    degraded = degrade_for_eval((c for _, c in cleans), degradation, seed, return_info=True)
    for (name, clean), (damaged, info) in zip(named, degraded):
        yield name, clean, damaged, info


def as_image(output, shape, method, name):
    """A method's output as a float64 image of `shape`, or a one-line `UserError`."""
    output = np.asarray(output, np.float64)
    if output.shape != shape and output.size == int(np.prod(shape)) and output.ndim == 2:
        output = output.reshape(shape)
    if output.shape != shape:
        raise UserError(
            f"{method} returned shape {output.shape} for {name} of shape {shape}"
        )
    return output


def evaluate(dataset, degradation=None, methods=None, baselines=(), *, seed=0, channels=None,
             limit=None, progress=True, told_methods=None):
    """Evaluates methods on a folder at full resolution.

    Args:
        dataset: a folder of clean images (degraded here with
            `degradation`), or a paired folder with `GT/` and `DAMAGED/`
            (scored as is; `degradation` then only tells `bm3d` / `wiener`
            the noise level / kernel).
        degradation: a spec string or a `Degradation`; required for a plain
            folder.
        methods: a mapping `name -> restore(image) -> image` (e.g.
            `{"model:mine": lambda x: model.restore(x)}`); `image` is float
            `H x W x C`, not clipped.
        baselines: names from `BASELINES`.
        seed: the evaluation seed (default 0).
        channels: `None` keeps each file's channels; 1 or 3 converts.
        limit: evaluate only the first `limit` images.
        progress: show a tqdm progress bar.
        told_methods: a mapping `name -> restore(image, info) -> image` of
            methods told what the degradation drew for each image (`info`,
            see `Degradation.apply`: e.g. `info["sigma"]`, the true noise
            level), as the `bm3d` and `wiener` baselines are.

    Returns:
        A dict: `{"dataset", "degradation", "seed", "paired", "channels",
        "num_images", "results": [{"method", "psnr", "ssim",
        "seconds_per_image", "clipped", "per_image": [{"file", "psnr",
        "ssim", "seconds"}]}]}`, methods first, then baselines.

    Example:

    >>> from keras_lnca.evaluation import evaluate, format_table
    >>> result = evaluate("set12", "gaussian:25", baselines=["identity"])  # doctest: +SKIP
    >>> print(format_table(result))  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    paired = is_paired_folder(dataset)
    degradation = None if degradation is None else parse(degradation)
    if degradation is None and not paired:
        raise UserError(
            f"{dataset} is not a paired GT/ + DAMAGED/ folder: give a degradation to apply"
        )
    # (name, restore(degraded, info), clip the output before scoring)
    runners = [(name, (lambda fn: lambda image, info: fn(image))(fn), True)
               for name, fn in (methods or {}).items()]
    if told_methods and degradation is None:
        raise UserError("methods told the degradation need one: give a degradation spec")
    runners += [(name, fn, True) for name, fn in (told_methods or {}).items()]
    runners += [(name, baseline(name, degradation), name != "identity") for name in baselines]
    if not runners:
        raise UserError("nothing to evaluate: give at least one model or baseline")
    names = [name for name, _, _ in runners]
    if len(set(names)) != len(names):
        raise UserError(f"duplicate method names: {names}")
    total = count_images(dataset, paired, limit)

    per_image = {name: [] for name in names}
    chosen = itertools.islice(samples(dataset, degradation, paired, seed, channels), total)
    bar = tqdm(chosen, total=total, unit="image", disable=not progress, leave=False)
    for file_name, clean, degraded, info in bar:
        bar.set_postfix_str(file_name)
        for name, run, clip in runners:
            start = time.perf_counter()
            output = run(degraded, info)
            seconds = time.perf_counter() - start
            output = as_image(output, clean.shape, name, file_name)
            per_image[name].append({
                "file": file_name, "psnr": psnr(clean, output, clip), "ssim": ssim(clean, output, clip),
                "seconds": seconds,
            })
    bar.close()

    results = []
    for name, _, clip in runners:
        records = per_image[name]
        results.append({
            "method": name,
            "psnr": float(np.mean([r["psnr"] for r in records])),
            "ssim": float(np.mean([r["ssim"] for r in records])),
            "seconds_per_image": float(np.mean([r["seconds"] for r in records])),
            "clipped": clip,
            "per_image": records,
        })
    return {
        "dataset": str(dataset),
        "degradation": None if degradation is None else degradation.spec,
        "seed": int(seed),
        "paired": paired,
        "channels": channels,
        "num_images": total,
        "results": results,
    }


def format_table(result):
    """The results as a text table: method, PSNR, SSIM, seconds per image."""
    width = max([len("method")] + [len(r["method"]) for r in result["results"]])
    lines = [
        f"{result['dataset']}: {result['num_images']} image(s), "
        f"degradation {result['degradation'] or '(paired)'}, seed {result['seed']}",
        f"{'method':<{width}}  {'PSNR (dB)':>9}  {'SSIM':>6}  {'s/image':>8}",
    ]
    for r in result["results"]:
        lines.append(
            f"{r['method']:<{width}}  {r['psnr']:>9.2f}  {r['ssim']:>6.4f}  "
            f"{r['seconds_per_image']:>8.3f}"
        )
    return "\n".join(lines)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write_json(path, result):
    """Writes `result` as JSON, atomically (non-finite numbers become null)."""
    text = json.dumps(_finite(result), indent=2, allow_nan=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
