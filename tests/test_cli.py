"""The `lnca` command line: train, restore, demo; one-line errors, no partial files."""

import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO
from conftest import data_dir
from PIL import Image

from keras_lnca import cli
from keras_lnca.models import presets


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def smoke_model(tmp_path_factory):
    if not (data_dir() / "gray" / "set12").exists():
        pytest.skip(f"benchmark data not found at {data_dir()} (set LNCA_DATA)")
    out = tmp_path_factory.mktemp("smoke")
    code = cli.main(["train", "--config", str(REPO / "configs" / "smoke_gray.json"),
                     "--run-dir", str(out / "run"), "-o", str(out)])
    assert code == 0
    return out / "smoke_gray.keras"


def test_train_writes_preset_and_card(smoke_model):
    card = json.loads(smoke_model.with_suffix(".json").read_text())
    assert card["name"] == "smoke_gray"
    assert card["training_command"].startswith("lnca train --config")
    assert [p["phase"] for p in card["training"]["phases"]] == ["autoencoder", "nca"]
    methods = [r["method"] for r in card["metrics"][0]["results"]]
    assert methods == ["model:smoke_gray", "identity"]
    assert {"psnr", "ssim", "noisy_psnr"} <= set(card["demo"])


def test_train_resumes_finished_phases(smoke_model, capsys):
    run_dir = smoke_model.parent / "run"
    code, out, _ = run_cli(capsys, "train", "--config", REPO / "configs" / "smoke_gray.json",
                           "--run-dir", run_dir, "-o", smoke_model.parent / "again", "--no-eval")
    assert code == 0
    assert "already trained" in out
    # The card of a run that only re-saves still describes its phases.
    card = json.loads((smoke_model.parent / "again" / "smoke_gray.json").read_text())
    assert [p["phase"] for p in card["training"]["phases"]] == ["autoencoder", "nca"]
    assert all(p["epochs"] > 0 and p["steps"] > 0 for p in card["training"]["phases"])


def test_restore_files_and_folders(smoke_model, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((20, 24)) * 255).astype("uint8")).save(folder / "a.png")
    Image.fromarray((rng.random((17, 9, 3)) * 255).astype("uint8")).save(folder / "b.png")
    code, out, err = run_cli(capsys, "restore", folder, "-o", tmp_path / "out", "--model", smoke_model)
    assert code == 0, err
    assert Image.open(tmp_path / "out" / "a.png").size == (24, 20)
    assert Image.open(tmp_path / "out" / "b.png").size == (9, 17)
    code, _, err = run_cli(capsys, "restore", folder / "a.png", "-o", tmp_path / "one.png",
                           "--model", smoke_model, "--steps", 1, "--tile", 16)
    assert code == 0, err and (tmp_path / "one.png").exists()


def test_restore_errors_are_one_line_and_leave_files_alone(smoke_model, tmp_path, capsys):
    code, _, err = run_cli(capsys, "restore", tmp_path / "missing.png", "-o", tmp_path / "o.png",
                           "--model", smoke_model)
    assert code == 2 and err.count("\n") == 1 and "missing.png" in err
    (tmp_path / "bad.png").write_bytes(b"not an image")
    code, _, err = run_cli(capsys, "restore", tmp_path / "bad.png", "-o", tmp_path / "o.png",
                           "--model", smoke_model)
    assert code == 2 and err.count("\n") == 1
    assert not (tmp_path / "o.png").exists()
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((16, 16), "uint8")).save(good)
    existing = tmp_path / "exists.png"
    existing.write_bytes(b"keep me")
    code, _, err = run_cli(capsys, "restore", good, "-o", existing, "--model", smoke_model)
    assert code == 2 and existing.read_bytes() == b"keep me"
    code, _, err = run_cli(capsys, "restore", good, "-o", tmp_path / "x.png", "--preset", "no_such_preset")
    assert code == 2 and "no_such_preset" in err and err.count("\n") == 1
    not_ours = tmp_path / "other.keras"
    shutil.copy(good, not_ours)
    code, _, err = run_cli(capsys, "restore", good, "-o", tmp_path / "y.png", "--model", not_ours)
    assert code == 2 and err.count("\n") == 1


