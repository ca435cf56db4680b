"""Loads and checks the model, then runs its conversion on TensorFlow, in process or a subprocess.

This is the only module of the package that asks which Keras backend is active.
"""

import contextlib
import importlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

from keras_lnca import interrupts
from keras_lnca.data.io import atomic_path
from keras_lnca.errors import UserError
from keras_lnca.errors import first_line
from keras_lnca.export import parity

# What the subprocess runs: `_subprocess_main(request_path)` of this module.
_CHILD = ("import sys; from keras_lnca.export import tf_bridge; "
          "sys.exit(tf_bridge._subprocess_main(sys.argv[1]))")


def exportable(model, steps):
    """`(model, source, steps)`: the model to export, loaded and checked.

    `model` is an `LNCA`/`PixelNCA`, a `.keras` path or a preset name;
    `source` the `.keras` file it came from (None for a model object);
    `steps` the NCA steps to bake in (default: `inference_steps`).
    """
    from keras_lnca.models import presets
    from keras_lnca.models.nca_model import NCAModel

    source = None
    if isinstance(model, (str, os.PathLike)):
        source = presets.resolve(model)
        try:
            model = presets.load(source, training=False)
        except Exception as error:  # Keras raises many types for a bad file
            raise UserError(f"cannot load model {source}: {first_line(error)}") from None
        if not isinstance(model, NCAModel):
            raise UserError(f"{source} holds a {type(model).__name__}, not an LNCA/PixelNCA")
    elif not isinstance(model, NCAModel):
        raise UserError(
            "model must be an LNCA/PixelNCA, a .keras path or a preset name, got "
            f"{type(model).__name__}"
        )
    rates = {model.fire_rate, model.nca.fire_rate}
    if min(rates) < 1.0:
        raise UserError(
            f"this model has fire_rate={min(rates):g}: its inference path draws random "
            "update masks, which have no builtin TFLite kernels and make the output "
            "non-deterministic; only models with fire_rate=1 can be exported"
        )
    steps = model.inference_steps if steps is None else int(steps)
    if steps < 0:
        raise UserError(f"steps must be >= 0, got {steps}")
    if not model.built:
        model.build((None, None, None, model.input_channels))
    return model, source, steps


@contextlib.contextmanager
def converted(path, model, source, report, function, **kwargs):
    """Writes `path` with `function(model, path=..., **kwargs)` on TensorFlow, atomically.

    Yields `(temporary, result)` for the checks (`report.converted_with` and
    `size_bytes` set); the output moves onto `path` if the block succeeds.
    """
    with atomic_path(path) as temporary:
        # TensorFlow builds, writes and reloads graphs in here: an interruption
        # waits for the block's end, and the temporary output is then removed.
        with interrupts.deferred():
            with _tensorflow_model(model, source) as (tf_model, how):
                result = call_tensorflow(how, tf_model, function, path=str(temporary), **kwargs)
            report.converted_with = how
            report.size_bytes = _size(temporary)
            yield temporary, result


def _size(path):
    """Bytes in the file or folder `path`."""
    path = pathlib.Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@contextlib.contextmanager
def _tensorflow_model(model, source):
    """Yields `(model_or_keras_path, how)` for `call_tensorflow`.

    On the TensorFlow backend the model itself; on any other backend a
    `.keras` file (the source file, or a temporary save of the model) that a
    TensorFlow subprocess reloads.
    """
    import keras

    if keras.backend.backend() == "tensorflow":
        yield model, "tensorflow"
        return
    if source is not None:
        yield str(pathlib.Path(source).resolve()), "tensorflow-subprocess"
        return
    with tempfile.TemporaryDirectory(prefix="lnca_export_") as folder:
        saved = os.path.join(folder, "model.keras")
        model.save(saved)
        yield saved, "tensorflow-subprocess"


def call_tensorflow(how, model, function, **kwargs):
    """Calls `function(model, **kwargs)` on the TensorFlow backend.

    In process when `how == "tensorflow"`; otherwise in a Python subprocess
    with `KERAS_BACKEND=tensorflow` that runs `_subprocess_main`, `model`
    being a `.keras` path and `function` travelling as its module and name.
    Arrays in `kwargs` travel as `.npy` files; the result (a JSON-able dict)
    and errors (`UserError`, `ExportError`) come back as JSON.
    """
    if how == "tensorflow":
        return function(model, **kwargs)
    with tempfile.TemporaryDirectory(prefix="lnca_export_") as folder:
        arrays = {}
        for key, value in list(kwargs.items()):
            if isinstance(value, np.ndarray):
                arrays[key] = os.path.join(folder, f"{key}.npy")
                np.save(arrays[key], value)
                kwargs[key] = None
        request = os.path.join(folder, "request.json")
        result = os.path.join(folder, "result.json")
        message = {"module": function.__module__, "function": function.__name__,
                   "model": model, "kwargs": kwargs, "arrays": arrays, "result": result}
        with open(request, "w") as f:
            json.dump(message, f)
        env = dict(os.environ, KERAS_BACKEND="tensorflow")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # The child imports this very package, wherever it was found.
        package_root = str(pathlib.Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        process = subprocess.run(
            [sys.executable, "-c", _CHILD, request], env=env, capture_output=True, text=True
        )
        if os.path.exists(result):
            with open(result) as f:
                answer = json.load(f)
            if "error" in answer:
                kind = {"UserError": UserError}.get(answer["error"]["type"], parity.ExportError)
                raise kind(answer["error"]["message"])
            if process.returncode == 0:
                return answer["value"]
        lines = [line for line in process.stderr.splitlines() if line.strip()]
        raise parity.ExportError(
            f"the TensorFlow export subprocess failed (exit {process.returncode}): "
            f"{lines[-1] if lines else 'no output'}"
        )


def _subprocess_main(request_path):
    """The subprocess side of `call_tensorflow`: runs one request; returns the exit status."""
    with open(request_path) as f:
        request = json.load(f)
    kwargs = dict(request["kwargs"])
    for key, path in request["arrays"].items():
        kwargs[key] = np.load(path)
    try:
        from keras_lnca.models import presets

        model = presets.load(request["model"], training=False)
        function = getattr(importlib.import_module(request["module"]), request["function"])
        answer = {"value": function(model, **kwargs)}
        status = 0
    except (UserError, parity.ExportError) as error:
        answer = {"error": {"type": type(error).__name__, "message": str(error)}}
        status = 1
    with open(request["result"], "w") as f:
        json.dump(answer, f)
    return status
