"""Start-up, before Keras is imported (no Keras import here): choosing a Keras backend,
and muting what the frameworks' native code prints.

Keras defaults to TensorFlow. A user who installed only `keras-lnca[jax]` or
`[torch]` would otherwise get `ModuleNotFoundError: tensorflow` from the first
import. When nothing chose a backend (no `KERAS_BACKEND`, no `backend` in
`~/.keras/keras.json`, which Keras itself writes with "tensorflow" on first
import) and that backend is not installed, the first installed backend among
JAX and PyTorch is used, and one line on stderr says so. `KERAS_BACKEND` is
never overridden.
"""

import contextlib
import importlib.util
import json
import os
import pathlib
import sys

FALLBACKS = ("jax", "torch")
MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", "numpy": "numpy"}


def _keras_json_backend():
    home = os.environ.get("KERAS_HOME") or pathlib.Path.home() / ".keras"
    try:
        return json.loads((pathlib.Path(home) / "keras.json").read_text()).get("backend")
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
    if "keras" in sys.modules or os.environ.get("KERAS_BACKEND"):
        return None
    configured = _keras_json_backend() or "tensorflow"
    if _installed(MODULES.get(configured, configured)):
        return None
    for backend in FALLBACKS:
        if _installed(backend):
            os.environ["KERAS_BACKEND"] = backend
            message = (
                f"keras-lnca: {configured} is not installed; using KERAS_BACKEND={backend} "
                "(set KERAS_BACKEND to choose)"
            )
            (log or (lambda text: print(text, file=sys.stderr)))(message)
            return backend
    return None


@contextlib.contextmanager
def native_stderr_silenced():
    """Drops what native code prints on file descriptor 2 during the block.

    TensorFlow's C++ start-up lines (oneDNN, CPU features, absl) and the
    TFLite converter's MLIR dumps go straight to the descriptor and ignore
    `TF_CPP_MIN_LOG_LEVEL`; Python's own `sys.stderr` is flushed first.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
