"""Every command and code block of README.md is exercised, by a test here or elsewhere, or by CI.

The blocks and commands are read from README.md itself, so these tests fail when the README
drifts from the package. `test_every_readme_command_is_covered` lists each command with the
test or CI line that runs it; a new command in the README fails it until it is covered.
Every python block runs exactly as written (the README itself uses small settings).
"""

import functools
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import REPO
from conftest import data_dir
from PIL import Image

import keras_lnca as kl
from keras_lnca import cli
from keras_lnca.models import LNCA

README = (REPO / "README.md").read_text()
PRESET = "lnca_denoise_gray_s25"
BACKEND = keras.backend.backend()
ONCE = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="backend-independent or slow: runs once, under KERAS_BACKEND=tensorflow",
)
# A small automaton for the README's `kl.LNCA(...)`: the paper's one unrolls 32 training steps,
# which takes one to two minutes to compile on a CPU.


# ---------------------------------------------------------------- reading the README

def code_blocks(language=None):
    """`(language, text)` of each fenced block, in order."""
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", README, re.M | re.S)
    return [(lang, text) for lang, text in blocks if language is None or lang == language]


def python_block(marker):
    """The one python block that contains `marker`."""
    found = [text for _, text in code_blocks("python") if marker in text]
    assert len(found) == 1, f"{len(found)} python blocks in README.md contain {marker!r}"
    return found[0]


def commands():
    """Shell commands: lines of non-python blocks and inline code that starts like a command."""
    found = []
    for language, text in code_blocks():
        if language == "python":
            continue
        for line in text.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line:
                found.append(line)
    prose = re.sub(r"^```.*?^```", "", README, flags=re.M | re.S)
    starts = ("lnca ", "pip ", "python ", "bash ", "KERAS_BACKEND=")
    found += [span for span in re.findall(r"`([^`\n]+)`", prose) if span.startswith(starts)]
    return found


def readme_command(prefix):
    matches = [c for c in commands() if c.startswith(prefix)]
    assert matches, f"README.md has no command starting with {prefix!r}"
    return matches[0]


# Each README command (a regular expression) and what runs it: `test:FILE::FUNCTION` or
# `ci:TEXT` (a line of .ci/run containing TEXT).
COVERAGE = [
    (r"pip install torch==2\.13\.0( --index-url \S+)?", ["ci:pip install -q \"torch==2.13.0\""]),
    (r"pip install -e \"\.\[all,test\]\"", ["ci:-e \".[all,test,notebooks]\"",
                                            "test:test_readme.py::test_every_readme_command_is_covered"]),
    (r"pip install keras-lnca\[\w+\]",
     ["test:test_packaging.py::test_wheel_installs_presets_and_runs_the_demo"]),
    (r"lnca demo", ["test:test_cli.py::test_console_script_runs_the_readme_demo",
                    "test:test_cli.py::test_demo_gains_over_noisy_and_matches_the_preset_card",
                    "test:test_packaging.py::test_wheel_installs_presets_and_runs_the_demo"]),
    (r"python -m pytest -q -rs tests", ["ci:python -m pytest -q -rs -p no:cacheprovider tests"]),
    (r"python -m pytest -q -m \"not slow\" tests", ["test:test_readme.py::test_the_quick_subset_leaves_out_the_slow_modules"]),
    (r"bash \.ci/run", ["ci:KERAS_BACKEND=$backend python -m pytest"]),
    (r"KERAS_BACKEND=(tensorflow|jax|torch)", ["ci:for backend in tensorflow jax torch"]),
    (r"lnca restore IN \[IN \.\.\.\] -o OUT \[--preset NAME\|--model FILE\] \[--noise-level SIGMA\] "
     r"\[--self-ensemble N\] \[--steps N\] \[--tile PX\] \[--memory-budget MB\] \[--overwrite\] \[--keep-going\]",
     ["test:test_readme.py::test_readme_restore_and_evaluate_synopsis",
      "test:test_cli.py::test_restore_files_and_folders"]),
    (r"lnca evaluate \[--preset NAME\|--model FILE\] --dataset DIR --degradation SPEC "
     r"\[--baseline identity\|bm3d\|wiener\|median \.\.\.\] \[--noise-level estimate\|told\] "
     r"\[--self-ensemble N \.\.\.\] \[--json OUT\]",
     ["test:test_readme.py::test_readme_restore_and_evaluate_synopsis",
      "test:test_evaluation.py::test_evaluate_cli_writes_json"]),
    (r"lnca evaluate --dataset \.\./shared/data/gray/bsd68 --degradation gaussian:25 --baseline bm3d",
     ["test:test_readme.py::test_readme_bm3d_footnote_command"]),
    (r"lnca export --preset \S+ --format tflite --quantization float16 --size 256,256 -o m\.tflite",
     ["test:test_readme.py::test_readme_export_command"]),
    (r"lnca benchmark large", ["test:test_benchmark_large.py::test_cli_large_in_fresh_subprocesses"]),
    (r"lnca benchmark color", ["test:test_benchmark_color.py::test_cli_color_benchmark"]),
    (r"KERAS_BACKEND=jax python examples/learn_denoising\.py --minutes \d+ --ae-fraction [\d.]+",
     ["test:test_readme.py::test_readme_learning_script_smoke"]),
    (r"KERAS_BACKEND=jax python examples/distributed_training\.py --cpu-devices 2",
     ["test:test_distributed.py::test_example_trains_with_jax_data_parallel"]),
    (r"KERAS_BACKEND=tensorflow python examples/distributed_training\.py --cpu-devices 2",
     ["test:test_distributed.py::test_example_trains_with_mirrored_strategy_on_an_image_folder"]),
]
COVERAGE += [
    (r"lnca presets", ["test:test_cli.py::test_presets_lists_every_shipped_preset"]),
    (r"lnca restore", ["test:test_cli.py::test_restore_without_preset_keeps_colour_and_gray"]),
    (r"lnca evaluate --json",
     ["test:test_evaluation.py::test_evaluate_json_is_never_overwritten_without_overwrite"]),
    (r"lnca train", ["test:test_cli.py::test_train_writes_preset_and_card"]),
    (r"lnca evaluate", ["test:test_evaluation.py::test_evaluate_cli_writes_json"]),
    (r"python examples/compare_presets\.py", ["test:test_readme.py::test_compare_presets_example"]),
]
PYTHON_BLOCKS = {   # a marker of each python block -> the test that executes it
    "pairs = kl.data.FolderPyDataset(photos": "test_readme_api_block_runs",
    "model.fit(photos": "test_readme_finetune_block_runs",
    "kl.export.export_tflite(": "test_readme_export_block_runs",
}


