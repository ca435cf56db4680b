"""`lnca restore`: restore image files or folders with a preset or a model file."""

import pathlib
import time

from keras_lnca.errors import UserError


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
    source.add_argument("--preset", default=None, help="shipped preset name")
    source.add_argument("--model", default=None, help="path of a .keras model")
    parser.add_argument("--steps", type=int, default=None, help="NCA steps (default: the model's)")
    parser.add_argument("--tile", type=int, default=None, help="restore in tiles of this size (pixels)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
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


def run(args):
    from tqdm import tqdm

    from keras_lnca.commands.demo import DEFAULT_PRESET
    from keras_lnca.data import load_image
    from keras_lnca.data import save_image
    from keras_lnca.models.lnca import LNCA

    if args.steps is not None and args.steps < 0:
        raise UserError("--steps must be >= 0")
    if args.tile is not None and args.tile < 8:
        raise UserError("--tile must be at least 8 pixels")
    files = _inputs(args.inputs)
    output = pathlib.Path(args.output)
    single = len(files) == 1 and not pathlib.Path(args.inputs[0]).is_dir() and output.suffix != ""
    targets = [output] if single else [output / (f.stem + ".png") for f in files]
    if not args.overwrite:
        existing = [t for t in targets if t.exists()]
        if existing:
            raise UserError(f"{existing[0]} exists (pass --overwrite to replace it)")
    model = LNCA.from_preset(args.model or args.preset or DEFAULT_PRESET)
    if not single:
        output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for source, target in tqdm(list(zip(files, targets)), desc="restoring", unit="image",
                               disable=len(files) < 2):
        image = load_image(source, channels=model.channels)
        restored = model.restore(image, steps=args.steps, tile=args.tile)
        save_image(target, restored)
    seconds = time.perf_counter() - start
    print(f"restored {len(files)} image(s) in {seconds:.1f} s -> {output}")
    return 0
