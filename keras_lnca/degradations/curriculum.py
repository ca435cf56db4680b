"""`Curriculum`: a degradation whose intensity rises epoch by epoch."""

from keras_lnca.degradations import _common
from keras_lnca.degradations import blur
from keras_lnca.degradations import noise
from keras_lnca.degradations.degradation import Degradation
from keras_lnca.degradations.degradation import GaussianStage
from keras_lnca.degradations.degradation import ImpulseStage
from keras_lnca.degradations.degradation import MotionStage
from keras_lnca.degradations.degradation import parse
from keras_lnca.errors import UserError

# The LNCA paper's schedules: impulse p 0.25 -> 0.75, motion-blur size 4 -> 10.
PAPER_RANGES = {"impulse": (0.25, 0.75), "motion": (4, 10)}
# The official code's form (`Utils/trainer_utils.py`, `DataGenerator`): the
# intensity of epoch e of E is clip(e / E * scale, low, high), with scale 1
# for impulse p and 15 for the motion-blur size (truncated to an integer).
PAPER_SCALES = {"impulse": 1.0, "motion": 15.0}
SCHEDULES = ("linear", "paper")


class Curriculum:
    """A degradation whose intensity rises over the epochs.

    With `schedule="linear"` (default), `value(epoch)` goes from `start`
    (epoch 0) to `stop` (epoch `epochs - 1`) and stays at `stop` afterwards;
    motion-blur sizes are rounded to integers. With `schedule="paper"` it
    follows the official LNCA code: `clip(epoch / epochs * scale, start,
    stop)`, with the paper's scale (1 for impulse p, 15 for motion sizes,
    which are truncated), so the first and last quarters of the epochs stay
    at `start` and `stop`. The curriculum is itself a degradation, usable
    wherever a spec is (`folder_dataset`, `FolderPyDataset`): its numpy path
    reads the current epoch's value from a Python attribute, its TensorFlow
    path from a `tf.Variable`, so a `tf.data` map traced once follows the
    schedule. `keras_lnca.callbacks.CurriculumCallback` calls `set_epoch` at
    the start of every epoch, on any backend.

    Args:
        kind: `"impulse"` (p), `"motion"` (kernel size) or `"gaussian"`
            (sigma, 0-255 scale).
        start: the first epoch's intensity; the paper's value when `None`
            (impulse 0.25, motion 4; required for gaussian).
        stop: the last epoch's intensity (paper: impulse 0.75, motion 10).
        epochs: the number of epochs over which the intensity rises.
        sigma: impulse standard deviation on the 0-255 scale (impulse only).
        angle: motion direction in degrees, `None` for random (motion only).
        schedule: `"linear"` or `"paper"` (see above; impulse and motion
            only).

    Example:

    >>> from keras_lnca.degradations import Curriculum
    >>> curriculum = Curriculum("impulse", epochs=3)
    >>> [curriculum.value(e) for e in range(4)]
    [0.25, 0.5, 0.75, 0.75]
    >>> paper = Curriculum("impulse", epochs=10, schedule="paper")
    >>> [round(paper.value(e), 2) for e in (0, 2, 3, 5, 7, 9)]
    [0.25, 0.25, 0.3, 0.5, 0.7, 0.75]

    Reference:
        Menta, Archetti, Matteucci, arXiv:2403.15525, and its official code
        (`Menta99/LatentNeuralCellularAutomata`, `Utils/trainer_utils.py`).
    """

    def __init__(self, kind, start=None, stop=None, epochs=10, *, sigma=51.0, angle=None, schedule="linear"):
        if kind not in ("impulse", "motion", "gaussian"):
            raise UserError(f"unknown curriculum kind {kind!r}: expected impulse, motion or gaussian")
        if schedule not in SCHEDULES:
            raise UserError(f"unknown curriculum schedule {schedule!r}: expected {' or '.join(SCHEDULES)}")
        if schedule == "paper" and kind not in PAPER_SCALES:
            raise UserError(f"the paper's schedule has no scale for {kind}: use impulse or motion")
        default = PAPER_RANGES.get(kind, (None, None))
        start = default[0] if start is None else start
        stop = default[1] if stop is None else stop
        if start is None or stop is None:
            raise UserError(f"a {kind} curriculum needs start and stop")
        if int(epochs) < 1:
            raise UserError(f"epochs must be >= 1, got {epochs}")
        self.kind = kind
        self.start = start
        self.stop = stop
        self.epochs = int(epochs)
        self.sigma = float(sigma)
        self.angle = angle
        self.schedule = schedule
        for value in (start, stop):
            self._stage(value)  # validates the range of both ends
        self._epoch = 0
        self._variable = None

    @classmethod
    def from_spec(cls, spec, epochs, schedule="linear"):
        """The curriculum of a one-stage range spec, e.g. `"impulse:0.25-0.75"`:
        its intensity rises over `epochs` from the range's low end to its high end
        instead of being drawn per crop."""
        (stage, *more) = parse(spec).stages
        level = {"impulse": "p", "motion": "size", "gaussian": "sigma"}.get(stage.kind)
        value = getattr(stage, level, None) if level else None
        if more or not isinstance(value, tuple) or type(stage) not in (ImpulseStage, MotionStage, GaussianStage):
            raise UserError(
                f"a curriculum needs one impulse, motion or gaussian stage with a LOW-HIGH range, got {spec!r:.60}"
            )
        options = {"sigma": stage.sigma} if stage.kind == "impulse" else {}
        if stage.kind == "motion":
            options["angle"] = stage.angle
        return cls(stage.kind, value[0], value[1], epochs, schedule=schedule, **options)

    def value(self, epoch):
        """The intensity for `epoch` (0-based)."""
        if self.schedule == "paper":
            low, high = sorted((self.start, self.stop))
            value = min(max(max(int(epoch), 0) / self.epochs * PAPER_SCALES[self.kind], low), high)
            return int(value) if self.kind == "motion" else float(value)
        fraction = min(max(int(epoch), 0), self.epochs - 1) / max(self.epochs - 1, 1)
        value = self.start + (self.stop - self.start) * fraction
        return int(round(value)) if self.kind == "motion" else float(value)

    @property
    def epoch(self):
        """The current epoch (set by `set_epoch`)."""
        return self._epoch

    @property
    def current(self):
        """The current epoch's intensity."""
        return self.value(self._epoch)

    def set_epoch(self, epoch):
        """Moves to `epoch`: updates the Python value and the `tf.Variable`."""
        self._epoch = int(epoch)
        if self._variable is not None:
            self._variable.assign(float(self.current))

    @property
    def variable(self):
        """The `tf.Variable` (float32 scalar) that the TensorFlow path reads.

        Created on first use, outside any graph being traced.
        """
        if self._variable is None:
            tf = _common.tf_module()
            with tf.init_scope():
                self._variable = tf.Variable(
                    float(self.current), trainable=False, dtype=tf.float32,
                    name=f"curriculum_{self.kind}",
                )
        return self._variable

    def _stage(self, value):
        if self.kind == "impulse":
            return ImpulseStage(value, self.sigma)
        if self.kind == "motion":
            return MotionStage(value, self.angle)
        return GaussianStage(value)

    @property
    def kinds(self):
        """The stage kinds, as `Degradation.kinds`: `(kind,)`."""
        return (self.kind,)

    @property
    def spec(self):
        """The spec of the current epoch's degradation, e.g. `"impulse:0.5"`."""
        return self._stage(self.current).spec()

    def degradation(self, epoch=None):
        """The fixed `Degradation` of `epoch` (default: the current epoch)."""
        value = self.current if epoch is None else self.value(epoch)
        return Degradation([self._stage(value)])

    def apply(self, x, *, seed=None, index=0):
        """numpy path at the current intensity; see `Degradation.apply`."""
        return self.degradation().apply(x, seed=seed, index=index)

    def __call__(self, x, *, seed=None, index=0):
        """numpy path at the current intensity."""
        return self.apply(x, seed=seed, index=index)[0]

    def apply_tf(self, x, *, seed):
        """TensorFlow path reading the intensity from `variable`."""
        tf = _common.tf_module()
        level = tf.cast(self.variable, tf.float64)
        if self.kind == "impulse":
            return noise.tf_impulse_noise(x, level, self.sigma, seed=seed)
        if self.kind == "motion":
            return blur.tf_motion_blur(x, level, self.angle, seed=seed)
        return noise.tf_gaussian_noise(x, level, seed=seed)

    def __repr__(self):
        return (
            f"Curriculum({self.kind!r}, start={self.start}, stop={self.stop}, "
            f"epochs={self.epochs}, schedule={self.schedule!r})"
        )
