"""Backend-specific helpers, kept in one small module.

Everything in keras-lnca that has to know which framework sits under Keras
(TensorFlow, JAX or PyTorch) lives here, so the rest of the package can stay
on `keras.ops`. Every helper degrades gracefully: a backend or device that
cannot provide a figure yields `None` (or `False`), never an exception.

Data parallelism
----------------
`replica_context()`, `replica_draw()` and `scale_loss_for_replicas()` let the
model's training step run on each replica of a `tf.distribute` strategy
(`MirroredStrategy`), where the step sees only its slice of the global batch;
`distribution_scope(model)` re-enters the strategy a model was created under.
Elsewhere (one device, JAX `keras.distribution.DataParallel`, whose compiled
step sees the global batch, PyTorch) they are the identity.

Padding with unknown shapes
---------------------------
`pad_to_multiple(x, multiple)` reflect-pads NHWC images to a multiple of the
model's cell size, also inside TensorFlow graphs whose height and width are
unknown (where `keras.ops.pad` wants static pad widths).

Peak memory
-----------
`memory_source()`, `reset_peak_memory()` and `peak_memory_bytes()` measure the
peak memory of a window of work:

```python
from keras_lnca import backend_utils

backend_utils.reset_peak_memory()
run_something()
peak = backend_utils.peak_memory_bytes()  # int bytes, or None
source = backend_utils.memory_source()    # e.g. "process_vmhwm"
```

The source is chosen once per call, in this order:

| source | what is measured | resettable |
| --- | --- | --- |
| `"tensorflow_gpu"` | TF allocator peak, summed over visible GPUs | yes |
| `"jax_device"` | `peak_bytes_in_use` summed over non-CPU JAX devices | no: peak since process start |
| `"torch_cuda"` | `torch.cuda.max_memory_allocated`, summed over GPUs | yes |
| `"process_vmhwm"` | process peak RSS, `VmHWM` in `/proc/self/status` | yes, via `/proc/self/clear_refs` |
| `"process_maxrss"` | `resource.getrusage(...).ru_maxrss` | no: peak since process start |
| `"process_rss"` | psutil: Windows `peak_wset`, else current RSS | no (current RSS is a sample, not a peak) |
| `"none"` | nothing available | - |

GPU sources count only device memory owned by the framework allocator; the
process sources count all host memory of the process (framework, numpy,
Python), including what was already resident before the window started.
"""

import contextlib
import os
import sys

import keras
from keras import ops

# =========================================================================
# Peak memory (used by `keras_lnca.callbacks.ProfilerCallback` and the
# efficiency benchmarks).
# =========================================================================

# Stable numeric codes for the sources: `MEMORY_SOURCES.index(name)`. Logs
# of Keras callbacks must be numeric, so callbacks record this code. Append
# new sources at the end; never reorder.
MEMORY_SOURCES = (
    "none",
    "tensorflow_gpu",
    "jax_device",
    "torch_cuda",
    "process_vmhwm",
    "process_maxrss",
    "process_rss",
)

_PROC_STATUS = "/proc/self/status"
_PROC_CLEAR_REFS = "/proc/self/clear_refs"


def memory_source_code(source):
    """Returns the stable integer code of a memory source name.

    Args:
        source: one of `MEMORY_SOURCES`.

    Returns:
        The index of `source` in `MEMORY_SOURCES`.

    Example:

    >>> memory_source_code("process_vmhwm")
    4
    """
    try:
        return MEMORY_SOURCES.index(source)
    except ValueError:
        raise ValueError(
            f"Unknown memory source {source!r}; expected one of "
            f"{MEMORY_SOURCES}."
        ) from None


def memory_source(backend=None):
    """Names where `peak_memory_bytes()` reads its figure.

    A GPU (or other accelerator) of the active framework wins; otherwise the
    process's host memory is measured.

    Args:
        backend: `"tensorflow"`, `"jax"` or `"torch"`. Defaults to
            `keras.backend.backend()`.

    Returns:
        One of `MEMORY_SOURCES`.

    Example:

    >>> memory_source() in MEMORY_SOURCES
    True
    """
    backend = backend or keras.backend.backend()
    if _device_peak_bytes(backend) is not None:
        return _DEVICE_SOURCES[backend]
    return _process_source()


