"""Tests of keras_lnca.degradations (numpy reference path, TF path, specs, curriculum)."""

import os
from pathlib import Path

import numpy as np
import pytest

from keras_lnca import degradations as D
from keras_lnca.errors import UserError

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LNCA_DATA", REPO / ".." / "shared" / "data")).resolve()
KERNEL_FILES = {"levin09": ("Levin09.npz", 8), "kernels12": ("kernels_12.npz", 12)}


@pytest.fixture
def kernels_env(monkeypatch):
    """Points LNCA_DATA at the shared data (absolute), or skips."""
    if not (DATA / "kernels" / "Levin09.npz").is_file():
        pytest.skip(f"shared data not found at {DATA} (set LNCA_DATA)")
    monkeypatch.setenv("LNCA_DATA", str(DATA))
    return DATA


def _images(n=2, h=24, w=20, c=3, seed=0):
    return np.random.default_rng(seed).random((n, h, w, c)).astype(np.float32)


# ---------------------------------------------------------------- numpy path

@pytest.mark.parametrize(
    "fn",
    [
        lambda x, s: D.gaussian_noise(x, 25, seed=s),
        lambda x, s: D.gaussian_noise(x, (0, 50), seed=s),
        lambda x, s: D.impulse_noise(x, 0.5, seed=s),
        lambda x, s: D.motion_blur(x, 7, seed=s),
        lambda x, s: D.motion_blur(x, (4, 10), angle=None, seed=s),
    ],
    ids=["gaussian", "blind", "impulse", "motion", "motion-range"],
)
def test_same_seed_same_output(fn):
    x = _images()
    assert np.array_equal(fn(x, 3), fn(x, 3))
    assert not np.array_equal(fn(x, 3), fn(x, 4))


def test_gaussian_sigma_and_no_clipping():
    x = np.full((256, 256, 1), 0.5, np.float32)
    noisy = D.gaussian_noise(x, 25, seed=0)
    assert noisy.dtype == np.float32 and noisy.shape == x.shape
    assert abs(noisy.std() * 255 / 25 - 1) < 0.02
    assert abs(noisy.mean() - 0.5) < 0.002
    dark = D.gaussian_noise(np.zeros((64, 64), np.float32), 25, seed=0)
    assert dark.min() < -0.1  # evaluation noise is not clipped


def test_blind_gaussian_draws_one_sigma_per_image():
    x = np.full((16, 64, 64, 1), 0.5)
    _, info = D.parse("gaussian:10-40").apply(x, seed=1)
    sigmas = np.array([i["sigma"] for i in info])
    assert sigmas.shape == (16,) and sigmas.min() >= 10 and sigmas.max() <= 40
    assert sigmas.std() > 3  # really drawn per image
    noisy = D.gaussian_noise(x, (10, 40), seed=1)
    measured = noisy.reshape(16, -1).std(axis=1) * 255
    np.testing.assert_allclose(measured, sigmas, rtol=0.05)


@pytest.mark.parametrize("p", [0.25, 0.5, 0.75])
def test_impulse_fraction_and_channels(p):
    x = np.full((200, 200, 3), 0.5, np.float32)
    y = D.impulse_noise(x, p, seed=0)
    changed = np.any(y != x, axis=-1)
    assert abs(changed.mean() - p) < 0.02
    assert y.min() >= 0 and y.max() <= 1  # clipped
    assert np.array_equal(y[..., 0], y[..., 1]) and np.array_equal(y[..., 0], y[..., 2])


def test_impulse_sigma_is_on_255_scale():
    x = np.full((300, 300), 0.5)
    y = D.impulse_noise(x, 1.0, sigma=12.75, seed=0)  # 0.05 on the 0-1 scale: no clipping
    assert abs((y - x).std() - 0.05) < 0.002


@pytest.mark.parametrize("name", sorted(KERNEL_FILES))
def test_kernel_files_sum_to_one(kernels_env, name):
    file_name, count = KERNEL_FILES[name]
    kernels = D.load_kernels(name)
    assert len(kernels) == count
    assert D.load_kernels(kernels_env / "kernels" / file_name)[0].shape == kernels[0].shape
    for kernel in kernels:
        assert kernel.dtype == np.float32 and kernel.ndim == 2
        assert abs(float(kernel.sum()) - 1) < 1e-5
        assert kernel.min() >= 0


