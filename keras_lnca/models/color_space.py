"""The decorrelated (opponent) colour space in which colour models restore.

RGB channels are strongly correlated; noise added to each is not. An
orthogonal opponent transform, rows `(1, 1, 1) / √3`, `(1, 0, −1) / √2` and
`(1, −2, 1) / √6`, keeps white Gaussian noise white with the same σ in every
channel, while the signal gathers in the first channel (luma, √3 times the
amplitude of one RGB channel) and the two chroma channels are smooth. A
denoiser then meets luma at an effective σ / √3 and chroma where little
detail lives: worth +2.2 dB to BM3D on CBSD68 at σ = 25 (`ENVIRONMENT.md`).

The channels are scaled into [0, 1] for the automaton (the same rows,
rescaled, and 0.5 added to the chroma):

    luma   = (R + G + B) / 3            noise σ / √3
    chroma = (R − B) / 2 + 0.5          noise σ / √2
    chroma = (R − 2G + B) / 4 + 0.5     noise σ · √6 / 4

so each is restored as a gray image told its own noise level.
"""

import numpy as np
from keras import ops

# Columns: the luma and the two chroma channels, as functions of (R, G, B).
OPPONENT = np.array(
    [[1 / 3, 1 / 2, 1 / 4], [1 / 3, 0.0, -1 / 2], [1 / 3, -1 / 2, 1 / 4]], np.float32
)
OPPONENT_OFFSET = np.array([0.0, 0.5, 0.5], np.float32)
OPPONENT_INVERSE = np.linalg.inv(OPPONENT.astype(np.float64)).astype(np.float32)
# Standard deviation of each channel's noise per unit of RGB noise.
OPPONENT_NOISE_SCALES = np.sqrt(np.square(OPPONENT).sum(axis=0)).astype(np.float32)

COLOR_SPACES = (None, "opponent")


def to_opponent(rgb):
    """`(..., 3)` RGB in [0, 1] → the scaled opponent channels, in [0, 1]."""
    rgb = ops.convert_to_tensor(rgb)
    return ops.matmul(rgb, ops.cast(OPPONENT, rgb.dtype)) + ops.cast(OPPONENT_OFFSET, rgb.dtype)


def from_opponent(channels):
    """The inverse of `to_opponent`."""
    channels = ops.convert_to_tensor(channels)
    centred = channels - ops.cast(OPPONENT_OFFSET, channels.dtype)
    return ops.matmul(centred, ops.cast(OPPONENT_INVERSE, channels.dtype))
