"""`lnca benchmark color`: a colour model's error split between luma and chroma."""

import json

import numpy as np
import pytest
from PIL import Image

from keras_lnca import cli
from keras_lnca.benchmarks import color_errors

PRESET = "lnca_denoise_color_blind"


@pytest.fixture(scope="module")
def clean():
    rng = np.random.default_rng(0)
    return np.clip(rng.random((24, 20, 3)) * 0.6 + 0.2, 0, 1)


def test_round_trip(clean):
    np.testing.assert_allclose(color_errors.from_opponent(color_errors.to_opponent(clean)), clean, atol=1e-6)


def test_an_error_shared_by_r_g_and_b_lives_in_luma(clean):
    split = color_errors.split_error(clean + 0.05, clean)
    assert split["luma_share"] == pytest.approx(100.0) and split["chroma_share"] == pytest.approx(0.0, abs=1e-9)
    assert split["psnr_clean_luma"] > 100  # float rounding only
    assert split["psnr_clean_chroma"] == pytest.approx(split["psnr"])


def test_an_opposite_error_in_r_and_b_lives_in_chroma(clean):
    restored = clean + np.array([0.05, 0.0, -0.05])
    split = color_errors.split_error(restored, clean)
    assert split["chroma_share"] == pytest.approx(100.0) and split["luma_share"] == pytest.approx(0.0, abs=1e-9)
    assert split["psnr_clean_chroma"] > 100


def test_the_split_is_exact_for_any_error(clean):
    # The shares of an unclipped error add up to its squared RGB error, channel by channel.
    error = np.random.default_rng(1).normal(0.0, 0.03, clean.shape)
    split = color_errors.split_error(clean + error, clean)
    mse = np.mean(np.square(error))
    # The luma part of the error is its mean over R, G, B, repeated on the three channels.
    luma_part = np.repeat(error.mean(axis=-1, keepdims=True), 3, axis=-1)
    assert split["luma_share"] == pytest.approx(100 * np.mean(np.square(luma_part)) / mse, rel=1e-6)
    assert split["luma_share"] + split["chroma_share"] == pytest.approx(100.0)
    assert split["psnr"] == pytest.approx(10 * np.log10(1 / mse), abs=1e-6)
    assert split["psnr_clean_luma"] > split["psnr"] and split["psnr_clean_chroma"] > split["psnr"]


def test_split_rejects_gray(clean):
    with pytest.raises(ValueError, match="RGB"):
        color_errors.split_error(clean[..., :1], clean[..., :1])


def test_cli_color_benchmark(tmp_path, capsys):
    folder = tmp_path / "colour"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for i in range(2):
        yy, xx = np.mgrid[0:32, 0:40] / 9.0
        image = np.stack([0.5 + 0.3 * np.sin(xx * (c + 1) + yy * rng.random()) for c in range(3)], -1)
        Image.fromarray(np.uint8(np.round(255 * image))).save(folder / f"{i}.png")
    out = tmp_path / "color.json"
    status = cli.main(["benchmark", "color", "--preset", PRESET, "--dataset", str(folder),
                       "--sigmas", "25", "--baseline", "bm3d", "--json", str(out), "--quiet"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "told sigma" in printed and "clean luma" in printed and "bm3d" in printed
    result = json.loads(out.read_text())
    assert result["num_images"] == 2 and result["told"] is True
    assert result["command"].startswith("lnca benchmark color --preset " + PRESET)
    assert result["command"].endswith("--baseline bm3d")
    assert [(row["method"], row["sigma"]) for row in result["rows"]] == [("model:" + PRESET, 25.0), ("bm3d", 25.0)]
    noisy_psnr = 10 * np.log10(255**2 / 25**2)
    for row in result["rows"]:
        assert len(row["images"]) == 2
        assert row["psnr"] > noisy_psnr + 3  # both denoise
        assert row["psnr_clean_luma"] >= row["psnr"] and row["psnr_clean_chroma"] >= row["psnr"]
        assert row["luma_share"] + row["chroma_share"] == pytest.approx(100.0)
