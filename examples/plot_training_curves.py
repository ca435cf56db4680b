"""Training curves of runs under `runs/`: training PSNR (on the training crops, noisy pool
samples included) against optimizer steps, from each run's `log_<phase>.csv`.

    python examples/plot_training_curves.py runs/lnca_denoise_gray_s25 runs/lnca_denoise_color_s25 \
        -o docs/benchmarks/training_curves.png
"""

import argparse
import csv
import pathlib


def curve(run_dir, phase="nca"):
    run_dir = pathlib.Path(run_dir)
    with open(run_dir / f"log_{phase}.csv") as f:
        rows = list(csv.DictReader(f))
    recipe_name = run_dir.name
    steps_per_epoch = None
    # The recipe gives the batches per epoch.
    config = pathlib.Path("configs") / f"{recipe_name}.json"
    if config.exists():
        from keras_lnca import training

        steps_per_epoch = len(training.training_data(training.load_recipe(config)))
    epochs = [int(r["epoch"]) + 1 for r in rows]
    psnr = [float(r["psnr"]) for r in rows]
    steps = [e * (steps_per_epoch or 1) for e in epochs]
    return recipe_name, steps, psnr, steps_per_epoch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for run in args.runs:
        name, steps, psnr, per_epoch = curve(run)
        ax.plot(steps, psnr, marker=".", label=name)
        print(f"{name}: {len(steps)} epochs of {per_epoch} steps, last training PSNR {psnr[-1]:.2f} dB")
    ax.set_xlabel("optimizer steps")
    ax.set_ylabel("training PSNR (dB, crops)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
