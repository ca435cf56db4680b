"""The losses of both training phases, and their weights (the official LNCA code's).

Autoencoder phase (`LNCA`): reconstruction of the clean and the degraded
image, a triplet loss on the latents, a task loss on the changed pixels and
the swap decodings. NCA phase (`NCAModel`): pixel MSE of the restored image,
latent MSE of the out channels (LNCA), and penalties on out channels outside
[0, 1] and hidden channels outside [-1, 1].
"""

from keras import ops

# NCA phase.
PIXEL_WEIGHT = 100.0
LATENT_WEIGHT = 100.0
OUT_OVERFLOW_WEIGHT = 1.0
HIDDEN_OVERFLOW_WEIGHT = 1.0
# Autoencoder phase.
RECONSTRUCTION_WEIGHT = 100.0
TRIPLET_WEIGHT = 10.0
TRIPLET_MARGIN = 1.0
TASK_WEIGHT = 10.0
SWAP_WEIGHT = 100.0


def mse(a, b):
    """Mean squared error over every element."""
    return ops.mean(ops.square(a - b))


def overflow(x, low, high):
    """Mean absolute distance of `x` from the interval [low, high]."""
    return ops.mean(ops.abs(x - ops.clip(x, low, high)))


def per_sample_distance(a, b):
    """Mean squared distance per sample of a batch."""
    return ops.mean(ops.square(a - b), axis=tuple(range(1, len(a.shape))))


def nca_losses(outputs):
    """The NCA phase's terms `{name: (weight, value)}` from a training forward pass
    (`restored`/`target` images, `out` and `hidden` channels of the final state)."""
    return {
        "pixel_loss": (PIXEL_WEIGHT, mse(outputs["restored"], outputs["target"])),
        "out_overflow": (OUT_OVERFLOW_WEIGHT, overflow(outputs["out"], 0.0, 1.0)),
        "hidden_overflow": (HIDDEN_OVERFLOW_WEIGHT, overflow(outputs["hidden"], -1.0, 1.0)),
    }
