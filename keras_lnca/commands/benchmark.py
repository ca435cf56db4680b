"""`lnca benchmark`: efficiency, quality-vs-steps and large-image benchmarks.

Sub-commands register in `SUBCOMMANDS` (name -> function adding its parser
to the `benchmark` sub-parsers), so another benchmark such as `quality`
plugs in with one entry and one function.
"""

import argparse
import os
import shlex
import sys

from keras_lnca.commands import arguments
from keras_lnca.commands.outputs import check_output
from keras_lnca.models.checks import MAX_STEPS
from keras_lnca.errors import UserError


def _sizes(text):
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not sizes or any(size < 8 for size in sizes):
        raise argparse.ArgumentTypeError(f"sizes must be integers >= 8, got {text!r}")
    return sorted(set(sizes))


def _names(text):
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return list(dict.fromkeys(names))


def add_efficiency_parser(subparsers):
    """Adds `lnca benchmark efficiency`."""
    from keras_lnca.benchmarks.efficiency import BACKENDS
    from keras_lnca.benchmarks.efficiency import DEFAULT_SIZES
    from keras_lnca.benchmarks.efficiency import MODELS

    parser = subparsers.add_parser(
        "efficiency",
        help="parameters, FLOPs, latency and peak memory of LNCA against pixel NCAs",
        description=(
            "Measures LNCA-NAFCA, LNCA-ViTCA, pixel ViTCA and a pixel Sobel NCA (untrained, "
            "batch 1, the same number of NCA steps) over square input sizes: parameters, "
            "analytic FLOPs per image, median inference latency after warm-up, peak inference "
            "memory (a fresh subprocess per point), a training step at 32x32 batch 8, the "
            "largest input within the memory budget, and LNCA/ViTCA ratios. A point whose "
            "predicted memory or time exceeds the budget is skipped, with the larger sizes."
        ),
    )
    parser.add_argument("--sizes", type=_sizes, default=list(DEFAULT_SIZES), metavar="N,N,...",
                        help="square input sides (default " + ",".join(map(str, DEFAULT_SIZES)) + ")")
    parser.add_argument("--backend", type=_names, default=None, metavar="NAME[,NAME]",
                        help=f"backend(s) among {', '.join(BACKENDS)}, each in its own subprocesses "
                             "(default: the current KERAS_BACKEND); several add a cross-backend table")
    parser.add_argument("--models", type=_names, default=list(MODELS), metavar="NAME[,NAME]",
                        help=f"models among {', '.join(MODELS)} (default: all)")
    parser.add_argument("--steps", type=arguments.STEPS, default=64, metavar="N",
                        help="NCA steps at inference, for every model (default 64)")
    parser.add_argument("--repeats", type=arguments.integer(1), default=5, metavar="N",
                        help="timed passes per point after one warm-up; the latency is their "
                             "median (default 5; fewer where the time budget requires)")
    parser.add_argument("--memory-budget-gb", type=arguments.number(0.0, above=True), default=8.0, metavar="GB",
                        help="peak inference memory budget (GiB) for skipping points and for "
                             "the largest input (default 8)")
    parser.add_argument("--time-budget-s", type=arguments.number(0.0, above=True), default=600.0, metavar="S",
                        help="seconds a point's warm-up and timed passes may take (default 600)")
    parser.add_argument("--max-side", choices=("extrapolate", "bisect", "none"), default="extrapolate",
                        help="largest input within the budget: extrapolated from the measured "
                             "points (default), or bisection with a subprocess per trial")
    parser.add_argument("--train-steps", type=arguments.integer(1), default=32, metavar="N",
                        help="NCA steps of the training step (default 32)")
    parser.add_argument("--train-size", type=arguments.integer(1), default=32, metavar="PX",
                        help="crop side of the training step (default 32)")
    parser.add_argument("--train-batch", type=arguments.integer(1), default=8, metavar="N",
                        help="batch of the training step (default 8)")
    parser.add_argument("--no-train-step", action="store_true", help="skip the training step")
    parser.add_argument("--jit-compile", choices=("auto", "true", "false"), default="auto",
                        help="XLA for TensorFlow's inference and training functions (auto: as "
                             "Keras, i.e. only with a GPU; JAX always uses XLA, PyTorch never)")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--markdown", metavar="OUT", help="write markdown tables (for BENCHMARKS.md)")
    parser.add_argument("--plot", metavar="OUT.png", help="write a log-log plot of latency and memory")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    # Tests only: measure in this process (memory figures are then not isolated).
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(func=run_efficiency)
    return parser


