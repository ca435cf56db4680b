"""Where a colour denoiser's error lives: luma or chroma (`lnca benchmark color`).

In the orthogonal opponent space of `keras_lnca.models.color_space` (luma,
two chroma differences) the error of a restored colour image splits exactly
into one part per channel: the rows of the inverse transform are orthogonal,
so the squared RGB error is the sum, over the three opponent channels, of
each channel's squared error times the squared length of its inverse row.
For every image and noise level this benchmark reports

* `psnr`: the model's output against the clean image (what `lnca evaluate`
  scores, with the same noisy images: image `i` of the sorted folder
  degraded with a fresh `np.random.default_rng(seed)`, not clipped);
* `luma_share` / `chroma_share`: the percentage of that squared error
  carried by the luma channel and by the two chroma channels;
* `psnr_clean_luma` / `psnr_clean_chroma`: the PSNR once the output's luma
  (or its two chroma channels) is replaced by the clean image's: the most a
  better luma (or chroma) path could gain, all else kept.

It tells which part of a colour model to improve (issue 19, item 3): a
chroma path guided by luma cannot gain more than `psnr_clean_chroma - psnr`.
The model is told the true noise level unless `estimate=True`.

Example:
```python
import keras_lnca as kl
from keras_lnca.benchmarks import color_errors

model = kl.LNCA.from_preset("lnca_denoise_color_blind")
result = color_errors.run(model, "../shared/data/color/cbsd68", sigmas=(15, 25), limit=8,
                          baselines=["bm3d"])
print(color_errors.format_table(result))
```
"""

import time

import numpy as np

from keras_lnca.evaluation import psnr
from keras_lnca.models.color_space import OPPONENT
from keras_lnca.models.color_space import OPPONENT_INVERSE
from keras_lnca.models.color_space import OPPONENT_OFFSET

DEFAULT_SIGMAS = (15.0, 25.0, 50.0)
FIELDS = ("psnr", "psnr_clean_luma", "psnr_clean_chroma", "luma_share", "chroma_share")
# Squared length of each inverse row: the RGB error per unit of a channel's error.
_WEIGHTS = np.square(OPPONENT_INVERSE.astype(np.float64)).sum(axis=1)


def to_opponent(rgb):
    """`(..., 3)` RGB → the scaled opponent channels (numpy)."""
    return rgb.astype(np.float64) @ OPPONENT.astype(np.float64) + OPPONENT_OFFSET


def from_opponent(channels):
    """The inverse of `to_opponent` (numpy)."""
    return (channels - OPPONENT_OFFSET) @ OPPONENT_INVERSE.astype(np.float64)


def split_error(restored, clean):
    """The scores of one restored RGB image against its clean one (floats in [0, 1]).

    Returns:
        A dict with the keys of `FIELDS`.
    """
    restored = np.clip(np.asarray(restored, np.float64), 0.0, 1.0)
    clean = np.asarray(clean, np.float64)
    if restored.shape != clean.shape or restored.shape[-1] != 3:
        raise ValueError(f"expected two RGB images of one shape, got {restored.shape} and {clean.shape}")
    out, true = to_opponent(restored), to_opponent(clean)
    parts = np.square(out - true).reshape(-1, 3).mean(axis=0) * _WEIGHTS
    total = float(parts.sum()) or 1.0  # a perfect output: both shares 0
    clean_luma, clean_chroma = out.copy(), out.copy()
    clean_luma[..., 0] = true[..., 0]
    clean_chroma[..., 1:] = true[..., 1:]
    return {
        "psnr": psnr(clean, restored),
        "psnr_clean_luma": psnr(clean, from_opponent(clean_luma)),
        "psnr_clean_chroma": psnr(clean, from_opponent(clean_chroma)),
        "luma_share": 100.0 * float(parts[0]) / total,
        "chroma_share": 100.0 * float(parts[1:].sum()) / total,
    }


