"""Layer tests: shapes, config round trips, and a one-step fit in a wrapper model."""

import keras
import numpy as np
import pytest

import keras_lnca as kl


def to_numpy(x):
    if isinstance(x, np.ndarray):
        return x
    return keras.ops.convert_to_numpy(keras.ops.stop_gradient(x))


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype("float32")


def _roundtrip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    return clone


def _fit_one_step(layer, input_shape, output_fn=lambda y: y):
    inputs = keras.Input(input_shape[1:])
    outputs = output_fn(layer(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    x = _rand(*input_shape)
    y = to_numpy(model.predict(x, verbose=0))
    before = [np.array(w) for w in model.trainable_weights]
    history = model.fit(x, np.zeros_like(y) + 0.1, epochs=1, batch_size=input_shape[0], verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [np.array(w) for w in model.trainable_weights]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after)), "no weight moved"


@pytest.mark.parametrize("strides,expected", [(1, (2, 16, 16, 8)), (2, (2, 8, 8, 8))])
def test_adj_conv(strides, expected):
    layer = kl.layers.AdjConv(8, strides=strides)
    assert tuple(layer(_rand(2, 16, 16, 3)).shape) == expected
    clone = _roundtrip(layer)
    assert tuple(clone(_rand(2, 16, 16, 3)).shape) == expected
    _fit_one_step(kl.layers.AdjConv(8, strides=strides, dropout=0.1), (2, 16, 16, 3))


def test_adj_conv_without_batch_norm_has_no_norm_weights():
    layer = kl.layers.AdjConv(4, batch_norm=False)
    layer(_rand(1, 8, 8, 3))
    assert len(layer.weights) == 2


def test_adj_conv_transpose_doubles_size():
    layer = kl.layers.AdjConvTranspose(3, strides=2, activation="sigmoid")
    out = to_numpy(layer(_rand(2, 8, 8, 8)))
    assert out.shape == (2, 16, 16, 3)
    assert out.min() >= 0 and out.max() <= 1
    _roundtrip(layer)
    _fit_one_step(kl.layers.AdjConvTranspose(3, strides=2), (2, 8, 8, 8))


@pytest.mark.parametrize("downsampling", [1, 2, 3])
def test_encoder_decoder_shapes(downsampling):
    encoder = kl.layers.LatentEncoder(latent_channels=12, downsampling=downsampling)
    decoder = kl.layers.LatentDecoder(channels=3, latent_channels=12, downsampling=downsampling)
    skip, latent = encoder(_rand(2, 32, 32, 3))
    factor = 2**downsampling
    assert tuple(skip.shape) == (2, 16, 16, 6)
    assert tuple(latent.shape) == (2, 32 // factor, 32 // factor, 12)
    image = to_numpy(decoder([latent, skip]))
    assert image.shape == (2, 32, 32, 3)
    assert image.min() >= 0 and image.max() <= 1
    _roundtrip(encoder)
    _roundtrip(decoder)


def test_encoder_rejects_bad_downsampling():
    with pytest.raises(ValueError, match="downsampling"):
        kl.layers.LatentEncoder(downsampling=4)


def test_paper_autoencoder_size():
    """Two stride-2 levels 8 -> 16 channels: about 4k parameters (the paper's)."""
    encoder, decoder = kl.layers.LatentEncoder(), kl.layers.LatentDecoder(channels=3)
    skip, latent = encoder(_rand(1, 32, 32, 3))
    decoder([latent, skip])
    total = encoder.count_params() + decoder.count_params()
    assert 3_500 <= total <= 4_500, total


def test_autoencoder_fit_one_step():
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
    x = _rand(4, 16, 16, 3)
    history = model.fit(x, x, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])


CELLS = [
    (kl.layers.NAFCACell, dict(input_channels=16, embed_dim=32, dropout=0.0), 64),
    (kl.layers.ViTCACell, dict(input_channels=3, embed_dim=32, heads=4, mlp_dim=16), 38),
    (kl.layers.SobelCell, dict(input_channels=3, hidden_units=32), 16),
    (kl.layers.ConvCell, dict(input_channels=4, perception_channels=8, hidden_units=16), 12),
]


@pytest.mark.parametrize("cell_class,kwargs,channels", CELLS)
def test_cell_keeps_shape_and_input_channels(cell_class, kwargs, channels):
    cell = cell_class(**kwargs)
    state = _rand(2, 8, 10, channels)
    new = to_numpy(cell(state))
    assert new.shape == state.shape
    n = kwargs["input_channels"]
    np.testing.assert_array_equal(new[..., :n], state[..., :n])
    clone = _roundtrip(cell)
    clone(state)
    for src, dst in zip(cell.weights, clone.weights):
        dst.assign(src)
    np.testing.assert_allclose(to_numpy(clone(state)), new, atol=1e-6)


@pytest.mark.parametrize("cell_class,kwargs,channels", CELLS)
def test_cell_update_mask_freezes_cells(cell_class, kwargs, channels):
    cell = cell_class(**kwargs)
    state = _rand(1, 6, 6, channels)
    cell(state)
    # Make the (zero-initialised) update non-zero.
    for w in cell.trainable_weights:
        w.assign(to_numpy(w) + 0.05)
    mask = np.zeros((1, 6, 6, 1), "float32")
    mask[0, :3] = 1
    new = to_numpy(cell(state, update_mask=mask))
    np.testing.assert_array_equal(new[0, 3:], state[0, 3:])
    assert not np.allclose(new[0, :3], state[0, :3])


@pytest.mark.parametrize("cell_class,kwargs,channels", CELLS)
def test_cell_fit_one_step(cell_class, kwargs, channels):
    _fit_one_step(cell_class(**kwargs), (2, 6, 6, channels))


def test_nafca_cell_matches_paper_size():
    cell = kl.layers.NAFCACell(input_channels=16)
    cell(_rand(1, 4, 4, 64))
    # The official configuration (64-channel state, embed 128): 46,769.
    assert cell.count_params() == 46_769


def test_nafca_zero_head_starts_as_the_identity():
    state = np.random.default_rng(0).random((2, 6, 6, 24)).astype("float32")
    cell = kl.layers.NAFCACell(input_channels=8, embed_dim=16, head_initializer="zeros")
    np.testing.assert_allclose(to_numpy(cell(state)), state)
    default = kl.layers.NAFCACell(input_channels=8, embed_dim=16)
    assert np.abs(to_numpy(default(state)) - state).max() > 1e-3
    clone = kl.layers.NAFCACell.from_config(cell.get_config())
    assert clone.head_initializer == "zeros"


def test_sobel_and_nafca_are_local():
    """One step only reads the 3x3 neighbourhood: a far-away change does not leak."""
    for cell, channels in [
        (kl.layers.NAFCACell(input_channels=4, embed_dim=16), 12),
        (kl.layers.SobelCell(input_channels=4, hidden_units=16), 12),
        (kl.layers.ViTCACell(input_channels=4, embed_dim=16, positional_encoding=False), 12),
    ]:
        state = _rand(1, 9, 9, channels)
        cell(state)
        for w in cell.trainable_weights:
            w.assign(to_numpy(w) + 0.05)
        changed = state.copy()
        changed[0, 0, 0] += 1.0
        a, b = to_numpy(cell(state)), to_numpy(cell(changed))
        diff = np.abs(a - b).max(axis=-1)[0]
        assert diff[:2, :2].max() > 0
        diff[:2, :2] = 0
        assert diff.max() == 0


def test_nca_deterministic_and_masked_steps():
    nca = kl.layers.NCA(kl.layers.SobelCell(input_channels=3, hidden_units=16), steps=5)
    state = _rand(3, 8, 8, 12)
    nca(state)
    for w in nca.trainable_weights:
        w.assign(to_numpy(w) + 0.02)
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


def test_nca_fire_rate_masks():
    nca = kl.layers.NCA(kl.layers.SobelCell(input_channels=3), steps=4, fire_rate=0.5, seed=3)
    state = _rand(2, 16, 16, 12)
    masks = to_numpy(nca.update_masks(nca_state := state, 4))
    assert masks.shape == (4, 2, 16, 16, 1)
    assert 0.4 < masks.mean() < 0.6
    del nca_state
    with pytest.raises(ValueError):
        kl.layers.NCA(kl.layers.SobelCell(input_channels=3), fire_rate=0.0)


def test_nca_config_roundtrip_and_fit():
    nca = kl.layers.NCA(kl.layers.NAFCACell(input_channels=4, embed_dim=16), steps=3)
    nca(_rand(1, 4, 4, 12))
    clone = _roundtrip(nca)
    assert isinstance(clone.cell, kl.layers.NAFCACell)
    _fit_one_step(
        kl.layers.NCA(kl.layers.SobelCell(input_channels=4, hidden_units=16), steps=3),
        (2, 6, 6, 12),
    )


@pytest.mark.parametrize("block,channels", [(2, 1), (4, 3)])
def test_space_to_depth_is_an_exact_inverse_pair(block, channels):
    x = _rand(2, 4 * block, 3 * block, channels)
    down = kl.layers.SpaceToDepth(block)
    up = kl.layers.DepthToSpace(block, channels)
    z = down(x)
    assert tuple(z.shape) == (2, 4, 3, block * block * channels)
    np.testing.assert_array_equal(to_numpy(up(z)), x)
    np.testing.assert_array_equal(to_numpy(z)[0, 0, 0, :channels], x[0, 0, 0])
    _roundtrip(down)
    _roundtrip(up)
    assert not down.weights and not up.weights
