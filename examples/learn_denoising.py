"""Trains a default LNCA on Train400 crops with AWGN sigma=25, both phases, on CPU.

It shows that the model learns: it prints the held-out PSNR of the noisy input
and of the restoration on BSD68 images (full resolution, noise drawn with
numpy per image, noisy input not clipped, as in `lnca evaluate`).

    KERAS_BACKEND=jax python examples/learn_denoising.py --minutes 20 --save out/gray.keras

Training crops are 32x32 (the paper's size), noise is not clipped either. `--smoke` trains a
tiny automaton for a few batches instead (the tests run the README's command that way).
"""

import argparse
import os
import pathlib
import time

import keras
import numpy as np
from PIL import Image

import keras_lnca as kl


class NoisyCrops(keras.utils.PyDataset):
    """Random 32x32 crops (flips, 90-degree rotations) + Gaussian noise, numpy only."""

    def __init__(self, images, sigma, batch_size, batches, crop=32, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.images, self.sigma, self.batch_size = images, sigma / 255.0, batch_size
        self.batches, self.crop, self.seed, self.epoch = batches, crop, seed, 0

    def __len__(self):
        return self.batches

    def on_epoch_end(self):
        self.epoch += 1

    def __getitem__(self, index):
        rng = np.random.default_rng((self.seed, self.epoch, index))
        clean = []
        for i in rng.integers(0, len(self.images), self.batch_size):
            image = self.images[i]
            top = rng.integers(0, image.shape[0] - self.crop + 1)
            left = rng.integers(0, image.shape[1] - self.crop + 1)
            patch = np.rot90(image[top : top + self.crop, left : left + self.crop], rng.integers(4))
            clean.append(patch[:, ::-1] if rng.random() < 0.5 else patch)
        clean = np.asarray(clean, "float32")
        noisy = clean + rng.normal(0.0, self.sigma, clean.shape).astype("float32")
        return noisy, clean


def load_folder(folder, limit=None):
    paths = sorted(p for p in pathlib.Path(folder).iterdir() if p.suffix.lower() in (".png", ".jpg"))
    images = [np.asarray(Image.open(p).convert("L"), "float32")[..., None] / 255.0 for p in paths]
    return images[:limit] if limit else images


def psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((np.clip(a, 0, 1) - b) ** 2))


class StopAfter(keras.callbacks.Callback):
    def __init__(self, seconds):
        super().__init__()
        self.deadline = time.time() + seconds

    def on_train_batch_end(self, batch, logs=None):
        if time.time() > self.deadline:
            self.model.stop_training = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("LNCA_DATA", "../shared/data"))
    parser.add_argument("--minutes", type=float, default=10.0, help="total training time")
    parser.add_argument("--ae-fraction", type=float, default=0.25, help="share of time for phase 1")
    parser.add_argument("--sigma", type=float, default=25.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--eval-images", type=int, default=8)
    parser.add_argument("--save", default=None, help="write the trained model (.keras)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny automaton (2-4 training steps, 8 at inference) for a quick check")
    args = parser.parse_args()

    keras.utils.set_random_seed(args.seed)
    data = pathlib.Path(args.data)
    train = load_folder(data / "gray" / "train400")
    test = load_folder(data / "gray" / "bsd68", args.eval_images)
    dataset = NoisyCrops(train, args.sigma, args.batch_size, batches=200, seed=args.seed)

    smoke = dict(train_steps=(2, 4), inference_steps=8, pool_size=16, cell_config={"embed_dim": 16})
    model = kl.LNCA(channels=1, seed=args.seed, **(smoke if args.smoke else {}))
    seconds = 60 * args.minutes
    # Cosine decay over the steps that fit in the time budget (rough estimate).
    model.compile(decay_steps=4000)
    start = time.time()
    model.fit(dataset, epochs=1000, verbose=2, callbacks=[StopAfter(seconds * args.ae_fraction)])
    model.set_phase("nca")
    remaining = max(seconds - (time.time() - start), 0.0)   # at least one batch
    model.fit(dataset, epochs=1000, verbose=2, callbacks=[StopAfter(remaining)])
    print(f"trained for {(time.time() - start) / 60:.1f} min on {keras.backend.backend()}")

    noisy_psnr, restored_psnr = [], []
    for i, clean in enumerate(test):
        rng = np.random.default_rng(i)
        noisy = clean + rng.normal(0.0, args.sigma / 255.0, clean.shape).astype("float32")
        restored = model.predict(noisy[None], verbose=0)[0]
        noisy_psnr.append(psnr(noisy, clean))
        restored_psnr.append(psnr(restored, clean))
    print(f"BSD68 (first {len(test)}), sigma={args.sigma:g}: noisy {np.mean(noisy_psnr):.2f} dB -> "
          f"restored {np.mean(restored_psnr):.2f} dB (gain {np.mean(restored_psnr) - np.mean(noisy_psnr):+.2f} dB)")
    if args.save:
        pathlib.Path(args.save).parent.mkdir(parents=True, exist_ok=True)
        model.save(args.save)
        print("saved", args.save)


if __name__ == "__main__":
    main()
