"""The efficiency benchmark: LNCA against pixel-space NCAs (`lnca benchmark efficiency`).

What is measured, for each model and square input size (batch 1, 3
channels, untrained weights, the same number of NCA steps for every model):

* `params`: scalars in the network's weights (encoder, decoder and cell,
  BatchNorm statistics included; the training sample pool excluded).
* `flops`: floating-point operations per image, counted analytically by
  `count_flops` (a multiply-add is 2 FLOPs; see its docstring for the
  per-layer rules). The count is the algorithm's, not a backend's, so it is
  the same on TensorFlow, JAX and PyTorch.
* `latency_ms`: median wall time of `repeats` forward passes after `warmup`
  untimed passes, through the compiled function that `Model.predict` runs
  on each backend (`compiled_forward`): `tf.function` on TensorFlow (XLA
  only where Keras' `jit_compile="auto"` would use it, i.e. with a GPU),
  `jax.jit` of `stateless_call` on JAX (compiled ahead of the first pass),
  eager under `torch.no_grad()` on PyTorch. The input is a numpy array and
  the output is read back to numpy inside the timed call.
* `peak_memory_mb`: in a fresh subprocess, the peak over compilation and
  every pass minus the level after imports and model build
  (`memory_baseline_mb`): on CPU the process peak resident set (`VmHWM`,
  reset through `/proc/self/clear_refs`), on a GPU the framework
  allocator's device peak (both via `keras_lnca.backend_utils`);
  `memory_source` names the source. Its parts: `compile_memory_mb` (the
  compilation or tracing alone) and `run_memory_mb` (the passes alone,
  above the level after compilation, free heap memory returned to the OS
  first with `malloc_trim` so that it cannot hide the passes' needs).
* A training step (phase `"nca"`, 32x32 crops, batch 8, a fixed 32 NCA
  steps) timed through `Model.fit`: median per-batch latency after the
  compiling batches; `peak_memory_mb` over the whole `fit` above the level
  after build and `compile()`, `run_memory_mb` over the timed batches.
* `max_side`: the largest square input each model restores within the
  memory budget, extrapolated from the measured points (an affine fit of
  peak memory against pixels through the two largest measured sizes) or,
  with `max_side="bisect"`, found by bisection with a fresh subprocess per
  trial; `max_side_details` says which.
* `ratios` of every LNCA variant against pixel ViTCA at each common size.

A point is skipped, and the model's larger sizes are not run, when its
peak memory (predicted from the previous points: memory and latency grow
about linearly with the number of pixels) would exceed the memory budget,
or when one warm-up and one timed pass would exceed the time budget.

Example:
```python
from keras_lnca.benchmarks import efficiency

config = efficiency.EfficiencyConfig(sizes=(64, 128), backends=("jax",))
result = efficiency.run(config)
print(efficiency.format_report(result))
efficiency.write_json("efficiency.json", result)
```
"""

import dataclasses
import gc
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time

import numpy as np

MIB = float(2**20)
GIB = float(2**30)

BACKENDS = ("tensorflow", "jax", "torch")
BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}

# name -> (label, how it is built)
MODELS = {
    "lnca_nafca": (
        "LNCA-NAFCA", "kl.LNCA(): NAFCA cell, 4x smaller latent grid, 16 latent + 32 hidden channels"
    ),
    "lnca_vitca": ("LNCA-ViTCA", 'kl.LNCA(cell="vitca"): ViTCA cell on the latent grid'),
    "lnca_conv": (
        "LNCA-Conv",
        'kl.LNCA(cell="conv", autoencoder="space_to_depth"): the shipped presets\' ConvCell '
        "(full 3x3 perception of the whole state to 64 channels, 128-unit MLP; 16 hidden channels)",
    ),
    "pixel_vitca": (
        "ViTCA", 'kl.PixelNCA(cell="vitca"): embed 128, 4 heads, MLP 64, depth 1, hidden 32'
    ),
    "pixel_sobel": (
        "NCA (Sobel)", 'kl.PixelNCA(cell="sobel"): Sobel perception, 128-unit MLP, hidden 32'
    ),
}
BASELINE = "pixel_vitca"
LNCA_MODELS = ("lnca_nafca", "lnca_vitca", "lnca_conv")

DEFAULT_SIZES = (32, 64, 128, 256, 512, 1024, 2048)

FLOPS_METHOD = (
    "analytic: count_flops() per layer (multiply-add = 2 FLOPs; bias, normalisation, "
    "activation, gating and softmax counted per element), per NCA step x steps + autoencoder"
)
LATENCY_METHOD = (
    "median wall time of the timed passes after warm-up, through the compiled forward that "
    "Model.predict runs (tf.function / jax.jit(stateless_call) / eager torch.no_grad), "
    "numpy in, numpy out"
)
MEMORY_METHOD = (
    "fresh subprocess per point; peak MB = peak over compilation and all passes minus the level "
    "after imports and model build; run MB = peak of the passes minus the level after "
    "compilation (free heap trimmed); CPU: process VmHWM (reset through /proc/self/clear_refs), "
    "GPU: framework device allocator peak; MB = 2^20 bytes, GB = 2^30 bytes"
)


def build_model(name, channels=3, steps=64, train_steps=(8, 32), seed=0, jax_cache_dir=None):
    """Builds one of the benchmark's models with untrained weights.

    Args:
        name: a key of `MODELS`.
        channels: int, image channels.
        steps: int, NCA steps at inference.
        train_steps: `(low, high)` NCA steps in training.
        seed: int, seed of the model's training schedule.
        jax_cache_dir: optional folder for JAX's persistent compilation
            cache, enabled only while the weights are created: on JAX every
            weight initializer compiles once per shape (about a second
            each), which a cache shared by the benchmark's subprocesses
            pays only once. Nothing that is measured is cached.

    Returns:
        A built `LNCA` or `PixelNCA`.

    Example:
    ```python
    model = build_model("lnca_nafca", steps=64)
    ```
    """
    import keras_lnca as kl

    common = dict(channels=channels, inference_steps=steps, train_steps=train_steps, seed=seed)
    if name == "lnca_nafca":
        model = kl.LNCA(**common)
    elif name == "lnca_vitca":
        model = kl.LNCA(cell="vitca", **common)
    elif name == "lnca_conv":
        model = kl.LNCA(
            cell="conv", autoencoder="space_to_depth", out_seed="input", hidden_channels=16,
            cell_config=dict(perception_channels=64, hidden_units=128), **common,
        )
    elif name == "pixel_vitca":
        # The ViTCA paper's configuration, spelled out.
        vitca = dict(embed_dim=128, heads=4, mlp_dim=64, depth=1)
        model = kl.PixelNCA(cell="vitca", hidden_channels=32, cell_config=vitca, **common)
    elif name == "pixel_sobel":
        model = kl.PixelNCA(cell="sobel", hidden_channels=32, **common)
    else:
        raise ValueError(f"Unknown benchmark model {name!r}; choose from {sorted(MODELS)}.")
    with _jax_compilation_cache(jax_cache_dir):
        model.build()
    return model


