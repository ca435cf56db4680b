"""Tests of keras_lnca.data: image files, tf.data and PyDataset pipelines, tfds builder."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from keras_lnca import data as kd
from keras_lnca.degradations import Curriculum
from keras_lnca.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def _smooth(h, w, c, seed):
    """A smooth random uint8 image (so crops and blurs are meaningful)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    channels = [np.sin(rng.uniform(2, 9) * x + rng.uniform(0, 6)) * np.cos(rng.uniform(2, 9) * y)
                for _ in range(c)]
    return np.round((np.stack(channels, -1) + 1) * 127.5).astype(np.uint8)


@pytest.fixture
def gray_folder(tmp_path):
    folder = tmp_path / "gray"
    folder.mkdir()
    for i, (h, w) in enumerate([(40, 48), (36, 36), (44, 40), (48, 40), (40, 40), (38, 45)]):
        Image.fromarray(_smooth(h, w, 1, i)[..., 0]).save(folder / f"img{i:02d}.png")
    return folder


@pytest.fixture
def paired_folder(tmp_path):
    """GT/ and DAMAGED/ where DAMAGED = 255 - GT, so alignment is checkable."""
    folder = tmp_path / "paired"
    (folder / "GT").mkdir(parents=True)
    (folder / "DAMAGED").mkdir()
    for i in range(4):
        gt = _smooth(34 + i, 40, 3, 10 + i)
        Image.fromarray(gt).save(folder / "GT" / f"{i:04d}.png")
        Image.fromarray(255 - gt).save(folder / "DAMAGED" / f"{i:04d}.png")
    return folder


# ---------------------------------------------------------------- files

def test_load_image_formats(tmp_path):
    gray = _smooth(10, 12, 1, 0)[..., 0]
    Image.fromarray(gray).save(tmp_path / "g8.png")
    image = kd.load_image(tmp_path / "g8.png")
    assert image.shape == (10, 12, 1) and image.dtype == np.float32
    np.testing.assert_allclose(image[..., 0], gray / 255, atol=1e-7)

    deep = (np.arange(120).reshape(10, 12) * 541).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "g16.png")
    np.testing.assert_allclose(kd.load_image(tmp_path / "g16.png")[..., 0], deep / 65535, atol=1e-7)

    rgb = _smooth(10, 12, 3, 1)
    rgba = np.concatenate([rgb, np.full((10, 12, 1), 7, np.uint8)], -1)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_allclose(kd.load_image(tmp_path / "rgba.png"), rgb / 255, atol=1e-7)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(tmp_path / "p.png")
    assert kd.load_image(tmp_path / "p.png").shape == (10, 12, 3)
    Image.fromarray(gray).convert("LA").save(tmp_path / "la.png")
    assert kd.load_image(tmp_path / "la.png").shape == (10, 12, 1)
    Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=95, subsampling=0)
    assert np.abs(kd.load_image(tmp_path / "c.jpg") - rgb / 255).mean() < 0.02

    colour = kd.load_image(tmp_path / "g8.png", channels=3)
    assert colour.shape == (10, 12, 3) and np.array_equal(colour[..., 0], colour[..., 2])
    luma = kd.load_image(tmp_path / "rgba.png", channels=1)
    expected = (rgb / 255) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(luma[..., 0], expected, atol=1e-6)


def test_load_16bit_colour_png(tmp_path):
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    for name, channels in (("rgb16.png", 3), ("rgba16.png", 4)):
        pixels = rng.integers(0, 65536, (9, 11, channels), dtype=np.uint16)
        pixels[3:6] = pixels[2]  # rows that libpng filters with "up"/"paeth"
        (tmp_path / name).write_bytes(tf.io.encode_png(pixels).numpy())
        np.testing.assert_allclose(kd.load_image(tmp_path / name), pixels[..., :3] / 65535, atol=1e-7)


