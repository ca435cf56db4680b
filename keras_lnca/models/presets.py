"""The registry of trained presets shipped with the package (`savedmodels/`).

A preset is `<name>.keras` (the model) plus `<name>.json` (its metadata: the
configuration, the training command, data, steps and measured metrics). In a
source checkout they live in `savedmodels/`; an installed wheel carries them as
the `keras_lnca.savedmodels` package.
"""

import importlib.resources
import json
import pathlib

from keras_lnca.errors import UserError


def directory():
    """The folder that holds the shipped presets."""
    return pathlib.Path(str(importlib.resources.files("keras_lnca.savedmodels")))


def list():  # noqa: A001 - the public name is `kl.presets.list()`
    """Names of the shipped presets, sorted."""
    return sorted(p.stem for p in directory().glob("*.keras") if p.with_suffix(".json").exists())


def metadata(name):
    """The metadata dict of a shipped preset."""
    return json.loads(_path(name).with_suffix(".json").read_text())


def resolve(name_or_path):
    """Path of the `.keras` file for a preset name or an existing path."""
    candidate = pathlib.Path(str(name_or_path))
    if candidate.suffix == ".keras" or candidate.is_dir():
        if candidate.is_dir():
            candidate = candidate / f"{candidate.name}.keras"
        if not candidate.exists():
            raise UserError(f"No such model file: {candidate}")
        return candidate
    if candidate.is_file():
        raise UserError(f"cannot load {candidate}: not a .keras model file")
    if len(candidate.parts) > 1:  # a path, not a preset name
        raise UserError(f"No such model file: {candidate}")
    return _path(str(name_or_path))


def _not_a_keras_file(path):
    """Why `path` cannot be a `.keras` model at all, or None."""
    import zipfile

    if not path.is_file():
        return "not a file"
    if path.stat().st_size == 0:
        return "empty file"
    if not zipfile.is_zipfile(path):
        return "not a .keras model file (not a zip archive)"
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as error:
        return f"not a .keras model file ({error})"
    if "config.json" not in names:
        return "not a .keras model file (a zip archive without config.json)"
    return None


def _path(name):
    path = directory() / f"{name}.keras"
    if not path.exists():
        available = ", ".join(list()) or "none"
        raise UserError(f"Unknown preset {name!r}; available presets: {available}.")
    return path


def load(name_or_path, compile=False):
    """Loads a preset (or a `.keras` path) as a model."""
    import keras

    # Registers the package's serialisable classes before loading.
    import keras_lnca  # noqa: F401

    path = resolve(name_or_path)
    reason = _not_a_keras_file(path)
    if reason:
        raise UserError(f"cannot load {path}: {reason}")
    try:
        # safe_mode stays on: a model file must not run arbitrary code.
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:  # a file that is not a Keras model of ours
        text = str(error).strip()
        reason = text.splitlines()[0] if text else type(error).__name__
        reason = reason.split(". ")[0].rstrip(".")[:200]  # the first sentence
        if "safe_mode" in text:
            reason += " (refused: models load with safe_mode=True)"
        raise UserError(f"cannot load {path}: {reason}") from None
