"""The recipe schema: every key, its type and its range, checked before any work.

`check_recipe` reads a recipe (a dict, as from JSON) against one schema and
raises a one-line `UserError` naming the key at the first problem, so that
nothing is trained or written from a recipe that would fail later (a bad
evaluation entry used to surface only after training). The model arguments
are checked by building the model, which allocates no weights.
"""

import inspect
import json
import math
import os
import pathlib
import re

from keras_lnca.errors import UserError
from keras_lnca.models.checks import MAX_SEED

REQUIRED = ("name", "model", "data", "phases")
NONE = type(None)

# The keys a recipe may hold, and the type of each.
RECIPE_KEYS = {
    "name": str, "description": str, "seed": int, "model": dict, "data": dict,
    "compile": dict, "phases": list, "evaluate": list, "init_from": str,
}
DATA_KEYS = {
    "train": str, "degradation": str, "crop_size": int, "batch_size": int,
    "crops_per_image": (int, NONE), "clip": bool, "curriculum": str,
}
COMPILE_KEYS = {"learning_rate": (int, float), "warmup_steps": int, "metrics": list}
PHASE_KEYS = {"phase": str, "epochs": int}
EVALUATE_KEYS = {"dataset": str, "degradation": str, "limit": int, "baselines": list}
MODEL_CLASSES = ("LNCA", "PixelNCA")
PHASES = ("autoencoder", "nca")
METRICS = ("psnr", "ssim")

# A recipe name becomes file names (`<name>.keras`, `runs/<name>`).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
# Sizes a training crop or batch may take (a 512 x 512 crop batch of 256 is
# already far beyond this machine's memory).
MAX_CROP, MAX_BATCH, MAX_CROPS_PER_IMAGE, MAX_EPOCHS = 1024, 1024, 10_000, 100_000


def data_root():
    return pathlib.Path(os.environ.get("LNCA_DATA", "../shared/data"))


def resolve_data(path):
    path = pathlib.Path(path)
    return path if path.is_absolute() or path.exists() else data_root() / path


def resolve_init(source):
    """`init_from`: a preset name, or a path relative to the repository (the working folder)."""
    path = pathlib.Path(source)
    return path if path.exists() else source


TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
              dict: "an object", list: "a list", NONE: "null"}


def _type_name(kind):
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if kinds == (int, float):
        return "a number"
    return " or ".join(TYPE_NAMES[k] for k in kinds)


def _check_keys(where, mapping, allowed):
    if not isinstance(mapping, dict):
        raise UserError(f"{where} must be a JSON object, got {mapping!r:.60}")
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r:.60} (known: {', '.join(sorted(allowed))})")
    for key, value in mapping.items():
        kind = allowed[key]
        ok = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
        if not ok:
            raise UserError(f"{where}: {key!r} must be {_type_name(kind)}, got {value!r:.60}")


def _check_range(where, key, value, low, high):
    if value is not None and not low <= value <= high:
        raise UserError(f"{where}: {key!r} must be from {low} to {high}, got {value!r:.60}")


def _check_degradation(where, spec):
    from keras_lnca.degradations import parse

    try:
        parse(spec)
    except (UserError, ValueError) as error:
        raise UserError(f"{where}: {str(error).splitlines()[0]}") from None


