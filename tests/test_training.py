"""`lnca train` recipes: a run killed after an epoch boundary resumes exactly."""

import json
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
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


class SwallowedSignal(keras.callbacks.Callback):
    """A SIGTERM whose `KeyboardInterrupt` something swallows, as Keras's `pythonify_logs`
    (a bare `except:` around the wait for a JAX step) did with most of them."""

    def on_train_batch_end(self, batch, logs=None):
        from keras_lnca import interrupts

        if batch == 0 and not self.sent:
            self.sent = True
            try:
                interrupts.terminate()
            except BaseException:
                pass

    sent = False


def test_a_swallowed_interrupt_still_ends_training_at_the_next_batch(tmp_path):
    from keras_lnca import interrupts
    from keras_lnca.training.checkpoint import Checkpoint

    if not (data_dir() / "gray" / "set12").exists():
        pytest.skip(f"benchmark data not found at {data_dir()} (set LNCA_DATA)")
    recipe = training.load_recipe(REPO / "configs" / "smoke_gray.json")
    recipe["phases"] = [{"phase": "autoencoder", "epochs": 3}]
    stopper = SwallowedSignal()
    try:
        with pytest.raises(KeyboardInterrupt):
            training.train(recipe, tmp_path / "run", verbose=0, extra_callbacks=[stopper],
                           log=lambda *a: None)
    finally:
        interrupts.clear()
    assert stopper.sent and not interrupts.requested()
    # It stopped inside the first epoch (3 batches), which is not checkpointed.
    assert Checkpoint(tmp_path / "run", "autoencoder").phase_progress()["epochs"] == 0
    assert not (tmp_path / "run" / "smoke_gray.keras").exists()


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


class KillIn(keras.callbacks.Callback):
    """Interrupts the run at the end of `epoch` of `phase`."""

    def __init__(self, phase, epoch):
        super().__init__()
        self.phase, self.epoch = phase, epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch and self.model.phase == self.phase:
            raise KeyboardInterrupt(f"killed after {self.phase} epoch {epoch}")


def _smoke_recipe(phases, **model):
    if not (data_dir() / "gray" / "set12").exists():
        pytest.skip(f"benchmark data not found at {data_dir()} (set LNCA_DATA)")
    recipe = training.load_recipe(REPO / "configs" / "smoke_gray.json")
    recipe["phases"] = phases
    recipe["model"].update(model)
    return recipe


def _assert_same_weights(a, b):
    assert len(a.weights) == len(b.weights)
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), atol=1e-6)


def test_kill_in_the_autoencoder_phase_does_not_skip_nca_epochs(tmp_path):
    recipe = _smoke_recipe([{"phase": "autoencoder", "epochs": 2}, {"phase": "nca", "epochs": 2}])
    quiet = dict(verbose=0, log=lambda *a: None)
    full, _ = training.train(recipe, tmp_path / "full", **quiet)
    with pytest.raises(KeyboardInterrupt):
        training.train(recipe, tmp_path / "killed", extra_callbacks=[KillIn("autoencoder", 0)], **quiet)
    resumed, summary = training.train(recipe, tmp_path / "killed", **quiet)
    epochs = [line.split(",")[0] for line in (tmp_path / "killed" / "log_nca.csv").read_text().splitlines()[1:]]
    assert epochs == ["0", "1"]
    assert [p["epochs"] for p in summary["phases"]] == [2, 2]
    _assert_same_weights(full, resumed)


