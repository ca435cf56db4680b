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

import pathlib
import time

from keras_lnca.errors import UserError
from keras_lnca.training.checkpoint import Checkpoint
from keras_lnca.training.checkpoint import checkpoint_callback
from keras_lnca.training.init_from import initial_weights
from keras_lnca.training.run_folder import claimed
from keras_lnca.training.run_folder import record_recipe
from keras_lnca.training.schema import build_model
from keras_lnca.training.schema import resolve_data
from keras_lnca.training.schema import resolve_init

def training_data(recipe, epoch=0, epochs=1):
    """The recipe's training data at `epoch`. With `data.curriculum`
    ("linear" or "paper") the degradation's range is a `Curriculum` over the
    phase's `epochs` instead of a level drawn per crop."""
    from keras_lnca.data import FolderPyDataset
    from keras_lnca.degradations import Curriculum

    data = recipe["data"]
    degradation = data["degradation"]
    if data.get("curriculum"):
        degradation = Curriculum.from_spec(degradation, max(1, int(epochs)), data["curriculum"])
        degradation.set_epoch(epoch)
    dataset = FolderPyDataset(
        resolve_data(data["train"]),
        degradation,
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

    run_dir = pathlib.Path(run_dir)
    keras.utils.set_random_seed(recipe.get("seed", 0))
    model = build_model(recipe)
    folder = resolve_data(recipe["data"]["train"])
    if not folder.is_dir():
        raise UserError(f"no such training folder: {folder} (relative paths are under $LNCA_DATA)")
    run_dir.mkdir(parents=True, exist_ok=True)  # only once the recipe is known to be sound
    with claimed(run_dir):
        record_recipe(run_dir, recipe, log=log)
        return _run_phases(recipe, run_dir, model, verbose, log, extra_callbacks, snapshot)


def _run_phases(recipe, run_dir, model, verbose, log, extra_callbacks, snapshot):
    import keras

    from keras_lnca.callbacks import CurriculumCallback
    from keras_lnca.callbacks import ProfilerCallback
    from keras_lnca.data.io import atomic_path
    from keras_lnca.training.divergence import stop_on_non_finite_loss
    from keras_lnca.training.interruption import stop_on_interrupt

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
            dataset = training_data(recipe, epochs=epochs)
            model.set_phase(name)
            total_steps = max(1, epochs * len(dataset))
            warmup = int(compile_args.get("warmup_steps", 0))
            model.compile(decay_steps=max(1, total_steps - warmup), **compile_args)
            initial_epoch = checkpoint.resume(model)
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
                stop_on_interrupt(),  # first: SIGTERM or Ctrl-C end the run at this batch
                stop_on_non_finite_loss(checkpoint),  # a diverged epoch is never saved
                _SyncDataEpoch(dataset),
                *([CurriculumCallback(dataset.degradation)] if recipe["data"].get("curriculum") else []),
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
