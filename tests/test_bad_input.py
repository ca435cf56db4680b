"""Bad and unusual input, through the API and `lnca restore`.

Files (missing, empty, corrupt), tiny and odd sizes, alpha, 16-bit, palette
and other PIL modes, gray/colour mismatches, NaN/Inf, wrong ranks and dtypes,
model files that are not ours, and `fit` on data with the wrong channel count.
The API raises `ValueError`s with one-line messages; the CLI prints one line
on stderr, exits non-zero and never writes a partial or overwritten file.
"""

import re
import struct
import warnings
import zipfile
import zlib

import keras
import numpy as np
import pytest
from conftest import tiny_lnca
from PIL import Image

import keras_lnca as kl
from keras_lnca import cli
from keras_lnca.errors import UserError

# Each of these is smaller than, or not a multiple of, the default model's
# 4 pixels per latent cell (downsampling=2).
ODD_SIZES = [(1, 1), (3, 3), (2, 9), (5, 7), (13, 6)]
# Most tests use one shape: on JAX every new shape is a new compilation.
H, W = 8, 12


def seeded_tiny_lnca(channels):
    keras.utils.set_random_seed(0)
    return tiny_lnca(channels)


@pytest.fixture(scope="module")
def gray():
    return seeded_tiny_lnca(1)


@pytest.fixture(scope="module")
def colour():
    return seeded_tiny_lnca(3)


def noise_image(shape, dtype="uint8", seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.random(shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)


def write_png16(path, pixels):
    """Writes a 16-bit gray + alpha, RGB or RGBA PNG (Pillow cannot)."""
    height, width, channels = pixels.shape
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)

    def chunk(kind, data):
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 16, {2: 4, 3: 2, 4: 6}[channels], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def bad_image_files(folder):
    """Image paths that cannot be read, by name."""
    good = folder / "good.png"
    Image.fromarray(noise_image((H, W, 3))).save(good)
    (folder / "empty.png").write_bytes(b"")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    (folder / "truncated.png").write_bytes(good.read_bytes()[:120])
    (folder / "text.jpg").write_text("not an image")
    names = ["empty.png", "corrupt.png", "truncated.png", "text.jpg", "missing.png"]
    return {name: folder / name for name in names}


def no_conversion_warnings(record):
    return not [w for w in record if "model:" in str(w.message)]


# ---------------------------------------------------------------- API


@pytest.mark.slow  # trains or writes files: the full suite runs it
def test_restore_rejects_unreadable_files_in_one_line(colour, tmp_path):
    for name, path in bad_image_files(tmp_path).items():
        with pytest.raises(ValueError, match=name) as error:
            colour.restore(path)
        assert "\n" not in str(error.value)
        with pytest.raises(ValueError, match=name):
            colour.restore(str(path))
    # A readable file restores, keeping its size and bit depth.
    out = colour.restore(tmp_path / "good.png")
    assert out.shape == (H, W, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("size", ODD_SIZES)
def test_odd_and_tiny_sizes_restore_to_the_same_size(colour, size):
    image = noise_image((*size, 3), "float32")
    restored = colour.restore(image)
    assert restored.shape == image.shape and np.all(np.isfinite(restored))
    predicted = colour.predict(image[None], verbose=0)
    assert predicted.shape == (1, *image.shape)
    # `predict` pads tiny images as `restore` does, on every backend.
    np.testing.assert_allclose(predicted[0], restored, atol=1e-5)


def test_tiles_of_odd_sizes(colour):
    image = noise_image((13, 6, 3), "float32")
    tiled = colour.restore(image, tile=8)
    # Tiles with the receptive radius as margin give the untiled result.
    np.testing.assert_allclose(tiled, colour.restore(image), atol=1e-5)


def test_alpha_channel_is_set_aside_and_put_back(gray, colour):
    rgb, alpha = noise_image((H, W, 3)), noise_image((H, W, 1), seed=1)
    out = colour.restore(np.concatenate([rgb, alpha], -1))
    assert out.shape == (H, W, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 3:], alpha)
    np.testing.assert_array_equal(out[..., :3], colour.restore(rgb))
    luma = noise_image((H, W, 1), seed=2)
    out = gray.restore(np.concatenate([luma, alpha], -1))
    assert out.shape == (H, W, 2)
    np.testing.assert_array_equal(out[..., 1:], alpha)
    np.testing.assert_array_equal(out[..., :1], gray.restore(luma))
    # The same through PIL.
    pil = Image.fromarray(np.concatenate([rgb, alpha], -1), "RGBA")
    np.testing.assert_array_equal(colour.restore(pil)[..., 3], alpha[..., 0])
    pil = Image.fromarray(np.concatenate([luma, alpha], -1), "LA")
    np.testing.assert_array_equal(gray.restore(pil)[..., 1], alpha[..., 0])


