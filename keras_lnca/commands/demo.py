"""`lnca demo`: restore an image shipped inside the package with a shipped preset."""

import pathlib
import time

import numpy as np

from keras_lnca.commands import arguments
from keras_lnca.commands.outputs import check_output

from keras_lnca.shipped_image import DEMO_SIGMA as SIGMA

DEFAULT_PRESET = "lnca_denoise_gray_s25"


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "demo",
        help="denoise an embedded image with a shipped preset and write a before/after PNG",
        description="Adds sigma=25 Gaussian noise (seed 0) to an image shipped with the "
        "package, restores it with a shipped preset, writes a noisy/restored/clean PNG "
        "and prints PSNR/SSIM. Needs no data and no network.",
    )
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"preset name (default {DEFAULT_PRESET})")
    parser.add_argument("-o", "--output", default="lnca_demo.png", help="PNG to write (default lnca_demo.png)")
    parser.add_argument("--seed", type=arguments.SEED, default=0, help="noise seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.set_defaults(func=run)


def check(args):
    """The checks that need no Keras (run before it is imported)."""
    check_output(args.output, "--output", ".png", overwrite=args.overwrite)


def grid_png(path, panels, labels=None, zoom=None):
    """Writes the labelled panels side by side (8-bit PNG), with an optional zoomed detail."""
    from keras_lnca import figures
    from keras_lnca.data import save_image

    labels = labels or [""] * len(panels)
    picture = figures.comparison(panels, labels, zoom=zoom)
    save_image(path, picture.astype(np.uint8))


def run(args):
    from keras_lnca import evaluation
    from keras_lnca.models import presets
    from keras_lnca.shipped_image import demo_image
    from keras_lnca.models.lnca import LNCA

    output = pathlib.Path(args.output)
    check(args)
    model = LNCA.from_preset(args.preset, training=False)
    clean = demo_image(model.channels)
    noisy = clean + np.random.default_rng(args.seed).normal(0, SIGMA / 255, clean.shape).astype("float32")
    start = time.perf_counter()
    restored = model.restore(noisy)
    seconds = time.perf_counter() - start
    noisy_scores = evaluation.psnr(clean, noisy), evaluation.ssim(clean, noisy)
    restored_scores = evaluation.psnr(clean, restored), evaluation.ssim(clean, restored)
    from keras_lnca import figures

    zoom = figures.smoothest_window(clean, 64)
    grid_png(
        output,
        [np.clip(noisy, 0, 1), restored, clean],
        [f"noisy {noisy_scores[0]:.2f} dB", f"restored {restored_scores[0]:.2f} dB", "clean"],
        zoom=zoom,
    )
    print(f"preset {args.preset}: sigma={SIGMA:g} noise on the embedded {clean.shape[1]}x{clean.shape[0]} image")
    print(f"  noisy     PSNR {noisy_scores[0]:6.2f} dB  SSIM {noisy_scores[1]:.4f}")
    print(f"  restored  PSNR {restored_scores[0]:6.2f} dB  SSIM {restored_scores[1]:.4f}  ({seconds:.2f} s)")
    expected = presets.metadata(args.preset).get("demo", {})
    if "psnr" in expected:
        print(f"  preset card: restored PSNR {expected['psnr']:.2f} dB")
    print(f"wrote {output}")
    return 0
