"""`Degradation`: a parsed degradation spec such as `"blur:levin09,gaussian:2.55"`."""

import re

import numpy as np

from keras_lnca.degradations import _common
from keras_lnca.degradations import blur
from keras_lnca.degradations import noise
from keras_lnca.errors import UserError

GRAMMAR = (
    "stages joined by commas, applied left to right: gaussian:SIGMA, "
    "gaussian:LOW-HIGH, ramp:LOW-HIGH (sigma rising left to right), impulse:P[:SIGMA], motion:SIZE[:ANGLE], motion:LOW-HIGH, "
    "blur:levin09[:I], blur:kernels12[:I], blur:FILE.npz[:I] "
    "(noise levels on the 0-255 scale)"
)
_NUMBER = re.compile(r"^(\d+(\.\d*)?|\.\d+)$")


def _format(value):
    if _common.is_range(value):
        return f"{_format(value[0])}-{_format(value[1])}"
    return f"{float(value):g}"


class GaussianStage:
    kind = "gaussian"

    def __init__(self, sigma):
        self.sigma = _common.check_value(sigma, "gaussian sigma")

    def spec(self):
        return f"gaussian:{_format(self.sigma)}"

    def numpy(self, batch, rng, index):
        out, sigmas = noise.gaussian_array(batch, self.sigma, rng)
        return out, [{"sigma": float(s)} for s in sigmas]

    def tf(self, batch, seed):
        return noise.tf_gaussian_noise(batch, self.sigma, seed=seed)


class RampStage:
    """Gaussian noise whose σ ramps linearly across the image, left to right.

    Its kind is `"gaussian"` (white noise of known level at each pixel); its
    `info["sigma"]` is the `H x W` map of levels, which noise-level-aware
    models are told as is and BM3D as its mean.
    """

    kind = "gaussian"

    def __init__(self, low, high):
        self.low = float(_common.check_value(low, "ramp low"))
        self.high = float(_common.check_value(high, "ramp high"))

    def spec(self):
        return f"ramp:{_format(self.low)}-{_format(self.high)}"

    def numpy(self, batch, rng, index):
        out, levels = noise.ramp_array(batch, self.low, self.high, rng)
        return out, [{"sigma": levels} for _ in range(batch.shape[0])]

    def tf(self, batch, seed):
        tf = _common.tf_module()
        width = tf.shape(batch)[2]
        levels = tf.cast(tf.linspace(self.low, self.high, width), batch.dtype) / 255.0
        noise_values = tf.random.stateless_normal(tf.shape(batch), seed, dtype=batch.dtype)
        return batch + noise_values * levels[None, None, :, None]


class ImpulseStage:
    kind = "impulse"

    def __init__(self, p, sigma=51.0):
        self.p = _common.check_value(p, "impulse p", 0.0, 1.0)
        self.sigma = float(_common.check_value(sigma, "impulse sigma"))

    def spec(self):
        suffix = "" if self.sigma == 51.0 else f":{_format(self.sigma)}"
        return f"impulse:{_format(self.p)}{suffix}"

    def numpy(self, batch, rng, index):
        out, ps = noise.impulse_array(batch, self.p, self.sigma, rng)
        return out, [{"p": float(p), "impulse_sigma": self.sigma} for p in ps]

    def tf(self, batch, seed):
        return noise.tf_impulse_noise(batch, self.p, self.sigma, seed=seed)


class MotionStage:
    kind = "motion"

    def __init__(self, size, angle=None):
        self.size = _common.check_value(size, "motion size", 1.0, MAX_MOTION_SIZE)
        self.angle = angle

    def spec(self):
        suffix = "" if self.angle is None else f":{_format(self.angle)}"
        return f"motion:{_format(self.size)}{suffix}"

    def numpy(self, batch, rng, index):
        out, kernels = blur.motion_array(batch, self.size, self.angle, rng)
        return out, [{"kernel": k} for k in kernels]

    def tf(self, batch, seed):
        return blur.tf_motion_blur(batch, self.size, self.angle, seed=seed)


