"""Large-image restoration: peak memory and wall time (`lnca benchmark large`).

What `model.restore` costs on one big image, untiled and tiled, with a
trained preset (by default `lnca_denoise_gray_s25`, 64 steps). Each point
is a square side, optionally with a tile size (`"4096@1024"`: a 4096x4096
image restored in 1024-pixel tiles, each read with the model's receptive
radius of context, see `keras_lnca.tiling`), measured in a **fresh Python
subprocess** so that no point inherits another's memory or compiled
functions:

* the worker loads the model, makes a synthetic noisy image (a smooth
  pattern plus Gaussian noise of sigma 25/255, float32, seeded: the content
  does not change the cost), returns free heap memory to the OS, resets the
  peak and reads the level (`baseline_memory_mb`: framework, model and
  input image);
* it calls `model.restore(image, steps=..., tile=...)` `repeats` times;
  `seconds` is the first call's wall time (compilation included, what a
  one-off restoration costs), `seconds_runs` every call's, and with
  `repeats > 1` `warm_seconds` the median of the later calls;
* `peak_memory_mb` is the peak over the calls, read through
  `keras_lnca.memory_probe` (on CPU the process's `VmHWM`, reset through
  `/proc/self/clear_refs`: every byte of the process, framework and input
  included; on a GPU the framework allocator's device peak);
  `restore_memory_mb` is the peak minus the baseline: what restoring took
  on top of holding the model and the image. `memory_source` names the
  source;
* the output is checked (same shape, finite values) and `windows` counts
  the tile windows (1 untiled).

The default points are 1024, 4096 untiled, 4096 and 8192 in 1024-pixel
tiles. On a 2-core CPU the large points take many minutes each (8192 tiled:
64 windows of about 1564x1564 pixels at 64 steps), so `timeout_s` bounds
each worker.

Example:
```python
from keras_lnca.benchmarks import large

result = large.run(large.parse_points("256,512@256"), steps=16)
print(large.format_table(result))
large.write_json("large.json", result)
```
"""

import json
import math
import os
import time

import numpy as np

from keras_lnca import memory_probe
from keras_lnca.benchmarks._worker import run_worker
from keras_lnca.benchmarks._worker import serve
from keras_lnca.data.io import atomic_write
from keras_lnca.errors import UserError

DEFAULT_PRESET = "lnca_denoise_gray_s25"
DEFAULT_POINTS = "1024,4096,4096@1024,8192@1024"


def parse_points(text):
    """Parses `SIZE[@TILE],...` into points.

    Args:
        text: e.g. `"1024,4096,4096@1024,4000x3000@auto"`: square sides or
            `HEIGHTxWIDTH` in pixels, each optionally with a tile size after
            `@`, or `@auto` for what `restore` does by default (one piece
            within its memory budget, else tiles that fit). Without `@` the
            image is restored in one piece whatever its size.

    Returns:
        A list of `{"size": int or [height, width], "tile": int, "auto" or
        None}`, in the given order, repeats removed.

    Raises:
        keras_lnca.errors.UserError: an empty list, a malformed entry, or
            a size or tile below 8 pixels.

    Example:

    >>> parse_points("64,128@64,48x64@auto")
    [{'size': 64, 'tile': None}, {'size': 128, 'tile': 64}, {'size': [48, 64], 'tile': 'auto'}]
    """
    entries = [part.strip() for part in str(text).split(",")]
    if not any(entries):
        raise UserError(f"--points needs SIZE or SIZE@TILE entries separated by commas, got {text!r}")
    points = []
    for entry in entries:
        size, at, tile = entry.partition("@")
        try:
            sides = [int(side) for side in size.lower().split("x")]
            tile = (tile if tile == "auto" else int(tile)) if at else None
        except ValueError:
            raise UserError(f"--points entries are SIZE, HxW, SIZE@TILE or SIZE@auto (integers), "
                            f"got {entry!r}") from None
        if len(sides) not in (1, 2) or min(sides) < 8 or (isinstance(tile, int) and tile < 8):
            raise UserError(f"--points sizes and tiles must be >= 8 pixels, got {entry!r}")
        point = {"size": sides[0] if len(sides) == 1 else sides, "tile": tile}
        if point not in points:
            points.append(point)
    return points