class _jax_compilation_cache:
    """Enables JAX's persistent compilation cache in `directory` for a block."""

    def __init__(self, directory):
        self.directory = directory
        self.jax = None

    def __enter__(self):
        import keras

        if not self.directory or keras.backend.backend() != "jax":
            return self
        import jax

        self.jax = jax
        jax.config.update("jax_compilation_cache_dir", self.directory)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        jax.config.update("jax_enable_compilation_cache", True)
        return self

    def __exit__(self, *exc):
        if self.jax is not None:
            self.jax.config.update("jax_enable_compilation_cache", False)
        return False


def count_params(model):
    """Scalars in the network's weights (the sample pool excluded).

    Args:
        model: an `LNCA` or `PixelNCA`.

    Returns:
        int.
    """
    return int(sum(layer.count_params() for layer in model.layers))


# =========================================================================
# FLOPs (analytic)
# =========================================================================

# Operations per element of a BatchNorm at inference: a folded scale and shift.
# (The cells' own costs, layer norms included, are in `NCACell.flops_per_cell`.)
_BATCH_NORM = 2


def _activation_cost(activation):
    # By name: `keras.activations.serialize` would import TensorFlow.
    from keras_lnca.layers.nca_cell import activation_cost

    name = activation if isinstance(activation, str) else getattr(activation, "__name__", None)
    return activation_cost(name)


