"""`lnca benchmark`: efficiency (and quality) benchmarks.

Sub-commands register in `SUBCOMMANDS` (name -> function adding its parser
to the `benchmark` sub-parsers), so another benchmark such as `quality`
plugs in with one entry and one function.
"""

import argparse
import os
import shlex
import sys

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


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    return parse


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
    parser.add_argument("--steps", type=_positive(int), default=64, metavar="N",
                        help="NCA steps at inference, for every model (default 64)")
    parser.add_argument("--repeats", type=_positive(int), default=5, metavar="N",
                        help="timed passes per point after one warm-up; the latency is their "
                             "median (default 5; fewer where the time budget requires)")
    parser.add_argument("--memory-budget-gb", type=_positive(float), default=8.0, metavar="GB",
                        help="peak inference memory budget (GiB) for skipping points and for "
                             "the largest input (default 8)")
    parser.add_argument("--time-budget-s", type=_positive(float), default=600.0, metavar="S",
                        help="seconds a point's warm-up and timed passes may take (default 600)")
    parser.add_argument("--max-side", choices=("extrapolate", "bisect", "none"), default="extrapolate",
                        help="largest input within the budget: extrapolated from the measured "
                             "points (default), or bisection with a subprocess per trial")
    parser.add_argument("--train-steps", type=_positive(int), default=32, metavar="N",
                        help="NCA steps of the training step (default 32)")
    parser.add_argument("--train-size", type=_positive(int), default=32, metavar="PX",
                        help="crop side of the training step (default 32)")
    parser.add_argument("--train-batch", type=_positive(int), default=8, metavar="N",
                        help="batch of the training step (default 8)")
    parser.add_argument("--no-train-step", action="store_true", help="skip the training step")
    parser.add_argument("--jit-compile", choices=("auto", "true", "false"), default="auto",
                        help="XLA for TensorFlow's inference and training functions (auto: as "
                             "Keras, i.e. only with a GPU; JAX always uses XLA, PyTorch never)")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON")
    parser.add_argument("--markdown", metavar="OUT", help="write markdown tables (for BENCHMARKS.md)")
    parser.add_argument("--plot", metavar="OUT.png", help="write a log-log plot of latency and memory")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    # Tests only: measure in this process (memory figures are then not isolated).
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(func=run_efficiency)
    return parser


# name -> function(subparsers) adding the sub-command's parser.
SUBCOMMANDS = {"efficiency": add_efficiency_parser}


def add_parser(subparsers):
    """Adds `lnca benchmark` and its sub-commands to `subparsers`."""
    parser = subparsers.add_parser(
        "benchmark",
        help="efficiency and quality benchmarks",
        description="Benchmarks that reproduce the paper's claims.",
    )
    benchmarks = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    benchmarks.required = True
    for add in SUBCOMMANDS.values():
        add(benchmarks)
    return parser


def _check_output(path, option, suffix=None):
    if path is None:
        return
    if suffix and not path.lower().endswith(suffix):
        raise UserError(f"{option} must be a {suffix} file, got {path}")
    if os.path.isdir(path):
        raise UserError(f"{option} {path} is a folder")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UserError(f"no such folder for {option}: {parent}")
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write to the folder of {option}: {parent}")


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

    _check_output(args.json, "--json", ".json")
    _check_output(args.markdown, "--markdown")
    _check_output(args.plot, "--plot", ".png")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        raise UserError("--plot needs matplotlib (pip install keras-lnca[plot])")
    for backend in args.backend or ():
        if backend not in efficiency.BACKENDS:
            raise UserError(f"unknown backend {backend!r}; choose from {', '.join(efficiency.BACKENDS)}")
        if importlib.util.find_spec(efficiency._BACKEND_MODULES[backend]) is None:
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
    if args.json:
        efficiency.write_json(args.json, result)
        print(f"wrote {args.json}")
    if args.markdown:
        efficiency.write_markdown(args.markdown, result)
        print(f"wrote {args.markdown}")
    if args.plot:
        efficiency.plot(args.plot, result)
        print(f"wrote {args.plot}")
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
