"""The shared test case of the layer and model tests (after keras-hub's `TestCase`).

`run_layer_test` checks a layer's output shape, its JSON config round trip
(the clone gives the same output with the same weights) and one step of
`fit` inside a small model; `run_model_saving_test` checks that a model's
`.keras` file reloads with identical outputs. Both run on the current backend.
"""

import json

import keras
import numpy as np


def to_numpy(x):
    if isinstance(x, np.ndarray):
        return x
    return keras.ops.convert_to_numpy(keras.ops.stop_gradient(x))


def random_input(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype("float32")


class TestCase:
    """Mix-in for pytest classes: `class TestMyLayer(TestCase): ...`."""

    def run_layer_test(
        self,
        layer_cls,
        init_kwargs,
        input_data,
        expected_output_shape,
        run_training_check=True,
    ):
        """Shapes, JSON config round trip with identical outputs, one-step fit."""
        layer = layer_cls(**init_kwargs)
        output = to_numpy(layer(input_data))
        assert output.shape == tuple(expected_output_shape), output.shape
        assert np.all(np.isfinite(output))

        config = layer.get_config()
        config = json.loads(json.dumps(config))  # must survive JSON
        clone = layer_cls.from_config(config)
        assert clone.get_config() == layer.get_config()
        clone(input_data)
        assert len(clone.weights) == len(layer.weights)
        for src, dst in zip(layer.weights, clone.weights):
            dst.assign(src)
        np.testing.assert_allclose(to_numpy(clone(input_data)), output, atol=1e-6)

        if run_training_check:
            self.run_training_step(layer_cls(**init_kwargs), input_data)
        return layer

    def run_training_step(self, layer, input_data):
        """One `fit` step of `layer` in a functional model moves a weight."""
        inputs = keras.Input(input_data.shape[1:])
        outputs = layer(inputs)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.SGD(1e-2), loss="mse")
        target = to_numpy(model.predict(input_data, verbose=0)) + 0.1
        before = [np.array(w) for w in model.trainable_weights]
        history = model.fit(input_data, target, epochs=1, batch_size=len(input_data), verbose=0)
        assert np.isfinite(history.history["loss"][0])
        after = [np.array(w) for w in model.trainable_weights]
        assert any(not np.array_equal(a, b) for a, b in zip(before, after)), "no weight moved"

    def run_model_saving_test(self, model, input_data, tmp_path, atol=1e-6):
        """`.keras` round trip: the reloaded model predicts the same outputs."""
        path = tmp_path / "model.keras"
        expected = to_numpy(model.predict(input_data, verbose=0))
        model.save(path)
        restored = keras.saving.load_model(path)
        assert type(restored) is type(model)
        assert restored.get_config() == model.get_config()
        np.testing.assert_allclose(
            to_numpy(restored.predict(input_data, verbose=0)), expected, atol=atol
        )
        return restored
