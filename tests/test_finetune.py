"""Fine-tuning a shipped preset on a folder of one's own images (every backend).

The documented path (README, "Fine-tune a preset on your own images"):
`kl.LNCA.from_preset(name)` comes back compiled, in the phase it was saved in
("nca"); `compile(...)` changes the training setup, `set_phase("nca")` keeps
the autoencoder frozen, and `fit` on a `(degraded, clean)` folder pipeline
trains the automaton only.
"""

import importlib.resources
import pathlib

import keras
import numpy as np
from PIL import Image
from test_case import TestCase

import keras_lnca as kl

PRESET = "lnca_denoise_gray_s25"


def demo_asset():
    path = importlib.resources.files("keras_lnca") / "assets" / "demo_gray.png"
    return kl.data.load_image(pathlib.Path(str(path)), channels=1)


def write_crops(folder, size=64):
    """Four `size` x `size` 8-bit crops of the shipped demo image."""
    folder.mkdir()
    clean = demo_asset()
    corners = [(0, 0), (0, 128), (128, 0), (128, 128)]
    for i, (top, left) in enumerate(corners):
        crop = clean[top : top + size, left : left + size, 0]
        Image.fromarray(np.round(crop * 255).astype("uint8")).save(folder / f"crop_{i}.png")
    return folder


def snapshot(variables):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def test_from_preset_is_compiled_in_its_saved_phase():
    model = kl.LNCA.from_preset(PRESET)
    assert model.compiled and model.optimizer is not None
    assert model.phase == kl.presets.metadata(PRESET)["config"]["phase"] == "nca"
    # Phase "nca": the autoencoder is frozen, only the automaton trains.
    trainable = {id(v) for v in model.trainable_variables}
    assert trainable and trainable == {id(v) for v in model.nca.trainable_variables}
    assert not model.encoder.trainable_variables and not model.decoder.trainable_variables


def test_fine_tune_preset_on_a_folder(tmp_path):
    folder = write_crops(tmp_path / "my_photos")
    model = kl.LNCA.from_preset(PRESET)
    model.compile(learning_rate=1e-4, decay_steps=100)     # the README's fine-tuning settings
    model.set_phase("nca")
    # The preset trains with up to 16 unrolled steps; compiling that graph takes a while on a
    # CPU. The unroll length is not what this test is about, so it trains with a short one.
    model.train_steps = (2, 4)
    crop = model.pool_image_size  # the preset's training crop: its pool holds these
    data = kl.data.FolderPyDataset(folder, "gaussian:25", crop_size=crop, batch_size=2, channels=1,
                                   seed=0)
    assert len(data) == 2

    frozen = model.encoder.weights + model.decoder.weights
    frozen_before, nca_before = snapshot(frozen), snapshot(model.nca.trainable_variables)
    history = model.fit(data, epochs=1, verbose=0)

    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 2
    assert all(np.isfinite(history.history[key][-1]) for key in ("loss", "pixel_loss", "psnr"))
    for before, after in zip(frozen_before, snapshot(frozen)):
        np.testing.assert_array_equal(after, before)
    changed = [not np.array_equal(b, a)
               for b, a in zip(nca_before, snapshot(model.nca.trainable_variables))]
    assert all(changed), f"{changed.count(False)} of {len(changed)} NCA variables did not move"
    # The training crops went through the sample pool.
    assert float(np.sum(keras.ops.convert_to_numpy(model.pool_filled))) > 0

    # A small learning rate keeps the preset a denoiser, and the result saves and reloads.
    clean = demo_asset()[96:160, 96:160]
    noisy = clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape).astype("float32")
    restored = model.restore(noisy)
    gain = kl.evaluation.psnr(clean, restored) - kl.evaluation.psnr(clean, noisy, clip=False)
    assert gain > 3.0, gain
    reloaded = TestCase().run_model_saving_test(model, noisy[None], tmp_path)  # the same outputs
    assert reloaded.phase == "nca"
    reloaded = kl.LNCA.from_preset(tmp_path / "model.keras")
    assert reloaded.phase == "nca" and reloaded.compiled
    for before, after in zip(snapshot(model.nca.trainable_variables),
                             snapshot(reloaded.nca.trainable_variables)):
        np.testing.assert_array_equal(after, before)

