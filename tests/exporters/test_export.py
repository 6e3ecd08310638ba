"""Export: every variant for every task, validation, manifest, C arrays, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

import edgekit
from edgekit.errors import EdgekitError
from edgekit.formats.manifest import load_manifest
from edgekit.runtime import open_runner
from tests.conftest import cli

ALL_VARIANTS = [
    "float32",
    "float16",
    "dynamic",
    "int8",
    "int16x8",
    "onnx-float32",
    "onnx-dynamic",
    "onnx-static",
]


def _export_all(run, out, **options):
    return edgekit.export(
        run.path,
        quantize=["all"],
        onnx=True,
        onnx_quantize=["dynamic", "static"],
        out=out,
        **options,
    )


def test_every_variant_of_the_multiclass_model(digits_export, digits_run):
    manifest = load_manifest(digits_export.path)
    assert [a["variant"] for a in manifest["artifacts"]] == ALL_VARIANTS
    assert manifest["task"] == "multiclass" and manifest["labels"] == digits_run.labels
    assert manifest["source"]["file"] == "model.keras"
    keras_acc = digits_run.metrics["test"]["accuracy"]
    assert manifest["validation"]["reference_metrics"]["accuracy"] == pytest.approx(
        keras_acc, abs=1e-6
    )
    for art in manifest["artifacts"]:
        v = art["validation"]
        assert v["passed"], art["variant"]
        assert v["accuracy_drop"] <= 1.0
        assert v["metrics"]["accuracy"] >= keras_acc - 0.01
        assert (digits_export.path / art["file"]).stat().st_size == art["bytes"]
    diffs = {a["variant"]: a["validation"]["max_abs_diff"] for a in manifest["artifacts"]}
    assert diffs["float32"] <= 1e-5 and diffs["onnx-float32"] <= 1e-5


def test_int8_is_full_integer_with_int8_io(digits_export):
    art = next(a for a in digits_export.artifacts if a["variant"] == "int8")
    (inp,), (out,) = art["inputs"], art["outputs"]
    assert inp["dtype"] == "int8" and out["dtype"] == "int8"
    assert inp["shape"] == [-1, 8, 8] and out["shape"] == [-1, 10]
    assert inp["quantization"]["scale"] > 0 and -128 <= inp["quantization"]["zero_point"] <= 127
    assert out["quantization"] == {"scale": 1 / 256, "zero_point": -128}  # softmax output
    float32 = next(a for a in digits_export.artifacts if a["variant"] == "float32")
    assert float32["inputs"][0]["quantization"] is None
    assert art["bytes"] < 0.6 * float32["bytes"]


def test_manifest_quantization_lets_an_app_do_its_own_int8_io(digits_export, digits_run):
    """A device app quantizes with the manifest's numbers and gets the validated accuracy."""
    from ai_edge_litert.interpreter import Interpreter

    art = next(a for a in digits_export.artifacts if a["variant"] == "int8")
    q_in, q_out = art["inputs"][0]["quantization"], art["outputs"][0]["quantization"]
    test = np.load(digits_run.path / "data/test.npz")
    interp = Interpreter(model_path=str(digits_export.path / art["file"]))
    interp.resize_tensor_input(0, [len(test["x"]), 8, 8])
    interp.allocate_tensors()
    xq = np.clip(np.round(test["x"] / q_in["scale"]) + q_in["zero_point"], -128, 127).astype(
        np.int8
    )
    interp.set_tensor(interp.get_input_details()[0]["index"], xq)
    interp.invoke()
    raw = interp.get_tensor(interp.get_output_details()[0]["index"])
    probs = (raw.astype(np.float32) - q_out["zero_point"]) * q_out["scale"]
    accuracy = float(np.mean(probs.argmax(1) == test["y"]))
    assert accuracy == pytest.approx(art["validation"]["metrics"]["accuracy"], abs=1e-9)