def test_every_readme_command_is_covered():
    ci = (REPO / ".ci" / "run").read_text()
    uncovered = []
    for command in commands():
        rules = [evidence for pattern, evidence in COVERAGE if re.fullmatch(pattern, command)]
        if not rules:
            uncovered.append(command)
            continue
        for evidence in rules[0]:
            kind, _, where = evidence.partition(":")
            if kind == "ci":
                assert where in ci, f"{command!r}: .ci/run no longer contains {where!r}"
            else:
                file, _, function = where.partition("::")
                source = (REPO / "tests" / file).read_text()
                assert re.search(rf"^def {function}\(", source, re.M), f"{command!r}: no {where}"
    assert not uncovered, f"README commands that no test or CI line runs: {uncovered}"
    # The README's editable install names extras that CI installs too.
    ci_extras = set(re.search(r'-e "\.\[([\w,]+)\]"', ci).group(1).split(","))
    for group in re.findall(r'-e "\.\[([\w,]+)\]"', README):
        assert set(group.split(",")) <= ci_extras
    # Every python block is executed by one of the tests below.
    for _, text in code_blocks("python"):
        owners = [test for marker, test in PYTHON_BLOCKS.items() if marker in text]
        assert len(owners) == 1, f"python block without exactly one test:\n{text}"
        assert re.search(rf"^def {owners[0]}\(", (REPO / "tests" / "test_readme.py").read_text(), re.M)
    # The tests the README cites exist.
    for file, cls, function in re.findall(r"`tests/(test_\w+\.py)::(?:(\w+)::)?(\w+)`", README):
        source = (REPO / "tests" / file).read_text()
        if cls:  # a method of a test class: `class Name(...)` holds `def function(`
            body = re.search(rf"^class {cls}\b.*?(?=^\S|\Z)", source, re.M | re.S)
            assert body and re.search(rf"^    def {function}\(", body.group(0), re.M), (cls, function)
        else:
            assert re.search(rf"^def {function}\(", source, re.M), function


def test_readme_degradation_specs_are_tested():
    import test_degradations

    line = next(line for line in README.splitlines() if line.startswith("Degradation specs:"))
    paragraph = README[README.index(line):].split("\n\n")[0]
    specs = re.findall(r"`([a-z0-9:.,-]+)`", paragraph)
    assert len(specs) >= 6, specs
    # test_degradations parses and applies each of its DESIGN_SPECS.
    assert not set(specs) - set(test_degradations.DESIGN_SPECS), specs


# ---------------------------------------------------------------- executing the python blocks