def test_load_kernels_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("LNCA_DATA", str(tmp_path))
    with pytest.raises(UserError, match="LNCA_DATA"):
        D.load_kernels("levin09")
    with pytest.raises(UserError, match="unknown blur kernels"):
        D.load_kernels("nope")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="cannot read"):
        D.load_kernels(bad)
    # Kernels that are not blur kernels are refused, naming the key: non-finite, not 2-D,
    # summing to nothing, too large.
    good = np.full((3, 3), 1 / 9, np.float32)
    for name, kernel, message in [
        ("nan", np.where(np.eye(3, dtype=bool), np.nan, good), "2-D finite kernel"),
        ("inf", np.where(np.eye(3, dtype=bool), np.inf, good), "2-D finite kernel"),
        ("flat", np.ones(9, np.float32), "2-D finite kernel"),
        ("zero", np.zeros((3, 3), np.float32), "positive sum"),
        ("huge", np.ones((300, 3), np.float32), "at most 255 x 255"),
    ]:
        path = tmp_path / f"{name}.npz"
        np.savez(path, k00=good, k01=kernel)
        with pytest.raises(UserError, match=f"kernel 'k01' in .*{message}"):
            D.load_kernels(path)
        with pytest.raises(UserError, match="k01"):
            D.parse(f"blur:{path}")(np.full((16, 16, 1), 0.5, np.float32), seed=0)


@pytest.mark.parametrize("size", [1, 2, 4, 7, 10, 15])
@pytest.mark.parametrize("angle", [0, 30, 45, 90, 137.5])
def test_motion_kernel_normalised_and_symmetric(size, angle):
    kernel = D.motion_kernel(size, angle)
    assert abs(float(kernel.sum()) - 1) < 1e-6
    assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    assert np.abs(kernel - kernel[::-1, ::-1]).max() < 1e-6  # a centred segment
    # A uniform segment of length L has variance L**2 / 12 along its direction
    # and (almost) none across it.
    radius = kernel.shape[0] // 2
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    theta = np.radians(angle)
    along = xx * np.cos(theta) - yy * np.sin(theta)
    across = xx * np.sin(theta) + yy * np.cos(theta)
    length = np.sqrt(12 * (kernel * along**2).sum())
    assert abs(length - size) <= (1.0 if size == 1 else 0.7)
    assert np.sqrt((kernel * across**2).sum()) < 0.35


def test_motion_kernel_horizontal_is_a_box():
    kernel = D.motion_kernel(7, 0)
    assert kernel.shape == (7, 7)
    np.testing.assert_allclose(kernel[3], 1 / 7, atol=2e-3)
    assert kernel.sum(axis=1)[3] == pytest.approx(1.0)


def test_kernel_blur_is_circular_convolution():
    from scipy import ndimage

    x = _images(n=1, h=17, w=23, c=2)[0]
    kernel = np.random.default_rng(1).random((5, 3))
    kernel /= kernel.sum()
    expected = np.stack(
        [ndimage.convolve(x[..., c].astype(np.float64), kernel, mode="wrap") for c in range(2)],
        axis=-1,
    )
    np.testing.assert_allclose(D.kernel_blur(x, kernel), expected, atol=1e-5)
    constant = np.full((9, 9), 0.3)
    np.testing.assert_allclose(D.motion_blur(constant, 5, seed=0), constant, atol=1e-12)


@pytest.mark.parametrize("shape", [(12, 10), (12, 10, 1), (12, 10, 3), (2, 12, 10, 3)])
def test_shapes_are_kept(shape):
    x = np.random.default_rng(0).random(shape).astype(np.float32)
    for y in (D.gaussian_noise(x, 5, seed=0), D.impulse_noise(x, 0.3, seed=0),
              D.motion_blur(x, 3, seed=0), D.kernel_blur(x, np.ones((3, 3)) / 9)):
        assert y.shape == shape and y.dtype == np.float32


def test_non_float_input_is_rejected():
    with pytest.raises(UserError, match="float image"):
        D.gaussian_noise(np.zeros((4, 4), np.uint8), 25)
    with pytest.raises(UserError, match=r"p must be in \[0.0, 1.0\]"):
        D.impulse_noise(np.zeros((4, 4)), 1.5)


# ---------------------------------------------------------------- specs

DESIGN_SPECS = {
    "gaussian:25": ("gaussian",),
    "gaussian:0-50": ("gaussian",),
    "impulse:0.5": ("impulse",),
    "motion:7": ("motion",),
    "blur:levin09": ("blur",),
    "blur:levin09:3": ("blur",),
    "blur:kernels12": ("blur",),
    "blur:levin09,gaussian:2.55": ("blur", "gaussian"),
}


@pytest.mark.parametrize("spec", sorted(DESIGN_SPECS))
def test_parse_accepts_design_examples(kernels_env, spec):
    degradation = D.parse(spec)
    assert degradation.kinds == DESIGN_SPECS[spec]
    assert degradation.spec == spec
    x = _images()
    y = degradation(x, seed=0)
    assert y.shape == x.shape and y.dtype == np.float32
    assert not np.allclose(y, x)
    assert np.array_equal(y, degradation(x, seed=0))


