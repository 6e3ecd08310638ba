"""Cross-layer equalization: same float function, equal weight ranges, outliers levelled.

Small models are built here with seeded random weights; one trained model with an outlier unit
(tests/quant_models.py) checks the function on real data.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.exporters.equalize import channel_scales, dense_pairs, equalize, fresh_copy
from tests.quant_models import OUTLIER_LAYER, OUTLIER_UNIT, outlier_channel_model


def _chain(activations: list[str], *, units: int = 12, outlier: float = 1.0, seed: int = 0):
    """features (6) -> Dense(units, a) for each activation -> Dense(2); unit 3 of ``d0``
    scaled by ``outlier`` in and ``1 / outlier`` out (the same function for ReLU)."""
    import keras

    keras.utils.set_random_seed(seed)
    x = keras.Input((6,), name="features")
    h = x
    for i, activation in enumerate(activations):
        h = keras.layers.Dense(units, activation=activation, name=f"d{i}")(h)
        if i == 0:
            h = keras.layers.Dropout(0.1, name="drop")(h)
    out = keras.layers.Dense(2, name="out")(h)
    model = keras.Model(x, out)
    if outlier != 1.0:
        first, second = model.get_layer("d0"), model.get_layer("d1")
        w1, b1 = first.get_weights()
        w2, b2 = second.get_weights()
        w1[:, 3] *= outlier
        b1[3] *= outlier
        w2[3, :] /= outlier
        first.set_weights([w1, b1])
        second.set_weights([w2, b2])
    return model


def _inputs(n: int = 256, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 6)).astype(np.float32)


def _ranges(model, name: str) -> tuple[np.ndarray, np.ndarray]:
    """max|W[:, j]| of layer ``name`` per output channel, and max|W_next[j, :]| of the next."""
    names = [layer.name for layer in model.layers if type(layer).__name__ == "Dense"]
    w1 = model.get_layer(name).get_weights()[0]
    w2 = model.get_layer(names[names.index(name) + 1]).get_weights()[0]
    return np.abs(w1).max(axis=0), np.abs(w2).max(axis=1)


def test_equalization_keeps_the_function_and_levels_the_outlier():
    model = _chain(["relu", "relu"], outlier=300.0)
    x = _inputs()
    before = model.predict(x, verbose=0)
    r1, _ = _ranges(model, "d0")
    assert r1[3] / np.median(r1) > 100  # the planted outlier

    equalized, scales = equalize(model)
    after = equalized.predict(x, verbose=0)
    assert float(np.max(np.abs(after - before))) < 1e-4
    assert len(scales) == 2 and scales[0][3] > 50  # the outlier unit was scaled down most
    r1, r2 = _ranges(equalized, "d0")
    assert r1[3] / np.median(r1) < 10
    # The last pair of the chain is exactly equalized; the first to within the sweeps.
    np.testing.assert_allclose(*_ranges(equalized, "d1"), rtol=1e-5)
    np.testing.assert_allclose(r1, r2, rtol=0.05)


def test_the_source_model_is_left_alone():
    model = _chain(["relu", "relu"], outlier=300.0)
    weights = [w.copy() for w in model.get_weights()]
    equalize(model)
    for old, new in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_only_positively_homogeneous_activations_are_equalized():
    # d0 relu -> d1: yes; d1 tanh -> d2: no; d2 linear -> out: yes; relu6 never.
    model = _chain(["relu", "tanh", "linear"])
    pairs = [(a.name, b.name) for a, b in dense_pairs(model)]
    assert pairs == [("d0", "d1"), ("d2", "out")]
    assert dense_pairs(_chain(["relu6", "sigmoid"])) == []
    x = _inputs()
    equalized, _ = equalize(model)
    np.testing.assert_allclose(equalized.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)  # fmt: skip


def test_a_layer_read_twice_is_not_equalized():
    import keras

    keras.utils.set_random_seed(0)
    x = keras.Input((6,))
    h = keras.layers.Dense(8, activation="relu", name="h")(x)
    a = keras.layers.Dense(1, name="a")(h)
    b = keras.layers.Dense(1, name="b")(h)
    model = keras.Model(x, keras.layers.Concatenate()([a, b]))
    assert dense_pairs(model) == []
    equalized, scales = equalize(model)
    assert scales == []
    np.testing.assert_allclose(equalized.predict(_inputs(), verbose=0),
                               model.predict(_inputs(), verbose=0), atol=1e-6)  # fmt: skip


def test_channel_scales_leave_dead_channels_alone():
    w1 = np.array([[4.0, 0.0, 1.0], [-2.0, 0.0, 1.0]])
    w2 = np.array([[1.0, 0.5], [3.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(channel_scales(w1, w2), [2.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def outlier_run(tmp_path_factory):
    return outlier_channel_model(tmp_path_factory.mktemp("equalize"))


def test_the_trained_outlier_model_keeps_its_function(outlier_run):
    from edgekit.exporters.preprocess import split_normalization
    from edgekit.formats.keras_file import load_keras_model
    from edgekit.formats.npz import load_npz

    model = load_keras_model(outlier_run / "model.keras")
    x = load_npz(outlier_run / "data" / "test.npz")["x"].astype(np.float32)
    core, affine = split_normalization(model)
    assert affine is not None
    equalized, scales = equalize(core)
    diff = np.abs(equalized.predict(affine.apply(x), verbose=0) - model.predict(x, verbose=0))
    assert float(diff.max()) < 1e-4
    assert [a.name for a, _ in dense_pairs(equalized)] == [OUTLIER_LAYER, "dense_1"]
    r1, _ = _ranges(core, OUTLIER_LAYER)
    e1, _ = _ranges(equalized, OUTLIER_LAYER)
    assert r1[OUTLIER_UNIT] / np.median(r1) > 100 > 10 > e1[OUTLIER_UNIT] / np.median(e1)
    assert scales[0][OUTLIER_UNIT] == max(scales[0])


def test_a_folded_batch_norm_activation_layers_and_noise_between_the_pair_are_seen_through():
    """The tutorial chain ``Dense BN ReLU Dropout Dense BN Activation('relu') GaussianNoise
    Dense``: before folding no pair qualifies (a BatchNormalization's eps breaks the scaling);
    folded, the BNs are identities and both pairs are equalized through the other layers."""
    import keras
    from keras import layers as L

    from edgekit.exporters.fold import fold_batch_norm

    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((6,)), L.Dense(16, name="d0"), L.BatchNormalization(name="bn0"),
        L.ReLU(name="r0"), L.Dropout(0.2, name="drop"), L.Dense(12, name="d1"),
        L.BatchNormalization(name="bn1"), L.Activation("relu", name="a1"),
        L.GaussianNoise(0.1, name="noise"), L.Dense(2, name="out"),
    ])  # fmt: skip
    x = _inputs(512) * np.array([1, 3, 10, 0.3, 1, 30], np.float32)
    model.compile("adam", "mse")
    model.fit(x, np.stack([x[:, 0] > 0, x[:, 2] > 0], 1).astype(np.float32), epochs=3,
              verbose=0)  # fmt: skip
    assert dense_pairs(model) == []
    folded = fold_batch_norm(model)  # shares its unchanged layers with model: copy it
    pairs = [(a.name, b.name) for a, b in dense_pairs(fresh_copy(folded))]
    assert pairs == [("d0", "d1"), ("d1", "out")]
    r1, r2 = _ranges(folded, "d0")
    assert np.ptp(np.log(r1 / r2)) > np.log(3)  # far from equal before
    equalized, scales = equalize(folded)
    assert len(scales) == 2
    np.testing.assert_allclose(*_ranges(equalized, "d1"), rtol=1e-5)  # the last pair: exact
    np.testing.assert_allclose(*_ranges(equalized, "d0"), rtol=0.05)  # within the sweeps
    want = model.predict(x, verbose=0)
    assert float(np.max(np.abs(equalized.predict(x, verbose=0) - want))) <= 1e-5


def test_capped_or_thresholded_relu_and_elu_layers_stop_a_pair():
    import keras
    from keras import layers as L

    for between in (L.ReLU(max_value=6.0), L.ReLU(threshold=0.5), L.ELU(), L.Activation("tanh")):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6,)), L.Dense(8, name="a"), between,
                                  L.Dense(2, name="b")])  # fmt: skip
        assert dense_pairs(model) == [], type(between).__name__
    model = keras.Sequential([keras.Input((6,)), L.Dense(8, name="a"), L.LeakyReLU(0.1),
                              L.PReLU(), L.Dense(2, name="b")])  # fmt: skip
    assert [(a.name, b.name) for a, b in dense_pairs(model)] == [("a", "b")]
