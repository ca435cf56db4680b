"""Keras layers of keras-lnca: autoencoder blocks, cell rules, the NCA loop."""

from keras_lnca.layers.adj_conv import AdjConv
from keras_lnca.layers.adj_conv_transpose import AdjConvTranspose
from keras_lnca.layers.conv_cell import ConvCell
from keras_lnca.layers.depth_to_space import DepthToSpace
from keras_lnca.layers.latent_decoder import LatentDecoder
from keras_lnca.layers.latent_encoder import LatentEncoder
from keras_lnca.layers.nafca_cell import NAFCACell
from keras_lnca.layers.nca import NCA
from keras_lnca.layers.nca_cell import NCACell
from keras_lnca.layers.sobel_cell import SobelCell
from keras_lnca.layers.space_to_depth import SpaceToDepth
from keras_lnca.layers.vitca_cell import ViTCACell

CELLS = {"nafca": NAFCACell, "vitca": ViTCACell, "sobel": SobelCell, "conv": ConvCell}


def get_cell(name, input_channels, **kwargs):
    """Returns a cell by name (`"nafca"`, `"vitca"`, `"sobel"`, `"conv"`)."""
    try:
        cell_class = CELLS[name]
    except KeyError:
        raise ValueError(f"Unknown cell {name!r}; choose one of {sorted(CELLS)}.") from None
    return cell_class(input_channels=input_channels, **kwargs)