def write_crops(folder, count=5, size=64):
    """`count` gray crops of the shipped demo image (five: the README's blocks must run on a
    folder as small as a user's first try)."""
    from keras_lnca.shipped_image import demo_image

    folder.mkdir(parents=True)
    clean = demo_image(1)[..., 0]
    paths = []
    for i in range(count):
        top, left = 24 * (i // 4), 48 * (i % 4)
        path = folder / f"crop_{i}.png"
        Image.fromarray(np.round(clean[top : top + size, left : left + size] * 255).astype("uint8")).save(path)
        paths.append(path)
    return paths


def test_readme_api_block_runs(tmp_path, monkeypatch):
    """The API block exactly as written, on every backend, in a folder whose `my_photos/` holds
    five photos."""
    write_crops(tmp_path / "my_photos")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(python_block("pairs = kl.data.FolderPyDataset(photos"), "README.md", "exec"), namespace)
    assert isinstance(namespace["restored"], np.ndarray)
    assert namespace["restored"].shape == namespace["image"].shape
    assert (tmp_path / "denoiser.keras").stat().st_size > 0
    saved = keras.saving.load_model(tmp_path / "denoiser.keras")
    assert saved.phase == "nca" and saved.train_steps == (4, 8)
    assert isinstance(namespace["model"], LNCA)


def test_readme_data_snippets(tmp_path):
    """The inline `kl.data...(...)` expressions of the API section."""
    write_crops(tmp_path / "folder")
    snippets = [s for s in re.findall(r"`(kl\.data\.\w+\([^`]*\))`", README)]
    assert snippets
    for snippet in snippets:
        dataset = eval(snippet, {"kl": kl, "folder": str(tmp_path / "folder")})
        degraded, clean = next(iter(dataset))
        degraded, clean = np.asarray(degraded), np.asarray(clean)
        if "noise_map=True" in snippet:  # the level travels as a last channel, sigma/255
            degraded, noise_map = degraded[..., :-1], degraded[..., -1]
            assert 0 <= noise_map.min() and noise_map.max() <= 55 / 255 + 1e-6
        assert degraded.shape == clean.shape and degraded.shape[1:3] == (32, 32)
        assert 0 <= clean.min() and clean.max() <= 1 and not np.allclose(degraded, clean)


def test_readme_finetune_block_runs(tmp_path, monkeypatch):
    """Fine-tuning the preset on a folder of five photos, exactly as written, on every backend."""
    write_crops(tmp_path / "my_photos")
    monkeypatch.chdir(tmp_path)
    block = python_block("model.fit(photos")
    folder = re.search(r'FolderPyDataset\("([^"]+)"', block).group(1)
    assert (tmp_path / folder).is_dir(), folder
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)  # exactly as written
    model = namespace["model"]
    steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    assert model.phase == "nca" and steps == 3 * len(namespace["photos"]) >= 3
    # The comment's follow-up command restores with the fine-tuned file.
    follow_up = re.search(r"then: (lnca restore IN -o OUT --model (\S+))", block)
    assert follow_up and (tmp_path / follow_up.group(2)).exists()
    argv = shlex.split(follow_up.group(1))[1:]
    argv[argv.index("IN")], argv[argv.index("OUT")] = "my_photos/crop_0.png", "restored.png"
    assert cli.main(argv) == 0
    assert Image.open(tmp_path / "restored.png").size == (64, 64)


def test_readme_export_block_runs(tmp_path, monkeypatch):
    """The export block, exactly as written, on every backend (conversion runs on TensorFlow)."""
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(python_block("kl.export.export_tflite("), "README.md", "exec"), namespace)
    report = namespace["report"]
    assert report.verified
    assert (tmp_path / "denoise.tflite").exists() and (tmp_path / "denoise_f16.tflite").exists()
    assert (tmp_path / "denoise_f16.tflite").stat().st_size < 0.7 * (tmp_path / "denoise.tflite").stat().st_size
    assert (tmp_path / "denoise_savedmodel" / "saved_model.pb").exists()


# ---------------------------------------------------------------- the commands

@ONCE
def test_readme_export_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(kl.export, "export_tflite", functools.partial(kl.export.export_tflite, num_images=1))
    argv = shlex.split(readme_command("lnca export"))
    assert cli.main(argv[1:]) == 0, capsys.readouterr().err
    assert "(1, 256, 256, 1)" in capsys.readouterr().out
    assert (tmp_path / argv[argv.index("-o") + 1]).stat().st_size > 0


