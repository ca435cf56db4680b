"""Layer tests, one class per layer, through the shared test case (`tests/test_case.py`):
shapes, the JSON config round trip with identical outputs and a one-step fit, then each
layer's own properties. `ConvCell` has its own file, `test_conv_cell.py`."""

import keras
import numpy as np
import pytest

import keras_lnca as kl
from test_case import TestCase
from test_case import random_input
from test_case import to_numpy


def _perturb(layer, amount):
    """Moves every trainable weight, so that zero-initialised heads do something."""
    for w in layer.trainable_weights:
        w.assign(to_numpy(w) + amount)


class TestAdjConv(TestCase):
    @pytest.mark.parametrize("strides,expected", [(1, (2, 16, 16, 8)), (2, (2, 8, 8, 8))])
    def test_layer_basics(self, strides, expected):
        self.run_layer_test(
            kl.layers.AdjConv, dict(filters=8, strides=strides, dropout=0.1),
            random_input((2, 16, 16, 3)), expected,
        )

    def test_without_batch_norm_has_no_norm_weights(self):
        layer = kl.layers.AdjConv(4, batch_norm=False)
        layer(random_input((1, 8, 8, 3)))
        assert len(layer.weights) == 2


class TestAdjConvTranspose(TestCase):
    def test_layer_basics(self):
        self.run_layer_test(
            kl.layers.AdjConvTranspose, dict(filters=3, strides=2),
            random_input((2, 8, 8, 8)), (2, 16, 16, 3),
        )

    def test_sigmoid_output_in_unit_range(self):
        out = to_numpy(kl.layers.AdjConvTranspose(3, strides=2, activation="sigmoid")(
            random_input((2, 8, 8, 8))))
        assert out.min() >= 0 and out.max() <= 1


