"""Export: TFLite (builtin ops only) and SavedModel parity, the `lnca export` command.

Conversion runs on TensorFlow; under JAX and torch each export reloads the
model in a TensorFlow subprocess, so these tests exercise that path too and
compare the exported files with the model on the active backend.
"""

import importlib.util
import math
import shutil

import keras
import numpy as np
import pytest

from keras_lnca import cli
from keras_lnca import export
from keras_lnca.errors import UserError

from conftest import data_dir
from conftest import tiny_lnca

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="export converts with TensorFlow"
)

SIZE = 32
ON_TENSORFLOW = keras.backend.backend() == "tensorflow"


def tiny_gray(**kwargs):
    return tiny_lnca(channels=1, cell_config={"embed_dim": 16, "dropout": 0.0}, **kwargs)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    model = tiny_gray()
    x = np.random.default_rng(0).random((1, SIZE, SIZE, 1)).astype("float32")
    before = model.predict_with_steps(x)
    # beta and gamma start at zero: perturb every NCA weight so that the
    # rule (and the loop in the exported graph) changes the output.
    rng = np.random.default_rng(1)
    for variable in model.nca.weights:
        value = keras.ops.convert_to_numpy(variable)
        variable.assign(value + rng.normal(0.0, 0.05, value.shape).astype("float32"))
    moved = np.abs(model.predict_with_steps(x) - before)
    assert moved.max() > 1e-3, "the perturbed NCA rule must change the output"
    return model


@pytest.fixture(scope="module")
def float32_export(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("float32") / "tiny.tflite"
    report = export.export_tflite(model, path, input_shape=(SIZE, SIZE))
    return path, report


@pytest.fixture(scope="module")
def model_file(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return path


def interpreter_output(path, images):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # the TensorFlow build of the same interpreter
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=str(path))
    source = interpreter.get_input_details()[0]
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], images)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_tflite_float32_builtin_ops_and_parity(model, float32_export):
    path, report = float32_export
    assert path.is_file() and report.size_bytes == path.stat().st_size
    assert report.input_shape == (1, SIZE, SIZE, 1) and report.steps == 3
    assert "WHILE" in report.ops and "CONV_2D" in report.ops
    assert all(op.isupper() and "FLEX" not in op for op in report.ops)
    assert [c["images"] for c in report.checks][0] == "random"
    assert report.max_abs_diff <= 1e-4
    assert all(c["psnr_vs_keras"] > 100 for c in report.checks)
    # Independently: the plain LiteRT interpreter (no Flex delegate) runs it.
    images = np.random.default_rng(5).random((1, SIZE, SIZE, 1)).astype("float32")
    expected = model.predict_with_steps(images)
    np.testing.assert_allclose(interpreter_output(path, images), expected, atol=1e-4)
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.tflite"]


@pytest.mark.parametrize(
    "quantization",
    [
        pytest.param(
            "float16",
            marks=pytest.mark.skipif(
                not ON_TENSORFLOW,
                reason="same TensorFlow conversion on every backend; the subprocess path "
                "is covered by the int8 case (saves one TensorFlow start-up)",
            ),
        ),
        "int8",
    ],
)
def test_tflite_quantized_runs_and_reports(model, tmp_path, quantization):
    path = tmp_path / f"{quantization}.tflite"
    # float16 must meet its default 0.05 dB limit; the untrained model's int8
    # loss is only reported. The int8 file also has a resizable batch.
    limit = None if quantization == "float16" else math.inf
    batch = 1 if quantization == "float16" else None
    report = export.export_tflite(
        model, path, quantization=quantization, input_shape=(SIZE, SIZE), max_psnr_loss=limit,
        batch_size=batch,
    )
    assert report.quantization == quantization and path.is_file()
    assert report.input_shape == (batch, SIZE, SIZE, 1)
    assert report.checks[0]["count"] == 2
    assert report.tolerances["max_psnr_loss"] == (0.05 if limit is None else math.inf)
    reference = report.checks[-1]
    assert {"psnr_keras", "psnr_export", "psnr_loss", "degradation"} <= set(reference)
    assert math.isfinite(report.psnr_loss) and report.psnr_loss == reference["psnr_loss"]
    assert 0 < report.max_abs_diff < 0.2
    if quantization == "float16":
        assert report.tensor_types.get("FLOAT16", 0) > 0 and "DEQUANTIZE" in report.ops
        assert report.psnr_loss <= 0.05
    else:
        # Full integer: most tensors are int8, and the NCA loop is unrolled
        # (each step calibrated on its own) instead of a WHILE body.
        assert report.tensor_types["INT8"] > 3 * report.tensor_types["FLOAT32"]
        assert "QUANTIZE" in report.ops and "WHILE" not in report.ops
    images = np.random.default_rng(6).random((1, SIZE, SIZE, 1)).astype("float32")
    assert interpreter_output(path, images).shape == (1, SIZE, SIZE, 1)