def reset_peak_memory(backend=None):
    """Starts a new peak-memory window.

    Args:
        backend: `"tensorflow"`, `"jax"` or `"torch"`. Defaults to
            `keras.backend.backend()`.

    Returns:
        `True` if the peak of the current source was reset, `False` if the
        source keeps a lifetime peak (see the module docstring) or nothing
        is measurable.

    Example:

    >>> reset_peak_memory()  # e.g. True on Linux
    True
    """
    backend = backend or keras.backend.backend()
    source = memory_source(backend)
    try:
        if source == "tensorflow_gpu":
            import tensorflow as tf

            for name in _tf_gpu_names():
                tf.config.experimental.reset_memory_stats(name)
            return True
        if source == "torch_cuda":
            import torch

            for index in range(torch.cuda.device_count()):
                torch.cuda.reset_peak_memory_stats(index)
            return True
        if source == "process_vmhwm":
            with open(_PROC_CLEAR_REFS, "w") as f:
                f.write("5")
            return True
    except Exception:
        return False
    return False


def peak_memory_bytes(backend=None):
    """Peak memory in bytes since the last `reset_peak_memory()`.

    Args:
        backend: `"tensorflow"`, `"jax"` or `"torch"`. Defaults to
            `keras.backend.backend()`.

    Returns:
        An `int` number of bytes, or `None` when no figure is available.
        See `memory_source()` for what is measured.

    Example:

    >>> import numpy as np
    >>> reset_peak_memory()
    True
    >>> x = np.ones(2**27)  # 1 GiB, touched
    >>> peak_memory_bytes() >= 2**30
    True
    """
    backend = backend or keras.backend.backend()
    peak = _device_peak_bytes(backend)
    if peak is not None:
        return peak
    return _process_peak_bytes()[1]


# --- peak memory: accelerators -------------------------------------------


def _tf_gpu_names():
    import tensorflow as tf

    return [
        device.name.replace("/device:", "")
        for device in tf.config.list_logical_devices("GPU")
    ]


def _tf_gpu_peak():
    import tensorflow as tf

    names = _tf_gpu_names()
    if not names:
        return None
    return sum(
        int(tf.config.experimental.get_memory_info(name)["peak"])
        for name in names
    )


def _jax_device_peak():
    import jax

    peaks = []
    for device in jax.local_devices():
        if device.platform == "cpu":
            continue
        stats = device.memory_stats()
        if stats and "peak_bytes_in_use" in stats:
            peaks.append(int(stats["peak_bytes_in_use"]))
    return sum(peaks) if peaks else None


def _torch_cuda_peak():
    import torch

    if not torch.cuda.is_available():
        return None
    return sum(
        int(torch.cuda.max_memory_allocated(index))
        for index in range(torch.cuda.device_count())
    )


_DEVICE_READERS = {
    "tensorflow": _tf_gpu_peak,
    "jax": _jax_device_peak,
    "torch": _torch_cuda_peak,
}
_DEVICE_SOURCES = {
    "tensorflow": "tensorflow_gpu",
    "jax": "jax_device",
    "torch": "torch_cuda",
}


def _device_peak_bytes(backend):
    reader = _DEVICE_READERS.get(backend)
    if reader is None:
        return None
    try:
        return reader()
    except Exception:
        return None


# --- peak memory: host process -------------------------------------------


def _read_vmhwm():
    with open(_PROC_STATUS) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                value, unit = line.split()[1:3]
                if unit.lower() != "kb":
                    raise ValueError(f"Unexpected VmHWM unit {unit!r}")
                return int(value) * 1024
    raise ValueError("No VmHWM in /proc/self/status")


def _read_maxrss():
    import resource

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return int(maxrss) if sys.platform == "darwin" else int(maxrss) * 1024


def _read_psutil():
    import psutil

    info = psutil.Process(os.getpid()).memory_info()
    return int(getattr(info, "peak_wset", info.rss))


_PROCESS_READERS = (
    ("process_vmhwm", _read_vmhwm),
    ("process_maxrss", _read_maxrss),
    ("process_rss", _read_psutil),
)


def _process_peak_bytes():
    """Returns `(source, bytes)` from the first host reader that works."""
    for source, reader in _PROCESS_READERS:
        try:
            return source, reader()
        except Exception:
            continue
    return "none", None


