"""Extrapolating from the measured points: a point's predicted cost, and the largest input
within the memory budget (an affine fit, or a bisection with a fresh subprocess per trial)."""

import math

from keras_lnca.benchmarks.efficiency.config import inference_spec
from keras_lnca.benchmarks.efficiency.config import worker_timeout


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


def find_max_side(config, runner, backend, model, points, skipped):
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
        spec = inference_spec(config, model, side, repeats=0)
        result = runner.measure(spec, backend, f"{model} max-side trial {side}x{side}",
                                worker_timeout(config))
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

    def probe(side):
        """`(fits, stopped)`: a trial at `side`, or why the search stops there."""
        if not affordable(side):
            return None, f"a trial at {side}^2 would exceed the time budget"
        fits = trial(side)
        return fits, (f"the trial at {side}^2 failed" if fits is None else None)

    if hi is None:
        hi = _round_side(max(guess * 1.25, lo * 2))
        while True:
            if hi > _MAX_TRIAL_SIDE:
                stopped = f"no trial up to {_MAX_TRIAL_SIDE}^2 exceeded the budget"
                break
            fits, stopped = probe(hi)
            if stopped or not fits:
                break
            lo, hi = hi, _round_side(hi * 1.5)
    tolerance = max(16, _round_side(0.05 * lo))
    while stopped is None and hi - lo > tolerance:
        mid = _round_side((lo + hi) / 2)
        if mid <= lo:
            break
        fits, stopped = probe(mid)
        if stopped:
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
