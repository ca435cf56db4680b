"""Kill tests: `lnca train` killed with SIGKILL at random moments, rerun each time, ends with the
weights of an uninterrupted run.

The moments are drawn from the whole run (start-up, both phases, the per-epoch checkpoint
writes, the finished-phase save); every rerun resumes from the last complete epoch. Subprocess
starts dominate the cost, so it runs once, in the JAX pass.
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


def test_sigkill_at_ten_points_resumes_to_the_same_weights(tmp_path):
    if not (data_dir() / "gray" / "set12").exists():
        pytest.skip(f"benchmark data not found at {data_dir()} (set LNCA_DATA)")
    recipe = json.loads((REPO / "configs" / "smoke_gray.json").read_text())
    recipe["phases"] = [{"phase": "autoencoder", "epochs": 3}, {"phase": "nca", "epochs": 4}]
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")

    start = time.perf_counter()
    reference = subprocess.run(_command(path, tmp_path / "full"), env=env, capture_output=True,
                               text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]
    duration = time.perf_counter() - start

    rng = np.random.default_rng(0)
    run_dir = tmp_path / "killed"
    kills, states = 0, []
    while True:
        process = subprocess.Popen(_command(path, run_dir), env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        try:
            # Ten kills at moments drawn over the run; then it may finish.
            process.wait(timeout=rng.uniform(0.3, 0.7) * duration if kills < 10 else 600)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
            progress = run_dir / "progress.json"
            states.append(json.loads(progress.read_text()) if progress.exists() else {})
            continue
        assert process.returncode == 0, process.stderr.read()[-3000:]
        break
    assert kills >= 10, f"only {kills} kills"
    assert (run_dir / "smoke_gray.keras").exists()
    for a, b in zip(_weights(tmp_path / "full" / "smoke_gray.keras"), _weights(run_dir / "smoke_gray.keras")):
        np.testing.assert_array_equal(a, b)
    # The kills hit different moments of the run (not all at the same epoch).
    reached = {tuple(sorted((k, v["epochs"]) for k, v in s.items())) for s in states}
    assert len(reached) >= 2, reached
