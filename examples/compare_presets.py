"""Side-by-side pictures of shipped presets on one noisy image, with a zoomed flat region.

    KERAS_BACKEND=jax python examples/compare_presets.py \
        --presets lnca_paper_gray_s25,lnca_denoise_gray_s25_s2d,lnca_denoise_gray_s25 \
        -o docs/comparison_gray.png

By default the image is the package's embedded demo image (σ=25 noise, seed 0, the `lnca demo`
setting); `--image FILE` takes any image. Each panel is labelled with the preset and its PSNR;
the row below enlarges the flattest 64×64 window 3×, where block artefacts and mottling show.
"""

import argparse

import numpy as np

import keras_lnca as kl
from keras_lnca import figures
from keras_lnca.shipped_image import DEMO_SIGMA
from keras_lnca.shipped_image import demo_image


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", required=True, help="comma-separated preset names")
    parser.add_argument("--image", default=None, help="an image file (default: the demo image)")
    parser.add_argument("--sigma", type=float, default=DEMO_SIGMA, help="noise level (0-255 scale)")
    parser.add_argument("-o", "--output", required=True, help="PNG to write")
    args = parser.parse_args(argv)
    names = [n for n in args.presets.split(",") if n]
    models = [kl.LNCA.from_preset(n) for n in names]
    channels = max(m.channels for m in models)
    clean = demo_image(channels) if args.image is None else kl.data.load_image(args.image, channels)
    noisy = kl.degradations.gaussian_noise(clean, args.sigma, seed=0)
    panels, labels = [np.clip(noisy, 0, 1)], [f"noisy {kl.evaluation.psnr(clean, noisy, clip=False):.2f} dB"]
    for name, model in zip(names, models):
        restored = model.restore(noisy if model.channels == channels else noisy[..., :1])
        panels.append(restored)
        short = name.replace("lnca_", "").replace("denoise_", "")
        labels.append(f"{short} {kl.evaluation.psnr(clean, restored):.2f} dB")
        print(f"{name}: {kl.evaluation.psnr(clean, restored):.2f} dB")
    panels.append(clean)
    labels.append("clean")
    picture = figures.comparison(panels, labels, zoom=figures.smoothest_window(clean, 64))
    kl.data.save_image(args.output, picture)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