def run(model, dataset, sigmas=DEFAULT_SIGMAS, *, seed=0, limit=None, estimate=False,
        baselines=(), name="model", command=None, progress=True):
    """Restores every image of `dataset` at each noise level and splits the error.

    Args:
        model: a colour model with `restore` (told the level when it is
            noise-level-aware and `estimate` is False).
        dataset: a folder of colour images.
        sigmas: Gaussian noise levels, 0-255 scale.
        seed: the evaluation noise seed.
        limit: only the first `limit` images.
        estimate: let the model estimate the level instead of telling it.
        baselines: names from `keras_lnca.evaluation.BASELINES` whose error
            is split too, on the same noisy images (`"bm3d"`: CBM3D told
            the true level).

    Returns:
        `{"dataset", "seed", "num_images", "told", "command", "rows":
        [{"method", "sigma", <FIELDS means>, "seconds_per_image", "images": [...]}]}`,
        one row per method and level.
    """
    from tqdm.auto import tqdm

    from keras_lnca.data.folder import evaluation_images
    from keras_lnca.degradations import degrade_for_eval
    from keras_lnca.degradations import parse
    from keras_lnca.evaluation import baseline

    if getattr(model, "channels", 3) != 3:
        raise ValueError(f"the colour error split needs a colour model, got one with {model.channels} channel(s)")
    images = [image for _, image in evaluation_images(dataset, 3)]
    if limit is not None:
        images = images[: int(limit)]
    told = bool(getattr(model, "noise_map", False)) and not estimate
    rows = []
    for sigma in sigmas:
        spec = f"gaussian:{sigma:g}"
        methods = {name: lambda noisy: model.restore(noisy, **({"noise_level": float(sigma)} if told else {}))}
        for other in baselines:
            restore = baseline(other, parse(spec))
            methods[other] = lambda noisy, restore=restore: restore(noisy, {"sigma": float(sigma)})
        noisy_images = list(degrade_for_eval(images, spec, seed))
        for method, restore in methods.items():
            scores, seconds = [], 0.0
            bar = tqdm(zip(images, noisy_images), total=len(images), unit="image",
                       desc=f"{method} sigma {sigma:g}", disable=not progress, leave=False)
            for clean, noisy in bar:
                start = time.perf_counter()
                restored = restore(noisy.astype(np.float32))
                seconds += time.perf_counter() - start
                scores.append(split_error(restored, clean))
            row = {"method": method, "sigma": float(sigma)}
            row.update({field: float(np.mean([s[field] for s in scores])) for field in FIELDS})
            row["seconds_per_image"] = seconds / max(1, len(images))
            row["images"] = scores
            rows.append(row)
    return {"dataset": str(dataset), "seed": int(seed), "num_images": len(images),
            "told": told, "command": command, "rows": rows}


def format_table(result):
    """A plain-text table of `run`'s result."""
    level = "the model told sigma" if result["told"] else "the model estimating sigma (or taking none)"
    width = max([len("method")] + [len(row["method"]) for row in result["rows"]])
    lines = [
        f"where the error lives on {result['dataset']} ({result['num_images']} images, "
        f"seed {result['seed']}, {level})",
        f"{'method':<{width}} {'sigma':>6} {'PSNR':>7} {'clean luma':>11} {'clean chroma':>13} "
        f"{'luma %':>7} {'chroma %':>9}",
    ]
    for row in result["rows"]:
        lines.append(
            f"{row['method']:<{width}} {row['sigma']:6.1f} {row['psnr']:7.2f} {row['psnr_clean_luma']:11.2f} "
            f"{row['psnr_clean_chroma']:13.2f} {row['luma_share']:7.1f} {row['chroma_share']:9.1f}"
        )
    return "\n".join(lines)


def write_json(path, result):
    """Writes `result` as JSON, atomically."""
    from keras_lnca.evaluation import write_json as write_evaluation_json

    write_evaluation_json(path, result)