def add_quality_parser(subparsers):
    """Adds `lnca benchmark quality`."""
    from keras_lnca.benchmarks.quality import DEFAULT_STEPS

    default_steps = ",".join(map(str, DEFAULT_STEPS))
    parser = subparsers.add_parser(
        "quality",
        help="PSNR/SSIM against the number of NCA steps",
        description=(
            "Scores one model after each of several NCA step counts on a folder, with the "
            "degraded images of `lnca evaluate` (image i of the sorted folder with a fresh numpy "
            "default_rng(--seed), noise not clipped; drawn once per image and reused for every "
            "step count). Each image is restored once, along one trajectory decoded at every "
            "count. Prints PSNR, SSIM, the change against the model's nominal step count, the "
            "mean update magnitude of the last step, and the noisy input's row."
        ),
    )
    parser.add_argument("--preset", metavar="NAME", help="a shipped preset")
    parser.add_argument("--model", metavar="FILE", help="a saved .keras model")
    parser.add_argument("--dataset", required=True, metavar="DIR",
                        help="folder of clean images, or a paired folder with GT/ and DAMAGED/")
    parser.add_argument("--degradation", metavar="SPEC",
                        help="e.g. gaussian:25 (required unless --dataset is a paired folder)")
    parser.add_argument("--steps", default=default_steps, metavar="N,N,...",
                        help=f"step counts (default {default_steps})")
    parser.add_argument("--seed", type=arguments.SEED, default=0, help="evaluation noise seed (default 0)")
    parser.add_argument("--limit", metavar="N", help="score only the first N images")
    parser.add_argument("--batch-size", default="1", metavar="N",
                        help="consecutive images of the same shape restored together (default 1)")
    parser.add_argument("--channels", type=int, choices=(1, 3),
                        help="convert images to 1 or 3 channels (default: the model's)")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--markdown", metavar="OUT", help="write a markdown table (for BENCHMARKS.md)")
    parser.add_argument("--plot", metavar="OUT.png", help="write PSNR/SSIM/update curves as a PNG")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_quality)
    return parser


def add_large_parser(subparsers):
    """Adds `lnca benchmark large`."""
    from keras_lnca.benchmarks.large import DEFAULT_POINTS
    from keras_lnca.benchmarks.large import DEFAULT_PRESET

    parser = subparsers.add_parser(
        "large",
        help="peak memory and wall time of model.restore on large images, untiled and tiled",
        description=(
            "Restores one synthetic noisy image per point with model.restore, each point in a "
            "fresh subprocess, and reports the wall time and the peak memory (process VmHWM on "
            "CPU, the allocator's peak on a GPU), also above the level with the model and the "
            "image loaded. A point is SIZE or HxW (in one piece), SIZE@TILE (tiled) or "
            "SIZE@auto (what restore does by default: one piece within its memory budget, "
            "else tiles that fit)."
        ),
    )
    parser.add_argument("--preset", metavar="NAME", help=f"a shipped preset (default {DEFAULT_PRESET})")
    parser.add_argument("--model", metavar="FILE", help="a saved .keras model instead of a preset")
    parser.add_argument("--points", default=DEFAULT_POINTS, metavar="SIZE[@TILE],...",
                        help="square sides or HxW, @TILE for tiled restoration, @auto for the "
                        f"default memory budget (default {DEFAULT_POINTS})")
    parser.add_argument("--steps", metavar="N", help="NCA steps (default: the model's)")
    parser.add_argument("--repeats", default="1", metavar="N",
                        help="restore calls per point; the first includes compilation (default 1)")
    parser.add_argument("--timeout-s", default="0", metavar="S",
                        help="kill a point's worker after S seconds (default 0: no limit)")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--markdown", metavar="OUT", help="write a markdown table (for BENCHMARKS.md)")
    parser.add_argument("--quiet", action="store_true", help="no line per finished point")
    parser.set_defaults(func=run_large)
    return parser


