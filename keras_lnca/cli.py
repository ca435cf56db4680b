"""The `lnca` command line.

Each sub-command lives in `keras_lnca/commands/<name>.py`, which exposes
`add_parser(subparsers)`; the parser it adds sets `func(args) -> int`.
Errors a user can cause (bad paths, bad images, bad options) are raised as
`keras_lnca.errors.UserError` and printed as one line on stderr, never as a
traceback.
"""

import argparse
import importlib
import os
import sys

# Order is the order shown in `lnca --help`.
COMMANDS = ("demo", "restore", "evaluate", "train", "benchmark", "export")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="lnca",
        description="Latent Neural Cellular Automata for image restoration.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"keras_lnca.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"keras_lnca.commands.{name}":
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv=None):
    from keras_lnca.errors import UserError

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"lnca {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lnca {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
