"""A trained model's preset card: its evaluation, its demo figures, and the files.

`evaluate_recipe` runs the recipe's test sets (a noise-level-aware model
with the noise level estimated and told), `demo_metrics` the `lnca demo`
figures, and `write_preset` writes `<name>.keras` and its card
`<name>.json`, each atomically.
"""

import json
import pathlib
import shlex
import sys

import numpy as np

from keras_lnca.training.schema import resolve_data


def evaluate_recipe(model, recipe, limit=None, log=print):
    """Evaluates a trained model on the recipe's test sets (full resolution).

    A noise-level-aware model gets two rows where the noise is Gaussian: σ
    estimated from each image (`model:<name>`, what a user gets) and told
    the true σ (`model:<name>@told`, as BM3D is).
    """
    from keras_lnca import evaluation
    from keras_lnca.degradations import parse
    from keras_lnca.evaluation import TOLD_SUFFIX

    name = f"model:{recipe['name']}"
    results = []
    for item in recipe.get("evaluate", []):
        told = {}
        if getattr(model, "noise_map", False) and "gaussian" in parse(item["degradation"]).kinds:
            told = {name + TOLD_SUFFIX: lambda image, info: model.restore(image, noise_level=info["sigma"])}
        result = evaluation.evaluate(
            resolve_data(item["dataset"]),
            item["degradation"],
            methods={name: lambda image: model.restore(image)},
            baselines=item.get("baselines", ["identity"]),
            channels=model.channels,
            limit=limit or item.get("limit"),
            progress=True,
            told_methods=told,
        )
        log(evaluation.format_table(result))
        results.append(
            {
                "dataset": item["dataset"],
                "degradation": item["degradation"],
                "num_images": result["num_images"],
                "results": [
                    {
                        **{k: r[k] for k in ("method", "psnr", "ssim", "seconds_per_image")},
                        # Per-image figures of the model itself: a check re-measures a few.
                        **({"per_image": r["per_image"]} if r["method"].startswith("model:") else {}),
                    }
                    for r in result["results"]
                ],
            }
        )
    return results


def demo_metrics(model):
    """The `lnca demo` figures for this model (recorded in the preset card)."""
    from keras_lnca import evaluation
    from keras_lnca.shipped_image import DEMO_SIGMA as SIGMA
    from keras_lnca.shipped_image import demo_image

    clean = demo_image(model.channels)
    noisy = clean + np.random.default_rng(0).normal(0, SIGMA / 255, clean.shape).astype("float32")
    restored = model.restore(noisy)
    return {
        "noisy_psnr": round(evaluation.psnr(clean, noisy, clip=False), 4),
        "psnr": round(evaluation.psnr(clean, restored), 4),
        "ssim": round(evaluation.ssim(clean, restored), 4),
    }


def write_preset(model, recipe, summary, evaluations, out_dir, config_path):
    """Writes `<name>.keras` and `<name>.json` (the preset card) into `out_dir`."""
    import keras

    from keras_lnca.data.io import atomic_path
    from keras_lnca.data.io import atomic_write

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = recipe["name"]
    model_path = out_dir / f"{name}.keras"
    with atomic_path(model_path) as temporary:
        model.save(temporary)
    card = {
        "name": name,
        "description": recipe.get("description", ""),
        "config": model.get_config(),
        "parameters": {
            "trainable": int(sum(np.prod(v.shape) for v in model.trainable_variables)),
            "autoencoder": int(getattr(model, "encoder", None) and
                               model.encoder.count_params() + model.decoder.count_params() or 0),
            "cell": int(model.nca.count_params()),
        },
        "training_command": f"lnca train --config {config_path}",
        "recipe": recipe,
        "backend": keras.backend.backend(),
        "training": summary,
        "metrics": evaluations,
        "demo": demo_metrics(model),
        "argv": " ".join(shlex.quote(a) for a in sys.argv),
    }
    text = json.dumps(card, indent=2, default=float) + "\n"
    atomic_write(out_dir / f"{name}.json", lambda f: f.write(text.encode()))
    return model_path
