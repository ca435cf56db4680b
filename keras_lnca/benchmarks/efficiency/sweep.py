"""Running the benchmark: every model's sweep over the sizes, on each backend, and the ratios.

`run(config)` measures each point through `measure.run_isolated` (a fresh
subprocess per point) or, for tests, in this process.
"""

import dataclasses
import os
import platform
import shutil
import sys
import tempfile
import time

from keras_lnca.benchmarks.efficiency.config import FLOPS_METHOD
from keras_lnca.benchmarks.efficiency.config import LATENCY_METHOD
from keras_lnca.benchmarks.efficiency.config import MEMORY_METHOD
from keras_lnca.benchmarks.efficiency.config import EfficiencyConfig
from keras_lnca.benchmarks.efficiency.config import inference_spec
from keras_lnca.benchmarks.efficiency.config import train_spec
from keras_lnca.benchmarks.efficiency.config import validate_config
from keras_lnca.benchmarks.efficiency.config import worker_timeout
from keras_lnca.benchmarks.efficiency.extrapolate import find_max_side
from keras_lnca.benchmarks.efficiency.extrapolate import predict_cost
from keras_lnca.benchmarks.efficiency.measure import measure_spec
from keras_lnca.benchmarks.efficiency.measure import run_isolated
from keras_lnca.benchmarks.efficiency.models import BASELINE
from keras_lnca.benchmarks.efficiency.models import LNCA_MODELS
from keras_lnca.benchmarks.efficiency.models import MODELS


def current_backend():
    """`KERAS_BACKEND` if set, else the backend Keras is configured with."""
    backend = os.environ.get("KERAS_BACKEND")
    if backend:
        return backend
    import keras

    return keras.backend.backend()


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
                result = measure_spec(spec)
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
            skipped.append({
                "model": model, "size": size, "reason": reason,
                "predicted_memory_mb": None if predicted_mb is None else round(predicted_mb, 1),
                "predicted_latency_ms": None if predicted_ms is None else round(predicted_ms, 1),
            })
            stop_reason = f"not run: size {size} was skipped"
            runner.advance()
            continue
        spec = inference_spec(config, model, size, repeats)
        seconds = None if predicted_ms is None else predicted_ms / 1000.0 * (config.warmup + repeats)
        result = runner.measure(spec, backend, f"{model} {size}x{size}", worker_timeout(config, seconds))
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
            reason = (f"aborted: resident memory passed the {config.memory_budget_gb:g} GB budget "
                      "during the run")
            skipped.append({"model": model, "size": size, "reason": reason, "exceeded_budget": True})
            stop_reason = f"not run: size {size} exceeded the memory budget"
        else:
            failed.append({"model": model, "size": size, "status": status, "error": result.get("error")})
            stop_reason = f"not run: size {size} failed"
    return points, skipped, failed


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
            side, details = find_max_side(config, runner, backend, model, model_points, model_skipped)
            if side is not None:
                max_side[model] = side
            max_side_details[model] = details
        if config.train_step:
            result = runner.measure(train_spec(config, model), backend, f"{model} train step",
                                    worker_timeout(config))
            runner.advance()
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