def test_parse_stage_semantics(kernels_env):
    x = _images(n=1)[0]
    np.testing.assert_array_equal(D.parse("gaussian:25")(x, seed=5), D.gaussian_noise(x, 25, seed=5))
    np.testing.assert_array_equal(D.parse("impulse:0.5")(x, seed=5), D.impulse_noise(x, 0.5, seed=5))
    levin = D.load_kernels("levin09")
    np.testing.assert_allclose(D.parse("blur:levin09")(x, index=9), D.kernel_blur(x, levin[1]))
    np.testing.assert_allclose(D.parse("blur:levin09:3")(x, index=9), D.kernel_blur(x, levin[3]))
    # A batch starting at index 6 uses kernels 6, 7, 0.
    batch = _images(n=3)
    _, info = D.parse("blur:levin09").apply(batch, index=6)
    assert [k is levin[i] for k, i in zip((r["kernel"] for r in info), (6, 7, 0))] == [True] * 3
    # Stages apply left to right: blur, then noise.
    blurred = D.kernel_blur(x, levin[0])
    rng = np.random.default_rng(1)
    expected = blurred + rng.standard_normal(x.shape) * (2.55 / 255)
    np.testing.assert_allclose(D.parse("blur:levin09,gaussian:2.55")(x, seed=1), expected, atol=1e-5)


@pytest.mark.parametrize(
    "junk",
    ["", "   ", "gauss:25", "gaussian", "gaussian:", "gaussian:abc", "gaussian:-5",
     "gaussian:50-10", "gaussian:25,", "impulse:1.5", "motion:0", "motion:x",
     "blur:levin09:8", "blur:levin09:a", "blur:nope", "gaussian:25:3", 25, None],
)
def test_parse_rejects_junk_with_a_clear_error(kernels_env, junk):
    with pytest.raises(UserError) as error:
        D.parse(junk)
    message = str(error.value)
    assert message.startswith("invalid degradation") or "blur kernels" in message
    assert "\n" not in message


def test_degrade_for_eval_uses_a_fresh_generator_per_image(kernels_env):
    images = [np.full((16, 16, 1), 0.5), np.full((20, 12, 1), 0.2), np.full((16, 16, 1), 0.5)]
    noisy = list(D.degrade_for_eval(images, "gaussian:25"))
    for image, out in zip(images, noisy):
        np.testing.assert_array_equal(out, D.gaussian_noise(image, 25, seed=0))
    assert np.array_equal(noisy[0], noisy[2])  # same seed and size: same noise
    other = next(D.degrade_for_eval(images[:1], "gaussian:25", seed=1))
    assert not np.array_equal(other, noisy[0])
    blurred = list(D.degrade_for_eval([images[0]] * 9, "blur:levin09", return_info=True))
    levin = D.load_kernels("levin09")
    assert all(info["kernel"] is levin[i % 8] for i, (_, info) in enumerate(blurred))


# ---------------------------------------------------------------- TF path

@pytest.fixture
def tf():
    return pytest.importorskip("tensorflow")


def test_tf_blurs_equal_numpy_blurs(tf, kernels_env):
    x = _images(n=2, h=30, w=26)
    kernel = D.load_kernels("levin09")[3]  # 27x27, wraps around the 26-wide image
    np.testing.assert_allclose(D.tf_kernel_blur(x, kernel).numpy(), D.kernel_blur(x, kernel), atol=1e-5)
    for size, angle in ((7, 30), (4, 0), (10, 117)):
        np.testing.assert_allclose(
            D.tf_motion_blur(x, size, angle, seed=0).numpy(), D.motion_blur(x, size, angle),
            atol=1e-5,
        )


def test_tf_same_seed_same_output(tf, kernels_env):
    x = tf.constant(_images())
    for spec in ("gaussian:0-50", "impulse:0.5", "motion:4-10", "blur:levin09,gaussian:2.55"):
        degradation = D.parse(spec)
        a = degradation.apply_tf(x, seed=[1, 2]).numpy()
        assert np.array_equal(a, degradation.apply_tf(x, seed=[1, 2]).numpy())
        assert not np.array_equal(a, degradation.apply_tf(x, seed=[1, 3]).numpy())
        assert a.shape == x.shape and a.dtype == np.float32


