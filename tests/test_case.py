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


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


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
        """Shapes, JSON config round trip with identical outputs, one-step fit.

        `input_data` is an array or a list of arrays (a layer called on a
        list); `expected_output_shape` a shape or, for a layer with several
        outputs, a list of shapes.
        """
        layer = layer_cls(**init_kwargs)
        outputs = _as_list(layer(input_data))
        several = isinstance(expected_output_shape[0], (tuple, list))
        shapes = expected_output_shape if several else [expected_output_shape]
        assert len(outputs) == len(shapes), (len(outputs), len(shapes))
        outputs = [to_numpy(x) for x in outputs]
        for output, shape in zip(outputs, shapes):
            assert output.shape == tuple(shape), (output.shape, tuple(shape))
            assert np.all(np.isfinite(output))

        config = layer.get_config()
        config = json.loads(json.dumps(config))  # must survive JSON
        clone = layer_cls.from_config(config)
        assert json.loads(json.dumps(clone.get_config())) == config
        clone(input_data)
        assert len(clone.weights) == len(layer.weights)
        for src, dst in zip(layer.weights, clone.weights):
            dst.assign(src)
        for a, b in zip(_as_list(clone(input_data)), outputs):
            np.testing.assert_allclose(to_numpy(a), b, atol=1e-6)

        if run_training_check:
            self.run_training_step(layer_cls(**init_kwargs), input_data)
        return layer

    def run_training_step(self, layer, input_data):
        """One `fit` step of `layer` in a functional model moves a weight."""
        if isinstance(input_data, (list, tuple)):
            inputs = [keras.Input(x.shape[1:]) for x in input_data]
        else:
            inputs = keras.Input(input_data.shape[1:])
        model = keras.Model(inputs, layer(inputs))
        model.compile(optimizer=keras.optimizers.SGD(1e-2), loss="mse")
        predictions = _as_list(model.predict(input_data, verbose=0))
        target = [to_numpy(y) + 0.1 for y in predictions]
        target = target if len(target) > 1 else target[0]
        before = [np.array(w) for w in model.trainable_weights]
        batch = len(input_data[0] if isinstance(input_data, (list, tuple)) else input_data)
        history = model.fit(input_data, target, epochs=1, batch_size=batch, verbose=0)
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
