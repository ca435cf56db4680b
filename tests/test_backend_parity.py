"""The shipped preset restores the same image to within 1e-5 on TensorFlow, JAX and PyTorch.

Each backend loads `kl.LNCA.from_preset` in its own process (TensorFlow: this one, JAX and
PyTorch: subprocesses, in parallel) and restores one 64 x 64 crop of the demo image with seeded
noise (64 NCA steps). It runs once, in CI's TensorFlow pass. Measured: max |difference| about
1e-6 for every pair (float32 accumulation order of the convolutions and matmuls differs per
backend).
"""

import itertools
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

BACKENDS = ("tensorflow", "jax", "torch")
TOLERANCE = 1e-5

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="compares all three backends (two in subprocesses), so it runs once: under "
    "KERAS_BACKEND=tensorflow",
)

WORKER = r"""
import json, pathlib, sys
import keras
import numpy as np
sys.path.insert(0, sys.argv[2])
from test_backend_parity import restore_crop

out = pathlib.Path(sys.argv[1])
restored, report = restore_crop()
np.save(out / f"{keras.backend.backend()}.npy", restored)
print(json.dumps(report))
"""


def restore_crop():
    """The preset's restoration of a 64 x 64 crop of the demo image with seeded noise."""
    import importlib.resources
    import pathlib

    import keras_lnca as kl

    asset = importlib.resources.files("keras_lnca") / "assets" / "demo_gray.png"
    clean = kl.data.load_image(pathlib.Path(str(asset)), channels=1)[96:160, 96:160]
    noisy = clean + np.random.default_rng(0).normal(0.0, 25 / 255, clean.shape).astype("float32")
    model = kl.LNCA.from_preset("lnca_denoise_gray_s25")
    restored = model.predict(noisy[None], verbose=0)[0]
    report = {"backend": keras.backend.backend(), "steps": model.inference_steps,
              "noisy_psnr": kl.evaluation.psnr(clean, noisy, clip=False),
              "psnr": kl.evaluation.psnr(clean, restored)}
    return restored, report


def test_preset_restores_identically_on_every_backend(tmp_path):
    missing = [b for b in BACKENDS if not _importable(b)]
    assert not missing, f"backends not installed: {missing}"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    here = os.path.dirname(os.path.abspath(__file__))
    # JAX's default partitionable threefry takes about 20 s to compile the first random
    # initializer (overwritten by the preset's weights; inference draws no random numbers).
    env.update(TF_CPP_MIN_LOG_LEVEL="2", JAX_THREEFRY_PARTITIONABLE="0")
    # JAX and PyTorch in subprocesses while this (TensorFlow) process does its own.
    processes = {
        backend: subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), here], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=dict(env, KERAS_BACKEND=backend),
        )
        for backend in BACKENDS[1:]
    }
    outputs, reports = {}, {}
    outputs["tensorflow"], reports["tensorflow"] = restore_crop()
    for backend, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, f"{backend} failed:\n{stderr[-3000:]}"
        reports[backend] = json.loads(stdout.strip().splitlines()[-1])
        outputs[backend] = np.load(tmp_path / f"{backend}.npy")
    for backend, report in reports.items():
        assert report["backend"] == backend, report

    differences = {
        f"{a} vs {b}": float(np.abs(outputs[a] - outputs[b]).max())
        for a, b in itertools.combinations(BACKENDS, 2)
    }
    print("max |difference|:", differences)
    assert all(d <= TOLERANCE for d in differences.values()), differences
    # The same restoration on each, and a real one (not an identity or a constant image).
    for backend, report in reports.items():
        assert outputs[backend].shape == (64, 64, 1)
        assert report["psnr"] > report["noisy_psnr"] + 3.0, (backend, report)


def _importable(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None
