"""Noise-level-aware models: the noise map input, estimation, the opponent colour path,
and how `restore`, `lnca restore` and `lnca evaluate` hand the level over."""

import importlib.util
import json
import pathlib
import re

import keras
import numpy as np
import pytest
from conftest import pairs
from PIL import Image
from test_case import TestCase
from test_case import to_numpy

import keras_lnca as kl
from keras_lnca import cli
from keras_lnca.degradations import estimate_noise_level
from keras_lnca.degradations import estimate_noise_map
from keras_lnca.degradations import gaussian_noise
from keras_lnca.errors import UserError
from keras_lnca.models import color_space
from keras_lnca.models import losses
from keras_lnca import training

TINY = dict(
    cell="conv", autoencoder="space_to_depth", out_seed="input", hidden_channels=4,
    train_steps=(2, 3), inference_steps=3, pool_size=32, pool_image_size=16, seed=0,
    cell_config={"perception_channels": 8, "hidden_units": 8, "head_initializer": "glorot_uniform"},
)


def aware(channels=1, **kwargs):
    return kl.LNCA(channels=channels, noise_map=True, **{**TINY, **kwargs})


def with_map(images, sigma):
    level = np.full(images.shape[:-1] + (1,), sigma / 255.0, "float32")
    return np.concatenate([images, level], axis=-1)


def smooth_image(size=96, channels=1):
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = 0.5 + 0.3 * np.sin(5 * xx + 3 * yy)
    return np.repeat(image[..., None], channels, axis=-1).astype("float32")


class TestEstimateNoiseLevel:
    @pytest.mark.parametrize("channels", [1, 3])
    @pytest.mark.parametrize("sigma", [5, 15, 50])
    def test_recovers_the_level(self, sigma, channels):
        noisy = gaussian_noise(smooth_image(channels=channels), sigma, seed=1)
        assert abs(estimate_noise_level(noisy) - sigma) < 0.1 * sigma + 0.5

    def test_clean_image_reads_near_zero(self):
        assert estimate_noise_level(smooth_image()) < 0.5

    def test_uint8_and_float_agree(self):
        noisy = np.clip(gaussian_noise(smooth_image(), 20, seed=0), 0, 1)
        as_uint8 = np.round(noisy * 255).astype("uint8")
        assert abs(estimate_noise_level(as_uint8) - estimate_noise_level(as_uint8 / 255.0)) < 1e-6

    @pytest.mark.parametrize(
        "image, message",
        [
            (np.zeros((5, 5)), "at least"),
            (np.zeros((2, 8, 8, 1)), "one HxW"),
            (np.zeros((8, 8), "int32"), "dtype"),
            (np.full((8, 8), np.nan), "NaN"),
        ],
    )
    def test_bad_input_is_a_one_line_error(self, image, message):
        with pytest.raises(UserError, match=message):
            estimate_noise_level(image)


class TestEstimateNoiseMap:
    def ramp(self, low=5.0, high=50.0, seed=0):
        flat = np.full((192, 384), 0.5, "float32")
        spread = np.linspace(low, high, 384, dtype="float32") / 255
        return flat + np.random.default_rng(seed).normal(size=flat.shape).astype("float32") * spread

    def test_uniform_noise_and_clean_images_get_one_level(self):
        image = smooth_image(192)
        assert np.ndim(estimate_noise_map(image)) == 0
        noisy = gaussian_noise(image, 25, seed=0)
        assert estimate_noise_map(noisy) == estimate_noise_level(noisy)

    def test_noise_that_varies_gets_a_map_that_follows_it(self):
        level = estimate_noise_map(self.ramp())
        assert level.shape == (192, 384) and level.dtype == np.float32
        left, right = level[:, :48].mean(), level[:, -48:].mean()
        assert 4 < left < 15 and 40 < right < 55, (left, right)
        assert np.all(np.diff(level.mean(axis=0)) >= -1e-3)  # it rises across, smoothly

    def test_restore_estimates_a_map_where_the_level_varies(self):
        model = aware()
        image = self.ramp()
        batch = model.model_input(image[None, ..., None])
        told = model.model_input(image[None, ..., None], estimate_noise_map(image))
        np.testing.assert_allclose(batch, told)
        assert batch[0, :, -1, -1].mean() > 3 * batch[0, :, 0, -1].mean()


