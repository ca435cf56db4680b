"""`lnca export`: write a model as a SavedModel, a TFLite file or an ONNX file."""

import pathlib

from keras_lnca.commands import arguments
from keras_lnca.errors import UserError

FORMATS = ("saved_model", "tflite", "onnx")
QUANTIZATIONS = ("float16", "dynamic", "int8")


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="export a model for deployment (SavedModel, TFLite, ONNX)",
        description="Exports the deterministic inference path (encoder, NCA steps, decoder) "
        "of a .keras model or a shipped preset, checks the written file against the Keras "
        "model (max abs difference and PSNR on random and test images) and prints the "
        "report. TFLite files use builtin ops only. The output is written to a temporary "
        "path and renamed once it passed the checks, so a failure never leaves a partial "
        "or overwritten output.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", default=None, metavar="FILE", help="path of a .keras model")
    source.add_argument("--preset", default=None, metavar="NAME", help="shipped preset name")
    parser.add_argument("--format", required=True, choices=FORMATS, help="output format")
    parser.add_argument(
        "--quantization", default=None, choices=QUANTIZATIONS,
        help="TFLite only: float16, dynamic (int8 weights) or int8 (full integer); "
        "default float32",
    )
    parser.add_argument(
        "--size", default="256,256", metavar="H,W",
        help="input height,width fixed in the export (default 256,256); 'any' for a "
        "resizable size (SavedModel; TFLite reports why where the converter cannot)",
    )
    parser.add_argument(
        "--max-psnr-loss", type=arguments.number(0.0), default=None, metavar="DB",
        help="quantized TFLite: largest PSNR loss (dB) against the Keras model on the "
        "test images (default 0.05 float16, 0.5 dynamic, 1 int8)",
    )
    parser.add_argument("--steps", type=arguments.STEPS, default=None, help="NCA steps (default: the model's)")
    parser.add_argument("--no-verify", action="store_true", help="skip the parity checks")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="output file (.tflite, .onnx) or folder (SavedModel)")
    parser.set_defaults(func=run)


def parse_size(text):
    """`"256,256"` -> `(256, 256)`, `"128"` -> `(128, 128)`, `"any"` -> `(None, None)`."""
    text = text.strip().lower()
    if text in ("any", "none", "dynamic"):
        return None, None
    parts = [p.strip() for p in text.replace("x", ",").split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise UserError(f"--size must be H,W (e.g. 256,256) or 'any', got {text!r}") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 8 or max(values) > arguments.MAX_SIDE:
        raise UserError(f"--size must be two sizes from 8 to {arguments.MAX_SIDE} (H,W), got {text!r}")
    return tuple(values)


def check(args):
    """The checks that need no Keras (run before it is imported)."""
    parse_size(args.size)


def run(args):
    from keras_lnca import export

    size = parse_size(args.size)
    if args.quantization and args.format != "tflite":
        raise UserError("--quantization applies to --format tflite only")
    if args.max_psnr_loss is not None and not args.quantization:
        raise UserError("--max-psnr-loss applies to quantized TFLite exports only")
    output = pathlib.Path(args.output)
    if not output.parent.is_dir():
        raise UserError(f"no such folder: {output.parent}")
    if output.exists() and not args.overwrite:
        raise UserError(f"{output} exists (pass --overwrite to replace it)")
    if output.is_dir() != (args.format == "saved_model") and output.exists():
        kind = "folder" if output.is_dir() else "file"
        raise UserError(f"{output} is a {kind}; {args.format} writes a "
                        f"{'folder' if args.format == 'saved_model' else 'file'}")
    model = args.model or args.preset
    if args.model and not pathlib.Path(args.model).is_file():
        raise UserError(f"no such model file: {args.model}")
    if args.model and pathlib.Path(args.model).suffix != ".keras":
        raise UserError(f"--model expects a .keras file, got {args.model}")
    options = dict(verify=not args.no_verify, steps=args.steps)
    try:
        if args.format == "tflite":
            report = export.export_tflite(
                model, output, quantization=args.quantization, input_shape=size,
                max_psnr_loss=args.max_psnr_loss, **options
            )
        elif args.format == "saved_model":
            report = export.export_saved_model(model, output, input_shape=size, **options)
        else:
            report = export.export_onnx(model, output, input_shape=size, **options)
    except export.ExportError as error:
        raise UserError(str(error)) from None
    print(report)
    return 0