def check_recipe(recipe, where="recipe"):
    """Checks a recipe's keys, types and values; raises a one-line `UserError`."""
    if not isinstance(recipe, dict):
        raise UserError(f"{where} must be a JSON object")
    missing = [key for key in REQUIRED if key not in recipe]
    if missing:
        raise UserError(f"{where} lacks {', '.join(missing)}")
    _check_keys(where, recipe, RECIPE_KEYS)
    if not NAME.fullmatch(recipe["name"]) or ".." in recipe["name"]:
        raise UserError(
            f"{where}: 'name' must be letters, digits, '_', '-' or '.' (it names files), "
            f"got {recipe['name']!r:.60}"
        )
    _check_range(where, "seed", recipe.get("seed"), 0, MAX_SEED)

    data = recipe["data"]
    _check_keys(f"{where}: data", data, DATA_KEYS)
    if "train" not in data or "degradation" not in data:
        raise UserError(f"{where}: data needs 'train' (a folder) and 'degradation' (a spec)")
    for key, high in (("crop_size", MAX_CROP), ("batch_size", MAX_BATCH),
                      ("crops_per_image", MAX_CROPS_PER_IMAGE)):
        _check_range(f"{where}: data", key, data.get(key), 1, high)
    _check_degradation(f"{where}: data", data["degradation"])
    if "curriculum" in data:
        from keras_lnca.degradations import Curriculum

        try:
            Curriculum.from_spec(data["degradation"], 1, data["curriculum"])
        except UserError as error:
            raise UserError(f"{where}: data 'curriculum': {error}") from None

    compile_args = recipe.get("compile", {})
    _check_keys(f"{where}: compile", compile_args, COMPILE_KEYS)
    rate = compile_args.get("learning_rate", 1e-3)
    if not (math.isfinite(rate) and 0 < rate <= 1e6):
        raise UserError(f"{where}: compile 'learning_rate' must be a finite number in (0, 1e6], got {rate!r}")
    _check_range(f"{where}: compile", "warmup_steps", compile_args.get("warmup_steps"), 0, 10**7)
    for metric in compile_args.get("metrics", []):
        if metric not in METRICS:
            raise UserError(f"{where}: compile 'metrics' may hold {', '.join(METRICS)}, got {metric!r:.60}")

    if not recipe["phases"]:
        raise UserError(f"{where}: 'phases' is empty")
    for phase in recipe["phases"]:
        _check_keys(f"{where}: each phase", phase, PHASE_KEYS)
        epochs = phase.get("epochs")
        if phase.get("phase") not in PHASES or epochs is None:
            raise UserError(f"{where}: each phase needs 'phase' (autoencoder|nca) and 'epochs' >= 0")
        if not 0 <= epochs <= MAX_EPOCHS:
            raise UserError(
                f"{where}: phase {phase['phase']!r} 'epochs' must be an integer from 0 to "
                f"{MAX_EPOCHS}, got {epochs!r}"
            )

    for item in recipe.get("evaluate", []):
        _check_keys(f"{where}: each evaluate entry", item, EVALUATE_KEYS)
        if "dataset" not in item or "degradation" not in item:
            raise UserError(f"{where}: each evaluate entry needs 'dataset' and 'degradation'")
        _check_range(f"{where}: evaluate", "limit", item.get("limit"), 1, 10**6)
        _check_degradation(f"{where}: evaluate", item["degradation"])
        from keras_lnca.evaluation import BASELINES

        for baseline in item.get("baselines", []):
            if baseline not in BASELINES:
                raise UserError(f"{where}: evaluate 'baselines' may hold {', '.join(BASELINES)}, "
                                f"got {baseline!r:.60}")

    if "init_from" in recipe:
        _check_init_from(where, recipe["init_from"])
    build_model(recipe, where)
    return recipe


def _check_init_from(where, source):
    from keras_lnca.models import presets

    path = resolve_init(source)
    if isinstance(path, pathlib.Path):
        return  # a file or run folder: read when the run starts
    if source not in presets.list():
        raise UserError(f"{where}: 'init_from' {source!r:.60} is neither a preset nor an existing path")


def build_model(recipe, where=None):
    """The recipe's model (built lazily: no weights yet); a one-line `UserError` on bad arguments."""
    from keras_lnca import models

    config = dict(recipe["model"])
    model_class = config.pop("class", "LNCA")
    if model_class not in MODEL_CLASSES:
        raise UserError(f"{where or 'recipe'}: unknown model class {model_class!r:.60} "
                        f"(use {' or '.join(MODEL_CLASSES)})")
    model_class = getattr(models, model_class)
    accepted = set(inspect.signature(model_class.__init__).parameters) - {"self", "kwargs"}
    unknown = sorted(set(config) - accepted)
    if unknown:
        raise UserError(f"{where or 'recipe'}: {model_class.__name__} has no argument {unknown[0]!r:.60}")
    config.setdefault("pool_image_size", recipe["data"].get("crop_size", 32))
    config.setdefault("seed", recipe.get("seed", 0))
    try:
        return model_class(**config)
    except Exception as error:  # any model argument of any JSON type: one line, never a traceback
        where = where or f"recipe {recipe.get('name', '')!r}"
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise UserError(f"{where}: bad model arguments: {reason}") from None


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
