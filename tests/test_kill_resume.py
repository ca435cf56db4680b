"""Kill tests: `lnca train` killed with SIGKILL at ten moments, rerun each time, ends with the
weights of an uninterrupted run.

Half the kills land at a random moment before the rerun's first checkpoint (start-up, model
building, mid-epoch), half just after a checkpoint landed (the next epoch's first batches, or the
write of the next files). The moments follow the run's own progress file rather than the clock,
so a slow machine (where start-up is most of the run) still kills the run at different epochs.
Subprocess starts dominate the cost, so it runs once, in the JAX pass.
"""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from conftest import REPO
from conftest import data_dir

import keras_lnca  # noqa: F401  (registers the model classes for load_model)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(keras.backend.backend() != "jax",
                       reason="backend-independent subprocess test: runs once, under KERAS_BACKEND=jax"),
]


def _command(recipe, run_dir):
    return [sys.executable, "-c", "import sys; from keras_lnca.cli import main; sys.exit(main())",
            "train", "--config", str(recipe), "--run-dir", str(run_dir), "--no-eval",
            "-o", str(run_dir)]


def _weights(path):
    model = keras.saving.load_model(path)
    return [np.asarray(v) for v in model.weights]


def _epochs_done(progress_file):
    """The epochs that `progress.json` records over all phases (0 before the first checkpoint)."""
    try:
        progress = json.loads(progress_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    return sum(phase["epochs"] for phase in progress.values())


def _wait_until(process, condition, limit):
    """Polls `condition` every 20 ms until it holds (True) or the process ends or `limit` s pass."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline and process.poll() is None:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_sigkill_at_ten_points_resumes_to_the_same_weights(tmp_path):
    if not (data_dir() / "gray" / "set12").exists():
        pytest.skip(f"benchmark data not found at {data_dir()} (set LNCA_DATA)")
    recipe = json.loads((REPO / "configs" / "smoke_gray.json").read_text())
    recipe["phases"] = [{"phase": "autoencoder", "epochs": 3}, {"phase": "nca", "epochs": 4}]
    total_epochs = 7
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")

    # The uninterrupted reference run; it also measures how long a start takes to its first
    # checkpoint and how long one epoch takes, on this machine.
    full = tmp_path / "full"
    start = time.perf_counter()
    reference = subprocess.Popen(_command(path, full), env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
    _wait_until(reference, lambda: _epochs_done(full / "progress.json") >= 1, 600)
    first_checkpoint = time.perf_counter() - start
    _wait_until(reference, lambda: _epochs_done(full / "progress.json") >= 2, 600)
    epoch = max(time.perf_counter() - start - first_checkpoint, 0.05)
    startup = max(first_checkpoint - epoch, 0.5)
    assert reference.wait(timeout=600) == 0, reference.stderr.read()[-3000:]

    rng = np.random.default_rng(0)
    run_dir = tmp_path / "killed"
    progress = run_dir / "progress.json"
    kills, reached = 0, []
    while True:
        done = _epochs_done(progress)
        process = subprocess.Popen(_command(path, run_dir), env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        if kills >= 10:
            assert process.wait(timeout=600) == 0, process.stderr.read()[-3000:]
            break
        near_end = done >= total_epochs - 2
        if kills % 2 and not near_end:
            # Just after this rerun's first checkpoint landed.
            _wait_until(process, lambda: _epochs_done(progress) > done, 600)
            time.sleep(rng.uniform(0.0, 0.5) * epoch)
        else:
            # Any moment before this rerun's first checkpoint would land (near the end of the
            # run: within the start-up, so that the rerun cannot finish first).
            window = startup if near_end else first_checkpoint
            _wait_until(process, lambda: False, rng.uniform(0.1, 0.8) * window)
        assert process.poll() is None, "the run finished before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        reached.append(_epochs_done(progress))
    assert (run_dir / "smoke_gray.keras").exists()
    for a, b in zip(_weights(full / "smoke_gray.keras"), _weights(run_dir / "smoke_gray.keras")):
        np.testing.assert_array_equal(a, b)
    # The kills hit different epochs of the run, in both phases.
    assert len(set(reached)) >= 3, reached
    assert max(reached) > 3, reached