def test_onnx_graph_is_clean(digits_export):
    import onnx

    model = onnx.load(str(digits_export.path / "model.float32.onnx"))
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    assert [i.name for i in inputs] == ["features"]
    assert [o.name for o in model.graph.output] == ["probabilities"]
    assert inputs[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert model.opset_import[0].version == 17
    static = onnx.load(str(digits_export.path / "model.static.onnx"))
    ops = {n.op_type for n in static.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # QDQ format


def test_every_artifact_runs_in_its_runtime_at_any_batch(digits_export, digits_run):
    x = np.load(digits_run.path / "data/test.npz")["x"][:37]
    reference = digits_run.load_model().predict(x, verbose=0)
    for art in digits_export.artifacts:
        with open_runner(digits_export.path / art["file"]) as runner:
            for batch in (1, 37):
                out = runner.infer(x[:batch])
                assert out.shape == (batch, 10)
                assert np.mean(out.argmax(1) == reference[:batch].argmax(1)) >= 0.9


@pytest.mark.slow
def test_binary_and_regression_export_every_variant(binary_run, regression_run, tmp_path):
    # A 16-unit regressor loses a few % of the target's std to 8-bit activations: the
    # tolerance is the user's to set (--max-accuracy-drop), here 15.
    for run, tolerance in ((binary_run, 1.0), (regression_run, 15.0)):
        result = _export_all(run, tmp_path / run.name, max_accuracy_drop=tolerance)
        variants = [a["variant"] for a in result.artifacts]
        assert variants == ALL_VARIANTS
        for art in result.artifacts:
            assert art["outputs"][0]["shape"] == [-1, 1]
        assert result.passed, result.table()
    reg = load_manifest(tmp_path / regression_run.name)
    assert reg["labels"] is None
    for art in reg["artifacts"]:
        assert set(art["validation"]["metrics"]) == {"mae", "rmse"}
        assert art["validation"]["accuracy_drop"] is None


def test_integer_variants_keep_features_of_very_different_scales(tmp_path):
    """Features from 1e-2 to 1e3 wide: a per-tensor int8 input would leave the narrow ones a
    few levels (this export failed with an MAE 5+ % of the target's std worse). The
    normalization is folded into per-feature input parameters, so every integer variant holds
    the Keras model's MAE within 2 % of the target's std."""
    from tests.conftest import regression_csv

    regression_csv(
        tmp_path / "wide.csv", scales=(0.01, 10.0, 1000.0, 0.5), offsets=(0, 50, 3000, -3)
    )
    run = edgekit.train(dataset="wide.csv", hidden=[16], epochs=60, learning_rate=0.01, out="w")
    code, out, err = cli(
        "export", str(run.path), "--quantize", "float32,int8,int16x8", "--onnx-quantize",
        "static", "--max-accuracy-drop", "2", "--out", "e",
    )  # fmt: skip
    assert code == 0, out + err
    manifest = load_manifest(tmp_path / "e")
    assert (manifest["features"], manifest["target"]) == (["a", "b", "c", "d"], "value")
    by_variant = {a["variant"]: a for a in manifest["artifacts"]}
    for variant in ("int8", "int16x8", "onnx-static"):
        validation = by_variant[variant]["validation"]
        assert validation["passed"] and validation["mae_increase_pct"] <= 2.0, variant
    quantization = by_variant["int8"]["inputs"][0]["quantization"]
    assert quantization["axis"] == -1 and len(quantization["scale"]) == 4
    # the widest feature gets a scale about 1e5 times the narrowest one's
    assert 1e4 < quantization["scale"][2] / quantization["scale"][0] < 1e6
    for variant in ("int16x8", "onnx-static"):  # float inputs: raw features, no parameters
        assert by_variant[variant]["inputs"][0]["dtype"] == "float32"


def test_float_tolerance_scales_with_outputs_above_one():
    from edgekit.exporters.validate import float_tolerance

    assert float_tolerance(1e-4, np.array([[0.2], [-0.9]])) == (1e-4, "max_abs_diff <= 0.0001")
    allowed, criterion = float_tolerance(1e-4, np.array([[412.5], [-3.0]]))
    assert allowed == pytest.approx(0.04125)
    assert criterion == "max_abs_diff <= 0.0001 x 412.5 (the largest |output|)"
    assert float_tolerance(0.0, np.array([[412.5]]))[0] == 0.0  # --atol 0 stays exact


def test_a_regressor_with_large_outputs_passes_float32_and_its_c(tmp_path):
    """Predictions in the thousands differ from Keras in float32's last bits (about 1e-4): the
    default --atol is relative to the largest |output| there, for the .tflite, ONNX and C."""
    import keras

    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 10000, (200, 5)).astype(np.float32)
    y = x @ np.array([0.7, 0.2, -0.1, 0.4, 0.3], np.float32) + 50
    model = keras.Sequential([
        keras.Input((5,), name="features"),
        keras.layers.Dense(16, activation="relu", name="hidden"),
        keras.layers.Dense(1, name="price"),
    ])  # fmt: skip
    model.compile("adam", "mse")
    model.fit(x, y, epochs=3, verbose=0)
    model.save(tmp_path / "price.keras")
    np.savez(tmp_path / "test.npz", x=x, y=y)
    code, out, err = cli(
        "export", str(tmp_path / "price.keras"), "--data", str(tmp_path / "test.npz"),
        "--quantize", "float32", "--onnx", "--c-source", "float32", "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 0, out + err
    m = load_manifest(tmp_path / "e")
    scale = float(np.abs(model.predict(x, verbose=0)).max())
    assert scale > 1000
    diffs = [a["validation"]["max_abs_diff"] for a in m["artifacts"]]
    assert max([*diffs, m["c_source"]["validation"]["max_abs_diff"]]) > 1e-4  # beyond atol
    for a in m["artifacts"]:
        assert a["validation"]["passed"] is True
        assert a["validation"]["criterion"].startswith("max_abs_diff <= 0.0001 x ")
        assert a["validation"]["max_abs_diff"] <= 1e-4 * scale
    assert m["c_source"]["validation"]["passed"] is True


def test_io_type_uint8_and_float(digits_run, tmp_path):
    for io, dtype in (("uint8", "uint8"), ("float", "float32")):
        result = edgekit.export(digits_run.path, quantize=["int8"], io_type=io, out=tmp_path / io)
        art = result.artifacts[0]
        assert art["inputs"][0]["dtype"] == dtype and art["outputs"][0]["dtype"] == dtype
        assert art["validation"]["passed"]


def test_failed_validation_keeps_the_artifact_and_exits_1(digits_run, tmp_path):
    code, out, err = cli(
        "export",
        str(digits_run.path),
        "--quantize",
        "float32,int8",
        "--max-accuracy-drop",
        "0",
        "--atol",
        "0",
        "--out",
        "strict",
    )
    assert code == 1
    assert "validation failed for float32" in err
    assert "NO (max_abs_diff <= 0)" in out
    manifest = json.loads((tmp_path / "strict" / "manifest.json").read_text())
    assert manifest["artifacts"][0]["validation"]["passed"] is False
    assert (tmp_path / "strict" / "model.float32.tflite").is_file()


def test_cli_defaults_use_runs_latest(digits_run, tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "latest").symlink_to(digits_run.path)
    shutil.rmtree(digits_run.path / "export", ignore_errors=True)
    try:
        code, out, err = cli("export", "--tflite")
        assert code == 0, err
        assert "float32" in out and "manifest:" in out
        assert (digits_run.path / "export" / "manifest.json").is_file()
        code, _, err = cli("export", "--tflite")
        assert (
            code == 2 and "export already holds float32 (model.float32.tflite); pass --force" in err
        )
    finally:
        shutil.rmtree(digits_run.path / "export", ignore_errors=True)


def test_c_array_matches_the_tflite_bytes(digits_export, tmp_path):
    header = (digits_export.path / "model_int8_data.h").read_text()
    assert "MicroMutableOpResolver<" in header
    assert "resolver.AddFullyConnected();" in header and "resolver.AddSoftmax();" in header
    art = next(a for a in digits_export.artifacts if a["variant"] == "int8")
    n_ops = len(art["ops"])
    assert f"MicroMutableOpResolver<{n_ops}>" in header
    main = tmp_path / "main.c"
    main.write_text(
        '#include <stdio.h>\n#include <stdint.h>\n#include "model_int8_data.h"\n'
        "int main(void) {\n"
        "  if (((uintptr_t)model_int8_data) % 16 != 0) return 3;\n"
        "  fwrite(model_int8_data, 1, model_int8_data_len, stdout);\n  return 0;\n}\n"
    )
    exe = tmp_path / "dump"
    subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-I",
            str(digits_export.path),
            str(main),
            str(digits_export.path / "model_int8_data.c"),
            "-o",
            str(exe),
        ],
        check=True,
        capture_output=True,
    )
    dumped = subprocess.run([str(exe)], check=True, capture_output=True).stdout
    assert dumped == (digits_export.path / "model.int8.tflite").read_bytes()


