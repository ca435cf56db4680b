"""`lnca train` recipes: a run killed after an epoch boundary resumes exactly."""

import keras
import numpy as np
import pytest
from conftest import REPO
from conftest import data_dir

from keras_lnca import training


class Kill(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0 and self.model.phase == "nca":
            raise KeyboardInterrupt("killed after the first nca epoch")


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    if not (data_dir() / "gray" / "set12").exists():
        pytest.skip(f"benchmark data not found at {data_dir()} (set LNCA_DATA)")
    recipe = training.load_recipe(REPO / "configs" / "smoke_gray.json")
    recipe["phases"] = [{"phase": "autoencoder", "epochs": 1}, {"phase": "nca", "epochs": 2}]
    full, _ = training.train(recipe, tmp_path / "full", verbose=0, log=lambda *a: None)
    with pytest.raises(KeyboardInterrupt):
        training.train(recipe, tmp_path / "killed", verbose=0, extra_callbacks=[Kill()],
                       log=lambda *a: None)
    resumed, _ = training.train(recipe, tmp_path / "killed", verbose=0, log=lambda *a: None)
    assert len(full.weights) == len(resumed.weights)
    for a, b in zip(full.weights, resumed.weights):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-6)


def test_bad_recipes_are_user_errors(tmp_path):
    from keras_lnca.errors import UserError

    with pytest.raises(UserError, match="No such recipe"):
        training.load_recipe(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        training.load_recipe(tmp_path / "bad.json")
    (tmp_path / "partial.json").write_text('{"name": "x"}')
    with pytest.raises(UserError, match="lacks"):
        training.load_recipe(tmp_path / "partial.json")
