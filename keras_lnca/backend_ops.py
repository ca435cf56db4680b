"""The few places where keras-lnca needs backend-specific code.

Everything else is written with `keras.ops`. Kept in one small module so that
a reader can see every backend special case at once.
"""

import keras
from keras import ops


def pad_to_multiple(x, multiple):
    """Reflect-pads the bottom and right of NHWC `x` to a multiple of `multiple`.

    Returns the padded tensor. With static spatial sizes (JAX, torch, most
    TensorFlow traces) the pad amounts are Python ints; TensorFlow graphs with
    unknown height/width get the same padding through `tf.pad`, because
    `keras.ops.pad` wants static pad widths.
    """
    if multiple == 1:
        return x
    height, width = x.shape[1], x.shape[2]
    if height is not None and width is not None:
        pad_h, pad_w = -height % multiple, -width % multiple
        if pad_h == 0 and pad_w == 0:
            return x
        mode = "reflect" if height > pad_h and width > pad_w else "constant"
        return ops.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode=mode)
    if keras.backend.backend() != "tensorflow":
        raise ValueError("Spatial dimensions must be known outside TensorFlow graphs.")
    import tensorflow as tf

    shape = tf.shape(x)
    pad_h, pad_w = -shape[1] % multiple, -shape[2] % multiple
    return tf.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="REFLECT")
