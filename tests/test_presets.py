"""Every shipped preset loads on every backend and denoises real images.

Each preset's card (`<name>.json`) records its parameters and the metrics its
training run measured; here each preset restores a centre crop of the first
test image of its channel count (σ=25) and must gain several dB over the
noisy input.
"""

import numpy as np
import pytest

import keras_lnca as kl
from conftest import data_dir

TEST_SETS = {1: "gray/set12", 3: "color/cbsd68"}


@pytest.mark.parametrize("name", kl.presets.list())
def test_preset_loads_and_denoises(name):
    card = kl.presets.metadata(name)
    model = kl.LNCA.from_preset(name)
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    assert trainable == card["parameters"]["trainable"]
    assert any(m["results"][0]["method"] == f"model:{name}" for m in card["metrics"])
    folder = data_dir() / TEST_SETS[model.channels]
    if not folder.is_dir():
        pytest.skip(f"needs {TEST_SETS[model.channels]} under $LNCA_DATA")
    _, clean = next(iter(kl.data.evaluation_images(folder, channels=model.channels)))
    top, left = (clean.shape[0] - 192) // 2, (clean.shape[1] - 192) // 2
    clean = clean[top : top + 192, left : left + 192]
    noisy = kl.degradations.gaussian_noise(clean, 25, seed=0)
    restored = model.restore(noisy)
    assert restored.shape == clean.shape and np.isfinite(restored).all()
    gain = kl.evaluation.psnr(clean, restored) - kl.evaluation.psnr(clean, noisy, clip=False)
    assert gain > 4.0, f"{name}: {gain:.2f} dB over the noisy crop"
