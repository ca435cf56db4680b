"""Keras callbacks of keras-lnca.

* `ProfilerCallback`: latency, images per second and peak memory in `logs`.
* `CurriculumCallback`: moves a degradation `Curriculum` one epoch at a time.

Each callback lives in its own module of this package, gathered under
`keras_lnca.callbacks`.
"""

from keras_lnca.callbacks.curriculum_callback import CurriculumCallback
from keras_lnca.callbacks.profiler_callback import ProfilerCallback

__all__ = ["CurriculumCallback", "ProfilerCallback"]
