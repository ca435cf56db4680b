"""`Checkpoint`: the committable per-epoch checkpoint of one training phase."""

import json
import pathlib
import time

import numpy as np

from keras_lnca.errors import UserError


class Checkpoint:
    """The checkpoint of one phase, written at every epoch's end.

    Three files per epoch, `<phase>.e<epoch>.weights.h5` (model weights and
    seed states), `.optimizer.npz` (every optimizer variable, the step
    counter included, so the learning-rate schedule continues) and
    `.pool.npz` (the sample pool), then `progress.json`, which names them and
    records the epochs done and the seconds spent per phase over all runs.
    Every file is written to a temporary name and renamed, and
    `progress.json` is written last: a run killed at any moment resumes from
    the last complete epoch, exactly (same weights, optimizer, pool, seeds,
    and the epoch-seeded data that follows). Files of older epochs are then
    removed.

    The weights, optimizer and progress are small and committed under
    `runs/`; the pool (megabytes) is not, so a fresh clone resumes with an
    empty pool.
    """

    def __init__(self, run_dir, phase):
        self.run_dir = pathlib.Path(run_dir)
        self.phase = phase
        self.progress_file = self.run_dir / "progress.json"
        self.pool_restored = False

    def progress(self):
        if not self.progress_file.exists():
            return {}
        damaged = UserError(f"{self.progress_file} is damaged; delete it to start the run afresh")
        try:
            progress = json.loads(self.progress_file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise damaged from None
        phases = progress.values() if isinstance(progress, dict) else [None]
        if not all(isinstance(p, dict) and isinstance(p.get("epochs"), int) for p in phases):
            raise damaged
        return progress

    def phase_progress(self):
        return self.progress().get(self.phase, {"epochs": 0, "seconds": 0.0})

    def files(self, epochs=None):
        """`{"weights", "optimizer", "pool"}` paths of the checkpoint after `epochs` epochs
        (default: the one `progress.json` names)."""
        if epochs is None:
            named = self.phase_progress().get("files")
            if named:
                return {kind: self.run_dir / name for kind, name in named.items()}
            stem = f"checkpoint_{self.phase}"  # runs checkpointed before files were named per epoch
        else:
            stem = f"{self.phase}.e{int(epochs):04d}"
        suffixes = {"weights": "weights.h5", "optimizer": "optimizer.npz", "pool": "pool.npz"}
        return {kind: self.run_dir / f"{stem}.{suffix}" for kind, suffix in suffixes.items()}

    def save(self, model, epochs, seconds):
        from keras_lnca.data.io import atomic_path
        from keras_lnca.data.io import atomic_write

        files = self.files(epochs)
        saved_pool, model.save_pool = model.save_pool, False
        try:
            with atomic_path(files["weights"]) as temporary:
                model.save_weights(temporary)
        finally:
            model.save_pool = saved_pool
        _save_arrays(files["optimizer"], model.optimizer.variables)
        pool = model.pool_variables()
        if pool:
            _save_arrays(files["pool"], pool)
        progress = self.progress()
        progress[self.phase] = {
            "epochs": int(epochs),
            "seconds": round(float(seconds), 1),
            "files": {kind: path.name for kind, path in files.items() if kind != "pool" or pool},
        }
        text = json.dumps(progress, indent=2) + "\n"
        atomic_write(self.progress_file, lambda f: f.write(text.encode("utf-8")))  # the commit point
        self._remove_stale(files)

    def _remove_stale(self, keep):
        keep = {path.name for path in keep.values()}
        for pattern in (f"{self.phase}.e*.*", f"checkpoint_{self.phase}.*"):
            for path in self.run_dir.glob(pattern):
                if path.name not in keep and not path.name.startswith("."):
                    path.unlink(missing_ok=True)

    def resume(self, model):
        """Loads the last complete epoch's state into `model`; returns the epochs already done."""
        done = self.phase_progress()["epochs"]
        files = self.files()
        if not done or not (files["weights"].exists() and files["optimizer"].exists()):
            return 0
        try:
            model.optimizer.build(model.trainable_variables)
            model.load_weights(files["weights"])
            values = _load_arrays(files["optimizer"])
            pool_file = files.get("pool")
            pool = _load_arrays(pool_file) if pool_file is not None and pool_file.exists() else None
        except Exception as error:  # a damaged file: say what to delete
            raise UserError(
                f"cannot resume from {files['weights'].name} ({type(error).__name__}); "
                f"delete {self.progress_file} to retrain the run"
            ) from None
        variables = model.optimizer.variables
        if len(values) != len(variables):
            raise UserError(f"{files['optimizer']} does not match this model; delete it to retrain")
        for variable, value in zip(variables, values):
            variable.assign(value)
        if pool is not None and len(pool) == len(model.pool_variables()):
            for variable, value in zip(model.pool_variables(), pool):
                variable.assign(value)
        self.pool_restored = pool is not None
        return done


def _save_arrays(path, variables):
    """Writes the variables' values to an `.npz` file atomically (read by `_load_arrays`)."""
    from keras_lnca.data.io import atomic_write

    values = [np.asarray(v) for v in variables]
    atomic_write(path, lambda f: np.savez(f, *values))


def _load_arrays(path):
    with np.load(path) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


def checkpoint_callback(checkpoint, seconds_before):
    """A Keras callback that saves `checkpoint` at every epoch's end, with the seconds spent."""
    import keras

    class CommittableCheckpoint(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.time()

        def on_epoch_end(self, epoch, logs=None):
            seconds = seconds_before + time.time() - self.start
            checkpoint.save(self.model, epoch + 1, seconds)

    return CommittableCheckpoint()