def test_export_a_bare_keras_file_checks_parity_without_labels(digits_run, tmp_path):
    model = tmp_path / "alone.keras"
    shutil.copy(digits_run.model_path, model)
    result = edgekit.export(model, quantize=["float32", "dynamic"], onnx=True)
    assert result.path == (tmp_path / "alone_export").resolve()
    assert result.manifest["validation"]["labelled"] is False
    assert result.passed
    with pytest.raises(
        EdgekitError, match="int8 needs calibration data, .* pass --calibration FILE"
    ):
        edgekit.export(model, quantize=["int8"], out=tmp_path / "x")


MAX_OPSET = __import__("onnx").defs.onnx_opset_version()

BAD = [
    (
        ["--quantize", "int4"],
        "unknown variant 'int4'; choose from float32, float16, dynamic, int8, int16x8, auto or all",
    ),
    (
        ["--onnx-quantize", "fp8"],
        "unknown ONNX quantization 'fp8'; choose from dynamic, static or all",
    ),
    (
        ["--onnx", "--opset", "7"],
        f"--opset must be between 13 and {MAX_OPSET} (the installed onnx), got 7",
    ),
    (
        ["--onnx", "--opset", "99"],
        f"--opset must be between 13 and {MAX_OPSET} (the installed onnx), got 99",
    ),
    (
        ["--quantize", "float32", "--io-type", "uint8"],
        "--io-type applies to the int8 variant; add --quantize int8",
    ),
    (["--onnx", "--c-array"], "--c-array needs at least one TFLite variant"),
    (
        ["--calibration-samples", "0", "--quantize", "int8"],
        "--calibration-samples must be at least 1, got 0",
    ),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[m[:30] for _, m in BAD])
