"""The efficiency benchmark behind `lnca benchmark efficiency`, on tiny settings."""

import json

import keras
import numpy as np
import pytest

from keras_lnca import cli
from keras_lnca.benchmarks import efficiency
from keras_lnca import memory_probe
from keras_lnca.benchmarks._worker import MemoryGuard
from keras_lnca.benchmarks.efficiency.config import inference_spec
from keras_lnca.benchmarks.efficiency.extrapolate import find_max_side
from keras_lnca.benchmarks.efficiency.sweep import _sweep_model

# Keys every point must carry (DESIGN.md).
POINT_KEYS = (
    "model", "size", "batch", "params", "flops", "latency_ms", "peak_memory_mb", "memory_source"
)


@pytest.fixture(scope="module")
def models():
    return {name: efficiency.build_model(name, steps=4) for name in efficiency.MODELS}


def test_flops_scale_with_area_and_steps(models):
    for name, model in models.items():
        small = efficiency.count_flops(model, 32, 32)
        large = efficiency.count_flops(model, 64, 64)
        assert 3.9 < large["flops"] / small["flops"] < 4.1, name
        assert large["nca"] == 4 * small["nca"], name
        assert efficiency.count_flops(model, 32, 32, steps=8)["nca"] == 2 * small["nca"], name
        assert efficiency.count_flops(model, 32, 32, batch=2)["flops"] == 2 * small["flops"], name
    # Per image, the latent NCA does a small fraction of pixel ViTCA's work.
    lnca = efficiency.count_flops(models["lnca_nafca"], 256, 256)["flops"]
    vitca = efficiency.count_flops(models["pixel_vitca"], 256, 256)["flops"]
    assert lnca < 0.1 * vitca


def test_flops_of_a_sobel_cell_by_hand(models):
    cell = models["pixel_sobel"].nca.cell
    width, update = cell.state_channels, cell.update_channels  # 38, 35
    hidden = cell.hidden_units
    expected = (
        2 * 9 * 3 * width  # depthwise 3x3 perception, 3 filters per channel
        + 2 * 3 * width * hidden + 2 * hidden  # Dense + bias + ReLU
        + 2 * hidden * update + update  # Dense + bias
        + update  # residual update
    )
    assert cell.flops_per_cell() == expected


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="XLA cost analysis via jax.jit")
def test_flops_agree_with_xla_cost_analysis(models):
    import jax

    for name, low, high in (("lnca_nafca", 0.97, 1.03), ("pixel_sobel", 0.97, 1.03),
                            ("pixel_vitca", 0.85, 1.0)):
        model = models[name]
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        # One step: XLA counts the body of a while loop once, whatever its trip count.
        def forward(tv, ntv, x, model=model):
            return model.stateless_call(tv, ntv, x, training=False, steps=1)[0]

        images = np.zeros((1, 32, 32, 3), "float32")
        cost = jax.jit(forward).lower(trainable, non_trainable, images).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        analytic = efficiency.count_flops(model, 32, 32, steps=1)["flops"]
        # ViTCA's XLA graph also counts the head-summing matmuls that implement
        # the per-head dot products; the analytic count is the dot products.
        assert low < analytic / cost["flops"] < high, name


def test_measure_inference_point():
    point = efficiency.measure_inference("pixel_sobel", 16, steps=2, repeats=2)
    for key in POINT_KEYS:
        assert key in point
    assert point["status"] == "ok"
    assert point["model"] == "pixel_sobel" and point["size"] == 16 and point["batch"] == 1
    assert len(point["latency_runs_ms"]) == 2 and point["latency_ms"] > 0
    assert point["memory_source"] in memory_probe.MEMORY_SOURCES
    if point["peak_memory_mb"] is not None:
        # The whole (compilation and passes) covers each part.
        assert point["peak_memory_mb"] >= point["compile_memory_mb"] >= 0
        if point["run_memory_mb"] is not None:
            assert point["run_memory_mb"] >= 0
    model = efficiency.build_model("pixel_sobel", steps=2)
    assert point["flops"] == efficiency.count_flops(model, 16, 16)["flops"]
    assert point["params"] == efficiency.count_params(model) > 0
    assert point["backend"] == keras.backend.backend()


class FakeRunner:
    """Stands in for the subprocess runner: memory and latency grow with pixels."""

    def __init__(self, mb_per_kpixel=1.0, fixed_mb=10.0, ms_per_kpixel=1.0, status=None):
        self.mb_per_kpixel = mb_per_kpixel
        self.fixed_mb = fixed_mb
        self.ms_per_kpixel = ms_per_kpixel
        self.status = status or {}
        self.specs = []

    def measure(self, spec, backend, label, timeout):
        self.specs.append(spec)
        size = spec["size"]
        if size in self.status:
            return {"status": self.status[size], "error": "boom"}
        kpixels = size * size / 1000.0
        return {
            "status": "ok", "model": spec["model_name"], "size": size, "batch": 1, "params": 1,
            "flops": size * size, "latency_ms": self.ms_per_kpixel * kpixels,
            "peak_memory_mb": self.fixed_mb + self.mb_per_kpixel * kpixels,
            "memory_source": "process_vmhwm",
        }

    def advance(self, count=1):
        pass


