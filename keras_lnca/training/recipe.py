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
`../shared/data`). Each phase is one `fit` that writes a `Checkpoint` at
every epoch's end, so a run killed at any moment resumes exactly from its
last complete epoch; a finished phase is saved as `after_<phase>.keras` in
the run folder and skipped on restart. `init_from` starts the model from a
preset or another run. The recipe is checked (keys, types, model
arguments, data folder) before anything is written. The data
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
from keras_lnca.training.checkpoint import Checkpoint
from keras_lnca.training.checkpoint import checkpoint_callback

REQUIRED = ("name", "model", "data", "phases")


def data_root():
    return pathlib.Path(os.environ.get("LNCA_DATA", "../shared/data"))


def resolve_init(source):
    """`init_from`: a preset name, or a path relative to the repository (the working folder)."""
    path = pathlib.Path(source)
    return path if path.exists() else source


def resolve_data(path):
    path = pathlib.Path(path)
    return path if path.is_absolute() or path.exists() else data_root() / path


# The keys a recipe may hold, and the type of each (checked before any work).
RECIPE_KEYS = {
    "name": str, "description": str, "seed": int, "model": dict, "data": dict,
    "compile": dict, "phases": list, "evaluate": list, "init_from": str,
}
DATA_KEYS = {
    "train": str, "degradation": str, "crop_size": int, "batch_size": int,
    "crops_per_image": int, "clip": bool,
}
COMPILE_KEYS = {"learning_rate": (int, float), "warmup_steps": int, "metrics": list}
MODEL_CLASSES = ("LNCA", "PixelNCA")


def _check_keys(where, mapping, allowed):
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
    for key, value in mapping.items():
        kind = allowed[key]
        if isinstance(value, bool) and kind is not bool:
            ok = False
        else:
            ok = isinstance(value, kind)
        if not ok:
            names = "/".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise UserError(f"{where}: {key!r} must be {names}, got {value!r}")


def check_recipe(recipe, where="recipe"):
    """Checks a recipe's keys, types and values; raises a one-line `UserError`."""
    import inspect

    if not isinstance(recipe, dict):
        raise UserError(f"{where} must be a JSON object")
    missing = [key for key in REQUIRED if key not in recipe]
    if missing:
        raise UserError(f"{where} lacks {', '.join(missing)}")
    _check_keys(where, recipe, RECIPE_KEYS)
    _check_keys(f"{where}: data", recipe["data"], DATA_KEYS)
    if "train" not in recipe["data"] or "degradation" not in recipe["data"]:
        raise UserError(f"{where}: data needs 'train' (a folder) and 'degradation' (a spec)")
    for key in ("crop_size", "batch_size", "crops_per_image"):
        if recipe["data"].get(key, 1) < 1:
            raise UserError(f"{where}: data {key!r} must be >= 1")
    _check_keys(f"{where}: compile", recipe.get("compile", {}), COMPILE_KEYS)
    from keras_lnca.degradations import parse

    parse(recipe["data"]["degradation"])
    model = dict(recipe["model"])
    model_class = model.pop("class", "LNCA")
    if model_class not in MODEL_CLASSES:
        raise UserError(f"{where}: unknown model class {model_class!r} (use {' or '.join(MODEL_CLASSES)})")
    import keras_lnca as kl

    accepted = set(inspect.signature(getattr(kl, model_class).__init__).parameters) - {"self", "kwargs"}
    unknown = sorted(set(model) - accepted)
    if unknown:
        raise UserError(f"{where}: {model_class} has no argument {unknown[0]!r}")
    if not recipe["phases"]:
        raise UserError(f"{where}: 'phases' is empty")
    for phase in recipe["phases"]:
        if not isinstance(phase, dict) or phase.get("phase") not in ("autoencoder", "nca"):
            raise UserError(f"{where}: each phase needs 'phase' (autoencoder|nca) and 'epochs' >= 0")
        epochs = phase.get("epochs", 0)
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise UserError(f"{where}: phase {phase['phase']!r} 'epochs' must be an integer >= 0, got {epochs!r}")
    return recipe


def load_recipe(path):
    """Reads and checks a recipe file."""
    path = pathlib.Path(path)
    if not path.exists():
        raise UserError(f"No such recipe: {path}")
    try:
        recipe = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not valid JSON: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read recipe {path}: {error}") from None
    return check_recipe(recipe, str(path))


