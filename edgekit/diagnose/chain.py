"""The float Keras model as a chain of layers that can be entered at any layer.

Diagnosis needs each layer's float output on the data, and the float model run *from* a layer
on a tensor the artifact produced (what that layer's error alone does downstream, and what
the next layer computes in float from the artifact's own input). edgekit's exporters take
single-input layers only, so a one-input, one-output model is a chain. A Keras 3
``Sequential`` model leaves its input layer out of ``model.layers``; the chain puts it back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit._lazy import require
from edgekit.errors import EdgekitError

ONE_INPUT = (
    "diagnose compares models with one input and one output, layer by layer (export, bench "
    "and predict take several)"
)


# How a SavedModel directory is wrapped (edgekit.formats.saved_model): one opaque layer.
SAVED_MODEL_LAYERS = ("TFSMLayer", "SavedModelCall")


def shape_of(model) -> str:
    """``"2 inputs (a, b) and 1 output (cls)"``."""

    def names(tensors, what: str) -> str:
        listed = ", ".join(str(getattr(t, "name", "?")).split(":")[0] for t in tensors)
        return f"{len(tensors)} {what}{'s' if len(tensors) != 1 else ''} ({listed})"

    return f"{names(model.inputs, 'input')} and {names(model.outputs, 'output')}"


def _input_layer(model) -> list:
    """``[the input layer]`` when ``model.layers`` leaves it out (a Keras 3 ``Sequential``),
    else ``[]``."""
    layers = list(model.layers)
    if layers and type(layers[0]).__name__ == "InputLayer":
        return []
    history = getattr(model.inputs[0], "_keras_history", None)
    layer = getattr(history, "operation", None)
    if type(layer).__name__ == "InputLayer" and layers and layers[0].input is model.inputs[0]:
        return [layer]
    return []


class FloatChain:
    """``layers[0]`` is the input layer; ``outputs(x)[i]`` is ``layers[i]``'s float output."""

    def __init__(self, model, path: str | Path) -> None:
        self.model = model
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise EdgekitError(f"{path}: {ONE_INPUT}; it has {shape_of(model)}")
        wrapped = [la for la in model.layers if type(la).__name__ in SAVED_MODEL_LAYERS]
        if wrapped:
            raise EdgekitError(
                f"{path}: a SavedModel has no Keras layers to compare one by one (its graph is "
                f"one {type(wrapped[0]).__name__}); diagnose the export of the model's .keras "
                "or .h5 file"
            )
        self.layers = [*_input_layer(model), *model.layers]
        if type(self.layers[0]).__name__ != "InputLayer":
            raise EdgekitError(f"{path}: the model's first layer is not its input layer")
        if type(model).__name__ == "Sequential":
            return  # a stack of one-input layers by construction (its layers' first call
            # may be another graph's: ``layer.input`` need not be the layer before's output)
        for before, layer in zip(self.layers, self.layers[1:], strict=False):
            if layer.input is not before.output:
                raise EdgekitError(
                    f"{path}: layer {layer.name!r} does not read {before.name!r}; diagnose "
                    "handles models whose layers form one chain"
                )
        if self.layers[-1].output is not model.outputs[0]:
            raise EdgekitError(f"{path}: the model's output is not its last layer's")

    @property
    def names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def shape(self, position: int) -> tuple[int, ...]:
        """One sample's output shape of ``layers[position]``."""
        return tuple(int(d) for d in self.layers[position].output.shape[1:])

    def kind(self, position: int) -> str:
        return type(self.layers[position]).__name__

    def leading_normalization(self) -> int | None:
        """The position of a ``Normalization`` layer on the input (through reshapes)."""
        for position, layer in enumerate(self.layers[1:], start=1):
            kind = type(layer).__name__
            if kind == "Normalization" and not getattr(layer, "invert", False):
                return position
            if kind not in ("Flatten", "Reshape"):
                return None
        return None

    def run(self, start: int, value: np.ndarray, stop: int | None = None) -> np.ndarray:
        """``layers[start:stop]`` applied in float to ``value`` (the output of ``start - 1``)."""
        keras = require("keras")
        stop = len(self.layers) if stop is None else stop
        want = (len(value), *self.shape(start - 1))
        out = keras.ops.convert_to_tensor(np.asarray(value, np.float32).reshape(want))
        for layer in self.layers[max(start, 1) : stop]:
            out = layer(out, training=False)
        return np.asarray(keras.ops.convert_to_numpy(out), np.float32)

    def outputs(self, x: np.ndarray) -> list[np.ndarray]:
        """Every layer's float output on ``x``, each ``[samples, features]`` in float64."""
        values = [np.asarray(x, np.float32)]
        for position in range(1, len(self.layers)):
            values.append(self.run(position, values[-1], position + 1))
        return [v.reshape(len(v), -1).astype(np.float64) for v in values]
