"""A run folder belongs to one run: a lock while it trains, and the recipe it
was started with, so that an edited recipe is never silently resumed."""

import contextlib
import json
import pathlib

from keras_lnca.errors import UserError

LOCK = ".lock"
RECIPE = "recipe.json"
# What makes a run's checkpoints mean what they mean. Epoch counts may change
# (a run goes on for longer, or `--epochs-scale`), and so may the model's
# inference-only settings; each change is recorded.
FIXED_KEYS = ("model", "data", "compile", "seed", "init_from")
INFERENCE_KEYS = ("inference_steps", "self_ensemble")


def _fixed(recipe):
    """The parts of a recipe a run's checkpoints depend on."""
    fixed = {key: recipe.get(key) for key in FIXED_KEYS}
    if isinstance(fixed["model"], dict):
        fixed["model"] = {k: v for k, v in fixed["model"].items() if k not in INFERENCE_KEYS}
    return fixed


@contextlib.contextmanager
def claimed(run_dir):
    """Holds an exclusive lock on `run_dir` for the block; a second run into
    the same folder is refused in one line instead of writing beside it."""
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform
        yield
        return
    with open(pathlib.Path(run_dir) / LOCK, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UserError(f"another lnca train is using {run_dir}; wait for it, or use another --run-dir") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _differences(old, new, prefix=""):
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new)):
            found += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return found
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


def record_recipe(run_dir, recipe, log=print):
    """Writes the recipe into a new run folder, or checks it against the one a
    run was started with: a change to the model, data, compile arguments, seed
    or `init_from` is refused; changed epoch counts and inference-only model
    settings (`INFERENCE_KEYS`) are logged and recorded."""
    from keras_lnca.data.io import atomic_write

    path = pathlib.Path(run_dir) / RECIPE
    if path.exists():
        try:
            started = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise UserError(f"{path} is damaged; restore it from git, or start a new --run-dir") from None
        fixed = _differences(_fixed(started), _fixed(recipe))
        if fixed:
            raise UserError(
                f"{run_dir} was started with another recipe ({fixed[0]}"
                f"{f' and {len(fixed) - 1} more' if len(fixed) > 1 else ''}); "
                "resume it with that recipe, or train into another --run-dir"
            )
        before = [(p.get("phase"), p.get("epochs")) for p in started.get("phases", [])]
        after = [(p["phase"], p["epochs"]) for p in recipe["phases"]]
        changes = [] if before == after else [f"the phases change from {before} to {after}"]
        changes += [f"model.{change}" for change in _differences(
            {k: (started.get("model") or {}).get(k) for k in INFERENCE_KEYS},
            {k: (recipe.get("model") or {}).get(k) for k in INFERENCE_KEYS})]
        if not changes:
            return
        log(f"{run_dir}: {'; '.join(changes)} (recorded in {RECIPE})")
    text = json.dumps(recipe, indent=2) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