def add_noise_parser(subparsers):
    """Adds `lnca benchmark noise`."""
    parser = subparsers.add_parser(
        "noise",
        help="error of the noise level estimator on a test set",
        description=(
            "Adds Gaussian noise of each --sigmas level to every image of --dataset (the noisy "
            "images of `lnca evaluate`) and compares the level estimated from each image "
            "(kl.degradations.estimate_noise_level, what noise-level-aware models use when "
            "not told) with the true one."
        ),
    )
    parser.add_argument("--dataset", required=True, metavar="DIR", help="folder of clean images")
    parser.add_argument("--sigmas", default="0,5,15,25,50", metavar="S,S,...",
                        help="noise levels on the 0-255 scale (default 0,5,15,25,50)")
    parser.add_argument("--seed", type=arguments.SEED, default=0, help="evaluation noise seed (default 0)")
    parser.add_argument("--limit", metavar="N", help="only the first N images")
    parser.add_argument("--channels", type=int, choices=(1, 3),
                        help="convert images to 1 or 3 channels (default: the files')")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_noise)
    return parser


def add_color_parser(subparsers):
    """Adds `lnca benchmark color`."""
    parser = subparsers.add_parser(
        "color",
        help="how a colour model's error splits between luma and chroma",
        description=(
            "Restores every image of --dataset at each --sigmas level (the noisy images of "
            "`lnca evaluate`), splits the squared error of the output between the luma and the "
            "two chroma channels of the orthogonal opponent space, and scores the output with "
            "its luma, then its chroma, replaced by the clean image's: the most a better luma "
            "or chroma path could gain. A noise-level-aware model is told the true level "
            "unless --estimate."
        ),
    )
    parser.add_argument("--preset", metavar="NAME", help="a shipped colour preset")
    parser.add_argument("--model", metavar="FILE", help="a saved colour .keras model")
    parser.add_argument("--dataset", required=True, metavar="DIR", help="folder of clean colour images")
    parser.add_argument("--sigmas", default="15,25,50", metavar="S,S,...",
                        help="noise levels on the 0-255 scale (default 15,25,50)")
    parser.add_argument("--estimate", action="store_true", help="let the model estimate the level")
    parser.add_argument("--baseline", action="append", default=[], choices=("bm3d",),
                        help="split a classical method's error too, on the same images "
                             "(bm3d: CBM3D told the true level); repeatable")
    parser.add_argument("--seed", type=arguments.SEED, default=0, help="evaluation noise seed (default 0)")
    parser.add_argument("--limit", metavar="N", help="only the first N images")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_color)
    return parser


# name -> function(subparsers) adding the sub-command's parser.
SUBCOMMANDS = {
    "efficiency": add_efficiency_parser,
    "quality": add_quality_parser,
    "large": add_large_parser,
    "noise": add_noise_parser,
    "color": add_color_parser,
}


def add_parser(subparsers):
    """Adds `lnca benchmark` and its sub-commands to `subparsers`."""
    parser = subparsers.add_parser(
        "benchmark",
        help="efficiency, quality-vs-steps, large-image, noise-estimation and colour-error benchmarks",
        description="Benchmarks that reproduce the paper's claims.",
    )
    benchmarks = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    benchmarks.required = True
    for add in SUBCOMMANDS.values():
        add(benchmarks)
    return parser


def check(args):
    """The checks that need no Keras (run before it is imported)."""
    if args.benchmark == "quality":
        from keras_lnca.benchmarks.quality import parse_steps

        _model_choice(args)
        parse_steps(args.steps)
        if args.limit is not None:
            _count(args.limit, "--limit")
        _count(args.batch_size, "--batch-size")


