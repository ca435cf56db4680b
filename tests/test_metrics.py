"""PSNR / SSIM against scikit-image, and inside `compile` + `fit`."""

import os
from pathlib import Path

import keras
import numpy as np
import pytest

skimage_metrics = pytest.importorskip("skimage.metrics")
from skimage.color import rgb2ycbcr  # noqa: E402

from keras_lnca.metrics import PSNR  # noqa: E402
from keras_lnca.metrics import SSIM  # noqa: E402

PSNR_TOL = 0.01  # dB
SSIM_TOL = 0.002

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(
    os.environ.get("LNCA_DATA", REPO_ROOT / ".." / "shared" / "data")
)


# --- references ----------------------------------------------------------


def sk_psnr(clean, test, data_range=1.0):
    return skimage_metrics.peak_signal_noise_ratio(
        clean.astype(np.float64), test.astype(np.float64), data_range=data_range
    )


def sk_ssim(clean, test, data_range=1.0):
    """skimage SSIM of one HWC image, with keras-lnca's settings."""
    clean = clean.astype(np.float64)
    test = test.astype(np.float64)
    kwargs = dict(
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=data_range,
    )
    if clean.shape[-1] == 1:
        return skimage_metrics.structural_similarity(
            clean[..., 0], test[..., 0], **kwargs
        )
    return skimage_metrics.structural_similarity(
        clean, test, channel_axis=-1, **kwargs
    )


def metric_value(metric, clean, test, sample_weight=None):
    metric.reset_state()
    metric.update_state(clean, test, sample_weight=sample_weight)
    return float(keras.ops.convert_to_numpy(metric.result()))


def noisy_pair(shape, sigma=0.1, seed=0):
    rng = np.random.default_rng(seed)
    clean = rng.random(shape).astype("float32")
    # Smooth the clean images a little so SSIM is not near zero.
    clean = (clean + np.roll(clean, 1, axis=-2) + np.roll(clean, 1, axis=-3)) / 3
    noisy = clean + rng.normal(0.0, sigma, shape).astype("float32")
    return clean.astype("float32"), noisy.astype("float32")


def load_images(folder, names):
    from PIL import Image

    images = []
    for name in names:
        image = np.asarray(Image.open(folder / name), dtype=np.float32) / 255.0
        if image.ndim == 2:
            image = image[..., None]
        images.append(image)
    return np.stack(images)


def needs_data(*parts):
    path = DATA_DIR.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(
            f"test images not found at {path} (set LNCA_DATA to the shared "
            "data folder)"
        )
    return path


# --- agreement with scikit-image -----------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_random_images_per_image_and_batch_mean(channels):
    clean, noisy = noisy_pair((3, 40, 52, channels), sigma=0.08, seed=channels)
    # Different noise levels per image, so the mean is a real average.
    scale = np.array([0.5, 1.0, 2.0], "float32").reshape(3, 1, 1, 1)
    noisy = clean + (noisy - clean) * scale
    ref_psnr = [sk_psnr(c, n) for c, n in zip(clean, noisy)]
    ref_ssim = [sk_ssim(c, n) for c, n in zip(clean, noisy)]
    for i in range(3):
        assert metric_value(PSNR(), clean[i : i + 1], noisy[i : i + 1]) == (
            pytest.approx(ref_psnr[i], abs=PSNR_TOL)
        )
        assert metric_value(SSIM(), clean[i : i + 1], noisy[i : i + 1]) == (
            pytest.approx(ref_ssim[i], abs=SSIM_TOL)
        )
    assert metric_value(PSNR(), clean, noisy) == pytest.approx(
        np.mean(ref_psnr), abs=PSNR_TOL
    )
    assert metric_value(SSIM(), clean, noisy) == pytest.approx(
        np.mean(ref_ssim), abs=SSIM_TOL
    )
    # Per image then averaged: not the PSNR of the pooled MSE.
    pooled = sk_psnr(clean, noisy)
    assert abs(metric_value(PSNR(), clean, noisy) - pooled) > 0.5


