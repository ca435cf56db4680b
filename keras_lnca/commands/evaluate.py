"""`lnca evaluate`: PSNR / SSIM of models and baselines on a folder."""

import itertools
import os
from pathlib import Path

from keras_lnca.commands import arguments
from keras_lnca.commands.outputs import check_output
from keras_lnca.errors import UserError
from keras_lnca.errors import first_line

BASELINES = ("identity", "bm3d", "wiener", "median")  # as keras_lnca.evaluation.BASELINES
NOISE_LEVELS = ("estimate", "told")


def add_parser(subparsers):
    """Adds the `evaluate` sub-command to `subparsers`."""
    parser = subparsers.add_parser(
        "evaluate",
        help="PSNR/SSIM of models and baselines on a folder of images",
        description=(
            "Degrade every image of --dataset (sorted; image i with a fresh "
            "numpy default_rng(--seed), Gaussian noise not clipped) or read a "
            "paired GT/ + DAMAGED/ folder, restore with each model and baseline, "
            "and print PSNR, SSIM and seconds per image."
        ),
    )
    parser.add_argument("--preset", action="append", default=[], metavar="NAME",
                        help="a shipped preset (repeatable)")
    parser.add_argument("--model", action="append", default=[], metavar="FILE",
                        help="a saved .keras model (repeatable)")
    parser.add_argument("--dataset", required=True, metavar="DIR",
                        help="folder of clean images, or a paired folder with GT/ and DAMAGED/")
    parser.add_argument("--degradation", metavar="SPEC",
                        help="e.g. gaussian:25, impulse:0.5, motion:7, blur:levin09,gaussian:2.55")
    parser.add_argument("--baseline", action="extend", nargs="+", default=[], choices=BASELINES,
                        metavar="NAME",
                        help="identity, bm3d or wiener (repeatable; several per flag allowed)")
    parser.add_argument("--noise-level", action="extend", nargs="+", default=[],
                        choices=NOISE_LEVELS, metavar="HOW",
                        help="how noise-level-aware models get sigma: estimate (from each image; "
                        "the default) and/or told (the true level, as BM3D); both give two rows")
    parser.add_argument("--steps", type=arguments.STEPS, metavar="N",
                        help="NCA steps for the models (default: the model's)")
    arguments.add_self_ensemble(parser, many=True)
    parser.add_argument("--seed", type=arguments.SEED, default=0, help="evaluation noise seed (default 0)")
    parser.add_argument("--limit", type=arguments.integer(1), metavar="N",
                        help="evaluate only the first N images")
    parser.add_argument("--channels", type=int, choices=(1, 3),
                        help="convert images to 1 or 3 channels (default: the models', "
                             "else the files')")
    parser.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def load_models(args):
    """`{"model:<name>": model}` for every --preset and --model."""
    models = {}
    if not (args.preset or args.model):
        return models
    try:
        from keras_lnca.models import LNCA
    except ImportError as error:
        raise UserError(f"models are not available: {first_line(error)}") from None
    for name in args.preset:
        try:
            models[f"model:{name}"] = LNCA.from_preset(name, training=False)
        except UserError:
            raise
        except Exception as error:
            raise UserError(f"cannot load preset {name!r}: {first_line(error)}") from None
    from keras_lnca.models import presets

    for path in args.model:
        if not os.path.isfile(path):
            raise UserError(f"no such model file: {path}")
        models[f"model:{Path(path).stem}"] = presets.load(path, training=False)
    return models


def _channels(args, models):
    if args.channels is not None:
        return args.channels
    wanted = {getattr(m, "channels", None) for m in models.values()} - {None}
    if len(wanted) > 1:
        raise UserError("the models expect different channel counts: pass --channels")
    return wanted.pop() if wanted else None


def check(args):
    """The checks that need no Keras (run before it is imported): options, files, the spec."""
    from keras_lnca.degradations import parse

    if not (args.preset or args.model or args.baseline):
        raise UserError("nothing to evaluate: give --preset, --model or --baseline")
    if args.self_ensemble and not (args.preset or args.model):
        raise UserError("--self-ensemble applies to models: give --preset or --model")
    if not os.path.isdir(args.dataset):
        raise UserError(f"no such dataset folder: {args.dataset}")
    check_output(args.json, "--json", None, overwrite=args.overwrite)
    degradation = parse(args.degradation) if args.degradation is not None else None
    if "told" in args.noise_level and (degradation is None or "gaussian" not in degradation.kinds):
        raise UserError("--noise-level told needs a --degradation with Gaussian noise (its sigma)")
    return degradation


def run(args):
    """Runs `lnca evaluate`; returns the exit status."""
    from keras_lnca import evaluation
    from keras_lnca.evaluation import TOLD_SUFFIX

    degradation = check(args)
    for name in args.baseline:  # check compatibility before loading anything heavy
        evaluation.baseline(name, degradation)
    how = list(dict.fromkeys(args.noise_level or ["estimate"]))
    models = load_models(args)
    methods, told = {}, {}
    # Each --self-ensemble value gives its own rows, named with an `@xN` suffix.
    views = [(n, f"@x{n}") for n in dict.fromkeys(args.self_ensemble)] or [(None, "")]
    for (name, model), (n, suffix) in itertools.product(models.items(), views):
        if not getattr(model, "noise_map", False) or "estimate" in how:
            methods[name + suffix] = (lambda m, n: lambda image: m.restore(
                image, steps=args.steps, self_ensemble=n))(model, n)
        if getattr(model, "noise_map", False) and "told" in how:
            told[name + TOLD_SUFFIX + suffix] = (
                lambda m, n: lambda image, info: m.restore(
                    image, steps=args.steps, noise_level=info["sigma"], self_ensemble=n
                )
            )(model, n)
    result = evaluation.evaluate(
        args.dataset, degradation, methods, list(dict.fromkeys(args.baseline)),
        seed=args.seed, channels=_channels(args, models), limit=args.limit,
        progress=not args.quiet, told_methods=told,
    )
    print(evaluation.format_table(result))
    if args.json:
        evaluation.write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0
