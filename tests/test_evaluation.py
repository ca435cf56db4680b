"""Tests of keras_lnca.evaluation and the `lnca evaluate` command."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_lnca import evaluation
from keras_lnca.cli import main
from keras_lnca.degradations import gaussian_noise
from keras_lnca.degradations import kernel_blur
from keras_lnca.degradations import load_kernels
from keras_lnca.errors import UserError

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LNCA_DATA", REPO / ".." / "shared" / "data")).resolve()


def _smooth(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    image = np.sin(rng.uniform(3, 8) * x + rng.uniform(0, 6)) * np.cos(rng.uniform(3, 8) * y)
    return np.round((image * 0.4 + 0.5) * 255).astype(np.uint8)


@pytest.fixture
def tiny_set(tmp_path):
    """Two tiny gray images (different sizes), listed out of order on purpose."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    Image.fromarray(_smooth(48, 40, 1)).save(folder / "b.png")
    Image.fromarray(_smooth(40, 48, 0)).save(folder / "a.png")
    return folder


@pytest.fixture
def kernels_env(monkeypatch):
    if not (DATA / "kernels" / "Levin09.npz").is_file():
        pytest.skip(f"shared data not found at {DATA} (set LNCA_DATA)")
    monkeypatch.setenv("LNCA_DATA", str(DATA))