def build_model(recipe):
    import keras_lnca as kl

    config = dict(recipe["model"])
    model_class = {"LNCA": kl.LNCA, "PixelNCA": kl.PixelNCA}[config.pop("class", "LNCA")]
    config.setdefault("pool_image_size", recipe["data"].get("crop_size", 32))
    config.setdefault("seed", recipe.get("seed", 0))
    try:
        return model_class(**config)
    except (TypeError, ValueError) as error:
        raise UserError(f"recipe {recipe.get('name', '')!r}: bad model arguments: {error}") from None


def initial_weights(model, source, log=print):
    """Starts a model from the weights of a preset, a `.keras` file or a run folder.

    `source` is a preset name, a `.keras` path, or a run folder (its newest
    committed checkpoint). The automaton's and the codec's weights are
    copied, not the sample pool nor the optimizer: the new run has its own
    schedule. The donor must have the same architecture, or be the same
    architecture without a noise map (`noise_map=False`): the weights that
    read the state's noise channel then start at zero, so the new model
    starts as the donor does, whatever the map says.
    """
    from keras_lnca.models import presets

    path = pathlib.Path(source)
    if path.is_dir():
        checkpoints = sorted(path.glob("*.weights.h5"), key=lambda p: p.stat().st_mtime)
        if not checkpoints:
            raise UserError(f"init_from {source}: no checkpoint in that folder")
        donor = None
        # The folder does not record its model's config: this model's, or the
        # same without a noise map (see below).
        for noise_map in dict.fromkeys((model.noise_map, False)):
            candidate = type(model).from_config({**model.get_config(), "noise_map": noise_map})
            candidate.build()
            try:
                candidate.load_weights(checkpoints[-1])
            except ValueError:
                continue
            donor = candidate
            break
        if donor is None:
            raise UserError(f"init_from {source}: its weights do not fit this model")
    else:
        donor = presets.load(source)
    pairs = list(zip(donor.nca.weights, model.nca.weights))
    for name in ("encoder", "decoder"):
        if hasattr(model, name):
            pairs += list(zip(getattr(donor, name).weights, getattr(model, name).weights))
    gains_noise_map = getattr(model, "noise_map", False) and not getattr(donor, "noise_map", False)
    values = []
    for donor_variable, variable in pairs:
        value = np.asarray(donor_variable.numpy())
        if gains_noise_map and value.shape != tuple(variable.shape):
            value = _with_noise_channel(value, tuple(variable.shape), model.cell_input_channels)
        if value is None or value.shape != tuple(variable.shape):
            raise UserError(f"init_from {source}: its weights do not fit this model")
        values.append(value)
    if not pairs:
        raise UserError(f"init_from {source}: its weights do not fit this model")
    for (_, variable), value in zip(pairs, values):
        variable.assign(value)
    log(f"initialised {len(pairs)} weight arrays from {source}")


def _with_noise_channel(value, shape, index):
    """A donor's weight array with a zero slice for the state's noise channel.

    The cells read the state's channels in order along one axis of their
    first kernels (a perception convolution's input axis, the first dense
    layer's rows); the noise channel sits at `index`, after the input grid.
    Returns None where the shapes differ otherwise.
    """
    differ = [axis for axis, (a, b) in enumerate(zip(value.shape, shape)) if a != b]
    if len(value.shape) != len(shape) or len(differ) != 1 or shape[differ[0]] != value.shape[differ[0]] + 1:
        return None
    return np.insert(value, index, 0.0, axis=differ[0])


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
        noise_map=recipe["model"].get("noise_map", False),
    )
    dataset.epoch = epoch
    return dataset