def test_running_mean_over_batches():
    clean, noisy = noisy_pair((4, 24, 24, 3), seed=3)
    noisy[2:] = clean[2:] + 3 * (noisy[2:] - clean[2:])
    psnr, ssim = PSNR(), SSIM()
    for i in (0, 2):  # two updates of two images each
        psnr.update_state(clean[i : i + 2], noisy[i : i + 2])
        ssim.update_state(clean[i : i + 2], noisy[i : i + 2])
    assert float(psnr.result()) == pytest.approx(
        np.mean([sk_psnr(c, n) for c, n in zip(clean, noisy)]), abs=PSNR_TOL
    )
    assert float(ssim.result()) == pytest.approx(
        np.mean([sk_ssim(c, n) for c, n in zip(clean, noisy)]), abs=SSIM_TOL
    )
    psnr.reset_state()
    assert float(psnr.result()) == 0.0


def test_single_hwc_image():
    clean, noisy = noisy_pair((1, 30, 30, 3), seed=4)
    assert metric_value(PSNR(), clean[0], noisy[0]) == pytest.approx(
        sk_psnr(clean[0], noisy[0]), abs=PSNR_TOL
    )
    assert metric_value(SSIM(), clean[0], noisy[0]) == pytest.approx(
        sk_ssim(clean[0], noisy[0]), abs=SSIM_TOL
    )


@pytest.mark.parametrize("channels", [1, 3])
def test_crop_border(channels):
    clean, noisy = noisy_pair((2, 40, 44, channels), seed=5)
    # Much larger errors near the border, so cropping matters.
    noisy[:, :4] += 0.5
    noisy[:, :, -4:] -= 0.5
    c = 4
    crop = (slice(None), slice(c, -c), slice(c, -c))
    ref_psnr = np.mean([sk_psnr(a, b) for a, b in zip(clean[crop], noisy[crop])])
    ref_ssim = np.mean([sk_ssim(a, b) for a, b in zip(clean[crop], noisy[crop])])
    assert metric_value(PSNR(crop_border=c), clean, noisy) == pytest.approx(
        ref_psnr, abs=PSNR_TOL
    )
    assert metric_value(SSIM(crop_border=c), clean, noisy) == pytest.approx(
        ref_ssim, abs=SSIM_TOL
    )
    assert abs(metric_value(PSNR(), clean, noisy) - ref_psnr) > 1.0


def test_y_channel():
    clean, noisy = noisy_pair((2, 36, 36, 3), seed=6)
    # skimage's rgb2ycbcr gives Y on [16, 235] for float RGB on [0, 1].
    y_clean = rgb2ycbcr(clean.astype(np.float64))[..., :1] / 255.0
    y_noisy = rgb2ycbcr(noisy.astype(np.float64))[..., :1] / 255.0
    ref_psnr = np.mean([sk_psnr(a, b) for a, b in zip(y_clean, y_noisy)])
    ref_ssim = np.mean([sk_ssim(a, b) for a, b in zip(y_clean, y_noisy)])
    assert metric_value(PSNR(y_channel=True), clean, noisy) == pytest.approx(
        ref_psnr, abs=PSNR_TOL
    )
    assert metric_value(SSIM(y_channel=True), clean, noisy) == pytest.approx(
        ref_ssim, abs=SSIM_TOL
    )
    # Combined with cropping.
    crop = (slice(None), slice(3, -3), slice(3, -3))
    assert metric_value(
        PSNR(y_channel=True, crop_border=3), clean, noisy
    ) == pytest.approx(
        np.mean([sk_psnr(a, b) for a, b in zip(y_clean[crop], y_noisy[crop])]),
        abs=PSNR_TOL,
    )
    # One channel: used as it is.
    assert metric_value(
        PSNR(y_channel=True), clean[..., :1], noisy[..., :1]
    ) == pytest.approx(metric_value(PSNR(), clean[..., :1], noisy[..., :1]), abs=1e-5)
    with pytest.raises(ValueError, match="y_channel"):
        metric_value(PSNR(y_channel=True), clean[..., :2], noisy[..., :2])