def _run(capsys, *args):
    code = main(["evaluate", *map(str, args), "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


def test_reference_metrics():
    clean = np.zeros((16, 16, 1))
    assert evaluation.psnr(clean, np.full((16, 16, 1), 0.1)) == pytest.approx(20.0)
    assert evaluation.psnr(clean, np.full((16, 16, 1), -0.1)) == np.inf  # clipped to 0
    assert evaluation.psnr(clean, np.full((16, 16, 1), -0.1), clip=False) == pytest.approx(20.0)
    image = np.random.default_rng(0).random((32, 32, 3))
    assert evaluation.ssim(image, image) == pytest.approx(1.0)
    noisy = image + np.random.default_rng(1).normal(0, 0.1, image.shape)
    from skimage.metrics import structural_similarity

    expected = structural_similarity(
        image, np.clip(noisy, 0, 1), gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1.0, channel_axis=-1)
    assert evaluation.ssim(image, noisy) == pytest.approx(expected)
    assert 0 < evaluation.ssim(image, noisy) < 0.99
    assert evaluation.ssim(image, noisy, clip=False) != pytest.approx(expected)
    # Gray, and PSNR: the package's numpy metrics are skimage's definitions.
    from skimage.metrics import peak_signal_noise_ratio

    gray, noisy_gray = image[..., 0], np.clip(noisy[..., 0], 0, 1)
    expected = structural_similarity(gray, noisy_gray, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=1.0)
    assert evaluation.ssim(gray, noisy_gray) == pytest.approx(expected, abs=1e-12)
    assert evaluation.ssim(gray[..., None], noisy_gray[..., None]) == pytest.approx(expected, abs=1e-12)
    assert evaluation.psnr(gray, noisy_gray) == pytest.approx(
        peak_signal_noise_ratio(gray, noisy_gray, data_range=1.0), abs=1e-9)


def test_evaluate_cli_writes_json(tiny_set, tmp_path, capsys):
    out = tmp_path / "result.json"
    code, stdout, err = _run(capsys, "--dataset", tiny_set, "--degradation", "gaussian:25",
                             "--baseline", "identity", "--baseline", "bm3d", "--json", out)
    assert code == 0, err
    assert "identity" in stdout and "bm3d" in stdout and "PSNR" in stdout
    result = json.loads(out.read_text())
    assert {"dataset", "degradation", "seed", "results"} <= set(result)
    assert result["degradation"] == "gaussian:25" and result["seed"] == 0
    assert [r["method"] for r in result["results"]] == ["identity", "bm3d"]
    for r in result["results"]:
        assert {"method", "psnr", "ssim", "seconds_per_image", "per_image"} <= set(r)
        assert [p["file"] for p in r["per_image"]] == ["a.png", "b.png"]
        assert all({"file", "psnr", "ssim"} <= set(p) for p in r["per_image"])
        assert r["psnr"] == pytest.approx(np.mean([p["psnr"] for p in r["per_image"]]))
    identity, bm3d = result["results"]
    assert abs(identity["psnr"] - 20.17) < 0.5
    assert bm3d["psnr"] > identity["psnr"] + 5 and bm3d["ssim"] > identity["ssim"]
    # The contract: image i is noised by a fresh default_rng(seed), unclipped.
    from keras_lnca.data import load_image

    clean = load_image(tiny_set / "b.png")
    expected = evaluation.psnr(clean, gaussian_noise(clean, 25, seed=0), clip=False)
    assert identity["per_image"][1]["psnr"] == pytest.approx(expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json", "tiny"]  # no temp files


def test_evaluate_is_reproducible_and_seeded(tiny_set):
    run = lambda seed: evaluation.evaluate(tiny_set, "gaussian:0-50", baselines=["identity"],
                                           seed=seed, progress=False)["results"][0]["psnr"]
    assert run(0) == run(0)
    assert run(0) != run(1)


def test_wiener_on_blur_with_noise(tiny_set, kernels_env):
    result = evaluation.evaluate(tiny_set, "blur:levin09,gaussian:2.55",
                                 baselines=["identity", "wiener"], progress=False)
    identity, wiener = result["results"]
    assert wiener["psnr"] > identity["psnr"] + 2
    # Image i used Levin kernel i (mod 8): blurring a.png with kernel 0 reproduces
    # the identity score's input up to the noise.
    from keras_lnca.data import load_image

    clean = load_image(tiny_set / "a.png")
    blurred = kernel_blur(clean, load_kernels("levin09")[0])
    assert identity["per_image"][0]["psnr"] == pytest.approx(
        evaluation.psnr(clean, blurred, clip=False), abs=0.3)


def test_model_methods_and_limit(tiny_set):
    from scipy import ndimage

    smooth = lambda image: ndimage.uniform_filter(image, size=(3, 3, 1))
    result = evaluation.evaluate(tiny_set, "gaussian:25", {"model:box": smooth},
                                 ["identity"], limit=1, progress=False)
    assert result["num_images"] == 1
    box, identity = result["results"]
    assert box["method"] == "model:box" and len(box["per_image"]) == 1
    assert box["psnr"] > identity["psnr"]
    with pytest.raises(UserError, match="returned shape"):
        evaluation.evaluate(tiny_set, "gaussian:25", {"model:bad": lambda x: x[:4]},
                            progress=False)


def test_paired_folder_evaluation(tmp_path, capsys):
    folder = tmp_path / "pairs"
    (folder / "GT").mkdir(parents=True)
    (folder / "DAMAGED").mkdir()
    gt = _smooth(32, 32, 3)
    damaged = np.clip(gt.astype(int) + 12, 0, 255).astype(np.uint8)
    Image.fromarray(gt).save(folder / "GT" / "x.png")
    Image.fromarray(damaged).save(folder / "DAMAGED" / "x.png")
    code, stdout, err = _run(capsys, "--dataset", folder, "--baseline", "identity",
                             "--json", tmp_path / "p.json")
    assert code == 0, err
    result = json.loads((tmp_path / "p.json").read_text())
    expected = evaluation.psnr(gt / 255.0, damaged / 255.0)
    assert result["paired"] is True and result["degradation"] is None
    assert result["results"][0]["psnr"] == pytest.approx(expected)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--degradation", "gaussian:25"], "nothing to evaluate"),
        (["--degradation", "gaussian", "--baseline", "identity"], "invalid degradation"),
        (["--degradation", "impulse:0.5", "--baseline", "bm3d"], "bm3d"),
        (["--degradation", "gaussian:25", "--baseline", "identity", "wiener"], "wiener"),
        (["--baseline", "identity"], "give a degradation"),
        (["--degradation", "gaussian:25", "--model", "missing.keras"], "no such model file"),
    ],
)
def test_evaluate_cli_bad_input(tiny_set, tmp_path, capsys, args, message):
    out = tmp_path / "keep.json"
    out.write_text("previous")
    code, stdout, err = _run(capsys, "--dataset", tiny_set, *args, "--json", out, "--overwrite")
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert out.read_text() == "previous"  # never overwritten on bad input


def test_evaluate_cli_bad_paths(tiny_set, tmp_path, capsys):
    code, _, err = _run(capsys, "--dataset", tmp_path / "nope", "--degradation", "gaussian:25",
                        "--baseline", "identity")
    assert code == 2 and "no such dataset" in err
    code, _, err = _run(capsys, "--dataset", tiny_set, "--degradation", "gaussian:25",
                        "--baseline", "identity", "--json", tmp_path / "no" / "dir" / "r.json")
    assert code == 2 and "no such folder" in err
    assert not (tmp_path / "no").exists()


def test_evaluate_json_is_never_overwritten_without_overwrite(tiny_set, tmp_path, capsys):
    out = tmp_path / "keep.json"
    out.write_text("previous")
    args = ["--dataset", tiny_set, "--degradation", "gaussian:25", "--baseline", "identity"]
    code, _, err = _run(capsys, *args, "--json", out)
    assert code == 2 and "exists (pass --overwrite" in err and out.read_text() == "previous"
    code, _, err = _run(capsys, *args, "--json", out, "--overwrite")
    assert code == 0, err
    assert json.loads(out.read_text())["results"][0]["method"] == "identity"


def test_the_median_baseline_removes_impulses(tmp_path):
    """`--baseline median` (3 x 3 per channel): far above the noisy images on impulse noise."""
    from keras_lnca import evaluation
    from keras_lnca.commands import evaluate as evaluate_command

    assert evaluate_command.BASELINES == evaluation.BASELINES  # the CLI's copy (it loads no Keras)
    yy, xx = np.mgrid[0:48, 0:48] / 48
    folder = tmp_path / "smooth"
    folder.mkdir()
    for i in range(2):
        image = 0.5 + 0.4 * np.sin(4 * xx + 3 * yy + i)[..., None] * np.ones((1, 1, 3))
        Image.fromarray((image * 255).astype("uint8")).save(folder / f"{i}.png")
    result = evaluation.evaluate(folder, "impulse:0.5", methods={}, baselines=["identity", "median"],
                                 channels=3)
    scores = {r["method"]: r["psnr"] for r in result["results"]}
    assert scores["median"] > scores["identity"] + 5, scores
