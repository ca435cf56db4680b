"""The image shipped inside the package (`lnca demo`, preset cards, tests)."""

import importlib.resources
import pathlib

# The noise level of `lnca demo` and of the preset cards' demo figures (0-255 scale).
DEMO_SIGMA = 25.0


def demo_image(channels=1):
    """The embedded 256x256 demo image as float32 `H x W x channels` in [0, 1]."""
    from keras_lnca.data.io import load_image

    path = importlib.resources.files("keras_lnca") / "assets" / "demo_gray.png"
    return load_image(pathlib.Path(str(path)), channels=channels)
