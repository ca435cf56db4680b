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