class _KernelSet:
    kind = "blur"

    def __init__(self, name, index=None):
        self.name = name
        self.kernels = blur.load_kernels(name)
        if index is not None and not 0 <= index < len(self.kernels):
            raise UserError(
                f"blur kernel index {index} out of range: {name!r} has {len(self.kernels)} kernels"
            )
        self.index = index
        self._stacked = blur.stack_kernels(self.kernels)

    def spec(self):
        return f"blur:{self.name}" + ("" if self.index is None else f":{self.index}")

    def numpy(self, batch, rng, index):
        count = len(self.kernels)
        if self.index is None:
            chosen = [self.kernels[(index + j) % count] for j in range(batch.shape[0])]
        else:
            chosen = [self.kernels[self.index]] * batch.shape[0]
        return blur.convolve_array(batch, chosen), [{"kernel": k} for k in chosen]

    def tf(self, batch, seed):
        tf = _common.tf_module()
        if self.index is not None:
            return blur.tf_kernel_blur(batch, self._stacked[self.index])
        # Training draws a kernel per image (evaluation cycles through them).
        n = tf.shape(batch)[0]
        which = tf.random.stateless_uniform(
            [n], seed, minval=0, maxval=len(self.kernels), dtype=tf.int32
        )
        return blur.tf_kernel_blur(batch, tf.gather(tf.constant(self._stacked), which))


# The largest motion-blur kernel (pixels per side) a spec may ask for.
MAX_MOTION_SIZE = 255


def _number(text, what):
    if not _NUMBER.match(text):
        raise UserError(f"{what} {text!r} is not a non-negative number; {GRAMMAR}")
    return float(text)


def _level(text, what):
    if text.startswith("-"):
        raise UserError(f"{what} {text} is negative; {GRAMMAR}")
    if "-" in text:
        low, _, high = text.partition("-")
        return (_number(low, what), _number(high, what))
    return _number(text, what)


def _stage(text):
    name, _, rest = text.partition(":")
    name = name.strip().lower()
    args = [a.strip() for a in rest.split(":")] if rest else []
    if name in ("gaussian", "ramp", "impulse", "motion", "blur") and not args:
        raise UserError(f"{name!r} needs a value; {GRAMMAR}")
    if name == "gaussian" and len(args) == 1:
        return GaussianStage(_level(args[0], "sigma"))
    if name == "ramp" and len(args) == 1:
        level = _level(args[0], "ramp sigma")
        if not _common.is_range(level):
            raise UserError(f"ramp needs LOW-HIGH, got {args[0]!r}; {GRAMMAR}")
        return RampStage(*level)
    if name == "impulse" and len(args) <= 2:
        p = _level(args[0], "p")
        sigma = _number(args[1], "sigma") if len(args) == 2 else 51.0
        return ImpulseStage(p, sigma)
    if name == "motion" and len(args) <= 2:
        size = _level(args[0], "size")
        angle = _number(args[1], "angle") if len(args) == 2 else None
        return MotionStage(size, angle)
    if name == "blur" and len(args) <= 2:
        index = None
        if len(args) == 2:
            if not (args[1].isascii() and args[1].isdigit() and len(args[1]) <= 6):
                raise UserError(f"kernel index {args[1]!r} is not an integer; {GRAMMAR}")
            index = int(args[1])
        return _KernelSet(args[0], index)
    raise UserError(f"cannot read stage {text.strip()!r}; {GRAMMAR}")