@pytest.mark.skipif(
    not ON_TENSORFLOW,
    reason="conversion always runs on TensorFlow; the subprocess path is covered by the others",
)
def test_tflite_unrolled_float32_matches(model, tmp_path):
    report = export.export_tflite(
        model, tmp_path / "unrolled.tflite", input_shape=(SIZE, SIZE), unroll=True
    )
    assert "WHILE" not in report.ops and "CONV_2D" in report.ops
    assert report.max_abs_diff <= 1e-4


@pytest.mark.slow
@pytest.mark.skipif(
    not ON_TENSORFLOW,
    reason="conversion always runs on TensorFlow; the subprocess path is covered by the others",
)
@pytest.mark.parametrize("quantization", ["float16", "int8"])
def test_tflite_quantized_preset_meets_its_psnr_limit(tmp_path, quantization):
    # A trained preset on real images (Set12 crops, sigma 25): the export's own
    # check raises ExportError beyond the default limit (0.05 / 1 dB).
    if not (data_dir() / "gray" / "set12").is_dir():
        pytest.skip("needs gray/set12 under $LNCA_DATA")
    path = tmp_path / f"{quantization}.tflite"
    report = export.export_tflite(
        "lnca_denoise_gray_s25_s2d", path, quantization=quantization, input_shape=(64, 64)
    )
    reference = report.checks[-1]
    assert reference["images"] == "set12" and reference["count"] == 3
    assert reference["psnr_keras"] > 24  # noisy crops are about 20 dB
    assert report.psnr_loss <= export.DEFAULT_MAX_PSNR_LOSS[quantization]


def test_parity_failure_raises_and_leaves_nothing(model, float32_export, tmp_path, monkeypatch):
    written, _ = float32_export

    def convert_without_tensorflow(how, tf_model, function, path, **kwargs):
        # Stands in for the conversion: the file is the real float32 export.
        shutil.copyfile(written, path)
        return {"ops": ["WHILE"], "tensor_types": {}}

    monkeypatch.setattr(export.tf_bridge, "call_tensorflow", convert_without_tensorflow)
    path = tmp_path / "strict.tflite"
    path.write_bytes(b"previous")
    with pytest.raises(export.ExportError, match="differs from Keras") as caught:
        export.export_tflite(model, path, input_shape=(SIZE, SIZE), max_abs_diff=-1.0)
    # The measured report travels with the error.
    assert caught.value.report.max_abs_diff <= 1e-4
    assert path.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["strict.tflite"]


@pytest.mark.skipif(
    not ON_TENSORFLOW,
    reason="conversion always runs on TensorFlow; the subprocess path is covered by the others",
)
def test_tflite_resizable_height_width_works_or_says_why(model, tmp_path):
    path = tmp_path / "any_size.tflite"
    try:
        report = export.export_tflite(model, path, input_shape=(None, None))
    except export.ExportError as error:
        assert "resizable height/width" in str(error) and "Conv2D" in str(error)
        assert not path.exists()
        return
    assert report.input_shape == (1, None, None, 1)
    assert report.checks[0]["shape"] == [*export.RESIZABLE_CHECK_SIZE, 1]
    assert report.max_abs_diff <= 1e-4


def test_saved_model_reload_matches(model, tmp_path):
    import tensorflow as tf

    path = tmp_path / "saved"
    report = export.export_saved_model(model, path, input_shape=(None, None))
    assert report.input_shape == (None, None, None, 1)
    assert report.max_abs_diff <= 1e-5
    loaded = tf.saved_model.load(str(path))
    images = np.random.default_rng(7).random((2, 40, 36, 1)).astype("float32")
    restored = np.asarray(loaded.serve(tf.constant(images)))
    np.testing.assert_allclose(restored, model.predict_with_steps(images, batch_size=2),
                               atol=1e-5)


def test_fire_rate_below_one_is_refused(tmp_path):
    model = tiny_gray(fire_rate=0.5)
    model.build()
    with pytest.raises(UserError, match="fire_rate=0.5"):
        export.export_tflite(model, tmp_path / "x.tflite", input_shape=(SIZE, SIZE))
    assert not list(tmp_path.iterdir())


