"""Export for deployment: TensorFlow SavedModel, TFLite (LiteRT) and ONNX.

Every exporter writes the deterministic inference path of an `LNCA` or
`PixelNCA` (encoder, `steps` NCA steps in a `while` loop, decoder, crop;
exactly what `model.predict` runs), then checks the written file against the
Keras model (`verify=True`) and returns an `ExportReport`.

```python
import keras_lnca as kl

report = kl.export.export_tflite("lnca_denoise_gray_s25", "denoise.tflite")
print(report)                     # size, ops, max |TFLite - Keras|, PSNR figures
kl.export.export_tflite(model, "denoise_int8.tflite", quantization="int8")
kl.export.export_saved_model(model, "denoise_savedmodel")
```

Backends. Conversion runs on TensorFlow. Under `KERAS_BACKEND=jax` or
`torch` the model is saved to a temporary `.keras` file and converted in a
subprocess with `KERAS_BACKEND=tensorflow` that reloads it (a `.keras` file
reloads across backends with outputs within 2e-7); the parity check then
compares the exported file with the model on *your* backend.

TFLite. Only builtin TFLite ops are allowed (`TFLITE_BUILTINS`, plus
`TFLITE_BUILTINS_INT8` for full-integer models): no Flex/Select-TF ops, so
the file runs in the plain LiteRT interpreter (`ai_edge_litert`) and on
mobile runtimes without the TensorFlow kernels. The op codes of every
subgraph of the written flatbuffer are read back and export fails if any
custom (Flex) op appears. The NCA loop stays a single builtin `WHILE` op,
so the file size does not grow with the step count. Export needs
`fire_rate=1`: stochastic update masks need random ops, which have no
builtin kernels (a clear `ExportError` says so, and the traced graph is also
scanned for random ops).

Input size. TFLite models have a fixed input shape by default,
`(1, H, W, channels)` with `input_shape=(256, 256)`. With the TFLite
converter of TensorFlow 2.21:

* `batch_size=None` works: the input is `(-1, H, W, C)` and
  `interpreter.resize_tensor_input` changes the batch (checked);
* resizable height/width (`input_shape=(None, None)`) converts to builtin
  ops only if every convolution sees a static channel count. The reflect
  padding to a multiple of `2**downsampling` (`backend_utils.pad_to_multiple`)
  is a `tf.pad` with run-time amounts, whose output loses the channel
  dimension, and the converter then needs a Flex `Conv2D`: export raises
  `ExportError` explaining this. With the channel count restored after the
  pad (a reshape to `[batch, height, width, channels]`; `set_shape` is not
  enough for the converter), the same export converts to builtin ops and
  `resize_tensor_input` to any height and width matched Keras within 3e-7.

SavedModels accept `input_shape=(None, None)` (any height and width) and
always have a resizable batch.

Quantization (`export_tflite(quantization=...)`):

* `None`: float32; parity `max |TFLite - Keras| <= max_abs_diff` (1e-4).
* `"float16"`: weights stored as float16 (half the file), computed in
  float32 (or float16 on GPU delegates).
* `"dynamic"`: dynamic-range quantization, int8 weights and float
  activations.
* `"int8"`: full integer: int8 weights and activations everywhere,
  calibrated on `representative_data`. The NCA loop is unrolled in this
  file (one copy of the cell per step; `unroll=False` keeps the loop), so
  that each step's activations get their own int8 range: the state's range
  changes from step to step, and a single `WHILE` body calibrated over all
  steps lost 3.0 and 5.4 dB on the two gray presets where the unrolled
  graph loses 1.1 and 0.45 dB (64x64 crops; the unrolled file is about
  1.7x the float32 one; see BENCHMARKS.md). The input and
  output stay float32 (a QUANTIZE/DEQUANTIZE pair at the ends), so calling
  code is the same for every variant. The default calibration data are
  degraded random crops of the training images under `$LNCA_DATA`
  (default `../shared/data`): `gray/train400` or `color/cbsd432`; smooth
  random images when the data are absent.

The parity checks run two image sets through the export and `model.predict`:
"random" (two seeded smooth random images, degraded with `degradation`) and
the test-set crops below; each reports the max abs difference and the PSNR
of the export against Keras.

Quantized models are judged by restoration quality: on test images
(`gray/set12` or `color/cbsd68` under `$LNCA_DATA`, center crops at the
export size, degraded with `degradation`, default `"gaussian:25"`, evaluation
seed 0; smooth random images when the data are absent), PSNR(export, clean)
may be at most `max_psnr_loss` dB below PSNR(Keras, clean): by default 0.05
dB for float16, 0.5 dB for dynamic and 1 dB for int8.

ONNX (`export_onnx`) converts the same traced function with `tf2onnx`, the
converter behind Keras' own `model.export(format="onnx")` on TensorFlow
(`model.export` itself walks the model's attributes and fails on models
whose `predict_with_steps` cache is filled). It needs no network, but the
optional packages `tf2onnx` and `onnx` (and `onnxruntime` for the parity
check): `pip install tf2onnx onnx onnxruntime`. Without them `export_onnx`
raises `ExportError` naming them.
"""

