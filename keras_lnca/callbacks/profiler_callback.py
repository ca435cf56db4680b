"""`ProfilerCallback`: per-batch latency, throughput and peak memory.

Re-exported as `keras_lnca.callbacks.ProfilerCallback`.
"""

import math
import time

import keras

from keras_lnca import memory_probe

_MIB = float(2**20)


class _Window:
    """Accumulates the measured batches of one epoch / evaluation / predict."""

    def __init__(self):
        self.started = False
        self.seconds = 0.0
        self.batches = 0
        self.calls = 0
        self.images = 0
        self.images_known = True
        self.peak_bytes = None
        self.memory_source = "none"
        self.memory_reset = False

    def figures(self):
        seconds = self.seconds
        latency = 1000.0 * seconds / self.batches if self.batches else math.nan
        if self.batches and self.images_known and seconds > 0:
            images_per_sec = self.images / seconds
        else:
            images_per_sec = math.nan
        if self.peak_bytes is None:
            peak_mb = math.nan
        else:
            peak_mb = self.peak_bytes / _MIB
        return {
            "latency_ms": latency,
            "images_per_sec": images_per_sec,
            "peak_memory_mb": peak_mb,
            "memory_source_id": float(
                memory_probe.memory_source_code(self.memory_source)
            ),
            # Not written into Keras logs (not numeric / not per-epoch):
            "memory_source": self.memory_source,
            "memory_reset": self.memory_reset,
            "batches": self.batches,
            "images": self.images if self.images_known else None,
            "seconds": seconds,
        }


