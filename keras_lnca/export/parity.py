"""The export report and the parity checks: exported file against `model.predict`."""

import dataclasses
import math

import numpy as np

from keras_lnca.errors import UserError
from keras_lnca.export import calibration

# Verification size used for a resizable height or width.
RESIZABLE_CHECK_SIZE = (70, 54)


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


def check_size(input_shape):
    """`(height, width)` from `input_shape`, `None` for a resizable dimension."""
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


def concrete_size(height, width):
    """The size the checks run at: `(height, width)`, `RESIZABLE_CHECK_SIZE` for `None`s."""
    return (height or RESIZABLE_CHECK_SIZE[0], width or RESIZABLE_CHECK_SIZE[1])


def tflite_runner(path):
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
            with _native_lines_muted():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                interpreter.allocate_tensors()
            state["shape"] = images.shape
        interpreter.set_tensor(source["index"], images)
        interpreter.invoke()
        return np.array(interpreter.get_tensor(target["index"]))

    return run


def _native_lines_muted():
    """The LiteRT runtime prints an INFO line on the stderr descriptor when it
    applies its CPU delegate; it is dropped unless `TF_CPP_MIN_LOG_LEVEL=0`
    asks for every native log line."""
    import contextlib
    import os

    from keras_lnca.startup import native_stderr_silenced

    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return contextlib.nullcontext()
    return native_stderr_silenced()


def saved_model_runner(path):
    """A function `images -> outputs` calling the reloaded SavedModel's `serve`."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # kept alive by the function
    return lambda images: np.asarray(loaded.serve(tf.constant(images, tf.float32)))


def onnx_runner(path):
    """A function `images -> outputs` running onnxruntime."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path))
    name = session.get_inputs()[0].name
    return lambda images: session.run(None, {name: images.astype("float32")})[0]


def run_checks(report, model, runner, shape, steps, degradation, num_images):
    """Fills `report.checks`: random images, then reference images."""
    if int(num_images) < 1:
        raise UserError(f"num_images must be at least 1, got {num_images}")
    batch, height, width, _ = shape
    channels = model.channels  # the input may also hold a noise map (`model_input`)
    size = concrete_size(height, width)
    # Random inputs of the model's domain: degraded smooth random images.
    # Not uniform white noise: far outside the training data, a trained
    # automaton's 64 steps amplify float rounding at a few pixels (measured
    # 6e-3 between TFLite and Keras, and 6e-4 between Keras on JAX and on
    # TensorFlow, on the same input), which says nothing about the export.
    smooth = calibration.smooth_images(2, size, channels, seed=0)
    random_images = model.model_input(calibration.degrade(smooth, degradation))
    report.checks = [_compare("random", model, runner, random_images, steps, batch or 2)]
    clean, name = calibration.reference_images(channels, size, num_images)
    degraded = model.model_input(calibration.degrade(clean, degradation))
    check = _compare(name, model, runner, degraded, steps, 1, clean=clean)
    check["degradation"] = degradation
    report.checks.append(check)
    report.verified = True


def enforce_limits(report, what, max_abs_diff=None, max_psnr_loss=None):
    """Records the given limits in `report.tolerances`; raises `ExportError` beyond them."""
    limits = {"max_abs_diff": max_abs_diff, "max_psnr_loss": max_psnr_loss}
    report.tolerances = {key: value for key, value in limits.items() if value is not None}
    if max_abs_diff is not None and report.max_abs_diff > max_abs_diff:
        raise ExportError(
            f"{what} output differs from Keras by {report.max_abs_diff:.3g} "
            f"(limit {max_abs_diff:g})",
            report,
        )
    if max_psnr_loss is not None and report.psnr_loss > max_psnr_loss:
        raise ExportError(
            f"{what} loses {report.psnr_loss:.3f} dB PSNR against the Keras model on "
            f"{report.checks[-1]['images']} (limit {max_psnr_loss:g} dB)",
            report,
        )


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
