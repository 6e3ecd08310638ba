"""BatchNormalization folding with constant ("dead") units: their folded weights become bias.

The model is the tutorial one, ``Dense(32) BN ReLU Dense(16) BN ReLU Dense(3, softmax)`` on raw
tabular features spanning 1e-2 to 1e3, one of which is the total of two count columns
(``visits + returns``). Eight of its first-layer units read exactly ``a * (visits + returns -
total)``: constant over every sample, so their BatchNormalization's moving variance is 0 and
folding multiplies their weights by ``gamma / sqrt(eps)`` (31 gamma). ``a`` is a power of two,
so the Keras model computes the constant exactly in float32.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import cli

DEAD = np.arange(8) * 4  # the first layer's constant units
A = 2.0**-4  # their weights on visits, returns and -total


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 7))
    visits, returns = np.round(100 * z[:, 4] + 500), np.round(30 * z[:, 6] + 100)
    x = np.stack([0.01 * z[:, 0] + 0.02, 0.1 * z[:, 1] + 0.2, z[:, 2] + 2, 10 * z[:, 3] + 20,
                  visits, 1000 * z[:, 5] + 2000, returns, visits + returns], axis=1)  # fmt: skip
    scores = np.stack([z[:, 5] + 0.5 * z[:, 3], z[:, 4] - z[:, 2], z[:, 6] + 0.5 * z[:, 1]], 1)
    return x.astype(np.float32), np.argmax(scores, axis=1)


def _plant(model, x: np.ndarray, *, training_agrees: bool = True) -> None:
    """Make ``DEAD`` of ``d1`` constant; their BN statistics are set as training converges
    to (mean and variance over ``x``), or kept as they were (``training_agrees=False``)."""
    import keras

    kernel, bias = model.get_layer("d1").get_weights()
    kernel[:, DEAD] = 0.0
    kernel[4, DEAD], kernel[6, DEAD], kernel[7, DEAD] = A, A, -A
    model.get_layer("d1").set_weights([kernel, bias])
    if training_agrees:
        h = keras.Model(model.inputs, model.get_layer("d1").output).predict(x, verbose=0)
        bn = model.get_layer("bn1")
        gamma, beta, mean, var = bn.get_weights()
        mean[DEAD] = h[:, DEAD].mean(axis=0)
        var[DEAD] = h[:, DEAD].var(axis=0)
        bn.set_weights([gamma, beta, mean, var])


def _model(x: np.ndarray, y: np.ndarray, *, training_agrees: bool = True):
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8,)), L.Dense(32, name="d1"), L.BatchNormalization(name="bn1"),
        L.ReLU(name="r1"), L.Dense(16, name="d2"), L.BatchNormalization(name="bn2"),
        L.Activation("relu", name="r2"), L.Dense(3, activation="softmax", name="out"),
    ])  # fmt: skip
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    _plant(model, x, training_agrees=training_agrees)
    model.get_layer("d1").trainable = False  # the rest learns to live with them
    model.get_layer("bn1").trainable = False
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def dead(tmp_path_factory):
    base = tmp_path_factory.mktemp("dead")
    x, y = _data(1500, 0)
    xt, yt = _data(600, 100)
    model = _model(x, y)
    model.save(base / "tabular.keras")
    np.savez(base / "train.npz", x=x, y=y)
    np.savez(base / "test.npz", x=xt, y=yt)
    return base, model, x[:200], xt, yt


def test_the_planted_units_are_constant_and_fold_into_large_weights(dead):
    import keras

    from edgekit.exporters.fold import fold_batch_norm
    from edgekit.exporters.preprocess import synthesize_normalization

    _, model, x, _, _ = dead
    h = keras.Model(model.inputs, model.get_layer("d1").output).predict(x, verbose=0)
    assert np.ptp(h[:, DEAD], axis=0).max() == 0.0  # exactly constant in float32
    var = model.get_layer("bn1").get_weights()[3]
    assert var[DEAD].max() < 1e-20 and np.median(var) > 100
    folded = fold_batch_norm(model)  # no calibration data: no judgement of constancy
    core, affine = synthesize_normalization(folded, x)  # the int8 model takes standardized x
    assert affine is not None
    w = np.abs(core.get_layer("d1").get_weights()[0])
    live = np.setdiff1d(np.arange(32), DEAD)
    assert w[:, DEAD].max(axis=0).min() > 10 * w[:, live].max()


def test_constant_units_become_bias_and_the_function_stays(dead):
    from edgekit.exporters.fold import fold_batch_norm

    _, model, x, xt, _ = dead
    plain = fold_batch_norm(model)
    folded = fold_batch_norm(model, calibration=x)
    w = folded.get_layer("d1").get_weights()[0]
    assert np.all(w[:, DEAD] == 0.0)
    live = np.setdiff1d(np.arange(32), DEAD)
    np.testing.assert_array_equal(w[:, live], plain.get_layer("d1").get_weights()[0][:, live])
    for data in (x, xt):  # calibration and held-out data
        want = model.predict(data, verbose=0)
        assert np.abs(folded.predict(data, verbose=0) - want).max() <= 1e-5
    # d2 absorbed bn2 too; none of its units is constant
    np.testing.assert_array_equal(
        folded.get_layer("d2").get_weights()[0], plain.get_layer("d2").get_weights()[0]
    )


def test_int8_is_within_one_point_of_keras_and_was_not_before(dead, tmp_path):
    from edgekit.exporters.fold import fold_batch_norm
    from edgekit.exporters.preprocess import synthesize_normalization
    from edgekit.exporters.tflite import to_tflite
    from edgekit.exporters.validate import Reference, validate

    base, model, x, xt, yt = dead
    code, out, err = cli(
        "export", str(base / "tabular.keras"), "--data", str(base / "test.npz"),
        "--calibration", str(base / "train.npz"), "--quantize", "int8", "--c-source", "int8",
        "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 0, out + err
    manifest = json.loads((tmp_path / "e" / "manifest.json").read_text())
    keras_accuracy = manifest["validation"]["reference_metrics"]["accuracy"]
    assert keras_accuracy > 0.75
    validation = manifest["artifacts"][0]["validation"]
    assert validation["passed"] is True and validation["accuracy_drop"] <= 1.0
    assert manifest["c_source"]["validation"]["passed"] is True  # the C runs that int8 model

    # The same int8 export without the constant units replaced: 11.5 pp lost on this model.
    core, affine = synthesize_normalization(fold_batch_norm(model), x)
    assert affine is not None
    path = to_tflite(core, tmp_path / "plain.int8.tflite", variant="int8", calibration=x,
                     affine=affine)  # fmt: skip
    from edgekit.formats.tflite_graph import read_tflite

    graph = read_tflite(path)
    tensor = graph.tensors[graph.inputs[0]]
    ref = Reference(task="multiclass", x=xt, y=yt, outputs=model.predict(xt, verbose=0))
    plain, _, _ = validate(
        path, ref, exact=False, atol=1e-4, max_accuracy_drop=1.0,
        input_quantization=affine.fold([{"scale": tensor.scale, "zero_point": tensor.zero_point}]),
    )  # fmt: skip
    assert plain["accuracy_drop"] > 5.0, plain["accuracy_drop"]


def test_units_constant_only_on_the_calibration_data_are_kept(tmp_path):
    """Training saw the planted units move (their BN statistics are the trained ones): the
    calibration data alone does not make them constant."""
    from edgekit.exporters.fold import fold_batch_norm

    x, y = _data(600, 1)
    model = _model(x, y, training_agrees=False)
    folded = fold_batch_norm(model, calibration=x[:200])
    kernel = folded.get_layer("d1").get_weights()[0]
    assert np.all(kernel[[4, 6, 7]][:, DEAD] != 0)


def test_a_replacement_that_moves_the_outputs_is_undone(dead):
    import keras

    from edgekit.exporters.fold import constant_units_to_bias, fold_batch_norm

    _, model, x, _, _ = dead
    folded = fold_batch_norm(model)
    layer = folded.get_layer("d1")
    before = layer.get_weights()
    stats = {"units": model.get_layer("bn1").get_weights()[3]}
    other = keras.models.clone_model(model)  # another function: the check must refuse
    assert constant_units_to_bias(folded, [(layer, stats)], reference=other, x=x) == {}
    for old, new in zip(before, layer.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    assert constant_units_to_bias(folded, [(layer, stats)], reference=model, x=x) == {
        "d1": {"units": DEAD.tolist(), "inputs": []}
    }


def test_a_constant_input_of_the_dense_after_a_batch_norm_moves_into_its_bias():
    """Dense-ReLU-BN-Dense with one ReLU unit that never fires: the BN folds into the next
    Dense as a row several times the others (it would set every output channel's weight scale);
    the row goes, and its constant contribution moves into the bias."""
    import keras
    from keras import layers as L

    from edgekit.exporters.fold import fold_batch_norm

    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((4,)), L.Dense(8, activation="relu", name="h"),
                              L.BatchNormalization(name="bn"), L.Dense(3, name="o")])  # fmt: skip
    kernel, bias = model.get_layer("h").get_weights()
    kernel[:, 2], bias[2] = 0.0, -1.0  # unit 2 is relu(-1) = 0 for every input
    model.get_layer("h").set_weights([kernel, bias])
    x = np.random.default_rng(2).normal(size=(300, 4)).astype(np.float32)
    h = keras.Model(model.inputs, model.get_layer("h").output).predict(x, verbose=0)
    bn = model.get_layer("bn")
    gamma, beta, _, _ = bn.get_weights()
    bn.set_weights([gamma, beta + 0.3, h.mean(axis=0), h.var(axis=0)])  # as training ends
    plain = fold_batch_norm(model).get_layer("o").get_weights()[0]
    rows = np.abs(plain).max(axis=1)
    assert rows[2] > 3 * np.delete(rows, 2).max()
    folded = fold_batch_norm(model, calibration=x[:200])
    w = folded.get_layer("o").get_weights()[0]
    assert np.all(w[2] == 0) and np.all(np.delete(w, 2, axis=0) == np.delete(plain, 2, axis=0))
    want = model.predict(x, verbose=0)
    assert np.abs(folded.predict(x, verbose=0) - want).max() <= 1e-5