class TestNoiseMapModel(TestCase):
    def test_input_carries_the_map(self):
        model = aware()
        degraded, _ = pairs(2, 16, channels=1)
        assert model.predict(with_map(degraded, 25), verbose=0).shape == (2, 16, 16, 1)
        with pytest.raises(ValueError, match="channels"):
            model.predict(degraded, verbose=0)

    def test_the_map_changes_the_output(self):
        model = aware()
        degraded, _ = pairs(1, 16, channels=1)
        low = model.predict(with_map(degraded, 5), verbose=0)
        high = model.predict(with_map(degraded, 50), verbose=0)
        assert np.abs(low - high).max() > 1e-4

    def test_restore_takes_a_number_a_map_or_estimates(self):
        model = aware()
        image = gaussian_noise(smooth_image(32), 20, seed=0)
        number = model.restore(image, noise_level=20)
        flat_map = model.restore(image, noise_level=np.full((32, 32), 20.0))
        np.testing.assert_allclose(number, flat_map, atol=1e-6)
        estimated = model.restore(image)
        told_estimate = model.restore(image, noise_level=estimate_noise_level(image))
        np.testing.assert_allclose(estimated, told_estimate, atol=1e-6)
        ramp = np.tile(np.linspace(5, 50, 32), (32, 1))
        assert model.restore(image, noise_level=ramp).shape == (32, 32, 1)

    @pytest.mark.parametrize(
        "level, message",
        [(-1, "0-255"), (300, "0-255"), (np.nan, "finite"), (np.ones((5, 5)), "32x32"), (True, "number")],
    )
    def test_restore_rejects_bad_levels(self, level, message):
        with pytest.raises(ValueError, match=message):
            aware().restore(smooth_image(32), noise_level=level)

    def test_a_model_without_map_refuses_a_level(self):
        model = kl.LNCA(channels=1, **TINY)
        with pytest.raises(ValueError, match="does not take a noise level"):
            model.restore(smooth_image(32), noise_level=10)

    def test_fit_evaluate_and_saving(self, tmp_path):
        model = aware(loss_balance="psnr")
        model.compile(learning_rate=1e-3)
        degraded, clean = pairs(8, 16, channels=1)
        before = [np.array(w) for w in model.nca.trainable_weights]
        model.fit(with_map(degraded, 25), clean, batch_size=4, epochs=1, verbose=0)
        assert any(not np.array_equal(a, np.array(b)) for a, b in zip(before, model.nca.trainable_weights))
        assert np.all(np.isfinite(model.evaluate(with_map(degraded, 25), clean, verbose=0)))
        with pytest.raises(ValueError, match="noise map"):
            model.fit(degraded, clean, batch_size=4, epochs=1, verbose=0)
        self.run_model_saving_test(model, with_map(degraded[:2], 25), tmp_path)

    def test_tiled_restore_matches_whole(self):
        model = aware()
        image = gaussian_noise(smooth_image(40), 25, seed=0)
        ramp = np.tile(np.linspace(5, 50, 40), (40, 1))
        whole = model.restore(image, noise_level=ramp)
        tiled = model.restore(image, noise_level=ramp, tile=16)
        np.testing.assert_allclose(whole, tiled, atol=1e-5)

    def test_folder_dataset_appends_the_drawn_level(self, tmp_path):
        for i in range(2):
            Image.fromarray((smooth_image(24) * 255).astype("uint8")[..., 0]).save(tmp_path / f"{i}.png")
        data = kl.data.FolderPyDataset(tmp_path, "gaussian:0-50", crop_size=16, batch_size=4,
                                       channels=1, crops_per_image=2, seed=0, noise_map=True)
        degraded, clean = data[0]
        assert degraded.shape == (4, 16, 16, 2) and clean.shape == (4, 16, 16, 1)
        residual = (degraded[..., :1] - clean).reshape(4, -1).std(axis=1) * 255
        np.testing.assert_allclose(residual, degraded[:, 0, 0, 1] * 255, rtol=0.25, atol=1.5)
        assert np.ptp(degraded[..., 1].reshape(4, -1), axis=1).max() == 0  # one level per crop
        with pytest.raises(UserError, match="Gaussian"):
            kl.data.FolderPyDataset(tmp_path, "motion:5", crop_size=16, batch_size=4, channels=1,
                                    noise_map=True)