def test_tf_and_numpy_agree_in_distribution(tf, kernels_env):
    x = np.full((8, 64, 64, 3), 0.5, np.float32)
    for sigma in (5, 25, 50):
        t = D.tf_gaussian_noise(x, sigma, seed=0).numpy()
        n = D.gaussian_noise(x, sigma, seed=0)
        assert abs(t.std() * 255 / sigma - 1) < 0.02 and abs(n.std() * 255 / sigma - 1) < 0.02
    blind = D.tf_gaussian_noise(np.full((64, 32, 32, 1), 0.5, np.float32), (0, 50), seed=0)
    levels = blind.numpy().reshape(64, -1).std(axis=1) * 255
    assert levels.min() >= 0 and levels.max() < 52 and 20 < levels.mean() < 30
    for p in (0.25, 0.75):
        t = D.tf_impulse_noise(x, p, seed=0).numpy()
        n = D.impulse_noise(x, p, seed=0)
        t_frac, n_frac = np.any(t != x, -1).mean(), np.any(n != x, -1).mean()
        assert abs(t_frac - p) < 0.02 and abs(n_frac - p) < 0.02
        assert np.array_equal(t[..., 0], t[..., 2])
        assert abs(t.std() - n.std()) < 0.01
    # Random-angle motion blur: the same average smoothing on a noise image.
    noise = np.random.default_rng(0).random((16, 32, 32, 1)).astype(np.float32)
    t_std = D.tf_motion_blur(noise, 7, seed=0).numpy().std()
    n_std = D.motion_blur(noise, 7, seed=0).std()
    assert abs(t_std - n_std) < 0.15 * n_std


# ---------------------------------------------------------------- curriculum

def test_curriculum_values():
    impulse = D.Curriculum("impulse", epochs=5)
    assert [impulse.value(e) for e in range(7)] == pytest.approx(
        [0.25, 0.375, 0.5, 0.625, 0.75, 0.75, 0.75]
    )
    motion = D.Curriculum("motion", epochs=4)
    assert [motion.value(e) for e in range(5)] == [4, 6, 8, 10, 10]
    assert D.Curriculum("gaussian", 10, 50, epochs=1).value(0) == 10
    assert motion.current == 4 and motion.spec == "motion:4"
    motion.set_epoch(2)
    assert motion.current == 8 and motion.spec == "motion:8"
    with pytest.raises(UserError):
        D.Curriculum("gaussian", epochs=3)
    with pytest.raises(UserError):
        D.Curriculum("sharpen", 1, 2)
    with pytest.raises(UserError):
        D.Curriculum("impulse", 0.5, 1.5)


def test_paper_curriculum_follows_the_official_code():
    """`Utils/trainer_utils.py`: epoch e of E uses clip(e / E * range, a_min, a_max), with
    range 1 for impulse p and 15 for the motion size, truncated to an integer."""
    impulse = D.Curriculum("impulse", epochs=10, schedule="paper")
    assert [impulse.value(e) for e in range(11)] == pytest.approx(
        [0.25, 0.25, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.75, 0.75]
    )
    motion = D.Curriculum("motion", epochs=10, schedule="paper")
    assert [motion.value(e) for e in range(10)] == [4, 4, 4, 4, 6, 7, 9, 10, 10, 10]
    with pytest.raises(UserError, match="no scale for gaussian"):
        D.Curriculum("gaussian", 5, 50, schedule="paper")
    with pytest.raises(UserError, match="unknown curriculum schedule"):
        D.Curriculum("impulse", schedule="cosine")


def test_a_curriculum_from_a_range_spec():
    curriculum = D.Curriculum.from_spec("impulse:0.25-0.75:30", 10, "paper")
    assert (curriculum.start, curriculum.stop, curriculum.sigma) == (0.25, 0.75, 30.0)
    curriculum.set_epoch(5)
    assert curriculum.spec == "impulse:0.5:30"
    assert D.Curriculum.from_spec("gaussian:5-55", 3).value(2) == 55
    for spec in ("impulse:0.5", "gaussian:5-10,impulse:0.1-0.2", "motion:7", "ramp:5-50"):
        with pytest.raises(UserError, match="one impulse, motion or gaussian stage with a LOW-HIGH range"):
            D.Curriculum.from_spec(spec, 3)


def test_curriculum_variable_steers_the_tf_path(tf):
    curriculum = D.Curriculum("impulse", 0.0, 1.0, epochs=2)
    x = np.full((2, 32, 32, 1), 0.5, np.float32)
    fn = tf.function(lambda batch: curriculum.apply_tf(batch, seed=[0, 1]))
    assert np.array_equal(fn(x).numpy(), x)  # p = 0
    assert np.array_equal(curriculum(x, seed=0), x)
    curriculum.set_epoch(1)  # p = 1, no retracing needed
    assert float(curriculum.variable.numpy()) == 1.0
    assert np.any(fn(x).numpy() != x, -1).mean() > 0.98
    assert np.any(curriculum(x, seed=0) != x, -1).mean() > 0.98