def test_16bit_images_stay_16bit(gray, colour, tmp_path):
    deep = noise_image((H, W), "uint16")
    out = gray.restore(deep)
    assert out.shape == deep.shape and out.dtype == np.uint16
    as_float = gray.restore(deep.astype("float32") / 65535)
    np.testing.assert_allclose(out, np.round(as_float * 65535), atol=1)
    # Pillow's 16-bit gray modes, and big-endian arrays.
    np.testing.assert_array_equal(gray.restore(Image.fromarray(deep)), out)
    np.testing.assert_array_equal(gray.restore(Image.fromarray(deep.astype(np.int32), "I")), out)
    np.testing.assert_array_equal(gray.restore(deep.astype(">u2")), out)
    Image.fromarray(deep).save(tmp_path / "g16.png")
    np.testing.assert_array_equal(gray.restore(tmp_path / "g16.png")[..., 0], out)
    # 16-bit RGB: an array, and a PNG file read at full depth.
    pixels = noise_image((H, W, 3), "uint16", seed=3)
    out = colour.restore(pixels)
    assert out.shape == pixels.shape and out.dtype == np.uint16
    write_png16(tmp_path / "rgb16.png", pixels)
    np.testing.assert_array_equal(colour.restore(tmp_path / "rgb16.png"), out)


def test_palette_images_are_restored_as_colour(colour):
    rgb = Image.fromarray(noise_image((H, W, 3)))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    out = colour.restore(palette)
    # The palette's colours, not its indices, are restored.
    assert out.shape == (H, W, 3)
    np.testing.assert_array_equal(out, colour.restore(palette.convert("RGB")))
    palette.info["transparency"] = 0
    out = colour.restore(palette)
    assert out.shape == (H, W, 4)
    np.testing.assert_array_equal(out[..., 3], np.asarray(palette.convert("RGBA"))[..., 3])


@pytest.mark.parametrize("mode,channels", [
    ("1", None), ("L", None), ("I;16B", None), ("F", None), ("PA", 4),
    ("CMYK", 3), ("YCbCr", 3), ("HSV", 3), ("RGBa", 4),
])
def test_pil_modes(gray, colour, mode, channels):
    image = Image.new(mode, (W, H))
    shape = (H, W) if channels is None else (H, W, channels)
    model = gray if len(shape) == 2 else colour
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = model.restore(image)
    assert out.shape == shape and np.all(np.isfinite(out))
    assert no_conversion_warnings(record)


def test_gray_and_colour_are_converted_with_a_warning(gray, colour):
    luma = noise_image((H, W))
    with pytest.warns(UserWarning, match="Gray image given to a colour model"):
        out = colour.restore(luma)
    assert out.shape == (H, W) and out.dtype == np.uint8
    with pytest.warns(UserWarning, match="Gray image given to a colour model"):
        assert colour.restore(luma[..., None]).shape == (H, W, 1)
    rgb = noise_image((H, W, 3))
    with pytest.warns(UserWarning, match="Colour image given to a gray model"):
        out = gray.restore(rgb)
    assert out.shape == (H, W, 3)
    # A gray result replicated back to the input's three channels.
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        gray.restore(luma)
        colour.restore(rgb)
    assert no_conversion_warnings(record)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values_raise(colour, value):
    image = noise_image((H, W, 3), "float32")
    image[2, 3, 1] = value
    with pytest.raises(ValueError, match="NaN or Inf"):
        colour.restore(image)
    with pytest.raises(ValueError, match="NaN or Inf"):
        colour.restore(image.astype("float64"))
    with pytest.raises(ValueError, match="NaN or Inf"):
        colour.predict(image[None], verbose=0)