class TestOpponentColour(TestCase):
    def test_transform_is_orthogonal_and_invertible(self):
        rgb = np.random.default_rng(0).random((4, 5, 3)).astype("float32")
        opponent = to_numpy(color_space.to_opponent(rgb))
        assert opponent.min() >= 0 and opponent.max() <= 1
        np.testing.assert_allclose(to_numpy(color_space.from_opponent(opponent)), rgb, atol=1e-6)
        # White noise stays white: the columns are orthogonal, with the noise scales as norms.
        gram = color_space.OPPONENT.T @ color_space.OPPONENT
        np.testing.assert_allclose(gram, np.diag(color_space.OPPONENT_NOISE_SCALES**2), atol=1e-7)

    def test_colour_model_is_the_gray_rule_on_each_opponent_channel(self):
        colour = aware(channels=3, color_space="opponent")
        gray = aware(channels=1)
        gray.build()
        colour.build()
        for source, target in zip(gray.nca.weights, colour.nca.weights):
            target.assign(np.array(source))
        rgb = np.clip(gaussian_noise(np.random.default_rng(1).random((16, 20, 3)), 10, seed=0), 0, 1)
        restored = colour.restore(rgb, noise_level=30)
        channels = to_numpy(color_space.to_opponent(rgb.astype("float32")))
        passes = [
            gray.restore(channels[..., i : i + 1], noise_level=30 * color_space.OPPONENT_NOISE_SCALES[i])
            for i in range(3)
        ]
        expected = np.clip(to_numpy(color_space.from_opponent(np.concatenate(passes, -1))), 0, 1)
        np.testing.assert_allclose(restored, expected, atol=1e-5)

    def test_fits_and_round_trips(self, tmp_path):
        model = aware(channels=3, color_space="opponent", loss_balance="psnr")
        model.compile(learning_rate=1e-3)
        degraded, clean = pairs(4, 16, channels=3)
        model.fit(with_map(degraded, 20), clean, batch_size=4, epochs=1, verbose=0)
        self.run_model_saving_test(model, with_map(degraded, 20), tmp_path)

    def test_needs_three_channels_and_the_lossless_codec(self):
        with pytest.raises(ValueError, match="channels=3"):
            aware(channels=1, color_space="opponent")
        with pytest.raises(ValueError, match="space_to_depth"):
            kl.LNCA(channels=3, color_space="opponent")


