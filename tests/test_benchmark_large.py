"""`lnca benchmark large`: restore() memory and time on big images, at tiny sizes here."""

import json

import keras
import numpy as np
import pytest

from keras_lnca import cli
from keras_lnca import tiling
from keras_lnca.benchmarks import large
from keras_lnca import memory_probe
from keras_lnca.errors import UserError

POINT_KEYS = (
    "size", "tile", "status", "steps", "seconds", "peak_memory_mb", "baseline_memory_mb",
    "restore_memory_mb", "memory_source", "windows", "output_ok",
)


def test_parse_points():
    assert large.parse_points("64, 128@64,64") == [
        {"size": 64, "tile": None}, {"size": 128, "tile": 64},
    ]
    assert [p["tile"] for p in large.parse_points(large.DEFAULT_POINTS)] == [None, None, 1024, 1024]
    assert large.parse_points("48x64@auto,64@auto") == [
        {"size": [48, 64], "tile": "auto"}, {"size": 64, "tile": "auto"},
    ]
    for bad in ("", "64,", "x", "64@", "64@y", "4", "64@4", "64@32@16", "8x8x8", "64x4@auto"):
        with pytest.raises(UserError):
            large.parse_points(bad)


def test_auto_points_follow_the_memory_budget(monkeypatch):
    """`@auto` restores as `restore` does by default: one piece within the budget, else tiles."""
    points = large.parse_points("48x64@auto")
    result = large.run(points, steps=4, isolate=False, progress=None)
    assert result["points"][0]["status"] == "ok", result["points"][0]
    assert (result["points"][0]["tile_used"], result["points"][0]["windows"]) == (None, 1)
    monkeypatch.setenv("LNCA_MEMORY_BUDGET_MB", "0.2")
    tight = large.run(points, steps=4, isolate=False, progress=None)["points"][0]
    assert tight["status"] == "ok" and tight["output_ok"], tight
    assert tight["tile_used"] is not None and tight["windows"] > 1
    assert "48x64 (0.0 MP)" in large.format_table({**result, "points": [tight]})


def test_synthetic_image():
    gray = large.synthetic_image(32, 1, seed=0)
    assert gray.shape == (32, 32) and gray.dtype == np.float32
    np.testing.assert_array_equal(gray, large.synthetic_image(32, 1, seed=0))
    assert not np.array_equal(gray, large.synthetic_image(32, 1, seed=1))
    # Noise of sigma 25/255 around a pattern in [0.25, 0.75].
    assert 0.08 < float(np.std(gray - large.synthetic_image(32, 1, seed=0, sigma=0.0))) < 0.12
    colour = large.synthetic_image(16, 3, seed=0)
    assert colour.shape == (16, 16, 3) and colour.dtype == np.float32


def test_cli_large_in_fresh_subprocesses(tmp_path, capsys):
    out, markdown = tmp_path / "large.json", tmp_path / "large.md"
    status = cli.main([
        "benchmark", "large", "--points", "64,128@64", "--steps", "16",
        "--json", str(out), "--markdown", str(markdown),
    ])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    result = json.loads(out.read_text())
    assert result["model"] == large.DEFAULT_PRESET and result["backend"] == keras.backend.backend()
    assert result["isolation"] == "a fresh subprocess per point"
    assert "lnca benchmark large --preset lnca_denoise_gray_s25 --points 64,128@64 --steps 16" in result["command"]
    untiled, tiled = result["points"]
    for point in (untiled, tiled):
        for key in POINT_KEYS:
            assert key in point, key
        assert point["status"] == "ok" and point["output_ok"] and point["steps"] == 16
        assert point["backend"] == keras.backend.backend()
        assert point["seconds"] > 0 and len(point["seconds_runs"]) == 1
        assert point["memory_source"] in memory_probe.MEMORY_SOURCES
        if point["peak_memory_mb"] is not None:
            # The process peak covers the loaded model and image, and the restoration.
            assert point["peak_memory_mb"] >= point["baseline_memory_mb"] > 0
            assert point["restore_memory_mb"] == pytest.approx(
                point["peak_memory_mb"] - point["baseline_memory_mb"], abs=0.2)
    assert (untiled["size"], untiled["tile"], untiled["windows"]) == (64, None, 1)
    # 16 steps x radius 1 x 4 pixels per cell + the codec's radius.
    import keras_lnca as kl

    margin = kl.LNCA.from_preset(large.DEFAULT_PRESET).receptive_radius(16)
    assert tiled["margin"] == margin
    expected = len(tiling.tile_windows(128, 64, margin, 4)) ** 2
    assert (tiled["size"], tiled["tile"], tiled["windows"]) == (128, 64, expected) and expected == 4
    assert output_lines(printed.out) == 2
    text = markdown.read_text()
    assert "| 64² | untiled |" in text and "| 128² | 64 (4 windows) |" in text


def output_lines(text):
    """Progress lines, one per finished point."""
    return sum(1 for line in text.splitlines() if line.startswith(("64x64", "128x128")))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--points", "64@"], "SIZE, HxW, SIZE@TILE or SIZE@auto"),
        (["--points", "4"], ">= 8 pixels"),
        (["--steps", "0"], "--steps must be >= 1"),
        (["--repeats", "two"], "--repeats must be an integer"),
        (["--timeout-s", "soon"], "--timeout-s"),
        (["--preset", "no_such_preset"], "Unknown preset"),
        (["--model", "/no/such.keras"], "no such model file"),
        (["--markdown", "/no/such/folder/large.md"], "no such folder for --markdown"),
    ],
)
def test_cli_large_errors_are_one_line(argv, message, tmp_path, capsys):
    out = tmp_path / "large.json"
    status = cli.main(["benchmark", "large", *argv, "--json", str(out)])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1 and err.startswith("lnca benchmark: error:")
    assert message in err
    assert not out.exists()


def test_failed_worker_is_reported_not_raised(tmp_path, capsys, monkeypatch):
    # A worker that fails (here: stands in for one that ran out of memory):
    # the point says why, the others still run, the command exits 1.
    def fake_worker(spec, timeout_s):
        if spec["point"]["size"] == 32:
            return {"status": "error", "error": "worker killed (SIGKILL; out of memory?)"}
        return {"status": "ok", "steps": 1, "seconds": 0.5, "warm_seconds": None,
                "peak_memory_mb": 900.0, "restore_memory_mb": 20.0, "output_ok": True}

    monkeypatch.setattr(large, "run_isolated", fake_worker)
    out = tmp_path / "large.json"
    status = cli.main(["benchmark", "large", "--points", "32,16", "--steps", "1",
                       "--json", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert status == 1
    failed, ok = json.loads(out.read_text())["points"]
    assert failed["status"] == "error" and "out of memory" in failed["error"]
    assert ok["status"] == "ok" and ok["output_ok"] and ok["size"] == 16
    assert "32x32 failed: worker killed" in captured.err
    assert "error" in captured.out  # the table shows the failed row


def test_a_file_that_is_not_a_model_fails_its_point(tmp_path):
    bogus = tmp_path / "bogus.keras"
    bogus.write_bytes(b"not a keras file")
    result = large.run([{"size": 16, "tile": None}], model=str(bogus), isolate=False, progress=None)
    (point,) = result["points"]
    assert point["status"] == "error" and "cannot load" in point["error"]
    assert result["isolation"].startswith("in-process")
