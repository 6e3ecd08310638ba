"""``edgekit diagnose`` on real, seeded models: a planted outlier channel is found and named.

The outlier model computes the float function of the normal one (checked to 1e-4 when it is
made), but one unit of ``dense_0`` spans about 180x the others, which per-tensor int8
activations cannot hold.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgekit.diagnose import diagnose
from edgekit.diagnose.align import layer_in_name
from tests.conftest import cli, run_cli
from tests.quant_models import OUTLIER_LAYER, OUTLIER_UNIT

LAYER_KEYS = {
    "layer", "kind", "position", "tensor", "dtype", "error", "channel_error", "rmse_rel",
    "cosine", "scale", "zero_point", "range_used", "saturation", "channels", "channel_span",
    "outliers", "levels", "others_levels", "top1_downstream", "sentence",
}  # fmt: skip


def _by_variant(diagnosis):
    return {r.variant: r for r in diagnosis.results}


def _validation(export, variant):
    return next(a for a in export.artifacts if a["variant"] == variant)["validation"]


def test_outlier_model_loses_accuracy_in_int8(outlier_export, normal_export):
    drop = _validation(outlier_export, "int8")["accuracy_drop"]
    assert drop > 3.0  # measured: 7.89 pp (0.9561 -> 0.8772 on 114 test samples)
    assert _validation(normal_export, "int8")["accuracy_drop"] <= 1.0
    assert _validation(outlier_export, "int16x8")["accuracy_drop"] <= 1.0  # 16 bits hold it


def test_diagnose_names_the_outlier_layer(outlier_export):
    results = _by_variant(diagnose(outlier_export.path))
    assert set(results) == {"dynamic", "int8", "int16x8", "onnx-dynamic", "onnx-static"}
    int8 = results["int8"]
    assert int8.kind == "static"
    assert int8.worst.layer == OUTLIER_LAYER
    assert int8.worst.outliers == [OUTLIER_UNIT]
    assert int8.worst.channel_span > 50
    assert "one channel spans" in int8.worst.sentence
    assert "per-tensor int8" in int8.worst.sentence
    assert int8.worst.others_levels[1] < 2  # the other units get one or two levels
    assert int8.worst.top1_downstream < 0.95
    assert int8.worst.error > 0.1
    # The same outlier in ONNX Runtime's QDQ model; weights-only variants say so.
    assert results["onnx-static"].worst.layer == OUTLIER_LAYER
    assert "one channel spans" in results["onnx-static"].worst.sentence
    assert results["onnx-dynamic"].kind == "weights"
    assert results["onnx-dynamic"].worst.scale is None
    # The 1/k outgoing weights of the outlier unit round to zero in dense_1's int8 kernel.
    dense_1 = next(r for r in int8.layers if r.layer == "dense_1")
    assert "rounds to zero" in dense_1.sentence and f"channel {OUTLIER_UNIT}" in dense_1.sentence


def test_normal_model_worst_error_is_far_smaller(outlier_export, normal_export):
    outlier = _by_variant(diagnose(outlier_export.path, variant="int8"))["int8"]
    normal = _by_variant(diagnose(normal_export.path))["int8"]
    assert {r.layer for r in normal.layers} == {
        "normalization",
        "dense_0",
        "dense_1",
        "probability",
    }
    assert normal.worst.error < 0.01
    assert normal.worst.error * 20 < outlier.worst.error  # measured: 0.0027 vs 0.256
    assert all(r.sentence.split(": ", 1)[1].startswith("fine") for r in normal.layers)
    assert normal.top1_agreement == 1.0
    # Worst first; each tensor is the integer one the layer was quantized to.
    errors = [r.error for r in normal.layers]
    assert errors == sorted(errors, reverse=True)
    assert all(r.dtype == "int8" and r.scale > 0 for r in normal.layers)


def test_json_schema_and_plot(outlier_export, tmp_path):
    plot = tmp_path / "layers.png"
    code, out, err = cli("diagnose", str(outlier_export.path), "--json", "--plot", str(plot))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "edgekit.diagnose/1"
    assert doc["plot"] == str(plot) and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [r["variant"] for r in doc["results"]] == [
        "dynamic", "int8", "int16x8", "onnx-dynamic", "onnx-static"
    ]  # fmt: skip
    for result in doc["results"]:
        assert {"artifact", "variant", "layers", "worst"} <= set(result)
        assert result["worst"] == result["layers"][0]["layer"]
        for layer in result["layers"]:
            assert set(layer) == LAYER_KEYS
            assert isinstance(layer["error"], float) and np.isfinite(layer["error"])
            assert isinstance(layer["tensor"], str) and layer["tensor"]
    int8 = next(r for r in doc["results"] if r["variant"] == "int8")
    assert int8["artifact"] == "model.int8.tflite" and int8["worst"] == OUTLIER_LAYER


def test_text_output_and_default_plot(outlier_export):
    code, out, err = cli("diagnose", str(outlier_export.path), "--variant", "int8")
    assert code == 0, err
    assert out.startswith("model.int8.tflite (int8; weights and activations quantized;")
    assert f"{OUTLIER_LAYER}: one channel spans" in out
    plot = outlier_export.path / "diagnose.png"
    assert out.rstrip().endswith(f"plot: {plot}")
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_auto_equalized_artifact_is_compared_with_the_equalized_model(outlier_run, tmp_path):
    import edgekit
    from edgekit.diagnose.reference import reference_kind

    export = edgekit.export(outlier_run, quantize=["auto"], out=tmp_path / "auto")
    entry = next(a for a in export.artifacts if a["variant"] == "auto")
    if reference_kind(entry) != "equalized":
        pytest.skip(f"auto chose {entry['auto']['chosen']}, not an equalized model")
    (result,) = diagnose(export.path, model=outlier_run / "model.keras").results
    assert result.reference == "equalized"
    # Its units are rescaled, not broken: against the equalized model every layer is fine.
    assert result.worst.error < 0.01
    assert all(r.sentence.split(": ", 1)[1].startswith("fine") for r in result.layers)


def test_one_artifact(normal_export):
    artifact = normal_export.path / "model.int8.tflite"
    result = diagnose(artifact)
    assert [r.artifact for r in result.results] == ["model.int8.tflite"]
    assert result.samples == 114


def test_float_only_export_is_refused(float_export):
    code, out, err = cli("diagnose", str(float_export.path))
    assert (code, out) == (2, "")
    assert err == (
        f"edgekit: error: {float_export.path}: nothing to diagnose: every artifact is float "
        "(float32, onnx-float32); export a quantized one with --quantize int8 "
        "(or --onnx-quantize static)\n"
    )


def test_unknown_variant(normal_export):
    code, out, err = cli("diagnose", str(normal_export.path), "--variant", "int4")
    assert (code, out) == (2, "")
    assert err == "edgekit: error: unknown variant 'int4'; choose from int8\n"


def test_missing_source_model(normal_export, tmp_path):
    moved = tmp_path / "elsewhere" / "export"
    shutil.copytree(normal_export.path, moved)
    code, _, err = cli("diagnose", str(moved))
    assert code == 2
    assert err.startswith(f"edgekit: error: {moved}: cannot find its source model model.keras")


def test_bad_data(normal_export, tmp_path):
    text = tmp_path / "x.txt"
    text.write_text("1,2\n")
    code, _, err = cli("diagnose", str(normal_export.path), "--data", str(text))
    assert code == 2
    assert err == f"edgekit: error: {text}: --data takes a .npz (array 'x') or a .csv file\n"
    narrow = tmp_path / "narrow.npz"
    np.savez(narrow, x=np.zeros((4, 3), np.float32))
    code, _, err = cli("diagnose", str(normal_export.path), "--data", str(narrow))
    assert code == 2
    assert err == "edgekit: error: narrow.npz: features have shape [3], the model takes [30]\n"


def test_subprocess_exit_codes(normal_export, float_export, tmp_path):
    plot = tmp_path / "p.png"
    done = run_cli("diagnose", str(normal_export.path), "--plot", str(plot))
    assert done.returncode == 0, done.stderr
    assert "normalization" in done.stdout and f"plot: {plot}" in done.stdout
    assert plot.is_file()
    done = run_cli("diagnose", str(float_export.path))
    assert done.returncode == 2
    assert done.stderr.startswith("edgekit: error: ") and "nothing to diagnose" in done.stderr
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("edgekit_mlp_1/dense_0_1/MatMul;edgekit_mlp_1/dense_0_1/Relu", "dense_0"),
        ("PartitionedCall/edgekit_mlp_1/dense_1_1/Relu:0_QuantizeLinear_Output", "dense_1"),
        ("m_1/dense_1/MatMul", "dense"),  # TensorFlow's scope suffix: "dense" called once
        ("m_1/dense_1_1/MatMul", "dense_1"),
        ("m_1/dense_1/MatMul;m_1/dense_1_1/Relu", "dense_1"),  # fused: the later layer
        ("StatefulPartitionedCall_1:0", None),
    ],
)
def test_layer_names_in_tensor_names(name, expected):
    positions = {"features": 0, "dense": 1, "dense_1": 2, "dense_0": 3}
    found = layer_in_name(name, positions)
    assert (None if found is None else {v: k for k, v in positions.items()}[found]) == expected


def test_a_saved_model_export_is_refused_in_one_line(tmp_path):
    """A SavedModel is one opaque TFSMLayer: nothing to compare layer by layer."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])  # fmt: skip
    model.export(str(tmp_path / "saved"), verbose=False)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    np.savez(tmp_path / "data.npz", x=x)
    code, _, err = cli("export", str(tmp_path / "saved"), "--quantize", "int8", "--data",
                       str(tmp_path / "data.npz"), "--out", str(tmp_path / "e"))  # fmt: skip
    assert code == 0, err
    code, out, err = cli("diagnose", str(tmp_path / "e"))
    assert (code, out) == (2, "")
    assert err == (
        f"edgekit: error: {tmp_path / 'saved'}: a SavedModel has no Keras layers to compare one "
        "by one (its graph is one TFSMLayer); diagnose the export of the model's .keras or .h5 "
        "file\n"
    )


def test_a_very_wide_model_is_diagnosed_on_fewer_samples():
    """Diagnose holds every layer's output for every sample: a 60,000-unit layer (a 1 MB
    .keras) at 1,000 samples would take GBs, so the samples are capped to stay in budget."""
    import keras

    from edgekit.diagnose.api import MEMORY_BUDGET, MIN_SAMPLES, samples_within_memory
    from edgekit.diagnose.chain import FloatChain

    def chain(width: int) -> FloatChain:
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(width, name="w"),
                                  keras.layers.Dense(2, name="o")])  # fmt: skip
        return FloatChain(model, "m.keras")

    assert samples_within_memory(chain(16), 1000) == 1000
    wide = samples_within_memory(chain(60_000), 1000)
    assert MIN_SAMPLES <= wide < 100
    assert wide * 60_003 * 8 * 12 <= MEMORY_BUDGET
