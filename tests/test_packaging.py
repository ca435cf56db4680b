"""The wheel: built from the repository, installed into a fresh virtual environment, it carries
the presets and the demo image, and `lnca demo` runs from it (not from this checkout).

It builds with the installed setuptools (`--no-build-isolation`, no index), creates a venv that
sees this interpreter's packages (keras, TensorFlow, ...) but not the editable checkout, and
runs there from a temporary working directory. Slow (about 30 s) and independent of the Keras
backend, so it runs once: in the TensorFlow pass of CI.
"""

import json
import os
import pathlib
import re
import shutil
import site
import subprocess
import sys
import time
import zipfile

import keras
import pytest
from conftest import REPO
from PIL import Image

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="slow and backend-independent: the wheel test runs once, under KERAS_BACKEND=tensorflow",
)

PRESET = "lnca_denoise_gray_s25"
IGNORED = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
                                 ".pytest_cache", "runs", "out", "bench_out", ".venv")


def copy_source(destination):
    """The files a clean clone has (tracked, plus new files git does not ignore)."""
    listed = None
    if (REPO / ".git").exists() and shutil.which("git"):
        result = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"],
                                capture_output=True)
        if result.returncode == 0:
            listed = [name for name in result.stdout.decode().split("\0") if name]
    if listed is None:
        shutil.copytree(REPO, destination, ignore=IGNORED)
        return
    for name in listed:
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working tree is skipped
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def run(argv, **kwargs):
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{argv}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def venv_python(venv):
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def make_venv(venv):
    """A venv that sees this interpreter's packages, whether or not it is itself a venv."""
    run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv])
    if sys.prefix != sys.base_prefix:
        # `--system-site-packages` reaches the base interpreter, not this venv: add this one's
        # site-packages after the new venv's own (their .pth files processed, as for system ones).
        own = run([venv_python(venv), "-c", "import site; print(site.getsitepackages()[0])"])
        lines = [f"import site; site.addsitedir({path!r})" for path in site.getsitepackages()]
        (pathlib.Path(own.stdout.strip()) / "_parent_env.pth").write_text("\n".join(lines) + "\n")


def readme_extras():
    text = (REPO / "README.md").read_text()
    extras = set()
    for group in re.findall(r"(?:keras-lnca|\"\.)\[([a-z0-9_,-]+)\]", text):
        extras.update(group.split(","))
    extras.update(re.findall(r"`\[([a-z0-9_-]+)\]`", text))
    return extras


def test_wheel_installs_presets_and_runs_the_demo(tmp_path):
    start = time.perf_counter()
    source, dist, venv, work = (tmp_path / name for name in ("src", "dist", "venv", "work"))
    copy_source(source)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", dist, source])
    wheels = list(dist.glob("keras_lnca-*.whl"))
    assert len(wheels) == 1, wheels
    built = time.perf_counter()

    # The wheel carries every shipped preset file and asset, and the extras the README names.
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = wheel.read(f"{info}/METADATA").decode()
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    shipped = [p for pattern in ("*.keras", "*.json") for p in (REPO / "savedmodels").glob(pattern)]
    assets = [p for p in (REPO / "keras_lnca" / "assets").iterdir() if p.is_file()]
    expected = {f"keras_lnca/savedmodels/{p.name}" for p in shipped}
    expected |= {f"keras_lnca/assets/{p.name}" for p in assets}
    assert f"keras_lnca/savedmodels/{PRESET}.keras" in expected
    assert not expected - names, f"missing from the wheel: {sorted(expected - names)}"
    assert not any(n.startswith(("tests/", "notebooks/", "savedmodels/")) for n in names)
    provided = set(re.findall(r"^Provides-Extra: (\S+)$", metadata, re.M))
    assert readme_extras() and not readme_extras() - provided, (readme_extras(), provided)
    assert re.search(r"^lnca = keras_lnca\.cli:main$", entry_points, re.M)

    make_venv(venv)
    run([venv_python(venv), "-m", "pip", "install", "--no-deps", "--no-index", "--force-reinstall",
         "-q", wheels[0]])
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PYTHONNOUSERSITE="1", TF_CPP_MIN_LOG_LEVEL="2")

    # The package, its presets and its metadata resolve inside the venv, not to this checkout.
    # (The numpy backend imports quickly; the presets registry does not depend on it.)
    probe = run([venv_python(venv), "-c",
                 "import importlib.metadata as md, json, keras_lnca as kl\n"
                 "print(json.dumps({'file': kl.__file__, 'presets': kl.presets.list(),\n"
                 "  'directory': str(kl.presets.directory()),\n"
                 "  'dist': str(md.distribution('keras-lnca').locate_file(''))}))"],
                cwd=work, env=dict(env, KERAS_BACKEND="numpy"))
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    venv_root = venv.resolve()
    for key in ("file", "directory", "dist"):
        assert pathlib.Path(found[key]).resolve().is_relative_to(venv_root), (key, found)
    assert PRESET in found["presets"]
    assert sorted(found["presets"]) == sorted(p.stem for p in shipped if p.suffix == ".keras")

    # The console script of the venv runs the demo and writes its PNG in the working directory.
    lnca = venv / ("Scripts/lnca.exe" if os.name == "nt" else "bin/lnca")
    demo = run([lnca, "demo"], cwd=work, env=dict(env, KERAS_BACKEND="tensorflow"))
    png = work / "lnca_demo.png"
    assert png.exists() and Image.open(png).size[0] > 3 * 256
    assert "restored" in demo.stdout and "wrote lnca_demo.png" in demo.stdout
    print(f"wheel built in {built - start:.1f} s, venv + install + demo in "
          f"{time.perf_counter() - built:.1f} s")
