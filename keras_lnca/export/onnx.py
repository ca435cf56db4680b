"""ONNX export: the traced serving function converted with `tf2onnx`."""

import importlib.util

from keras_lnca.errors import first_line
from keras_lnca.export import parity
from keras_lnca.export import saved_model
from keras_lnca.export import tf_bridge


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
        raise parity.ExportError(
            f"ONNX export needs the optional packages {' and '.join(missing)} "
            "(pip install tf2onnx onnx onnxruntime); use the tflite or saved_model format otherwise"
        )
    height, width = parity.check_size(input_shape)
    model, source, steps = tf_bridge.exportable(model, steps)
    shape = (batch_size, height, width, model.input_channels)
    report = parity.ExportReport(format="onnx", path=str(path), input_shape=shape, steps=steps)
    with tf_bridge.converted(
        path, model, source, report, _write_onnx, shape=list(shape), steps=steps
    ) as (temporary, _):
        if verify and importlib.util.find_spec("onnxruntime") is not None:
            runner = parity.onnx_runner(temporary)
            parity.run_checks(report, model, runner, shape, steps, degradation, num_images)
            parity.enforce_limits(report, "ONNX", max_abs_diff=atol)
    return report


def _write_onnx(model, path, shape, steps):
    """Converts the serving function to the ONNX file `path` (on the TensorFlow backend)."""
    import tensorflow as tf
    import tf2onnx

    try:
        # Keras' ONNX exporter patches tf2onnx for numpy 2; reuse it if present.
        from keras.src.export.tf2onnx_lib import patch_tf2onnx
    except ImportError:
        patch_tf2onnx = None
    serve = saved_model.serving_function(model, shape, steps)
    if patch_tf2onnx is not None:
        patch_tf2onnx()
    try:
        tf2onnx.convert.from_function(
            serve,
            input_signature=[tf.TensorSpec(shape, tf.float32, name="images")],
            output_path=path,
        )
    except Exception as error:
        raise parity.ExportError(f"ONNX conversion failed: {first_line(error)}") from None
    return {}
