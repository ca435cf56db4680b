"""A newcomer's install: a fresh virtual environment with one backend extra only.

`pip install keras-lnca[jax]` (and `[torch]`, with torch from the local CPU
build) into an empty venv, then, with `KERAS_BACKEND` unset, `lnca demo` and
`lnca restore` on a colour PNG must work: the package picks the installed
backend, and nothing needs TensorFlow or scikit-image. Installs from the
package index (about a minute each), so it runs once, in the TensorFlow pass
of CI, and skips with the reason when no index is reachable.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import REPO
from PIL import Image
from test_packaging import copy_source
from test_packaging import venv_python

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        keras.backend.backend() != "tensorflow",
        reason="slow and backend-independent: runs once, under KERAS_BACKEND=tensorflow",
    ),
]

CONSTRAINTS = REPO / ".ci" / "constraints.txt"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    copy_source(root / "src")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(root / "dist"), str(root / "src")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return next((root / "dist").glob("keras_lnca-*.whl"))


def install(venv, *requirements):
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv_python(venv)
    command = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
               "-c", str(CONSTRAINTS), *map(str, requirements)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        text = result.stdout + result.stderr
        if "No matching distribution" in text or "connection" in text.lower():
            pytest.skip(f"no package index reachable: {text.strip().splitlines()[-1]}")
        raise AssertionError(text[-3000:])
    return python


def check_newcomer_commands(venv, tmp_path, backend):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "KERAS_BACKEND", "KERAS_HOME")}
    env.update(PYTHONNOUSERSITE="1", KERAS_HOME=str(tmp_path / "keras_home"))
    lnca = venv / "bin" / "lnca"
    work = tmp_path / "work"
    work.mkdir()
    python = venv_python(venv)
    missing = subprocess.run([str(python), "-c", "import importlib.util as u; "
                              "print([m for m in ('tensorflow', 'skimage') if u.find_spec(m)])"],
                             capture_output=True, text=True, env=env)
    assert missing.stdout.strip() == "[]", missing.stdout  # really a one-backend install
    demo = subprocess.run([str(lnca), "demo"], cwd=work, capture_output=True, text=True, env=env,
                          timeout=600)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert f"using KERAS_BACKEND={backend}" in demo.stderr
    assert "Traceback" not in demo.stderr and (work / "lnca_demo.png").exists()
    rgb = (np.random.default_rng(0).random((40, 48, 3)) * 255).astype("uint8")
    Image.fromarray(rgb).save(work / "photo.png")
    restore = subprocess.run([str(lnca), "restore", "photo.png", "-o", "out.png"], cwd=work,
                             capture_output=True, text=True, env=env, timeout=600)
    assert restore.returncode == 0, restore.stderr[-3000:]
    with Image.open(work / "out.png") as image:
        assert image.mode == "RGB" and image.size == (48, 40)


def test_only_the_jax_extra(wheel, tmp_path):
    venv = tmp_path / "venv"
    install(venv, f"{wheel}[jax]")
    check_newcomer_commands(venv, tmp_path, "jax")


def test_only_the_torch_extra(wheel, tmp_path):
    venv = tmp_path / "venv"
    install(venv, "torch==2.13.0")
    python = venv_python(venv)
    result = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                             "-c", str(CONSTRAINTS), f"{wheel}[torch]"], capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    check_newcomer_commands(venv, tmp_path, "torch")
