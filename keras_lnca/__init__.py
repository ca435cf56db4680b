"""keras-lnca: Latent Neural Cellular Automata for image restoration (Keras 3).

```python
import keras_lnca as kl

model = kl.LNCA(channels=1)          # the paper's configuration
model.compile()
model.fit(train_ds, epochs=5)        # phase "autoencoder"
model.set_phase("nca")
model.fit(train_ds, epochs=20)       # phase "nca"
restored = model.restore(noisy)      # numpy in, numpy out
```

`import keras_lnca` imports Keras (and so its backend) and registers the
package's serialisable classes, so that `keras.saving.load_model` reads our
`.keras` files. TensorFlow's native start-up lines are muted during that
import, unless `TF_CPP_MIN_LOG_LEVEL=0` asks for every line (other levels do
not hide them: they are printed before TensorFlow reads its log level). The
`lnca` command is the exception: it starts without Keras, so that `lnca --help`
answers at once, and imports it only when a command needs a model.
"""

import importlib as _importlib
import os as _os
import sys as _sys

__version__ = "0.1.0"

# Sub-modules that `kl.<name>` loads on first use.
_SUBMODULES = (
    "callbacks", "layers", "metrics", "optimizers", "presets",
    "data", "degradations", "evaluation", "export",
)
_MODELS = ("LNCA", "PixelNCA")


def __getattr__(name):
    if name in _MODELS:
        value = getattr(_importlib.import_module("keras_lnca.models"), name)
    elif name == "presets":
        value = _importlib.import_module("keras_lnca.models.presets")
    elif name in _SUBMODULES:
        value = _importlib.import_module(f"keras_lnca.{name}")
    else:
        raise AttributeError(f"module 'keras_lnca' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(name for name in set(globals()) | set(_SUBMODULES) | set(_MODELS) if not name.startswith("_"))


def _started_by_the_cli():
    argv = getattr(_sys, "argv", None) or [""]
    return _os.path.basename(str(argv[0])) in ("lnca", "lnca.exe")


def register():
    """Imports the layers and models, registering them with Keras' serialisation."""
    for name in ("callbacks", "layers", "metrics", "optimizers"):
        __getattr__(name)
    for name in _MODELS + ("presets",):
        __getattr__(name)


from keras_lnca.startup import choose_backend  # noqa: E402
from keras_lnca.startup import native_stderr_silenced  # noqa: E402

choose_backend()
if not _started_by_the_cli():
    if "keras" in _sys.modules or _os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        register()  # Keras started already, or the user asked for all of TensorFlow's lines
    else:
        # TensorFlow's native start-up lines (oneDNN, CPU features, absl) would
        # land in the user's script or notebook.
        with native_stderr_silenced():
            register()