def test_sweep_skips_a_point_predicted_over_the_memory_budget():
    # 32: 3.0 MB (64 predicted x4: 12.1 MB), 64: 6.1 MB, so the affine fit
    # predicts 18.4 MB for 128 > 15 MB.
    config = efficiency.EfficiencyConfig(sizes=(32, 64, 128, 256), memory_budget_gb=15 / 1024)
    runner = FakeRunner(fixed_mb=2.0)
    points, skipped, failed = _sweep_model(config, runner, "jax", "pixel_sobel")
    assert [p["size"] for p in points] == [32, 64]
    assert [s["size"] for s in skipped] == [128, 256]
    assert skipped[0]["reason"].startswith("skipped: predicted 0.02 GB > budget")
    assert skipped[0]["predicted_memory_mb"] == pytest.approx(18.4, abs=0.1)
    assert skipped[1]["reason"] == "not run: size 128 was skipped"
    assert [s["size"] for s in runner.specs] == [32, 64]  # nothing larger was run
    assert not failed


def test_sweep_time_budget_cuts_repeats_then_skips():
    # Latency 1 ms per 1000 pixels; budget 0.15 s: 256^2 (65.5 ms) affords only
    # warm-up + 1 pass, 512^2 (262 ms) not even that.
    config = efficiency.EfficiencyConfig(sizes=(32, 64, 256, 512), time_budget_s=0.15, repeats=5)
    runner = FakeRunner(mb_per_kpixel=0.0)
    points, skipped, _ = _sweep_model(config, runner, "jax", "pixel_sobel")
    assert [p["size"] for p in points] == [32, 64, 256]
    assert [s["repeats"] for s in runner.specs] == [5, 5, 1]
    assert "time budget" in points[-1]["note"]
    assert skipped[0]["size"] == 512 and "> budget 0.15 s" in skipped[0]["reason"]


def test_sweep_records_aborted_and_failed_points():
    config = efficiency.EfficiencyConfig(sizes=(32, 64, 128))
    points, skipped, failed = _sweep_model(
        config, FakeRunner(status={64: "over_budget"}), "jax", "pixel_sobel"
    )
    assert [p["size"] for p in points] == [32]
    assert skipped[0]["exceeded_budget"] and skipped[0]["size"] == 64
    assert skipped[1]["reason"] == "not run: size 64 exceeded the memory budget"
    points, skipped, failed = _sweep_model(
        config, FakeRunner(status={32: "error"}), "jax", "pixel_sobel"
    )
    assert not points and failed[0]["size"] == 32 and len(skipped) == 2


def test_max_side_extrapolates_the_memory_slope():
    config = efficiency.EfficiencyConfig(sizes=(256, 512), memory_budget_gb=1.0)
    # 100 MB + 1 MB per 1000 pixels: 1024 MB at 924,000 pixels, a side of 961.
    runner = FakeRunner(mb_per_kpixel=1.0, fixed_mb=100.0)
    points, skipped, _ = _sweep_model(config, runner, "jax", "pixel_sobel")
    side, details = find_max_side(config, runner, "jax", "pixel_sobel", points, skipped)
    assert side == 960
    assert details["method"] == "extrapolated" and "affine fit" in details["fit"]


def test_max_side_bisection_runs_trials():
    config = efficiency.EfficiencyConfig(sizes=(256, 512), memory_budget_gb=1.0, max_side="bisect")
    runner = FakeRunner(mb_per_kpixel=1.0, fixed_mb=100.0)
    points, skipped, _ = _sweep_model(config, runner, "jax", "pixel_sobel")
    side, details = find_max_side(config, runner, "jax", "pixel_sobel", points, skipped)
    assert details["method"] == "bisection" and details["trials"]
    assert all(trial["fits"] == (trial["size"] <= 961) for trial in details["trials"])
    assert 900 <= side <= 961