@pytest.mark.parametrize("shape", [(), (8,), (1, 1, 8, 8, 3), (1, 1, 1, 8, 8, 3)])
def test_restore_rejects_wrong_ranks(colour, shape):
    with pytest.raises(ValueError, match=r"shape \(H, W\), \(H, W, C\) or \(N, H, W, C\)"):
        colour.restore(np.zeros(shape, "float32"))


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, 3), (1, 1, 8, 8, 3)])
def test_predict_rejects_wrong_ranks(colour, shape):
    with pytest.raises(ValueError, match=r"batch of shape \(N, H, W, 3\)"):
        colour.predict(np.zeros(shape, "float32"), verbose=0)


def test_channel_counts_that_are_not_images(colour):
    with pytest.raises(ValueError, match="1 to 4 channels"):
        colour.restore(np.zeros((8, 8, 5), "float32"))
    with pytest.raises(ValueError, match="3-channel images; got 1 channels"):
        colour.predict(np.zeros((1, 8, 8, 1), "float32"), verbose=0)


def test_uint8_is_scaled_to_unit_range_and_back(colour):
    image = noise_image((H, W, 3))
    out = colour.restore(image)
    assert out.shape == image.shape and out.dtype == np.uint8
    as_float = colour.restore(image.astype("float32") / 255)
    np.testing.assert_allclose(out, np.round(as_float * 255), atol=1)
    batch = np.stack([image, image[::-1]])
    out = colour.restore(batch, batch_size=2)
    assert out.shape == batch.shape and out.dtype == np.uint8
    # `predict` takes floats in [0, 1] only, and says where to go instead.
    with pytest.raises(ValueError, match="got dtype uint8.*restore"):
        colour.predict(batch, verbose=0)
    with pytest.raises(ValueError, match=r"\[0, 1\] scale"):
        colour.restore(image.astype("float32"))
    with pytest.raises(ValueError, match=r"\[0, 1\] scale"):
        colour.predict(batch.astype("float32"), verbose=0)


def test_unsupported_dtypes_raise(colour):
    for dtype, pattern in [("int32", "uint8 or uint16"), ("int8", "uint8 or uint16"),
                           ("complex64", "numeric"), (object, "numeric")]:
        with pytest.raises(ValueError, match=pattern):
            colour.restore(np.zeros((8, 8, 3), dtype))
    with pytest.raises(ValueError, match=r"32-bit integer.*0 to 65535"):
        colour.restore(Image.fromarray(np.full((4, 4), 70_000, np.int32), "I"))
    assert colour.restore(np.ones((4, 4, 3), bool)).dtype == np.float32


def not_our_model_files(folder):
    """`.keras` (and other) files that are not keras-lnca models, by kind."""
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    plain.save(folder / "sequential.keras")
    # A Lambda layer holds Python code: only loadable with safe_mode off.
    code = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2)])
    code.save(folder / "lambda.keras")
    with zipfile.ZipFile(folder / "zip.keras", "w") as archive:
        archive.writestr("notes.txt", "not a model")
    (folder / "empty.keras").write_bytes(b"")
    Image.fromarray(noise_image((4, 4))).save(folder / "image.keras", format="PNG")
    Image.fromarray(noise_image((4, 4))).save(folder / "image.png")
    return {
        "sequential.keras": "holds a Sequential, not a LNCA",
        "lambda.keras": "Lambda.*safe_mode=True",
        "zip.keras": "without config.json",
        "empty.keras": "empty file",
        "image.keras": "not a zip archive",
        "image.png": "not a .keras model file",
        "missing.keras": "No such model file",
        "no/such/model": "No such model file",
    }


