"""Data-parallel training on two CPU devices: JAX `DataParallel` and TF `MirroredStrategy`.

Device counts are fixed when a framework starts, so every run happens in a
subprocess (`tests/distributed_worker.py`, or the example script). Each
subprocess test runs once, in the session of its own backend: the JAX tests
under `KERAS_BACKEND=jax`, the TensorFlow tests under `KERAS_BACKEND=tensorflow`.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import REPO

import keras_lnca as kl

BACKEND = keras.backend.backend()
WORKER = REPO / "tests" / "distributed_worker.py"
EXAMPLE = REPO / "examples" / "distributed_training.py"

NO_TORCH = (
    "Keras has no data-parallel distribution for the PyTorch backend on CPU "
    "(keras.distribution is JAX-only, tf.distribute TensorFlow-only)"
)


def only_in(backend, strategy):
    """Runs a test in the `backend` session only (its subprocesses need no other)."""
    reason = NO_TORCH if BACKEND == "torch" else (
        f"{strategy} runs in a subprocess, once, in the {backend} session"
    )
    return pytest.mark.skipif(BACKEND != backend, reason=reason)


jax_only = only_in("jax", "JAX DataParallel")
tensorflow_only = only_in("tensorflow", "MirroredStrategy")


def environment(backend):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    if backend == "jax":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    return env


def run(command, backend, timeout=300):
    result = subprocess.run(
        command, env=environment(backend), cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def train(tmp_path, backend, config, *options):
    out = tmp_path / "runs.npz"
    run([sys.executable, str(WORKER), str(out), json.dumps(config), *options], backend)
    return dict(np.load(out))


def model_variables(runs, device_run):
    """`{path: (before, after)}` of one run's variables."""
    paths = runs[f"{device_run}/paths"]
    return {
        str(path): (runs[f"{device_run}/initial{i:03d}"], runs[f"{device_run}/variable{i:03d}"])
        for i, path in enumerate(paths)
    }


def assert_runs_match(runs, atol=1e-5):
    """The one-device and the two-device run end with the same variables and logs."""
    one, two = model_variables(runs, 1), model_variables(runs, 2)
    assert len(one) == len(two)
    for (path, (start_1, end_1)), (start_2, end_2) in zip(one.items(), two.values()):
        np.testing.assert_array_equal(start_1, start_2, err_msg=f"{path} starts apart")
        np.testing.assert_allclose(end_1, end_2, atol=atol, rtol=0, err_msg=path)
    logged = [key[2:] for key in runs if key.startswith(("1/history/", "1/evaluate/"))]
    assert any(key.endswith("/loss") for key in logged)
    for key in logged:
        np.testing.assert_allclose(runs[f"1/{key}"], runs[f"2/{key}"], rtol=1e-5, err_msg=key)


def assert_trained(runs, device_run, layer="/nca/"):
    """Every kernel of `layer` moved: training really updated it."""
    moved = {
        path: not np.array_equal(start, end)
        for path, (start, end) in model_variables(runs, device_run).items()
        if layer in path and path.endswith("kernel")
    }
    assert moved and all(moved.values()), moved


def pool(runs, device_run):
    """`{name: final value}` of the pool variables of one run."""
    variables = model_variables(runs, device_run)
    return {path.split("/")[-1]: end for path, (_, end) in variables.items() if "/pool_" in path}


@jax_only
def test_jax_data_parallel_matches_one_device_without_pool(tmp_path):
    runs = train(tmp_path, "jax", {"pool_size": 0}, "--phases", "nca")
    assert len(runs["2/devices"]) == 2  # the weights live on both devices
    assert_trained(runs, 2)
    assert_runs_match(runs)


@jax_only
def test_jax_data_parallel_keeps_one_pool_consistent_with_one_device(tmp_path):
    runs = train(tmp_path, "jax", {"pool_size": 8}, "--phases", "nca")
    assert len(runs["2/devices"]) == 2
    assert_runs_match(runs)  # pool variables included
    entries = pool(runs, 2)
    assert entries["pool_filled"].sum() >= 4  # 3 batches of 4 distinct slots, out of 8
    for name in ("pool_images", "pool_targets", "pool_states"):
        assert np.all(np.isfinite(entries[name])), name
    assert np.abs(entries["pool_states"]).sum() > 0


@tensorflow_only
def test_mirrored_strategy_matches_one_device_without_pool(tmp_path):
    runs = train(tmp_path, "tensorflow", {"pool_size": 0}, "--phases", "nca", "--evaluate")
    assert len(runs["2/devices"]) == 2  # one copy of the weights per replica
    assert_trained(runs, 2)
    assert_runs_match(runs)  # includes the logged and evaluated losses (replica scaling)


@tensorflow_only
def test_mirrored_strategy_keeps_one_pool_per_replica(tmp_path):
    # Both phases: the model is built in the autoencoder phase, and set_phase
    # runs outside the strategy's scope.
    runs = train(tmp_path, "tensorflow", {"pool_size": 8}, "--devices", "2")
    assert_trained(runs, 2, "/nca/")
    assert_trained(runs, 2, "/encoder/")
    x, y = runs["x"], runs["y"]
    half = 2  # global batches of 4: replica r trains on rows 2r, 2r+1 of each
    rows = {r: [i for i in range(len(x)) if (i % 4) // half == r] for r in (0, 1)}
    for r in (0, 1):
        images = runs[f"2/replica{r}/pool_images"]
        targets = runs[f"2/replica{r}/pool_targets"]
        filled = runs[f"2/replica{r}/pool_filled"]
        states = runs[f"2/replica{r}/pool_states"]
        assert filled.sum() >= 2 and np.all(np.isfinite(states)) and np.abs(states).sum() > 0
        for slot in np.flatnonzero(filled):
            # Each entry is one of this replica's own samples, with its own target.
            (match,) = [i for i in rows[r] if np.array_equal(images[slot], x[i])]
            np.testing.assert_array_equal(targets[slot], y[match])
    assert not np.array_equal(runs["2/replica0/pool_images"], runs["2/replica1/pool_images"])


def example_command(*options):
    return [
        sys.executable, str(EXAMPLE), "--cpu-devices", "2", "--batch-size", "4", "--crop", "16",
        "--steps", "2", "--train-steps", "1,2", "--pool-size", "8", "--cell", "sobel", *options,
    ]


def check_example_output(stdout, backend, path):
    assert f"{backend}: 2 device(s), global batch 4, 2 per device" in stdout
    assert "phase autoencoder: loss" in stdout and "phase nca: loss" in stdout
    assert "held-out PSNR" in stdout
    model = keras.saving.load_model(path)  # written from the distributed model
    assert isinstance(model, kl.LNCA) and model.phase == "nca"
    assert all(np.all(np.isfinite(keras.ops.convert_to_numpy(w))) for w in model.weights)


@jax_only
def test_example_trains_with_jax_data_parallel(tmp_path):
    path = tmp_path / "model.keras"
    result = run(example_command("--save", str(path)), "jax")
    check_example_output(result.stdout, "jax", path)


@tensorflow_only
def test_example_trains_with_mirrored_strategy_on_an_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray((rng.random((24, 24)) * 255).astype("uint8")).save(tmp_path / f"{i}.png")
    path = tmp_path / "model.keras"
    result = run(example_command("--data", str(tmp_path), "--save", str(path)), "tensorflow")
    check_example_output(result.stdout, "tensorflow", path)
    assert "replica 0's pool:" in result.stdout
