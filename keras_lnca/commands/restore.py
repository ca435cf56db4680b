"""`lnca restore`: restore image files or folders with a preset or a model file."""

import os
import pathlib
import sys
import time

from keras_lnca.commands import arguments
from keras_lnca.models.checks import MAX_STEPS
from keras_lnca.errors import UserError
from keras_lnca.errors import first_line


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "restore",
        help="restore image files or folders",
        description="Restores images with a shipped preset or a .keras model. Each output "
        "is written to a temporary file and renamed, so a failure never leaves a partial "
        "or overwritten file.",
    )
    parser.add_argument("inputs", nargs="+", metavar="IN", help="image files or folders")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="output file (one input image) or folder")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", default=None,
                        help="shipped preset name (default: the blind model matching each "
                        "image, gray or colour; see `lnca presets`)")
    source.add_argument("--model", default=None, help="path of a .keras model")
    parser.add_argument("--noise-level", type=arguments.number(0.0, 255.0), default=None, metavar="SIGMA",
                        help="noise sigma on the 0-255 scale, for noise-level-aware models "
                        "(default: estimated per image, and printed)")
    parser.add_argument("--steps", type=arguments.integer(0, MAX_STEPS), default=None, help="NCA steps (default: the model's)")
    arguments.add_self_ensemble(parser)
    parser.add_argument("--tile", type=arguments.integer(8), default=None,
                        help="restore in tiles of this size in pixels (default: in one piece "
                        "when it fits --memory-budget, else in tiles that do)")
    parser.add_argument("--memory-budget", type=arguments.number(64.0), default=None,
                        metavar="MB", help="memory one restoration may take, in MB (default: "
                        "LNCA_MEMORY_BUDGET_MB or 2048); larger images are restored in tiles")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--quiet", action="store_true", help="no line per image")
    parser.add_argument("--keep-going", action="store_true",
                        help="skip an image that fails to decode or restore, report it at the end "
                        "and exit with status 2 (default: stop at the first)")
    parser.set_defaults(func=run)


def _inputs(paths):
    from keras_lnca.data import list_images

    files = []
    for raw in paths:
        path = pathlib.Path(raw)
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise UserError(f"No images in folder {path}")
            files.extend(pathlib.Path(p) for p in found)
        elif path.exists():
            files.append(path)
        else:
            raise UserError(f"No such file or folder: {path}")
    return files


def _check_outputs(files, targets):
    from keras_lnca.data.io import writable_extension

    for target in targets:
        writable_extension(target)
        if target.is_dir():
            raise UserError(f"{target} is a folder, not an image file")
    seen = {}
    for source, target in zip(files, targets):
        if target in seen:
            raise UserError(f"{seen[target]} and {source} would both be written to {target}")
        seen[target] = source


def check_writable_folder(folder):
    """Raises a one-line `UserError` unless files can be created in `folder` (or where it would be made)."""
    folder = pathlib.Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"cannot write into {folder}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cannot write into {folder}: permission denied")


def _target_name(source):
    """Output name in a folder: PNG, or the input's own format where it keeps 16 bits."""
    suffix = source.suffix.lower()
    return source.stem + (source.suffix if suffix in (".png", ".tif", ".tiff") else ".png")


def _input_channels(files):
    """Checks every input before any work starts; returns each one's channels.

    Reads headers and checks the compressed data (a truncated or corrupt
    file fails here, before any output is written), but decodes no pixels:
    each image is decoded once, when it is restored.
    """
    from keras_lnca.data.io import image_info

    return [image_info(path, verify=True)[2] for path in files]


def _conversion_note(files, channels, model_channels):
    """One line saying which inputs are converted to the model's channel count, or None."""
    converted = [f for f, c in zip(files, channels) if c != model_channels]
    if not converted:
        return None
    if model_channels == 3:
        kind, action = "gray", "replicated to RGB for this colour model"
    else:
        kind, action = "colour", "converted to luma for this gray model"
    if len(files) == 1:
        return f"{converted[0].name} is {kind}: {action}"
    example = converted[0].name
    return f"{len(converted)} of {len(files)} images are {kind} (e.g. {example}): {action}"


def check(args):
    """The checks that need no Keras (run before it is imported): options, inputs, outputs."""
    _plan(args)


def _plan(args):
    """`(files, output, single, targets)`, or a one-line `UserError`."""
    files = _inputs(args.inputs)
    output = pathlib.Path(args.output)
    single = len(files) == 1 and not pathlib.Path(args.inputs[0]).is_dir() and output.suffix != ""
    if not single and output.is_file():
        raise UserError(f"{output} is a file; several inputs need an output folder")
    if not single and output.suffix and not output.is_dir() and not args.output.endswith(("/", os.sep)):
        raise UserError(
            f"{len(files)} inputs need an output folder, and {output} reads as a file name: "
            f"end it with '/' to make that folder"
        )
    targets = [output] if single else [output / _target_name(f) for f in files]
    _check_outputs(files, targets)
    check_writable_folder(output.parent if single else output)
    if not args.overwrite:
        existing = [t for t in targets if t.exists()]
        if existing:
            raise UserError(f"{existing[0]} exists (pass --overwrite to replace it)")
    return files, output, single, targets