def _check_output(path, option, suffix=None, args=None):
    check_output(path, option, suffix, overwrite=getattr(args, "overwrite", False))


def _write_outputs(module, args, result):
    """Writes the `--json`, `--markdown` and `--plot` files that were asked for."""
    writers = {"json": "write_json", "markdown": "write_markdown", "plot": "plot"}
    for option, writer in writers.items():
        path = getattr(args, option, None)
        if path:
            getattr(module, writer)(path, result)
            print(f"wrote {path}")


def command_line(args):
    """The canonical `lnca benchmark efficiency ...` line for `args` (recorded in the outputs)."""
    parts = ["lnca", "benchmark", "efficiency", "--sizes", ",".join(map(str, args.sizes))]
    if args.backend:
        parts += ["--backend", ",".join(args.backend)]
    parts += ["--models", ",".join(args.models), "--steps", str(args.steps),
              "--repeats", str(args.repeats), "--memory-budget-gb", f"{args.memory_budget_gb:g}",
              "--time-budget-s", f"{args.time_budget_s:g}", "--max-side", args.max_side]
    if args.no_train_step:
        parts.append("--no-train-step")
    else:
        parts += ["--train-steps", str(args.train_steps), "--train-size", str(args.train_size),
                  "--train-batch", str(args.train_batch)]
    if args.jit_compile != "auto":
        parts += ["--jit-compile", args.jit_compile]
    for option in ("json", "markdown", "plot"):
        if getattr(args, option):
            parts += [f"--{option}", getattr(args, option)]
    return shlex.join(parts)


def run_efficiency(args):
    """Runs `lnca benchmark efficiency`; returns the exit status."""
    import importlib.util

    from keras_lnca.benchmarks import efficiency

    _check_output(args.json, "--json", ".json", args)
    _check_output(args.markdown, "--markdown", None, args)
    _check_output(args.plot, "--plot", ".png", args)
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        raise UserError("--plot needs matplotlib (pip install keras-lnca[plot])")
    for backend in args.backend or ():
        if backend not in efficiency.BACKENDS:
            raise UserError(f"unknown backend {backend!r}; choose from {', '.join(efficiency.BACKENDS)}")
        if importlib.util.find_spec(efficiency.BACKEND_MODULES[backend]) is None:
            raise UserError(f"backend {backend} is not installed")
    config = efficiency.EfficiencyConfig(
        sizes=tuple(args.sizes),
        backends=tuple(args.backend) if args.backend else None,
        models=tuple(args.models),
        steps=args.steps,
        repeats=args.repeats,
        memory_budget_gb=args.memory_budget_gb,
        time_budget_s=args.time_budget_s,
        train_step=not args.no_train_step,
        train_size=args.train_size,
        train_batch=args.train_batch,
        train_steps=args.train_steps,
        max_side=args.max_side,
        jit_compile={"auto": "auto", "true": True, "false": False}[args.jit_compile],
        isolate=not args.in_process,
        progress=not args.quiet,
    )
    if args.in_process and args.backend and args.backend != [efficiency.current_backend()]:
        raise UserError("--in-process measures only the current KERAS_BACKEND")
    try:
        efficiency.validate_config(config)
    except ValueError as error:
        raise UserError(str(error)) from None
    result = efficiency.run(config, command=command_line(args))
    print(efficiency.format_report(result))
    _write_outputs(efficiency, args, result)
    failures = [f for f in result["failed"]]
    for backend_result in (result.get("backends") or {}).values():
        if backend_result["backend"] != result["backend"]:
            failures += backend_result["failed"]
    if failures:
        for failure in failures:
            where = "train step" if failure.get("train_step") else f"{failure.get('size')}x{failure.get('size')}"
            print(f"lnca benchmark efficiency: {failure['model']} {where} failed: {failure.get('error')}",
                  file=sys.stderr)
        return 1
    return 0