def test_demo_gains_over_noisy_and_matches_the_preset_card(tmp_path, capsys):
    name = "lnca_denoise_gray_s25"
    assert name in presets.list()
    output = tmp_path / "demo.png"
    code, out, err = run_cli(capsys, "demo", "-o", output)
    assert code == 0, err
    assert Image.open(output).size[0] > 3 * 256
    lines = {line.split()[0]: line for line in out.splitlines() if "PSNR" in line}
    noisy = float(lines["noisy"].split("PSNR")[1].split()[0])
    restored = float(lines["restored"].split("PSNR")[1].split()[0])
    assert restored >= noisy + 5.0
    assert abs(restored - presets.metadata(name)["demo"]["psnr"]) < 0.05


def test_console_script_runs_the_readme_demo(tmp_path):
    """`lnca demo`, the README's main command, as an installed console script."""
    lnca = shutil.which("lnca") or str(pathlib.Path(sys.executable).parent / "lnca")
    result = subprocess.run([lnca, "demo", "-o", str(tmp_path / "d.png")], capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "d.png").exists() and "restored" in result.stdout


def test_restore_without_preset_keeps_colour_and_gray(tmp_path, capsys):
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((24, 20, 3)) * 255).astype("uint8")).save(tmp_path / "colour.png")
    Image.fromarray((rng.random((24, 20)) * 255).astype("uint8")).save(tmp_path / "gray.png")
    code, _, err = run_cli(capsys, "restore", tmp_path / "colour.png", tmp_path / "gray.png",
                           "-o", tmp_path / "out")
    assert code == 0, err
    with Image.open(tmp_path / "out" / "colour.png") as image:
        assert image.mode == "RGB" and image.size == (20, 24)
    with Image.open(tmp_path / "out" / "gray.png") as image:
        assert image.mode == "L"
    assert presets.default_for(3) != presets.default_for(1)


def test_presets_lists_every_shipped_preset(capsys):
    code, out, _ = run_cli(capsys, "presets")
    assert code == 0
    for name in presets.list():
        assert name in out
        assert f"{presets.summary(name)['parameters']:,} parameters" in out
    code, out, _ = run_cli(capsys, "presets", "--json")
    rows = json.loads(out)
    assert [r["name"] for r in rows] == presets.list()
    assert all(r["channels"] in (1, 3) and r["headline"] for r in rows)


def test_help_and_presets_import_no_backend():
    probe = (
        "import sys\n"
        "sys.argv = ['lnca']\n"
        "from keras_lnca import cli\n"
        "for argv in (['--help'], ['restore', '--help'], ['train', '--help'], ['demo', '--help']):\n"
        "    try:\n"
        "        cli.main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "cli.main(['presets'])\n"
        "cli.main([])\n"
        "print('LOADED', [m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout
    assert "lnca demo" in result.stdout  # the tour
    assert result.stderr == ""


def test_several_inputs_into_a_file_name_are_refused(tmp_path, capsys):
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((8, 8), "uint8")).save(tmp_path / name)
    code, _, err = run_cli(capsys, "restore", tmp_path / "a.png", tmp_path / "b.png",
                           "-o", tmp_path / "x.png")
    assert code != 0 and "end it with '/'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("level", [None, "2"])