def image_shape(point):
    """`(height, width)` of a point's image."""
    size = point["size"]
    return (size, size) if isinstance(size, int) else tuple(size)


def size_label(point):
    """`"4096²"` for a square, `"4000x3000 (12.0 MP)"` otherwise."""
    height, width = image_shape(point)
    if height == width:
        return f"{height}²"
    return f"{height}x{width} ({height * width / 1e6:.1f} MP)"


def point_label(point):
    """`"4096x4096"`, `"4096x4096, tiles of 1024"` or `"4000x3000, auto"`."""
    height, width = image_shape(point)
    label = f"{height}x{width}"
    if point.get("tile") is None:
        return label
    return f"{label}, auto" if point["tile"] == "auto" else f"{label}, tiles of {point['tile']}"


def synthetic_image(size, channels=1, seed=0, sigma=25.0):
    """A float32 noisy test image: a smooth pattern plus Gaussian noise.

    Args:
        size: int, the square side, or `(height, width)`.
        channels: 1 (shape `(height, width)`) or 3 (`(height, width, 3)`).
        seed: int, the noise seed.
        sigma: float, noise standard deviation on the 0-255 scale.

    Returns:
        A float32 array, unclipped (as evaluation's noisy inputs).
    """
    height, width = (size, size) if isinstance(size, int) else size
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)
    columns = np.linspace(0.0, 1.0, width, dtype=np.float32)
    clean = 0.5 + 0.25 * np.sin(16 * np.pi * columns)[None, :] * np.cos(12 * np.pi * rows)[:, None]
    if channels != 1:
        clean = np.repeat(clean[..., None], channels, axis=-1)
    noise = np.random.default_rng(seed).standard_normal(clean.shape, dtype=np.float32)
    return clean + noise * np.float32(sigma / 255.0)


# `memory_budget_mb` of a point restored in one piece whatever its size.
_UNBOUNDED_MB = 2.0**40


def _restore_options(point):
    """`restore` keywords of a point: a tile, the default budget, or one piece."""
    tile = point.get("tile")
    if tile == "auto":
        return {}
    if tile is None:
        return {"memory_budget_mb": _UNBOUNDED_MB}
    return {"tile": tile}


def _tile_used(model, point, steps, channels):
    """The tile size `restore` uses for a point (None: one piece)."""
    from keras_lnca import tiling
    from keras_lnca.models.restore_mixin import memory_budget

    options = _restore_options(point)
    shape = (1, *image_shape(point), model.input_channels)
    return tiling.choose_tile(model, shape, steps, options.get("tile"),
                              memory_budget(options.get("memory_budget_mb")))


def _windows(model, tile, point, steps):
    if tile is None:
        return 1
    from keras_lnca import tiling

    margin = model.receptive_radius(steps)
    height, width = image_shape(point)
    return (len(tiling.tile_windows(height, tile, margin, model.grid_factor))
            * len(tiling.tile_windows(width, tile, margin, model.grid_factor)))