import contextlib
import dataclasses
import importlib.util
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from keras_lnca.errors import UserError

QUANTIZATIONS = (None, "float16", "dynamic", "int8")
DEFAULT_MAX_PSNR_LOSS = {"float16": 0.05, "dynamic": 0.5, "int8": 1.0}
# Number of calibration samples drawn when `representative_data` is None.
CALIBRATION_SAMPLES = 16
# Verification size used for a resizable height or width.
RESIZABLE_CHECK_SIZE = (70, 54)
_TEST_SETS = {1: "gray/set12", 3: "color/cbsd68"}
_TRAIN_SETS = {1: "gray/train400", 3: "color/cbsd432"}
_RANDOM_OP = re.compile(r"Random|Rng|Multinomial|Shuffle")


class ExportError(RuntimeError):
    """An export that failed: unsupported ops, failed conversion or parity.

    Attributes:
        report: the `ExportReport` measured before a parity failure (None
            for the other failures).
    """

    def __init__(self, message, report=None):
        super().__init__(message)
        self.report = report


@dataclasses.dataclass
class ExportReport:
    """What an export wrote and how well it matches the Keras model.

    Attributes:
        format: `"tflite"`, `"saved_model"` or `"onnx"`.
        path: the written file or folder.
        quantization: None, `"float16"`, `"dynamic"` or `"int8"` (TFLite).
        input_shape: the exported input shape, `None` for resizable dims.
        steps: NCA steps baked into the export.
        size_bytes: size of the file (or folder).
        converted_with: `"tensorflow"` (in process) or
            `"tensorflow-subprocess"` (model reloaded from a `.keras` file).
        ops: sorted op names of every subgraph (TFLite only).
        tensor_types: tensor count per dtype over all subgraphs (TFLite).
        checks: one dict per image set (`"random"`, a test set, or
            `"synthetic"`) with `images`, `shape`, `max_abs_diff`,
            `psnr_vs_keras` and, where a clean reference exists,
            `psnr_keras`, `psnr_export` and `psnr_loss` (dB, mean over
            images; positive means the export is worse).
        tolerances: the limits that were enforced.
        verified: whether the checks ran.
    """

    format: str
    path: str
    quantization: object = None
    input_shape: tuple = ()
    steps: int = 0
    size_bytes: int = 0
    converted_with: str = "tensorflow"
    ops: list = dataclasses.field(default_factory=list)
    tensor_types: dict = dataclasses.field(default_factory=dict)
    checks: list = dataclasses.field(default_factory=list)
    tolerances: dict = dataclasses.field(default_factory=dict)
    verified: bool = False

    @property
    def max_abs_diff(self):
        """Largest |export - Keras| over every checked image (None if unverified)."""
        values = [c["max_abs_diff"] for c in self.checks]
        return max(values) if values else None

    @property
    def psnr_loss(self):
        """PSNR loss (dB) on the reference images with a clean target, or None."""
        for check in self.checks:
            if "psnr_loss" in check:
                return check["psnr_loss"]
        return None

    def to_dict(self):
        """A JSON-friendly dict (infinite PSNRs become None)."""

        def clean(value):
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            return value

        return clean(dataclasses.asdict(self))

    def __str__(self):
        kind = self.format + (f" ({self.quantization})" if self.quantization else "")
        lines = [
            f"{kind} -> {self.path}: {self.size_bytes / 1024:.1f} KiB, input "
            f"{tuple(self.input_shape)}, {self.steps} NCA steps"
        ]
        if self.ops:
            lines.append(f"  ops: {', '.join(self.ops)}")
        for check in self.checks:
            line = (
                f"  {check['images']} ({check['count']} x {tuple(check['shape'])}): "
                f"max |export - keras| {check['max_abs_diff']:.2e}, "
                f"PSNR vs keras {check['psnr_vs_keras']:.1f} dB"
            )
            if "psnr_loss" in check:
                line += (
                    f"; vs clean ({check['degradation']}): keras {check['psnr_keras']:.2f} dB, "
                    f"export {check['psnr_export']:.2f} dB, loss {check['psnr_loss']:+.3f} dB"
                )
            lines.append(line)
        if not self.verified:
            lines.append("  not verified")
        return "\n".join(lines)


