"""Restoration quality against the number of NCA steps (`lnca benchmark quality`).

An NCA is an iterated rule: its output after `N` steps is a function of `N`,
and `inference_steps` (64 for the paper's LNCA) is only the count it was
trained towards. This benchmark scores a model after each of several step
counts on a folder of images:

* the images and their degradations are exactly those of `lnca evaluate`
  (image `i` of the sorted folder degraded with a fresh
  `np.random.default_rng(seed)`, Gaussian noise not clipped; or a paired
  `GT/` + `DAMAGED/` folder), drawn **once** per image and reused for every
  step count;
* each image is restored **once**, along a single trajectory: the cell
  state after `8` steps is carried on to `16`, then `32`, ... and decoded at
  every requested count. With the deterministic inference path
  (`fire_rate=1`, as every shipped preset) the image decoded after `N` steps
  is `model.restore(degraded, steps=N)` (up to float rounding; the tests
  check it), at the cost of the largest count alone instead of their sum;
* PSNR and SSIM are `keras_lnca.evaluation.psnr` / `ssim` (scikit-image's
  reference formulas, outputs clipped to [0, 1]), per image then averaged,
  so the row at `inference_steps` is the model's `lnca evaluate` figure;
  the `noisy` row scores the degraded input itself (unclipped, as the
  `identity` baseline);
* `update_magnitude`: the mean absolute change of the cell state over the
  step that reaches `N` (`mean |s_N - s_{N-1}|` over every cell and channel,
  the quantity `restore(tolerance=...)` compares against), averaged over
  the images: how far from a fixed point the automaton still is;
* `delta_psnr`: PSNR at `N` minus PSNR at `inference_steps`, when that
  count is among the requested ones: the stability of the rule beyond its
  training horizon (`stability` summarises the largest count);
* `seconds_per_image`: median over the images of the wall time from the
  encoder to the decoded readout at `N` (readouts at smaller counts
  included; with `batch_size > 1`, a batch's time divided by its images),
  through the compiled function `Model.predict` runs on each backend. The
  first image of each shape includes compilation.

A readout whose image or last update holds NaN or Inf is counted in
`nonfinite_images` (an overflowing state can still decode to a clipped
image); an image with NaN scores NaN (null in JSON), which makes the mean
NaN: an unstable rule cannot hide behind an average.

Example:
```python
import keras_lnca as kl
from keras_lnca.benchmarks import quality

model = kl.LNCA.from_preset("lnca_denoise_gray_s25")
result = quality.run(model, "../shared/data/gray/set12", "gaussian:25",
                     steps=(8, 16, 32, 64, 128))
print(quality.format_report(result))
quality.write_json("quality.json", result)
```
"""

import itertools
import math
import os
import statistics
import time

import numpy as np

from keras_lnca.errors import UserError
from keras_lnca.models.checks import MAX_STEPS

DEFAULT_STEPS = (8, 16, 32, 64, 128)


def parse_steps(text):
    """Parses a comma-separated list of step counts.

    Args:
        text: e.g. `"8,16,32,64,128"`; order and repeats do not matter.

    Returns:
        A sorted tuple of distinct positive ints.

    Raises:
        keras_lnca.errors.UserError: an empty list, a non-integer or a
            count below 1.

    Example:

    >>> parse_steps("64,8,16,8")
    (8, 16, 64)
    """
    parts = [part.strip() for part in str(text).split(",")]
    if not any(parts):
        raise UserError(f"--steps needs a comma-separated list of step counts, got {text!r}")
    steps = []
    for part in parts:
        if not part:
            raise UserError(f"--steps has an empty entry in {text!r}")
        try:
            value = int(part)
        except ValueError:
            raise UserError(f"--steps entries must be integers, got {part!r} in {text!r}") from None
        if not 1 <= value <= MAX_STEPS:
            raise UserError(f"--steps entries must be from 1 to {MAX_STEPS}, got {value} in {text!r}")
        steps.append(value)
    return tuple(sorted(set(steps)))


# =========================================================================
# One trajectory, several readouts
# =========================================================================


def _start(model, images):
    state, context = model.initial_state(images)
    outputs = {"state": state}
    if context is not None:
        outputs["context"] = context
    return outputs


