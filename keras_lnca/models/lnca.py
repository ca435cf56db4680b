import keras
from keras import ops

from keras_lnca.layers import DepthToSpace
from keras_lnca.layers import LatentDecoder
from keras_lnca.layers import LatentEncoder
from keras_lnca.layers import SpaceToDepth
from keras_lnca.models.checks import MAX_WIDTH
from keras_lnca.models.checks import check_int
from keras_lnca.models.nca_model import NCAModel
from keras_lnca.models.losses import LATENT_WEIGHT
from keras_lnca.models.losses import autoencoder_losses
from keras_lnca.models.losses import nca_losses
from keras_lnca.models.losses import weighted_mse


@keras.saving.register_keras_serializable(package="keras_lnca")
class LNCA(NCAModel):
    """Latent Neural Cellular Automaton for image restoration.

    `encoder → seed cells [latent-in | out = 0.5 | hidden = 0] → NCA steps in
    latent space → out channels → decoder (+ skip) → restored image`. The
    automaton runs on a grid `2**downsampling` times smaller per side than
    the image, which is where LNCA's memory and speed come from.

    Training has two phases, chosen with `set_phase`:

    * `"autoencoder"`: trains the encoder/decoder (the NCA is untouched) with
      the paper's losses: ×100 reconstruction of the clean and the degraded
      image; ×10 triplet loss `max(0, d(z_clean, z_degraded) −
      d(z_clean, z_negative) + 1)`, negatives being other clean images of the
      batch (a random cyclic shift: never an image with itself); ×10 task loss
      on the pixels where degraded ≠ clean; ×100 swap decoding —
      `decode(z_degraded, skip_clean)` must give the degraded image,
      `decode(z_clean, skip_degraded)` the clean one, and the two skips must
      agree — which keeps the corruption in the latent and out of the skip.
    * `"nca"`: the autoencoder is frozen (BatchNorm in inference mode); the
      NCA learns with ×100 pixel MSE, ×100 latent MSE of the out channels
      against `encode(clean)`, and penalties on out channels outside [0, 1]
      and hidden channels outside [−1, 1]; a sample pool persists cell states
      across batches (see `NCAModel`).

    `predict`, `evaluate` and `restore` always run the whole pipeline with
    `inference_steps` steps, on any height and width (reflect-padded to a
    multiple of `2**downsampling` and cropped back).

    Args:
        channels: int, 1 (gray) or 3 (RGB).
        cell: `"nafca"` (default), `"vitca"` or `"sobel"`.
        downsampling: int in {1, 2, 3}, stride-2 levels of the autoencoder.
        latent_channels: int, latent width (= the cell's input and out groups).
        hidden_channels: int, hidden channels of each cell.
        train_steps: `(low, high)`, per-sample step counts drawn in training.
        inference_steps: int, steps at inference.
        fire_rate: float, probability that a cell updates at each step.
        pool_size: int, entries in the sample pool (0 disables it).
        pool_image_size: int, training crop size the pool holds.
        pool_rate: float, fraction of a batch taken from the pool.
        autoencoder_filters: int, width of the autoencoder's intermediate
            levels (and skip); defaults to `latent_channels // 2`.
        autoencoder: `"learned"` (default, the paper's) or `"space_to_depth"`:
            a lossless, weight-free codec (`SpaceToDepth`/`DepthToSpace`)
            whose latent is each `2**downsampling` block of pixels stacked
            into channels (`latent_channels` is then `channels * 4**downsampling`);
            such a model has only the `"nca"` phase.
        cell_config: dict, extra arguments of the cell (e.g. `embed_dim`).
        out_seed: `"constant"` (the paper: out channels start at 0.5) or
            `"input"` (they start as a copy of the latent input, so the cells
            refine the degraded latent).
        noise_map: bool, a noise-level-aware model: inputs carry one more
            channel, a per-pixel map of the noise standard deviation on the
            [0, 1] scale (σ / 255), which joins the fixed channels of every
            cell (see `NCAModel`); `restore` builds it from `noise_level`.
        loss_balance: None (mean MSE) or `"psnr"`: the NCA phase's
            reconstruction terms weighted per sample so that training descends
            the mean PSNR (see `NCAModel`).
        color_space: None, or `"opponent"` for a colour model (with
            `autoencoder="space_to_depth"`) that restores the three channels
            of a decorrelated opponent space each as a gray image, with one
            rule (`keras_lnca.models.color_space`): the noise stays white
            with the same σ in each, and the signal gathers in luma.
        luma_guide: bool, with a `color_space`: every pass also reads the
            degraded image's luma, encoded as fixed channels of its cells
            after the noise level, so that the chroma passes can follow the
            edges luma shows (a model started from one without the guide
            starts with zero weights on it, and so restores as that one).
        self_ensemble: int, 1 (default), 2, 4 or 8: how many views of an
            image (flips; with 8, transposes too) `restore` averages by
            default, each view's output mapped back first. It costs that many
            forward passes. `restore` uses it (and so `lnca restore`,
            `lnca evaluate` and a preset card's figures); `predict`, `fit`
            and the exported files run one view.
        phase: `"autoencoder"` (default) or `"nca"`.
        seed: int, seed of the training schedule and masks.
        **kwargs: standard `keras.Model` arguments.

    Example:
    ```python
    import keras_lnca as kl

    model = kl.LNCA(channels=1)
    model.compile()
    model.fit(train_ds, epochs=5)           # phase "autoencoder"
    model.set_phase("nca")
    model.fit(train_ds, epochs=20)
    restored = model.predict(noisy)         # (N, H, W, 1) in [0, 1]
    ```

    Reference:
        Menta, Archetti, Matteucci, "Latent Neural Cellular Automata for
        Resource-Efficient Image Restoration", arXiv:2403.15525 (2024).
    """

    phases = ("autoencoder", "nca")

    def __init__(
        self,
        channels=3,
        cell="nafca",
        downsampling=2,
        latent_channels=16,
        hidden_channels=32,
        train_steps=(8, 32),
        inference_steps=64,
        fire_rate=1.0,
        pool_size=1024,
        pool_image_size=32,
        pool_rate=0.5,
        autoencoder_filters=None,
        autoencoder="learned",
        cell_config=None,
        out_seed="constant",
        noise_map=False,
        loss_balance=None,
        color_space=None,
        luma_guide=False,
        self_ensemble=1,
        phase=None,
        seed=None,
        **kwargs,
    ):
        if autoencoder not in ("learned", "space_to_depth"):
            raise ValueError(f"`autoencoder` must be 'learned' or 'space_to_depth', got {autoencoder!r}.")
        if color_space is not None and autoencoder != "space_to_depth":
            raise ValueError(
                "`color_space` needs `autoencoder='space_to_depth'` (the learned codec is trained on RGB)."
            )
        downsampling = check_int("downsampling", downsampling, 1, 3)
        latent_channels = check_int("latent_channels", latent_channels, 1, MAX_WIDTH)
        pool_image_size = check_int("pool_image_size", pool_image_size, 1, 4096)
        if autoencoder_filters is not None:
            autoencoder_filters = check_int("autoencoder_filters", autoencoder_filters, 1, MAX_WIDTH)
        if autoencoder == "space_to_depth":
            # Per pass: a colour model with a `color_space` restores each channel alone.
            latent_channels = (1 if color_space else channels) * 4**downsampling
            self.phases = ("nca",)
        self.downsampling = downsampling
        self.latent_channels = latent_channels
        self.autoencoder_filters = autoencoder_filters
        self.autoencoder = autoencoder
        if pool_image_size % (2**downsampling):
            raise ValueError(
                f"`pool_image_size` ({pool_image_size}) must be a multiple of "
                f"2**downsampling ({2**downsampling})."
            )
        super().__init__(
            channels=channels,
            cell=cell,
            hidden_channels=hidden_channels,
            train_steps=train_steps,
            inference_steps=inference_steps,
            fire_rate=fire_rate,
            pool_size=pool_size,
            pool_image_size=pool_image_size,
            pool_rate=pool_rate,
            cell_config=cell_config,
            out_seed=out_seed,
            noise_map=noise_map,
            loss_balance=loss_balance,
            color_space=color_space,
            luma_guide=luma_guide,
            self_ensemble=self_ensemble,
            phase=phase,
            seed=seed,
            **kwargs,
        )

    def _make_layers(self):
        if self.autoencoder == "space_to_depth":
            self.encoder = SpaceToDepth(self.grid_factor, name="encoder")
            self.decoder = DepthToSpace(self.grid_factor, self.pass_channels, name="decoder")
            return
        self.encoder = LatentEncoder(
            self.latent_channels, self.downsampling, filters=self.autoencoder_filters, name="encoder"
        )
        self.decoder = LatentDecoder(
            self.pass_channels,
            self.latent_channels,
            self.downsampling,
            filters=self.autoencoder_filters,
            name="decoder",
        )

    @property
    def cell_input_channels(self):
        return self.latent_channels

    @property
    def grid_factor(self):
        return 2**self.downsampling

    def build(self, input_shape=None):
        if self.built:  # weights do not depend on the input size; compile() builds too
            return
        image_shape = (None, None, None, self.pass_channels)
        if self.autoencoder == "learned":
            self.encoder.build(image_shape)
            skip_shape, latent_shape = self.encoder.compute_output_shape(image_shape)
            self.decoder.build((latent_shape, skip_shape))
        self._build_core()
        self.built = True

    def encode(self, images, training=False):
        if self.autoencoder == "space_to_depth":
            return None, self.encoder(images)
        skip, latent = self.encoder(images, training=training)
        return skip, latent

    def decode(self, out, context, training=False):
        if self.autoencoder == "space_to_depth":
            return self.decoder(out)
        return self.decoder([out, context], training=training)

    def _phase_trainables(self, phase):
        autoencoder = phase == "autoencoder"
        return {self.encoder: autoencoder, self.decoder: autoencoder, self.nca: not autoencoder}

    def _codec_radius(self):
        if self.autoencoder == "space_to_depth":
            return 0
        # Each 3x3 block reads one cell of its own resolution on each side.
        return sum(2**level for level in range(self.downsampling + 1)) * 2

    # ------------------------------------------------------------------
    # Training.
    # ------------------------------------------------------------------
    def _training_outputs(self, degraded, clean):
        if self.phase == "autoencoder":
            return self._autoencoder_outputs(degraded, clean)
        return self._nca_outputs(degraded, clean)

    def _autoencoder_outputs(self, degraded, clean):
        batch = ops.shape(clean)[0]
        skips, latents = self.encoder(ops.concatenate([clean, degraded], axis=0), training=True)
        skip_clean, skip_degraded = ops.split(skips, 2, axis=0)
        z_clean, z_degraded = ops.split(latents, 2, axis=0)
        # Reconstructions, then the two swap decodings, in one decoder pass.
        decoded = self.decoder(
            [
                ops.concatenate([z_clean, z_degraded, z_degraded, z_clean], axis=0),
                ops.concatenate([skip_clean, skip_degraded, skip_clean, skip_degraded], axis=0),
            ],
            training=True,
        )
        rec_clean, rec_degraded, swap_degraded, swap_clean = ops.split(decoded, 4, axis=0)
        shift = keras.random.randint((), 1, ops.maximum(batch, 2), seed=self.seed_generator)
        negatives = ops.take(z_clean, (ops.arange(batch) + shift) % batch, axis=0)
        return {
            "restored": rec_clean,
            "target": clean,
            "degraded": degraded,
            "rec_degraded": rec_degraded,
            "swap_degraded": swap_degraded,
            "swap_clean": swap_clean,
            "z_clean": z_clean,
            "z_degraded": z_degraded,
            "z_negative": negatives,
            "skip_clean": skip_clean,
            "skip_degraded": skip_degraded,
        }

    def _phase_losses(self, outputs):
        if self.phase == "nca":
            weights = self._sample_weights(outputs)
            losses = nca_losses(outputs, weights)
            if weights is not None and self.pass_channels != self.channels:
                # The latent is per pass: each image's channels, one after another.
                weights = ops.repeat(weights, self.channels // self.pass_channels, axis=0)
            losses["latent_loss"] = (
                LATENT_WEIGHT,
                weighted_mse(outputs["out"], outputs["out_target"], weights),
            )
            return losses
        return autoencoder_losses(outputs)

    def _loss_names(self, phase):
        if phase == "autoencoder":
            return ("reconstruction_loss", "triplet_loss", "task_loss", "swap_loss")
        return ("pixel_loss", "latent_loss", "out_overflow", "hidden_overflow")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "downsampling": self.downsampling,
                "latent_channels": self.latent_channels,
                "autoencoder_filters": self.autoencoder_filters,
                "autoencoder": self.autoencoder,
            }
        )
        return config
