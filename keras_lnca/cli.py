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
import signal
import sys

# Order is the order shown in `lnca --help`.
COMMANDS = ("demo", "restore", "presets", "evaluate", "train", "benchmark", "export")
# Commands that read only files and never need Keras.
WITHOUT_KERAS = ("presets",)
# Commands that start TensorFlow whatever the backend (the seed of every
# framework, TensorBoard, export): its start-up lines are muted up front.
WITH_TENSORFLOW = ("train", "export", "benchmark")

TOUR = """lnca: Latent Neural Cellular Automata for image restoration.

  lnca demo                          denoise an embedded image, write lnca_demo.png
  lnca restore photo.png -o out.png  restore your images (the model matches gray/colour)
  lnca presets                       the shipped models and their figures
  lnca evaluate --preset NAME --dataset DIR --degradation gaussian:25 --baseline bm3d
  lnca train --config configs/lnca_denoise_gray_s25.json
  lnca export --preset NAME --format tflite -o model.tflite

`lnca COMMAND --help` tells more about each command."""


def import_keras_quietly(also_tensorflow=False):
    """Imports Keras (and its backend) with the backend's start-up log lines muted.

    TensorFlow's C++ start-up lines (oneDNN, CPU features, absl) go straight
    to the stderr file descriptor and ignore `TF_CPP_MIN_LOG_LEVEL`, so the
    descriptor is pointed at /dev/null for the import only. Returns the
    backend's name. `also_tensorflow` starts TensorFlow too, when installed,
    for commands that use it under any backend.
    """
    import importlib.util

    wanted = ["keras"] + (["tensorflow"] if also_tensorflow else [])
    if also_tensorflow and importlib.util.find_spec("tensorflow") is None:
        wanted.remove("tensorflow")
    if any(name not in sys.modules for name in wanted):
        from keras_lnca.startup import choose_backend
        from keras_lnca.startup import native_stderr_silenced

        choose_backend()
        try:
            with native_stderr_silenced():
                import keras

                # TensorFlow prints its lines when its runtime starts: start it here.
                keras.ops.convert_to_numpy(keras.ops.zeros((1,)) + 1)
                if "tensorflow" in wanted:
                    import tensorflow as tf

                    tf.constant(0.0).numpy()
        except Exception:  # noqa: BLE001 - the command's own import reports it
            pass
    keras = sys.modules.get("keras")
    return keras.backend.backend() if keras is not None else None


class _UsageError(Exception):
    def __init__(self, prog, message):
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, returned as exit status 2."""

    def error(self, message):
        raise _UsageError(self.prog, message)


def build_parser(command=None):
    """The `lnca` parser: with `command` (one of `COMMANDS`), that command's
    alone, so that a command imports no other command's module; else all."""
    parser = _Parser(
        prog="lnca",
        description="Latent Neural Cellular Automata for image restoration.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMANDS if command is None else (command,):
        try:
            module = importlib.import_module(f"keras_lnca.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"keras_lnca.commands.{name}":
                raise
            continue
        module.add_parser(subparsers)
    return parser


def _printable_names():
    """File names that the locale's encoding cannot show (bytes kept by Python
    as surrogates) are printed escaped, not raised on after the work is done."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def _one_line_warnings(command):
    """A Python warning during a command prints as one line, as errors and notes do."""
    import warnings

    from keras_lnca.errors import first_line

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"lnca {command}: warning: {first_line(message)}", file=sys.stderr)

    warnings.showwarning = show


def main(argv=None):
    from keras_lnca.errors import UserError

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _printable_names()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        print(TOUR)
        return 0
    parser = build_parser(argv[0] if argv[0] in COMMANDS else None)
    try:
        args = parser.parse_args(argv)
    except _UsageError as error:
        command = f"lnca {argv[0]}" if argv[0] in COMMANDS else "lnca"  # as every other error starts
        print(f"{command}: error: {error} (see {error.prog} --help)", file=sys.stderr)
        return 2
    # SIGTERM ends a command like Ctrl-C: temporary files are removed on the way out,
    # and neither lands inside framework code (`keras_lnca.interrupts`).
    from keras_lnca import interrupts

    interrupts.clear()
    signal.signal(signal.SIGTERM, interrupts.terminate)
    signal.signal(signal.SIGINT, interrupts.terminate)
    _one_line_warnings(args.command)
    # A command's `check(args)` catches what needs no Keras (missing files,
    # bad options) before the seconds a framework import takes.
    check = getattr(importlib.import_module(f"keras_lnca.commands.{args.command}"), "check", None)
    try:
        if check is not None:
            check(args)
        if args.command not in WITHOUT_KERAS:
            import_keras_quietly(also_tensorflow=args.command in WITH_TENSORFLOW)
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"lnca {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        interrupts.clear()
        print(f"lnca {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