def test_onnx_needs_optional_packages(model, tmp_path):
    import importlib.util

    missing = [n for n in ("tf2onnx", "onnx") if importlib.util.find_spec(n) is None]
    path = tmp_path / "tiny.onnx"
    if missing:
        with pytest.raises(export.ExportError, match=missing[0]):
            export.export_onnx(model, path, input_shape=(SIZE, SIZE))
        assert not path.exists()
    else:
        report = export.export_onnx(model, path, input_shape=(SIZE, SIZE))
        assert path.is_file()
        assert not report.checks or report.max_abs_diff <= 1e-4


def test_calibration_images_from_given_data():
    data = np.random.default_rng(0).random((3, 40, 44)).astype("float32")
    images = export.calibration.calibration_images(1, (SIZE, SIZE), data, "gaussian:25")
    assert images.shape == (3, SIZE, SIZE, 1)
    np.testing.assert_array_equal(images[0, ..., 0], data[0, 4:36, 6:38])
    with pytest.raises(UserError, match="smaller"):
        export.calibration.calibration_images(1, (64, 64), data, "gaussian:25")


def test_cli_export_model_file(model_file, tmp_path, capfd, monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    out = tmp_path / "cli.tflite"
    code = cli.main(["export", "--model", str(model_file), "--format", "tflite",
                     "--size", f"{SIZE},{SIZE}", "-o", str(out)])
    assert code == 0 and out.is_file()
    captured = capfd.readouterr()  # the file descriptors, where the LiteRT runtime prints
    assert "max |export - keras|" in captured.out
    assert "XNNPACK" not in captured.err, captured.err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "{tmp}/missing.keras", "--format", "tflite"], "no such model file"),
        (["--model", "{model}", "--format", "tflite", "--size", "32,x"], "--size"),
        (["--model", "{model}", "--format", "saved_model", "--quantization", "int8"],
         "--quantization"),
        (["--model", "{model}", "--format", "tflite", "-o", "{tmp}/no/dir/x.tflite"],
         "no such folder"),
        (["--model", "{model}", "--format", "tflite", "-o", "{tmp}/existing.tflite"], "exists"),
    ],
)
def test_cli_export_bad_input(model_file, tmp_path, capsys, argv, message):
    (tmp_path / "existing.tflite").write_bytes(b"keep")
    argv = [a.format(tmp=tmp_path, model=model_file) for a in argv]
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / "out.tflite")]
    code = cli.main(["export", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err
    assert err.startswith("lnca export: error:")
    assert (tmp_path / "existing.tflite").read_bytes() == b"keep"
    assert not (tmp_path / "out.tflite").exists()


def test_an_interruption_inside_a_deferred_block_waits_for_its_end():
    """`lnca`'s SIGTERM/SIGINT handler raises at once outside `deferred()`, and only when the
    (outermost) block ends inside it: never in the middle of TensorFlow's graph code."""
    from keras_lnca import interrupts

    with pytest.raises(KeyboardInterrupt):
        interrupts.terminate()
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            with interrupts.deferred():
                interrupts.terminate()
                reached.append("inner")
            reached.append("outer")
    assert reached == ["inner", "outer"]
    with interrupts.deferred():  # nothing pending any more
        pass
    # The request is kept for code that checks it (training's batch ends) until delivered once.
    assert interrupts.requested()
    with pytest.raises(KeyboardInterrupt):
        interrupts.raise_if_requested()
    interrupts.raise_if_requested()
    with pytest.raises(KeyboardInterrupt):
        interrupts.terminate()
    interrupts.clear()
    assert not interrupts.requested()


def test_sigterm_during_export_leaves_nothing_behind(tmp_path):
    """SIGTERM while the SavedModel is being written: the half-written folder beside the
    output and the temporary folders are removed, and the command says it was interrupted."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out, scratch = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch), TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-c", "import sys; from keras_lnca.cli import main; sys.exit(main())",
               "export", "--preset", "lnca_denoise_gray_s25", "--format", "saved_model", "-o", str(out / "m")]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while process.poll() is None and not any(out.iterdir()) and time.time() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the export finished before its temporary folder was seen"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and err.strip() == "lnca export: interrupted", err[-2000:]
    assert list(out.iterdir()) == []
    assert [p.name for p in scratch.iterdir() if p.name.startswith("lnca_export_")] == []
