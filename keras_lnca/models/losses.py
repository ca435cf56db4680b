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


# `psnr_balance`: per-sample MSEs below this count as this (a 50 dB cap), so
# that a perfectly restored sample cannot take the whole batch's weight.
PSNR_BALANCE_FLOOR = 1e-5


def psnr_balance(restored, target):
    """Per-sample weights that make a batch's MSE descend like its mean PSNR.

    The weights are `1 / MSE_i` of each sample (held constant, floored at
    `PSNR_BALANCE_FLOOR`), normalised to mean 1, so `mean(w_i * MSE_i)` has
    the gradient of `mean(log MSE_i)` up to scale: every sample counts in
    decibels. Without it, a batch that mixes noise levels is ruled by its
    noisiest samples, whose errors are largest.
    """
    errors = ops.stop_gradient(per_sample_distance(restored, target))
    weights = 1.0 / ops.maximum(errors, PSNR_BALANCE_FLOOR)
    return weights / ops.mean(weights)


def weighted_mse(a, b, weights=None):
    """MSE, each sample weighted by `weights` (None: plain `mse`)."""
    if weights is None:
        return mse(a, b)
    return ops.mean(weights * per_sample_distance(a, b))


def nca_losses(outputs, weights=None):
    """The NCA phase's terms `{name: (weight, value)}` from a training forward pass
    (`restored`/`target` images, `out` and `hidden` channels of the final state);
    `weights` are optional per-sample weights of the pixel term (`psnr_balance`)."""
    return {
        "pixel_loss": (PIXEL_WEIGHT, weighted_mse(outputs["restored"], outputs["target"], weights)),
        "out_overflow": (OUT_OVERFLOW_WEIGHT, overflow(outputs["out"], 0.0, 1.0)),
        "hidden_overflow": (HIDDEN_OVERFLOW_WEIGHT, overflow(outputs["hidden"], -1.0, 1.0)),
    }


def autoencoder_losses(outputs):
    """The autoencoder phase's terms `{name: (weight, value)}` from its forward
    pass: reconstruction of the clean and the degraded image, a triplet loss
    that pulls the degraded latent to the clean one and away from another
    image's (`z_negative`), the reconstruction of the changed pixels (task), and
    the swap decodings (a clean latent with degraded skips and the reverse)."""
    clean, degraded = outputs["target"], outputs["degraded"]
    distance = per_sample_distance
    triplet = ops.mean(
        ops.maximum(
            distance(outputs["z_clean"], outputs["z_degraded"])
            - distance(outputs["z_clean"], outputs["z_negative"])
            + TRIPLET_MARGIN,
            0.0,
        )
    )
    changed = ops.cast(ops.not_equal(degraded, clean), degraded.dtype)
    return {
        "reconstruction_loss": (
            RECONSTRUCTION_WEIGHT,
            0.5 * (mse(outputs["restored"], clean) + mse(outputs["rec_degraded"], degraded)),
        ),
        "triplet_loss": (TRIPLET_WEIGHT, triplet),
        "task_loss": (TASK_WEIGHT, mse(outputs["rec_degraded"] * changed, degraded * changed)),
        "swap_loss": (
            SWAP_WEIGHT,
            mse(outputs["skip_clean"], outputs["skip_degraded"])
            + mse(outputs["swap_degraded"], degraded)
            + mse(outputs["swap_clean"], clean),
        ),
    }