def test_max_val_255():
    clean, noisy = noisy_pair((2, 32, 32, 3), seed=7)
    clean255, noisy255 = clean * 255.0, noisy * 255.0
    assert metric_value(PSNR(max_val=255), clean255, noisy255) == pytest.approx(
        np.mean([sk_psnr(a, b, 255) for a, b in zip(clean255, noisy255)]),
        abs=PSNR_TOL,
    )
    assert metric_value(SSIM(max_val=255), clean255, noisy255) == pytest.approx(
        np.mean([sk_ssim(a, b, 255) for a, b in zip(clean255, noisy255)]),
        abs=SSIM_TOL,
    )
    # Y on [0, 255] uses the offset 16, as MATLAB's rgb2ycbcr on uint8.
    y_clean = rgb2ycbcr(clean.astype(np.float64))[..., :1]
    y_noisy = rgb2ycbcr(noisy.astype(np.float64))[..., :1]
    assert metric_value(
        SSIM(max_val=255, y_channel=True), clean255, noisy255
    ) == pytest.approx(
        np.mean([sk_ssim(a, b, 255) for a, b in zip(y_clean, y_noisy)]),
        abs=SSIM_TOL,
    )


def test_identical_images_are_finite():
    clean, noisy = noisy_pair((2, 24, 24, 1), seed=8)
    noisy[0] = clean[0]  # one perfect restoration in the batch
    value = metric_value(PSNR(), clean, noisy)
    assert np.isfinite(value)
    assert value == pytest.approx((100.0 + sk_psnr(clean[1], noisy[1])) / 2, abs=0.01)
    assert metric_value(SSIM(), clean[:1], clean[:1]) == pytest.approx(1.0, abs=1e-5)


def test_values_are_not_clipped():
    clean = np.full((1, 16, 16, 1), 0.5, "float32")
    test = np.full((1, 16, 16, 1), 1.5, "float32")  # out of [0, 1]
    assert metric_value(PSNR(), clean, test) == pytest.approx(0.0, abs=1e-4)


def test_sample_weight():
    clean, noisy = noisy_pair((3, 24, 24, 3), seed=9)
    noisy[1] = clean[1] + 2 * (noisy[1] - clean[1])
    ref = np.array([sk_psnr(c, n) for c, n in zip(clean, noisy)])
    weights = np.array([1.0, 0.0, 3.0], "float32")
    assert metric_value(PSNR(), clean, noisy, weights) == pytest.approx(
        np.sum(ref * weights) / np.sum(weights), abs=PSNR_TOL
    )


# --- real images ----------------------------------------------------------


def test_real_gray_images():
    folder = needs_data("gray", "set12")
    clean = load_images(folder, ["01.png", "02.png", "05.png"])
    rng = np.random.default_rng(0)
    noisy = clean + rng.normal(0.0, 25 / 255, clean.shape).astype("float32")
    ref_psnr = [sk_psnr(c, n) for c, n in zip(clean, noisy)]
    ref_ssim = [sk_ssim(c, n) for c, n in zip(clean, noisy)]
    assert 20.0 < np.mean(ref_psnr) < 21.0  # sigma 25 without clipping
    assert metric_value(PSNR(), clean[:1], noisy[:1]) == pytest.approx(
        ref_psnr[0], abs=PSNR_TOL
    )
    assert metric_value(SSIM(), clean[:1], noisy[:1]) == pytest.approx(
        ref_ssim[0], abs=SSIM_TOL
    )
    assert metric_value(PSNR(), clean, noisy) == pytest.approx(
        np.mean(ref_psnr), abs=PSNR_TOL
    )
    assert metric_value(SSIM(), clean, noisy) == pytest.approx(
        np.mean(ref_ssim), abs=SSIM_TOL
    )


