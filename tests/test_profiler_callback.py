"""ProfilerCallback and the peak-memory helpers of memory_probe."""

import csv
import math
import time

import keras
import numpy as np
import pytest

from keras_lnca import memory_probe
from keras_lnca.callbacks.profiler_callback import ProfilerCallback

SLEEP = 0.05  # seconds per forward pass of the sleeping model
BATCH = 8
SAMPLES = 64  # 8 batches
# The stable log keys (others rely on these names).
LOG_KEYS = (
    "latency_ms",
    "images_per_sec",
    "peak_memory_mb",
    "memory_source_id",
)


class Sleep(keras.layers.Layer):
    """Identity that sleeps; with `run_eagerly=True` it runs every batch."""

    def __init__(self, seconds, **kwargs):
        super().__init__(**kwargs)
        self.seconds = seconds

    def call(self, x):
        time.sleep(self.seconds)
        return x


def make_model(sleep=SLEEP):
    inputs = keras.Input((4,))
    x = Sleep(sleep)(inputs) if sleep else inputs
    outputs = keras.layers.Dense(1)(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse", run_eagerly=bool(sleep))
    return model


def make_data(n=SAMPLES):
    rng = np.random.default_rng(0)
    x = rng.random((n, 4), dtype=np.float32)
    return x, rng.random((n, 1), dtype=np.float32)


class WallClock(keras.callbacks.Callback):
    """Reference: wall clock read around the batches of each run/epoch."""

    def __init__(self):
        super().__init__()
        self.runs = []

    def _begin_run(self, *args, **kwargs):
        self.runs.append(([], []))

    def _begin(self, batch, logs=None):
        self.runs[-1][0].append(time.perf_counter())

    def _end(self, batch, logs=None):
        self.runs[-1][1].append(time.perf_counter())

    on_epoch_begin = on_test_begin = on_predict_begin = _begin_run
    on_train_batch_begin = on_test_batch_begin = on_predict_batch_begin = _begin
    on_train_batch_end = on_test_batch_end = on_predict_batch_end = _end

    def latency_ms(self, run, skip):
        begins, ends = self.runs[run]
        return 1000.0 * (ends[-1] - begins[skip]) / (len(begins) - skip)


class LogsSpy(keras.callbacks.Callback):
    """Records the logs that callbacks after the profiler see."""

    def __init__(self):
        super().__init__()
        self.test_end = None
        self.predict_end = None

    def on_test_end(self, logs=None):
        self.test_end = dict(logs or {})

    def on_predict_end(self, logs=None):
        self.predict_end = dict(logs or {})


class Allocate(keras.callbacks.Callback):
    """Allocates and touches `nbytes` of host memory during one batch."""

    def __init__(self, nbytes, batch):
        super().__init__()
        self.nbytes = nbytes
        self.batch = batch

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.batch:
            block = np.ones(self.nbytes // 8, dtype=np.float64)
            assert block[-1] == 1.0
            del block


def assert_close(value, reference, rel=0.2):
    assert abs(value - reference) <= rel * reference, (value, reference)


# --- fit ------------------------------------------------------------------


def test_fit_history_keys_and_latency():
    x, y = make_data()
    clock = WallClock()
    profiler = ProfilerCallback(batch_size=BATCH)
    history = make_model().fit(
        x,
        y,
        batch_size=BATCH,
        epochs=2,
        validation_data=(x[:32], y[:32]),
        callbacks=[clock, profiler],
        verbose=0,
    )
    logs = history.history
    for key in LOG_KEYS:
        assert len(logs[key]) == 2, key
        assert len(logs["val_" + key]) == 2, key
    # Clock runs: epoch 0, validation 0, epoch 1, validation 1. The first
    # training batch and the first validation batch of the fit are skipped.
    expected = [
        (logs["latency_ms"][0], clock.latency_ms(0, skip=1)),
        (logs["val_latency_ms"][0], clock.latency_ms(1, skip=1)),
        (logs["latency_ms"][1], clock.latency_ms(2, skip=0)),
        (logs["val_latency_ms"][1], clock.latency_ms(3, skip=0)),
    ]
    for value, reference in expected:
        assert value >= 1000 * SLEEP
        assert_close(value, reference)
    assert profiler.results["fit"]["batches"] == SAMPLES // BATCH
    assert profiler.results["validation"]["batches"] == 32 // BATCH
    for epoch in range(2):
        assert logs["images_per_sec"][epoch] == pytest.approx(
            1000 * BATCH / logs["latency_ms"][epoch], rel=1e-6
        )
        assert logs["peak_memory_mb"][epoch] > 0
    source = profiler.memory_source
    assert source in memory_probe.MEMORY_SOURCES and source != "none"
    assert logs["memory_source_id"] == [
        float(memory_probe.MEMORY_SOURCES.index(source))
    ] * 2


def test_csv_logger_and_progbar_columns(tmp_path, capsys):
    x, y = make_data(16)
    path = tmp_path / "log.csv"
    make_model(sleep=0).fit(
        x,
        y,
        batch_size=4,
        epochs=2,
        callbacks=[ProfilerCallback(), keras.callbacks.CSVLogger(str(path))],
        verbose=2,
    )
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for key in LOG_KEYS:
        assert key in rows[0]
        float(rows[1][key])
    assert "latency_ms" in capsys.readouterr().out
    # No batch size given: images per second is unknown, not made up.
    assert math.isnan(float(rows[1]["images_per_sec"]))


def test_all_keys_even_when_nothing_is_measured():
    x, y = make_data(16)
    profiler = ProfilerCallback(skip_batches=100)
    history = make_model(sleep=0).fit(
        x, y, batch_size=8, epochs=1, callbacks=[profiler], verbose=0
    )
    for key in LOG_KEYS[:3]:
        assert math.isnan(history.history[key][0])
    assert history.history["memory_source_id"] == [0.0]
    assert profiler.results["fit"]["batches"] == 0


# --- evaluate and predict -------------------------------------------------


def test_evaluate_and_predict_figures():
    x, y = make_data()
    model = make_model()
    clock, spy = WallClock(), LogsSpy()
    profiler = ProfilerCallback(batch_size=BATCH)
    callbacks = [clock, profiler, spy]

    model.evaluate(x, y, batch_size=BATCH, callbacks=callbacks, verbose=0)
    figures = profiler.results["evaluate"]
    assert figures["batches"] == SAMPLES // BATCH - 1
    assert figures["latency_ms"] >= 1000 * SLEEP
    assert_close(figures["latency_ms"], clock.latency_ms(-1, skip=1))
    assert figures["images_per_sec"] == pytest.approx(
        1000 * BATCH / figures["latency_ms"], rel=1e-6
    )
    assert figures["peak_memory_mb"] > 0
    for key in LOG_KEYS:
        assert spy.test_end[key] == figures[key]

    # Predict: images counted from the predictions (last batch is partial),
    # no batch_size needed.
    profiler = ProfilerCallback()
    callbacks = [clock, profiler, spy]
    model.predict(x[:60], batch_size=BATCH, callbacks=callbacks, verbose=0)
    figures = profiler.results["predict"]
    assert figures["batches"] == 7
    assert figures["images"] == 60 - BATCH
    assert figures["latency_ms"] >= 1000 * SLEEP
    assert_close(figures["latency_ms"], clock.latency_ms(-1, skip=1))
    assert figures["images_per_sec"] == pytest.approx(
        figures["images"] / figures["seconds"], rel=1e-6
    )
    assert figures["peak_memory_mb"] > 0
    for key in LOG_KEYS:
        assert spy.predict_end[key] == figures[key]


def test_evaluate_after_fit_is_not_validation():
    x, y = make_data(16)
    model = make_model(sleep=0)
    profiler = ProfilerCallback(skip_batches=0)
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[profiler], verbose=0)
    model.evaluate(x, y, batch_size=4, callbacks=[profiler], verbose=0)
    assert "validation" not in profiler.results
    assert profiler.results["evaluate"]["batches"] == 4
    assert profiler.results["fit"]["batches"] == 2


# --- peak memory ------------------------------------------------------------


def test_peak_memory_sees_a_1gb_allocation():
    if memory_probe.memory_source() != "process_vmhwm":
        pytest.skip(
            "needs the resettable host peak (/proc VmHWM); this machine "
            f"reports {memory_probe.memory_source()!r}, where a numpy "
            "allocation is not (or not separately) visible"
        )
    gib = 2**30
    x, y = make_data(32)
    model = make_model(sleep=0)
    control = ProfilerCallback()
    model.fit(x, y, batch_size=4, epochs=1, callbacks=[control], verbose=0)
    profiler = ProfilerCallback()
    # Allocator after the profiler: the window is reset before it runs.
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=1,
        callbacks=[profiler, Allocate(gib, batch=3)],
        verbose=0,
    )
    base_mb = control.results["fit"]["peak_memory_mb"]
    peak_mb = profiler.results["fit"]["peak_memory_mb"]
    assert peak_mb - base_mb >= 0.9 * gib / 2**20, (base_mb, peak_mb)
    assert profiler.results["fit"]["memory_reset"] is True


def test_memory_probe_helpers():
    source = memory_probe.memory_source()
    assert source in memory_probe.MEMORY_SOURCES
    assert isinstance(memory_probe.reset_peak_memory(), bool)
    peak = memory_probe.peak_memory_bytes()
    assert peak is None or (isinstance(peak, int) and peak > 0)
    for code, name in enumerate(memory_probe.MEMORY_SOURCES):
        assert memory_probe.memory_source_code(name) == code
    with pytest.raises(ValueError):
        memory_probe.memory_source_code("bogus")
    # An unknown backend (e.g. keras' numpy backend) falls back to the host.
    assert memory_probe.memory_source("numpy") in (
        "process_vmhwm",
        "process_maxrss",
        "process_rss",
        "none",
    )
    memory_probe.peak_memory_bytes("numpy")


def test_invalid_arguments():
    with pytest.raises(ValueError, match="skip_batches"):
        ProfilerCallback(skip_batches=-1)
    with pytest.raises(ValueError, match="batch_size"):
        ProfilerCallback(batch_size=0)