def _count(text, option, minimum=1, maximum=None):
    """A one-line `UserError` unless `text` is an integer in [minimum, maximum]."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise UserError(f"{option} must be an integer, got {text!r}") from None
    if value < minimum:
        raise UserError(f"{option} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise UserError(f"{option} must be <= {maximum}, got {value}")
    return value


def _load_model(kind, name):
    """`(method name, model)` for what `_model_choice` returned, loaded as `lnca evaluate` loads it."""
    from keras_lnca.commands.evaluate import load_models

    models = load_models(argparse.Namespace(preset=[name] if kind == "preset" else [],
                                             model=[name] if kind == "model" else []))
    (method, model), = models.items()
    return method, model


def _model_choice(args, default=None):
    """`(kind, value)` from exactly one of --preset / --model."""
    if args.preset and args.model:
        raise UserError("give either --preset or --model, not both")
    if args.model:
        if not os.path.isfile(args.model):
            raise UserError(f"no such model file: {args.model}")
        return "model", args.model
    if args.preset:
        return "preset", args.preset
    if default is None:
        raise UserError("give the model to benchmark: --preset NAME or --model FILE")
    return "preset", default


def _quality_command(args, steps):
    parts = ["lnca", "benchmark", "quality"]
    parts += ["--preset", args.preset] if args.preset else ["--model", args.model]
    parts += ["--dataset", args.dataset]
    if args.degradation is not None:
        parts += ["--degradation", args.degradation]
    parts += ["--steps", ",".join(map(str, steps))]
    if args.seed:
        parts += ["--seed", str(args.seed)]
    if args.limit is not None:
        parts += ["--limit", str(args.limit)]
    if int(args.batch_size) != 1:
        parts += ["--batch-size", str(args.batch_size)]
    if args.channels is not None:
        parts += ["--channels", str(args.channels)]
    for option in ("json", "markdown", "plot"):
        if getattr(args, option):
            parts += [f"--{option}", getattr(args, option)]
    return shlex.join(parts)


def run_quality(args):
    """Runs `lnca benchmark quality`; returns the exit status."""
    import importlib.util

    from keras_lnca.benchmarks import quality
    from keras_lnca.data import is_paired_folder
    from keras_lnca.degradations import parse

    kind, name = _model_choice(args)
    steps = quality.parse_steps(args.steps)
    limit = None if args.limit is None else _count(args.limit, "--limit")
    batch_size = _count(args.batch_size, "--batch-size")
    if not os.path.isdir(args.dataset):
        raise UserError(f"no such dataset folder: {args.dataset}")
    degradation = None if args.degradation is None else parse(args.degradation)
    if degradation is None and not is_paired_folder(args.dataset):
        raise UserError(f"{args.dataset} is not a paired GT/ + DAMAGED/ folder: give --degradation")
    _check_output(args.json, "--json", ".json", args)
    _check_output(args.markdown, "--markdown", None, args)
    _check_output(args.plot, "--plot", ".png", args)
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        raise UserError("--plot needs matplotlib (pip install keras-lnca[plot])")
    method, model = _load_model(kind, name)
    result = quality.run(
        model, args.dataset, degradation, steps, seed=args.seed, channels=args.channels,
        limit=limit, batch_size=batch_size, name=method, command=_quality_command(args, steps),
        progress=not args.quiet,
    )
    print(quality.format_table(result))
    _write_outputs(quality, args, result)
    return 0


def _point_text(point):
    """A point as `--points` takes it: `4096`, `4000x3000@auto`, `8192@1024`."""
    size = point["size"]
    text = str(size) if isinstance(size, int) else "x".join(str(side) for side in size)
    return text + (f"@{point['tile']}" if point["tile"] else "")


def _large_command(args, kind, name, points):
    parts = ["lnca", "benchmark", "large", f"--{kind}", name,
             "--points", ",".join(_point_text(p) for p in points)]
    if args.steps is not None:
        parts += ["--steps", str(args.steps)]
    if int(args.repeats) != 1:
        parts += ["--repeats", str(args.repeats)]
    if float(args.timeout_s):
        parts += ["--timeout-s", str(args.timeout_s)]
    for option in ("json", "markdown"):
        if getattr(args, option):
            parts += [f"--{option}", getattr(args, option)]
    return shlex.join(parts)


def run_large(args):
    """Runs `lnca benchmark large`; returns the exit status."""
    from keras_lnca.benchmarks import large
    from keras_lnca.models import presets

    kind, name = _model_choice(args, default=large.DEFAULT_PRESET)
    if kind == "preset":
        presets.resolve(name)  # an unknown preset fails here, before any worker starts
    points = large.parse_points(args.points)
    steps = None if args.steps is None else _count(args.steps, "--steps", maximum=MAX_STEPS)
    repeats = _count(args.repeats, "--repeats")
    try:
        timeout_s = float(args.timeout_s)
    except ValueError:
        raise UserError(f"--timeout-s must be a number of seconds, got {args.timeout_s!r}") from None
    if not timeout_s >= 0:
        raise UserError(f"--timeout-s must be >= 0, got {args.timeout_s!r}")
    _check_output(args.json, "--json", ".json", args)
    _check_output(args.markdown, "--markdown", None, args)
    result = large.run(
        points, model=os.path.abspath(name) if kind == "model" else name, steps=steps,
        repeats=repeats, timeout_s=timeout_s or None, command=_large_command(args, kind, name, points),
        progress=None if args.quiet else print,
    )
    print(large.format_table(result))
    _write_outputs(large, args, result)
    failed = [p for p in result["points"] if p["status"] != "ok" or not p.get("output_ok")]
    for point in failed:
        print(f"lnca benchmark large: {large.point_label(point)} failed: "
              f"{point.get('error') or 'bad output (shape or non-finite values)'}", file=sys.stderr)
    return 1 if failed else 0


def _sigmas(text):
    try:
        sigmas = [float(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--sigmas must be numbers separated by commas, got {text!r}") from None
    if not sigmas or any(not 0 <= s <= 255 for s in sigmas):
        raise UserError(f"--sigmas must lie in [0, 255], got {text!r}")
    return sigmas


def run_noise(args):
    """Runs `lnca benchmark noise`; returns the exit status."""
    from keras_lnca.benchmarks import noise_estimation

    sigmas = _sigmas(args.sigmas)
    limit = None if args.limit is None else _count(args.limit, "--limit")
    if not os.path.isdir(args.dataset):
        raise UserError(f"no such dataset folder: {args.dataset}")
    _check_output(args.json, "--json", ".json", args)
    result = noise_estimation.run(args.dataset, sigmas, seed=args.seed, channels=args.channels,
                                  limit=limit, progress=not args.quiet)
    print(noise_estimation.format_table(result))
    _write_outputs(noise_estimation, args, result)
    return 0


def run_color(args):
    """Runs `lnca benchmark color`; returns the exit status."""
    from keras_lnca.benchmarks import color_errors

    kind, name = _model_choice(args)
    sigmas = _sigmas(args.sigmas)
    limit = None if args.limit is None else _count(args.limit, "--limit")
    if not os.path.isdir(args.dataset):
        raise UserError(f"no such dataset folder: {args.dataset}")
    _check_output(args.json, "--json", ".json", args)
    method, model = _load_model(kind, name)
    if model.channels != 3:
        raise UserError(f"{name} is a {model.channels}-channel model; the colour error split needs a colour one")
    parts = ["lnca", "benchmark", "color", f"--{kind}", name, "--dataset", args.dataset,
             "--sigmas", ",".join(f"{s:g}" for s in sigmas)]
    parts += ["--estimate"] if args.estimate else []
    for other in args.baseline:
        parts += ["--baseline", other]
    parts += ["--seed", str(args.seed)] if args.seed else []
    parts += ["--limit", str(limit)] if limit is not None else []
    result = color_errors.run(model, args.dataset, sigmas, seed=args.seed, limit=limit,
                              estimate=args.estimate, baselines=args.baseline, name=method,
                              command=shlex.join(parts),
                              progress=not args.quiet)
    print(color_errors.format_table(result))
    _write_outputs(color_errors, args, result)
    return 0
