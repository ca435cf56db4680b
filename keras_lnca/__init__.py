"""keras-lnca: Latent Neural Cellular Automata for image restoration (Keras 3)."""

__version__ = "0.1.0"

from keras_lnca import layers
from keras_lnca import optimizers
from keras_lnca.models import LNCA
from keras_lnca.models import PixelNCA