def _advance(steps):
    """`state -> (state after `steps` steps, mean |change| of the last step)`."""
    from keras import ops

    def advance(model, state):
        state = model.run(state, steps - 1)
        new = model.run(state, 1)
        change = ops.mean(ops.abs(new - state), axis=(1, 2, 3))
        return {"state": new, "change": change}

    return advance


def _finish(model, inputs):
    return model.readout(inputs["state"], inputs.get("context"))


def _stage(model, function, name):
    """A Keras model running `function(model, inputs)`, compiled by `predict`."""
    import keras

    class Stage(keras.Model):
        def __init__(self, restorer, run, **kwargs):
            super().__init__(**kwargs)
            self.restorer = restorer
            self.stage_function = run

        def call(self, inputs):
            return self.stage_function(self.restorer, inputs)

    return Stage(model, function, name=name)


class StepTrajectory:
    """Restores an image once and decodes it after several step counts.

    The stages (encode and seed, advance by `k` steps, decode) run through
    `Model.predict`, so they are compiled as `model.restore` is (one
    function per stage, and per shape where the backend needs it).

    Args:
        model: an `NCAModel` (`LNCA` or `PixelNCA`).
        batch_size: int, images per forward pass for `(N, H, W, C)` input
            (as `model.restore`'s).

    Example:
    ```python
    trajectory = StepTrajectory(kl.LNCA.from_preset("lnca_denoise_gray_s25"))
    for readout in trajectory(noisy, steps=(8, 64)):
        print(readout["steps"], readout["update_magnitude"], readout["image"].shape)
    ```
    """

    def __init__(self, model, batch_size=1):
        self.model = model
        self.batch_size = int(batch_size)
        self._stages = {}

    def _get(self, key, function):
        if key not in self._stages:
            self._stages[key] = _stage(self.model, function, name=f"trajectory_{key}")
        return self._stages[key]

    def _predict(self, key, function, inputs, per_image=1):
        """Runs a stage; a colour model in an opponent space has `per_image`
        states (passes) per image, which must stay in one batch."""
        return self._get(key, function).predict(inputs, batch_size=self.batch_size * per_image, verbose=0)

    def __call__(self, image, steps, noise_level=None):
        """Yields one readout per step count, in increasing order.

        Args:
            image: as `model.restore` takes it (`(H, W)`, `(H, W, C)` or
                `(N, H, W, C)`; float images may leave [0, 1] slightly).
            steps: increasing positive step counts.
            noise_level: a noise-level-aware model's level, as `restore`
                takes it (None: estimated per image).

        Yields:
            Dicts `{"steps", "image", "update_magnitude",
            "update_magnitudes", "seconds"}`: `image` is what
            `model.restore(image, steps=N)` returns, `update_magnitudes` the
            mean absolute state change of step `N` per image of the batch
            (a list of floats), `update_magnitude` their mean, `seconds` the
            time since the encoder started.
        """
        from keras_lnca.models import image_batches

        model = self.model
        batch, restore_like = image_batches.to_batch(image, model.channels, model.grid_factor)
        height, width = batch.shape[1:3]
        batch = model.model_input(batch, noise_level, restore_like.size)
        start = time.perf_counter()
        state = self._predict("start", _start, batch)
        context = {"context": state["context"]} if "context" in state else {}
        state = state["state"]
        per_image = len(state) // len(batch)  # 3 passes per image in an opponent colour space
        done = 0
        for count in steps:
            if count <= done:
                raise ValueError(f"`steps` must be increasing positive ints, got {tuple(steps)}.")
            advanced = self._predict(f"advance_{count - done}", _advance(count - done), state, per_image)
            state, done = advanced["state"], count
            restored = self._predict("finish", _finish, {"state": state, **context}, per_image)
            restored = np.clip(restored[:, :height, :width, :], 0.0, 1.0)
            change = np.reshape(advanced["change"], (len(batch), per_image)).mean(axis=1)
            yield {
                "steps": count,
                "image": restore_like(restored),
                "update_magnitude": float(np.mean(change)),
                "update_magnitudes": [float(v) for v in change],
                "seconds": time.perf_counter() - start,
            }