# ----------------------------------------------------------------------
# Public exporters.
# ----------------------------------------------------------------------
def export_tflite(
    model,
    path,
    quantization=None,
    input_shape=(256, 256),
    representative_data=None,
    verify=True,
    *,
    batch_size=1,
    steps=None,
    max_abs_diff=1e-4,
    max_psnr_loss=None,
    degradation="gaussian:25",
    num_images=3,
    unroll=None,
):
    """Exports the inference path as a TFLite (LiteRT) flatbuffer.

    Builtin TFLite ops only (no Flex ops), checked on the written file. The
    file is written to a temporary path next to `path`, verified, then
    renamed: a failed export never leaves or overwrites `path`.

    Args:
        model: an `LNCA`/`PixelNCA`, a `.keras` path or a preset name.
        path: the `.tflite` file to write.
        quantization: None (float32), `"float16"`, `"dynamic"`
            (dynamic-range int8 weights) or `"int8"` (full integer,
            float32 input and output).
        input_shape: `(height, width)` of the exported input. `None` entries
            ask for a resizable size (see the module docstring: it needs
            static channels after padding).
        representative_data: int8 calibration inputs (degraded images in
            [0, 1]): an array `(N, H, W[, C])`, a list of `(H, W[, C])`
            arrays, or a callable returning an iterable of them; larger
            images are center-cropped to `input_shape`. None draws
            `CALIBRATION_SAMPLES` degraded crops (see the module docstring).
        verify: run the LiteRT interpreter on random and test-set images
            and compare with `model.predict`; raises `ExportError` beyond
            the tolerances.
        batch_size: 1 (default) or None for a resizable batch.
        steps: NCA steps baked into the file (default: `inference_steps`).
        max_abs_diff: float32 limit on `max |TFLite - Keras|`.
        max_psnr_loss: quantized limit (dB) on PSNR(Keras, clean) -
            PSNR(TFLite, clean); None takes `DEFAULT_MAX_PSNR_LOSS`, and
            `math.inf` only reports.
        degradation: degradation spec of the reference and calibration
            images (default `"gaussian:25"`).
        num_images: number of test-set crops checked (at least 1).
        unroll: write the NCA steps as one copy of the cell each instead of
            a `WHILE` loop. None (default): unrolled for `"int8"` only, where
            it lets each step have its own calibrated range (a larger file,
            a smaller PSNR loss); a loop otherwise.

    Returns:
        An `ExportReport`.

    Raises:
        UserError: a bad argument, an unknown model, or `fire_rate < 1`.
        ExportError: a graph that needs non-builtin ops, a failed
            conversion, or parity beyond the tolerances.

    Example:
    ```python
    report = kl.export.export_tflite(model, "m.tflite", input_shape=(128, 128))
    report.max_abs_diff           # e.g. 2e-7
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path="m.tflite")
    ```
    """
    if quantization not in QUANTIZATIONS:
        raise UserError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    height, width = _check_size(input_shape)
    if batch_size not in (1, None):
        raise UserError(f"batch_size must be 1 or None (resizable), got {batch_size!r}")
    model, source = _load(model)
    steps = _check_exportable(model, steps)
    shape = (batch_size, height, width, model.channels)
    if max_psnr_loss is None and quantization is not None:
        max_psnr_loss = DEFAULT_MAX_PSNR_LOSS[quantization]
    if unroll is None:
        unroll = quantization == "int8"
    calibration = None
    if quantization == "int8":
        calibration = _calibration_images(
            model.channels, _concrete_size(height, width), representative_data, degradation
        )
    elif representative_data is not None:
        raise UserError("representative_data is only used with quantization='int8'")
    report = ExportReport(
        format="tflite", path=str(path), quantization=quantization, input_shape=shape, steps=steps
    )
    with _atomic_path(path) as temporary:
        with _tensorflow_model(model, source) as (tf_model, how):
            conversion = _call_tensorflow(
                how,
                tf_model,
                "_convert_tflite",
                path=str(temporary),
                shape=list(shape),
                steps=steps,
                quantization=quantization,
                calibration=calibration,
                unroll=bool(unroll),
            )
        report.converted_with = how
        report.ops = conversion["ops"]
        report.tensor_types = conversion["tensor_types"]
        report.size_bytes = os.path.getsize(temporary)
        if verify:
            runner = _tflite_runner(temporary)
            report.tolerances = (
                {"max_abs_diff": max_abs_diff}
                if quantization is None
                else {"max_psnr_loss": max_psnr_loss}
            )
            _verify(report, model, runner, shape, steps, degradation, num_images)
            if quantization is None and report.max_abs_diff > max_abs_diff:
                raise ExportError(
                    f"TFLite output differs from Keras by {report.max_abs_diff:.3g} "
                    f"(limit {max_abs_diff:g})",
                    report,
                )
            if quantization is not None and report.psnr_loss > max_psnr_loss:
                raise ExportError(
                    f"{quantization} TFLite loses {report.psnr_loss:.3f} dB PSNR against "
                    f"the Keras model on {report.checks[-1]['images']} "
                    f"(limit {max_psnr_loss:g} dB)",
                    report,
                )
    return report