class _SyncDataEpoch:
    """Keeps the dataset's epoch (its crops and noise) equal to fit's epoch."""

    def __new__(cls, dataset):
        import keras

        class SyncDataEpoch(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                dataset.epoch = epoch

        return SyncDataEpoch()


def _load_finished_phase(path, name):
    import keras

    try:
        return keras.saving.load_model(path)
    except Exception as error:
        raise UserError(
            f"{path} is damaged ({type(error).__name__}); delete it to retrain phase {name}"
        ) from None


def train(recipe, run_dir, verbose="auto", log=print, extra_callbacks=(), snapshot=False):
    """Runs a recipe; returns the trained model and the run's summary dict.

    `snapshot=True` trains nothing: the model comes from the run's latest
    checkpoint as it stands (a run that goes on later), and the summary says
    how many of each phase's epochs it had done.
    """
    import keras

    from keras_lnca.callbacks import ProfilerCallback
    from keras_lnca.data.io import atomic_path

    run_dir = pathlib.Path(run_dir)
    keras.utils.set_random_seed(recipe.get("seed", 0))
    model = build_model(recipe)
    folder = resolve_data(recipe["data"]["train"])
    if not folder.is_dir():
        raise UserError(f"no such training folder: {folder} (relative paths are under $LNCA_DATA)")
    run_dir.mkdir(parents=True, exist_ok=True)  # only once the recipe is known to be sound
    crop = recipe["data"].get("crop_size", 32)
    model.build((None, crop, crop, model.channels))
    summary = {"phases": [], "backend": keras.backend.backend()}
    compile_args = dict(recipe.get("compile", {}))
    fresh = not any(run_dir.glob("after_*.keras"))
    if recipe.get("init_from") and fresh and not Checkpoint(run_dir, "").progress():
        initial_weights(model, str(resolve_init(recipe["init_from"])), log=log)
    start = time.time()
    for phase in recipe["phases"]:
        name, epochs = phase["phase"], int(phase["epochs"])
        done = run_dir / f"after_{name}.keras"
        checkpoint = Checkpoint(run_dir, name)
        if done.exists():
            log(f"phase {name}: already trained, loading {done}")
            model = _load_finished_phase(done, name)
        else:
            dataset = training_data(recipe)
            model.set_phase(name)
            total_steps = max(1, epochs * len(dataset))
            warmup = int(compile_args.get("warmup_steps", 0))
            model.compile(decay_steps=max(1, total_steps - warmup), **compile_args)
            initial_epoch = checkpoint.restore(model)
            if snapshot:
                log(f"phase {name}: snapshot after epoch {initial_epoch} of {epochs}")
                summary["phases"].append(_phase_summary(recipe, name, initial_epoch, checkpoint, run_dir))
                summary["phases"][-1]["snapshot_of_epochs"] = epochs
                continue
            if initial_epoch:
                pool = "" if checkpoint.pool_restored else " (its sample pool starts empty)"
                log(f"phase {name}: resuming after epoch {initial_epoch}{pool}")
            seconds_before = checkpoint.phase_progress()["seconds"]
            callbacks = [
                _SyncDataEpoch(dataset),
                checkpoint_callback(checkpoint, seconds_before),
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
            model.fit(
                dataset,
                epochs=epochs,
                initial_epoch=initial_epoch,
                verbose=verbose,
                callbacks=callbacks,
                shuffle=False,
            )
            model.save_pool = False  # the next phase starts with a fresh pool
            with atomic_path(done) as temporary:
                model.save(temporary)
        summary["phases"].append(_phase_summary(recipe, name, epochs, checkpoint, run_dir))
    summary["train_minutes"] = round(
        sum(p.get("train_seconds") or 0.0 for p in summary["phases"]) / 60, 1
    ) or round((time.time() - start) / 60, 1)
    return model, summary


def _phase_summary(recipe, name, epochs, checkpoint, run_dir):
    """What a preset card records of one phase."""
    return {
        "phase": name,
        "epochs": epochs,
        "steps": epochs * len(training_data(recipe)),
        "batch_size": recipe["data"].get("batch_size", 8),
        "crop_size": recipe["data"].get("crop_size", 32),
        "train_seconds": checkpoint.phase_progress().get("seconds"),
        "final": _final_log(run_dir / f"log_{name}.csv"),
    }


def _final_log(csv_path):
    """The last row of a phase's CSV log (the final epoch's metrics), as floats."""
    import csv

    if not csv_path.exists():
        return {}
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    final = {}
    for key, value in rows[-1].items():
        try:
            final[key] = float(value)
        except (TypeError, ValueError):
            pass
    return final


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
    from keras_lnca.samples import DEMO_SIGMA as SIGMA
    from keras_lnca.samples import demo_image

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
