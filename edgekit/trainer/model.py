"""Model spec -> Keras model: flatten and normalization inside, a head that fits the task.

Preprocessing is part of the model (and, for regression, the target's scale), so exported artifacts take raw features exactly as they
are in the dataset. Images (inputs of rank > 1) are flattened and normalized with one mean and
variance over all pixels; tabular features are normalized per feature, with constant features
given a variance of 1 so that an unseen value cannot blow up to ``x / epsilon``.
"""

from __future__ import annotations

import numpy as np

from edgekit._lazy import require

INPUT_NAME = "features"
OUTPUT_NAMES = {"binary": "probability", "multiclass": "probabilities", "regression": "prediction"}


def _moments(x: np.ndarray, *, per_feature: bool, chunk: int = 4096):
    """Mean and variance (per feature, or over everything) with float64 accumulation, in
    chunks: no float64 copy of a large training set."""
    total = np.zeros(x.shape[1], np.float64)
    squares = np.zeros(x.shape[1], np.float64)
    for start in range(0, len(x), chunk):
        block = x[start : start + chunk].astype(np.float64)
        total += block.sum(axis=0)
        squares += np.square(block).sum(axis=0)
    n = len(x) if per_feature else x.size
    if not per_feature:
        total, squares = total.sum(), squares.sum()
    mean = total / n
    return mean, np.maximum(squares / n - mean**2, 0.0)


def build_model(
    *,
    input_shape: list[int],
    task: str,
    n_classes: int,
    hidden: list[int],
    activation: str = "relu",
    dropout: float = 0.0,
    x_train: np.ndarray | None = None,
    y_train: np.ndarray | None = None,
):
    """Build the feedforward network.

    ``x_train`` (raw features) sets the input normalization. For regression, ``y_train`` sets
    a final ``Rescaling`` so the network learns a standardized target but outputs real units.
    """
    keras = require("keras")
    inputs = keras.Input(shape=tuple(input_shape), name=INPUT_NAME)
    h = inputs
    if len(input_shape) > 1:
        h = keras.layers.Flatten(name="flatten")(h)
    if x_train is not None:
        mean, var = _moments(x_train.reshape(len(x_train), -1), per_feature=len(input_shape) == 1)
        var = np.where(var > 1e-12, var, 1.0)  # constant features pass through unscaled
        if len(input_shape) > 1:  # images: one scale for every pixel
            mean, var, axis = float(mean), float(var), None
        else:
            axis = -1
        h = keras.layers.Normalization(axis=axis, mean=mean, variance=var, name="normalization")(h)
    for i, units in enumerate(hidden):
        h = keras.layers.Dense(units, activation=activation, name=f"dense_{i}")(h)
        if dropout > 0:
            h = keras.layers.Dropout(dropout, name=f"dropout_{i}")(h)
    name = OUTPUT_NAMES[task]
    if task == "binary":
        outputs = keras.layers.Dense(1, activation="sigmoid", name=name)(h)
    elif task == "multiclass":
        outputs = keras.layers.Dense(n_classes, activation="softmax", name=name)(h)
    elif y_train is not None:
        y = np.asarray(y_train, np.float64)
        std = float(y.std()) or 1.0
        h = keras.layers.Dense(1, activation=None, name="linear")(h)
        outputs = keras.layers.Rescaling(scale=std, offset=float(y.mean()), name=name)(h)
    else:
        outputs = keras.layers.Dense(1, activation=None, name=name)(h)
    return keras.Model(inputs, outputs, name="edgekit_mlp")


def compile_model(model, *, task: str, optimizer: str, learning_rate: float) -> None:
    keras = require("keras")
    opt = {
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }[optimizer](learning_rate=learning_rate)
    if task == "binary":
        model.compile(opt, loss="binary_crossentropy", metrics=["accuracy"])
    elif task == "multiclass":
        model.compile(opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    else:
        model.compile(
            opt, loss="mse", metrics=["mae", keras.metrics.RootMeanSquaredError(name="rmse")]
        )