def export_saved_model(
    model,
    path,
    input_shape=(256, 256),
    *,
    verify=True,
    steps=None,
    atol=1e-5,
    degradation="gaussian:25",
    num_images=3,
):
    """Exports the inference path as a TensorFlow SavedModel.

    Written with `keras.export.ExportArchive` (what
    `model.export(format="tf_saved_model")` uses), with one endpoint,
    `serve(images)`, whose batch is always resizable. The folder is written
    next to `path`, verified, then moved into place.

    Args:
        model: an `LNCA`/`PixelNCA`, a `.keras` path or a preset name.
        path: the SavedModel folder to write.
        input_shape: `(height, width)`; `(None, None)` accepts any size.
        verify: reload with `tf.saved_model.load` and compare `serve` with
            `model.predict` on random and reference images.
        steps: NCA steps baked into the graph (default: `inference_steps`).
        atol: limit on `max |SavedModel - Keras|`.
        degradation: degradation spec of the reference images.
        num_images: number of test-set crops checked (at least 1).

    Returns:
        An `ExportReport`.

    Raises:
        UserError: a bad argument, an unknown model, or `fire_rate < 1`.
        ExportError: a graph with random ops, or parity beyond `atol`.

    Example:
    ```python
    kl.export.export_saved_model(model, "lnca_savedmodel", input_shape=(None, None))
    import tensorflow as tf
    restored = tf.saved_model.load("lnca_savedmodel").serve(noisy)
    ```
    """
    height, width = _check_size(input_shape)
    model, source = _load(model)
    steps = _check_exportable(model, steps)
    shape = (None, height, width, model.channels)
    report = ExportReport(format="saved_model", path=str(path), input_shape=shape, steps=steps)
    with _atomic_path(path) as temporary:
        with _tensorflow_model(model, source) as (tf_model, how):
            _call_tensorflow(
                how, tf_model, "_write_saved_model", path=str(temporary), shape=list(shape),
                steps=steps,
            )
        report.converted_with = how
        report.size_bytes = _size(temporary)
        if verify:
            import tensorflow as tf

            loaded = tf.saved_model.load(str(temporary))  # keep alive while used

            def runner(images):
                return np.asarray(loaded.serve(tf.constant(images, tf.float32)))

            report.tolerances = {"max_abs_diff": atol}
            _verify(report, model, runner, shape, steps, degradation, num_images)
            del loaded
            if report.max_abs_diff > atol:
                raise ExportError(
                    f"SavedModel output differs from Keras by {report.max_abs_diff:.3g} "
                    f"(limit {atol:g})",
                    report,
                )
    return report


