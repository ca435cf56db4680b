"""`lnca train --config FILE`: reproduce a preset from its recipe."""

import pathlib

from keras_lnca.commands import arguments


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train a model from a recipe (reproduces a preset)",
        description="Trains both phases of a recipe (configs/*.json) with checkpoints "
        "(a killed run resumes), evaluates it and writes <name>.keras + <name>.json.",
    )
    parser.add_argument("--config", required=True, help="recipe JSON file")
    parser.add_argument("--run-dir", default=None, help="checkpoints and logs (default runs/<name>)")
    parser.add_argument("-o", "--output", default=None,
                        help="where to write the preset files (default: the run folder)")
    parser.add_argument("--epochs-scale", type=arguments.number(0.0, 1000.0, above=True), default=1.0,
                        help="multiply every phase's epochs (e.g. 0.01 for a smoke run)")
    parser.add_argument("--eval-limit", type=arguments.integer(1), default=None, help="evaluate on the first N images")
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation")
    parser.add_argument("--snapshot", action="store_true",
                        help="train nothing: evaluate and write the preset from the run's latest "
                        "checkpoint as it stands (the run can go on later)")
    parser.set_defaults(func=run)


def run(args):
    from keras_lnca import training

    recipe = training.load_recipe(args.config)
    for phase in recipe["phases"]:
        if int(phase["epochs"]) > 0:  # a phase of 0 epochs (init_from alone) stays so
            phase["epochs"] = max(1, round(int(phase["epochs"]) * args.epochs_scale))
    run_dir = pathlib.Path(args.run_dir or pathlib.Path("runs") / recipe["name"])
    model, summary = training.train(recipe, run_dir, snapshot=args.snapshot)
    evaluations = [] if args.no_eval else training.evaluate_recipe(model, recipe, args.eval_limit)
    path = training.write_preset(model, recipe, summary, evaluations, args.output or run_dir, args.config)
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0
