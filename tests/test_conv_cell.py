"""ConvCell: the cell that perceives the whole state of its neighbours."""

import numpy as np
import pytest

import keras_lnca as kl
from test_case import TestCase
from test_case import random_input
from test_case import to_numpy


class TestConvCell(TestCase):
    def test_layer_basics(self):
        self.run_layer_test(
            kl.layers.ConvCell,
            dict(input_channels=4, perception_channels=8, hidden_units=16, head_initializer="glorot_uniform"),
            random_input((2, 6, 7, 12)),
            (2, 6, 7, 12),
        )

    def test_second_scale_and_deeper_mlp(self):
        cell = self.run_layer_test(
            kl.layers.ConvCell,
            dict(input_channels=4, perception_channels=8, hidden_units=16, mlp_layers=2,
                 dilation_rates=(1, 2), head_initializer="glorot_uniform"),
            random_input((1, 8, 8, 12)),
            (1, 8, 8, 12),
        )
        assert cell.radius == 2

    def test_zero_head_is_identity_and_input_channels_fixed(self):
        state = random_input((2, 5, 5, 12))
        cell = kl.layers.ConvCell(input_channels=4, perception_channels=8, hidden_units=16)
        np.testing.assert_array_equal(to_numpy(cell(state)), state)
        for w in cell.trainable_weights:
            w.assign(to_numpy(w) + 0.05)
        new = to_numpy(cell(state))
        np.testing.assert_array_equal(new[..., :4], state[..., :4])
        assert np.abs(new - state).max() > 1e-3

    def test_perceive_then_update_is_the_step(self):
        state = random_input((1, 5, 5, 12))
        cell = kl.layers.ConvCell(input_channels=4, perception_channels=8, hidden_units=16,
                                  head_initializer="glorot_uniform")
        new = to_numpy(cell(state))
        perception = cell.perceive(state)
        assert tuple(perception.shape) == (1, 5, 5, 12 + 8)
        update = to_numpy(cell.update(perception))
        np.testing.assert_allclose(new[..., 4:], state[..., 4:] + update, atol=1e-6)

    def test_one_step_reads_only_the_neighbourhood(self):
        cell = kl.layers.ConvCell(input_channels=4, perception_channels=8, hidden_units=16,
                                  head_initializer="glorot_uniform")
        state = random_input((1, 9, 9, 12))
        changed = state.copy()
        changed[0, 0, 0] += 1.0
        diff = np.abs(to_numpy(cell(state)) - to_numpy(cell(changed))).max(axis=-1)[0]
        assert diff[:2, :2].max() > 0
        diff[:2, :2] = 0
        assert diff.max() == 0

    def test_flop_count_matches_parameters(self):
        # Every weight of a 1x1-MLP cell with a "same" conv is used once per
        # cell as one multiply-add: FLOPs = 2 x kernel weights + the rest.
        cell = kl.layers.ConvCell(input_channels=16, activation="relu")
        cell(random_input((1, 4, 4, 64)))
        kernels = sum(int(np.prod(w.shape)) for w in cell.trainable_weights if len(w.shape) > 1)
        biases = sum(int(np.prod(w.shape)) for w in cell.trainable_weights if len(w.shape) == 1)
        relus = 48 + 128
        assert cell.flops_per_cell() == 2 * kernels + biases + relus + cell.update_channels

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="dilation_rates"):
            kl.layers.ConvCell(input_channels=4, dilation_rates=(0,))
        with pytest.raises(ValueError, match="mlp_layers"):
            kl.layers.ConvCell(input_channels=4, mlp_layers=0)

    @pytest.mark.slow  # trains or writes files: the full suite runs it
    def test_lnca_with_conv_cell_saves_and_reloads(self, tmp_path):
        model = kl.LNCA(channels=1, cell="conv", autoencoder="space_to_depth", out_seed="input",
                        inference_steps=3, pool_image_size=16,
                        cell_config=dict(perception_channels=8, hidden_units=16))
        model.compile()
        x = random_input((2, 16, 16, 1))
        model.fit(x, x, epochs=1, batch_size=2, verbose=0)
        self.run_model_saving_test(model, x, tmp_path)
