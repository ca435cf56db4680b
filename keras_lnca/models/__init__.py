"""Models: `LNCA` (latent NCA) and the pixel-space `PixelNCA` baselines.

The model classes load on first use, so that `keras_lnca.models.presets`
(the registry of shipped presets, plain JSON and files) reads without Keras.
"""

import importlib

_CLASSES = {
    "LNCA": "keras_lnca.models.lnca",
    "NCAModel": "keras_lnca.models.nca_model",
    "PixelNCA": "keras_lnca.models.pixel_nca",
}


def register_classes():
    """Registers with Keras every class a model file of ours can name (the
    models import their layers and optimizer; compiled files name metrics)."""
    for module in sorted(set(_CLASSES.values())) + ["keras_lnca.metrics"]:
        importlib.import_module(module)


def __getattr__(name):
    if name not in _CLASSES:
        raise AttributeError(f"module 'keras_lnca.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(_CLASSES[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_CLASSES))