def run(args):
    from keras_lnca.models import presets
    from keras_lnca.models.lnca import LNCA

    files, output, single, targets = _plan(args)
    channels = _input_channels(files)
    if args.model or args.preset:
        names = {c: args.model or args.preset for c in set(channels)}
    else:  # the model matching each image: gray or colour
        names = {c: presets.default_for(c) for c in set(channels)}
    models = {}
    for name in sorted(set(names.values())):
        models[name] = LNCA.from_preset(name, training=False)
    ignoring = sorted(name for name, model in models.items() if not model.noise_map)
    if args.noise_level is not None and ignoring:
        print(f"lnca restore: note: {', '.join(ignoring)} take(s) no noise level (trained on "
              "the noise in the card); --noise-level is ignored there", file=sys.stderr)
    if args.model or args.preset:
        model = models[names[channels[0]]]
        note = _conversion_note(files, channels, model.channels)
        if note:
            print(f"lnca restore: note: {note}", file=sys.stderr)
    if not single:
        output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    failed = []
    # One line per image is the progress report (`--quiet`: none).
    for source, target, count in zip(files, targets, channels):
        try:
            _restore_one(source, target, models[names[count]], names[count], args)
        except UserError as error:
            if not args.keep_going:
                raise
            failed.append(source.name)
            print(f"lnca restore: skipped {source.name}: {error}", file=sys.stderr)
    seconds = time.perf_counter() - start
    print(f"restored {len(files) - len(failed)} image(s) in {seconds:.1f} s -> {output}")
    if failed:
        print(f"lnca restore: error: {len(failed)} of {len(files)} image(s) failed and were skipped: "
              f"{', '.join(failed[:5])}{' ...' if len(failed) > 5 else ''}", file=sys.stderr)
        return 2
    return 0


def _restore_one(source, target, model, name, args):
    """Reads, restores and writes one image; prints its line unless `--quiet`.

    What the output cannot carry over (alpha in a format without it, an ICC
    profile or EXIF in a 16-bit file, float depth outside TIFF, frames after
    the first) is said in a note on stderr, never dropped silently.
    """
    import numpy as np

    from keras_lnca.data import save_image
    from keras_lnca.data.io import ALPHA_EXTENSIONS
    from keras_lnca.data.io import convert_channels
    from keras_lnca.data.io import read_metadata
    from keras_lnca.data.io import read_with_alpha
    from keras_lnca.degradations import estimate_noise_map

    began = time.perf_counter()
    array, alpha, scale = read_with_alpha(source)  # decoded once, at its own depth
    metadata = read_metadata(source)
    notes = []
    if metadata["frames"] > 1:
        notes.append(f"{source.name} holds {metadata['frames']} frames or pages; only the first "
                     "is restored")
    image = convert_channels(array, model.channels)
    level, how = None, ""
    if model.noise_map:
        level, how = args.noise_level, "given"
        if level is None:
            level, how = estimate_noise_map(image.astype("float32") / scale), "estimated"
    try:
        restored = model.restore(image, steps=args.steps, tile=args.tile, noise_level=level,
                                 memory_budget_mb=args.memory_budget, progress=not args.quiet,
                                 self_ensemble=args.self_ensemble)
    except ValueError as error:  # e.g. a broken model's non-finite output: no file
        raise UserError(f"{source.name}: {first_line(error)}") from None
    if alpha is not None and target.suffix.lower() not in ALPHA_EXTENSIONS:
        notes.append(f"{target.name} holds no alpha channel; the alpha of {source.name} is dropped")
    elif alpha is not None:  # the model restores the colour; alpha passes through untouched
        restored = np.concatenate([restored, alpha.astype(restored.dtype)], axis=-1)
    keep_float = restored.dtype.kind == "f"
    if keep_float and (restored.shape[-1] != 1 or target.suffix.lower() not in (".tif", ".tiff")):
        notes.append(f"{source.name} holds 32-bit floats; {target.name} stores 8 bits "
                     "(a gray .tif output keeps the floats)")
    dropped = save_image(target, restored, metadata=metadata, overwrite=args.overwrite,
                         keep_float=keep_float)  # uint16 stays uint16
    if dropped:
        notes.append(f"{target.name} does not keep the {' and '.join(d.replace('_', ' ') for d in dropped)} "
                     f"of {source.name} (not written in {'16-bit' if restored.dtype == np.uint16 else target.suffix} files)")
    for note in notes:
        print(f"lnca restore: note: {note}", file=sys.stderr)
    if not args.quiet:
        sigma = "" if level is None else f", sigma {_level_text(level)} ({how})"
        views = args.self_ensemble or model.self_ensemble
        views = f", {views} views averaged" if views > 1 else ""
        print(f"{source.name}: {pathlib.Path(name).name}{sigma}{views}, "
              f"{time.perf_counter() - began:.2f} s -> {target}")


def _level_text(level):
    """`"25.0"`, or `"8.1 to 44.6 (a map)"` for a level that varies across the image."""
    import numpy as np

    if np.ndim(level) == 0:
        return f"{float(level):.1f}"
    return f"{float(np.min(level)):.1f} to {float(np.max(level)):.1f} (a map)"
