"""Bias correction: the artifact's int8 weights read back, and the output mean they lose restored.

A small seeded model whose second layer reads one unit through weights far below the rest of
their channel's scale, so int8 rounds them to zero and shifts the output mean.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.exporters.bias_correction import correct_biases, quantized_kernels
from edgekit.exporters.tflite import to_tflite


@pytest.fixture(scope="module")
def model_and_artifact(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    x = keras.Input((6,), name="features")
    h = keras.layers.Dense(16, activation="relu", name="d0")(x)
    out = keras.layers.Dense(3, name="out")(h)
    model = keras.Model(x, out)
    w1, b1 = model.get_layer("d0").get_weights()
    w1[:, 5], b1[5] = np.abs(w1[:, 5]) * 300, 30.0  # unit 5: large, always on
    model.get_layer("d0").set_weights([w1, b1])
    w2, b2 = model.get_layer("out").get_weights()
    w2[5, :] = 1e-3  # far below the channel's scale (max |w| / 127)
    model.get_layer("out").set_weights([w2, b2])
    calibration = np.abs(np.random.default_rng(0).normal(size=(200, 6))).astype(np.float32)
    path = tmp_path_factory.mktemp("bias") / "m.int8.tflite"
    to_tflite(model, path, variant="int8", calibration=calibration)
    return model, path, calibration


def test_quantized_kernels_are_the_keras_kernels_within_half_a_step(model_and_artifact):
    model, path, _ = model_and_artifact
    kernels = quantized_kernels(path)
    assert [k.shape for k in kernels] == [(6, 16), (16, 3)]
    for layer, w_q in zip(("d0", "out"), kernels, strict=True):
        w = model.get_layer(layer).get_weights()[0]
        step = np.abs(w).max(axis=0) / 127  # symmetric per output channel
        assert np.all(np.abs(w_q - w) <= step / 2 + 1e-7)
    assert np.all(kernels[1][5] == 0)  # the tiny weights rounded away


def test_corrected_biases_restore_each_layers_output_mean(model_and_artifact):
    model, path, calibration = model_and_artifact
    before = [w.copy() for w in model.get_weights()]
    corrected = correct_biases(model, path, calibration)
    for old, new in zip(before, model.get_weights(), strict=True):  # the source is unchanged
        np.testing.assert_array_equal(old, new)
    w_q = quantized_kernels(path)[1]
    probe = model.get_layer("d0")
    import keras

    h = keras.Model(model.inputs, probe.output).predict(calibration, verbose=0)
    b = model.get_layer("out").get_weights()[1]
    b_new = corrected.get_layer("out").get_weights()[1]
    float_mean = (h @ model.get_layer("out").get_weights()[0] + b).mean(axis=0)
    lost = (h @ w_q + b).mean(axis=0) - float_mean
    assert np.all(np.abs(lost) > 1e-2)  # what rounding the tiny weights costs, per output
    np.testing.assert_allclose((h @ w_q + b_new).mean(axis=0), float_mean, atol=1e-4)


def test_an_artifact_of_another_model_is_refused(model_and_artifact):
    import keras

    _, path, calibration = model_and_artifact
    keras.utils.set_random_seed(1)
    x = keras.Input((6,))
    other = keras.Model(x, keras.layers.Dense(3)(keras.layers.Dense(4)(x)))
    with pytest.raises(EdgekitError, match="FULLY_CONNECTED kernel of shape"):
        correct_biases(other, path, calibration)