def export_onnx(
    model,
    path,
    input_shape=(256, 256),
    *,
    batch_size=None,
    verify=True,
    steps=None,
    atol=1e-4,
    degradation="gaussian:25",
    num_images=3,
):
    """Exports the inference path as ONNX (with `tf2onnx`, as Keras' exporter).

    Needs the optional packages `tf2onnx` and `onnx` (no network at export
    time); the parity check runs `onnxruntime` when it is installed and is
    reported as skipped otherwise. Conversion runs on TensorFlow (in a
    subprocess on other backends), as for TFLite.

    Args:
        model: an `LNCA`/`PixelNCA`, a `.keras` path or a preset name.
        path: the `.onnx` file to write.
        input_shape: `(height, width)` of the exported input.
        batch_size: None (resizable, default) or a fixed batch.
        verify: compare onnxruntime with `model.predict`.
        steps: NCA steps baked into the graph (default: `inference_steps`).
        atol: limit on `max |ONNX - Keras|`.
        degradation: degradation spec of the reference images.
        num_images: number of test-set crops checked (at least 1).

    Returns:
        An `ExportReport`.

    Raises:
        ExportError: `tf2onnx`/`onnx` missing, failed conversion, parity.

    Example:
    ```python
    kl.export.export_onnx(model, "lnca.onnx", input_shape=(256, 256))
    ```
    """
    missing = [name for name in ("tf2onnx", "onnx") if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(
            f"ONNX export needs the optional packages {' and '.join(missing)} "
            "(pip install tf2onnx onnx onnxruntime); use the tflite or saved_model format otherwise"
        )
    height, width = _check_size(input_shape)
    model, source = _load(model)
    steps = _check_exportable(model, steps)
    shape = (batch_size, height, width, model.channels)
    report = ExportReport(format="onnx", path=str(path), input_shape=shape, steps=steps)
    with _atomic_path(path) as temporary:
        with _tensorflow_model(model, source) as (tf_model, how):
            _call_tensorflow(
                how, tf_model, "_write_onnx", path=str(temporary), shape=list(shape), steps=steps
            )
        report.converted_with = how
        report.size_bytes = _size(temporary)
        if verify and importlib.util.find_spec("onnxruntime") is not None:
            import onnxruntime

            session = onnxruntime.InferenceSession(str(temporary))
            name = session.get_inputs()[0].name

            def runner(images):
                return session.run(None, {name: images.astype("float32")})[0]

            report.tolerances = {"max_abs_diff": atol}
            _verify(report, model, runner, shape, steps, degradation, num_images)
            if report.max_abs_diff > atol:
                raise ExportError(
                    f"ONNX output differs from Keras by {report.max_abs_diff:.3g} (limit {atol:g})",
                    report,
                )
    return report


# ----------------------------------------------------------------------
# Arguments and models.
# ----------------------------------------------------------------------
def _check_size(input_shape):
    if input_shape is None:
        return None, None
    try:
        height, width = input_shape
    except (TypeError, ValueError):
        raise UserError(f"input_shape must be (height, width), got {input_shape!r}") from None
    for value in (height, width):
        if value is not None and (not isinstance(value, (int, np.integer)) or value < 8):
            raise UserError(f"input_shape entries must be ints >= 8 or None, got {input_shape!r}")
    return (None if height is None else int(height)), (None if width is None else int(width))


def _concrete_size(height, width):
    return (height or RESIZABLE_CHECK_SIZE[0], width or RESIZABLE_CHECK_SIZE[1])


def _load(model):
    """Returns `(model, source_path_or_None)`."""
    from keras_lnca.models import presets
    from keras_lnca.models.nca_model import NCAModel

    if isinstance(model, NCAModel):
        return model, None
    if isinstance(model, (str, os.PathLike)):
        path = presets.resolve(model)
        try:
            loaded = presets.load(path)
        except Exception as error:  # Keras raises many types for a bad file
            raise UserError(f"cannot load model {path}: {_first_line(error)}") from None
        if not isinstance(loaded, NCAModel):
            raise UserError(f"{path} holds a {type(loaded).__name__}, not an LNCA/PixelNCA")
        return loaded, path
    raise UserError(
        "model must be an LNCA/PixelNCA, a .keras path or a preset name, got "
        f"{type(model).__name__}"
    )


def _check_exportable(model, steps):
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
        model.build((None, None, None, model.channels))
    return steps


# ----------------------------------------------------------------------
# Running the conversion on TensorFlow (in process or in a subprocess).
# ----------------------------------------------------------------------
@contextlib.contextmanager
def _tensorflow_model(model, source):
    """Yields `(model_or_keras_path, how)` for `_call_tensorflow`.

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


def _call_tensorflow(how, model, function, **kwargs):
    """Calls `function(model, **kwargs)` of this module on the TensorFlow backend.

    In process when `how == "tensorflow"`; otherwise in `python -m
    keras_lnca.export` with `KERAS_BACKEND=tensorflow`, `model` being a
    `.keras` path. Arrays in `kwargs` travel as `.npy` files; the result (a
    JSON-able dict) and errors (`UserError`, `ExportError`) come back as JSON.
    """
    if how == "tensorflow":
        return globals()[function](model, **kwargs)
    with tempfile.TemporaryDirectory(prefix="lnca_export_") as folder:
        arrays = {}
        for key, value in list(kwargs.items()):
            if isinstance(value, np.ndarray):
                arrays[key] = os.path.join(folder, f"{key}.npy")
                np.save(arrays[key], value)
                kwargs[key] = None
        request = os.path.join(folder, "request.json")
        result = os.path.join(folder, "result.json")
        with open(request, "w") as f:
            json.dump(
                {"function": function, "model": model, "kwargs": kwargs, "arrays": arrays,
                 "result": result},
                f,
            )
        env = dict(os.environ, KERAS_BACKEND="tensorflow")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # The child imports this very package, wherever it was found.
        package_root = str(pathlib.Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH")) if p
        )
        process = subprocess.run(
            [sys.executable, "-m", "keras_lnca.export", request],
            env=env, capture_output=True, text=True,
        )
        if os.path.exists(result):
            with open(result) as f:
                answer = json.load(f)
            if "error" in answer:
                error_type = {"UserError": UserError}.get(answer["error"]["type"], ExportError)
                raise error_type(answer["error"]["message"])
            if process.returncode == 0:
                return answer["value"]
        lines = [line for line in process.stderr.splitlines() if line.strip()]
        raise ExportError(
            f"the TensorFlow export subprocess failed (exit {process.returncode}): "
            f"{lines[-1] if lines else 'no output'}"
        )


def _subprocess_main(request_path):
    with open(request_path) as f:
        request = json.load(f)
    kwargs = dict(request["kwargs"])
    for key, path in request["arrays"].items():
        kwargs[key] = np.load(path)
    try:
        from keras_lnca.models import presets

        model = presets.load(request["model"])
        answer = {"value": globals()[request["function"]](model, **kwargs)}
        status = 0
    except (UserError, ExportError) as error:
        answer = {"error": {"type": type(error).__name__, "message": str(error)}}
        status = 1
    with open(request["result"], "w") as f:
        json.dump(answer, f)
    return status


# ----------------------------------------------------------------------
# TensorFlow-side conversion (the model is on the TensorFlow backend).
# ----------------------------------------------------------------------
def _serving_function(model, shape, steps, unroll=False):
    """The traced inference function; fails if its graph holds a random op."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name="images")])
    def serve(images):
        return model(images, training=False, steps=steps, unroll=unroll)

    graph = serve.get_concrete_function().graph.as_graph_def()
    nodes = list(graph.node)
    for function in graph.library.function:
        nodes.extend(function.node_def)
    random_ops = sorted({node.op for node in nodes if _RANDOM_OP.search(node.op)})
    if random_ops:
        raise ExportError(
            f"the inference graph holds random ops ({', '.join(random_ops)}); "
            "export needs the deterministic path (fire_rate=1)"
        )
    return serve


def _write_saved_model(model, path, shape, steps, unroll=False):
    import keras

    archive = keras.export.ExportArchive()
    # No `archive.track(model)`: the endpoint's variables are collected from
    # the traced function, and walking the model's attributes would fail on
    # caches that TensorFlow cannot save (e.g. NCAModel._predict_functions,
    # a dict with int keys, filled by `predict_with_steps`).
    archive.add_endpoint("serve", _serving_function(model, shape, steps, unroll))
    archive.write_out(path, verbose=False)
    return {}


def _write_onnx(model, path, shape, steps):
    import tensorflow as tf
    import tf2onnx

    try:
        # Keras' ONNX exporter patches tf2onnx for numpy 2; reuse it if present.
        from keras.src.export.tf2onnx_lib import patch_tf2onnx
    except ImportError:
        patch_tf2onnx = None
    serve = _serving_function(model, shape, steps)
    if patch_tf2onnx is not None:
        patch_tf2onnx()
    try:
        tf2onnx.convert.from_function(
            serve,
            input_signature=[tf.TensorSpec(shape, tf.float32, name="images")],
            output_path=path,
        )
    except Exception as error:
        raise ExportError(f"ONNX conversion failed: {_first_line(error)}") from None
    return {}


def _convert_tflite(model, path, shape, steps, quantization, calibration, unroll=False):
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="lnca_export_") as folder:
        # Unrolled (the int8 default), every step's tensors get their own
        # calibrated range; a WHILE body shares one range over all steps
        # (about 3 dB lost on a trained preset, against 1 unrolled).
        _write_saved_model(model, folder, shape, steps, unroll=unroll)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantization == "int8":
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                tf.lite.OpsSet.TFLITE_BUILTINS,
            ]
            batch = np.asarray(calibration, np.float32)

            def representative_dataset():
                for image in batch:
                    yield [image[None]]

            converter.representative_dataset = representative_dataset
        try:
            with _native_stderr_silenced():
                flatbuffer = converter.convert()
        except Exception as error:
            raise ExportError(_conversion_message(error, shape)) from None
    ops, custom, tensor_types = _inspect_flatbuffer(flatbuffer)
    if custom:
        raise ExportError(
            f"the converted model holds non-builtin ops ({', '.join(custom)}), which the "
            "plain LiteRT interpreter cannot run"
        )
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return {"ops": ops, "tensor_types": tensor_types}