class TestLatentEncoder(TestCase):
    @pytest.mark.parametrize("downsampling", [1, 2, 3])
    def test_layer_basics(self, downsampling):
        factor = 2**downsampling
        self.run_layer_test(
            kl.layers.LatentEncoder, dict(latent_channels=12, downsampling=downsampling),
            random_input((2, 32, 32, 3)),
            [(2, 16, 16, 6), (2, 32 // factor, 32 // factor, 12)],  # (skip, latent)
        )

    def test_rejects_bad_downsampling(self):
        with pytest.raises(ValueError, match="downsampling"):
            kl.layers.LatentEncoder(downsampling=4)

    def test_paper_autoencoder_size(self):
        """Two stride-2 levels 8 -> 16 channels: about 4k parameters (the paper's)."""
        encoder, decoder = kl.layers.LatentEncoder(), kl.layers.LatentDecoder(channels=3)
        skip, latent = encoder(random_input((1, 32, 32, 3)))
        decoder([latent, skip])
        total = encoder.count_params() + decoder.count_params()
        assert 3_500 <= total <= 4_500, total

    def test_autoencoder_fit_one_step(self):
        class Wrapper(keras.Model):
            def __init__(self):
                super().__init__()
                self.encoder = kl.layers.LatentEncoder()
                self.decoder = kl.layers.LatentDecoder(channels=3)

            def call(self, x, training=False):
                skip, latent = self.encoder(x, training=training)
                return self.decoder([latent, skip], training=training)

        model = Wrapper()
        model.compile(optimizer="adam", loss="mse")
        x = random_input((4, 16, 16, 3))
        history = model.fit(x, x, epochs=1, batch_size=4, verbose=0)
        assert np.isfinite(history.history["loss"][0])


class TestLatentDecoder(TestCase):
    @pytest.mark.parametrize("downsampling", [1, 2, 3])
    def test_layer_basics(self, downsampling):
        grid = 32 // 2**downsampling
        decoder = self.run_layer_test(
            kl.layers.LatentDecoder,
            dict(channels=3, latent_channels=12, downsampling=downsampling),
            [random_input((2, grid, grid, 12)), random_input((2, 16, 16, 6), seed=1)],
            (2, 32, 32, 3),
        )
        image = to_numpy(decoder([random_input((2, grid, grid, 12)), random_input((2, 16, 16, 6))]))
        assert image.min() >= 0 and image.max() <= 1


CELLS = [
    (kl.layers.NAFCACell, dict(input_channels=16, embed_dim=32, dropout=0.0), 64),
    (kl.layers.ViTCACell, dict(input_channels=3, embed_dim=32, heads=4, mlp_dim=16), 38),
    (kl.layers.SobelCell, dict(input_channels=3, hidden_units=32), 16),
    (kl.layers.ConvCell, dict(input_channels=4, perception_channels=8, hidden_units=16), 12),
]


class TestCells(TestCase):
    """What every cell shares: shape, frozen input channels, the update mask."""

    @pytest.mark.parametrize("cell_class,kwargs,channels", CELLS)
    def test_layer_basics_keep_the_input_channels(self, cell_class, kwargs, channels):
        state = random_input((2, 8, 10, channels))
        cell = self.run_layer_test(cell_class, kwargs, state, state.shape)
        n = kwargs["input_channels"]
        np.testing.assert_array_equal(to_numpy(cell(state))[..., :n], state[..., :n])

    @pytest.mark.parametrize("cell_class,kwargs,channels", CELLS)
    def test_update_mask_freezes_cells(self, cell_class, kwargs, channels):
        cell = cell_class(**kwargs)
        state = random_input((1, 6, 6, channels))
        cell(state)
        _perturb(cell, 0.05)  # make the (zero-initialised) update non-zero
        mask = np.zeros((1, 6, 6, 1), "float32")
        mask[0, :3] = 1
        new = to_numpy(cell(state, update_mask=mask))
        np.testing.assert_array_equal(new[0, 3:], state[0, 3:])
        assert not np.allclose(new[0, :3], state[0, :3])

    def test_sobel_nafca_and_vitca_are_local(self):
        """One step only reads the 3x3 neighbourhood: a far-away change does not leak."""
        for cell, channels in [
            (kl.layers.NAFCACell(input_channels=4, embed_dim=16), 12),
            (kl.layers.SobelCell(input_channels=4, hidden_units=16), 12),
            (kl.layers.ViTCACell(input_channels=4, embed_dim=16, positional_encoding=False), 12),
        ]:
            state = random_input((1, 9, 9, channels))
            cell(state)
            _perturb(cell, 0.05)
            changed = state.copy()
            changed[0, 0, 0] += 1.0
            a, b = to_numpy(cell(state)), to_numpy(cell(changed))
            diff = np.abs(a - b).max(axis=-1)[0]
            assert diff[:2, :2].max() > 0
            diff[:2, :2] = 0
            assert diff.max() == 0


class TestNAFCACell(TestCase):
    def test_matches_paper_size(self):
        cell = kl.layers.NAFCACell(input_channels=16)
        cell(random_input((1, 4, 4, 64)))
        # The official configuration (64-channel state, embed 128): 46,769.
        assert cell.count_params() == 46_769

    def test_zero_head_starts_as_the_identity(self):
        state = random_input((2, 6, 6, 24))
        cell = kl.layers.NAFCACell(input_channels=8, embed_dim=16, head_initializer="zeros")
        np.testing.assert_allclose(to_numpy(cell(state)), state)
        default = kl.layers.NAFCACell(input_channels=8, embed_dim=16)
        assert np.abs(to_numpy(default(state)) - state).max() > 1e-3
        clone = kl.layers.NAFCACell.from_config(cell.get_config())
        assert clone.head_initializer == "zeros"


class TestNCA(TestCase):
    def test_layer_basics(self):
        nca = self.run_layer_test(
            kl.layers.NCA,
            # The cell as its config: every construction gets its own cell.
            dict(cell=keras.saving.serialize_keras_object(
                kl.layers.SobelCell(input_channels=4, hidden_units=16)), steps=3),
            random_input((2, 6, 6, 12)), (2, 6, 6, 12),
        )
        clone = kl.layers.NCA.from_config(nca.get_config())
        assert isinstance(clone.cell, kl.layers.SobelCell)

    def test_deterministic_and_masked_steps(self):
        nca = kl.layers.NCA(kl.layers.SobelCell(input_channels=3, hidden_units=16), steps=5)
        state = random_input((3, 8, 8, 12))
        nca(state)
        _perturb(nca, 0.02)
        a = to_numpy(nca(state))
        b = to_numpy(nca(state))
        np.testing.assert_array_equal(a, b)
        assert nca.update_masks(state, 5) is None  # fire rate 1: no random op
        # Per-sample step counts by masking equal running each sample on its own.
        counts = np.array([0, 2, 5], "int32")
        masked = to_numpy(nca(state, step_counts=counts, training=True))
        np.testing.assert_array_equal(masked[0], state[0])
        alone = to_numpy(nca(state[1:2], steps=2, training=True))
        np.testing.assert_allclose(masked[1], alone[0], atol=1e-6)
        np.testing.assert_allclose(masked[2], a[2], atol=1e-5)
        # Training (unrolled) and inference (fori_loop) paths agree, and so does
        # the unrolled inference loop that the int8 export traces.
        np.testing.assert_allclose(to_numpy(nca(state, training=True)), a, atol=1e-5)
        np.testing.assert_allclose(to_numpy(nca(state, unroll=True)), a, atol=1e-5)

    def test_fire_rate_masks(self):
        nca = kl.layers.NCA(kl.layers.SobelCell(input_channels=3), steps=4, fire_rate=0.5, seed=3)
        masks = to_numpy(nca.update_masks(random_input((2, 16, 16, 12)), 4))
        assert masks.shape == (4, 2, 16, 16, 1)
        assert 0.4 < masks.mean() < 0.6
        with pytest.raises(ValueError):
            kl.layers.NCA(kl.layers.SobelCell(input_channels=3), fire_rate=0.0)


class TestSpaceToDepth(TestCase):
    @pytest.mark.parametrize("block,channels", [(2, 1), (4, 3)])
    def test_layer_basics_and_exact_inverse(self, block, channels):
        x = random_input((2, 4 * block, 3 * block, channels))
        down = self.run_layer_test(
            kl.layers.SpaceToDepth, dict(block=block), x,
            (2, 4, 3, block * block * channels), run_training_check=False,  # no weights
        )
        z = to_numpy(down(x))
        np.testing.assert_array_equal(z[0, 0, 0, :channels], x[0, 0, 0])
        up = kl.layers.DepthToSpace(block, channels)
        np.testing.assert_array_equal(to_numpy(up(z)), x)
        assert not down.weights


class TestDepthToSpace(TestCase):
    def test_layer_basics(self):
        up = self.run_layer_test(
            kl.layers.DepthToSpace, dict(block=2, channels=3), random_input((2, 4, 3, 12)),
            (2, 8, 6, 3), run_training_check=False,  # no weights
        )
        assert not up.weights


def test_every_cell_reads_perceive_then_update():
    """One step is the paper's perceive -> update -> mask -> residual in every cell: each
    implements both hooks, and none replaces the step that joins them."""
    import inspect

    from keras_lnca import layers

    cells = [c for c in vars(layers).values()
             if inspect.isclass(c) and issubclass(c, layers.NCACell) and c is not layers.NCACell]
    assert len(cells) >= 4, cells
    for cell in cells:
        assert "perceive" in vars(cell) and "update" in vars(cell), cell.__name__
        assert "compute_update" not in vars(cell) and "call" not in vars(cell), cell.__name__