def test_resume_from_the_committed_checkpoint_alone(tmp_path):
    """A fresh clone has no pool file: the committed checkpoint resumes exactly when the
    model has no sample pool."""
    recipe = _smoke_recipe([{"phase": "nca", "epochs": 3}], pool_size=0, autoencoder="space_to_depth",
                           out_seed="input", cell="conv",
                           cell_config={"perception_channels": 8, "hidden_units": 16})
    quiet = dict(verbose=0, log=lambda *a: None)
    full, _ = training.train(recipe, tmp_path / "full", **quiet)
    with pytest.raises(KeyboardInterrupt):
        training.train(recipe, tmp_path / "killed", extra_callbacks=[KillIn("nca", 1)], **quiet)
    for pool in (tmp_path / "killed").glob("*.pool.npz"):  # not committed: a clone lacks it
        pool.unlink()
    progress = (tmp_path / "killed" / "progress.json").read_text()
    assert '"epochs": 2' in progress
    messages = []
    resumed, summary = training.train(recipe, tmp_path / "killed", verbose=0, log=messages.append)
    assert any("resuming after epoch 2" in m for m in messages)
    assert summary["phases"][0]["train_seconds"] > 0
    _assert_same_weights(full, resumed)


def test_a_damaged_finished_phase_says_what_to_delete(tmp_path):
    from keras_lnca.errors import UserError

    recipe = _smoke_recipe([{"phase": "nca", "epochs": 1}], autoencoder="space_to_depth")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "after_nca.keras").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="delete it"):
        training.train(recipe, tmp_path / "run", verbose=0, log=lambda *a: None)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r["phases"][0].update(epochs="x"), "'epochs' must be an integer"),
        (lambda r: r["model"].update({"class": "Foo"}), "unknown model class 'Foo'"),
        (lambda r: r["model"].update(bogus=1), "has no argument 'bogus'"),
        (lambda r: r["data"].pop("train"), "data needs 'train'"),
        (lambda r: r.update(phasez=[]), "unknown key 'phasez'"),
        (lambda r: r["compile"].update(learning_rate="big"), "'learning_rate' must be"),
        (lambda r: r["data"].update(crop_size=0), "'crop_size' must be from 1 to 1024"),
        (lambda r: r["data"].update(degradation="gaussian:-5"), "negative"),
        (lambda r: r["model"].update(inference_steps=-3), "inference_steps"),
        (lambda r: r["phases"][0].pop("epochs"), "each phase needs 'phase'"),
        (lambda r: r["evaluate"][0].pop("degradation"), "each evaluate entry needs"),
        (lambda r: r.update(evaluate=["gray/set12"]), "each evaluate entry must be a JSON object"),
        (lambda r: r["evaluate"][0].update(limit=-1), "'limit' must be from 1"),
        (lambda r: r["evaluate"][0].update(baselines=["bm4d"]), "'baselines' may hold"),
        (lambda r: r["compile"].update(metrics=["accuracy"]), "'metrics' may hold psnr, ssim"),
        (lambda r: r["compile"].update(learning_rate=float("nan")), "'learning_rate' must be a finite"),
        (lambda r: r.update(init_from="no such preset"), "neither a preset nor an existing path"),
        (lambda r: r.update(name="../escape"), "'name' must be letters"),
        (lambda r: r.update(name=""), "'name' must be letters"),
        (lambda r: r.update(seed=-1), "'seed' must be from 0"),
        (lambda r: r.update(seed=2**70), "'seed' must be from 0"),
        (lambda r: r["model"].update(hidden_channels=10**6), "`hidden_channels` must be between"),
        (lambda r: r["model"].update(cell=5), "bad model arguments"),
        (lambda r: r["data"].update(curriculum="paper"), "data 'curriculum': a curriculum needs one impulse"),
        (lambda r: r["data"].update(degradation="impulse:0.1-0.5", curriculum="cosine"),
         "unknown curriculum schedule"),
        (lambda r: r["data"].update(curriculum=True), "'curriculum' must be a string"),
    ],
)
def test_bad_recipes_fail_in_one_line_before_any_work(tmp_path, capsys, change, message):
    import json

    from keras_lnca import cli

    recipe = json.loads((REPO / "configs" / "smoke_gray.json").read_text())
    change(recipe)
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    code = cli.main(["train", "--config", str(path), "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_a_curriculum_recipe_raises_the_level_each_epoch_as_the_paper_does(tmp_path):
    """`data.curriculum: "paper"`: each phase's epochs ramp the range as the official code does,
    and the CSV log records each epoch's level."""
    recipe = _smoke_recipe([{"phase": "nca", "epochs": 4}], autoencoder="space_to_depth", pool_size=0)
    recipe["data"].update(degradation="impulse:0.25-0.75", curriculum="paper")
    training.check_recipe(recipe)
    quiet = dict(verbose=0, log=lambda *a: None)
    training.train(recipe, tmp_path / "run", **quiet)
    rows = (tmp_path / "run" / "log_nca.csv").read_text().splitlines()
    column = rows[0].split(",").index("curriculum_impulse")
    levels = [float(row.split(",")[column]) for row in rows[1:]]
    assert levels == pytest.approx([0.25, 0.25, 0.5, 0.75])  # clip(e / 4, 0.25, 0.75)


def test_init_from_a_run_copies_its_weights(tmp_path):
    recipe = _smoke_recipe([{"phase": "nca", "epochs": 1}], autoencoder="space_to_depth",
                           out_seed="input", cell="conv",
                           cell_config={"perception_channels": 8, "hidden_units": 16})
    quiet = dict(verbose=0, log=lambda *a: None)
    donor, _ = training.train(recipe, tmp_path / "donor", **quiet)
    model = training.build_model(recipe)
    model.build()
    messages = []
    training.initial_weights(model, str(tmp_path / "donor"), log=messages.append)
    assert messages and "initialised" in messages[0]
    for a, b in zip(donor.nca.weights, model.nca.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_snapshot_writes_the_latest_checkpoint_without_training(tmp_path):
    recipe = _smoke_recipe([{"phase": "nca", "epochs": 3}], pool_size=0, autoencoder="space_to_depth",
                           out_seed="input", cell="conv", noise_map=True,
                           cell_config={"perception_channels": 8, "hidden_units": 16})
    quiet = dict(verbose=0, log=lambda *a: None)
    with pytest.raises(KeyboardInterrupt):
        partial, _ = training.train(recipe, tmp_path / "run", extra_callbacks=[KillIn("nca", 1)], **quiet)
    progress = (tmp_path / "run" / "progress.json").read_text()
    snapshot, summary = training.train(recipe, tmp_path / "run", snapshot=True, **quiet)
    assert summary["phases"][0]["epochs"] == 2 and summary["phases"][0]["snapshot_of_epochs"] == 3
    assert (tmp_path / "run" / "progress.json").read_text() == progress  # nothing trained or saved
    assert not list((tmp_path / "run").glob("after_*.keras"))
    reference = training.build_model(recipe)
    reference.build()
    reference.load_weights(tmp_path / "run" / "nca.e0002.weights.h5")
    _assert_same_weights(reference, snapshot)


def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(tmp_path, capsys):
    import json

    from keras_lnca import cli

    recipe = _smoke_recipe([{"phase": "nca", "epochs": 2}], autoencoder="space_to_depth",
                           out_seed="input", cell="conv",
                           cell_config={"perception_channels": 8, "hidden_units": 16})
    recipe["compile"]["learning_rate"] = 1e6
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    code = cli.main(["train", "--config", str(path), "--run-dir", str(tmp_path / "run"),
                     "-o", str(tmp_path / "presets")])
    err = capsys.readouterr().err
    assert code == 2 and re.search(r"training diverged: phase 'nca' has loss (nan|inf)", err), err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not list((tmp_path / "run").glob("nca.e*")), "a diverged epoch was checkpointed"
    assert not (tmp_path / "presets").exists() or not any((tmp_path / "presets").iterdir())


def test_the_divergence_guard_reads_the_batch_loss():
    from keras_lnca.errors import UserError
    from keras_lnca.training.checkpoint import Checkpoint
    from keras_lnca.training.divergence import stop_on_non_finite_loss

    guard = stop_on_non_finite_loss(Checkpoint("/nonexistent/run", "nca"))
    guard.on_epoch_begin(4)
    guard.on_train_batch_end(0, {"loss": 0.5})
    guard.on_train_batch_end(1, {})
    for value in (float("nan"), float("inf")):
        with pytest.raises(UserError, match=r"epoch 5, batch 3; no checkpoint of it was written"):
            guard.on_train_batch_end(2, {"loss": value})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)
PLACES = ["", "model", "data", "compile", "phases.0", "evaluate.0"]
KEYS = ["name", "seed", "model", "data", "phases", "evaluate", "init_from", "class", "channels",
        "hidden_channels", "train_steps", "cell", "cell_config", "noise_map", "crop_size",
        "batch_size", "crops_per_image", "degradation", "learning_rate", "metrics", "phase",
        "epochs", "limit", "baselines", "dataset", "unknown"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(place=st.sampled_from(PLACES), key=st.sampled_from(KEYS), value=JSON)
def test_any_json_in_any_key_is_a_valid_recipe_or_one_line_error(place, key, value):
    """A recipe with any JSON value at any key: checked, or refused in one line, never a traceback."""
    import json

    from keras_lnca.errors import UserError

    recipe = json.loads((REPO / "configs" / "smoke_gray.json").read_text())
    target = recipe
    for part in filter(None, place.split(".")):
        target = target[int(part)] if part.isdigit() else target[part]
    target[key] = value
    try:
        training.check_recipe(recipe)
    except UserError as error:
        assert "\n" not in str(error) and len(str(error)) < 400, str(error)
        return
    # Accepted: the run's first steps work. The model builds its weights, and the data (where
    # the benchmark data is present) yields a batch of the recipe's shape.
    model = training.build_model(recipe)
    model.build()
    assert model.count_params() > 0
    if (data_dir() / "gray" / "set12").is_dir():
        degraded, clean = training.training_data(recipe)[0]
        crop = recipe["data"].get("crop_size", 32)
        assert np.shape(clean)[1:3] == (crop, crop) and np.isfinite(degraded).all()


@pytest.mark.parametrize("text", ["[1, 2]", '"nca"', '{"nca": 3}', '{"nca": {"epochs": "x"}}', "\xff"])
def test_a_damaged_progress_file_says_what_to_delete(tmp_path, text):
    from keras_lnca.errors import UserError
    from keras_lnca.training.checkpoint import Checkpoint

    (tmp_path / "progress.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(UserError, match="progress.json is damaged; delete it"):
        Checkpoint(tmp_path, "nca").phase_progress()


def test_a_run_folder_keeps_its_recipe_and_one_run_at_a_time(tmp_path):
    from keras_lnca.errors import UserError
    from keras_lnca.training.run_folder import claimed
    from keras_lnca.training.run_folder import record_recipe

    recipe = training.load_recipe(REPO / "configs" / "smoke_gray.json")
    messages = []
    record_recipe(tmp_path, recipe, log=messages.append)
    assert (tmp_path / "recipe.json").exists() and not messages
    longer = json.loads(json.dumps(recipe))
    longer["phases"][1]["epochs"] = 5  # more epochs: recorded, not refused
    record_recipe(tmp_path, longer, log=messages.append)
    assert "the phases change" in messages[0]
    assert json.loads((tmp_path / "recipe.json").read_text())["phases"][1]["epochs"] == 5
    served = json.loads(json.dumps(longer))
    served["model"]["self_ensemble"] = 2  # an inference-only setting: recorded, not refused
    record_recipe(tmp_path, served, log=messages.append)
    assert messages[1].endswith("model.self_ensemble: None -> 2 (recorded in recipe.json)"), messages
    assert json.loads((tmp_path / "recipe.json").read_text())["model"]["self_ensemble"] == 2
    wider = json.loads(json.dumps(served))
    wider["model"]["hidden_channels"] = 64
    with pytest.raises(UserError, match=r"started with another recipe \(model.hidden_channels: None -> 64\)"):
        record_recipe(tmp_path, wider)
    with claimed(tmp_path):
        code = ("import sys\nfrom keras_lnca.training.run_folder import claimed\n"
                f"with claimed({str(tmp_path)!r}):\n    pass\n")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert "another lnca train is using" in result.stderr
    with claimed(tmp_path):  # released at the end of the block
        pass