def test_ratios_against_pixel_vitca():
    points = [
        {"model": "lnca_nafca", "size": 64, "latency_ms": 2.0, "peak_memory_mb": 5.0, "flops": 10},
        {"model": "pixel_vitca", "size": 64, "latency_ms": 20.0, "peak_memory_mb": 100.0, "flops": 400},
        {"model": "pixel_vitca", "size": 128, "latency_ms": 80.0, "peak_memory_mb": 400.0, "flops": 1600},
    ]
    ratios = efficiency.compute_ratios(points, {"lnca_nafca": 4096, "pixel_vitca": 512})
    entry = ratios["lnca_nafca_vs_pixel_vitca"]
    assert list(entry["by_size"]) == ["64"]
    row = entry["by_size"]["64"]
    assert row["latency"] == 0.1 and row["latency_reduction_pct"] == 90.0
    assert row["memory"] == 0.05 and row["memory_reduction_pct"] == 95.0
    assert row["flops"] == 0.025
    assert entry["max_side"] == 8.0 and entry["max_pixels"] == 64.0


def test_isolated_worker_measures_in_a_fresh_process():
    backend = keras.backend.backend()
    config = efficiency.EfficiencyConfig(steps=2, warmup=1)
    spec = inference_spec(config, "pixel_sobel", 16, repeats=1)
    result = efficiency.run_isolated(spec, backend, timeout=300)
    assert result["status"] == "ok", result
    for key in POINT_KEYS:
        assert key in result
    assert result["backend"] == backend and result["latency_ms"] > 0
    assert result["memory_baseline_mb"] > 0


def test_memory_guard_aborts_over_budget(tmp_path):
    if memory_probe.proc_status_bytes("VmRSS") is None:
        pytest.skip("no /proc/self/status on this platform")
    exits = []
    path = str(tmp_path / "result.json")
    guard = MemoryGuard(limit_mb=16, result_path=path, interval=0.005, exit=exits.append)
    guard(memory_probe.proc_status_bytes("VmRSS"))
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    guard.thread.join(timeout=10)
    del block
    assert exits == [3]
    result = json.loads(open(path).read())
    assert result["status"] == "over_budget" and result["observed_memory_mb"] >= 16


def test_measure_train_step():
    step = efficiency.measure_train_step("pixel_sobel", size=16, batch=2, steps=1, repeats=2,
                                         warmup=1)
    assert step["status"] == "ok" and step["phase"] == "nca"
    assert step["size"] == 16 and step["batch"] == 2 and step["steps"] == 1
    assert len(step["latency_runs_ms"]) == 2 and step["latency_ms"] > 0
    assert step["memory_source"] in memory_probe.MEMORY_SOURCES


def test_cli_writes_json_markdown_and_png(tmp_path, capsys):
    out = tmp_path / "bench.json"
    markdown = tmp_path / "bench.md"
    png = tmp_path / "bench.png"
    status = cli.main([
        "benchmark", "efficiency", "--sizes", "16,32", "--models", "lnca_nafca,pixel_vitca",
        "--steps", "2", "--repeats", "1", "--no-train-step", "--json", str(out),
        "--markdown", str(markdown), "--plot", str(png), "--quiet", "--in-process",
    ])
    assert status == 0
    result = json.loads(out.read_text())
    for key in ("machine", "backend", "points", "max_side", "ratios"):
        assert key in result
    assert result["backend"] == keras.backend.backend()
    assert result["command"].startswith("lnca benchmark efficiency --sizes 16,32")
    assert {(p["model"], p["size"]) for p in result["points"]} == {
        ("lnca_nafca", 16), ("lnca_nafca", 32), ("pixel_vitca", 16), ("pixel_vitca", 32)
    }
    for point in result["points"]:
        for key in POINT_KEYS:
            assert key in point
        assert point["latency_ms"] > 0 and point["flops"] > 0 and point["params"] > 0
    # In-process memory figures can be 0 (nothing to extrapolate from): then no side.
    assert set(result["max_side_details"]) == {"lnca_nafca", "pixel_vitca"}
    for model, side in result["max_side"].items():
        assert side >= 32 and result["max_side_details"][model]["method"] == "extrapolated"
    assert set(result["ratios"]["lnca_nafca_vs_pixel_vitca"]["by_size"]) == {"16", "32"}
    assert result["train_step"] == {} and result["config"]["train_step"] is False
    text = markdown.read_text()
    assert "| LNCA-NAFCA | 32x32 |" in text and result["command"] in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "LNCA-NAFCA" in printed and f"wrote {out}" in printed


def test_cli_rejects_bad_options_without_writing(tmp_path, capsys):
    out = tmp_path / "bench.json"
    common = ["benchmark", "efficiency", "--sizes", "16", "--json", str(out), "--quiet"]
    assert cli.main(common + ["--models", "lnca_nafca,nope"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert cli.main(common + ["--backend", "mxnet"]) == 2
    assert cli.main(common + ["--plot", str(tmp_path / "plot.jpg")]) == 2
    assert cli.main(common[:-3] + ["--json", str(tmp_path / "missing" / "b.json")]) == 2
    assert cli.main(["benchmark", "efficiency", "--sizes", "4,x"]) == 2
    assert "--sizes: expected comma-separated integers" in capsys.readouterr().err
    assert not out.exists()