def test_load_image_errors(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    (tmp_path / "text.jpg").write_text("not an image")
    for name, pattern in (("missing.png", "no such image"), ("empty.png", "empty image"),
                          ("corrupt.png", "cannot read image"), ("text.jpg", "cannot read image")):
        with pytest.raises(UserError, match=pattern) as error:
            kd.load_image(tmp_path / name)
        assert "\n" not in str(error.value)
    with pytest.raises(UserError):
        kd.load_image(tmp_path / "missing.png", channels=2)


def test_list_images_sorted(tmp_path):
    for name in ("b.png", "a.jpg", "C.bmp", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in kd.list_images(tmp_path)] == ["C.bmp", "a.jpg", "b.png"]
    with pytest.raises(UserError, match="no such folder"):
        kd.list_images(tmp_path / "nope")


def test_save_image_roundtrip_and_atomic(tmp_path):
    image = np.random.default_rng(0).random((7, 9, 3))
    kd.save_image(tmp_path / "out.png", image)
    np.testing.assert_allclose(kd.load_image(tmp_path / "out.png"), image, atol=0.5 / 255 + 1e-6)
    kd.save_image(tmp_path / "gray.png", np.full((5, 5, 1), 0.5))
    assert Image.open(tmp_path / "gray.png").mode == "L"
    before = (tmp_path / "out.png").read_bytes()
    with pytest.raises(UserError, match="cannot save an image of shape"):
        kd.save_image(tmp_path / "out.png", np.zeros((4, 4, 5)))
    with pytest.raises(UserError, match="hold no alpha channel"):  # gray + alpha, as a JPEG
        kd.save_image(tmp_path / "out.jpg", np.zeros((4, 4, 2)))
    with pytest.raises(UserError, match="unknown image format"):
        kd.save_image(tmp_path / "out.xyz", image)

    from keras_lnca.data.io import atomic_write

    def failing(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "out.png", failing)
    assert (tmp_path / "out.png").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gray.png", "out.png"]


def test_evaluation_images(gray_folder):
    items = list(kd.evaluation_images(gray_folder))
    assert [name for name, _ in items] == sorted(p.name for p in gray_folder.iterdir())
    assert items[0][1].shape == (40, 48, 1) and items[5][1].shape == (38, 45, 1)
    assert items[0][1].dtype == np.float32
    assert next(iter(kd.evaluation_images(gray_folder, channels=3)))[1].shape == (40, 48, 3)
    with pytest.raises(UserError, match="no images"):
        kd.evaluation_images(gray_folder / "..")  # only folders inside


# ---------------------------------------------------------------- pipelines

def _check_batch(degraded, clean, batch=4, size=16, channels=3):
    degraded, clean = np.asarray(degraded), np.asarray(clean)
    assert degraded.shape == clean.shape == (batch, size, size, channels)
    assert degraded.dtype == clean.dtype == np.float32
    assert clean.min() >= 0 and clean.max() <= 1 and clean.std() > 0.05
    assert not np.allclose(degraded, clean)


def test_folder_dataset(gray_folder):
    ds = kd.folder_dataset(gray_folder, "gaussian:25", crop_size=16, batch_size=4, seed=0)
    assert int(ds.cardinality()) == 1
    batches = [(d.numpy(), c.numpy()) for d, c in ds]
    assert len(batches) == 1
    _check_batch(*batches[0])
    degraded, clean = batches[0]
    assert abs((degraded - clean).std() * 255 / 25 - 1) < 0.1
    assert np.array_equal(clean[..., 0], clean[..., 1])  # gray converted to 3 channels
    again = next(iter(kd.folder_dataset(gray_folder, "gaussian:25", crop_size=16, batch_size=4,
                                        seed=0)))
    assert np.array_equal(again[0].numpy(), degraded)  # same seed, same batches
    second_epoch = next(iter(ds))[1].numpy()
    assert not np.array_equal(second_epoch, clean)  # new crops every epoch
    fixed = kd.folder_dataset(gray_folder, "impulse:0.5", crop_size=16, batch_size=3, channels=1,
                              shuffle=False, crops_per_image=2, seed=1)
    first, second = [[d.numpy() for d, _ in fixed] for _ in range(2)]
    assert len(first) == 4 and all(np.array_equal(a, b) for a, b in zip(first, second))
    endless = kd.folder_dataset(gray_folder, "motion:5", crop_size=16, batch_size=4, repeat=True,
                                clip=True, seed=0)
    degraded, clean = next(iter(endless.take(3).skip(2)))
    _check_batch(degraded, clean)
    assert float(np.min(degraded)) >= 0.0 and float(np.max(degraded)) <= 1.0


def test_folder_dataset_with_augmentation(gray_folder):
    augment = keras.layers.RandomContrast(0.5, value_range=(0, 1), seed=1)
    ds = kd.folder_dataset(gray_folder, "gaussian:5", crop_size=16, batch_size=4, seed=0,
                           augment=augment)
    plain = kd.folder_dataset(gray_folder, "gaussian:5", crop_size=16, batch_size=4, seed=0)
    (degraded, clean), (_, plain_clean) = next(iter(ds)), next(iter(plain))
    _check_batch(degraded, clean)
    assert not np.allclose(clean.numpy(), plain_clean.numpy())


def test_folder_py_dataset(gray_folder):
    ds = kd.FolderPyDataset(gray_folder, "gaussian:25", crop_size=16, batch_size=4, seed=0)
    assert len(ds) == 1
    degraded, clean = ds[0]
    _check_batch(degraded, clean)
    assert abs((degraded - clean).std() * 255 / 25 - 1) < 0.1
    assert np.array_equal(ds[0][0], degraded)
    assert np.array_equal(kd.FolderPyDataset(gray_folder, "gaussian:25", crop_size=16,
                                             batch_size=4, seed=0)[0][0], degraded)
    ds.on_epoch_end()
    assert not np.array_equal(ds[0][1], clean)
    with pytest.raises(IndexError):
        ds[1]
    numpy_backend = kd.folder_dataset(gray_folder, "impulse:0.5", crop_size=16, batch_size=2,
                                      channels=1, backend="numpy", seed=0)
    assert isinstance(numpy_backend, kd.FolderPyDataset) and len(numpy_backend) == 3
    _check_batch(*numpy_backend[2], batch=2, channels=1)
    augmented = kd.FolderPyDataset(gray_folder, "gaussian:5", crop_size=16, batch_size=4, seed=0,
                                   augment=keras.layers.RandomContrast(0.5, value_range=(0, 1)))
    _check_batch(*augmented[0])


def test_pipeline_errors(gray_folder, tmp_path):
    with pytest.raises(UserError, match="smaller than crop_size"):
        kd.folder_dataset(gray_folder, "gaussian:25", crop_size=64)
    with pytest.raises(UserError, match="no images"):
        kd.FolderPyDataset(tmp_path / "..", "gaussian:25")
    with pytest.raises(UserError, match="no full batch"):
        kd.FolderPyDataset(gray_folder, "gaussian:25", crop_size=16, batch_size=64, crops_per_image=1)
    with pytest.raises(UserError, match="invalid degradation"):
        kd.folder_dataset(gray_folder, "gaussian", crop_size=16)
    with pytest.raises(UserError, match="backend"):
        kd.folder_dataset(gray_folder, "gaussian:25", backend="jax")
    with pytest.raises(UserError, match="batch_size"):
        kd.FolderPyDataset(gray_folder, "gaussian:25", batch_size=0)


def _check_aligned(damaged, gt):
    damaged, gt = np.asarray(damaged), np.asarray(gt)
    assert damaged.shape == gt.shape and gt.dtype == np.float32
    np.testing.assert_allclose(damaged, 1.0 - gt, atol=1e-6)


def _dihedral(image):
    """The 8 flips/rotations of an H x W x C array."""
    return [np.rot90(f, k) for f in (image, image[:, ::-1]) for k in range(4)]


def test_paired_pipelines_stay_aligned(paired_folder, tmp_path):
    ds = kd.paired_folder_dataset(paired_folder, crop_size=24, batch_size=2, crops_per_image=4,
                                  seed=0)
    batches = list(ds)
    assert len(batches) == 8
    for damaged, gt in batches:
        _check_aligned(damaged, gt)
        assert gt.shape == (2, 24, 24, 3)
    py = kd.PairedFolderPyDataset(paired_folder, crop_size=24, batch_size=2, crops_per_image=4,
                                  seed=0)
    assert len(py) == 8
    for i in range(len(py)):
        _check_aligned(*py[i])

    # Crops as large as the image: each sample is one of the 8 symmetries of
    # the original, the same one for GT and DAMAGED, and all of them occur.
    square = tmp_path / "square"
    (square / "GT").mkdir(parents=True)
    (square / "DAMAGED").mkdir()
    gt = _smooth(16, 16, 3, 0)
    Image.fromarray(gt).save(square / "GT" / "s.png")
    Image.fromarray(255 - gt).save(square / "DAMAGED" / "s.png")
    views = [v / 255.0 for v in _dihedral(gt)]
    for pipeline in (
        kd.paired_folder_dataset(square, crop_size=16, batch_size=1, crops_per_image=64, seed=1),
        kd.PairedFolderPyDataset(square, crop_size=16, batch_size=1, crops_per_image=64, seed=1),
    ):
        seen = set()
        for damaged, crop in pipeline:
            _check_aligned(damaged, crop)
            matches = [k for k, v in enumerate(views) if np.allclose(np.asarray(crop)[0], v)]
            assert len(matches) == 1
            seen.add(matches[0])
        assert seen == set(range(8))

    gray = kd.paired_folder_dataset(paired_folder, crop_size=24, batch_size=2, channels=1,
                                    backend="numpy", seed=0)
    assert gray[0][0].shape == (2, 24, 24, 1)
    pairs = kd.find_pairs(paired_folder)
    assert [p[0] for p in pairs] == ["0000", "0001", "0002", "0003"]
    full = list(kd.paired_evaluation_images(paired_folder))
    assert full[1][0] == "0001.png" and full[1][1].shape == (35, 40, 3)
    _check_aligned(full[1][2], full[1][1])


def test_paired_folder_errors(paired_folder):
    (paired_folder / "GT" / "extra.png").write_bytes((paired_folder / "GT" / "0000.png").read_bytes())
    with pytest.raises(UserError, match="no partner"):
        kd.paired_folder_dataset(paired_folder, crop_size=16)
    os.remove(paired_folder / "GT" / "extra.png")
    Image.fromarray(_smooth(30, 30, 3, 0)).save(paired_folder / "DAMAGED" / "0000.png")
    with pytest.raises(UserError, match="differ in shape"):
        kd.PairedFolderPyDataset(paired_folder, crop_size=16)
    with pytest.raises(UserError, match="GT/ and DAMAGED/"):
        kd.find_pairs(paired_folder / "GT")


def test_py_dataset_needs_no_tensorflow(gray_folder):
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "import numpy as np\n"
        "from keras_lnca.data import FolderPyDataset\n"
        "from keras_lnca.degradations import Curriculum\n"
        f"ds = FolderPyDataset({str(gray_folder)!r}, Curriculum('motion', epochs=3),"
        " crop_size=16, batch_size=2, seed=0)\n"
        "x, y = ds[0]\n"
        "assert x.shape == (2, 16, 16, 3) and not np.allclose(x, y)\n"
        "print('ok')\n"
    )
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=REPO, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


