"""LNCA and PixelNCA: two-phase fit, frozen autoencoder, the sample pool, predict, saving."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import REPO
from conftest import TINY
from conftest import TINY_NAFCA
from conftest import pairs
from conftest import tiny_lnca

import keras_lnca as kl
from test_case import TestCase



def to_numpy(x):
    if isinstance(x, np.ndarray):
        return x
    return keras.ops.convert_to_numpy(keras.ops.stop_gradient(x))


def snapshot(variables):
    return [np.array(v) for v in variables]


def test_default_lnca_is_the_papers_configuration():
    model = kl.LNCA()
    model.build((None, 32, 32, 3))
    ae = model.encoder.count_params() + model.decoder.count_params()
    cell = model.nca.count_params()
    assert 3_500 <= ae <= 4_500
    assert 46_000 <= cell <= 48_000
    assert model.state_channels == 64
    trainable = sum(int(np.prod(v.shape)) for v in model.encoder.weights + model.decoder.weights
                    + model.nca.weights)
    assert trainable == ae + cell


@pytest.mark.slow  # trains or writes files: the full suite runs it
@pytest.mark.parametrize("cell", ["nafca", "vitca", "sobel"])
def test_lnca_fits_both_phases(cell):
    x, y = pairs(8, 16)
    config = TINY_NAFCA["cell_config"] if cell == "nafca" else (
        {"embed_dim": 16, "mlp_dim": 16} if cell == "vitca" else {"hidden_units": 16})
    model = kl.LNCA(cell=cell, **TINY, cell_config=config)
    model.compile()
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    logs = history.history
    assert {"loss", "reconstruction_loss", "triplet_loss", "task_loss", "swap_loss", "psnr", "ssim"} <= set(logs)
    assert "pixel_loss" not in logs
    model.set_phase("nca")
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    logs = history.history
    assert {"loss", "pixel_loss", "latent_loss", "out_overflow", "hidden_overflow", "psnr"} <= set(logs)
    assert all(np.isfinite(v[-1]) for v in logs.values())
    results = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    assert np.isfinite(results["loss"]) and "psnr" in results


def test_autoencoder_phase_leaves_nca_untouched():
    x, y = pairs(8, 16)
    model = tiny_lnca()
    model.compile()
    model.build((None, 16, 16, 3))
    nca_before = snapshot(model.nca.weights)
    ae_before = snapshot(model.encoder.weights)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    for a, b in zip(nca_before, snapshot(model.nca.weights)):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(ae_before, snapshot(model.encoder.weights)))


@pytest.mark.slow  # trains or writes files: the full suite runs it
def test_nca_phase_leaves_autoencoder_bit_identical():
    x, y = pairs(8, 16)
    model = tiny_lnca()
    model.compile()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    model.set_phase("nca")
    codec = model.encoder.weights + model.decoder.weights
    assert any("moving_mean" in v.path for v in codec)  # BatchNorm statistics included
    before, nca_before = snapshot(codec), snapshot(model.nca.weights)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    for a, b in zip(before, snapshot(codec)):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(nca_before, snapshot(model.nca.weights)))


def test_pool_resumes_stored_state_with_its_own_target():
    model = tiny_lnca(pool_size=6, pool_rate=0.5)
    model.set_phase("nca")
    model.build((None, 16, 16, 3))
    for w in model.nca.trainable_weights:  # a non-trivial rule
        w.assign(to_numpy(w) + 0.01)
    rng = np.random.default_rng(1)
    model.pool_images.assign(rng.random(model.pool_images.shape).astype("float32"))
    model.pool_targets.assign(rng.random(model.pool_targets.shape).astype("float32"))
    model.pool_states.assign(rng.random(model.pool_states.shape).astype("float32"))
    model.pool_filled.assign(np.ones(model.pool_filled.shape, "float32"))
    stored = {k: np.array(getattr(model, k)) for k in ("pool_images", "pool_targets", "pool_states")}
    x, y = pairs(4, 16, seed=2)

    out = model((x, y), training=True)
    slots = to_numpy(out["pool_slots"])
    from_pool = to_numpy(out["from_pool"])
    counts = to_numpy(out["step_counts"])
    state = to_numpy(out["state"])
    assert len(set(slots.tolist())) == 4
    np.testing.assert_array_equal(from_pool, [True, True, False, False])

    for b in range(4):
        slot = slots[b]
        if from_pool[b]:
            start = stored["pool_states"][slot][None]
            np.testing.assert_array_equal(to_numpy(out["target"])[b], stored["pool_targets"][slot])
        else:
            _, grid = model.encode(x[b : b + 1])
            start = to_numpy(model.seed_state(grid))
            np.testing.assert_array_equal(to_numpy(out["target"])[b], y[b])
        expected = to_numpy(model.nca(start, steps=int(counts[b]), training=True))[0]
        np.testing.assert_allclose(state[b], expected, atol=1e-5)
        # Written back: the state the step returned, with its image and target.
        np.testing.assert_array_equal(np.array(model.pool_states)[slot], state[b])
        np.testing.assert_array_equal(np.array(model.pool_targets)[slot], to_numpy(out["target"])[b])
        images = stored["pool_images"][slot] if from_pool[b] else x[b]
        np.testing.assert_array_equal(np.array(model.pool_images)[slot], images)


@pytest.mark.slow  # trains or writes files: the full suite runs it
def test_pool_fills_during_fit_and_is_bypassed_at_other_sizes():
    model = tiny_lnca(pool_size=8)
    model.compile()
    model.set_phase("nca")
    x, y = pairs(4, 16)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert float(np.sum(np.array(model.pool_filled))) == 4  # one batch, distinct slots
    model.fit(x, y, batch_size=4, epochs=3, verbose=0)
    assert float(np.sum(np.array(model.pool_filled))) > 4
    before = np.array(model.pool_states)
    x2, y2 = pairs(4, 24)
    model.fit(x2, y2, batch_size=4, epochs=1, verbose=0)
    np.testing.assert_array_equal(np.array(model.pool_states), before)


class TestPixelNCA(TestCase):
    @pytest.mark.slow  # trains or writes files: the full suite runs it
    @pytest.mark.parametrize("cell", ["vitca", "sobel"])
    def test_fits_predicts_and_saves(self, cell, tmp_path):
        x, y = pairs(8, 16)
        config = {"embed_dim": 16, "mlp_dim": 16} if cell == "vitca" else {"hidden_units": 16}
        model = kl.PixelNCA(channels=3, cell=cell, cell_config=config, hidden_channels=8, **TINY)
        model.compile()
        history = model.fit(x, y, batch_size=4, epochs=2, verbose=0)
        assert "pixel_loss" in history.history and "latent_loss" not in history.history
        out = model.predict(np.zeros((1, 13, 17, 3), "float32"), verbose=0)
        assert out.shape == (1, 13, 17, 3) and out.min() >= 0 and out.max() <= 1
        self.run_model_saving_test(model, x, tmp_path)


def test_predict_shapes_and_determinism():
    colour = tiny_lnca(channels=3)
    gray = tiny_lnca(channels=1)
    rng = np.random.default_rng(0)
    a = rng.random((1, 31, 45, 3)).astype("float32")
    b = rng.random((2, 64, 64, 1)).astype("float32")
    assert colour.predict(a, verbose=0).shape == (1, 31, 45, 3)
    assert gray.predict(b, verbose=0).shape == (2, 64, 64, 1)
    np.testing.assert_array_equal(gray.predict(b, verbose=0), gray.predict(b, verbose=0))


def test_bad_inputs_raise_clear_errors():
    model = tiny_lnca(channels=3)
    with pytest.raises(ValueError, match="channels"):
        model.predict(np.zeros((1, 8, 8, 1), "float32"), verbose=0)
    with pytest.raises(ValueError, match="NaN"):
        model.restore(np.full((8, 8, 3), np.nan, "float32"))
    with pytest.raises(ValueError, match="shape"):
        model.restore(np.zeros((8,), "float32"))
    with pytest.raises(ValueError, match="phase"):
        model.set_phase("pixels")
    with pytest.raises(ValueError, match="pairs"):
        model.compile()
        model.fit(np.zeros((2, 16, 16, 3), "float32"), epochs=1, verbose=0)


def test_restore_numpy_round_trip():
    model = tiny_lnca(channels=3)
    image = (np.random.default_rng(0).random((10, 7, 3)) * 255).astype("uint8")
    out = model.restore(image)
    assert out.shape == image.shape and out.dtype == np.uint8
    float_out = model.restore(image.astype("float32") / 255, steps=1)
    assert float_out.shape == image.shape and float_out.dtype == np.float32
    tiny = model.restore(np.zeros((1, 1, 3), "float32"))
    assert tiny.shape == (1, 1, 3)
    with pytest.warns(UserWarning, match="Gray"):
        assert model.restore(np.zeros((8, 8), "uint8")).shape == (8, 8)


class TestLNCA(TestCase):
    @pytest.mark.slow  # trains or writes files: the full suite runs it
    @pytest.mark.parametrize("cell", ["nafca", "conv"])
    def test_keras_file_round_trip_after_both_phases(self, cell, tmp_path):
        x, y = pairs(8, 16)
        config = TINY_NAFCA if cell == "nafca" else {"cell_config": {"perception_channels": 8,
                                                                      "hidden_units": 16}}
        model = kl.LNCA(channels=3, cell=cell, **{**TINY, **config})
        model.compile()
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        model.set_phase("nca")
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        loaded = self.run_model_saving_test(model, x, tmp_path, atol=0)
        assert isinstance(loaded, kl.LNCA) and loaded.phase == "nca"
        # A loaded model keeps training.
        loaded.compile()
        loaded.fit(x, y, batch_size=4, epochs=1, verbose=0)


WRITE_UNDER_JAX = r"""
import sys, numpy as np, keras, keras_lnca as kl
keras.utils.set_random_seed(0)
model = kl.LNCA(channels=3, train_steps=(2, 3), inference_steps=3, pool_size=8,
                pool_image_size=16, cell_config={"embed_dim": 32, "dropout": 0.0})