def test_real_colour_images():
    folder = needs_data("color", "cbsd68")
    clean = load_images(folder, ["101085.jpg", "101087.jpg"])  # both 321x481
    rng = np.random.default_rng(1)
    noisy = np.clip(
        clean + rng.normal(0.0, 15 / 255, clean.shape), 0.0, 1.0
    ).astype("float32")
    ref_psnr = [sk_psnr(c, n) for c, n in zip(clean, noisy)]
    ref_ssim = [sk_ssim(c, n) for c, n in zip(clean, noisy)]
    assert metric_value(PSNR(), clean[1:], noisy[1:]) == pytest.approx(
        ref_psnr[1], abs=PSNR_TOL
    )
    assert metric_value(SSIM(), clean[1:], noisy[1:]) == pytest.approx(
        ref_ssim[1], abs=SSIM_TOL
    )
    assert metric_value(PSNR(), clean, noisy) == pytest.approx(
        np.mean(ref_psnr), abs=PSNR_TOL
    )
    assert metric_value(SSIM(), clean, noisy) == pytest.approx(
        np.mean(ref_ssim), abs=SSIM_TOL
    )
    y_clean = rgb2ycbcr(clean.astype(np.float64))[..., :1] / 255.0
    y_noisy = rgb2ycbcr(noisy.astype(np.float64))[..., :1] / 255.0
    assert metric_value(
        SSIM(y_channel=True, crop_border=4), clean, noisy
    ) == pytest.approx(
        np.mean(
            [
                sk_ssim(a[4:-4, 4:-4], b[4:-4, 4:-4])
                for a, b in zip(y_clean, y_noisy)
            ]
        ),
        abs=SSIM_TOL,
    )


# --- serialization and training -----------------------------------------


@pytest.mark.parametrize("cls", [PSNR, SSIM])
def test_get_config_round_trip(cls):
    metric = cls(max_val=255.0, crop_border=2, y_channel=True, name="m")
    config = metric.get_config()
    assert config["max_val"] == 255.0
    assert config["crop_border"] == 2
    assert config["y_channel"] is True
    assert config["name"] == "m"
    clone = cls.from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(metric)
    )
    assert type(restored) is cls
    assert restored.get_config() == config
    assert keras.saving.get_registered_name(cls) == f"keras_lnca>{cls.__name__}"


def test_invalid_arguments():
    with pytest.raises(ValueError, match="max_val"):
        PSNR(max_val=0)
    with pytest.raises(ValueError, match="crop_border"):
        SSIM(crop_border=-1)
    with pytest.raises(ValueError, match="rank 4"):
        metric_value(PSNR(), np.zeros((4, 4)), np.zeros((4, 4)))


def _tiny_model():
    inputs = keras.Input((16, 16, 3))
    outputs = keras.layers.Conv2D(3, 3, padding="same")(inputs)
    return keras.Model(inputs, outputs)


JIT_OPTIONS = ["auto"]
if keras.backend.backend() == "tensorflow":
    JIT_OPTIONS += [True, False]


@pytest.mark.parametrize("jit_compile", JIT_OPTIONS)
def test_compile_and_fit(jit_compile, tmp_path):
    clean, noisy = noisy_pair((8, 16, 16, 3), seed=10)
    model = _tiny_model()
    model.compile(
        optimizer="adam",
        loss="mse",
        metrics=[PSNR(), SSIM(crop_border=1, y_channel=True)],
        jit_compile=jit_compile,
    )
    history = model.fit(noisy, clean, batch_size=4, epochs=1, verbose=0)
    for key in ("psnr", "ssim"):
        assert len(history.history[key]) == 1
        assert np.isfinite(history.history[key][0])
    results = model.evaluate(noisy, clean, batch_size=4, verbose=0, return_dict=True)
    restored = model.predict(noisy, batch_size=4, verbose=0)
    expected = np.mean([sk_psnr(c, r) for c, r in zip(clean, restored)])
    assert results["psnr"] == pytest.approx(expected, abs=PSNR_TOL)
    expected = np.mean(
        [
            sk_ssim(a[1:-1, 1:-1], b[1:-1, 1:-1])
            for a, b in zip(
                rgb2ycbcr(clean.astype(np.float64))[..., :1] / 255.0,
                rgb2ycbcr(restored.astype(np.float64))[..., :1] / 255.0,
            )
        ]
    )
    assert results["ssim"] == pytest.approx(expected, abs=SSIM_TOL)

    if jit_compile == "auto":
        # The compiled metrics survive a .keras round trip.
        path = tmp_path / "model.keras"
        model.save(path)
        reloaded = keras.saving.load_model(path)
        again = reloaded.evaluate(
            noisy, clean, batch_size=4, verbose=0, return_dict=True
        )
        assert again["psnr"] == pytest.approx(results["psnr"], abs=1e-4)
        assert again["ssim"] == pytest.approx(results["ssim"], abs=1e-5)
