"""One measurement: a compiled forward pass or a training step, in this process or a fresh one.

`measure_inference` and `measure_train_step` measure in the current
process; the benchmark runs each in a fresh subprocess through
`run_isolated`, whose worker enters at `worker_main`.
"""

import os
import statistics
import time

import numpy as np

from keras_lnca import memory_probe
from keras_lnca.benchmarks._worker import MemoryGuard
from keras_lnca.benchmarks._worker import run_worker
from keras_lnca.benchmarks._worker import serve
from keras_lnca.benchmarks.efficiency.flops import count_flops
from keras_lnca.benchmarks.efficiency.flops import count_params
from keras_lnca.benchmarks.efficiency.models import build_model


def measure_inference(
    model_name,
    size,
    *,
    batch=1,
    channels=3,
    steps=64,
    repeats=5,
    warmup=1,
    jit_compile="auto",
    seed=0,
    jax_cache_dir=None,
    memory_guard=None,
):
    """Measures one (model, size) inference point in the current process.

    The benchmark calls this in a fresh subprocess per point (see `run`);
    in-process calls (tests) see the memory of earlier work in the process.

    Args:
        model_name: a key of `MODELS`.
        size: int, side of the square input.
        batch: int, images per pass.
        channels: int, image channels.
        steps: int, NCA steps.
        repeats: int, timed passes; 0 runs the warm-up only (latency is
            then the first, compiling, pass).
        warmup: int >= 1, untimed passes first (the first compiles).
        jit_compile: see `compiled.compiled_forward`.
        seed: int, seed of the random input.
        jax_cache_dir: see `build_model`.
        memory_guard: optional callable given the baseline host bytes
            once the model is built (the worker's over-budget watchdog).

    Returns:
        A dict: `model`, `size`, `batch`, `params`, `flops` (with its
        `flops_nca` and `flops_codec` parts), `latency_ms`,
        `latency_runs_ms`, `compile_ms`, `first_call_ms`, the memory
        figures (MiB): `peak_memory_mb` (compilation and passes, above the
        level after imports and build, `memory_baseline_mb`),
        `compile_memory_mb` (the compilation alone) and `run_memory_mb` (the
        passes alone, above the level after compilation; None where the
        peak cannot be reset), `memory_source`, `steps`, `backend`,
        `jit_compile`, `device`, `status` ("ok").

    Example:
    ```python
    point = measure_inference("pixel_sobel", 32, steps=8, repeats=2)
    point["latency_ms"], point["peak_memory_mb"]
    ```
    """
    import keras

    model = build_model(
        model_name, channels=channels, steps=steps, seed=seed, jax_cache_dir=jax_cache_dir
    )
    images = np.random.default_rng(seed).random((batch, size, size, channels), dtype=np.float32)
    flops = count_flops(model, size, size, steps=steps, batch=1)
    memory = memory_probe.PeakMemory()
    if memory_guard is not None and memory.source.startswith("process"):
        memory_guard(memory.baseline)
    start = time.perf_counter()
    from keras_lnca.benchmarks.efficiency.compiled import compiled_forward

    forward, jit = compiled_forward(model, steps=steps, jit_compile=jit_compile, example=images)
    compile_ms = 1000.0 * (time.perf_counter() - start)
    compile_peak = memory.peak()
    run_base = memory.window()
    start = time.perf_counter()
    out = forward(images)
    first_ms = 1000.0 * (time.perf_counter() - start)
    if out.shape != images.shape:
        raise RuntimeError(f"{model_name} returned shape {out.shape} for {images.shape}.")
    del out
    for _ in range(max(warmup, 1) - 1):
        forward(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward(images)
        times.append(1000.0 * (time.perf_counter() - start))
    run_peak = memory.peak()
    latency = statistics.median(times) if times else first_ms
    return {
        "model": model_name,
        "size": int(size),
        "batch": int(batch),
        "params": count_params(model),
        "flops": flops["flops"],
        "flops_nca": flops["nca"],
        "flops_codec": flops["codec"],
        "latency_ms": round(latency, 3),
        "latency_runs_ms": [round(t, 3) for t in times],
        "compile_ms": round(compile_ms, 1),
        "first_call_ms": round(first_ms, 3),
        "peak_memory_mb": memory.total_mb(),
        "compile_memory_mb": memory.mb_above(compile_peak, memory.baseline),
        "run_memory_mb": memory.mb_above(run_peak, run_base) if memory.resettable else None,
        "memory_baseline_mb": memory.baseline_mb(),
        "memory_source": memory.source,
        "steps": int(steps),
        "backend": keras.backend.backend(),
        "jit_compile": bool(jit),
        "device": memory_probe.device_name(),
        "status": "ok",
    }


def measure_train_step(
    model_name,
    *,
    size=32,
    batch=8,
    channels=3,
    steps=32,
    repeats=5,
    warmup=2,
    jit_compile="auto",
    seed=0,
    jax_cache_dir=None,
    memory_guard=None,
):
    """Measures one training step (phase "nca") through `Model.fit`.

    The model is built with `train_steps=(steps, steps)`, compiled with its
    defaults (LNCA then switched to phase "nca"), and fitted on random
    `(degraded, clean)` pairs for `warmup + repeats` batches; the latency is
    the median wall time of the batches after the warm-up.

    Args:
        model_name: a key of `MODELS`.
        size: int, side of the training crops.
        batch: int, batch size.
        channels: int, image channels.
        steps: int, NCA steps per training step.
        repeats: int >= 1, timed batches.
        warmup: int >= 1, untimed first batches (tracing, compilation).
        jit_compile: `"auto"` (Keras' default: XLA on JAX, and on
            TensorFlow only with a GPU), or True / False for TensorFlow's
            train function (other backends keep "auto").
        seed: int.
        jax_cache_dir: see `build_model`.
        memory_guard: as in `measure_inference`.

    Returns:
        A dict: `model`, `size`, `batch`, `steps`, `phase`, `params`,
        `latency_ms`, `latency_runs_ms`, `first_batch_ms`, `peak_memory_mb`
        (the whole `fit`, above the level after build and compile),
        `run_memory_mb` (the timed batches, above the level after the
        warm-up), `memory_baseline_mb`, `memory_source`, `backend`,
        `jit_compile`, `device`, `status`.

    Example:
    ```python
    step = measure_train_step("lnca_nafca", steps=4, repeats=2)
    step["latency_ms"]
    ```
    """
    import keras

    model = build_model(
        model_name, channels=channels, steps=steps, train_steps=(steps, steps), seed=seed,
        jax_cache_dir=jax_cache_dir,
    )
    if jit_compile != "auto" and keras.backend.backend() == "tensorflow":
        model.compile(jit_compile=bool(jit_compile))
    else:
        model.compile()
    if "nca" in model.phases and model.phase != "nca":
        model.set_phase("nca")
    rng = np.random.default_rng(seed)
    count = batch * (warmup + repeats)
    clean = rng.random((count, size, size, channels), dtype=np.float32)
    degraded = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1).astype("float32")
    memory = memory_probe.PeakMemory()
    if memory_guard is not None and memory.source.startswith("process"):
        memory_guard(memory.baseline)
    timer = _batch_timer(warmup, memory)
    model.fit(
        degraded, clean, batch_size=batch, epochs=1, shuffle=False, verbose=0, callbacks=[timer]
    )
    run_peak = memory.peak()
    times = timer.times[warmup:]
    return {
        "model": model_name,
        "size": int(size),
        "batch": int(batch),
        "steps": int(steps),
        "phase": model.phase,
        "params": count_params(model),
        "latency_ms": round(statistics.median(times), 3),
        "latency_runs_ms": [round(t, 3) for t in times],
        "first_batch_ms": round(timer.times[0], 3),
        "peak_memory_mb": memory.total_mb(),
        "run_memory_mb": memory.mb_above(run_peak, timer.run_base) if memory.resettable else None,
        "memory_baseline_mb": memory.baseline_mb(),
        "memory_source": memory.source,
        "backend": keras.backend.backend(),
        "jit_compile": bool(getattr(model, "jit_compile", False)),
        "device": memory_probe.device_name(),
        "status": "ok",
    }