@ONCE
def test_readme_restore_and_evaluate_synopsis(tmp_path, capsys):
    """`lnca restore` and `lnca evaluate` with a preset, with each option the synopsis shows."""
    images = write_crops(tmp_path / "set", count=2, size=64)
    synopsis = readme_command("lnca restore IN")
    for option in ("--preset", "--model", "--noise-level", "--self-ensemble", "--steps", "--tile",
                   "--memory-budget", "-o"):
        assert f"{option} " in synopsis
    code = cli.main(["restore", *map(str, images), "-o", str(tmp_path / "out"), "--preset", PRESET,
                     "--steps", "16", "--tile", "32", "--memory-budget", "512", "--keep-going",
                     "--self-ensemble", "2"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["crop_0.png", "crop_1.png"]
    assert Image.open(tmp_path / "out" / "crop_0.png").size == (64, 64)

    synopsis = readme_command("lnca evaluate [")
    for option in ("--preset", "--dataset", "--degradation", "--baseline", "--noise-level",
                   "--self-ensemble", "--json"):
        assert f"{option} " in synopsis
    out = tmp_path / "evaluate.json"
    code = cli.main(["evaluate", "--preset", PRESET, "--dataset", str(tmp_path / "set"),
                     "--degradation", "gaussian:25", "--baseline", "identity", "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    results = {r["method"]: r for r in json.loads(out.read_text())["results"]}
    assert set(results) == {f"model:{PRESET}", "identity"}
    assert results[f"model:{PRESET}"]["psnr"] > results["identity"]["psnr"] + 3


@ONCE
def test_readme_bm3d_footnote_command(tmp_path, capsys):
    """The README's BM3D command, on the first BSD68 image only (`--limit 1`)."""
    if importlib.util.find_spec("bm3d") is None:
        pytest.skip("the bm3d package is not installed (extra [eval])")
    if not (data_dir() / "gray" / "bsd68").is_dir():
        pytest.skip(f"benchmark data not found at {data_dir()} (set LNCA_DATA)")
    command = readme_command("lnca evaluate --dataset")
    argv = [str(data_dir() / a[len("../shared/data/"):]) if a.startswith("../shared/data/") else a
            for a in shlex.split(command)[1:]]
    out = tmp_path / "bm3d.json"
    assert cli.main([*argv, "--limit", "1", "--json", str(out), "--quiet"]) == 0
    (result,) = json.loads(out.read_text())["results"]
    assert result["method"] == "bm3d" and len(result["per_image"]) == 1
    assert result["psnr"] > 24.0, result   # the noisy image is at about 20 dB, BM3D at 25.5


@pytest.mark.skipif(BACKEND != "jax", reason="the README runs this script under KERAS_BACKEND=jax")
def test_readme_learning_script_smoke(tmp_path):
    """The README's learning command with `--smoke` (a tiny automaton) and seconds of training."""
    if not (data_dir() / "gray" / "train400").is_dir():
        pytest.skip(f"benchmark data not found at {data_dir()} (set LNCA_DATA)")
    words = shlex.split(readme_command("KERAS_BACKEND=jax python examples/"))
    # XLA's CPU optimisations make JAX compile each random initializer for seconds (the first
    # for about 20 s with the default partitionable threefry); a smoke run does not need them.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", LNCA_DATA=str(data_dir()),
               XLA_FLAGS="--xla_backend_optimization_level=0", JAX_THREEFRY_PARTITIONABLE="0")
    while "=" in words[0]:
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    words[words.index("--minutes") + 1] = "0.05"
    assert words[0] == "python"
    result = subprocess.run([sys.executable, *words[1:], "--smoke", "--eval-images", "1"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "on jax" in result.stdout
    assert re.search(r"BSD68 \(first 1\), sigma=25: noisy [\d.]+ dB -> restored [\d.]+ dB", result.stdout)


@ONCE
def test_compare_presets_example(tmp_path, capsys):
    """examples/compare_presets.py: labelled panels of each preset and a zoomed row."""
    spec = importlib.util.spec_from_file_location("compare_presets", REPO / "examples" / "compare_presets.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = tmp_path / "cmp.png"
    example.main(["--presets", f"lnca_paper_gray_s25,{PRESET}", "-o", str(out)])
    printed = capsys.readouterr().out
    assert "lnca_paper_gray_s25:" in printed and f"{PRESET}:" in printed
    with Image.open(out) as image:
        assert image.size[0] == 4 * 256 + 3 * 4  # noisy, two presets, clean
        assert image.size[1] > 256 + 64 * 3


@ONCE
def test_the_quick_subset_leaves_out_the_slow_modules():
    """`pytest -m "not slow"`, as the README gives it: many tests, none from a slow module."""
    from conftest import SLOW_MODULES

    command = [sys.executable, "-m", "pytest", "-q", "--collect-only", "-m", "not slow", "tests"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    modules = {line.split("::")[0].rpartition("/")[2].removesuffix(".py") for line in collected}
    assert len(collected) > 200 and not modules & SLOW_MODULES, sorted(modules & SLOW_MODULES)