def test_bad_flags(digits_run, tmp_path, argv, message):
    code, out, err = cli("export", str(digits_run.path), "--out", "o", *argv)
    assert (code, out, err) == (2, "", f"edgekit: error: {message}\n")
    assert not (tmp_path / "o").exists()


def test_missing_and_corrupt_models(tmp_path, digits_run):
    code, _, err = cli("export", "nothing.keras")
    assert (code, err) == (2, "edgekit: error: nothing.keras: no such file or directory\n")
    (tmp_path / "bad.keras").write_bytes(b"not a zip at all")
    code, _, err = cli("export", "bad.keras")
    assert code == 2
    assert (
        err == "edgekit: error: bad.keras: not a .keras model file (corrupt or of another format)\n"
    )
    run = tmp_path / "run"
    shutil.copytree(digits_run.path, run, ignore=shutil.ignore_patterns("export"))
    data = (run / "model.keras").read_bytes()
    (run / "model.keras").write_bytes(data[: len(data) // 2])
    code, _, err = cli("export", str(run), "--out", "o")
    assert code == 2 and "model.keras: not a .keras model file" in err
    assert not (tmp_path / "o").exists()
    code, _, err = cli("export")
    assert (code, err) == (
        2,
        "edgekit: error: no run given and runs/latest does not exist; run `edgekit train` first\n",
    )


def test_run_without_calibration_data_refuses_int8(digits_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(
        digits_run.path, run, ignore=shutil.ignore_patterns("export", "calibration.npz")
    )
    code, _, err = cli("export", str(run), "--quantize", "int8")
    assert code == 2 and "int8 needs calibration data" in err
    assert not (run / "export").exists()


def _keras_model_with(tmp_path, layer_factory, name):
    import keras

    inputs = keras.Input((4,), name="features")
    h = layer_factory()(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(h)
    path = tmp_path / f"{name}.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def test_unsupported_layer_is_named(tmp_path):
    import keras

    path = _keras_model_with(tmp_path, lambda: keras.layers.UnitNormalization(name="unit"), "un")
    code, _, err = cli("export", str(path))
    assert code == 2
    assert "layer 'unit' (UnitNormalization) is not supported by edgekit's exporters" in err


def test_lambda_layer_is_refused_in_safe_mode(tmp_path):
    import keras

    path = _keras_model_with(tmp_path, lambda: keras.layers.Lambda(lambda t: t * 2.0), "lam")
    code, _, err = cli("export", str(path))
    assert code == 2
    assert "refused: the model contains a Lambda layer" in err
