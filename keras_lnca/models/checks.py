"""Argument checks shared by the models (step counts, tile, batch size, tolerance):
one-line `ValueError`s before any work. Image checks are in `keras_lnca.image_io`."""

import numpy as np


# The most NCA steps a model (or a model file) may ask for: far beyond any
# trained rule's useful range, and a bound on how long one restore can run.
MAX_STEPS = 10_000


def check_steps(name, steps, low=0):
    """Raises a one-line ValueError unless `steps` is an int in [low, MAX_STEPS]."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        if not (isinstance(steps, float) and steps.is_integer()):
            raise ValueError(f"`{name}` must be an integer, got {steps!r}.")
    if not low <= int(steps) <= MAX_STEPS:
        raise ValueError(f"`{name}` must be between {low} and {MAX_STEPS}, got {steps}.")
    return int(steps)


def check_train_steps(train_steps):
    """`(low, high)` from an int or a pair, with 1 <= low <= high <= MAX_STEPS."""
    low, high = (train_steps, train_steps) if np.isscalar(train_steps) else train_steps
    if not 1 <= low <= high <= MAX_STEPS:
        raise ValueError(
            f"`train_steps` must be (low, high) with 1 <= low <= high <= {MAX_STEPS}, "
            f"got {train_steps}."
        )
    return int(low), int(high)


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