# =========================================================================
# The benchmark
# =========================================================================


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def run(model, dataset, degradation=None, steps=DEFAULT_STEPS, *, seed=0, channels=None,
        limit=None, batch_size=1, name=None, command=None, progress=True):
    """Scores `model` after each of several NCA step counts on a folder.

    Args:
        model: an `NCAModel` (`LNCA` or `PixelNCA`), e.g. a preset.
        dataset: a folder of clean images (degraded here with
            `degradation`), or a paired folder with `GT/` and `DAMAGED/`.
        degradation: a spec string (e.g. `"gaussian:25"`) or a
            `Degradation`; required for a plain folder.
        steps: step counts (any order; repeats ignored).
        seed: the evaluation seed (default 0, as `lnca evaluate`).
        channels: 1 or 3; defaults to the model's.
        limit: score only the first `limit` images.
        batch_size: int, consecutive images of the same shape restored in
            one batch (faster for many small images; the scores are those
            of one image at a time, up to float rounding).
        name: the method's name in the result (default `model:<model.name>`).
        command: the command line that ran this (recorded in the result).
        progress: show a tqdm progress bar.

    Returns:
        A dict (the JSON layout): `{"benchmark": "quality", "method",
        "dataset", "degradation", "seed", "paired", "channels",
        "num_images", "steps", "nominal_steps", "backend", "noisy": {"psnr",
        "ssim", "per_image"}, "points": [{"steps", "psnr", "ssim",
        "update_magnitude", "delta_psnr", "nonfinite_images",
        "seconds_per_image", "per_image": [{"file", "psnr", "ssim",
        "update_magnitude", "finite", "seconds"}]}], "stability", "machine",
        "command", "seconds"}`; see the module docstring for each figure.

    Raises:
        keras_lnca.errors.UserError: a missing or empty folder, a bad
            degradation, bad step counts, or a model that is not an NCA.
    """
    import keras
    from tqdm.auto import tqdm

    from keras_lnca.benchmarks.efficiency import machine_info
    from keras_lnca.data import is_paired_folder
    from keras_lnca.degradations import parse
    from keras_lnca.evaluation import as_image
    from keras_lnca.evaluation import count_images
    from keras_lnca.evaluation import samples
    from keras_lnca.evaluation import psnr
    from keras_lnca.evaluation import ssim
    from keras_lnca.models.nca_model import NCAModel

    if not isinstance(model, NCAModel):
        raise UserError(f"the quality benchmark needs an LNCA or PixelNCA model, got {type(model).__name__}")
    steps = parse_steps(",".join(map(str, steps))) if not isinstance(steps, str) else parse_steps(steps)
    dataset = str(dataset)
    if not os.path.isdir(dataset):
        raise UserError(f"no such dataset folder: {dataset}")
    paired = is_paired_folder(dataset)
    degradation = None if degradation is None else parse(degradation)
    if degradation is None and not paired:
        raise UserError(f"{dataset} is not a paired GT/ + DAMAGED/ folder: give a degradation to apply")
    channels = model.channels if channels is None else int(channels)
    if int(batch_size) < 1:
        raise UserError(f"batch size must be >= 1, got {batch_size}")
    batch_size = int(batch_size)
    total = count_images(dataset, paired, limit)
    name = name or f"model:{model.name}"
    nominal = model.inference_steps

    trajectory = StepTrajectory(model, batch_size=batch_size)
    noisy = []
    per_step = {count: [] for count in steps}

    def restore(chunk):
        """Scores a chunk of same-shape images along one batched trajectory."""
        batch = np.stack([degraded for _, _, degraded in chunk])
        for readout in trajectory(batch, steps):
            for i, (file_name, clean, _) in enumerate(chunk):
                restored = as_image(readout["image"][i], clean.shape, name, file_name)
                change = readout["update_magnitudes"][i]
                scorable = bool(np.all(np.isfinite(restored)))
                finite = scorable and math.isfinite(change)
                per_step[readout["steps"]].append({
                    "file": file_name,
                    "psnr": psnr(clean, restored) if scorable else math.nan,
                    "ssim": ssim(clean, restored) if scorable else math.nan,
                    "update_magnitude": change,
                    "finite": finite,
                    "seconds": readout["seconds"] / len(chunk),
                })

    began = time.perf_counter()
    chosen = itertools.islice(samples(dataset, degradation, paired, seed, channels), total)
    bar = tqdm(chosen, total=total, unit="image", disable=not progress, leave=False)
    chunk = []
    for file_name, clean, degraded, _ in bar:
        bar.set_postfix_str(file_name)
        noisy.append({"file": file_name, "psnr": psnr(clean, degraded, clip=False),
                      "ssim": ssim(clean, degraded, clip=False)})
        if chunk and (len(chunk) == batch_size or chunk[0][2].shape != degraded.shape):
            restore(chunk)
            chunk = []
        chunk.append((file_name, clean, np.asarray(degraded, np.float32)))
    if chunk:
        restore(chunk)
    bar.close()

    points = []
    for count in steps:
        records = per_step[count]
        points.append({
            "steps": count,
            "psnr": float(np.mean([r["psnr"] for r in records])),
            "ssim": float(np.mean([r["ssim"] for r in records])),
            "update_magnitude": _mean([r["update_magnitude"] for r in records]),
            "delta_psnr": None,
            "nonfinite_images": sum(not r["finite"] for r in records),
            "seconds_per_image": statistics.median(r["seconds"] for r in records),
            "per_image": records,
        })
    reference = next((p for p in points if p["steps"] == nominal), None)
    if reference is not None:
        for point in points:
            point["delta_psnr"] = point["psnr"] - reference["psnr"]
    return {
        "benchmark": "quality",
        "method": name,
        "dataset": dataset,
        "degradation": None if degradation is None else degradation.spec,
        "seed": int(seed),
        "paired": paired,
        "channels": channels,
        "num_images": total,
        "steps": list(steps),
        "nominal_steps": nominal,
        "fire_rate": float(getattr(model, "fire_rate", 1.0)),
        "batch_size": batch_size,
        "backend": keras.backend.backend(),
        "noisy": {
            "psnr": float(np.mean([r["psnr"] for r in noisy])),
            "ssim": float(np.mean([r["ssim"] for r in noisy])),
            "per_image": noisy,
        },
        "points": points,
        "stability": stability(points, nominal),
        "machine": machine_info(),
        "command": command,
        "seconds": time.perf_counter() - began,
    }