def _conversion_message(error, shape):
    text = str(error)
    found = re.search(r"TF Select ops: ([^\n]+)", text)
    if not found:
        return f"TFLite conversion failed: {_first_line(error)}"
    message = (
        f"the graph needs TensorFlow ops that have no builtin TFLite kernel "
        f"({found.group(1).strip()}); Flex ops are not allowed"
    )
    if shape[1] is None or shape[2] is None:
        message += (
            ". A resizable height/width loses the channel count in the reflect padding "
            "(keras_lnca.backend_utils.pad_to_multiple), so convolutions need Flex kernels: "
            "export a fixed input_shape (the batch may stay resizable)"
        )
    return message


def _inspect_flatbuffer(flatbuffer):
    """Op names and custom ops of every subgraph, and tensor dtypes."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    tflite_model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    ops, custom = set(), set()
    for code in tflite_model.operatorCodes:
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin == schema.BuiltinOperator.CUSTOM:
            name = code.customCode
            custom.add(name.decode() if isinstance(name, bytes) else str(name))
        else:
            ops.add(op_names.get(builtin, str(builtin)))
    tensor_types = {}
    for subgraph in tflite_model.subgraphs:
        for tensor in subgraph.tensors:
            name = type_names.get(tensor.type, str(tensor.type))
            tensor_types[name] = tensor_types.get(name, 0) + 1
    return sorted(ops), sorted(custom), tensor_types


@contextlib.contextmanager
def _native_stderr_silenced():
    """Drops what native code (the MLIR converter) prints on file descriptor 2.

    Its diagnostics are long dumps; the relevant part reaches the raised
    exception's message, which `_conversion_message` condenses.
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


