"""Peak memory of a window of work, and the device's name, as each backend reports them.

The benchmarks (`efficiency`, `large`) and `keras_lnca.callbacks.ProfilerCallback`
measure through these helpers, which hold every framework-specific query they
need. Each degrades gracefully: a backend or device that cannot provide a
figure yields `None` (or `False`), never an exception. A `backend` argument is
`"tensorflow"`, `"jax"` or `"torch"`, by default `keras.backend.backend()`.

```python
from keras_lnca import memory_probe

memory_probe.reset_peak_memory()
run_something()
peak = memory_probe.peak_memory_bytes()  # int bytes, or None
source = memory_probe.memory_source()    # e.g. "process_vmhwm"
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

import gc
import os
import sys

# Stable numeric codes for the sources: `MEMORY_SOURCES.index(name)`. Logs
# of Keras callbacks must be numeric, so callbacks record this code. Append
# new sources at the end; never reorder.
MEMORY_SOURCES = (
    "none", "tensorflow_gpu", "jax_device", "torch_cuda", "process_vmhwm", "process_maxrss", "process_rss",
)

MIB = float(2**20)

_PROC_STATUS = "/proc/self/status"
_PROC_CLEAR_REFS = "/proc/self/clear_refs"


def _backend(backend):
    if backend:
        return backend
    import keras

    return keras.backend.backend()


def memory_source_code(source):
    """The stable integer code of a memory source name (its index in `MEMORY_SOURCES`).

    >>> memory_source_code("process_vmhwm")
    4
    """
    try:
        return MEMORY_SOURCES.index(source)
    except ValueError:
        raise ValueError(f"Unknown memory source {source!r}; expected one of {MEMORY_SOURCES}.") from None


def memory_source(backend=None):
    """Names where `peak_memory_bytes()` reads its figure, one of `MEMORY_SOURCES`.

    A GPU (or other accelerator) of the active framework wins; otherwise the
    process's host memory is measured.
    """
    backend = _backend(backend)
    if _device_peak_bytes(backend) is not None:
        return _DEVICES[backend][0]
    return _process_peak_bytes()[0]


def reset_peak_memory(backend=None):
    """Starts a new peak-memory window.

    Returns:
        `True` if the peak of the current source was reset, `False` if the
        source keeps a lifetime peak (see the module docstring) or nothing
        is measurable.
    """
    source = memory_source(_backend(backend))
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
    """Peak memory in bytes since the last `reset_peak_memory()` (an `int`), or `None`.

    See `memory_source()` for what is measured.

    >>> import numpy as np
    >>> reset_peak_memory()
    True
    >>> x = np.ones(2**27)  # 1 GiB, touched
    >>> peak_memory_bytes() >= 2**30
    True
    """
    peak = _device_peak_bytes(_backend(backend))
    if peak is not None:
        return peak
    return _process_peak_bytes()[1]


def release_free_memory():
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


def proc_status_bytes(key):
    """Bytes of a kB field of `/proc/self/status` (e.g. `"VmRSS"`), or None where unavailable."""
    try:
        with open(_PROC_STATUS) as f:
            for line in f:
                if line.startswith(key + ":"):
                    value, unit = line.split()[1:3]
                    return int(value) * 1024 if unit.lower() == "kb" else None
    except OSError:
        pass
    return None


def device_name(backend=None):
    """The device the backend computes on: `"cpu"`, a GPU's name or count, or `"unknown"`."""
    backend = _backend(backend)
    try:
        if backend == "tensorflow":
            gpus = _tf_gpu_names()
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


class PeakMemory:
    """Peak memory of a process phase by phase, through this module's probes.

    `baseline` is the level when created (after imports and model build).
    `window()` starts a phase: it releases free memory, resets the peak and
    returns the phase's starting level; `peak()` reads the peak since then.
    `highest` keeps the largest peak seen over all phases.
    """

    def __init__(self):
        self.source = memory_source()
        self.baseline = self.window()
        self.resettable = self._resettable
        self.highest = self.baseline

    def window(self):
        release_free_memory()
        self._resettable = reset_peak_memory()
        return peak_memory_bytes()

    def peak(self):
        value = peak_memory_bytes()
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


# --- accelerators ----------------------------------------------------------


def _tf_gpu_names():
    import tensorflow as tf

    return [device.name.replace("/device:", "") for device in tf.config.list_logical_devices("GPU")]


def _tf_gpu_peak():
    import tensorflow as tf

    names = _tf_gpu_names()
    if not names:
        return None
    return sum(int(tf.config.experimental.get_memory_info(name)["peak"]) for name in names)


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
    return sum(int(torch.cuda.max_memory_allocated(i)) for i in range(torch.cuda.device_count()))


# backend -> (source, reader)
_DEVICES = {
    "tensorflow": ("tensorflow_gpu", _tf_gpu_peak),
    "jax": ("jax_device", _jax_device_peak),
    "torch": ("torch_cuda", _torch_cuda_peak),
}


def _device_peak_bytes(backend):
    if backend not in _DEVICES:
        return None
    try:
        return _DEVICES[backend][1]()
    except Exception:
        return None


# --- host process ----------------------------------------------------------


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
    ("process_vmhwm", lambda: proc_status_bytes("VmHWM")),
    ("process_maxrss", _read_maxrss),
    ("process_rss", _read_psutil),
)


def _process_peak_bytes():
    """`(source, bytes)` from the first host reader that gives a figure."""
    for source, reader in _PROCESS_READERS:
        try:
            value = reader()
        except Exception:
            continue
        if value is not None:
            return source, value
    return "none", None