rng = np.random.default_rng(0)
y = rng.random((8, 16, 16, 3)).astype("float32"); x = np.clip(y + 0.1 * rng.normal(size=y.shape), 0, 1).astype("float32")
model.compile(); model.fit(x, y, batch_size=4, epochs=1, verbose=0)
model.set_phase("nca"); model.fit(x, y, batch_size=4, epochs=1, verbose=0)
model.save(sys.argv[1] + "/m.keras")
np.savez(sys.argv[1] + "/io.npz", x=x, out=model.predict(x, verbose=0))
"""


@pytest.mark.slow  # trains or writes files: the full suite runs it
def test_keras_file_written_under_jax_loads_here(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(
        [sys.executable, "-c", WRITE_UNDER_JAX, str(tmp_path)],
        check=True, env=env, cwd=REPO, capture_output=True,
    )
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    io = np.load(tmp_path / "io.npz")
    np.testing.assert_allclose(loaded.predict(io["x"], verbose=0), io["out"], atol=1e-5)


def test_config_is_json_and_complete():
    model = kl.LNCA(channels=1, cell="sobel", downsampling=3, latent_channels=8)
    config = json.loads(json.dumps(model.get_config()))
    clone = kl.LNCA.from_config(config)
    assert clone.get_config() == model.get_config()


def test_out_seed_input_copies_the_grid_and_round_trips():
    model = kl.LNCA(channels=1, autoencoder="space_to_depth", out_seed="input", pool_size=0)
    grid = keras.random.uniform((2, 4, 4, model.cell_input_channels), seed=0)
    inputs, out, hidden = model.split_state(model.seed_state(grid))
    np.testing.assert_allclose(to_numpy(out), to_numpy(grid))
    np.testing.assert_allclose(to_numpy(hidden), 0.0)
    _, out_constant, _ = kl.LNCA(channels=1).split_state(kl.LNCA(channels=1).seed_state(
        keras.ops.zeros((1, 2, 2, 16))))
    np.testing.assert_allclose(to_numpy(out_constant), 0.5)
    assert kl.LNCA.from_config(model.get_config()).out_seed == "input"
    with pytest.raises(ValueError, match="out_seed"):
        kl.LNCA(out_seed="noise")


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="XLA fit is a TensorFlow test")
def test_fit_with_xla_on_tensorflow():
    x, y = pairs(8, 16)
    model = tiny_lnca()
    model.compile(jit_compile=True)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    model.set_phase("nca")
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.slow  # trains or writes files: the full suite runs it
@pytest.mark.skipif(keras.backend.backend() != "jax", reason="jit on/off is a JAX test")
@pytest.mark.parametrize("jit", [True, False])
def test_fit_with_and_without_jit_on_jax(jit):
    x, y = pairs(8, 16)
    model = tiny_lnca()
    model.compile(jit_compile=jit)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    model.set_phase("nca")
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def nudged_lnca(channels=1, **kwargs):
    """A built tiny LNCA whose automaton's weights are moved off their initial values
    (so that its output depends on the input's orientation and position)."""
    model = tiny_lnca(channels=channels, inference_steps=2, **kwargs)
    model.build((None, 16, 16, channels + int(kwargs.get("noise_map", False))))
    for w in model.nca.trainable_weights:
        w.assign(to_numpy(w) + 0.01)
    return model


def test_tiled_restoration_equals_untiled():
    model = nudged_lnca()
    image = np.random.default_rng(0).random((70, 53, 1)).astype("float32")
    whole = model.restore(image)
    tiled = model.restore(image, tile=16)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    # A margin below the receptive field changes the result near tile edges.
    from keras_lnca import tiling

    short = tiling.restore_tiled(model, image[None], steps=2, tile=16, margin=0)[0]
    assert np.abs(short - whole).max() > 1e-4


def test_keras_file_leaves_the_pool_out_unless_asked(tmp_path):
    model = tiny_lnca(pool_size=8)
    model.build((None, 16, 16, 3))
    model.pool_filled.assign(np.ones((8,), "float32"))
    model.save(tmp_path / "small.keras")
    model.save_pool = True
    model.save(tmp_path / "full.keras")
    assert (tmp_path / "small.keras").stat().st_size < (tmp_path / "full.keras").stat().st_size
    assert float(np.sum(np.array(keras.saving.load_model(tmp_path / "small.keras").pool_filled))) == 0
    assert float(np.sum(np.array(keras.saving.load_model(tmp_path / "full.keras").pool_filled))) == 8


def test_space_to_depth_lnca_is_lossless_and_trains():
    model = kl.LNCA(channels=3, autoencoder="space_to_depth", **{**TINY, **TINY_NAFCA})
    assert model.phases == ("nca",) and model.phase == "nca" and model.latent_channels == 48
    x, y = pairs(8, 16)
    _, grid = model.encode(y)
    np.testing.assert_array_equal(to_numpy(model.decode(grid, None)), y)
    model.compile()
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.predict(x[:1, :13, :11], verbose=0).shape == (1, 13, 11, 3)
    with pytest.raises(ValueError, match="phase"):
        model.set_phase("autoencoder")


def test_anytime_restoration_steps_and_early_stop():
    model = tiny_lnca(channels=1, inference_steps=6)
    model.build((None, 16, 16, 1))
    for w in model.nca.trainable_weights:
        w.assign(to_numpy(w) + 0.01)
    image = np.random.default_rng(0).random((16, 16, 1)).astype("float32")
    runs = {k: model.restore(image, steps=k) for k in (0, 1, 6)}
    assert not np.array_equal(runs[1], runs[6])
    # A huge tolerance stops after the first step; zero tolerance runs them all.
    np.testing.assert_allclose(model.restore(image, tolerance=1e9), runs[1], atol=1e-6)
    np.testing.assert_allclose(model.restore(image, tolerance=0.0), runs[6], atol=1e-6)
    np.testing.assert_allclose(model.restore(image), runs[6], atol=0)


class TestSelfEnsemble(TestCase):
    def test_views_are_undone_exactly(self):
        from keras_lnca.models import image_batches

        batch = np.random.default_rng(0).random((2, 5, 7, 3)).astype("float32")
        seen = set()
        for view in image_batches.DIHEDRAL_VIEWS:
            seen_through = image_batches.dihedral_view(batch, view)
            seen.add(seen_through.tobytes())
            np.testing.assert_array_equal(image_batches.undo_dihedral_view(seen_through, view), batch)
        assert len(seen) == 8  # eight different views
        for view in image_batches.DIHEDRAL_VIEWS[:4]:  # the first four keep the shape
            assert image_batches.dihedral_view(batch, view).shape == batch.shape

    def test_restore_averages_the_views_mapped_back(self):
        model = nudged_lnca()
        image = np.random.default_rng(0).random((20, 13, 1)).astype("float32")
        plain = model.restore(image)
        flipped = model.restore(image[:, ::-1])[:, ::-1]
        assert np.abs(plain - flipped).max() > 1e-4  # the views differ, so averaging does something
        np.testing.assert_allclose(model.restore(image, self_ensemble=2), (plain + flipped) / 2, atol=1e-5)
        # Eight views: the mean of each view restored and mapped back by its own inverse.
        from keras_lnca.models import image_batches

        views = [image_batches.undo_dihedral_view(
            model.restore(image_batches.dihedral_view(image[None], view))[:, :, :, :], view)[0]
            for view in image_batches.DIHEDRAL_VIEWS]
        assert len({v.tobytes() for v in views}) == 8
        np.testing.assert_allclose(model.restore(image, self_ensemble=8), np.mean(views, axis=0), atol=1e-5)
        np.testing.assert_allclose(model.restore(image, self_ensemble=2.0), (plain + flipped) / 2, atol=1e-5)
        # Tiled views agree with whole ones.
        large = np.random.default_rng(1).random((60, 47, 1)).astype("float32")
        np.testing.assert_allclose(model.restore(large, self_ensemble=8, tile=24),
                                   model.restore(large, self_ensemble=8), atol=1e-5)

    def test_the_models_default_is_kept_and_saved(self, tmp_path):
        model = tiny_lnca(channels=1, inference_steps=2, self_ensemble=2)
        image = np.random.default_rng(0).random((16, 16, 1)).astype("float32")
        np.testing.assert_allclose(model.restore(image), model.restore(image, self_ensemble=2))
        model.save(tmp_path / "m.keras")
        loaded = keras.saving.load_model(tmp_path / "m.keras")
        assert loaded.self_ensemble == 2 and loaded.get_config() == model.get_config()

    def test_a_batch_and_a_noise_map_take_the_same_views(self):
        model = nudged_lnca(channels=3, noise_map=True)
        images = np.random.default_rng(2).random((3, 24, 17, 3)).astype("float32")
        level = np.linspace(5, 50, 17)[None, :].repeat(24, axis=0)  # varies across the columns
        each = [model.restore(image, noise_level=level, self_ensemble=8) for image in images]
        together = model.restore(images, noise_level=level, self_ensemble=8, batch_size=2)
        np.testing.assert_allclose(together, np.stack(each), atol=1e-5)
        mirrored = model.restore(images[:, :, ::-1], noise_level=level[:, ::-1], self_ensemble=2)
        np.testing.assert_allclose(mirrored[:, :, ::-1], model.restore(images, noise_level=level,
                                                                       self_ensemble=2), atol=1e-5)

    @pytest.mark.parametrize("value", [0, 3, 16, True, 2.5, "2", np.True_])
    def test_bad_sizes_are_one_line_errors(self, value):
        with pytest.raises(ValueError, match="`self_ensemble` must be 1, 2, 4 or 8"):
            tiny_lnca(channels=1, self_ensemble=value)
        with pytest.raises(ValueError, match="`self_ensemble` must be 1, 2, 4 or 8"):
            tiny_lnca(channels=1).restore(np.zeros((8, 8), "float32"), self_ensemble=value)