def _first_line(error):
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


# ----------------------------------------------------------------------
# Verification (on the caller's backend).
# ----------------------------------------------------------------------
def _tflite_runner(path):
    """A function `images -> outputs` running the LiteRT interpreter."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=str(path))
    source = interpreter.get_input_details()[0]
    target = interpreter.get_output_details()[0]
    state = {"shape": None}

    def run(images):
        images = np.asarray(images, np.float32)
        if state["shape"] != images.shape:
            current = tuple(interpreter.get_input_details()[0]["shape"])
            if current != images.shape:
                interpreter.resize_tensor_input(source["index"], images.shape, strict=True)
            interpreter.allocate_tensors()
            state["shape"] = images.shape
        interpreter.set_tensor(source["index"], images)
        interpreter.invoke()
        return np.array(interpreter.get_tensor(target["index"]))

    return run


def _verify(report, model, runner, shape, steps, degradation, num_images):
    """Fills `report.checks`: random images, then reference images."""
    if int(num_images) < 1:
        raise UserError(f"num_images must be at least 1, got {num_images}")
    batch, height, width, channels = shape
    size = _concrete_size(height, width)
    # Random inputs of the model's domain: degraded smooth random images.
    # Not uniform white noise: far outside the training data, a trained
    # automaton's 64 steps amplify float rounding at a few pixels (measured
    # 6e-3 between TFLite and Keras, and 6e-4 between Keras on JAX and on
    # TensorFlow, on the same input), which says nothing about the export.
    random_images = _degrade(_smooth_images(2, size, channels, seed=0), degradation)
    report.checks = [_compare("random", model, runner, random_images, steps, batch or 2)]
    clean, name = _reference_images(channels, size, num_images)
    degraded = _degrade(clean, degradation)
    check = _compare(name, model, runner, degraded, steps, 1, clean=clean)
    check["degradation"] = degradation
    report.checks.append(check)
    report.verified = True


def _compare(name, model, runner, images, steps, batch, clean=None):
    exported, reference = [], []
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        exported.append(runner(chunk))
        reference.append(model.predict_with_steps(chunk, steps=steps, batch_size=batch))
    exported = np.concatenate(exported).astype(np.float64)
    reference = np.concatenate(reference).astype(np.float64)
    check = {
        "images": name,
        "count": len(images),
        "shape": list(images.shape[1:]),
        "max_abs_diff": float(np.max(np.abs(exported - reference))),
        "psnr_vs_keras": _mean_psnr(reference, exported),
    }
    if clean is not None:
        check["psnr_keras"] = _mean_psnr(clean, reference)
        check["psnr_export"] = _mean_psnr(clean, exported)
        check["psnr_loss"] = check["psnr_keras"] - check["psnr_export"]
    return check


def _mean_psnr(target, estimate):
    """Mean over images of PSNR (data range 1, estimate clipped to [0, 1])."""
    values = []
    for a, b in zip(np.asarray(target, np.float64), np.asarray(estimate, np.float64)):
        mse = float(np.mean((a - np.clip(b, 0.0, 1.0)) ** 2))
        values.append(math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse))
    return float(np.mean(values))


def _degrade(images, degradation):
    from keras_lnca.degradations import degrade_for_eval

    return np.stack(list(degrade_for_eval(list(images), degradation, seed=0))).astype(np.float32)


def _data_root():
    from keras_lnca.degradations import data_dir

    return data_dir()


def _reference_images(channels, size, count):
    """Clean center crops of the test set, or smooth random images; `(images, name)`."""
    folder = _data_root() / _TEST_SETS[channels]
    crops = _folder_crops(folder, channels, size, count, rng=None)
    if crops is not None:
        return crops, folder.name
    return _smooth_images(count, size, channels, seed=1), "synthetic"


def _folder_crops(folder, channels, size, count, rng):
    """`count` crops of the images in `folder` (center crops when `rng` is None)."""
    from keras_lnca.data import list_images
    from keras_lnca.data import load_image

    if not folder.is_dir():
        return None
    files = list_images(folder)
    if rng is not None:
        files = [files[i] for i in rng.permutation(len(files))]
    crops = []
    for file in files:
        image = load_image(file, channels=channels)
        if image.shape[0] < size[0] or image.shape[1] < size[1]:
            continue
        crops.append(_crop(image, size, rng))
        if len(crops) == count:
            break
    return np.stack(crops).astype(np.float32) if crops else None


def _crop(image, size, rng=None):
    top_room, left_room = image.shape[0] - size[0], image.shape[1] - size[1]
    if rng is None:
        top, left = top_room // 2, left_room // 2
    else:
        top, left = int(rng.integers(0, top_room + 1)), int(rng.integers(0, left_room + 1))
    return image[top : top + size[0], left : left + size[1]]


def _smooth_images(count, size, channels, seed):
    """Smooth random images in [0.1, 0.9]: a few random sinusoids and edges."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]] / max(size)
    images = []
    for _ in range(count):
        image = np.zeros((*size, channels))
        for _ in range(4):
            fy, fx, phase = rng.uniform(0, 12, 3)
            image += rng.uniform(0.2, 1, channels) * np.sin(fy * yy + fx * xx + phase)[..., None]
        edge = (rng.uniform(-1, 1) * yy + rng.uniform(-1, 1) * xx) > rng.uniform(-0.5, 0.5)
        image += rng.uniform(-1, 1, channels) * edge[..., None]
        image = (image - image.min()) / max(image.max() - image.min(), 1e-6)
        images.append(0.1 + 0.8 * image)
    return np.asarray(images, np.float32)


