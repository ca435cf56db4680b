"""Trains a tiny LNCA on one device and data-parallel on two, for tests/test_distributed.py.

    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
        python tests/distributed_worker.py OUT.npz '{"pool_size": 0}' --phases autoencoder,nca

Under JAX the two-device run uses `keras.distribution.DataParallel`; under
TensorFlow the CPU is split into two logical devices and the run uses
`tf.distribute.MirroredStrategy`. The one-device run is plain Keras. Both
start from the same weights and see the same global batches, in order.

OUT.npz holds, for each run `1` and `2`: every model variable before and
after training (`<run>/initial<i>`, `<run>/variable<i>`, in `model.variables`
order; their paths in `<run>/paths`), the loss history (`<run>/history/<name>`), and for the
two-device run each replica's copy of the pool (`2/replica<r>/<variable>`)
and the devices the variables live on (`2/devices`); with `--evaluate`,
the scores of `model.evaluate` on the training pairs (`<run>/evaluate/<name>`).
"""

import argparse
import contextlib
import json
import os

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
if BACKEND == "tensorflow":
    # Before anything initialises the TensorFlow runtime.
    import tensorflow as tf

    _cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lnca as kl  # noqa: E402

GLOBAL_BATCH = 4
TINY = dict(
    channels=1,
    cell="sobel",
    downsampling=1,
    latent_channels=4,
    hidden_channels=4,
    train_steps=(1, 2),
    inference_steps=2,
    fire_rate=0.5,
    pool_image_size=16,
    cell_config={"hidden_units": 8},
    seed=3,
)


def training_pairs(batches):
    """(degraded, clean) 16x16 gray crops: smooth images plus noise."""
    rng = np.random.default_rng(0)
    n = batches * GLOBAL_BATCH
    yy, xx = np.mgrid[0:16, 0:16] / 16.0
    a, b, c = rng.random((3, n, 1, 1))
    clean = (0.5 + 0.4 * np.sin(6 * a * xx + 6 * b * yy + 6 * c))[..., None].astype("float32")
    degraded = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1).astype("float32")
    return degraded, clean


def strategy_scope(devices):
    """A context manager that makes a model distributed over `devices` devices."""
    if devices == 1:
        if BACKEND == "jax":
            keras.distribution.set_distribution(None)
        return contextlib.nullcontext()
    if BACKEND == "jax":
        import jax

        assert len(jax.devices()) == devices, jax.devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
        return contextlib.nullcontext()
    strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(devices)])
    assert strategy.num_replicas_in_sync == devices
    return strategy.scope()


def values(model):
    return [keras.ops.convert_to_numpy(v.value) for v in model.variables]


def train(config, phases, devices, initial_values, x, y, evaluate=False):
    with strategy_scope(devices):
        keras.utils.set_random_seed(0)
        model = kl.LNCA(**{**TINY, **config, "phase": phases[0]})
        model.compile()  # also builds the model
    if initial_values is not None:
        for variable, value in zip(model.variables, initial_values):
            variable.assign(value)
    initial = values(model)
    results = {}
    for phase in phases:
        if phase != model.phase:
            model.set_phase(phase)  # outside the strategy's scope: the model re-enters it
        history = model.fit(x, y, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False, verbose=0)
        for name, logged in history.history.items():
            results[f"history/{phase}/{name}"] = np.asarray(logged)
    if evaluate:
        scores = model.evaluate(x, y, batch_size=GLOBAL_BATCH, verbose=0, return_dict=True)
        results.update({f"evaluate/{name}": np.asarray(value) for name, value in scores.items()})
    # Keyed by position: the second model's layer names get suffixes.
    for i, (start, end) in enumerate(zip(initial, values(model))):
        results[f"initial{i:03d}"], results[f"variable{i:03d}"] = start, end
    results["paths"] = np.asarray([v.path for v in model.variables])
    results["trainable"] = np.asarray([v.trainable for v in model.variables])
    if devices > 1:
        results.update(replica_pools(model))
        results["devices"] = np.asarray(variable_devices(model, model.nca.trainable_variables[0]))
    return initial, results


def replica_pools(model):
    if BACKEND != "tensorflow" or model.pool_size == 0:
        return {}
    pools = {}
    for variable in model.pool_variables():
        local_values = model.distribute_strategy.experimental_local_results(variable.value)
        for r, local in enumerate(local_values):
            pools[f"replica{r}/{variable.name}"] = local.numpy()
    return pools


def variable_devices(model, variable):
    """The devices that hold a copy of `variable`."""
    if BACKEND == "jax":
        return sorted(str(d) for d in variable.value.sharding.device_set)
    return sorted(v.device for v in model.distribute_strategy.experimental_local_results(variable.value))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("config", help="JSON: LNCA arguments over the tiny defaults")
    parser.add_argument("--phases", default="autoencoder,nca")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--devices", default="1,2", help="runs to make, e.g. 1,2 or 2")
    parser.add_argument("--evaluate", action="store_true", help="also evaluate after training")
    args = parser.parse_args()
    config, phases = json.loads(args.config), args.phases.split(",")
    x, y = training_pairs(args.batches)
    initial, saved = None, {"x": x, "y": y}
    for devices in [int(d) for d in args.devices.split(",")]:
        start, results = train(config, phases, devices, initial, x, y, args.evaluate)
        initial = start if initial is None else initial
        saved.update({f"{devices}/{key}": value for key, value in results.items()})
    np.savez(args.out, **saved)


if __name__ == "__main__":
    main()
