"""Models: `LNCA` (latent NCA) and the pixel-space `PixelNCA` baselines."""

from keras_lnca.models.lnca import LNCA
from keras_lnca.models.nca_model import NCAModel
from keras_lnca.models.pixel_nca import PixelNCA
