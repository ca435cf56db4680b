"""Property-based tests (hypothesis): `restore`, `parse` and the image readers over shapes,
dtypes, value ranges and sizes. Each either works (shape and dtype kept, values in range) or
raises a one-line error of the documented type, never anything else."""

import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from PIL import Image

import keras_lnca as kl
from keras_lnca.errors import UserError

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def model():
    model = kl.LNCA(channels=1, autoencoder="space_to_depth", cell="conv", out_seed="input",
                    inference_steps=2, pool_size=0,
                    cell_config=dict(perception_channels=4, hidden_units=8))
    model.build()
    return model


@SETTINGS
@given(
    height=st.integers(1, 40), width=st.integers(1, 40),
    dtype=st.sampled_from(["uint8", "uint16", "float32", "float64"]),
    layout=st.sampled_from(["hw", "hwc"]), seed=st.integers(0, 2**16),
)
def test_restore_keeps_shape_and_dtype_family(model, height, width, dtype, layout, seed):
    rng = np.random.default_rng(seed)
    shape = (height, width) if layout == "hw" else (height, width, 1)
    if np.dtype(dtype).kind == "u":
        image = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    else:
        image = rng.random(shape).astype(dtype)
    out = model.restore(image)
    assert out.shape == image.shape
    if np.dtype(dtype).kind == "u":
        assert out.dtype == image.dtype
    else:
        assert out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0


@SETTINGS
@given(steps=st.one_of(st.integers(-5, -1), st.integers(10_001, 10**9)),
       tolerance=st.sampled_from([float("nan"), float("inf"), -1.0]),
       tile=st.integers(-10, 7))
def test_restore_rejects_bad_arguments(model, steps, tolerance, tile):
    image = np.zeros((16, 16), "float32")
    for kwargs in (dict(steps=steps), dict(tolerance=tolerance), dict(tile=tile)):
        with pytest.raises(ValueError) as error:
            model.restore(image, **kwargs)
        assert "\n" not in str(error.value)


NUMBER_TEXT = st.text(alphabet="0123456789.-+eEinfa\u00b2\u0663", max_size=400)
SPEC_TEXT = st.one_of(
    st.text(max_size=30),
    # Stage names with number-like arguments: long digit strings, signs, inf/nan, "²", Arabic digits.
    st.builds(lambda name, *numbers: ":".join((name, *numbers)),
              st.sampled_from(["gaussian", "impulse", "motion", "ramp", "blur:levin09"]),
              NUMBER_TEXT, NUMBER_TEXT),
    st.builds(lambda name, a, b: f"{name}:{a}-{b}", st.sampled_from(["gaussian", "ramp", "impulse"]),
              NUMBER_TEXT, NUMBER_TEXT),
)


@SETTINGS
@given(text=SPEC_TEXT)
def test_parse_gives_a_degradation_or_a_user_error(text):
    try:
        degradation = kl.degradations.parse(text)
    except UserError as error:
        assert str(error) and "\n" not in str(error)
        return
    clean = np.full((1, 16, 16, 1), 0.5, "float32")
    try:
        out = degradation(clean, seed=0)
    except UserError as error:  # e.g. a kernel file that does not exist
        assert "\n" not in str(error)
        return
    out = np.asarray(out)
    assert out.shape == clean.shape and np.isfinite(out).all(), text


@SETTINGS
@given(sigma=st.floats(0, 200), low=st.floats(0, 50), span=st.floats(0, 50))
def test_parse_noise_levels_round_trip(sigma, low, span):
    # (as people write levels: plain decimals; "1e-3" is refused with a one-line error)
    assert "gaussian" in repr(kl.degradations.parse(f"gaussian:{sigma:.3f}"))
    assert "gaussian" in repr(kl.degradations.parse(f"gaussian:{low:.3f}-{low + span:.3f}"))


@SETTINGS
@given(height=st.integers(1, 30), width=st.integers(1, 30),
       mode=st.sampled_from(["L", "RGB", "RGBA", "LA", "I;16", "P"]),
       ext=st.sampled_from([".png", ".tif", ".bmp", ".jpg"]), seed=st.integers(0, 2**16))
def test_image_files_read_back(tmp_path_factory, height, width, mode, ext, seed):
    from keras_lnca.data.io import image_info
    from keras_lnca.data.io import read_raw

    if ext in (".jpg", ".bmp") and mode in ("I;16", "LA", "RGBA") or (ext == ".jpg" and mode == "P"):
        return  # formats that cannot hold these modes
    rng = np.random.default_rng(seed)
    folder = tmp_path_factory.mktemp("img")
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65535, (height, width)).astype("uint16"))
    else:
        channels = {"L": 1, "RGB": 3, "RGBA": 4, "LA": 2, "P": 3}[mode]
        array = rng.integers(0, 255, (height, width, channels)).astype("uint8")
        image = Image.fromarray(array[..., 0] if channels == 1 else array,
                                mode=None if mode != "LA" else "LA")
        if mode == "P":
            image = image.convert("P")
    path = folder / f"x{ext}"
    image.save(path)
    array, scale = read_raw(path)
    assert array.shape[:2] == (height, width) and array.shape[2] in (1, 3)
    assert image_info(path)[:2] == (width, height)
    assert image_info(path)[2] == array.shape[2]
    loaded = kl.data.load_image(path)
    assert loaded.dtype == np.float32 and 0 <= loaded.min() and loaded.max() <= 1