# ---------------------------------------------------------------- fit on every backend

def _conv_model(channels, identity=False):
    model = keras.Sequential([
        keras.Input((None, None, channels)),
        keras.layers.Conv2D(channels, 1 if identity else 3, padding="same", use_bias=not identity,
                            kernel_initializer="ones" if identity else "glorot_uniform"),
    ])
    return model


@pytest.mark.parametrize("pipeline", ["tf.data", "PyDataset"])
def test_fit_consumes_the_pipeline(gray_folder, pipeline):
    backend = "tf" if pipeline == "tf.data" else "numpy"
    ds = kd.folder_dataset(gray_folder, "gaussian:25", crop_size=16, batch_size=2, channels=1,
                           seed=0, backend=backend)
    model = _conv_model(1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    before = keras.ops.convert_to_numpy(model.layers[0].kernel).copy()
    history = model.fit(ds, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])
    assert not np.allclose(keras.ops.convert_to_numpy(model.layers[0].kernel), before)


@pytest.mark.parametrize("pipeline", ["tf.data", "PyDataset"])
def test_curriculum_callback_steers_fit(gray_folder, pipeline):
    from keras_lnca.callbacks import CurriculumCallback

    # An identity model that cannot learn: its loss is mse(degraded, clean),
    # 0 while p = 0 (epoch 0) and clearly positive once p = 1 (epoch 1).
    curriculum = Curriculum("impulse", 0.0, 1.0, epochs=2)
    backend = "tf" if pipeline == "tf.data" else "numpy"
    ds = kd.folder_dataset(gray_folder, curriculum, crop_size=16, batch_size=3, channels=1,
                           seed=0, backend=backend)
    model = _conv_model(1, identity=True)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    history = model.fit(ds, epochs=2, verbose=0, shuffle=False,
                        callbacks=[CurriculumCallback(curriculum)])
    losses = history.history["loss"]
    assert losses[0] == pytest.approx(0.0, abs=1e-9)
    assert losses[1] > 1e-3
    assert history.history["curriculum_impulse"] == [0.0, 1.0]