class TestLumaGuide(TestCase):
    """`luma_guide=True`: every opponent pass also reads the degraded image's luma."""

    def guided(self, **kwargs):
        return aware(channels=3, color_space="opponent", luma_guide=True, **kwargs)

    def test_the_guide_joins_the_fixed_channels(self):
        plain, guided = aware(channels=3, color_space="opponent"), self.guided()
        assert guided.fixed_channels == plain.fixed_channels + guided.cell_input_channels
        images = np.random.default_rng(0).random((2, 16, 20, 3)).astype("float32")
        passes = to_numpy(guided.input_space.to_passes(keras.ops.convert_to_tensor(with_map(images, 20))))
        assert passes.shape == (6, 16, 20, 3)  # pass image, luma, noise map
        luma = images.mean(axis=-1)
        for i in range(6):  # each image's three passes carry its luma
            np.testing.assert_allclose(passes[i, ..., 1], luma[i // 3], atol=1e-6)
        clean = to_numpy(guided.input_space.to_passes(keras.ops.convert_to_tensor(images), with_map=False))
        assert clean.shape == (6, 16, 20, 1)  # targets carry neither

    def test_the_chroma_passes_read_the_luma(self):
        model = self.guided()
        model.build()
        for weight in model.nca.weights:  # every weight non-zero, the guide's too
            weight.assign(np.random.default_rng(1).normal(0, 0.1, weight.shape))
        rng = np.random.default_rng(2)
        images = rng.random((1, 16, 16, 3)).astype("float32") * 0.5 + 0.25
        shifted = images + (rng.random((1, 16, 16, 1)) * 0.2 - 0.1).astype("float32")  # luma only
        a, b = model.restore(images, noise_level=10), model.restore(shifted, noise_level=10)
        chroma = lambda x: to_numpy(color_space.to_opponent(x))[..., 1:]
        # The inputs' chroma is the same; the outputs' differs through the guide.
        np.testing.assert_allclose(chroma(images), chroma(shifted), atol=1e-6)
        assert np.abs(chroma(a) - chroma(b)).max() > 1e-3

    @pytest.mark.parametrize("source", ["keras file", "run folder"])
    def test_started_from_an_unguided_model_it_restores_as_that_one(self, tmp_path, source):
        donor = aware(channels=3, color_space="opponent")
        donor.build()
        if source == "keras file":
            path = tmp_path / "donor.keras"
            donor.save(path)
        else:  # a run folder's checkpoint, which does not say whether it had a guide
            path = tmp_path / "run"
            path.mkdir()
            donor.save_weights(path / "nca.e0001.weights.h5")
        model = self.guided()
        model.build()
        training.initial_weights(model, str(path), log=lambda *_: None)
        images = np.random.default_rng(3).random((2, 16, 20, 3)).astype("float32")
        np.testing.assert_allclose(model.restore(images, noise_level=25),
                                   donor.restore(images, noise_level=25), atol=1e-6)

    def test_fits_and_round_trips(self, tmp_path):
        model = self.guided(loss_balance="psnr")
        model.compile(learning_rate=1e-3)
        degraded, clean = pairs(4, 16, channels=3)
        history = model.fit(with_map(degraded, 20), clean, batch_size=4, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][-1])
        self.run_model_saving_test(model, with_map(degraded, 20), tmp_path)

    def test_needs_a_colour_space(self):
        with pytest.raises(ValueError, match="luma_guide"):
            aware(channels=1, luma_guide=True)
        with pytest.raises(ValueError, match="luma_guide"):
            aware(channels=3, color_space="opponent", luma_guide="yes")


def test_psnr_balance_weights_each_sample_by_its_inverse_error():
    target = np.zeros((3, 4, 4, 1), "float32")
    restored = target + np.array([0.1, 0.03, 0.01], "float32")[:, None, None, None]
    weights = to_numpy(losses.psnr_balance(restored, target))
    np.testing.assert_allclose(weights.mean(), 1.0, rtol=1e-5)
    errors = np.array([0.1, 0.03, 0.01]) ** 2
    np.testing.assert_allclose(weights * errors / (weights * errors).sum(), [1 / 3] * 3, rtol=1e-4)


def test_init_from_a_model_without_map_starts_where_the_donor_is(tmp_path):
    donor = kl.LNCA(channels=1, **TINY)
    donor.build()
    path = tmp_path / "donor.keras"
    donor.save(path)
    model = aware()
    model.build()
    training.initial_weights(model, str(path), log=lambda *_: None)
    image = np.random.default_rng(0).random((1, 16, 16, 1)).astype("float32")
    expected = donor.predict(image, verbose=0)
    for sigma in (0, 40):
        np.testing.assert_allclose(model.predict(with_map(image, sigma), verbose=0), expected, atol=1e-6)


class TestCommandLine:
    @pytest.fixture(scope="class")
    def model_file(self, tmp_path_factory):
        path = tmp_path_factory.mktemp("aware") / "aware.keras"
        aware().save(path)
        return path

    def test_restore_prints_the_level_it_used(self, model_file, tmp_path, capsys):
        noisy = np.clip(gaussian_noise(smooth_image(48), 30, seed=0), 0, 1)
        Image.fromarray(np.round(noisy[..., 0] * 255).astype("uint8")).save(tmp_path / "n.png")
        assert cli.main(["restore", str(tmp_path / "n.png"), "-o", str(tmp_path / "a.png"),
                         "--model", str(model_file)]) == 0
        out = capsys.readouterr().out
        level = float(out.split("sigma ")[1].split(" ")[0])
        assert "(estimated)" in out and abs(level - 30) < 4
        assert cli.main(["restore", str(tmp_path / "n.png"), "-o", str(tmp_path / "b.png"),
                         "--model", str(model_file), "--noise-level", "12"]) == 0
        assert "sigma 12.0 (given)" in capsys.readouterr().out

    def test_restore_prints_one_line_per_image_unless_quiet(self, model_file, tmp_path, capsys):
        """Each image's line names the file, the model, the level and the seconds; `--quiet`
        keeps only the closing summary."""
        for i in range(2):
            Image.fromarray((smooth_image(32) * 255).astype("uint8")[..., 0]).save(tmp_path / f"in{i}.png")
        inputs = [str(tmp_path / "in0.png"), str(tmp_path / "in1.png")]
        assert cli.main(["restore", *inputs, "-o", str(tmp_path / "out") + "/", "--model", str(model_file),
                         "--noise-level", "10"]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert len(lines) == 3 and lines[-1].startswith("restored 2 image(s)"), lines
        for i, line in enumerate(lines[:2]):
            match = re.fullmatch(rf"in{i}\.png: {re.escape(model_file.name)}, sigma 10\.0 \(given\), "
                                 rf"(\d+\.\d\d) s -> (.+)", line)
            assert match and pathlib.Path(match.group(2)) == tmp_path / "out" / f"in{i}.png", line
        assert cli.main(["restore", *inputs, "-o", str(tmp_path / "quiet") + "/", "--model", str(model_file),
                         "--quiet"]) == 0
        captured = capsys.readouterr()
        assert captured.out.strip().splitlines() == [captured.out.strip()]
        assert captured.out.startswith("restored 2 image(s)") and not captured.err
        assert sorted(p.name for p in (tmp_path / "quiet").iterdir()) == ["in0.png", "in1.png"]

    def test_restore_prints_the_range_of_an_estimated_map(self, model_file, tmp_path, capsys):
        ramp = TestEstimateNoiseMap().ramp()
        Image.fromarray(np.round(np.clip(ramp, 0, 1) * 255).astype("uint8")).save(tmp_path / "r.png")
        assert cli.main(["restore", str(tmp_path / "r.png"), "-o", str(tmp_path / "a.png"),
                         "--model", str(model_file)]) == 0
        out = capsys.readouterr().out
        low, high = (float(v) for v in out.split("sigma ")[1].split(" (a map)")[0].split(" to "))
        assert low < 15 and high > 40 and "(a map) (estimated)" in out, out

    def test_evaluate_rows_told_and_estimated(self, model_file, tmp_path, capsys):
        for i in range(2):
            Image.fromarray((smooth_image(32) * 255).astype("uint8")[..., 0]).save(tmp_path / f"{i}.png")
        out = tmp_path / "r.json"
        assert cli.main(["evaluate", "--model", str(model_file), "--dataset", str(tmp_path),
                         "--degradation", "gaussian:25", "--noise-level", "estimate", "told",
                         "--quiet", "--json", str(out)]) == 0
        methods = [r["method"] for r in json.loads(out.read_text())["results"]]
        assert methods == ["model:aware", "model:aware@told"]
        capsys.readouterr()
        assert cli.main(["evaluate", "--model", str(model_file), "--dataset", str(tmp_path),
                         "--degradation", "motion:5", "--noise-level", "told"]) != 0
        assert "Gaussian" in capsys.readouterr().err

    def test_self_ensemble_rows_and_restore_line(self, model_file, tmp_path, capsys):
        for i in range(2):
            Image.fromarray((smooth_image(32) * 255).astype("uint8")[..., 0]).save(tmp_path / f"{i}.png")
        out = tmp_path / "r.json"
        assert cli.main(["evaluate", "--model", str(model_file), "--dataset", str(tmp_path),
                         "--degradation", "gaussian:25", "--noise-level", "estimate", "told",
                         "--self-ensemble", "1", "4", "--quiet", "--json", str(out)]) == 0
        rows = {r["method"]: r for r in json.loads(out.read_text())["results"]}
        assert list(rows) == ["model:aware@x1", "model:aware@x4", "model:aware@told@x1",
                              "model:aware@told@x4"]
        assert rows["model:aware@x1"]["psnr"] != rows["model:aware@x4"]["psnr"]
        capsys.readouterr()
        assert cli.main(["restore", str(tmp_path / "0.png"), "-o", str(tmp_path / "a.png"),
                         "--model", str(model_file), "--noise-level", "10", "--self-ensemble", "2"]) == 0
        assert "sigma 10.0 (given), 2 views averaged, " in capsys.readouterr().out
        assert cli.main(["restore", str(tmp_path / "0.png"), "-o", str(tmp_path / "b.png"),
                         "--self-ensemble", "3"]) == 2
        assert "--self-ensemble" in capsys.readouterr().err and not (tmp_path / "b.png").exists()
        assert cli.main(["evaluate", "--baseline", "identity", "--dataset", str(tmp_path),
                         "--degradation", "gaussian:25", "--self-ensemble", "2"]) == 2
        assert "--self-ensemble applies to models" in capsys.readouterr().err


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="export converts with TensorFlow"
)
@pytest.mark.slow  # trains or writes files: the full suite runs it
def test_tflite_export_takes_the_noise_map_as_an_input(tmp_path):
    from keras_lnca import export

    model = aware()
    path = tmp_path / "aware.tflite"
    report = export.export_tflite(model, path, input_shape=(16, 16))
    assert report.input_shape == (1, 16, 16, 2) and report.max_abs_diff <= 1e-4
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # the TensorFlow build of the same interpreter
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    image = gaussian_noise(smooth_image(16), 20, seed=0)[None]
    for sigma in (5, 40):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], with_map(image, sigma))
        interpreter.invoke()
        output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        np.testing.assert_allclose(output, model.predict(with_map(image, sigma), verbose=0), atol=1e-4)


def test_ramp_noise_rises_across_the_image_and_reports_its_map():
    degradation = kl.degradations.parse("ramp:5-50")
    assert degradation.spec == "ramp:5-50" and degradation.kinds == ("gaussian",)
    clean = np.full((64, 200, 1), 0.5, "float32")
    noisy, info = degradation.apply(clean, seed=0)
    levels = info[0]["sigma"]
    assert levels.shape == (64, 200) and levels[0, 0] == 5 and levels[0, -1] == 50
    residual = (noisy - clean)[..., 0] * 255
    assert abs(residual[:, :20].std() - levels[:, :20].mean()) < 1.5
    assert abs(residual[:, -20:].std() - levels[:, -20:].mean()) < 5
    restored = aware().restore(noisy, noise_level=levels)
    assert restored.shape == clean.shape
    with pytest.raises(UserError, match="LOW-HIGH"):
        kl.degradations.parse("ramp:25")
