"""Choosing a Keras backend before Keras is imported (no Keras import here).

Keras defaults to TensorFlow. A user who installed only `keras-lnca[jax]` or
`[torch]` would otherwise get `ModuleNotFoundError: tensorflow` from the first
import. When nothing chose a backend (no `KERAS_BACKEND`, no `backend` in
`~/.keras/keras.json`) and TensorFlow is not installed, the first installed
backend among JAX and PyTorch is used, and one line on stderr says so. An
explicit choice is never overridden.
"""

import importlib.util
import json
import os
import pathlib
import sys

FALLBACKS = ("jax", "torch")


def _configured_backend():
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or pathlib.Path.home() / ".keras"
    config = pathlib.Path(home) / "keras.json"
    try:
        return json.loads(config.read_text()).get("backend")
    except (OSError, ValueError, AttributeError):
        return None


def _installed(module):
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def choose_backend(log=None):
    """Sets `KERAS_BACKEND` when nothing chose one and TensorFlow is missing.

    Returns the backend chosen here, or None when the choice was left to Keras.
    """
    if "keras" in sys.modules or _configured_backend() or _installed("tensorflow"):
        return None
    for backend in FALLBACKS:
        if _installed(backend):
            os.environ["KERAS_BACKEND"] = backend
            message = (
                f"keras-lnca: TensorFlow is not installed; using KERAS_BACKEND={backend} "
                "(set KERAS_BACKEND to choose)"
            )
            (log or (lambda text: print(text, file=sys.stderr)))(message)
            return backend
    return None
