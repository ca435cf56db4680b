"""The benchmark's settings (`EfficiencyConfig`), their validation, and the worker specs they give."""

import dataclasses

from keras_lnca.benchmarks.efficiency.models import MODELS

BACKENDS = ("tensorflow", "jax", "torch")
BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}

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
            (`"auto"`: as Keras, i.e. only with a GPU; see `compiled.compiled_forward`).
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


def _spec(config, kind, model, **fields):
    """A worker spec: what every measurement shares, plus `fields`."""
    return dict(kind=kind, model_name=model, channels=config.channels, jit_compile=config.jit_compile,
                seed=config.seed, memory_limit_mb=config.memory_budget_gb * 1024.0, **fields)


def inference_spec(config, model, size, repeats):
    """The worker spec of one inference point (`measure_inference`'s arguments)."""
    return _spec(config, "inference", model, size=int(size), batch=config.batch, steps=config.steps,
                 repeats=int(repeats), warmup=config.warmup)


def train_spec(config, model):
    """The worker spec of a model's training step (`measure_train_step`'s arguments)."""
    return _spec(config, "train", model, size=config.train_size, batch=config.train_batch,
                 steps=config.train_steps, repeats=config.train_repeats, warmup=config.train_warmup)


def worker_timeout(config, predicted_seconds=None):
    """Seconds before a worker is killed: 900 for imports, build and compilation (minutes on a
    loaded 2-core machine), twice the time budget, and twice the predicted passes (or the budget)."""
    extra = 2.0 * predicted_seconds if predicted_seconds else config.time_budget_s
    return 900.0 + 2.0 * config.time_budget_s + extra
