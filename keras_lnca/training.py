"""Training recipes: `lnca train --config FILE` reproduces a preset.

A recipe is a JSON file (see `configs/`):

```json
{
  "name": "lnca_denoise_gray_s25",
  "seed": 0,
  "model": {"class": "LNCA", "channels": 1},
  "data": {"train": "gray/train400", "degradation": "gaussian:25",
           "crop_size": 32, "batch_size": 8, "crops_per_image": 4},
  "compile": {"learning_rate": 0.01},
  "phases": [{"phase": "autoencoder", "epochs": 4}, {"phase": "nca", "epochs": 20}],
  "evaluate": [{"dataset": "gray/bsd68", "degradation": "gaussian:25"}]
}
```

Relative data paths are resolved against `$LNCA_DATA` (default
`../shared/data`). Each phase is one `fit` with `BackupAndRestore`, so a
killed run resumes where it stopped; a finished phase is saved as
`after_<phase>.keras` in the run folder and skipped on restart. The data
pipeline is the numpy `FolderPyDataset` (every backend, no TensorFlow
needed), seeded by the recipe's seed and the epoch, so a resumed run sees
the same batches as an uninterrupted one.
"""

import json
import os
import pathlib
import shlex
import sys
import time

import numpy as np

from keras_lnca.errors import UserError

REQUIRED = ("name", "model", "data", "phases")


def data_root():
    return pathlib.Path(os.environ.get("LNCA_DATA", "../shared/data"))


def resolve_data(path):
    path = pathlib.Path(path)
    return path if path.is_absolute() or path.exists() else data_root() / path


def load_recipe(path):
    """Reads and checks a recipe file."""
    path = pathlib.Path(path)
    if not path.exists():
        raise UserError(f"No such recipe: {path}")
    try:
        recipe = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not valid JSON: {error}") from None
    missing = [key for key in REQUIRED if key not in recipe]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}")
    for phase in recipe["phases"]:
        if phase.get("phase") not in ("autoencoder", "nca") or int(phase.get("epochs", 0)) < 0:
            raise UserError(f"{path}: each phase needs 'phase' (autoencoder|nca) and 'epochs' >= 0")
    return recipe


def build_model(recipe):
    import keras_lnca as kl

    config = dict(recipe["model"])
    model_class = {"LNCA": kl.LNCA, "PixelNCA": kl.PixelNCA}[config.pop("class", "LNCA")]
    config.setdefault("pool_image_size", recipe["data"].get("crop_size", 32))
    config.setdefault("seed", recipe.get("seed", 0))
    return model_class(**config)


def training_data(recipe, epoch=0):
    from keras_lnca.data import FolderPyDataset

    data = recipe["data"]
    dataset = FolderPyDataset(
        resolve_data(data["train"]),
        data["degradation"],
        crop_size=data.get("crop_size", 32),
        batch_size=data.get("batch_size", 8),
        channels=recipe["model"].get("channels", 3),
        crops_per_image=data.get("crops_per_image", 1),
        seed=recipe.get("seed", 0),
        clip=data.get("clip", False),
    )
    dataset._epoch = epoch
    return dataset


class _SyncDataEpoch:
    """Keeps the dataset's epoch (its crops and noise) equal to fit's epoch."""

    def __new__(cls, dataset):
        import keras

        class SyncDataEpoch(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                dataset._epoch = epoch

        return SyncDataEpoch()


def train(recipe, run_dir, verbose="auto", log=print, extra_callbacks=()):
    """Runs a recipe; returns the trained model and the run's summary dict."""
    import keras

    from keras_lnca.callbacks import ProfilerCallback

    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(recipe.get("seed", 0))
    model = build_model(recipe)
    crop = recipe["data"].get("crop_size", 32)
    model.build((None, crop, crop, model.channels))  # BackupAndRestore needs a built model
    summary = {"phases": [], "backend": keras.backend.backend()}
    compile_args = dict(recipe.get("compile", {}))
    start = time.time()
    for phase in recipe["phases"]:
        name, epochs = phase["phase"], int(phase["epochs"])
        done = run_dir / f"after_{name}.keras"
        if done.exists():
            log(f"phase {name}: already trained, loading {done}")
            model = keras.saving.load_model(done)
            continue
        dataset = training_data(recipe)
        model.save_pool = True  # checkpoints keep the pool, for an exact resume
        model.set_phase(name)
        model.compile(decay_steps=max(1, epochs * len(dataset)), **compile_args)
        callbacks = [
            _SyncDataEpoch(dataset),
            keras.callbacks.BackupAndRestore(str(run_dir / f"backup_{name}")),
            ProfilerCallback(batch_size=dataset.batch_size),
            keras.callbacks.CSVLogger(str(run_dir / f"log_{name}.csv"), append=True),
            *extra_callbacks,
        ]
        try:
            import tensorboard  # noqa: F401

            callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "tensorboard" / name)))
        except ImportError:
            pass
        log(f"phase {name}: {epochs} epochs x {len(dataset)} batches of {dataset.batch_size}")
        # The dataset shuffles itself, seeded by epoch; Keras' own batch-order
        # shuffle would draw from the global RNG and break exact resume.
        history = model.fit(dataset, epochs=epochs, verbose=verbose, callbacks=callbacks, shuffle=False)
        model.save(done)
        model.save_pool = False
        summary["phases"].append(
            {
                "phase": name,
                "epochs": epochs,
                "steps": epochs * len(dataset),
                "final": {k: float(v[-1]) for k, v in history.history.items() if v},
            }
        )
    summary["train_minutes"] = round((time.time() - start) / 60, 1)
    return model, summary


def evaluate_recipe(model, recipe, limit=None, log=print):
    """Evaluates a trained model on the recipe's test sets (full resolution)."""
    from keras_lnca import evaluation

    results = []
    for item in recipe.get("evaluate", []):
        result = evaluation.evaluate(
            resolve_data(item["dataset"]),
            item["degradation"],
            methods={f"model:{recipe['name']}": lambda image: model.restore(image)},
            baselines=item.get("baselines", ["identity"]),
            channels=model.channels,
            limit=limit or item.get("limit"),
            progress=True,
        )
        log(evaluation.format_table(result))
        results.append(
            {
                "dataset": item["dataset"],
                "degradation": item["degradation"],
                "num_images": result["num_images"],
                "results": [
                    {k: r[k] for k in ("method", "psnr", "ssim", "seconds_per_image")}
                    for r in result["results"]
                ],
            }
        )
    return results


def demo_metrics(model):
    """The `lnca demo` figures for this model (recorded in the preset card)."""
    from keras_lnca import evaluation
    from keras_lnca.commands.demo import SIGMA
    from keras_lnca.commands.demo import demo_image

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

    from keras_lnca.data.io import atomic_write

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = recipe["name"]
    model_path = out_dir / f"{name}.keras"
    temporary = out_dir / f".{name}.tmp.keras"
    try:
        model.save(temporary)
        os.replace(temporary, model_path)
    finally:
        temporary.unlink(missing_ok=True)
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