def test_import_prints_nothing(backend, level):
    """`import keras_lnca` on this pass's backend: no native start-up lines, also when
    `TF_CPP_MIN_LOG_LEVEL` is set to a level that TensorFlow applies only later."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update({"KERAS_BACKEND": backend}, **({} if level is None else {"TF_CPP_MIN_LOG_LEVEL": level}))
    result = subprocess.run([sys.executable, "-c", "import keras_lnca"], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0 and result.stderr == "" and result.stdout == ""


@pytest.mark.parametrize(
    "argv, message",
    [
        (["restore", "nope.png", "-o", "x.png"], "No such file"),
        (["restore", "nope.png", "-o", "x.png", "--noise-level", "300"], "between 0.0 and 255.0"),
        # Numbers, under one rule for every command: ASCII digits, finite, within bounds.
        (["restore", "a.png", "-o", "x.png", "--noise-level", "nan"], "expected a finite number"),
        (["restore", "a.png", "-o", "x.png", "--tile", "4"], "--tile: expected an integer >= 8"),
        (["restore", "a.png", "-o", "x.png", "--steps", "20000"], "between 0 and 10000"),
        (["evaluate", "--dataset", ".", "--seed", "-1"], "--seed: expected an integer between 0"),
        (["evaluate", "--dataset", ".", "--seed", "9" * 400], "--seed: expected an integer"),
        (["evaluate", "--dataset", ".", "--steps", "\u00b2"], "--steps: expected an integer"),
        (["demo", "--seed", str(2**70)], "--seed: expected an integer between 0"),
        (["export", "--model", "m.keras", "--format", "tflite", "-o", "m.tflite", "--steps", "20000"], "--steps: expected an integer"),
        (["export", "--model", "m.keras", "--format", "tflite", "-o", "m.tflite", "--size", "60000,60000"], "from 8 to 8192"),
        (["train", "--config", "c.json", "--epochs-scale", "inf"], "--epochs-scale: expected a finite"),
        (["benchmark", "quality", "--preset", "lnca_denoise_gray_s25", "--dataset", ".", "--steps", "8,20000"],
         "from 1 to 10000"),
        (["benchmark", "quality", "--dataset", ".", "--seed", "-1"], "--seed: expected an integer"),
        (["evaluate", "--dataset", "/no/such/folder", "--baseline", "identity"], "no such dataset"),
        (["evaluate", "--dataset", ".", "--baseline", "identity", "--degradation", "gauss:5"], "stage"),
    ],
)
def test_user_errors_come_before_any_framework_import(argv, message):
    code = (
        "import sys; sys.argv = ['lnca']\n"
        "from keras_lnca import cli\n"
        f"status = cli.main({argv!r})\n"
        "frameworks = {'keras', 'tensorflow', 'jax', 'torch'} & set(sys.modules)\n"
        "print(status, sorted(frameworks) or 'none')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["2", "none"], result.stdout + result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_model_with_broken_weights_writes_no_file(tmp_path, capsys):
    import keras_lnca as kl

    model = kl.LNCA(channels=1, cell="conv", autoencoder="space_to_depth", hidden_channels=4,
                    inference_steps=2, pool_size=0, cell_config={"perception_channels": 4, "hidden_units": 4})
    model.build()
    bias = model.nca.cell.head.bias
    bias.assign(np.full(bias.shape, np.nan, "float32"))
    model.save(tmp_path / "broken.keras")
    Image.fromarray(np.full((16, 16), 128, "uint8")).save(tmp_path / "in.png")
    code, _, err = run_cli(capsys, "restore", tmp_path / "in.png", "-o", tmp_path / "out.png",
                           "--model", tmp_path / "broken.keras")
    assert code == 2 and "NaN" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.png").exists()


def test_a_command_imports_no_other_command():
    """`lnca restore` builds its own parser only: the other commands and the benchmarks
    are not imported (`lnca --help` still lists every command)."""
    code = ("import sys\nfrom keras_lnca import cli\ncli.main(['restore', 'nope.png', '-o', 'x.png'])\n"
            "print(sorted(m for m in sys.modules if m.startswith(('keras_lnca.commands.', "
            "'keras_lnca.benchmarks'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "['keras_lnca.commands.arguments', 'keras_lnca.commands.restore']", result
    assert "No such file" in result.stderr
    listing = subprocess.run([sys.executable, "-m", "keras_lnca.cli", "--help"], capture_output=True,
                             text=True, timeout=120).stdout
    assert all(f"    {name} " in listing for name in ("demo", "restore", "evaluate", "train", "export"))