def _batch_timer(warmup, memory):
    """A callback timing every `fit` batch; it starts a memory window after the warm-up.

    Keras turns the batch logs into Python numbers before `on_train_batch_end`
    of a callback that overrides it, so each timed batch has finished.
    """
    import keras

    class BatchTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []
            self.run_base = None
            self._start = None

        def on_train_batch_begin(self, batch, logs=None):
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(1000.0 * (time.perf_counter() - self._start))
            if len(self.times) == warmup:
                memory.peak()  # keeps the warm-up's peak in `highest`
                self.run_base = memory.window()

    return BatchTimer()


def measure_spec(spec, memory_guard=None):
    """`measure_inference` or `measure_train_step`, as the spec's `kind` says, with its arguments."""
    spec = dict(spec)
    kind = spec.pop("kind")
    if kind == "inference":
        return measure_inference(memory_guard=memory_guard, **spec)
    if kind == "train":
        return measure_train_step(memory_guard=memory_guard, **spec)
    raise ValueError(f"Unknown measurement kind {kind!r}.")


def worker_main(argv=None):
    """Entry point of a measurement subprocess: `SPEC_JSON RESULT_PATH`.

    Measures one point (`measure_inference` or `measure_train_step`, chosen
    by the spec's `kind`) in this fresh process and writes a JSON result;
    errors are written as `{"status": "error", "error": ...}`.
    """

    def measure(spec, result_path):
        limit = spec.pop("memory_limit_mb", None)
        return measure_spec(spec, memory_guard=MemoryGuard(limit, result_path) if limit else None)

    return serve(measure, argv)


_WORKER_CODE = (
    "import sys; from keras_lnca.benchmarks.efficiency import measure; "
    "sys.exit(measure.worker_main())"
)


def run_isolated(spec, backend, timeout=None):
    """Runs one measurement in a fresh Python process with `KERAS_BACKEND=backend`.

    Args:
        spec: dict, `kind` ("inference" or "train") and the keyword
            arguments of `measure_inference` / `measure_train_step`, plus
            optionally `memory_limit_mb` (the worker aborts above it).
        backend: `"tensorflow"`, `"jax"` or `"torch"`.
        timeout: seconds before the worker is killed.

    Returns:
        The worker's result dict; `status` is `"ok"`, `"over_budget"`,
        `"error"` or `"timeout"`.
    """
    env = dict(os.environ, KERAS_BACKEND=backend)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return run_worker(_WORKER_CODE, spec, env, timeout, prefix="lnca-bench-")
