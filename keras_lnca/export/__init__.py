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

from keras_lnca.export.calibration import CALIBRATION_SAMPLES
from keras_lnca.export.onnx import export_onnx
from keras_lnca.export.parity import RESIZABLE_CHECK_SIZE
from keras_lnca.export.parity import ExportError
from keras_lnca.export.parity import ExportReport
from keras_lnca.export.saved_model import export_saved_model
from keras_lnca.export.tflite import DEFAULT_MAX_PSNR_LOSS
from keras_lnca.export.tflite import QUANTIZATIONS
from keras_lnca.export.tflite import export_tflite

__all__ = [
    "CALIBRATION_SAMPLES", "DEFAULT_MAX_PSNR_LOSS", "QUANTIZATIONS", "RESIZABLE_CHECK_SIZE",
    "ExportError", "ExportReport", "export_onnx", "export_saved_model", "export_tflite",
]
