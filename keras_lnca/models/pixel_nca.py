import keras

from keras_lnca.models.nca_model import NCAModel


@keras.saving.register_keras_serializable(package="keras_lnca")
class PixelNCA(NCAModel):
    """A neural cellular automaton that runs directly on pixels.

    One cell per pixel, state `[pixel | out = 0.5 | hidden = 0]`; the out
    channels, clipped to [0, 1] at inference, are the restored image. This is
    ViTCA (with `cell="vitca"`, Tesfaldet et al. 2022) or a Growing-NCA-style
    denoiser (`cell="sobel"`): the pixel-space baselines LNCA is compared
    against. Same training API as `LNCA` (one phase, `"nca"`, with the sample
    pool), same `predict` and `restore`.

    Args:
        channels: int, 1 (gray) or 3 (RGB).
        cell: `"vitca"` (default) or `"sobel"` (or `"nafca"`).
        hidden_channels: int, hidden channels per cell. Defaults to 32.
        train_steps, inference_steps, fire_rate, pool_size, pool_image_size,
        pool_rate, cell_config, self_ensemble, seed: as in `LNCA`.
        **kwargs: standard `keras.Model` arguments.

    Example:
    ```python
    baseline = kl.PixelNCA(channels=3, cell="vitca")
    baseline.compile()
    baseline.fit(train_ds, epochs=10)
    ```

    Reference:
        Tesfaldet, Nowrouzezahrai, Pal, "Attention-based Neural Cellular
        Automata", NeurIPS 2022; Mordvintsev et al., "Growing Neural Cellular
        Automata", Distill 2020.
    """

    def __init__(self, channels=3, cell="vitca", hidden_channels=32, **kwargs):
        super().__init__(channels=channels, cell=cell, hidden_channels=hidden_channels, **kwargs)

    @property
    def cell_input_channels(self):
        return self.pass_channels

    def build(self, input_shape=None):
        if self.built:  # weights do not depend on the input size; compile() builds too
            return
        self._build_core()
        self.built = True

    def encode(self, images, training=False):
        return None, images

    def decode(self, out, context, training=False):
        return out
