"""``edgekit diagnose`` on models written the way tutorials write them: Keras 3 ``Sequential``
models (whose ``model.layers`` leave the input layer out) are diagnosed layer by layer; a
model with several inputs or outputs is refused in one line saying what diagnose takes."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import cli


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    return x, (x[:, 0] - 0.5 * x[:, 1] + 0.25 * x[:, 2] > 0).astype(np.int64)


def _sequential(keras, style: str):
    from keras import layers as L

    if style == "input":
        return keras.Sequential([
            keras.Input((5,)),
            L.Dense(16, activation="relu", name="hidden"),
            L.Dense(2, activation="softmax", name="probs"),
        ])  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras 3 prefers keras.Input; tutorials do not
        return keras.Sequential([
            L.Dense(16, activation="relu", input_shape=(5,), name="hidden"),
            L.Dense(2, activation="softmax", name="probs"),
        ])  # fmt: skip


@pytest.mark.parametrize("style", ["input", "input_shape"])
def test_a_sequential_model_is_diagnosed_layer_by_layer(tmp_path: Path, style: str):
    import keras

    x, y = _data(400, 0)
    keras.utils.set_random_seed(0)
    model = _sequential(keras, style)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x[:300], y[:300], epochs=15, verbose=0)
    model.save(tmp_path / "seq.keras")
    np.savez(tmp_path / "test.npz", x=x[300:], y=y[300:])
    code, out, err = cli(
        "export", str(tmp_path / "seq.keras"), "--data", str(tmp_path / "test.npz"),
        "--quantize", "int8", "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 0, out + err
    code, out, err = cli("diagnose", str(tmp_path / "e"), "--json")
    assert code == 0, out + err
    (result,) = json.loads(out)["results"]
    assert result["variant"] == "int8" and result["samples"] == 100
    names = [layer["layer"] for layer in result["layers"]]
    assert {"hidden", "probs"} <= set(names) and len(names) == 3
    assert result["worst"] in ("hidden", "probs")
    assert result["top1_agreement"] >= 0.95
    assert all(0 <= layer["error"] < 0.05 for layer in result["layers"])


def test_a_model_with_two_inputs_is_refused_in_one_line(tmp_path: Path):
    import keras
    from keras import layers as L

    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(64, 3)), rng.normal(size=(64, 2))
    keras.utils.set_random_seed(0)
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    h = L.Concatenate(name="both")([L.Dense(8, activation="relu", name="da")(a), b])
    model = keras.Model([a, b], L.Dense(2, activation="softmax", name="cls")(h))
    model.save(tmp_path / "two.keras")
    np.savez(tmp_path / "two.npz", a=xa.astype(np.float32), b=xb.astype(np.float32))
    code, out, err = cli(
        "export", str(tmp_path / "two.keras"), "--data", str(tmp_path / "two.npz"),
        "--quantize", "dynamic", "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 0, out + err
    for extra in ([], ["--data", str(tmp_path / "two.npz")]):
        code, out, err = cli("diagnose", str(tmp_path / "e"), *extra)
        assert code == 2
        assert err == (
            f"edgekit: error: {tmp_path / 'e'}: diagnose compares models with one input and "
            "one output, layer by layer (export, bench and predict take several); two.keras "
            "has 2 inputs (a, b) and 1 output (cls)\n"
        )
