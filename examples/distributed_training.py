"""Data-parallel training of an LNCA with the strategy of the Keras backend.

    KERAS_BACKEND=jax python examples/distributed_training.py --cpu-devices 2
    KERAS_BACKEND=tensorflow python examples/distributed_training.py --cpu-devices 2

JAX: `keras.distribution.DataParallel` over every device. Each global batch
is sharded across the devices, the weights and the sample pool are
replicated, and the compiled step is the single-device computation on the
global batch.

TensorFlow: `tf.distribute.MirroredStrategy`. The model is created and
compiled in `strategy.scope()` (`set_phase` re-enters it); each replica
trains on its slice of the global batch and keeps its own sample pool.

PyTorch: Keras has no data-parallel distribution for the torch backend; the
script says so and exits.

`--cpu-devices N` splits the host CPU into N devices to try this without
accelerators; without it the script uses the GPUs it finds (or one CPU).
`--batch-size` is the global batch, a multiple of the device count. The
data are `--data DIR` (a folder of clean images; the `tf.data` pipeline
crops them and adds Gaussian noise) or, by default, synthetic smooth images.
"""

import argparse
import contextlib
import os
import sys

BACKENDS = ("jax", "tensorflow")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-devices", type=int, default=0, help="split the CPU into N devices")
    parser.add_argument("--data", default=None, help="folder of clean training images")
    parser.add_argument("--sigma", type=float, default=25.0, help="noise level (0-255 scale)")
    parser.add_argument("--batch-size", type=int, default=8, help="global batch size")
    parser.add_argument("--crop", type=int, default=32, help="training crop size")
    parser.add_argument("--steps", type=int, default=20, help="training steps per phase")
    parser.add_argument("--train-steps", default="4,8", help="NCA steps per sample, low,high")
    parser.add_argument("--pool-size", type=int, default=64, help="sample pool entries (0: off)")
    parser.add_argument("--cell", default="nafca", choices=("nafca", "vitca", "sobel"))
    parser.add_argument("--save", default=None, help="write the trained model (.keras)")
    return parser.parse_args()


def split_cpu(backend, devices):
    """Makes `devices` CPU devices; must run before the backend starts."""
    if backend == "jax":
        flag = f"--xla_force_host_platform_device_count={devices}"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()
    else:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * devices
        )


def distribution(backend):
    """Returns `(scope, devices)`: where to build the model, and how many devices share a batch."""
    import keras

    if backend == "jax":
        import jax

        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
        return contextlib.nullcontext(), len(jax.devices())
    import tensorflow as tf

    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
    return strategy.scope(), strategy.num_replicas_in_sync


def synthetic_pairs(count, size, sigma, seed=0):
    """(noisy, clean) gray images: random smooth patterns plus Gaussian noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    a, b, c = (rng.random((count, 1, 1)) * 12 for _ in range(3))
    clean = 0.5 + 0.2 * np.sin(a * xx + c) + 0.2 * np.cos(b * yy - c)
    clean = clean[..., None].astype("float32")
    noisy = clean + rng.normal(0.0, sigma / 255.0, clean.shape).astype("float32")
    return noisy, clean


def main():
    args = parse_args()
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend not in BACKENDS:
        sys.exit(
            f"Keras has no data-parallel distribution for the {backend!r} backend; "
            "run with KERAS_BACKEND=jax or KERAS_BACKEND=tensorflow."
        )
    if args.cpu_devices:
        split_cpu(backend, args.cpu_devices)

    import keras
    import numpy as np

    import keras_lnca as kl

    scope, devices = distribution(backend)
    if args.batch_size % devices:
        sys.exit(f"--batch-size {args.batch_size} is not a multiple of the {devices} devices.")
    print(f"{backend}: {devices} device(s), global batch {args.batch_size}, "
          f"{args.batch_size // devices} per device")

    if args.data:
        train = kl.data.folder_dataset(
            args.data, f"gaussian:{args.sigma}", crop_size=args.crop,
            batch_size=args.batch_size, channels=1, repeat=True, seed=0,
        )
        fit_data = dict(x=train, steps_per_epoch=args.steps)
    else:
        noisy, clean = synthetic_pairs(args.steps * args.batch_size, args.crop, args.sigma)
        fit_data = dict(x=noisy, y=clean, batch_size=args.batch_size)
    held_out = synthetic_pairs(args.batch_size, args.crop, args.sigma, seed=1)

    low, high = (int(s) for s in args.train_steps.split(","))
    with scope:
        model = kl.LNCA(
            channels=1, cell=args.cell, train_steps=(low, high), inference_steps=high,
            pool_size=args.pool_size, pool_image_size=args.crop, seed=0,
        )
        model.compile(decay_steps=2 * args.steps)

    for phase in model.phases:
        model.set_phase(phase)
        history = model.fit(epochs=1, verbose=0, **fit_data)
        logs = {name: values[-1] for name, values in history.history.items()}
        print(f"phase {phase}: loss {logs['loss']:.4f}, training PSNR {logs['psnr']:.2f} dB")

    scores = model.evaluate(*held_out, batch_size=args.batch_size, verbose=0, return_dict=True)
    noisy_psnr = kl.metrics.PSNR()(held_out[1], np.clip(held_out[0], 0, 1))
    print(f"held-out PSNR {scores['psnr']:.2f} dB (noisy input {float(noisy_psnr):.2f} dB)")
    if args.pool_size:
        filled = int(np.sum(keras.ops.convert_to_numpy(model.pool_filled)))
        whose = "replica 0's pool" if backend == "tensorflow" and devices > 1 else "pool"
        print(f"{whose}: {filled}/{args.pool_size} entries filled")
    if args.save:
        model.save(args.save)
        print(f"saved {args.save}")


if __name__ == "__main__":
    main()