class Degradation:
    """A chain of degradations, applied left to right, with two code paths.

    Build one with `keras_lnca.degradations.parse(spec)`. Calling it runs the
    numpy reference path (deterministic under a seed); `apply_tf` runs the
    TensorFlow path for `tf.data` pipelines (stateless random ops, same
    distributions, different numbers).

    Neither path clips Gaussian noise (impulse noise is clipped by
    definition). For `blur:levin09` without an index, the numpy path gives
    image `i` (counted from `index`) kernel `i mod 8`; the TensorFlow path
    draws one kernel per image uniformly.

    Args:
        stages: the parsed stages.
        spec: the spec string it came from (canonicalised when omitted).

    Example:

    >>> import numpy as np
    >>> from keras_lnca.degradations import parse
    >>> degrade = parse("motion:7,gaussian:2.55")
    >>> noisy = degrade(np.random.rand(32, 32, 3), seed=0)
    >>> noisy.shape
    (32, 32, 3)
    """

    def __init__(self, stages, spec=None):
        if not stages:
            raise UserError(f"invalid degradation {spec!r}: no stages; {GRAMMAR}")
        self._stages = tuple(stages)
        self._spec = spec or ",".join(s.spec() for s in self._stages)

    @property
    def spec(self):
        """The spec string."""
        return self._spec

    @property
    def stages(self):
        """The stages in order (`GaussianStage`, `ImpulseStage`, ...)."""
        return self._stages

    @property
    def kinds(self):
        """The stage kinds in order: "gaussian", "impulse", "motion", "blur"."""
        return tuple(s.kind for s in self._stages)

    def apply(self, x, *, seed=None, index=0):
        """numpy path with the parameters it drew.

        Args:
            x: float image(s) in [0, 1], shape `HxW`, `HxWxC` or `NxHxWxC`.
            seed: anything `np.random.default_rng` accepts; one generator
                feeds all stages in order.
            index: the index of the (first) image, which picks its kernel in
                `blur:levin09` / `blur:kernels12`.

        Returns:
            `(degraded, info)`: the degraded image(s) (shape and dtype of
            `x`) and one dict per image with what was drawn: `"sigma"`
            (Gaussian, 0-255 scale), `"p"`, `"kernel"` (the blur kernel).
        """
        batch, shape = _common.as_batch(x)
        rng = np.random.default_rng(seed)
        info = [{} for _ in range(batch.shape[0])]
        for stage in self._stages:
            batch, stage_info = stage.numpy(batch, rng, int(index))
            for record, extra in zip(info, stage_info):
                record.update(extra)
        return batch.reshape(shape), info

    def __call__(self, x, *, seed=None, index=0):
        """numpy path: returns the degraded image(s); see `apply`."""
        return self.apply(x, seed=seed, index=index)[0]

    def apply_tf(self, x, *, seed):
        """TensorFlow path, for `tf.data` maps.

        Args:
            x: float tensor, `HxWxC` or `NxHxWxC`.
            seed: an int or a shape-`[2]` integer tensor (stateless ops).

        Returns:
            A tensor like `x`.
        """
        batch, unbatch = _common.tf_as_batch(x)
        for stage, stage_seed in zip(self._stages, _common.tf_split(seed, len(self._stages))):
            batch = stage.tf(batch, stage_seed)
        return unbatch(batch)

    def __repr__(self):
        return f"Degradation({self._spec!r})"


def parse(spec):
    """Parses a degradation spec into a callable `Degradation`.

    Grammar: stages joined by commas, applied left to right; noise levels on
    the 0-255 scale. `gaussian:25`, `gaussian:0-50` (blind: drawn per
    image), `impulse:0.5` (probability p; optional `:SIGMA`, default 51),
    `motion:7` (kernel size, seeded random angle; optional `:ANGLE`),
    `blur:levin09` (image i gets kernel i mod 8), `blur:levin09:3`,
    `blur:kernels12`, e.g. `blur:levin09,gaussian:2.55`.

    Args:
        spec: the spec string (or a `Degradation`, returned as is).

    Returns:
        A `Degradation`, called as `f(x, *, seed=None, index=0)`.

    Raises:
        keras_lnca.errors.UserError: with a one-line message for a bad spec.

    Example:

    >>> from keras_lnca.degradations import parse
    >>> parse("blur:levin09:3,gaussian:2.55").kinds  # doctest: +SKIP
    ('blur', 'gaussian')
    """
    if isinstance(spec, Degradation):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise UserError(f"invalid degradation {spec!r}: empty; {GRAMMAR}")
    try:
        stages = [_stage(part) for part in spec.split(",")]
    except UserError as error:
        raise UserError(f"invalid degradation {spec!r:.80}: {error}") from None
    return Degradation(stages, spec.strip())


def degrade_for_eval(images, spec, seed=0, *, return_info=False):
    """Degrades evaluation images under the evaluation noise contract.

    Image `i` (in the order given: pass them in sorted file order) is
    degraded with a fresh `np.random.default_rng(seed)` and `index=i`, so
    its noise depends only on the seed and its size (as in the DnCNN
    protocol), its blur kernel on its position, and every table is the same
    on every backend. Gaussian noise is not clipped.

    Args:
        images: an iterable of float arrays in [0, 1] (`HxW` or `HxWxC`).
        spec: a spec string or a `Degradation`.
        seed: the evaluation seed (default 0).
        return_info: also yield the dict of drawn parameters (see
            `Degradation.apply`).

    Yields:
        The degraded arrays (float, unclipped), or `(degraded, info)` pairs.

    Example:

    >>> import numpy as np
    >>> from keras_lnca.degradations import degrade_for_eval
    >>> clean = [np.full((8, 8), 0.5), np.full((8, 8), 0.2)]
    >>> noisy = list(degrade_for_eval(clean, "gaussian:25"))
    """
    degradation = parse(spec)
    for i, image in enumerate(images):
        degraded, info = degradation.apply(image, seed=np.random.default_rng(seed), index=i)
        yield (degraded, info[0]) if return_info else degraded
