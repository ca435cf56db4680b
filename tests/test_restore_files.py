"""What `lnca restore` and `save_image` keep of a file, and what they never overwrite.

One rule per cause: metadata that a format can hold is carried over (ICC
profile, EXIF with the orientation applied), what cannot be kept is said on
stderr (frames after the first, float depth outside TIFF), float gray TIFFs
stay float, outputs are created exclusively unless `--overwrite`, names the
locale cannot encode are printed escaped, and a large image is tiled to the
memory budget with the same result as in one piece.
"""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image
from PIL import ImageCms
from conftest import tiny_lnca

from keras_lnca import tiling
from keras_lnca.data import save_image
from keras_lnca.data.io import ORIENTATION
from keras_lnca.errors import UserError


def _lnca(*argv, cwd):
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-c", "import sys; from keras_lnca.cli import main; sys.exit(main())",
               *argv]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, timeout=300)


_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # dated: made once


def _srgb_profile():
    return _PROFILE


@pytest.fixture(scope="module")
def restored(tmp_path_factory):
    """One CLI run over a folder holding each kind of file; returns (folder, stderr)."""
    root = tmp_path_factory.mktemp("files")
    inputs = root / "in"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    colour = Image.fromarray((rng.random((40, 48, 3)) * 255).astype("uint8"))
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # rotated: read_raw turns the pixels upright
    exif[0x010F] = "Camera maker"
    colour.save(inputs / "photo.jpg", quality=95, icc_profile=_srgb_profile(), exif=exif.tobytes())
    gray = Image.fromarray((rng.random((40, 48)) * 255).astype("uint8"))
    gray.save(inputs / "profiled.png", icc_profile=_srgb_profile())
    pages = [Image.fromarray((rng.random((32, 32)) * 255).astype("uint8")) for _ in range(3)]
    pages[0].save(inputs / "pages.tif", save_all=True, append_images=pages[1:])
    Image.fromarray(rng.random((32, 40)).astype("float32"), "F").save(inputs / "float.tif")
    result = _lnca("restore", "in", "-o", "out", "--noise-level", "10", cwd=root)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return root / "out", result.stderr.decode()


@pytest.mark.slow  # runs the CLI in a subprocess
def test_icc_profile_and_exif_are_kept(restored):
    folder, _ = restored
    with Image.open(folder / "photo.png") as image:
        assert image.info.get("icc_profile") == _srgb_profile()
        exif = image.getexif()
        assert exif[0x010F] == "Camera maker"
        assert exif[ORIENTATION] == 1  # the pixels are upright now
        assert image.size == (40, 48)  # width, height after the rotation
    with Image.open(folder / "profiled.png") as image:
        assert image.info.get("icc_profile") == _srgb_profile()


@pytest.mark.slow  # runs the CLI in a subprocess
def test_frames_after_the_first_are_reported(restored):
    folder, stderr = restored
    assert "pages.tif holds 3 frames or pages; only the first is restored" in stderr
    assert (folder / "pages.tif").is_file()


@pytest.mark.slow  # runs the CLI in a subprocess
def test_float_gray_tiff_stays_float(restored):
    folder, stderr = restored
    with Image.open(folder / "float.tif") as image:
        assert image.mode == "F"
        values = np.asarray(image)
    assert values.dtype == np.float32 and values.shape == (32, 40)
    assert "float.tif holds 32-bit floats" not in stderr


