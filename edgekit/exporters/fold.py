"""BatchNormalization folded into a neighbouring Dense for the integer variants.

At inference a BatchNormalization is ``y = x * scale + offset`` per channel (``scale =
gamma / sqrt(var + eps)``, ``offset = beta - mean * scale``). Left in an integer graph it
becomes a quantized MUL and ADD whose output needs its own scale; ONNX Runtime's static
quantization of a BatchNormalization after a ReLU lost 17 points on a test model. Folded, the
model is the same function with fewer tensors to quantize:

- after a Dense with a linear activation: ``W' = W * scale``, ``b' = b * scale + offset``;
- before a Dense (e.g. Dense-ReLU-BN-Dense): ``W' = scale[:, None] * W``, ``b' = b + offset @ W``.

Only single-input chains of layers are rewritten (Sequential, or a Functional model whose
layers follow one another); anything else is returned as it is. The float variants keep the
model exactly as it was (the TFLite converter folds what it can by itself).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit._lazy import require


def _is_chain(model: Any) -> bool:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        return False
    if type(model).__name__ == "Sequential":
        return True
    layers = model.layers
    try:
        return all(layers[k].input is layers[k - 1].output for k in range(1, len(layers)))
    except (AttributeError, ValueError):  # a layer used more than once
        return False


def _bn_affine(layer: Any) -> tuple[np.ndarray, np.ndarray] | None:
    axis = layer.axis if isinstance(layer.axis, int) else list(layer.axis)
    rank = len(layer.output.shape)
    if axis not in (-1, rank - 1, [-1], [rank - 1]):
        return None
    keras = require("keras")
    conv = keras.ops.convert_to_numpy
    mean = np.asarray(conv(layer.moving_mean), np.float64)
    var = np.asarray(conv(layer.moving_variance), np.float64)
    gamma = np.asarray(conv(layer.gamma), np.float64) if layer.scale else np.ones_like(mean)
    beta = np.asarray(conv(layer.beta), np.float64) if layer.center else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + float(layer.epsilon))
    return scale, beta - mean * scale


class _Spec:
    """A layer to rebuild: its class, config and weights (changed by folding)."""

    def __init__(self, layer: Any) -> None:
        self.cls = type(layer)
        self.config = layer.get_config()
        self.weights = [np.asarray(w, np.float64) for w in layer.get_weights()]
        self.layer = layer

    @property
    def kind(self) -> str:
        return self.cls.__name__

    def dense_parts(self) -> tuple[np.ndarray, np.ndarray]:
        kernel = self.weights[0]
        bias = self.weights[1] if self.config.get("use_bias", True) else np.zeros(kernel.shape[1])
        return kernel, bias

    def set_dense(self, kernel: np.ndarray, bias: np.ndarray) -> None:
        self.config = {**self.config, "use_bias": True}
        self.weights = [kernel, bias]


def fold_batch_norm(model: Any) -> Any:
    """``model`` with each foldable BatchNormalization folded into a Dense (a new model);
    ``model`` itself when there is nothing to fold."""
    layers = [lay for lay in model.layers if type(lay).__name__ != "InputLayer"]
    if not any(type(lay).__name__ == "BatchNormalization" for lay in layers):
        return model
    if not _is_chain(model):
        return model
    specs = [_Spec(lay) for lay in layers]
    kept: list[_Spec] = []
    removed: set[int] = set()  # id() of the folded BatchNormalization layers
    changed: set[int] = set()  # id() of the Dense layers that absorbed one
    for i, spec in enumerate(specs):
        affine = _bn_affine(spec.layer) if spec.kind == "BatchNormalization" else None
        if affine is not None:
            scale, offset = affine
            prev = kept[-1] if kept else None
            nxt = specs[i + 1] if i + 1 < len(specs) else None
            if prev is not None and prev.kind == "Dense" and prev.config["activation"] == "linear":
                kernel, bias = prev.dense_parts()
                prev.set_dense(kernel * scale, bias * scale + offset)
                removed.add(id(spec.layer))
                changed.add(id(prev.layer))
                continue
            if nxt is not None and nxt.kind == "Dense" and nxt.weights[0].shape[0] == len(scale):
                kernel, bias = nxt.dense_parts()
                nxt.set_dense(scale[:, None] * kernel, bias + offset @ kernel)
                removed.add(id(spec.layer))
                changed.add(id(nxt.layer))
                continue
        kept.append(spec)
    if not removed:
        return model
    keras = require("keras")
    fresh = {id(s.layer): s.cls.from_config(s.config) for s in specs if id(s.layer) in changed}

    def clone(layer: Any) -> Any:
        # Unchanged layers are shared (their state, e.g. a Normalization's, stays as it is).
        if id(layer) in removed:
            return keras.layers.Identity(name=layer.name)
        return fresh.get(id(layer), layer)

    new = keras.models.clone_model(model, clone_function=clone)
    for spec in specs:
        if id(spec.layer) in changed:
            fresh[id(spec.layer)].set_weights([w.astype(np.float32) for w in spec.weights])
    return new
