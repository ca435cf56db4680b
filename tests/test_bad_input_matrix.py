"""The bad-input matrix: every case runs `lnca` in a fresh subprocess.

Each case must exit with status 2, print exactly one line on stderr that
starts with `lnca <command>: error:`, never a traceback, and leave the output
folder exactly as it was (same files, same bytes). The cases cover inputs,
outputs, model files, degradation specs and recipes. The matrix does not
depend on the backend (errors come before any model runs), so it runs once,
in the JAX pass, where a subprocess starts fastest.
"""

import json
import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
from conftest import REPO
from conftest import data_dir
from PIL import Image

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="backend-independent subprocess matrix: runs once, under KERAS_BACKEND=jax",
)


def _model_file_with(path, tmp, **config_changes):
    """A copy of a shipped preset's .keras with its config changed."""
    from keras_lnca.models import presets

    source = presets.resolve("lnca_denoise_gray_s25")
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(path, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                config["config"].update(config_changes)
                data = json.dumps(config).encode()
            zout.writestr(item, data)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Inputs, models and recipes for the cases; `out/` is the folder that must not change."""
    root = tmp_path_factory.mktemp("matrix")
    rng = np.random.default_rng(0)
    (root / "in").mkdir()
    Image.fromarray((rng.random((24, 20)) * 255).astype("uint8")).save(root / "in" / "a.png")
    Image.fromarray((rng.random((24, 20, 3)) * 255).astype("uint8")).save(root / "in" / "a.jpg")
    Image.fromarray((rng.random((24, 20)) * 255).astype("uint8")).save(root / "good.png")
    Image.fromarray((rng.random((40, 40)) * 255).astype("uint8")).save(root / "big.png")
    full = (root / "good.png").read_bytes()
    (root / "truncated.png").write_bytes(full[: len(full) // 2])
    (root / "empty.png").write_bytes(b"")
    (root / "text.png").write_text("not an image")
    (root / "notes.txt").write_text("hello")
    (root / "empty_dir").mkdir()
    (root / "empty.keras").write_bytes(b"")
    with zipfile.ZipFile(root / "noconfig.keras", "w") as z:
        z.writestr("metadata.json", "{}")
    _model_file_with(root / "huge_steps.keras", root, inference_steps=10**9)
    _model_file_with(root / "wide.keras", root, hidden_channels=10**6)
    _model_file_with(root / "negative.keras", root, downsampling=-2)
    _model_file_with(root / "int.keras", root, dtype="int32")
    Image.fromarray(np.full((24, 20), 70_000, np.int32), "I").save(root / "int32.tif")
    Image.fromarray(np.full((24, 20), 128.0, np.float32), "F").save(root / "float255.tif")
    nan = np.full((24, 20), 0.5, np.float32)
    nan[3, 4] = np.nan
    Image.fromarray(nan, "F").save(root / "nan.tif")
    (root / "out").mkdir()
    (root / "out" / "keep.png").write_bytes(full)
    (root / "out" / "x.png").mkdir()
    (root / "out" / "keep.json").write_text("previous")
    (root / "a_file").write_text("a file, not a folder")
    recipe = json.loads((REPO / "configs" / "smoke_gray.json").read_text())
    recipes = {
        "epochs_str": lambda r: r["phases"][0].update(epochs="x"),
        "bad_class": lambda r: r["model"].update({"class": "Foo"}),
        "bad_arg": lambda r: r["model"].update(bogus=1),
        "no_train": lambda r: r["data"].pop("train"),
        "unknown_key": lambda r: r.update(phasez=[]),
        "crop_zero": lambda r: r["data"].update(crop_size=0),
        "bad_spec": lambda r: r["data"].update(degradation="gaussian:x"),
        "missing_data": lambda r: r["data"].update(train="no/such/folder"),
        "no_phases": lambda r: r.update(phases=[]),
        "neg_steps": lambda r: r["model"].update(inference_steps=-3),
        "no_epochs": lambda r: r["phases"][0].pop("epochs"),
        "eval_no_spec": lambda r: r["evaluate"][0].pop("degradation"),
        "eval_string": lambda r: r.update(evaluate=["gray/set12"]),
        "eval_negative_limit": lambda r: r["evaluate"][0].update(limit=-2),
        "unknown_metric": lambda r: r["compile"].update(metrics=["accuracy"]),
        "junk_init_from": lambda r: r.update(init_from="not a preset"),
        "name_escapes": lambda r: r.update(name="../../escape"),
        "empty_name": lambda r: r.update(name=""),
        "seed_negative": lambda r: r.update(seed=-1),
        "seed_huge": lambda r: r.update(seed=2**70),
        "nan_rate": lambda r: r["compile"].update(learning_rate=float("nan")),
        "huge_width": lambda r: r["model"].update(hidden_channels=10**6),
        "huge_pool": lambda r: r["model"].update(pool_size=2500, pool_image_size=256),
        "number_overflow": lambda r: r["data"].update(degradation="gaussian:" + "9" * 400),
    }
    for name, change in recipes.items():
        copy = json.loads(json.dumps(recipe))
        change(copy)
        (root / f"{name}.json").write_text(json.dumps(copy))
    (root / "broken.json").write_text("{not json")
    return root


D = "DATA"  # replaced by $LNCA_DATA
CASES = {
    # restore: inputs
    "restore missing input": ["restore", "nope.png", "-o", "out/r.png"],
    "restore empty folder": ["restore", "empty_dir", "-o", "out/r"],
    "restore text as png": ["restore", "text.png", "-o", "out/r.png"],
    "restore truncated png": ["restore", "truncated.png", "-o", "out/r.png"],
    "restore empty file": ["restore", "empty.png", "-o", "out/r.png"],
    "restore over the pixel limit": ["restore", "big.png", "-o", "out/r.png", "#LNCA_MAX_PIXELS=100"],
    "restore good then bad": ["restore", "good.png", "truncated.png", "-o", "out/r"],
    "restore 32-bit integers beyond 16 bits": ["restore", "int32.tif", "-o", "out/r.tif"],
    "restore float tiff on a 0-255 scale": ["restore", "float255.tif", "-o", "out/r.tif"],
    "restore float tiff with a NaN": ["restore", "nan.tif", "-o", "out/r.tif"],
    "restore memory budget 0": ["restore", "good.png", "-o", "out/r.png", "--memory-budget", "0"],
    # restore: outputs
    "restore onto a folder named x.png": ["restore", "good.png", "-o", "out/x.png"],
    "restore several into a file": ["restore", "good.png", "in/a.png", "-o", "out/keep.png"],
    "restore to .psd": ["restore", "good.png", "-o", "out/r.psd"],
    "restore to .h5": ["restore", "good.png", "-o", "out/r.h5"],
    "restore to no extension writer": ["restore", "good.png", "-o", "out/r.xyz"],
    "restore under a file": ["restore", "good.png", "-o", "a_file/r.png"],
    "restore onto an existing file": ["restore", "good.png", "-o", "out/keep.png"],
    "restore two inputs one name": ["restore", "in", "-o", "out"],
    # restore: options and models
    "restore negative steps": ["restore", "good.png", "-o", "out/r.png", "--steps", "-1"],
    "restore too many steps": ["restore", "good.png", "-o", "out/r.png", "--steps", "100000"],
    "restore tiny tile": ["restore", "good.png", "-o", "out/r.png", "--tile", "3"],
    "restore negative tile": ["restore", "good.png", "-o", "out/r.png", "--tile", "-5"],
    "restore noise level 300": ["restore", "good.png", "-o", "out/r.png", "--noise-level", "300"],
    "restore noise level nan": ["restore", "good.png", "-o", "out/r.png", "--noise-level", "nan"],
    "restore unknown preset": ["restore", "good.png", "-o", "out/r.png", "--preset", "nope"],
    "restore missing model": ["restore", "good.png", "-o", "out/r.png", "--model", "nope.keras"],
    "restore text model": ["restore", "good.png", "-o", "out/r.png", "--model", "notes.txt"],
    "restore empty model": ["restore", "good.png", "-o", "out/r.png", "--model", "empty.keras"],
    "restore zip without config": ["restore", "good.png", "-o", "out/r.png", "--model", "noconfig.keras"],
    "restore 1e9-step model": ["restore", "good.png", "-o", "out/r.png", "--model", "huge_steps.keras"],
    # evaluate
    "evaluate nothing": ["evaluate", "--dataset", "in", "--degradation", "gaussian:25"],
    "evaluate missing dataset": ["evaluate", "--dataset", "nope", "--degradation", "gaussian:25",
                                 "--baseline", "identity"],
    "evaluate empty dataset": ["evaluate", "--dataset", "empty_dir", "--degradation", "gaussian:25",
                               "--baseline", "identity"],
    "evaluate spec without value": ["evaluate", "--dataset", "in", "--degradation", "gaussian",
                                    "--baseline", "identity"],
    "evaluate negative sigma": ["evaluate", "--dataset", "in", "--degradation", "gaussian:-5",
                                "--baseline", "identity"],
    "evaluate huge motion": ["evaluate", "--dataset", "in", "--degradation", "motion:100000",
                             "--baseline", "identity"],
    "evaluate impulse p 2": ["evaluate", "--dataset", "in", "--degradation", "impulse:2",
                             "--baseline", "identity"],
    "evaluate unknown stage": ["evaluate", "--dataset", "in", "--degradation", "fog:3",
                               "--baseline", "identity"],
    "evaluate bm3d on impulse": ["evaluate", "--dataset", "in", "--degradation", "impulse:0.5",
                                 "--baseline", "bm3d"],
    "evaluate wiener without blur": ["evaluate", "--dataset", "in", "--degradation", "gaussian:25",
                                     "--baseline", "wiener"],
    "evaluate missing kernel file": ["evaluate", "--dataset", "in", "--degradation", "blur:no.npz",
                                     "--baseline", "identity"],
    "evaluate json exists": ["evaluate", "--dataset", "in", "--degradation", "gaussian:25",
                             "--baseline", "identity", "--json", "out/keep.json"],
    "evaluate json missing folder": ["evaluate", "--dataset", "in", "--degradation", "gaussian:25",
                                     "--baseline", "identity", "--json", "out/no/r.json"],
    "evaluate json is a folder": ["evaluate", "--dataset", "in", "--degradation", "gaussian:25",
                                  "--baseline", "identity", "--json", "out/x.png"],
    "evaluate text model": ["evaluate", "--dataset", "in", "--degradation", "gaussian:25",
                            "--model", "notes.txt"],
    "evaluate missing model": ["evaluate", "--dataset", "in", "--degradation", "gaussian:25",
                               "--model", "nope.keras"],
    "evaluate unknown preset": ["evaluate", "--dataset", "in", "--degradation", "gaussian:25",
                                "--preset", "nope"],
    # train: recipes
    "train missing recipe": ["train", "--config", "nope.json", "--run-dir", "out/run"],
    "train invalid json": ["train", "--config", "broken.json", "--run-dir", "out/run"],
    "train epochs string": ["train", "--config", "epochs_str.json", "--run-dir", "out/run"],
    "train unknown class": ["train", "--config", "bad_class.json", "--run-dir", "out/run"],
    "train unknown model argument": ["train", "--config", "bad_arg.json", "--run-dir", "out/run"],
    "train no data.train": ["train", "--config", "no_train.json", "--run-dir", "out/run"],
    "train unknown key": ["train", "--config", "unknown_key.json", "--run-dir", "out/run"],
    "train crop size 0": ["train", "--config", "crop_zero.json", "--run-dir", "out/run"],
    "train bad degradation": ["train", "--config", "bad_spec.json", "--run-dir", "out/run"],
    "train no phases": ["train", "--config", "no_phases.json", "--run-dir", "out/run"],
    "train negative inference steps": ["train", "--config", "neg_steps.json", "--run-dir", "out/run"],
    "train missing data folder": ["train", "--config", "missing_data.json", "--run-dir", "out/run"],
    "train negative epochs scale": ["train", "--config", str(REPO / "configs" / "smoke_gray.json"),
                                    "--run-dir", "out/run", "--epochs-scale", "-1"],
    "train recipe without epochs": ["train", "--config", "no_epochs.json", "--run-dir", "out/run"],
    "train evaluate without spec": ["train", "--config", "eval_no_spec.json", "--run-dir", "out/run"],
    "train evaluate as a string": ["train", "--config", "eval_string.json", "--run-dir", "out/run"],
    "train negative eval limit": ["train", "--config", "eval_negative_limit.json", "--run-dir", "out/run"],
    "train unknown metric": ["train", "--config", "unknown_metric.json", "--run-dir", "out/run"],
    "train junk init_from": ["train", "--config", "junk_init_from.json", "--run-dir", "out/run"],
    "train name with ../": ["train", "--config", "name_escapes.json", "--run-dir", "out/run"],
    "train empty name": ["train", "--config", "empty_name.json", "--run-dir", "out/run"],
    "train seed -1": ["train", "--config", "seed_negative.json", "--run-dir", "out/run"],
    "train seed 2**70": ["train", "--config", "seed_huge.json", "--run-dir", "out/run"],
    "train nan learning rate": ["train", "--config", "nan_rate.json", "--run-dir", "out/run"],
    "train absurd width": ["train", "--config", "huge_width.json", "--run-dir", "out/run"],
    "train 4 GiB pool": ["train", "--config", "huge_pool.json", "--run-dir", "out/run"],
    "train 400-digit sigma": ["train", "--config", "number_overflow.json", "--run-dir", "out/run"],
    "train nan epochs scale": ["train", "--config", str(REPO / "configs" / "smoke_gray.json"),
                               "--run-dir", "out/run", "--epochs-scale", "nan"],
    # seeds and numbers
    "evaluate seed -1": ["evaluate", "--dataset", "in", "--degradation", "gaussian:25",
                         "--baseline", "identity", "--seed", "-1"],
    "evaluate seed 2**70": ["evaluate", "--dataset", "in", "--degradation", "gaussian:25",
                            "--baseline", "identity", "--seed", str(2**70)],
    "evaluate steps 20000": ["evaluate", "--dataset", "in", "--degradation", "gaussian:25",
                             "--preset", "lnca_denoise_gray_s25", "--steps", "20000"],
    "evaluate 400-digit sigma": ["evaluate", "--dataset", "in", "--degradation", "gaussian:" + "9" * 400,
                                 "--baseline", "identity"],
    "evaluate superscript limit": ["evaluate", "--dataset", "in", "--degradation", "gaussian:25",
                                   "--baseline", "identity", "--limit", "\u00b2"],
    "demo seed -1": ["demo", "-o", "out/demo.png", "--seed", "-1"],
    "restore noise level inf": ["restore", "good.png", "-o", "out/r.png", "--noise-level", "inf"],
    "export steps 20000": ["export", "--preset", "lnca_denoise_gray_s25", "--format", "tflite",
                           "-o", "out/m.tflite", "--steps", "20000"],
    "export size 60000": ["export", "--preset", "lnca_denoise_gray_s25", "--format", "tflite",
                          "-o", "out/m.tflite", "--size", "60000,60000"],
    "benchmark quality steps 20000": ["benchmark", "quality", "--preset", "lnca_denoise_gray_s25",
                                      "--dataset", "in", "--degradation", "gaussian:25",
                                      "--steps", "8,20000"],
    "benchmark quality seed -1": ["benchmark", "quality", "--preset", "lnca_denoise_gray_s25",
                                  "--dataset", "in", "--degradation", "gaussian:25", "--seed", "-1"],
    # model files whose config asks for absurd sizes
    "restore model of absurd width": ["restore", "good.png", "-o", "out/r.png", "--model", "wide.keras"],
    "restore model of negative downsampling": ["restore", "good.png", "-o", "out/r.png",
                                               "--model", "negative.keras"],
    "restore model with an int dtype": ["restore", "good.png", "-o", "out/r.png", "--model", "int.keras"],
    # export, demo, benchmark
    "export unknown preset": ["export", "--preset", "nope", "--format", "tflite", "-o", "out/m.tflite"],
    "export missing model": ["export", "--model", "nope.keras", "--format", "tflite", "-o", "out/m.tflite"],
    "export into a missing folder": ["export", "--preset", "lnca_denoise_gray_s25", "--format", "tflite",
                                     "-o", "out/no/m.tflite"],
    "demo not a png": ["demo", "-o", "out/demo.txt"],
    # one overwrite rule for every command that writes
    "demo onto an existing file": ["demo", "-o", "out/keep.png"],
    "demo onto a folder named x.png": ["demo", "-o", "out/x.png"],
    "benchmark noise json exists": ["benchmark", "noise", "--dataset", "in", "--json", "out/keep.json"],
    "benchmark quality json exists": ["benchmark", "quality", "--preset", "lnca_denoise_gray_s25",
                                      "--dataset", "in", "--degradation", "gaussian:25",
                                      "--json", "out/keep.json"],
    "benchmark large markdown exists": ["benchmark", "large", "--markdown", "out/keep.png"],
    "benchmark color json exists": ["benchmark", "color", "--preset", "lnca_denoise_color_blind",
                                    "--dataset", "in", "--json", "out/keep.json"],
    "benchmark color bad sigmas": ["benchmark", "color", "--preset", "lnca_denoise_color_blind",
                                   "--dataset", "in", "--sigmas", "15,x"],
    "benchmark color gray model": ["benchmark", "color", "--preset", "lnca_denoise_gray_s25",
                                   "--dataset", "in", "--sigmas", "15"],
    "demo unknown preset": ["demo", "--preset", "nope", "-o", "out/demo.png"],
    "benchmark quality unknown preset": ["benchmark", "quality", "--preset", "nope", "--dataset", "in",
                                         "--degradation", "gaussian:25", "--steps", "2,4"],
    "benchmark quality missing dataset": ["benchmark", "quality", "--dataset", "nope",
                                          "--degradation", "gaussian:25", "--steps", "2,4"],
}


def snapshot(folder):
    return {
        str(p.relative_to(folder)): (p.is_dir(), p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


def test_the_matrix_is_large():
    assert len(CASES) >= 60, len(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_in_one_line(world, case):
    argv = [a for a in CASES[case] if not a.startswith("#")]
    extra_env = dict(a[1:].split("=", 1) for a in CASES[case] if a.startswith("#"))
    if case == "train missing data folder" and not data_dir().exists():
        pytest.skip(f"benchmark data not found at {data_dir()} (set LNCA_DATA)")
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2", **extra_env)
    before = snapshot(world / "out")
    command = [sys.executable, "-c", "import sys; from keras_lnca.cli import main; sys.exit(main())",
               *argv]
    result = subprocess.run(command, cwd=world, env=env, capture_output=True, text=True, timeout=300)
    err = result.stderr
    assert result.returncode == 2, (case, result.returncode, err[-2000:])
    assert "Traceback" not in err, err
    assert err.count("\n") == 1 and err.startswith(f"lnca {argv[0]}: error: "), err
    assert snapshot(world / "out") == before, f"{case}: the output folder changed"


def test_sigterm_during_a_multi_file_restore_leaves_no_partial_file(tmp_path):
    """SIGTERM is handled like Ctrl-C: the file being written is removed, the finished ones
    are whole, and the command says it was interrupted."""
    import signal
    import time

    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(300):
        Image.fromarray((rng.random((96, 96)) * 255).astype("uint8")).save(folder / f"{i:03d}.png")
    out = tmp_path / "out"
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-c", "import sys; from keras_lnca.cli import main; sys.exit(main())",
               "restore", str(folder), "-o", str(out)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not (out.exists() and len(list(out.glob("*.png"))) >= 3):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    written = sorted(out.glob("*.png"))
    assert 3 <= len(written) < 300, len(written)
    assert process.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == "lnca restore: interrupted"
    assert not [p for p in out.iterdir() if p.name.startswith(".")], list(out.iterdir())
    for path in written:  # every file that exists is a whole image
        with Image.open(path) as image:
            image.load()
