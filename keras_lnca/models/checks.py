"""Argument checks shared by the models (step counts, widths, the pool, tile,
batch size, tolerance): one-line `ValueError`s before any work. A model's
config is checked here before any variable is built, so that a model file
cannot ask for absurd sizes or memory. Image checks are in
`keras_lnca.models.image_batches`."""

import math

import numpy as np


# The most NCA steps a model (or a model file) may ask for: far beyond any
# trained rule's useful range, and a bound on how long one restore can run.
MAX_STEPS = 10_000


# The widest channel group or layer a model config may ask for (the shipped
# models use at most 128), and the most memory its training pool may take.
MAX_WIDTH = 1024
MAX_POOL_BYTES = 2 * 1024**3
# A model seeds its parts with seed, seed + 1, ...: all stay 32-bit ints.
MAX_SEED = 2**31 - 16


def check_int(name, value, low, high):
    """Raises a one-line ValueError unless `value` is an integer in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if not (isinstance(value, float) and value.is_integer()):
            raise ValueError(f"`{name}` must be an integer, got {value!r}.")
    if not low <= value <= high:
        raise ValueError(f"`{name}` must be between {low} and {high}, got {value!r}.")
    return int(value)


def check_number(name, value, low, high):
    """Raises a one-line ValueError unless `value` is a finite number in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"`{name}` must be a number, got {value!r}.")
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"`{name}` must be a finite number between {low} and {high}, got {value!r}.")
    return float(value)


def check_steps(name, steps, low=0):
    """Raises a one-line ValueError unless `steps` is an int in [low, MAX_STEPS]."""
    return check_int(name, steps, low, MAX_STEPS)


def check_seed(seed):
    """None, or an int in [0, MAX_SEED]."""
    return None if seed is None else check_int("seed", seed, 0, MAX_SEED)


def check_cell_config(cell_config):
    """A dict whose numbers are finite and whose integers (alone or in lists)
    are widths, counts or rates in [0, MAX_WIDTH]."""
    if cell_config is None:
        return {}
    if not isinstance(cell_config, dict):
        raise ValueError(f"`cell_config` must be a dict, got {cell_config!r}.")
    for key, value in cell_config.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if isinstance(item, bool) or not isinstance(item, (int, float, np.number)):
                continue
            if isinstance(item, (int, np.integer)):
                check_int(f"cell_config[{key!r}]", item, 0, MAX_WIDTH)
            else:
                check_number(f"cell_config[{key!r}]", item, -MAX_WIDTH, MAX_WIDTH)
    return dict(cell_config)


def pool_bytes(pool_size, image_size, image_channels, grid_size, state_channels, itemsize=4):
    """Bytes of a training pool: degraded and clean crops, and cell states."""
    per_entry = image_size**2 * (2 * image_channels + 1) + grid_size**2 * state_channels
    return pool_size * per_entry * itemsize


def check_pool(pool_size, image_size, image_channels, grid_size, state_channels):
    """Raises a one-line ValueError when the training pool would exceed MAX_POOL_BYTES."""
    size = pool_bytes(pool_size, image_size, image_channels, grid_size, state_channels)
    if size > MAX_POOL_BYTES:
        raise ValueError(
            f"A pool of {pool_size} entries at {image_size}x{image_size} needs "
            f"{size / 1024**3:.1f} GiB (at most {MAX_POOL_BYTES // 1024**3}); "
            "lower `pool_size` or `pool_image_size`."
        )


def check_train_steps(train_steps):
    """`(low, high)` from an int or a pair, with 1 <= low <= high <= MAX_STEPS."""
    if np.isscalar(train_steps):
        train_steps = (train_steps, train_steps)
    if not isinstance(train_steps, (list, tuple)) or len(train_steps) != 2:
        raise ValueError(f"`train_steps` must be an int or a (low, high) pair, got {train_steps!r}.")
    low, high = (check_steps("train_steps", steps, low=1) for steps in train_steps)
    if not low <= high:
        raise ValueError(
            f"`train_steps` must be (low, high) with 1 <= low <= high <= {MAX_STEPS}, "
            f"got {train_steps}."
        )
    return int(low), int(high)


# How many views a geometric self-ensemble may average (see `restore`).
SELF_ENSEMBLE_SIZES = (1, 2, 4, 8)


def check_self_ensemble(value):
    """The number of views a geometric self-ensemble averages, as an int.

    Args:
        value: one of `SELF_ENSEMBLE_SIZES`, as an integer or an integral float.

    Raises:
        ValueError: anything else (booleans included), in one line.
    """
    integral = isinstance(value, (int, np.integer)) or (
        isinstance(value, (float, np.floating)) and float(value).is_integer())
    if isinstance(value, (bool, np.bool_)) or not integral or int(value) not in SELF_ENSEMBLE_SIZES:
        raise ValueError(f"`self_ensemble` must be 1, 2, 4 or 8 (views averaged), got {value!r}.")
    return int(value)


def check_restore_arguments(steps, tile, batch_size, tolerance):
    """The arguments of `restore`: steps, tile size, batch size, early-stop tolerance."""
    if steps is not None:
        check_steps("steps", steps)
    if tile is not None and (isinstance(tile, bool) or not float(tile).is_integer() or tile < 8):
        raise ValueError(f"`tile` must be an integer of at least 8 pixels, got {tile!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    if tolerance is not None and not (np.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"`tolerance` must be a finite number >= 0, got {tolerance!r}.")



def check_model_arguments(dtype_policy, channels, hidden_channels, train_steps, inference_steps,
                          fire_rate, pool_size, pool_image_size, pool_rate, cell_config, out_seed,
                          noise_map, loss_balance, seed, self_ensemble=1):
    """The common arguments of the NCA models, checked and normalised (ints as
    ints, `train_steps` as a pair), before any variable is built."""
    if loss_balance not in (None, "psnr"):
        raise ValueError(f"`loss_balance` must be None or 'psnr', got {loss_balance!r}.")
    if out_seed not in ("constant", "input"):
        raise ValueError(f"`out_seed` must be 'constant' or 'input', got {out_seed!r}.")
    if isinstance(channels, bool) or channels not in (1, 3):
        raise ValueError(f"`channels` must be 1 or 3, got {channels!r}.")
    if noise_map not in (True, False):
        raise ValueError(f"`noise_map` must be True or False, got {noise_map!r}.")
    policy = dtype_policy
    if not all("float" in dtype for dtype in (policy.compute_dtype, policy.variable_dtype)):
        raise ValueError(f"The dtype policy must be a float one, got {policy.name!r}.")
    return {
        "channels": int(channels),
        "hidden_channels": check_int("hidden_channels", hidden_channels, 1, MAX_WIDTH),
        "train_steps": check_train_steps(train_steps),
        "inference_steps": check_steps("inference_steps", inference_steps, low=1),
        "self_ensemble": check_self_ensemble(self_ensemble),
        "fire_rate": check_number("fire_rate", fire_rate, 0.0, 1.0),
        "pool_size": check_int("pool_size", pool_size, 0, 1_000_000),
        "pool_image_size": check_int("pool_image_size", pool_image_size, 1, 4096),
        "pool_rate": check_number("pool_rate", pool_rate, 0.0, 1.0),
        "cell_config": check_cell_config(cell_config),
        "out_seed": out_seed,
        "noise_map": bool(noise_map),
        "loss_balance": loss_balance,
        "seed": check_seed(seed),
    }
