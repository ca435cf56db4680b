"""Image degradations: noise and blur, deterministic under a seed.

Two code paths per degradation:

* numpy (`gaussian_noise`, `impulse_noise`, `motion_blur`, `kernel_blur`,
  `parse(spec)(x, seed=...)`): the reference, deterministic under
  `np.random.default_rng(seed)`; evaluation uses it (`degrade_for_eval`).
* TensorFlow (`tf_gaussian_noise`, `tf_impulse_noise`, `tf_motion_blur`,
  `tf_kernel_blur`, `Degradation.apply_tf`): stateless random ops with
  explicit seeds, for `tf.data` pipelines on any Keras backend. Same
  distributions as the numpy path; TensorFlow is imported on first use.

Noise levels are on the 0-255 scale; images are floats in [0, 1]. Gaussian
noise is never clipped by these functions; impulse noise always is.
"""

from keras_lnca.degradations.blur import data_dir
from keras_lnca.degradations.blur import kernel_blur
from keras_lnca.degradations.blur import load_kernels
from keras_lnca.degradations.blur import motion_blur
from keras_lnca.degradations.blur import motion_kernel
from keras_lnca.degradations.blur import tf_kernel_blur
from keras_lnca.degradations.blur import tf_motion_blur
from keras_lnca.degradations.curriculum import Curriculum
from keras_lnca.degradations.degradation import Degradation
from keras_lnca.degradations.degradation import degrade_for_eval
from keras_lnca.degradations.degradation import parse
from keras_lnca.degradations.estimate import estimate_noise_level
from keras_lnca.degradations.estimate import estimate_noise_map
from keras_lnca.degradations.noise import gaussian_noise
from keras_lnca.degradations.noise import impulse_noise
from keras_lnca.degradations.noise import tf_gaussian_noise
from keras_lnca.degradations.noise import tf_impulse_noise

__all__ = [
    "Curriculum",
    "Degradation",
    "data_dir",
    "degrade_for_eval",
    "estimate_noise_level",
    "estimate_noise_map",
    "gaussian_noise",
    "impulse_noise",
    "kernel_blur",
    "load_kernels",
    "motion_blur",
    "motion_kernel",
    "parse",
    "tf_gaussian_noise",
    "tf_impulse_noise",
    "tf_kernel_blur",
    "tf_motion_blur",
]
