import os
import pathlib

import keras
import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def data_dir():
    """The shared benchmark data: $LNCA_DATA, default ../shared/data."""
    return pathlib.Path(os.environ.get("LNCA_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture
def backend():
    return keras.backend.backend()


# The tests' small LNCA: seconds to build, train a step of, save and restore.
TINY = dict(train_steps=(2, 3), inference_steps=3, pool_size=8, pool_image_size=16)
TINY_NAFCA = dict(cell_config={"embed_dim": 32, "dropout": 0.0})


def tiny_lnca(channels=3, **kwargs):
    """A tiny `kl.LNCA` (the default NAFCA cell, 32 wide); `kwargs` override any argument."""
    import keras_lnca as kl

    return kl.LNCA(channels=channels, **{**TINY, **TINY_NAFCA, **kwargs})


def pairs(n=8, size=16, channels=3, seed=0, sigma=0.1):
    """(degraded, clean) float32 pairs with smooth clean images."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    clean = []
    for _ in range(n):
        a, b, c = rng.random(3)
        img = 0.5 + 0.4 * np.sin(6 * a * xx + 6 * b * yy + 6 * c)
        clean.append(np.repeat(img[..., None], channels, axis=-1))
    clean = np.asarray(clean, "float32")
    degraded = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 1).astype("float32")
    return degraded, clean


# Modules whose tests train, export, start subprocesses or fresh environments:
# all of them are `slow`, so that `pytest -m "not slow"` is the quick first run.
SLOW_MODULES = {
    "test_backend_parity", "test_bad_input_matrix", "test_benchmark", "test_benchmark_large",
    "test_benchmark_quality", "test_cli", "test_distributed", "test_export", "test_finetune",
    "test_kill_resume", "test_packaging", "test_presets", "test_readme", "test_single_backend",
    "test_training",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__.rpartition(".")[2] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