# ---------------------------------------------------------------- tensorflow-datasets

def test_tfds_builder_offline(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    from keras_lnca.data import tfds_builder

    manual = tmp_path / "manual" / "gray" / "set12"
    manual.mkdir(parents=True)
    Image.fromarray(_smooth(9, 7, 1, 0)[..., 0]).save(manual / "02.png")
    Image.fromarray(_smooth(5, 6, 3, 1)).save(manual / "01.png")  # colour: converted to gray
    builder = tfds_builder.LncaBenchmarks(config="set12", data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(tmp_path / "manual"))
    )
    examples = list(tfds.as_numpy(builder.as_dataset(split="test")))
    assert [e["file_name"] for e in examples] == [b"01.png", b"02.png"]
    assert examples[0]["image"].shape == (5, 6, 1) and examples[1]["image"].shape == (9, 7, 1)
    assert examples[1]["image"].dtype == np.uint8
    np.testing.assert_array_equal(examples[1]["image"][..., 0], _smooth(9, 7, 1, 0)[..., 0])
    assert "github.com/cszn/DnCNN" in builder.info.homepage
    assert "manual_dir" in tfds_builder.LncaBenchmarks.MANUAL_DOWNLOAD_INSTRUCTIONS


def test_shared_benchmark_folders_load():
    data = Path(os.environ.get("LNCA_DATA", REPO / ".." / "shared" / "data")).resolve()
    if not (data / "gray" / "set12").is_dir():
        pytest.skip(f"shared data not found at {data} (set LNCA_DATA)")
    names = [p.name for p in kd.list_images(data / "gray" / "set12")]
    assert names == [f"{i:02d}.png" for i in range(1, 13)]
    image = kd.load_image(data / "gray" / "set12" / "01.png")
    assert image.shape == (256, 256, 1) and 0 <= image.min() < image.max() <= 1
    colour = next(iter(kd.evaluation_images(data / "color" / "cbsd68")))[1]
    assert colour.shape in ((321, 481, 3), (481, 321, 3))


