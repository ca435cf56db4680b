"""The commands' number arguments, under one rule: plain ASCII digits, finite,
within bounds, checked by argparse before any work (a one-line usage error)."""

import argparse
import math

from keras_lnca.models.checks import MAX_SEED
from keras_lnca.models.checks import SELF_ENSEMBLE_SIZES
from keras_lnca.models.checks import MAX_STEPS

# The largest side `export --size` and the benchmarks accept: a fixed input of
# 8192 x 8192 already takes gigabytes to trace and convert.
MAX_SIDE = 8192


def _bounds(low, high):
    if high is None:
        return f">= {low}"
    return f"between {low} and {high}"


def integer(low=0, high=None):
    """An argparse type: a base-10 integer in [low, high]."""

    def parse(text):
        text = text.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not (digits.isascii() and digits.isdigit() and len(digits) <= 12):
            raise argparse.ArgumentTypeError(f"expected an integer {_bounds(low, high)}, got {text!r}")
        value = int(text)
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected an integer {_bounds(low, high)}, got {text!r}")
        return value

    return parse


def number(low=0.0, high=None, above=False):
    """An argparse type: a finite number in [low, high] (or above `low`, when `above`)."""

    def parse(text):
        bound = (f"> {low}" if high is None else f"in ({low}, {high}]") if above else _bounds(low, high)
        try:
            value = float(text) if text.strip().isascii() and len(text) <= 40 else math.nan
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and (value > low if above else value >= low)
        if not ok or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text!r}")
        return value

    return parse


SEED = integer(0, MAX_SEED)
STEPS = integer(1, MAX_STEPS)


def add_self_ensemble(parser, many=False):
    """Adds `--self-ensemble N` to `parser`: the views of an image `restore` averages.

    Args:
        parser: an `argparse` parser.
        many: accept several values (`lnca evaluate`: one row each).
    """
    parser.add_argument(
        "--self-ensemble", type=integer(1, 8), choices=SELF_ENSEMBLE_SIZES, metavar="N",
        action="extend" if many else "store", nargs="+" if many else None,
        default=[] if many else None,
        help="restore N views of each image (flips; 8 adds transposes) and average them: "
        "up to N times the time for a small gain, about 0.1 dB at sigma 15 with 4 (default: "
        "the model's, 1 for the presets)"
        + ("; several values give one row each" if many else ""),
    )
