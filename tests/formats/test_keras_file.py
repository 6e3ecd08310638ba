"""Users' model files: .keras, .h5 and SavedModel directories load safely and export."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import edgekit
from edgekit.errors import EdgekitError
from edgekit.formats.keras_file import load_model_file
from tests.conftest import cli


def _tutorial_model(tmp_path):
    """A model as a tutorial writes it (Sequential, input_shape, relu, softmax), trained a bit,
    with its data in data/ beside the files it is saved to."""
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    model = keras.Sequential(
        [
            keras.layers.Input((6,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=5, verbose=0)
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "test.npz", x=x[:100], y=y[:100])
    np.savez(tmp_path / "data" / "calibration.npz", x=x[100:])
    return model, x[:100]


def test_h5_and_saved_model_load_and_export_with_parity(tmp_path):
    model, x = _tutorial_model(tmp_path)
    model.save(tmp_path / "model.h5")
    model.export(str(tmp_path / "saved"), verbose=False)
    want = model.predict(x, verbose=0)
    for source in (tmp_path / "model.h5", tmp_path / "saved"):
        loaded = load_model_file(source)
        assert np.max(np.abs(loaded.predict(x, verbose=0) - want)) < 1e-6
        result = edgekit.export(source, quantize=["float32", "int8"], onnx=True)
        by = {a["variant"]: a["validation"] for a in result.artifacts}
        assert by["float32"]["max_abs_diff"] <= 1e-5 and by["onnx-float32"]["max_abs_diff"] <= 1e-5
        assert by["float32"]["passed"] and by["onnx-float32"]["passed"]
        assert result.manifest["source"]["file"] == source.name


def test_a_keras2_keras_file_is_named_as_such(tmp_path):
    path = tmp_path / "old.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "2.15.0"}))
        zf.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {}}))
    with pytest.raises(EdgekitError) as err:
        load_model_file(path)
    assert str(err.value) == (
        f"{path}: a Keras 2.15.0 (tf_keras) .keras file, which Keras 3 cannot read; re-save it "
        "with tf_keras as .h5 (model.save('model.h5')) and export that"
    )
    code, out, stderr = cli("export", str(path))
    assert (code, out) == (2, "") and "a Keras 2.15.0 (tf_keras) .keras file" in stderr


def test_a_lambda_layer_in_an_h5_file_is_refused(tmp_path):
    import keras

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    model.save(tmp_path / "lambda.h5")
    with pytest.raises(EdgekitError, match="refused: the model contains a Lambda layer"):
        load_model_file(tmp_path / "lambda.h5")


def test_unknown_model_files_are_refused(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"not a model")
    code, out, err = cli("export", str(tmp_path / "model.pt"))
    assert (code, out) == (2, "")
    assert err == (
        f"edgekit: error: {tmp_path / 'model.pt'}: export takes a run directory, a .keras or "
        ".h5 model file, or a SavedModel directory\n"
    )