def test_atomic_writes_keep_the_mode_of_the_file_they_replace(tmp_path):
    import os
    import stat

    from keras_lnca.data.io import atomic_path
    from keras_lnca.data.io import atomic_write

    for i, writer in enumerate(("write", "path")):
        target = tmp_path / f"private_{i}.bin"
        target.write_bytes(b"old")
        os.chmod(target, 0o600)
        if writer == "write":
            atomic_write(target, lambda f: f.write(b"new"))
        else:
            with atomic_path(target) as temporary:
                temporary.write_bytes(b"new")
        assert target.read_bytes() == b"new"
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_a_full_disk_is_a_one_line_error_naming_the_file(tmp_path):
    import errno
    import os

    from keras_lnca.data.io import atomic_path
    from keras_lnca.data.io import atomic_write
    from keras_lnca.errors import UserError

    def full(f):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    target = tmp_path / "out.png"
    with pytest.raises(UserError, match=r"cannot write .*out\.png: No space left on device"):
        atomic_write(target, full)
    with pytest.raises(UserError, match=r"cannot write .*out\.png: No space left on device"):
        with atomic_path(target):
            full(None)
    assert list(tmp_path.iterdir()) == []


def test_a_small_folder_fills_a_batch_or_says_what_to_change(tmp_path):
    from PIL import Image

    from keras_lnca.data import FolderPyDataset
    from keras_lnca.errors import UserError

    for i in range(5):
        Image.fromarray(np.full((40, 40), 20 * i, "uint8")).save(tmp_path / f"{i}.png")
    data = FolderPyDataset(tmp_path, "gaussian:25", crop_size=32, batch_size=8, channels=1, seed=0)
    assert data.crops_per_image == 2 and len(data) == 1 and data[0][0].shape == (8, 32, 32, 1)
    with pytest.raises(UserError, match=r"pass crops_per_image=2 \(or None\), or batch_size=5"):
        FolderPyDataset(tmp_path, "gaussian:25", crop_size=32, batch_size=8, channels=1,
                        crops_per_image=1)