@pytest.mark.slow  # runs the CLI in a subprocess
def test_float_to_8_bit_is_said(tmp_path):
    Image.fromarray(np.full((24, 24), 0.5, np.float32), "F").save(tmp_path / "f.tif")
    result = _lnca("restore", "f.tif", "-o", "f.png", "--noise-level", "5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert "f.tif holds 32-bit floats; f.png stores 8 bits" in result.stderr.decode()


def test_metadata_not_held_by_a_format_is_reported(tmp_path):
    metadata = {"icc_profile": _srgb_profile(), "exif": None, "frames": 1}
    assert save_image(tmp_path / "a.bmp", np.full((8, 8, 3), 0.5), metadata=metadata) == ["icc_profile"]
    assert save_image(tmp_path / "a.png", np.full((8, 8, 3), 0.5), metadata=metadata) == []
    deep = np.full((8, 8, 3), 40_000, np.uint16)  # OpenCV's 16-bit writer holds no profile
    assert save_image(tmp_path / "b.png", deep, metadata=metadata) == ["icc_profile"]


def test_exclusive_creation_never_replaces(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"written by another run")
    with pytest.raises(UserError, match="exists .*--overwrite"):
        save_image(target, np.zeros((4, 4)), overwrite=False)
    assert target.read_bytes() == b"written by another run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temporary left
    save_image(tmp_path / "new.png", np.zeros((4, 4)), overwrite=False)
    assert Image.open(tmp_path / "new.png").size == (4, 4)


@pytest.mark.slow  # runs the CLI in a subprocess
def test_a_name_the_locale_cannot_encode_is_printed(tmp_path):
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "in.png")
    name = b"caf\xe9.png"  # Latin-1 bytes: not valid UTF-8
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2", LC_ALL="C.UTF-8")
    command = [sys.executable.encode(), b"-c",
               b"import sys; from keras_lnca.cli import main; sys.exit(main())",
               b"restore", b"in.png", b"-o", name, b"--noise-level", b"5"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert os.path.isfile(os.path.join(os.fsencode(tmp_path), name))
    assert b"caf\\udce9.png" in result.stdout


@pytest.fixture(scope="module")
def gray_model():
    return tiny_lnca(channels=1)


def test_large_images_are_tiled_to_the_memory_budget(gray_model, capsys):
    model = gray_model
    image = np.random.default_rng(0).random((128, 112)).astype("float32")
    whole = model.restore(image)
    per_pixel = model.inference_bytes_per_pixel()
    assert per_pixel > 0
    side = 2 * model.receptive_radius() + 64  # windows of 64-pixel tiles and their context
    windows = []
    predict = model.predict_with_steps

    def counting(images, *args, **kwargs):
        windows.append(images.shape[1:3])
        return predict(images, *args, **kwargs)

    model.predict_with_steps = counting  # an instance attribute: this test's model only
    try:
        tiled = model.restore(image, memory_budget_mb=per_pixel * side * side / 2**20, progress=True)
    finally:
        del model.predict_with_steps
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    # It did tile: 2 x 2 windows, each within the budget (starts round down to whole cells).
    assert len(windows) == 4, windows
    assert all(h * w <= (side + model.grid_factor) ** 2 for h, w in windows), (side, windows)
    assert "tile" in capsys.readouterr().out  # the progress bar over the tiles
    with pytest.raises(ValueError, match="memory_budget_mb"):
        model.restore(image, memory_budget_mb=0)


def test_a_budget_below_the_smallest_window_warns_and_small_images_are_not_tiled(gray_model):
    per_pixel = gray_model.inference_bytes_per_pixel()
    margin = gray_model.receptive_radius()
    with pytest.warns(UserWarning, match="smallest useful one"):
        tile = tiling.choose_tile(gray_model, (1, 160, 120, 1), None, None, budget=per_pixel * 16 * 16)
    assert tile and tile % gray_model.grid_factor == 0 and tile + 2 * margin < 160
    # An image no larger than one window is restored whole, whatever the budget.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tiling.choose_tile(gray_model, (1, 2 * margin, 2 * margin, 1), None, None, budget=1) is None


def test_a_tile_below_the_context_is_raised_with_a_warning(gray_model):
    image = np.random.default_rng(1).random((40, 40)).astype("float32")
    with pytest.warns(UserWarning, match="context on every side"):
        out = gray_model.restore(image, tile=8)
    np.testing.assert_allclose(out, gray_model.restore(image), atol=1e-5)


@pytest.mark.slow  # runs the CLI in a subprocess
def test_cli_warnings_are_one_line(tmp_path):
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "in.png")
    result = _lnca("restore", "in.png", "-o", "out.png", "--tile", "8", "--noise-level", "5", cwd=tmp_path)
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "lnca restore: warning: Tiles of 8 pixels would each read" in err
    assert "UserWarning" not in err and err.count("\n") == 1, err


@pytest.mark.slow  # two CLI subprocesses
def test_two_restores_into_one_folder_at_once_never_share_a_file(tmp_path):
    """Two `lnca restore` runs on the same inputs into the same folder, at the same time:
    every output is created by exactly one of them (exclusive creation), is a whole image,
    and the other run reports that file as existing instead of replacing it. Both pass the
    check for existing outputs (before Keras is imported) before either writes, so the
    collisions happen at write time, where only exclusive creation can catch them."""
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    names = [f"{i:02d}.png" for i in range(24)]
    for name in names:
        Image.fromarray((rng.random((96, 96)) * 255).astype("uint8")).save(folder / name)
    out = tmp_path / "out"
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-c", "import sys; from keras_lnca.cli import main; sys.exit(main())",
               "restore", str(folder), "-o", str(out) + os.sep, "--keep-going", "--noise-level", "10"]
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = [(run.wait(timeout=300), *run.communicate()) for run in runs]
    written = [{line.split(":")[0] for line in text.splitlines() if " -> " in line and not line.startswith("restored ")}
               for _, text, _ in results]
    skipped = [{line.split()[3].rstrip(":") for line in err.splitlines() if line.startswith("lnca restore: skipped ")}
               for _, _, err in results]
    for (status, _, err), mine in zip(results, skipped):
        assert status == (2 if mine else 0), err[-2000:]
        assert all("exists" in line for line in err.splitlines() if " skipped " in line), err[-2000:]
    assert sorted(p.name for p in out.iterdir()) == names  # no temporary file left
    assert not (written[0] & written[1]), written[0] & written[1]  # nothing written twice
    assert written[0] | written[1] == set(names)
    assert written[0] == skipped[1] and written[1] == skipped[0]  # the other run said so
    for path in out.iterdir():
        with Image.open(path) as image:
            image.load()
            assert image.size == (96, 96)