def measure(point, model="lnca_denoise_gray_s25", steps=None, repeats=1, seed=0):
    """Measures one point in this process (the worker calls it).

    Args:
        point: from `parse_points`.
        model: a preset name or a `.keras` path.
        steps: NCA steps (default: the model's `inference_steps`).
        repeats: calls of `model.restore`.
        seed: noise seed of the synthetic image.

    Returns:
        A dict with `status` "ok" and the figures of the module docstring.
    """
    import keras

    from keras_lnca.models import presets

    started = time.perf_counter()
    restorer = presets.load(model, training=False)
    load_seconds = time.perf_counter() - started
    steps = restorer.inference_steps if steps is None else int(steps)
    image = synthetic_image(image_shape(point), restorer.channels, seed)
    tile = _tile_used(restorer, point, steps, restorer.channels)

    memory = memory_probe.PeakMemory()  # frees heap memory, resets the peak, reads the baseline
    baseline = memory.baseline
    runs = []
    for _ in range(int(repeats)):
        start = time.perf_counter()
        restored = restorer.restore(image, steps=steps, **_restore_options(point))
        runs.append(time.perf_counter() - start)
        if len(runs) < repeats:
            del restored
    peak = memory.peak()

    def mb(value):
        return None if value is None else round(value / memory_probe.MIB, 1)

    return {
        "status": "ok",
        "size": point["size"],
        "tile": point.get("tile"),
        "model": str(model),
        "steps": steps,
        "channels": restorer.channels,
        "tile_used": tile,
        "windows": _windows(restorer, tile, point, steps),
        "margin": restorer.receptive_radius(steps) if tile else None,
        "seconds": runs[0],
        "seconds_runs": runs,
        "warm_seconds": float(np.median(runs[1:])) if len(runs) > 1 else None,
        "load_seconds": load_seconds,
        "peak_memory_mb": mb(peak),
        "baseline_memory_mb": mb(baseline),
        "restore_memory_mb": None if peak is None or baseline is None else mb(max(0, peak - baseline)),
        "memory_source": memory.source,
        "peak_resettable": bool(memory.resettable),
        "output_shape": list(restored.shape),
        "output_ok": restored.shape == image.shape and bool(np.all(np.isfinite(restored))),
        "backend": keras.backend.backend(),
    }


# =========================================================================
# The worker subprocess
# =========================================================================


def worker_main(argv=None):
    """Entry point of a measurement subprocess: `SPEC_JSON RESULT_PATH`.

    Runs `measure(**spec)` and writes its result as JSON; an exception is
    written as `{"status": "error", "error": ...}` (exit status 1).
    """
    return serve(lambda spec, _: measure(**spec), argv)


_WORKER_CODE = "import sys; from keras_lnca.benchmarks import large; sys.exit(large.worker_main())"


def run_isolated(spec, timeout_s=None):
    """Runs `measure(**spec)` in a fresh Python process (same `KERAS_BACKEND`).

    Returns:
        The worker's result; `status` is "ok", "error" or "timeout".
    """
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return run_worker(_WORKER_CODE, spec, env, timeout_s, prefix="lnca-large-")


# =========================================================================
# Orchestration and reports
# =========================================================================


def run(points, model=DEFAULT_PRESET, steps=None, repeats=1, *, seed=0, timeout_s=None,
        isolate=True, command=None, progress=print):
    """Measures every point, each in a fresh subprocess.

    Args:
        points: from `parse_points`.
        model: a preset name or a `.keras` path.
        steps: NCA steps (default: the model's).
        repeats: `model.restore` calls per point (the first compiles).
        seed: noise seed of the synthetic images.
        timeout_s: seconds before a worker is killed (None: no limit).
        isolate: False measures in this process (tests only: the memory
            figures are then not isolated).
        command: the command line, recorded in the result.
        progress: called with a line per finished point (None: silent).

    Returns:
        `{"benchmark": "large", "model", "steps", "repeats", "backend",
        "machine", "command", "points": [{"size", "tile", "status",
        "seconds", "peak_memory_mb", "restore_memory_mb",
        "baseline_memory_mb", "memory_source", "windows", ...}]}`; a point
        that failed has `status` "error" or "timeout" and an `error`.
    """
    from keras_lnca.benchmarks.efficiency import current_backend
    from keras_lnca.benchmarks.efficiency import machine_info

    if int(repeats) < 1:
        raise UserError(f"repeats must be >= 1, got {repeats}")
    results = []
    for point in points:
        spec = {"point": dict(point), "model": str(model), "steps": steps, "repeats": int(repeats),
                "seed": int(seed)}
        if isolate:
            result = run_isolated(spec, timeout_s)
        else:
            try:
                result = measure(**spec)
            except Exception as error:
                result = {"status": "error", "error": f"{type(error).__name__}: {error}"}
        result = {"size": point["size"], "tile": point.get("tile"), **result}
        results.append(result)
        if progress:
            progress(_progress_line(result))
    return {
        "benchmark": "large",
        "model": str(model),
        "steps": steps,
        "repeats": int(repeats),
        "seed": int(seed),
        "backend": current_backend(),
        "isolation": "a fresh subprocess per point" if isolate else "in-process (not isolated)",
        "machine": machine_info(),
        "command": command,
        "points": results,
    }


