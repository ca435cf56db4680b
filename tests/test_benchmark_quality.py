"""`lnca benchmark quality`: quality against NCA steps, and the preset's stability."""

import json

import keras
import numpy as np
import pytest
from PIL import Image

import keras_lnca as kl
from keras_lnca import cli
from keras_lnca import evaluation
from keras_lnca.benchmarks import quality
from keras_lnca.data import evaluation_images
from keras_lnca.errors import UserError

from conftest import data_dir
from conftest import tiny_lnca

PRESET = "lnca_denoise_gray_s25"
RESULT_KEYS = (
    "benchmark", "method", "dataset", "degradation", "seed", "num_images", "steps",
    "nominal_steps", "backend", "noisy", "points", "stability", "machine", "command",
)
POINT_KEYS = (
    "steps", "psnr", "ssim", "update_magnitude", "delta_psnr", "nonfinite_images",
    "seconds_per_image", "per_image",
)


@pytest.fixture(scope="module")
def preset():
    return kl.LNCA.from_preset(PRESET)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """Three small gray PNGs (smooth patterns; one shape, so one compilation)."""
    folder = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(1)
    for i in range(3):
        yy, xx = np.mgrid[0:40, 0:48] / 16.0
        a, b = rng.random(2) * 3
        image = 0.5 + 0.35 * np.sin(a * xx + b * yy) * np.cos(b * xx - yy)
        Image.fromarray(np.uint8(np.round(255 * image))).save(folder / f"{i:02d}.png")
    return folder


def test_parse_steps():
    assert quality.parse_steps("64,8, 16,8") == (8, 16, 64)
    assert quality.parse_steps("1") == (1,)
    for bad in ("", " ", "8,,16", "8,x", "0,8", "-4", "8.5"):
        with pytest.raises(UserError):
            quality.parse_steps(bad)


def test_trajectory_readouts_equal_restore(preset):
    # One trajectory decoded at 3 and 8 steps gives what restore(steps=N)
    # gives; odd sizes exercise the padding and cropping.
    rng = np.random.default_rng(0)
    image = rng.random((37, 50)) + rng.normal(0.0, 0.1, (37, 50))
    readouts = list(quality.StepTrajectory(preset)(image, (3, 8)))
    assert [r["steps"] for r in readouts] == [3, 8]
    for readout in readouts:
        expected = preset.restore(image, steps=readout["steps"])
        assert readout["image"].shape == image.shape
        np.testing.assert_allclose(readout["image"], expected, atol=1e-5)
        assert np.isfinite(readout["update_magnitude"]) and readout["update_magnitude"] > 0
    assert readouts[1]["seconds"] >= readouts[0]["seconds"]
    with pytest.raises(ValueError):
        list(quality.StepTrajectory(preset)(image, (8, 3)))


def test_trajectory_of_an_opponent_colour_model_equals_restore():
    """A colour model in an opponent space runs three passes per image: its states stay
    together in one batch, and each image gets one update magnitude."""
    model = tiny_lnca(3, autoencoder="space_to_depth", color_space="opponent", noise_map=True,
                      out_seed="input", cell="conv", cell_config={"perception_channels": 8, "hidden_units": 8})
    rng = np.random.default_rng(0)
    images = np.clip(rng.random((2, 20, 24, 3)) * 0.5 + 0.25, 0, 1).astype("float32")
    readouts = list(quality.StepTrajectory(model)(images, (2, 4), noise_level=20))
    for readout in readouts:
        expected = model.restore(images, steps=readout["steps"], noise_level=20)
        assert readout["image"].shape == images.shape
        np.testing.assert_allclose(readout["image"], expected, atol=1e-5)
        assert len(readout["update_magnitudes"]) == 2


