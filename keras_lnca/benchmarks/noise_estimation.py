"""How well `estimate_noise_level` reads the noise level of a test set.

Every image of a folder is degraded with `gaussian:SIGMA` under the
evaluation contract (image i with a fresh `np.random.default_rng(seed)`, not
clipped: the same noisy images `lnca evaluate` scores) for each SIGMA, and
the estimate is compared with the true level. No model is involved.
"""

import time

import numpy as np

DEFAULT_SIGMAS = (0.0, 5.0, 15.0, 25.0, 50.0)


def run(dataset, sigmas=DEFAULT_SIGMAS, *, seed=0, channels=None, limit=None, progress=True):
    """Estimates the level of every image at every sigma.

    Returns:
        `{"dataset", "seed", "num_images", "rows": [{"sigma", "mean",
        "mean_abs_error", "max_abs_error", "bias", "seconds_per_image",
        "estimates"}]}`.
    """
    from tqdm.auto import tqdm

    from keras_lnca.data.folder import evaluation_images
    from keras_lnca.degradations import degrade_for_eval
    from keras_lnca.degradations import estimate_noise_level

    images = [image for _, image in evaluation_images(dataset, channels)]
    if limit is not None:
        images = images[: int(limit)]
    rows = []
    for sigma in tqdm(sigmas, unit="sigma", disable=not progress, leave=False):
        estimates, seconds = [], 0.0
        for noisy in degrade_for_eval(images, f"gaussian:{sigma:g}", seed):
            start = time.perf_counter()
            estimates.append(estimate_noise_level(noisy))
            seconds += time.perf_counter() - start
        errors = np.asarray(estimates) - sigma
        rows.append({
            "sigma": float(sigma),
            "mean": float(np.mean(estimates)),
            "bias": float(np.mean(errors)),
            "mean_abs_error": float(np.mean(np.abs(errors))),
            "max_abs_error": float(np.max(np.abs(errors))),
            "seconds_per_image": seconds / len(images),
            "estimates": [float(e) for e in estimates],
        })
    return {"dataset": str(dataset), "seed": int(seed), "num_images": len(images), "rows": rows}


def format_table(result):
    """A plain-text table of `run`'s result."""
    lines = [
        f"noise level estimation on {result['dataset']} ({result['num_images']} images, "
        f"seed {result['seed']})",
        f"{'sigma':>6} {'mean est.':>10} {'bias':>7} {'mean |err|':>11} {'max |err|':>10} {'s/image':>8}",
    ]
    for row in result["rows"]:
        lines.append(
            f"{row['sigma']:6.1f} {row['mean']:10.2f} {row['bias']:+7.2f} "
            f"{row['mean_abs_error']:11.2f} {row['max_abs_error']:10.2f} {row['seconds_per_image']:8.3f}"
        )
    return "\n".join(lines)


def write_json(path, result):
    """Writes `result` as JSON, atomically."""
    from keras_lnca.evaluation import write_json as write_evaluation_json

    write_evaluation_json(path, result)