def stability(points, nominal_steps):
    """Summarises the longest run against the nominal step count.

    Args:
        points: the `points` of a result.
        nominal_steps: the model's `inference_steps`.

    Returns:
        `{"nominal_steps", "nominal_psnr", "steps", "psnr", "delta_psnr",
        "finite"}` for the largest step count above `nominal_steps`, or
        `None` when the nominal count or a larger one was not measured.
    """
    reference = next((p for p in points if p["steps"] == nominal_steps), None)
    longer = [p for p in points if p["steps"] > nominal_steps]
    if reference is None or not longer:
        return None
    last = max(longer, key=lambda p: p["steps"])
    return {
        "nominal_steps": nominal_steps,
        "nominal_psnr": reference["psnr"],
        "steps": last["steps"],
        "psnr": last["psnr"],
        "delta_psnr": last["psnr"] - reference["psnr"],
        "finite": last["nonfinite_images"] == 0 and reference["nonfinite_images"] == 0,
    }


# =========================================================================
# Reports
# =========================================================================


def _num(value, spec):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "nan" if isinstance(value, float) else "-"
    return format(value, spec)


def _rows(result):
    """Table rows: the noisy input, then one row per step count."""
    nominal = result["nominal_steps"]
    rows = [["noisy input", _num(result["noisy"]["psnr"], ".2f"), _num(result["noisy"]["ssim"], ".4f"),
             "-", "-", "-"]]
    for p in result["points"]:
        label = f"{p['steps']}" + (" (nominal)" if p["steps"] == nominal else "")
        if p["nonfinite_images"]:
            label += f" [{p['nonfinite_images']} non-finite]"
        delta = "-" if p["delta_psnr"] is None else _num(p["delta_psnr"], "+.3f")
        rows.append([label, _num(p["psnr"], ".2f"), _num(p["ssim"], ".4f"), delta,
                     _num(p["update_magnitude"], ".2e"), _num(p["seconds_per_image"], ".2f")])
    return rows