def _progress_line(result):
    if result["status"] != "ok":
        return f"{point_label(result)}: {result['status']}: {result.get('error')}"
    return (f"{point_label(result)}: {result['seconds']:.2f} s, peak {_num(result['peak_memory_mb'], '.0f')} MB "
            f"({_num(result['restore_memory_mb'], '.0f')} MB above the loaded model and image)")


def _num(value, spec):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def _rows(result):
    rows = []
    for p in result["points"]:
        if p.get("tile") is None:
            tile = "untiled"
        elif p["tile"] == "auto":
            used = p.get("tile_used")
            tile = "auto: one piece" if used is None else f"auto: {used} ({p.get('windows', '?')} windows)"
        else:
            tile = f"{p['tile']} ({p.get('windows', '?')} windows)"
        if p["status"] != "ok":
            rows.append([size_label(p), tile, p["status"], "-", "-", "-", "-", p.get("error", "")])
            continue
        rows.append([
            size_label(p), tile, str(p["steps"]), _num(p["seconds"], ".2f"),
            _num(p["warm_seconds"], ".2f"), _num(p["peak_memory_mb"], ",.0f"),
            _num(p["restore_memory_mb"], ",.0f"), "ok" if p["output_ok"] else "BAD OUTPUT",
        ])
    return rows


HEADERS = ["image", "tile", "steps", "wall s (1st)", "wall s (warm)", "peak MB", "restore MB", "output"]


def _title(result):
    machine = result.get("machine") or {}
    return (f"lnca benchmark large: {result['model']} on {result['backend']}, "
            f"{machine.get('cpu', 'unknown CPU')} ({machine.get('cpus_available', machine.get('cpu_count'))} "
            f"cores), {result['isolation']}")


def format_table(result):
    """The result as a plain-text table."""
    rows = _rows(result)
    widths = [max(len(str(r[i])) for r in [HEADERS] + rows) for i in range(len(HEADERS))]
    lines = [_title(result)]
    for row in [HEADERS] + rows:
        lines.append("  ".join(str(c).rjust(w) if 2 <= i <= 6 else str(c).ljust(w)
                               for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def format_markdown(result):
    """The result as a markdown section for BENCHMARKS.md (command included)."""
    lines = [f"**{_title(result)}**", ""]
    if result.get("command"):
        lines += ["```", result["command"], "```", ""]
    lines.append("| " + " | ".join(HEADERS) + " |")
    lines.append("| --- | --- | " + " | ".join(["---:"] * 5) + " | --- |")
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in _rows(result)]
    sources = sorted({p.get("memory_source") for p in result["points"] if p.get("memory_source")})
    lines += ["", "Wall time of `model.restore` (1st call includes compilation); peak memory: "
              f"{', '.join(sources) or 'n/a'} over the calls, in a fresh process per point; "
              "restore MB: the peak above the level with the model and the input image loaded."]
    return "\n".join(lines) + "\n"


def write_json(path, result):
    """Writes `result` as JSON, atomically."""
    text = json.dumps(result, indent=2) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def write_markdown(path, result):
    """Writes `format_markdown(result)`, atomically."""
    text = format_markdown(result)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