def _calibration_images(channels, size, representative_data, degradation):
    """int8 calibration inputs `(N, H, W, C)` at the export size."""
    if representative_data is None:
        rng = np.random.default_rng(0)
        folder = _data_root() / _TRAIN_SETS[channels]
        clean = _folder_crops(folder, channels, size, CALIBRATION_SAMPLES, rng=rng)
        if clean is None:
            clean = _smooth_images(CALIBRATION_SAMPLES, size, channels, seed=2)
        return np.clip(_degrade(clean, degradation), 0.0, 1.0)
    data = representative_data() if callable(representative_data) else representative_data
    images = []
    for item in data:
        item = np.asarray(item, np.float32)
        if item.ndim == 4:
            images.extend(item)
            continue
        images.append(item)
    if not images:
        raise UserError("representative_data holds no images")
    out = []
    for image in images:
        image = image[..., None] if image.ndim == 2 else image
        if image.ndim != 3 or image.shape[-1] != channels:
            raise UserError(
                f"representative_data images must be (H, W) or (H, W, {channels}), "
                f"got {image.shape}"
            )
        if image.shape[0] < size[0] or image.shape[1] < size[1]:
            raise UserError(
                f"representative_data image {image.shape[:2]} is smaller than the export "
                f"size {size}"
            )
        out.append(_crop(image, size))
    return np.stack(out).astype(np.float32)


# ----------------------------------------------------------------------
# Files.
# ----------------------------------------------------------------------
@contextlib.contextmanager
def _atomic_path(path):
    """Yields a temporary path next to `path`; moves it onto `path` on success.

    On error the temporary file or folder is removed and `path` is untouched.
    An existing folder at `path` is replaced only after the new one is complete.
    """
    path = pathlib.Path(path)
    if not path.parent.is_dir():
        raise UserError(f"no such folder: {path.parent}")
    folder = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temporary = pathlib.Path(folder) / path.name
    try:
        yield temporary
        if not temporary.exists():
            raise ExportError(f"the exporter wrote nothing to {temporary}")
        if path.is_dir() and not path.is_symlink():
            backup = pathlib.Path(folder) / ".previous"
            os.replace(path, backup)
            os.replace(temporary, path)
        else:
            os.replace(temporary, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _size(path):
    path = pathlib.Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


if __name__ == "__main__":
    sys.exit(_subprocess_main(sys.argv[1]))