def test_model_files_that_are_not_ours(tmp_path):
    for name, pattern in not_our_model_files(tmp_path).items():
        with pytest.raises(UserError, match=pattern) as error:
            kl.LNCA.from_preset(tmp_path / name)
        assert "\n" not in str(error.value) and len(str(error.value)) < 300


@pytest.mark.parametrize("x_channels,y_channels,model_channels", [(3, 3, 1), (1, 1, 3), (3, 1, 3)])
def test_fit_rejects_mismatched_channels_early(gray, colour, x_channels, y_channels,
                                               model_channels):
    model = gray if model_channels == 1 else colour
    model.compile()
    before = [np.array(v) for v in model.trainable_variables]
    x = noise_image((4, 16, 16, x_channels), "float32")
    y = noise_image((4, 16, 16, y_channels), "float32", seed=1)
    if x_channels != model_channels:
        wrong, which = x_channels, "degraded"
    else:
        wrong, which = y_channels, "clean"
    pattern = f"restores {model_channels}-channel images; got {wrong}-channel {which} images"
    with pytest.raises(ValueError, match=pattern):
        model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    # A later fit skips Keras' first symbolic pass: train_step checks each batch.
    state = [None] if keras.backend.backend() == "jax" else []  # JAX: train_step(state, data)
    with pytest.raises(ValueError, match=pattern):
        model.train_step(*state, (x[:2], y[:2]))

    class Pairs(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()

        def __len__(self):
            return 2

        def __getitem__(self, index):
            return x[2 * index : 2 * index + 2], y[2 * index : 2 * index + 2]

    # A dataset's first batch is checked in Keras' symbolic pass, which calls
    # the model on the degraded images alone, then `compute_metrics`.
    pattern = f"restores {model_channels}-channel images; got {wrong}[- ]channel"
    with pytest.raises(ValueError, match=pattern):
        model.fit(Pairs(), epochs=1, verbose=0)
    for old, new in zip(before, model.trainable_variables):
        np.testing.assert_array_equal(old, np.array(new))


def test_fit_rejects_pairs_of_different_shapes(colour):
    colour.compile()
    x = noise_image((4, 16, 16, 3), "float32")
    with pytest.raises(ValueError, match="same shape"):
        colour.fit(x, x[:, :8, :8], batch_size=2, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"batches of shape \(N, H, W, 3\)"):
        colour.fit(x[0], x[0], epochs=1, verbose=0)


# ---------------------------------------------------------------- CLI


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def model_files(gray, colour, tmp_path_factory):
    """The tiny gray and colour models saved as `.keras` files."""
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for model in (gray, colour):
        if not model.built:
            model.build((None, 16, 16, model.channels))
        paths[model.channels] = folder / f"tiny_{model.channels}.keras"
        model.save(paths[model.channels])
    return paths


def assert_one_line_error(code, err, *needles):
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("lnca restore: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert str(needle) in err, err


def test_cli_unreadable_files_fail_in_one_line_and_write_nothing(model_files, tmp_path, capsys):
    bad = bad_image_files(tmp_path)
    kept = tmp_path / "kept.png"
    for name, path in bad.items():
        code, _, err = run_cli(capsys, "restore", path, "-o", tmp_path / "new.png",
                               "--model", model_files[1])
        assert_one_line_error(code, err, name)
        assert not (tmp_path / "new.png").exists()
        # --overwrite never replaces a file when the input is bad.
        kept.write_bytes(b"keep me")
        code, _, err = run_cli(capsys, "restore", path, "-o", kept, "--overwrite",
                               "--model", model_files[1])
        assert_one_line_error(code, err, name)
        assert kept.read_bytes() == b"keep me"
    # A folder with one bad image fails before any output is written.
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(noise_image((12, 12))).save(folder / "a_good.png")
    (folder / "b_empty.png").write_bytes(b"")
    code, _, err = run_cli(capsys, "restore", folder, "-o", tmp_path / "out", "--model",
                           model_files[1])
    assert_one_line_error(code, err, "b_empty.png")
    assert not (tmp_path / "out" / "a_good.png").exists()
    assert list(tmp_path.glob("**/.*.tmp")) == []


def write_unusual_images(folder):
    """Images of odd sizes and modes; returns {file name: (height, width)}."""
    sizes = {"gray_1x1.png": (1, 1), "rgba_3x3.png": (3, 3), "la_13x7.png": (13, 7),
             "gray16_6x10.png": (6, 10), "palette_6x10.png": (6, 10),
             "palette_alpha_3x3.png": (3, 3), "rgb16_13x7.png": (13, 7), "la16_5x4.png": (5, 4),
             "rgba16_4x5.png": (4, 5)}
    Image.fromarray(noise_image((1, 1))).save(folder / "gray_1x1.png")
    Image.fromarray(noise_image((3, 3, 4)), "RGBA").save(folder / "rgba_3x3.png")
    Image.fromarray(noise_image((13, 7, 2)), "LA").save(folder / "la_13x7.png")
    Image.fromarray(noise_image((6, 10), "uint16")).save(folder / "gray16_6x10.png")
    for name in ("palette_6x10.png", "palette_alpha_3x3.png"):
        rgb = Image.fromarray(noise_image((*sizes[name], 3)))
        palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
        palette.save(folder / name, **({"transparency": 0} if "alpha" in name else {}))
    write_png16(folder / "rgb16_13x7.png", noise_image((13, 7, 3), "uint16"))
    write_png16(folder / "la16_5x4.png", noise_image((5, 4, 2), "uint16"))
    write_png16(folder / "rgba16_4x5.png", noise_image((4, 5, 4), "uint16"))
    return sizes


@pytest.mark.slow  # trains or writes files: the full suite runs it
@pytest.mark.parametrize("channels", [1, 3])
def test_cli_restores_odd_sizes_and_modes(gray, colour, model_files, tmp_path, capsys, channels):
    folder = tmp_path / "in"
    folder.mkdir()
    sizes = write_unusual_images(folder)
    code, _, err = run_cli(capsys, "restore", folder, "-o", tmp_path / "out", "--model",
                           model_files[channels])
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("lnca restore: note:")]
    # Five colour inputs (RGBA, two palettes, 16-bit RGB and RGBA) and four gray (1x1, LA,
    # 16-bit, 16-bit with alpha).
    converted = "5 of 9 images are colour" if channels == 1 else "4 of 9 images are gray"
    assert len(notes) == 1 and converted in notes[0], err
    model = gray if channels == 1 else colour  # the weights of the saved file
    from keras_lnca.data.io import convert_channels
    from keras_lnca.data.io import read_with_alpha

    for name, (height, width) in sizes.items():
        # What the API gives for the same file, at the file's own depth (16-bit inputs come
        # back as 16-bit files), and the file's alpha channel untouched.
        source, source_alpha, _ = read_with_alpha(folder / name)
        written, written_alpha, _ = read_with_alpha(tmp_path / "out" / name)
        assert written.shape == (height, width, channels), name
        assert written.dtype == source.dtype, name
        assert (written_alpha is None) == (source_alpha is None), name
        if source_alpha is not None:
            np.testing.assert_array_equal(written_alpha, source_alpha, err_msg=name)
        expected = model.restore(convert_channels(source, channels))
        np.testing.assert_allclose(written, expected.reshape(written.shape), atol=1, err_msg=name)


def test_cli_notes_gray_colour_conversion_in_one_line(model_files, tmp_path, capsys):
    Image.fromarray(noise_image((H, W))).save(tmp_path / "gray.png")
    Image.fromarray(noise_image((H, W, 3))).save(tmp_path / "rgb.png")
    code, _, err = run_cli(capsys, "restore", tmp_path / "gray.png", "-o", tmp_path / "a.png",
                           "--model", model_files[3])
    assert code == 0
    assert err == "lnca restore: note: gray.png is gray: replicated to RGB for this colour model\n"
    assert Image.open(tmp_path / "a.png").mode == "RGB"
    code, _, err = run_cli(capsys, "restore", tmp_path / "rgb.png", "-o", tmp_path / "b.png",
                           "--model", model_files[1])
    assert code == 0
    assert err == "lnca restore: note: rgb.png is colour: converted to luma for this gray model\n"
    assert Image.open(tmp_path / "b.png").mode == "L"
    code, _, err = run_cli(capsys, "restore", tmp_path / "rgb.png", "-o", tmp_path / "c.png",
                           "--model", model_files[3])
    assert code == 0 and err == ""


def test_cli_model_files_that_are_not_ours(tmp_path, capsys):
    image = tmp_path / "in.png"
    Image.fromarray(noise_image((8, 8))).save(image)
    for name, pattern in not_our_model_files(tmp_path).items():
        code, _, err = run_cli(capsys, "restore", image, "-o", tmp_path / "out.png",
                               "--model", tmp_path / name)
        assert_one_line_error(code, err, name)
        assert re.search(pattern, err), err
        assert not (tmp_path / "out.png").exists()


def test_cli_bad_outputs_fail_before_restoring(model_files, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(noise_image((8, 8))).save(folder / "a.png")
    code, _, err = run_cli(capsys, "restore", folder / "a.png", "-o", tmp_path / "out.xyz",
                           "--model", model_files[1])
    assert_one_line_error(code, err, "unknown image format", "out.xyz")
    # Two inputs that would be written to the same file.
    Image.fromarray(noise_image((8, 8))).save(folder / "a.bmp")
    code, _, err = run_cli(capsys, "restore", folder, "-o", tmp_path / "out", "--model",
                           model_files[1])
    assert_one_line_error(code, err, "a.bmp", "a.png")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# A model config is checked before any variable is built: a model file can ask
# for no absurd width, no native abort, no pool beyond the memory bound.
BAD_CONFIGS = {
    "hidden_channels": (dict(hidden_channels=10**7), "`hidden_channels` must be between 1 and 1024"),
    "downsampling": (dict(downsampling=-1), "`downsampling` must be between 1 and 3"),
    "int dtype": (dict(dtype="int32"), "dtype policy must be a float one"),
    "pool memory": (dict(pool_size=2500, pool_image_size=256), r"needs 4\.\d GiB"),
    "cell width": (dict(cell_config={"embed_dim": 10**6}), r"cell_config\['embed_dim'\]"),
    "seed": (dict(seed=-1), "`seed` must be between 0 and 2147483632"),
    "huge seed": (dict(seed=2**70), "`seed` must be between 0 and 2147483632"),
    "string width": (dict(hidden_channels="32"), "`hidden_channels` must be an integer"),
    "train steps": (dict(train_steps=(2, "x")), "`train_steps` must be an integer"),
    "fire rate": (dict(fire_rate=float("nan")), "`fire_rate` must be a finite number"),
    "noise map": (dict(noise_map="yes"), "`noise_map` must be True or False"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_model_configs_are_checked_before_building(case):
    overrides, message = BAD_CONFIGS[case]
    with pytest.raises(ValueError, match=message) as error:
        tiny_lnca(channels=1, **overrides)
    assert "\n" not in str(error.value)


def rewrite_config(source, target, **changes):
    """A copy of the `.keras` file `source` whose model config has `changes`."""
    import json

    with zipfile.ZipFile(source) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    config["config"].update(changes)
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return target


def test_inference_loads_allocate_no_pool(model_files, tmp_path):
    path = rewrite_config(model_files[1], tmp_path / "pooled.keras", pool_size=64, pool_image_size=64)
    trainer = kl.LNCA.from_preset(path)
    assert trainer.get_config()["pool_size"] == 64 and len(trainer.pool_variables()) == 4
    restorer = kl.LNCA.from_preset(path, training=False)
    assert restorer.get_config()["pool_size"] == 64 and restorer.pool_variables() == []
    image = noise_image((H, W)).astype("float32") / 255
    np.testing.assert_allclose(restorer.restore(image), trainer.restore(image), atol=1e-6)


def test_cli_refuses_model_files_with_absurd_configs(model_files, tmp_path, capsys):
    image = tmp_path / "in.png"
    Image.fromarray(noise_image((8, 8))).save(image)
    # A 4.3 GiB training pool is no obstacle to restoring: none is allocated.
    rewrite_config(model_files[1], tmp_path / "pool.keras", pool_size=2500, pool_image_size=256)
    code, _, err = run_cli(capsys, "restore", image, "-o", tmp_path / "pooled.png",
                           "--model", tmp_path / "pool.keras")
    assert code == 0 and (tmp_path / "pooled.png").exists(), err
    with pytest.raises(UserError, match="4.3 GiB"):  # but it is refused for training
        kl.LNCA.from_preset(tmp_path / "pool.keras")
    cases = {
        "wide.keras": (dict(hidden_channels=10**6), "`hidden_channels`"),
        "negative.keras": (dict(downsampling=-2), "`downsampling`"),
    }
    for name, (changes, needle) in cases.items():
        rewrite_config(model_files[1], tmp_path / name, **changes)
        code, _, err = run_cli(capsys, "restore", image, "-o", tmp_path / "out.png",
                               "--model", tmp_path / name)
        assert_one_line_error(code, err, name, needle)
        assert not (tmp_path / "out.png").exists()


def test_cli_says_when_an_output_format_drops_alpha(model_files, tmp_path, capsys):
    Image.fromarray(noise_image((H, W, 4)), "RGBA").save(tmp_path / "rgba.png")
    code, _, err = run_cli(capsys, "restore", tmp_path / "rgba.png", "-o", tmp_path / "out.jpg",
                           "--model", model_files[3])
    assert code == 0 and "out.jpg holds no alpha channel; the alpha of rgba.png is dropped" in err, err
    assert Image.open(tmp_path / "out.jpg").mode == "RGB"


@pytest.mark.parametrize("keep_going", [False, True])
def test_a_truncated_jpeg_mid_folder_stops_or_is_skipped(model_files, tmp_path, capsys, keep_going):
    """verify() cannot see a truncated JPEG: it fails when decoded. Without --keep-going the run
    stops there (the files already written are whole); with it the file is skipped and reported."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(noise_image((64, 64, 3), seed=i)).save(folder / f"{i}.jpg", quality=95)
    whole = (folder / "2.jpg").read_bytes()
    (folder / "2.jpg").write_bytes(whole[: len(whole) * 3 // 4])  # whole headers, data cut
    argv = ["restore", folder, "-o", tmp_path / "out", "--model", model_files[3], "--quiet"]
    code, out, err = run_cli(capsys, *argv, *(["--keep-going"] if keep_going else []))
    assert code == 2 and "Traceback" not in err, err
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    if keep_going:
        assert written == ["0.png", "1.png", "3.png"], written
        assert "skipped 2.jpg" in err and "1 of 4 image(s) failed and were skipped: 2.jpg" in err, err
    else:
        assert written == ["0.png", "1.png"], written
        assert err.count("\n") == 1 and "2.jpg" in err, err


def test_predict_refuses_a_list_of_batches_and_checks_backend_tensors(colour):
    a = noise_image((2, H, W, 3)).astype("float32") / 255
    with pytest.raises(ValueError, match="predict takes one batch .* got a list of 2"):
        colour.predict([a, a], verbose=0)
    bad = a.copy()
    bad[0, 0, 0, 0] = np.nan
    for batch in (bad, keras.ops.convert_to_tensor(bad)):  # numpy, and this backend's tensor
        with pytest.raises(ValueError, match="NaN"):
            colour.predict(batch, verbose=0)
    np.testing.assert_allclose(colour.predict(keras.ops.convert_to_tensor(a), verbose=0),
                               colour.predict(a, verbose=0), atol=1e-6)
