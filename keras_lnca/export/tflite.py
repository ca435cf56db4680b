"""TFLite (LiteRT) export: conversion to builtin ops, quantization, flatbuffer inspection."""

import re
import tempfile

import numpy as np

from keras_lnca.startup import native_stderr_silenced
from keras_lnca.errors import UserError
from keras_lnca.errors import first_line
from keras_lnca.export import calibration
from keras_lnca.export import parity
from keras_lnca.export import saved_model
from keras_lnca.export import tf_bridge

QUANTIZATIONS = (None, "float16", "dynamic", "int8")
DEFAULT_MAX_PSNR_LOSS = {"float16": 0.05, "dynamic": 0.5, "int8": 1.0}


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
    height, width = parity.check_size(input_shape)
    if batch_size not in (1, None):
        raise UserError(f"batch_size must be 1 or None (resizable), got {batch_size!r}")
    model, source, steps = tf_bridge.exportable(model, steps)
    shape = (batch_size, height, width, model.input_channels)  # a noise map is an ordinary input
    if max_psnr_loss is None and quantization is not None:
        max_psnr_loss = DEFAULT_MAX_PSNR_LOSS[quantization]
    if unroll is None:
        unroll = quantization == "int8"
    samples = None
    if quantization == "int8":
        samples = model.model_input(calibration.calibration_images(
            model.channels, parity.concrete_size(height, width), representative_data, degradation
        ))
    elif representative_data is not None:
        raise UserError("representative_data is only used with quantization='int8'")
    report = parity.ExportReport(
        format="tflite", path=str(path), quantization=quantization, input_shape=shape, steps=steps
    )
    with tf_bridge.converted(
        path, model, source, report, _convert_tflite, shape=list(shape), steps=steps,
        quantization=quantization, calibration=samples, unroll=bool(unroll),
    ) as (temporary, conversion):
        report.ops = conversion["ops"]
        report.tensor_types = conversion["tensor_types"]
        if verify:
            runner = parity.tflite_runner(temporary)
            parity.run_checks(report, model, runner, shape, steps, degradation, num_images)
            if quantization is None:
                parity.enforce_limits(report, "TFLite", max_abs_diff=max_abs_diff)
            else:
                parity.enforce_limits(report, f"{quantization} TFLite", max_psnr_loss=max_psnr_loss)
    return report


def _convert_tflite(model, path, shape, steps, quantization, calibration, unroll=False):
    """Writes the TFLite file `path` (on the TensorFlow backend); returns its ops and dtypes."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="lnca_export_") as folder:
        # Unrolled (the int8 default), every step's tensors get their own
        # calibrated range; a WHILE body shares one range over all steps
        # (about 3 dB lost on a trained preset, against 1 unrolled).
        saved_model.write_saved_model(model, folder, shape, steps, unroll=unroll)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantization == "int8":
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS
            ]
            batch = np.asarray(calibration, np.float32)
            converter.representative_dataset = lambda: ([image[None]] for image in batch)
        try:
            # The converter's diagnostics are long dumps; the relevant part reaches the
            # raised exception's message, which `_conversion_message` condenses.
            with native_stderr_silenced():
                flatbuffer = converter.convert()
        except Exception as error:
            raise parity.ExportError(_conversion_message(error, shape)) from None
    ops, custom, tensor_types = _inspect_flatbuffer(flatbuffer)
    if custom:
        raise parity.ExportError(
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
        return f"TFLite conversion failed: {first_line(error)}"
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
