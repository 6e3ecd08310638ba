"""Integer artifacts on tabular data whose features have very different ranges.

breast_cancer's 30 features run from about 1e-3 (smoothness) to about 4e3 (area). A per-tensor
int8 input leaves the narrow features a level or two; edgekit takes the model's normalization
out of its integer core and folds it into per-feature input parameters (int8 I/O) or keeps it
in float ahead of the quantize step (float inputs), so every integer variant holds the Keras
model's accuracy while users still pass raw features.
"""

from __future__ import annotations

import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest

import edgekit
from edgekit.runtime import open_runner
from tests.conftest import chdir

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "device_app" / "classify.py")


@pytest.fixture(scope="module")
def cancer(tmp_path_factory):
    base = tmp_path_factory.mktemp("cancer")
    with chdir(base):
        run = edgekit.train(
            dataset="breast_cancer", hidden=[16], epochs=30, seed=0, out=str(base / "run")
        )
        result = edgekit.export(
            run,
            quantize=["float32", "int8", "int16x8"],
            onnx_quantize=["static"],
            c_source="int8",
            out=base / "export",
        )
    return run, result


def _accuracy(runner, x, y) -> float:
    return float(np.mean((runner.infer(x)[:, 0] > 0.5) == y))


def test_every_integer_variant_holds_the_keras_accuracy(cancer):
    run, result = cancer
    one_sample = 100.0 / run.info["dataset"]["n_test"]  # 114 test samples: 0.88 pp
    assert result.passed, result.table()
    by_variant = {a["variant"]: a for a in result.artifacts}
    assert set(by_variant) == {"float32", "int8", "int16x8", "onnx-float32", "onnx-static"}
    for variant in ("int8", "int16x8", "onnx-static"):
        drop = by_variant[variant]["validation"]["accuracy_drop"]
        assert drop <= max(1.0, one_sample), (variant, drop)


def test_the_int8_input_is_quantized_per_feature(cancer):
    _, result = cancer
    int8 = next(a for a in result.artifacts if a["variant"] == "int8")
    q = int8["inputs"][0]["quantization"]
    assert int8["inputs"][0]["dtype"] == "int8" and q["axis"] == -1
    assert len(q["scale"]) == len(q["zero_point"]) == 30
    assert max(q["scale"]) / min(q["scale"]) > 1e4  # area vs smoothness
    for variant in ("int16x8", "onnx-static"):  # float inputs take raw features
        art = next(a for a in result.artifacts if a["variant"] == variant)
        assert art["inputs"][0]["dtype"] == "float32"
        assert art["inputs"][0]["quantization"] is None


def test_quantizing_the_raw_input_per_tensor_is_what_loses_the_accuracy(cancer, tmp_path):
    """The control: the same model converted with its normalization inside the int8 graph
    (what edgekit did before) loses tens of points, so the tests above can fail."""
    from edgekit.exporters.tflite import to_tflite
    from edgekit.formats.npz import load_npz

    run, _ = cancer
    calibration = load_npz(run.calibration_path)["x"][:200]
    path = to_tflite(run.load_model(), tmp_path / "m.int8.tflite", variant="int8",
                     calibration=calibration)  # fmt: skip
    test = load_npz(run.test_data_path)
    with open_runner(path) as runner:  # no manifest beside: the file's own parameters
        accuracy = _accuracy(runner, test["x"], test["y"])
    assert accuracy < run.metrics["test"]["accuracy"] - 0.10


def test_runners_take_the_parameters_from_the_manifest_beside_the_file(cancer, tmp_path):
    run, result = cancer
    test = np.load(run.test_data_path)
    int8 = next(a for a in result.artifacts if a["variant"] == "int8")
    with open_runner(result.path / "model.int8.tflite") as runner:
        assert runner.inputs[0].quantization == int8["inputs"][0]["quantization"]
        assert _accuracy(runner, test["x"], test["y"]) == int8["validation"]["metrics"]["accuracy"]
    # The file alone holds the normalized features' parameters: one scale, not 30.
    alone = tmp_path / "model.int8.tflite"
    shutil.copy(result.path / "model.int8.tflite", alone)
    with open_runner(alone) as runner:
        assert np.ndim(runner.inputs[0].quantization["scale"]) == 0


def test_the_device_app_quantizes_per_feature(cancer):
    run, result = cancer
    test = np.load(run.test_data_path)
    app = runpy.run_path(EXAMPLE)
    rows = app["classify"](result.path, test["x"].astype(np.float32), "int8")
    labels = run.labels
    predicted = np.array([labels.index(label) for label, _ in rows])
    int8 = next(a for a in result.artifacts if a["variant"] == "int8")
    assert np.mean(predicted == test["y"]) == int8["validation"]["metrics"]["accuracy"]


def test_the_generated_c_quantizes_raw_features_per_feature(cancer):
    """The C's float predict() takes raw features: its per-feature parameters are the
    manifest's, and its accuracy is the int8 .tflite's."""
    run, result = cancer
    test = np.load(run.test_data_path)
    info = result.manifest["c_source"]
    int8 = next(a for a in result.artifacts if a["variant"] == "int8")
    assert info["feature_quantization"] == int8["inputs"][0]["quantization"]
    assert info["validation"]["passed"] and info["validation"]["max_lsb_diff"] == 0
    with open_runner(result.path / "edgekit_model.c", runtime="c") as runner:
        accuracy = _accuracy(runner, test["x"], test["y"])
    assert accuracy == int8["validation"]["metrics"]["accuracy"]
    assert accuracy >= run.metrics["test"]["accuracy"] - max(0.01, 1 / len(test["y"]))
