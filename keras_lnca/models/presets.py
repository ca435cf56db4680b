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
from keras_lnca.errors import first_line


def directory():
    """The folder that holds the shipped presets."""
    return pathlib.Path(str(importlib.resources.files("keras_lnca.savedmodels")))


def list():  # noqa: A001 - the public name is `kl.presets.list()`
    """Names of the shipped presets, sorted."""
    return sorted(p.stem for p in directory().glob("*.keras") if p.with_suffix(".json").exists())


# What `lnca restore` uses when no preset is named, by image channels: the
# first shipped preset of each list.
DEFAULTS = {
    1: ("lnca_denoise_gray_blind", "lnca_denoise_gray_s25"),
    3: ("lnca_denoise_color_blind", "lnca_denoise_color_s25"),
}
# Presets renamed since they first shipped: old name -> new name.
RENAMED = {}


def default_for(channels):
    """The preset `lnca restore` uses for images of `channels` channels."""
    shipped = set(list())
    for name in DEFAULTS[3 if channels == 3 else 1]:
        if name in shipped:
            return name
    raise UserError(f"no shipped preset restores {channels}-channel images")


def summary(name):
    """One preset's card in brief: task, channels, parameters, headline figures."""
    from keras_lnca.evaluation import TOLD_SUFFIX

    card = metadata(name)
    config = card.get("config", {})
    recipe = card.get("recipe", {})
    headline = []
    for item in card.get("metrics", []):
        results = {r["method"]: r for r in item.get("results", [])}
        own = next((r for m, r in results.items() if m.startswith("model:")), None)
        if own is None:
            continue
        figure = f"{item['dataset'].split('/')[-1]} {item['degradation']} {own['psnr']:.2f} dB"
        told = results.get(own["method"] + TOLD_SUFFIX)
        if told is not None:  # a noise-level-aware model: estimated, then told the level
            figure += f" (sigma estimated; told: {told['psnr']:.2f})"
        for baseline in ("bm3d", "wiener"):
            if baseline in results:
                figure += f" ({baseline.upper()} {results[baseline]['psnr']:.2f})"
        headline.append(figure)
    return {
        "name": name,
        "task": recipe.get("data", {}).get("degradation", "?"),
        "channels": config.get("channels"),
        "cell": config.get("cell"),
        "parameters": card.get("parameters", {}).get("trainable"),
        "headline": headline,
        "description": card.get("description", ""),
    }


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
    name = RENAMED.get(name, name)
    path = directory() / f"{name}.keras"
    if not path.exists():
        available = ", ".join(list()) or "none"
        raise UserError(f"Unknown preset {name!r}; available presets: {available}.")
    return path


def load(name_or_path, compile=False, training=True):
    """Loads a preset (or a `.keras` path) as a model.

    `training=False` loads it to restore images only: no training sample
    pool is allocated, whatever size the file's config asks for.
    """
    import contextlib

    import keras

    from keras_lnca.models.sample_pool import not_allocated

    from keras_lnca import models

    models.register_classes()

    path = resolve(name_or_path)
    reason = _not_a_keras_file(path)
    if reason:
        raise UserError(f"cannot load {path}: {reason}")
    try:
        # safe_mode stays on: a model file must not run arbitrary code.
        with contextlib.nullcontext() if training else not_allocated():
            return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:  # a file that is not a Keras model of ours
        text = str(error).strip()
        reason = first_line(error)
        reason = reason.split(". ")[0].rstrip(".")[:200]  # the first sentence
        if "safe_mode" in text:
            reason += " (refused: models load with safe_mode=True)"
        raise UserError(f"cannot load {path}: {reason}") from None