class ProfilerCallback(keras.callbacks.Callback):
    """Measures batch latency, images per second and peak memory.

    For `fit`, `evaluate` and `predict`, the wall time of every batch is read
    from `on_*_batch_begin` to `on_*_batch_end` (`time.perf_counter`). Keras
    converts the batch's logs (or predictions) to Python numbers before
    `on_*_batch_end` runs whenever a callback overrides it, as this one does,
    so asynchronous backends have finished the batch when it is timed. The
    first `skip_batches` batches of each `fit` call (counted across epochs),
    of each `evaluate`/`predict` call, and of the validation passes of a
    `fit` call are not measured: they include tracing and compilation.

    Peak memory covers the measured batches of the window: device memory
    where the backend has a GPU, else the process's peak resident memory (see
    `keras_lnca.memory_probe` for the sources and which of them can be
    reset). It is reset when the window's first measured batch begins and
    read after every measured batch.

    Figures written into `logs` (numeric, so `History`, `CSVLogger`, the
    progress bar and `TensorBoard` record them):

    - `latency_ms`: mean wall time per batch, in milliseconds. With
      `steps_per_execution > 1` one callback call covers several batches;
      the time is divided by the number of batches.
    - `images_per_sec`: images in the measured batches / their wall time.
      `NaN` when the batch size is unknown (see `batch_size`).
    - `peak_memory_mb`: peak memory in MiB (2**20 bytes); `NaN` when no
      figure is available.
    - `memory_source_id`: the code of the memory source,
      `keras_lnca.memory_probe.MEMORY_SOURCES[int(code)]` names it (e.g.
      `"process_vmhwm"`, `"torch_cuda"`); the name is also in
      `callback.memory_source`.

    Where they go:

    - `fit`: into each epoch's logs at `on_epoch_end`, so they appear in
      `History.history`; figures of the validation pass, when one ran in
      that epoch, appear as `val_latency_ms`, `val_images_per_sec`, ...
      All keys are written every epoch (`NaN` when nothing was measured) so
      `CSVLogger` sees a fixed set of columns.
    - `evaluate` / `predict`: into the logs passed to `on_test_end` /
      `on_predict_end` (callbacks after this one see them; `evaluate()`
      itself returns a copy made before, so it does not include them).
    - Always: `callback.results[mode]`, for mode `"fit"` (the last epoch),
      `"validation"`, `"evaluate"` and `"predict"`, a dict with the figures
      above plus `memory_source` (name), `memory_reset` (whether the peak
      could be reset for this window), `batches`, `images` and `seconds`.

    Put this callback before `CSVLogger`/`TensorBoard` in the `callbacks`
    list: Keras calls callbacks in order and all of them share one logs dict.
    (`History` and the progress bar are appended by Keras, after it.)

    Args:
        skip_batches: number of batches not measured at the start of each
            run (the compiling step). Defaults to `1`.
        batch_size: images per batch, used for `images_per_sec` when the
            batch logs do not carry a `size`/`batch_size` entry. In
            `predict` the batch size is read from the predictions instead.
            With `batch_size=None` and no size in the logs,
            `images_per_sec` of `fit`/`evaluate` is `NaN`.

    Example:

    ```python
    profiler = kl.callbacks.ProfilerCallback(batch_size=16)
    csv_logger = keras.callbacks.CSVLogger("log.csv")
    history = model.fit(dataset, epochs=2, callbacks=[profiler, csv_logger])
    history.history["latency_ms"], history.history["peak_memory_mb"]
    profiler.memory_source            # e.g. "process_vmhwm"
    model.predict(images, batch_size=16, callbacks=[profiler])
    profiler.results["predict"]["images_per_sec"]
    ```
    """

    LOG_KEYS = (
        "latency_ms",
        "images_per_sec",
        "peak_memory_mb",
        "memory_source_id",
    )

    def __init__(self, skip_batches=1, batch_size=None):
        super().__init__()
        skip_batches = int(skip_batches)
        if skip_batches < 0:
            raise ValueError(
                f"`skip_batches` must be >= 0. Received: {skip_batches}"
            )
        if batch_size is not None:
            batch_size = int(batch_size)
            if batch_size <= 0:
                raise ValueError(
                    f"`batch_size` must be positive. Received: {batch_size}"
                )
        self.skip_batches = skip_batches
        self.batch_size = batch_size
        self.results = {}
        self.memory_source = None
        self._in_fit = False
        self._seen = {}
        self._windows = {}
        self._active = {}
        self._validated = False

    # --- Keras hooks -------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._in_fit = True
        self._seen["fit"] = 0
        self._seen["validation"] = 0

    def on_train_end(self, logs=None):
        self._in_fit = False

    def on_epoch_begin(self, epoch, logs=None):
        self._windows["fit"] = _Window()
        self._validated = False

    def on_epoch_end(self, epoch, logs=None):
        figures = self._finish("fit")
        if logs is None:
            return
        self._write(logs, figures)
        if self._validated:
            self._write(logs, self.results["validation"], prefix="val_")

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_begin("fit", batch)

    def on_train_batch_end(self, batch, logs=None):
        self._batch_end("fit", batch, logs)

    def on_test_begin(self, logs=None):
        mode = self._test_mode()
        if mode == "evaluate":
            self._seen[mode] = 0
        self._windows[mode] = _Window()

    def on_test_end(self, logs=None):
        mode = self._test_mode()
        figures = self._finish(mode)
        if mode == "validation":
            self._validated = True
        elif logs is not None:
            self._write(logs, figures)

    def on_test_batch_begin(self, batch, logs=None):
        self._batch_begin(self._test_mode(), batch)

    def on_test_batch_end(self, batch, logs=None):
        self._batch_end(self._test_mode(), batch, logs)

    def on_predict_begin(self, logs=None):
        self._seen["predict"] = 0
        self._windows["predict"] = _Window()

    def on_predict_end(self, logs=None):
        figures = self._finish("predict")
        if logs is not None:
            self._write(logs, figures)

    def on_predict_batch_begin(self, batch, logs=None):
        self._batch_begin("predict", batch)

    def on_predict_batch_end(self, batch, logs=None):
        self._batch_end("predict", batch, logs)

    # --- measurement -------------------------------------------------------

    def _test_mode(self):
        return "validation" if self._in_fit else "evaluate"

    def _window(self, mode):
        if mode not in self._windows:
            # Hooks called outside a begin/end pair (e.g. by hand).
            self._windows[mode] = _Window()
        return self._windows[mode]

    def _batch_begin(self, mode, batch):
        self._active[mode] = None
        if self._seen.get(mode, 0) < self.skip_batches:
            return
        window = self._window(mode)
        if not window.started:
            window.started = True
            window.memory_source = memory_probe.memory_source()
            window.memory_reset = memory_probe.reset_peak_memory()
            self.memory_source = window.memory_source
        # Read the clock last, after any bookkeeping.
        self._active[mode] = (batch, time.perf_counter())

    def _batch_end(self, mode, batch, logs):
        end = time.perf_counter()
        self._seen[mode] = self._seen.get(mode, 0) + 1
        active = self._active.pop(mode, None)
        if active is None:
            return
        begin_batch, begin = active
        window = self._window(mode)
        steps = 1
        if isinstance(batch, int) and isinstance(begin_batch, int):
            steps = max(1, batch - begin_batch + 1)
        window.seconds += end - begin
        window.batches += steps
        window.calls += 1
        images = self._images_in_batch(mode, logs, steps)
        if images is None:
            window.images_known = False
        else:
            window.images += images
        peak = memory_probe.peak_memory_bytes()
        if peak is not None:
            if window.peak_bytes is None or peak > window.peak_bytes:
                window.peak_bytes = peak

    def _images_in_batch(self, mode, logs, steps):
        logs = logs or {}
        for key in ("size", "batch_size"):
            value = logs.get(key)
            if isinstance(value, (int, float)) and value > 0:
                return int(value)
        if mode == "predict":
            size = _leading_dim(logs.get("outputs"))
            if size is None:
                # Keras flattens dict predictions into the logs.
                for value in logs.values():
                    size = _leading_dim(value)
                    if size is not None:
                        break
            if size is not None:
                return size
        if self.batch_size is not None:
            return self.batch_size * steps
        return None

    def _finish(self, mode):
        figures = self._window(mode).figures()
        self._windows.pop(mode, None)
        self.results[mode] = figures
        return figures

    def _write(self, logs, figures, prefix=""):
        for key in self.LOG_KEYS:
            logs[prefix + key] = figures[key]


def _leading_dim(value):
    """First dimension of the first array-like leaf of `value`, or None."""
    for leaf in keras.tree.flatten(value) if value is not None else ():
        shape = getattr(leaf, "shape", None)
        if shape is not None and len(shape) >= 1 and shape[0] is not None:
            return int(shape[0])
    return None