def _conv_flops(layer, height, width):
    """`(flops, out_height, out_width)` of a Conv2D / Conv2DTranspose ("same" padding)."""
    import keras

    kh, kw = (int(d) for d in layer.kernel.shape[:2])
    stride = int(layer.strides[0])
    if isinstance(layer, keras.layers.Conv2DTranspose):
        cout, cin = (int(d) for d in layer.kernel.shape[2:])
        out_h, out_w = height * stride, width * stride
        # Every input position scatters a kh x kw x cout patch.
        macs = height * width * kh * kw * cin * cout
    else:
        cin, cout = (int(d) for d in layer.kernel.shape[2:])
        out_h, out_w = -(-height // stride), -(-width // stride)
        macs = out_h * out_w * kh * kw * cin * cout
    elementwise = cout * (int(layer.use_bias) + _activation_cost(layer.activation))
    return 2 * macs + out_h * out_w * elementwise, out_h, out_w


def _adj_conv_flops(block, height, width):
    """`(flops, out_height, out_width)` of an `AdjConv` / `AdjConvTranspose`."""
    flops, out_h, out_w = _conv_flops(block.conv, height, width)
    per_element = _activation_cost(block.activation) + (_BATCH_NORM if block.norm is not None else 0)
    return flops + out_h * out_w * block.filters * per_element, out_h, out_w


def cell_flops(cell):
    """FLOPs of one NCA step of `cell`, per cell (grid position).

    Every cell reports its own cost (`NCACell.flops_per_cell`), so a new cell
    needs no edit here.

    Args:
        cell: a built `NCACell`.

    Returns:
        int.
    """
    return int(cell.flops_per_cell())


def count_flops(model, height, width, steps=None, batch=1):
    """Analytic FLOPs of the full inference pipeline.

    Rules: a multiply-add of a Dense or convolution layer is 2 FLOPs (a
    transposed convolution scatters each input position through its kernel);
    a bias add, residual add, gate product or scale is 1 per element; a
    LayerNorm is 7 per element, an inference BatchNorm 2 (folded scale and
    shift), swish 4, sigmoid 3, GELU 5, ReLU 1, a softmax 4 per logit.
    ViTCA's 3x3 local attention costs `2*E` per neighbour for the logits and
    `2*E` for the weighted values (the mathematical dot products, whatever
    matrix trick implements them). Padding, concatenation, slicing and the
    seed state are free; the final clip costs 2 per output element. An LNCA
    input is counted at its padded size (a multiple of `2**downsampling`).

    Args:
        model: a built `LNCA` or `PixelNCA`.
        height: int, input height in pixels.
        width: int, input width in pixels.
        steps: int, NCA steps (defaults to `model.inference_steps`).
        batch: int, images.

    Returns:
        A dict with `flops` (total), `nca` (all steps), `codec`
        (encoder + decoder + clip) and `per_cell_step`, all for the batch.

    Example:
    ```python
    model = build_model("lnca_nafca")
    count_flops(model, 256, 256)["flops"]  # FLOPs per 256x256 image
    ```
    """
    steps = model.inference_steps if steps is None else int(steps)
    factor = model.grid_factor
    padded_h, padded_w = -(-height // factor) * factor, -(-width // factor) * factor
    grid_h, grid_w = padded_h // factor, padded_w // factor
    per_cell = cell_flops(model.nca.cell)
    nca = steps * grid_h * grid_w * per_cell
    codec = 2 * height * width * model.channels  # clip
    encoder = getattr(model, "encoder", None)
    if encoder is not None and getattr(model, "autoencoder", "learned") == "learned":
        # (A space-to-depth codec only moves pixels: no FLOPs.)
        h, w = padded_h, padded_w
        for chain in (encoder.main_blocks, encoder.pass_blocks):
            h, w = padded_h, padded_w
            for block in chain:
                flops, h, w = _adj_conv_flops(block, h, w)
                codec += flops
        codec += h * w * int(encoder.main_blocks[-1].filters)  # main + pass
        codec += _adj_conv_flops(encoder.latent_block, h, w)[0]
        decoder = model.decoder
        h, w = grid_h, grid_w
        for block in decoder.up_blocks:
            flops, h, w = _adj_conv_flops(block, h, w)
            codec += flops
        codec += h * w * int(decoder.mix_block.filters)  # + skip
        flops, h, w = _adj_conv_flops(decoder.mix_block, h, w)
        codec += flops
        codec += _adj_conv_flops(decoder.output_block, h, w)[0]
    return {
        "flops": int(batch * (nca + codec)),
        "nca": int(batch * nca),
        "codec": int(batch * codec),
        "per_cell_step": int(per_cell),
    }


# =========================================================================
# Measurements (run inside the worker subprocess, or in-process for tests)
# =========================================================================


def _read_status_kib(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _release_free_memory():
    """Collects garbage and returns the C heap's free pages to the OS.

    Without `malloc_trim`, memory freed by an earlier phase (compilation,
    a warm-up pass) stays resident and is silently reused, hiding the next
    phase's needs from the resident-set peak.
    """
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class _PeakMemory:
    """Peak memory of a process phase by phase, through `backend_utils`.

    `baseline` is the level when created (after imports and model build).
    `window()` starts a phase: it releases free memory, resets the peak and
    returns the phase's starting level; `peak()` reads the peak since then.
    `highest` keeps the largest peak seen over all phases.
    """

    def __init__(self):
        from keras_lnca import backend_utils

        self._utils = backend_utils
        self.source = backend_utils.memory_source()
        self.baseline = self.window()
        self.resettable = self._resettable
        self.highest = self.baseline

    def window(self):
        _release_free_memory()
        self._resettable = self._utils.reset_peak_memory()
        return self._utils.peak_memory_bytes()

    def peak(self):
        value = self._utils.peak_memory_bytes()
        if value is not None and self.highest is not None:
            self.highest = max(self.highest, value)
        return value

    @staticmethod
    def mb_above(value, base):
        if value is None or base is None:
            return None
        return round(max(0, value - base) / MIB, 2)

    def total_mb(self):
        """Largest peak of all phases above the baseline."""
        self.peak()
        return self.mb_above(self.highest, self.baseline)

    def baseline_mb(self):
        return None if self.baseline is None else round(self.baseline / MIB, 1)


class _MemoryGuard:
    """Aborts the worker when its resident memory passes a limit.

    Polls `VmRSS` from a daemon thread; on breach writes an `over_budget`
    result and exits the process at once (it is a throwaway subprocess), so
    an over-budget point cannot take the machine's memory.

    Args:
        limit_mb: float, MiB allowed above the baseline.
        result_path: where the worker writes its JSON result.
        interval: seconds between polls.
        exit: called with the exit status on breach (`os._exit`).
    """

    def __init__(self, limit_mb, result_path, interval=0.02, exit=os._exit):
        self.limit_mb = float(limit_mb)
        self.result_path = result_path
        self.interval = interval
        self.exit = exit
        self.thread = None

    def __call__(self, baseline_bytes):
        if _read_status_kib("VmRSS") is None:
            return
        limit = baseline_bytes + self.limit_mb * MIB

        def watch():
            while True:
                rss = _read_status_kib("VmRSS")
                if rss is not None and rss > limit:
                    _write_result(
                        self.result_path,
                        {
                            "status": "over_budget",
                            "observed_memory_mb": round((rss - baseline_bytes) / MIB, 1),
                            "memory_budget_mb": self.limit_mb,
                        },
                    )
                    self.exit(3)
                    return
                time.sleep(self.interval)

        self.thread = threading.Thread(target=watch, daemon=True)
        self.thread.start()


def _device_name():
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_logical_devices("GPU")
            return f"{len(gpus)} GPU(s)" if gpus else "cpu"
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            return "cpu" if device.platform == "cpu" else getattr(device, "device_kind", device.platform)
        if backend == "torch":
            import torch

            return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except Exception:
        pass
    return "unknown"


def _tf_jit(jit_compile):
    """`jit_compile` for `tf.function`: "auto" follows Keras (XLA only with a GPU)."""
    if jit_compile == "auto":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU"))
    return bool(jit_compile)


def compiled_forward(model, steps=None, jit_compile="auto", example=None):
    """The deterministic inference pass, compiled as `Model.predict` compiles it.

    Args:
        model: a built `LNCA` or `PixelNCA`.
        steps: int, NCA steps (defaults to `model.inference_steps`).
        jit_compile: `"auto"`, True or False: XLA for the TensorFlow
            `tf.function` (`"auto"`: only with a GPU, as Keras). JAX always
            compiles with XLA; PyTorch runs eagerly, as `predict` does.
        example: optional numpy array of the input shape: compile (JAX) or
            trace (TensorFlow) for it now rather than at the first call.

    Returns:
        `(forward, jit)`: `forward(images) -> numpy array`, images a numpy
        array `(batch, height, width, channels)`; `jit` whether XLA is used.

    Example:
    ```python
    forward, _ = compiled_forward(model, steps=64)
    restored = forward(np.zeros((1, 64, 64, 3), "float32"))
    ```
    """
    import keras

    steps = model.inference_steps if steps is None else int(steps)
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def restore(trainable, non_trainable, images):
            restored, _ = model.stateless_call(
                trainable, non_trainable, images, training=False, steps=steps
            )
            return restored

        run = jax.jit(restore)
        if example is not None:
            run = run.lower(trainable, non_trainable, example).compile()
        return (lambda images: np.asarray(run(trainable, non_trainable, images))), True
    if backend == "tensorflow":
        import tensorflow as tf

        jit = _tf_jit(jit_compile)
        run = tf.function(
            lambda images: model(images, training=False, steps=steps),
            jit_compile=jit,
            reduce_retracing=True,
        )
        if example is not None:
            run = run.get_concrete_function(tf.TensorSpec(example.shape, tf.float32))
        return (lambda images: run(tf.convert_to_tensor(images)).numpy()), jit
    if backend == "torch":
        import torch

        def forward(images):
            with torch.no_grad():
                restored = model(keras.ops.convert_to_tensor(images), training=False, steps=steps)
            return keras.ops.convert_to_numpy(restored)

        return forward, False
    raise ValueError(f"Unsupported backend {backend!r}.")


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
        jit_compile: see `compiled_forward`.
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
    memory = _PeakMemory()
    if memory_guard is not None and memory.source.startswith("process"):
        memory_guard(memory.baseline)
    start = time.perf_counter()
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
        "device": _device_name(),
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
    memory = _PeakMemory()
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
        "device": _device_name(),
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


# =========================================================================
# The worker subprocess
# =========================================================================


def _write_result(path, result):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, path)


def _measure(spec, memory_guard=None):
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
    argv = sys.argv[1:] if argv is None else argv
    spec, result_path = json.loads(argv[0]), argv[1]
    limit = spec.pop("memory_limit_mb", None)
    guard = _MemoryGuard(limit, result_path) if limit else None
    try:
        result = _measure(spec, memory_guard=guard)
    except Exception as error:  # reported to the parent, which carries on
        message = str(error).strip().splitlines()
        _write_result(
            result_path,
            {"status": "error", "error": f"{type(error).__name__}: {message[0] if message else ''}"},
        )
        return 1
    _write_result(result_path, result)
    return 0


_WORKER_CODE = (
    "import sys; from keras_lnca.benchmarks import efficiency; "
    "sys.exit(efficiency.worker_main())"
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
    from keras_lnca.benchmarks._worker import run_worker

    env = dict(os.environ, KERAS_BACKEND=backend)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return run_worker(_WORKER_CODE, spec, env, timeout, prefix="lnca-bench-")


# =========================================================================
# Orchestration
# =========================================================================


@dataclasses.dataclass
class EfficiencyConfig:
    """Settings of one efficiency benchmark run.

    Args:
        sizes: square input sides, ascending.
        backends: backends to run on; None for the current Keras backend.
        models: keys of `MODELS`.
        steps: NCA steps at inference (the same for every model).
        repeats: timed passes per point (fewer when the time budget needs it).
        warmup: untimed passes per point (the first compiles).
        memory_budget_gb: peak memory budget per inference (GiB).
        time_budget_s: seconds a point's warm-up and timed passes may take.
        batch: images per pass.
        channels: image channels.
        train_step: measure a training step per model.
        train_size, train_batch, train_steps: the training step's crop
            side, batch and (fixed) NCA steps.
        train_repeats, train_warmup: timed and untimed `fit` batches.
        max_side: `"extrapolate"`, `"bisect"` or `"none"`.
        jit_compile: XLA for TensorFlow's inference and train functions
            (`"auto"`: as Keras, i.e. only with a GPU; see `compiled_forward`).
        isolate: a fresh subprocess per point (False runs in this process:
            only for tests, memory figures are then not isolated).
        progress: a tqdm progress bar on stderr.
        seed: seed of the random inputs and of the models' schedules.
    """

    sizes: tuple = DEFAULT_SIZES
    backends: tuple = None
    models: tuple = tuple(MODELS)
    steps: int = 64
    repeats: int = 5
    warmup: int = 1
    memory_budget_gb: float = 8.0
    time_budget_s: float = 600.0
    batch: int = 1
    channels: int = 3
    train_step: bool = True
    train_size: int = 32
    train_batch: int = 8
    train_steps: int = 32
    train_repeats: int = 5
    train_warmup: int = 2
    max_side: str = "extrapolate"
    jit_compile: str = "auto"
    isolate: bool = True
    progress: bool = True
    seed: int = 0


def current_backend():
    """`KERAS_BACKEND` if set, else the backend Keras is configured with."""
    backend = os.environ.get("KERAS_BACKEND")
    if backend:
        return backend
    import keras

    return keras.backend.backend()


def _affine(points):
    """`(intercept, slope)` of value against pixels through the two largest points."""
    (p1, v1), (p2, v2) = points[-2:]
    slope = (v2 - v1) / (p2 - p1) if p2 != p1 else 0.0
    return v2 - slope * p2, slope


def predict_cost(points, pixels):
    """Predicts a value (memory, latency) at `pixels` from measured `(pixels, value)`.

    With two or more points: the affine fit through the two largest; with
    one point, or when that fit does not grow: proportional to the pixels
    (an overestimate at small sizes, where fixed costs dominate).

    Args:
        points: list of `(pixels, value)`, ascending in pixels.
        pixels: int.

    Returns:
        float, or None without points.
    """
    points = [(p, v) for p, v in points if v is not None]
    if not points:
        return None
    last_pixels, last_value = points[-1]
    proportional = last_value * pixels / last_pixels
    if len(points) < 2:
        return proportional
    intercept, slope = _affine(points)
    if slope <= 0:
        return proportional
    return intercept + slope * pixels


class _Runner:
    """Runs measurements in subprocesses (or in-process) and tracks progress."""

    def __init__(self, config, total):
        self.config = config
        self.bar = None
        # Shared by the JAX workers for their weight initializers (see build_model).
        self.cache_dir = tempfile.mkdtemp(prefix="lnca-bench-jax-cache-") if config.isolate else None
        if config.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, file=sys.stderr, unit="point", desc="benchmark")

    def measure(self, spec, backend, label, timeout):
        if self.bar is not None:
            self.bar.set_postfix_str(f"{backend} {label}")
        if self.config.isolate:
            if backend == "jax":
                spec = dict(spec, jax_cache_dir=self.cache_dir)
            result = run_isolated(spec, backend, timeout=timeout)
        else:
            spec = {k: v for k, v in spec.items() if k != "memory_limit_mb"}
            try:
                result = _measure(spec)
            except Exception as error:
                result = {"status": "error", "error": f"{type(error).__name__}: {error}"}
        return result

    def advance(self, count=1):
        if self.bar is not None:
            self.bar.update(count)

    def close(self):
        if self.bar is not None:
            self.bar.close()
        if self.cache_dir is not None:
            shutil.rmtree(self.cache_dir, ignore_errors=True)


def _inference_spec(config, model, size, repeats):
    return {
        "kind": "inference",
        "model_name": model,
        "size": int(size),
        "batch": config.batch,
        "channels": config.channels,
        "steps": config.steps,
        "repeats": int(repeats),
        "warmup": config.warmup,
        "jit_compile": config.jit_compile,
        "seed": config.seed,
        "memory_limit_mb": config.memory_budget_gb * 1024.0,
    }


def _worker_timeout(config, predicted_seconds=None):
    # Imports, build and compilation take minutes on a loaded 2-core machine.
    extra = 2.0 * predicted_seconds if predicted_seconds else config.time_budget_s
    return 900.0 + 2.0 * config.time_budget_s + extra


def _sweep_model(config, runner, backend, model):
    """Measures one model over the sizes; returns (points, skipped, failed)."""
    budget_mb = config.memory_budget_gb * 1024.0
    points, skipped, failed = [], [], []
    memory_history, latency_history = [], []
    stop_reason = None
    for size in config.sizes:
        pixels = size * size * config.batch
        if stop_reason is not None:
            skipped.append({"model": model, "size": size, "reason": stop_reason})
            runner.advance()
            continue
        predicted_mb = predict_cost(memory_history, pixels)
        predicted_ms = predict_cost(latency_history, pixels)
        repeats = config.repeats
        reason = None
        if predicted_mb is not None and predicted_mb > budget_mb:
            reason = (
                f"skipped: predicted {predicted_mb / 1024:.2f} GB > budget "
                f"{config.memory_budget_gb:g} GB"
            )
        elif predicted_ms is not None:
            seconds = predicted_ms / 1000.0
            affordable = int(config.time_budget_s // seconds) - config.warmup if seconds > 0 else repeats
            if affordable < 1:
                reason = (
                    f"skipped: predicted {seconds * (config.warmup + 1):.0f} s for "
                    f"{config.warmup} warm-up + 1 timed pass > budget {config.time_budget_s:g} s"
                )
            else:
                repeats = max(1, min(repeats, affordable))
        if reason is not None:
            skipped.append(
                {
                    "model": model,
                    "size": size,
                    "reason": reason,
                    "predicted_memory_mb": None if predicted_mb is None else round(predicted_mb, 1),
                    "predicted_latency_ms": None if predicted_ms is None else round(predicted_ms, 1),
                }
            )
            stop_reason = f"not run: size {size} was skipped"
            runner.advance()
            continue
        spec = _inference_spec(config, model, size, repeats)
        seconds = None if predicted_ms is None else predicted_ms / 1000.0 * (config.warmup + repeats)
        result = runner.measure(spec, backend, f"{model} {size}x{size}", _worker_timeout(config, seconds))
        runner.advance()
        status = result.get("status")
        if status == "ok":
            point = dict(result)
            point.pop("status", None)
            if repeats < config.repeats:
                point["note"] = f"{repeats} timed pass(es) (time budget)"
            peak = point.get("peak_memory_mb")
            if peak is not None and peak > budget_mb:
                point["over_budget"] = True
                stop_reason = f"not run: size {size} exceeded the memory budget"
            points.append(point)
            memory_history.append((pixels, peak))
            latency_history.append((pixels, point["latency_ms"]))
        elif status == "over_budget":
            skipped.append(
                {
                    "model": model,
                    "size": size,
                    "reason": (
                        f"aborted: resident memory passed the {config.memory_budget_gb:g} GB "
                        "budget during the run"
                    ),
                    "exceeded_budget": True,
                }
            )
            stop_reason = f"not run: size {size} exceeded the memory budget"
        else:
            failed.append({"model": model, "size": size, "status": status, "error": result.get("error")})
            stop_reason = f"not run: size {size} failed"
    return points, skipped, failed


# Bisection never tries a larger side.
_MAX_TRIAL_SIDE = 65536

# Below this peak, fixed costs and allocator noise dominate a memory fit.
_RELIABLE_FIT_MB = 100.0


def _round_side(side):
    return int(side // 4 * 4)


def _extrapolated_side(points, budget_mb):
    """Side whose predicted peak equals the budget, and a description of the fit."""
    fit = [(p["size"] ** 2 * p["batch"], p["peak_memory_mb"]) for p in points]
    fit = [(px, mb) for px, mb in fit if mb is not None]
    if not fit:
        return None, "no measured point"
    if len(fit) >= 2:
        intercept, slope = _affine(fit)
        sizes = [p["size"] for p in points[-2:]]
        if slope > 0:
            pixels = (budget_mb - intercept) / slope
            how = (
                f"affine fit of peak memory vs pixels through {sizes[0]}^2 and {sizes[1]}^2: "
                f"{slope * 1e6 / 1024:.3f} GB per megapixel + {intercept:.0f} MB"
            )
            if fit[-1][1] < _RELIABLE_FIT_MB:
                how += f" (rough: the largest measured peak is under {_RELIABLE_FIT_MB:.0f} MB)"
            batch = points[-1]["batch"]
            return (_round_side(math.sqrt(max(pixels, 0) / batch)) if pixels > 0 else 0), how
    pixels, mb = fit[-1]
    batch = points[-1]["batch"]
    if mb <= 0:
        return None, "measured peak memory is 0"
    side = math.sqrt(pixels * budget_mb / mb / batch)
    how = f"proportional to pixels from {points[-1]['size']}^2 ({mb:.1f} MB)"
    if mb < _RELIABLE_FIT_MB:
        how += f" (rough: the largest measured peak is under {_RELIABLE_FIT_MB:.0f} MB)"
    return _round_side(side), how


def _max_side(config, runner, backend, model, points, skipped):
    """The largest square side within the memory budget, and how it was found."""
    budget_mb = config.memory_budget_gb * 1024.0
    fitting = [p for p in points if not p.get("over_budget")]
    over = [p["size"] for p in points if p.get("over_budget")]
    over += [s["size"] for s in skipped if s.get("exceeded_budget")]
    lo = max((p["size"] for p in fitting), default=None)
    hi = min(over) if over else None
    side, how = _extrapolated_side(fitting or points, budget_mb)
    details = {"memory_budget_gb": config.memory_budget_gb, "largest_measured_within_budget": lo}
    if hi is not None:
        details["smallest_measured_over_budget"] = hi
    if side is not None:
        if lo is not None:
            side = max(side, lo)
        if hi is not None:
            side = min(side, _round_side(hi - 4))
    details.update({"method": "extrapolated", "fit": how, "side": side})
    if config.max_side != "bisect" or lo is None or side is None:
        return side, details
    return _bisect_side(config, runner, backend, model, points, lo, hi, side, details)


def _bisect_side(config, runner, backend, model, points, lo, hi, guess, details):
    """Bisection over sides with a fresh subprocess per trial (one pass each)."""
    budget_mb = config.memory_budget_gb * 1024.0
    latency_history = [(p["size"] ** 2 * p["batch"], p["latency_ms"]) for p in points]
    trials = []
    stopped = None

    def affordable(side):
        predicted = predict_cost(latency_history, side * side * config.batch)
        return predicted is None or predicted / 1000.0 <= config.time_budget_s

    def trial(side):
        spec = _inference_spec(config, model, side, repeats=0)
        result = runner.measure(spec, backend, f"{model} max-side trial {side}x{side}",
                                _worker_timeout(config))
        if result.get("status") == "ok":
            fits = result["peak_memory_mb"] is not None and result["peak_memory_mb"] <= budget_mb
            trials.append({"size": side, "peak_memory_mb": result["peak_memory_mb"], "fits": fits,
                           "latency_ms": result["latency_ms"]})
            latency_history.append((side * side * config.batch, result["latency_ms"]))
            latency_history.sort()
            return fits
        if result.get("status") == "over_budget":
            trials.append({"size": side, "fits": False, "aborted_over_budget": True})
            return False
        trials.append({"size": side, "error": result.get("error"), "status": result.get("status")})
        return None

    if hi is None:
        hi = _round_side(max(guess * 1.25, lo * 2))
        while True:
            if hi > _MAX_TRIAL_SIDE:
                stopped = f"no trial up to {_MAX_TRIAL_SIDE}^2 exceeded the budget"
                break
            if not affordable(hi):
                stopped = f"a trial at {hi}^2 would exceed the time budget"
                break
            fits = trial(hi)
            if fits is None:
                stopped = f"the trial at {hi}^2 failed"
                break
            if not fits:
                break
            lo, hi = hi, _round_side(hi * 1.5)
    tolerance = max(16, _round_side(0.05 * lo))
    while stopped is None and hi - lo > tolerance:
        mid = _round_side((lo + hi) / 2)
        if mid <= lo:
            break
        if not affordable(mid):
            stopped = f"a trial at {mid}^2 would exceed the time budget"
            break
        fits = trial(mid)
        if fits is None:
            stopped = f"the trial at {mid}^2 failed"
            break
        lo, hi = (mid, hi) if fits else (lo, mid)
    details = dict(details, trials=trials, bracket=[lo, hi])
    if stopped is None:
        details.update(method="bisection", side=lo, fit=f"bisection to within {tolerance} px")
        return lo, details
    side = max(lo, min(guess, _round_side(hi - 4))) if hi is not None else max(lo, guess)
    details.update(
        method="extrapolated",
        side=side,
        bisection=f"stopped: {stopped}; bracket [{lo}, {hi}]",
    )
    return side, details


def _train_step(config, runner, backend, model):
    spec = {
        "kind": "train",
        "model_name": model,
        "size": config.train_size,
        "batch": config.train_batch,
        "channels": config.channels,
        "steps": config.train_steps,
        "repeats": config.train_repeats,
        "warmup": config.train_warmup,
        "jit_compile": config.jit_compile,
        "seed": config.seed,
        "memory_limit_mb": config.memory_budget_gb * 1024.0,
    }
    result = runner.measure(spec, backend, f"{model} train step", _worker_timeout(config))
    runner.advance()
    return result


def compute_ratios(points, max_side, train_steps=None, baseline=BASELINE):
    """Ratios of every LNCA variant against `baseline` at each common size.

    Args:
        points: the measured points (dicts with `model`, `size`,
            `latency_ms`, `peak_memory_mb`, `flops`).
        max_side: `{model: side}`.
        train_steps: optional `{model: train-step result}`.
        baseline: the reference model (pixel ViTCA).

    Returns:
        `{"<lnca>_vs_<baseline>": {"by_size": {size: {...}}, "max_side": r,
        "max_pixels": r, "train_step_latency": r, "train_step_memory": r}}`,
        each `by_size` entry with `latency`, `memory` (peak), `run_memory`
        and `flops` ratios; a ratio < 1 means LNCA needs less;
        `*_reduction_pct` is `100 * (1 - ratio)`.
    """
    by_model = {}
    for point in points:
        by_model.setdefault(point["model"], {})[point["size"]] = point
    reference = by_model.get(baseline, {})
    ratios = {}

    def ratio(a, b):
        if a is None or b is None or b == 0:
            return None
        return round(a / b, 4)

    for model in LNCA_MODELS:
        if model not in by_model or not reference:
            continue
        entry = {"baseline": baseline, "by_size": {}}
        for size in sorted(set(by_model[model]) & set(reference)):
            a, b = by_model[model][size], reference[size]
            row = {
                "latency": ratio(a["latency_ms"], b["latency_ms"]),
                "memory": ratio(a["peak_memory_mb"], b["peak_memory_mb"]),
                "run_memory": ratio(a.get("run_memory_mb"), b.get("run_memory_mb")),
                "flops": ratio(a["flops"], b["flops"]),
            }
            for key in ("latency", "memory"):
                if row[key] is not None:
                    row[f"{key}_reduction_pct"] = round(100.0 * (1.0 - row[key]), 2)
            entry["by_size"][str(size)] = row
        side, ref_side = max_side.get(model), max_side.get(baseline)
        entry["max_side"] = ratio(side, ref_side)
        entry["max_pixels"] = None if entry["max_side"] is None else round(entry["max_side"] ** 2, 3)
        if train_steps and model in train_steps and baseline in train_steps:
            a, b = train_steps[model], train_steps[baseline]
            entry["train_step_latency"] = ratio(a.get("latency_ms"), b.get("latency_ms"))
            entry["train_step_memory"] = ratio(a.get("peak_memory_mb"), b.get("peak_memory_mb"))
        ratios[f"{model}_vs_{baseline}"] = entry
    return ratios


def _run_backend(config, runner, backend):
    points, skipped, failed = [], [], []
    max_side, max_side_details, train_steps = {}, {}, {}
    for model in config.models:
        model_points, model_skipped, model_failed = _sweep_model(config, runner, backend, model)
        points += model_points
        skipped += model_skipped
        failed += model_failed
        if config.max_side != "none":
            side, details = _max_side(config, runner, backend, model, model_points, model_skipped)
            if side is not None:
                max_side[model] = side
            max_side_details[model] = details
        if config.train_step:
            result = _train_step(config, runner, backend, model)
            if result.get("status") == "ok":
                result = {k: v for k, v in result.items() if k != "status"}
                train_steps[model] = result
            else:
                failed.append(
                    {"model": model, "train_step": True, "status": result.get("status"),
                     "error": result.get("error")}
                )
    device = next((p.get("device") for p in points if p.get("device")), None)
    memory_source = next((p.get("memory_source") for p in points), None)
    return {
        "backend": backend,
        "device": device,
        "memory_source": memory_source,
        "points": points,
        "skipped": skipped,
        "failed": failed,
        "train_step": train_steps,
        "max_side": max_side,
        "max_side_details": max_side_details,
        "ratios": compute_ratios(points, max_side, train_steps),
    }


def machine_info():
    """A description of this machine and the installed frameworks."""
    from importlib import metadata

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    try:
        info["cpus_available"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            info["cpu"] = names[0]
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["memory_gb"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    packages = {}
    for name in ("keras", "keras-lnca", "tensorflow", "tensorflow-cpu", "jax", "jaxlib", "torch", "numpy"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    info["packages"] = packages
    return info


def _planned_points(config, backends):
    per_model = len(config.sizes) + (1 if config.train_step else 0)
    return len(backends) * len(config.models) * per_model


def validate_config(config):
    """Raises `ValueError` for settings the benchmark cannot run."""
    if not config.sizes or any(int(s) < 8 for s in config.sizes):
        raise ValueError("sizes must be a non-empty list of sides >= 8 pixels")
    if list(config.sizes) != sorted(set(config.sizes)):
        raise ValueError("sizes must be strictly increasing")
    unknown = [m for m in config.models if m not in MODELS]
    if unknown or not config.models:
        raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    for backend in config.backends or ():
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if config.max_side not in ("extrapolate", "bisect", "none"):
        raise ValueError(f"max_side must be extrapolate, bisect or none, got {config.max_side!r}")
    positive = {
        "steps": config.steps, "repeats": config.repeats, "warmup": config.warmup,
        "memory_budget_gb": config.memory_budget_gb, "time_budget_s": config.time_budget_s,
        "batch": config.batch, "train_size": config.train_size, "train_batch": config.train_batch,
        "train_steps": config.train_steps, "train_repeats": config.train_repeats,
        "train_warmup": config.train_warmup,
    }
    for name, value in positive.items():
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    if config.channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {config.channels}")


def run(config=None, command=None):
    """Runs the efficiency benchmark.

    Args:
        config: an `EfficiencyConfig` (defaults: sizes 32 to 2048, every
            model, the current backend).
        command: the command line to record in the result.

    Returns:
        The result dict (see `write_json` for its layout).

    Example:
    ```python
    result = run(EfficiencyConfig(sizes=(64, 128), models=("lnca_nafca", "pixel_vitca")))
    result["ratios"]["lnca_nafca_vs_pixel_vitca"]["by_size"]["128"]["latency"]
    ```
    """
    config = config or EfficiencyConfig()
    backends = tuple(config.backends or (current_backend(),))
    config = dataclasses.replace(config, backends=backends)
    validate_config(config)
    if not config.isolate and backends != (current_backend(),):
        raise ValueError("in-process runs measure only the current Keras backend")
    runner = _Runner(config, _planned_points(config, backends))
    started = time.time()
    try:
        per_backend = {backend: _run_backend(config, runner, backend) for backend in backends}
    finally:
        runner.close()
    primary = per_backend[backends[0]]
    settings = dataclasses.asdict(config)
    settings.pop("progress")
    result = {
        "machine": dict(machine_info(), device=primary["device"]),
        "backend": backends[0],
        "backends_run": list(backends),
        "command": command,
        "config": settings,
        "methods": {"flops": FLOPS_METHOD, "latency": LATENCY_METHOD, "memory": MEMORY_METHOD},
        "models": {name: {"label": MODELS[name][0], "build": MODELS[name][1]} for name in config.models},
        "points": primary["points"],
        "max_side": primary["max_side"],
        "max_side_details": primary["max_side_details"],
        "ratios": primary["ratios"],
        "train_step": primary["train_step"],
        "skipped": primary["skipped"],
        "failed": primary["failed"],
        "memory_source": primary["memory_source"],
        "seconds": round(time.time() - started, 1),
    }
    if not config.isolate:
        result["memory_isolation"] = "in-process (not a fresh subprocess per point)"
    if len(backends) > 1:
        result["backends"] = per_backend
        result["cross_backend"] = cross_backend(per_backend)
    return result


def cross_backend(per_backend):
    """`{"inference": {model: {size: {backend: {latency_ms, peak_memory_mb}}}},
    "train_step": {model: {backend: {...}}}, "max_side": {model: {backend: px}}}`."""
    table = {"inference": {}, "train_step": {}, "max_side": {}}
    for backend, result in per_backend.items():
        for point in result["points"]:
            cell = table["inference"].setdefault(point["model"], {}).setdefault(str(point["size"]), {})
            cell[backend] = {"latency_ms": point["latency_ms"], "peak_memory_mb": point["peak_memory_mb"]}
        for model, step in result["train_step"].items():
            table["train_step"].setdefault(model, {})[backend] = {
                "latency_ms": step["latency_ms"], "peak_memory_mb": step["peak_memory_mb"]
            }
        for model, side in result["max_side"].items():
            table["max_side"].setdefault(model, {})[backend] = side
    return table


# =========================================================================
# Reports: text, markdown, JSON, plot
# =========================================================================


def _label(model):
    return MODELS.get(model, (model,))[0]


def _num(value, digits=1):
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def _table(headers, rows, markdown):
    rows = [[str(c) for c in row] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()
    out = [line, "  ".join("-" * w for w in widths)]
    last = len(headers) - 1  # the first and last columns are text, the others numbers

    def cell(i, text, width):
        return text.ljust(width) if i in (0, last) else text.rjust(width)

    out += ["  ".join(cell(i, c, w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
            for row in rows]
    return "\n".join(out)


def _backend_sections(result, markdown):
    config = result["config"]
    sections = []
    keyed = []  # (model, size, row)
    for p in result["points"]:
        keyed.append((p["model"], p["size"], [
            f"{p['params']:,}", _num(p["flops"] / 1e9, 2), _num(p["latency_ms"]),
            _num(p["peak_memory_mb"]), _num(p.get("run_memory_mb")),
            ("over budget" if p.get("over_budget") else p.get("note", "")),
        ]))
    for s in result["skipped"]:
        keyed.append((s["model"], s["size"], ["", "", "", "", "", s["reason"]]))
    for f in result["failed"]:
        if not f.get("train_step"):
            keyed.append((f["model"], f["size"], ["", "", "", "", "", f"failed: {f.get('error')}"]))
    order = {m: i for i, m in enumerate(config["models"])}
    keyed.sort(key=lambda item: (order.get(item[0], len(order)), item[1]))
    rows = [[_label(model), f"{size}x{size}"] + row for model, size, row in keyed]
    sections.append(
        f"Inference: batch {config['batch']}, {config['steps']} NCA steps, "
        f"memory source {result.get('memory_source')}\n"
        + _table(["model", "input", "params", "GFLOPs", "latency ms", "peak MB", "run MB", "note"],
                 rows, markdown)
    )
    if result["train_step"] or any(f.get("train_step") for f in result["failed"]):
        rows = [
            [_label(m), _num(s["latency_ms"]), _num(s["peak_memory_mb"]), _num(s.get("run_memory_mb"))]
            for m, s in result["train_step"].items()
        ]
        rows += [[_label(f["model"]), "-", "-", f"failed: {f.get('error')}"]
                 for f in result["failed"] if f.get("train_step")]
        sections.append(
            f"Training step (phase nca): {config['train_size']}x{config['train_size']}, batch "
            f"{config['train_batch']}, {config['train_steps']} NCA steps, through Model.fit\n"
            + _table(["model", "latency ms", "peak MB", "run MB"], rows, markdown)
        )
    if result["max_side_details"]:
        rows = []
        for model, details in result["max_side_details"].items():
            side = result["max_side"].get(model)
            how = details.get("fit", "")
            if details.get("bisection"):
                how += f"; bisection {details['bisection']}"
            rows.append([_label(model), "-" if side is None else f"{side}x{side}", details["method"], how])
        sections.append(
            f"Largest square input within {config['memory_budget_gb']:g} GB\n"
            + _table(["model", "max input", "method", "how"], rows, markdown)
        )
    if result["ratios"]:
        rows, overall = [], []
        for name, entry in result["ratios"].items():
            model = name.split("_vs_")[0]
            for size, r in entry["by_size"].items():
                rows.append([
                    _label(model), f"{size}x{size}", _num(r["latency"], 3),
                    _num(r.get("latency_reduction_pct")), _num(r["memory"], 3),
                    _num(r.get("memory_reduction_pct")), _num(r.get("run_memory"), 3),
                    _num(r["flops"], 3),
                ])
            overall.append([
                _label(model), _num(entry.get("max_side"), 2), _num(entry.get("max_pixels"), 1),
                _num(entry.get("train_step_latency"), 3), _num(entry.get("train_step_memory"), 3),
            ])
        sections.append(
            f"Ratios against {_label(BASELINE)} (LNCA / {_label(BASELINE)}; < 1: LNCA needs less)\n"
            + _table(["model", "input", "latency", "latency -%", "peak memory", "memory -%",
                      "run memory", "FLOPs"], rows, markdown)
        )
        sections.append(
            f"Ratios against {_label(BASELINE)}: largest input (> 1: LNCA restores larger "
            "inputs) and training step\n"
            + _table(["model", "max side", "max pixels", "train latency", "train memory"],
                     overall, markdown)
        )
    return sections


def _cross_backend_sections(result, markdown):
    table = result["cross_backend"]
    backends = result["backends_run"]
    rows = []
    for model, sizes in table["inference"].items():
        for size in sorted(sizes, key=int):
            cell = sizes[size]
            rows.append([_label(model), f"{size}x{size}"]
                        + [_num(cell.get(b, {}).get("latency_ms")) for b in backends]
                        + [_num(cell.get(b, {}).get("peak_memory_mb")) for b in backends])
    for model, cell in table["train_step"].items():
        rows.append([_label(model), "train step"]
                    + [_num(cell.get(b, {}).get("latency_ms")) for b in backends]
                    + [_num(cell.get(b, {}).get("peak_memory_mb")) for b in backends])
    for model, cell in table["max_side"].items():
        rows.append([_label(model), "max side"] + [str(cell.get(b, "-")) for b in backends]
                    + ["" for _ in backends])
    headers = ["model", "input"] + [f"{b} ms" for b in backends] + [f"{b} MB" for b in backends]
    return ["Cross-backend (latency ms, peak MB)\n" + _table(headers, rows, markdown)]


def _header(result, markdown):
    machine = result["machine"]
    cpu = machine.get("cpu", platform.processor() or "cpu")
    cores = machine.get("cpus_available", machine.get("cpu_count"))
    packages = ", ".join(f"{k} {v}" for k, v in machine.get("packages", {}).items())
    lines = [
        f"Machine: {cpu}, {cores} cores, {machine.get('memory_gb', '?')} GB RAM, "
        f"device {machine.get('device')}; {packages}",
    ]
    if result.get("command"):
        lines.insert(0, f"Command: `{result['command']}`" if markdown else f"Command: {result['command']}")
    lines.append(f"FLOPs: {result['methods']['flops']}")
    lines.append(f"Memory: {result['methods']['memory']}")
    if result.get("memory_isolation"):
        lines.append(f"Memory isolation: {result['memory_isolation']}")
    return ("\n\n" if markdown else "\n").join(lines)


def format_report(result, markdown=False):
    """The benchmark as text tables (or markdown with `markdown=True`).

    Args:
        result: the dict returned by `run`.
        markdown: bool, GitHub-flavoured markdown tables (for BENCHMARKS.md).

    Returns:
        str.
    """
    gap = "\n\n"
    title = "## Efficiency benchmark (`lnca benchmark efficiency`)" if markdown else "Efficiency benchmark"
    parts = [title, _header(result, markdown)]
    per_backend = result.get("backends") or {result["backend"]: result}
    for backend, backend_result in per_backend.items():
        merged = dict(result, **{k: backend_result[k] for k in (
            "points", "skipped", "failed", "train_step", "max_side", "max_side_details", "ratios",
            "memory_source") if k in backend_result})
        heading = f"### Backend: {backend}" if markdown else f"== backend: {backend} =="
        device = backend_result.get("device") or result["machine"].get("device")
        parts.append(f"{heading} (device {device})")
        for section in _backend_sections(merged, markdown):
            parts.append(_bold_first_line(section) if markdown else section)
    if result.get("cross_backend"):
        heading = "### Cross-backend" if markdown else "== cross-backend =="
        parts.append(heading)
        parts += _cross_backend_sections(result, markdown)
    return gap.join(parts) + "\n"


def _bold_first_line(section):
    first, _, rest = section.partition("\n")
    return f"**{first}**\n\n{rest}"


def _atomic_write(path, write):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".lnca-", suffix=os.path.splitext(path)[1])
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path, result):
    """Writes the result as JSON (atomically).

    Layout (DESIGN.md): `{"machine", "backend", "points": [{"model", "size",
    "batch", "params", "flops", "latency_ms", "peak_memory_mb",
    "memory_source", ...}], "max_side": {model: px}, "ratios": {...}}`, plus
    `train_step`, `skipped`, `failed`, `max_side_details`, `methods`,
    `config`, `command`, and with several backends `backends` (each
    backend's full result) and `cross_backend`; the top-level figures are
    the first backend's.
    """

    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")

    _atomic_write(path, write)


def write_markdown(path, result):
    """Writes `format_report(result, markdown=True)` (atomically)."""

    def write(tmp):
        with open(tmp, "w") as f:
            f.write(format_report(result, markdown=True))

    _atomic_write(path, write)


def plot(path, result):
    """Writes a PNG: latency and peak memory against input size, log-log.

    One line per model (and line style per backend); the memory budget is a
    dashed horizontal line.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    per_backend = result.get("backends") or {result["backend"]: result}
    styles = ["-", "--", ":", "-."]
    colors = {model: f"C{i}" for i, model in enumerate(MODELS)}
    fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(12, 4.8))
    sizes_plotted = set()
    for b_index, (backend, backend_result) in enumerate(per_backend.items()):
        for model in result["config"]["models"]:
            points = sorted((p for p in backend_result["points"] if p["model"] == model),
                            key=lambda p: p["size"])
            if not points:
                continue
            sizes = [p["size"] for p in points]
            sizes_plotted.update(sizes)
            label = _label(model) + (f" ({backend})" if len(per_backend) > 1 else "")
            style = dict(color=colors.get(model), linestyle=styles[b_index % len(styles)], marker="o")
            ax_time.plot(sizes, [p["latency_ms"] / 1000.0 for p in points], label=label, **style)
            memory = [(p["size"], p["peak_memory_mb"]) for p in points
                      if p["peak_memory_mb"] is not None and p["peak_memory_mb"] > 0]
            if memory:
                ax_mem.plot(*zip(*memory), label=label, **style)
    budget = result["config"]["memory_budget_gb"] * 1024.0
    ax_mem.axhline(budget, color="gray", linestyle="--", linewidth=1,
                   label=f"budget {result['config']['memory_budget_gb']:g} GB")
    steps = result["config"]["steps"]
    for ax, ylabel, title in (
        (ax_time, "latency (s)", f"Inference latency ({steps} steps, batch {result['config']['batch']})"),
        (ax_mem, "peak memory (MB)", "Peak inference memory"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        if sizes_plotted:
            ax.set_xticks(sorted(sizes_plotted), [str(size) for size in sorted(sizes_plotted)])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("input side (pixels)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    backends = ", ".join(result.get("backends_run") or [result["backend"]])
    fig.suptitle(f"lnca benchmark efficiency: {backends}, device {result['machine'].get('device')}")
    fig.tight_layout()

    def write(tmp):
        fig.savefig(tmp, format="png", dpi=110)

    try:
        _atomic_write(path, write)
    finally:
        plt.close(fig)