def _process_source():
    return _process_peak_bytes()[0]


# ---------------------------------------------------------------------------
# Padding with unknown shapes
# ---------------------------------------------------------------------------


def pad_to_multiple(x, multiple):
    """Reflect-pads the bottom and right of NHWC `x` to a multiple of `multiple`.

    Returns the padded tensor. With static spatial sizes (JAX, torch, most
    TensorFlow traces) the pad amounts are Python ints; TensorFlow graphs with
    unknown height/width get the same padding through `tf.pad`, because
    `keras.ops.pad` wants static pad widths.
    """
    if multiple == 1:
        return x
    height, width = x.shape[1], x.shape[2]
    if height is not None and width is not None:
        pad_h, pad_w = -height % multiple, -width % multiple
        if pad_h == 0 and pad_w == 0:
            return x
        mode = "reflect" if height > pad_h and width > pad_w else "constant"
        return ops.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode=mode)
    if keras.backend.backend() != "tensorflow":
        raise ValueError("Spatial dimensions must be known outside TensorFlow graphs.")
    import tensorflow as tf

    shape = tf.shape(x)
    pad_h, pad_w = -shape[1] % multiple, -shape[2] % multiple
    padded = tf.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="REFLECT")
    # tf.pad with run-time amounts loses the static channel count, which the
    # TFLite converter needs for builtin convolutions: restore it by a reshape.
    shape = tf.shape(padded)
    return tf.reshape(padded, tf.stack([shape[0], shape[1], shape[2], x.shape[-1]]))


# ---------------------------------------------------------------------------
# Data parallelism (tf.distribute)
# ---------------------------------------------------------------------------


def replica_context():
    """Returns `(replica_id, num_replicas)` of the running training replica.

    Under a `tf.distribute` strategy with several replicas, each replica runs
    the training step on its own slice of the global batch: `replica_id` is
    then an int32 scalar tensor. Everywhere else (one device, a cross-replica
    context, JAX `DataParallel` whose step sees the global batch, PyTorch)
    this returns `(0, 1)`.
    """
    if keras.backend.backend() != "tensorflow":
        return 0, 1
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return 0, 1
    return context.replica_id_in_sync_group, context.num_replicas_in_sync


def replica_draw(draw, batch, axis=0):
    """Draws random values for the global batch and keeps this replica's rows.

    Keras seed generators are mirrored under `tf.distribute`: every replica
    holds the same seed state, so per-sample draws made for the local batch
    would repeat on every replica. Drawing for all `num_replicas * batch`
    samples and keeping this replica's slice gives each sample its own
    numbers, the very ones a single device draws for the same global batch.

    Args:
        draw: callable `draw(n)` returning random values with `n` entries
            along `axis`.
        batch: int or scalar tensor, this replica's batch size.
        axis: int, the batch axis of the drawn values.

    Returns:
        The rows `[replica_id * batch, (replica_id + 1) * batch)` of
        `draw(num_replicas * batch)` along `axis`; `draw(batch)` with a
        single replica.
    """
    replica, replicas = replica_context()
    if replicas == 1:
        return draw(batch)
    values = draw(replicas * batch)
    start = [0] * len(values.shape)
    start[axis] = replica * batch
    size = list(ops.shape(values))
    size[axis] = batch
    return ops.slice(values, start, size)


def distribution_scope(model):
    """Re-enters the `tf.distribute` strategy `model` was created under.

    A TensorFlow model must be compiled (its optimizer created) inside the
    scope of the strategy it trains with; `NCAModel.compile` and `set_phase`
    use this so that a phase switch outside `strategy.scope()` still works.
    A no-op context elsewhere.
    """
    if keras.backend.backend() != "tensorflow":
        return contextlib.nullcontext()
    return model.distribute_strategy.scope()


def scale_loss_for_replicas(loss):
    """Divides a replica's loss by the number of replicas in sync.

    `tf.distribute` sums the replicas' gradients, so a loss averaged over a
    replica's slice must be divided by the replica count to give the
    gradient of the global-batch mean (what Keras does for compiled losses;
    its trainer multiplies the reported loss back). The identity elsewhere.
    """
    _, replicas = replica_context()
    if replicas == 1:
        return loss
    return loss * (1.0 / replicas)