def _headers(result):
    return ["steps", "PSNR (dB)", "SSIM", f"ΔPSNR vs {result['nominal_steps']}",
            "update magnitude", "s/image"]


def _title(result):
    return (f"{result['method']} on {result['dataset']}: {result['num_images']} image(s), "
            f"degradation {result['degradation'] or '(paired)'}, seed {result['seed']}, "
            f"backend {result['backend']}")


def _stability_line(result):
    s = result.get("stability")
    if not s:
        return None
    state = "finite" if s["finite"] else "NON-FINITE"
    return (f"stability: {s['steps']} steps vs {s['nominal_steps']}: "
            f"{_num(s['psnr'], '.3f')} vs {_num(s['nominal_psnr'], '.3f')} dB "
            f"(Δ {_num(s['delta_psnr'], '+.3f')} dB), {state}")


def format_table(result):
    """The result as a plain-text table (what the command prints)."""
    headers, rows = _headers(result), _rows(result)
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]
    lines = [_title(result)]
    for row in [headers] + rows:
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells))
    line = _stability_line(result)
    if line:
        lines.append(line)
    return "\n".join(lines)


def format_markdown(result):
    """The result as a markdown section for BENCHMARKS.md (command included)."""
    headers, rows = _headers(result), _rows(result)
    lines = [f"**{_title(result)}**", ""]
    if result.get("command"):
        lines += ["```", result["command"], "```", ""]
    lines.append("| " + " | ".join(headers) + " |")
    lines.append("| " + " | ".join(["---"] + ["---:"] * (len(headers) - 1)) + " |")
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    line = _stability_line(result)
    if line:
        lines += ["", line[0].upper() + line[1:] + "."]
    machine = result.get("machine") or {}
    lines += ["", f"Mean PSNR/SSIM over the images (outputs clipped to [0, 1], noisy input unclipped); "
              f"update magnitude: mean |Δ state| of the last step; s/image: median time to that "
              f"readout on {machine.get('cpu', 'this machine')}."]
    return "\n".join(lines) + "\n"


def write_json(path, result):
    """Writes `result` as JSON, atomically (non-finite numbers become null)."""
    from keras_lnca.evaluation import write_json as write_evaluation_json

    write_evaluation_json(path, result)


def write_markdown(path, result):
    """Writes `format_markdown(result)`, atomically."""
    from keras_lnca.data.io import atomic_write

    text = format_markdown(result)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def plot(path, result):
    """Writes a PNG: PSNR, SSIM and update magnitude against the step count.

    The step axis is logarithmic (base 2); the noisy input is a dashed line
    and the nominal step count a dotted vertical line.
    """
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_lnca.data.io import atomic_write

    points = result["points"]
    steps = [p["steps"] for p in points]
    panels = [("psnr", "PSNR (dB)"), ("ssim", "SSIM")]
    if any(p["update_magnitude"] is not None for p in points):
        panels.append(("update_magnitude", "mean |Δ state| of the last step"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.0))
    for ax, (key, label) in zip(axes, panels):
        values = [np.nan if p[key] is None else p[key] for p in points]
        ax.plot(steps, values, marker="o", color="C0", label=result["method"])
        if key in ("psnr", "ssim"):
            ax.axhline(result["noisy"][key], color="gray", linestyle="--", linewidth=1, label="noisy input")
        if key == "update_magnitude":
            ax.set_yscale("log")
        if min(steps) <= result["nominal_steps"] <= max(steps):
            ax.axvline(result["nominal_steps"], color="C1", linestyle=":", linewidth=1,
                       label=f"nominal ({result['nominal_steps']})")
        ax.set_xscale("log", base=2)
        ax.set_xticks(steps, [str(s) for s in steps])
        ax.minorticks_off()
        ax.set_xlabel("NCA steps")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if ax is axes[0]:
            ax.legend(fontsize=8)
    fig.suptitle(f"{result['method']}: {os.path.basename(result['dataset'].rstrip('/'))}, "
                 f"{result['degradation'] or 'paired'} ({result['num_images']} images)")
    fig.tight_layout()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=110)
    finally:
        plt.close(fig)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