def test_cli_quality_outputs(tiny_dataset, tmp_path, preset, capsys):
    out = tmp_path / "quality.json"
    markdown = tmp_path / "quality.md"
    png = tmp_path / "quality.png"
    n = preset.inference_steps  # the preset's nominal step count
    status = cli.main([
        "benchmark", "quality", "--preset", PRESET, "--dataset", str(tiny_dataset),
        "--degradation", "gaussian:25", "--steps", f"{n},4,{n + 4}", "--json", str(out),
        "--markdown", str(markdown), "--plot", str(png), "--batch-size", "3", "--quiet",
    ])
    assert status == 0
    printed = capsys.readouterr().out
    assert "noisy input" in printed and f"{n} (nominal)" in printed

    result = json.loads(out.read_text())
    for key in RESULT_KEYS:
        assert key in result, key
    assert result["steps"] == [4, n, n + 4] and result["nominal_steps"] == n
    assert result["num_images"] == 3 and result["backend"] == keras.backend.backend()
    assert result["batch_size"] == 3 and "--batch-size 3" in result["command"]
    assert [p["steps"] for p in result["points"]] == [4, n, n + 4]
    for point in result["points"]:
        for key in POINT_KEYS:
            assert key in point, key
        assert len(point["per_image"]) == 3 and point["nonfinite_images"] == 0
        assert point["update_magnitude"] > 0

    # The same noisy images and scores as `lnca evaluate` (identity = noisy row;
    # the model at its nominal steps, one image at a time = the nominal row, batched).
    reference = evaluation.evaluate(
        str(tiny_dataset), "gaussian:25", {"model": lambda x: preset.restore(x, steps=n)},
        ["identity"], channels=1, progress=False,
    )
    model_row, identity_row = reference["results"]
    assert result["noisy"]["psnr"] == pytest.approx(identity_row["psnr"], abs=1e-9)
    assert result["noisy"]["ssim"] == pytest.approx(identity_row["ssim"], abs=1e-9)
    nominal = result["points"][1]
    assert nominal["psnr"] == pytest.approx(model_row["psnr"], abs=1e-4)
    assert nominal["ssim"] == pytest.approx(model_row["ssim"], abs=1e-5)
    assert nominal["delta_psnr"] == 0.0
    longest = result["points"][2]
    assert longest["delta_psnr"] == pytest.approx(longest["psnr"] - nominal["psnr"])
    assert result["stability"]["steps"] == n + 4 and result["stability"]["finite"] is True
    assert result["stability"]["delta_psnr"] == pytest.approx(longest["delta_psnr"])
    # Four steps are far from converged: the restoration is worse and moves more.
    assert result["points"][0]["psnr"] < nominal["psnr"]
    assert result["points"][0]["update_magnitude"] > nominal["update_magnitude"]

    text = markdown.read_text()
    assert "lnca benchmark quality --preset" in text
    assert "| noisy input |" in text and f"| {n} (nominal) |" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nonfinite_readouts_are_reported(tiny_dataset):
    # A rule with huge weights overflows: the readouts are flagged, NaN images
    # score NaN (so the mean is NaN, null in JSON), nothing raises.
    model = kl.PixelNCA(channels=1, cell="sobel", inference_steps=4)
    model.build()
    for variable in model.nca.cell.weights:
        signs = np.where(np.arange(int(np.prod(variable.shape))) % 2, 1.0, -1.0)
        variable.assign((1e19 * signs).reshape(variable.shape).astype("float32"))
    # Batches of 2: the three images go as 2 + 1, each scored on its own.
    result = quality.run(model, tiny_dataset, "gaussian:25", (1, 4), batch_size=2, progress=False)
    first, last = result["points"]
    assert [r["file"] for r in last["per_image"]] == ["00.png", "01.png", "02.png"]
    assert first["nonfinite_images"] == 3 and last["nonfinite_images"] == 3
    assert np.isnan(last["psnr"])
    assert result["stability"] is None  # no count above the nominal 4
    assert "non-finite" in quality.format_table(result)
    assert evaluation._finite(result)["points"][1]["psnr"] is None  # what write_json writes


def _run_error(argv, capsys):
    status = cli.main(["benchmark", "quality", *argv])
    err = capsys.readouterr().err.strip()
    return status, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--preset", PRESET, "--dataset", "/no/such/folder", "--degradation", "gaussian:25"],
         "no such dataset folder"),
        (["--preset", PRESET, "--degradation", "gaussian:x"], "invalid degradation"),
        (["--preset", PRESET, "--degradation", "gaussian:25", "--steps", "8,x"], "must be integers"),
        (["--preset", PRESET, "--degradation", "gaussian:25", "--steps", "0,8"], "must be from 1 to 10000"),
        (["--preset", PRESET, "--degradation", "gaussian:25", "--steps", ","], "--steps"),
        (["--preset", PRESET, "--degradation", "gaussian:25", "--limit", "0"], "--limit must be >= 1"),
        (["--preset", PRESET, "--degradation", "gaussian:25", "--batch-size", "x"], "--batch-size"),
        (["--preset", PRESET], "give --degradation"),
        (["--degradation", "gaussian:25"], "--preset NAME or --model FILE"),
        (["--preset", PRESET, "--model", "m.keras", "--degradation", "gaussian:25"], "not both"),
        (["--model", "/no/such.keras", "--degradation", "gaussian:25"], "no such model file"),
        (["--preset", "no_such_preset", "--degradation", "gaussian:25"], "Unknown preset"),
        (["--preset", PRESET, "--degradation", "gaussian:25", "--plot", "{tmp}/curve.jpg"], ".png"),
    ],
)
def test_cli_errors_are_one_line(argv, message, tiny_dataset, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--dataset" not in argv:
        argv += ["--dataset", str(tiny_dataset)]
    out = tmp_path / "out.json"
    status, err = _run_error(argv + ["--json", str(out), "--quiet"], capsys)
    assert status == 2
    assert len(err.splitlines()) == 1 and err.startswith("lnca benchmark: error:")
    assert message in err
    assert not out.exists()


def test_cli_json_into_a_missing_folder(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "missing" / "out.json"
    status, err = _run_error(["--preset", PRESET, "--dataset", str(tiny_dataset), "--degradation",
                              "gaussian:25", "--json", str(out)], capsys)
    assert status == 2 and "no such folder for --json" in err
    assert not out.exists()


@pytest.mark.slow
def test_shipped_preset_is_stable_at_4x_steps(preset, tmp_path):
    """4x the inference steps: finite, and within 0.1 dB of the nominal PSNR."""
    folder = data_dir() / "gray" / "set12"
    if not folder.is_dir():
        pytest.skip(f"Set12 not found at {folder} (set LNCA_DATA to the shared data folder)")
    for i, (name, image) in enumerate(evaluation_images(folder, channels=1)):
        if i == 3:
            break
        crop = np.uint8(np.round(255 * image[:128, :128, 0]))
        Image.fromarray(crop).save(tmp_path / name)
    nominal = preset.inference_steps
    result = quality.run(preset, tmp_path, "gaussian:25", (nominal, 4 * nominal), batch_size=3,
                         progress=False)
    assert result["num_images"] == 3
    stability = result["stability"]
    assert stability["steps"] == 4 * nominal
    assert stability["finite"], result["points"]
    assert abs(stability["delta_psnr"]) <= 0.1, stability
    # The restoration is a real one, not a constant image that is trivially stable.
    assert stability["nominal_psnr"] > result["noisy"]["psnr"] + 3.0
