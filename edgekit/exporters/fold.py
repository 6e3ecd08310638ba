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

**Constant units.** A unit whose pre-BN output hardly moves over the data (its weights lie
along a linear dependency of its inputs, e.g. a column that is the total of two others) has a
tiny ``moving_variance``, so ``scale`` is near its cap ``gamma / sqrt(eps)`` (about 31 gamma)
and the folded weights are tens of times the layer's others. In float they still cancel; in
int8 each input carries its own rounding error, which those weights amplify into noise on a
unit that should be constant (a tutorial model lost 8 points). So with calibration data
(:func:`fold_batch_norm`'s ``calibration``), each Dense that absorbed a BatchNormalization is
run on it, and a unit or input is replaced by its mean when two witnesses agree that it is
constant: the BatchNormalization's moving standard deviation (the training data's) is at most
:data:`CONSTANT_SPREAD` of the layer's median one, and over the calibration data

- an output unit ``j`` (BN after the Dense) spans at most :data:`CONSTANT_SPREAD` of its reach
  ``sum_i |W[i, j]| * range(x_i)``, what its weights could swing it by: ``W[:, j] = 0`` and
  ``b[j]`` = its mean;
- an input ``i`` (BN before the Dense) moves no unit by more than :data:`CONSTANT_SPREAD` of
  that unit's reach: ``W[i, :] = 0``, its mean times ``W[i, :]`` moving into the bias (a large
  row would set every output channel's weight scale).

On the data each replaced value moves by less than its own range, a ten-thousandth of what
the weights can swing, so the function is unchanged there; the result is kept only when the
model then matches the original on the calibration data within :data:`PARITY` (relative to
the outputs' scale), else the plain folded model is returned. Only the integer variants are
built from this model: the float artifacts never see it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit._lazy import require

# A unit (or an input) is constant over the data when its range there is at most this
# fraction of its reach; int8's own resolution is 1/255 of a tensor's range.
CONSTANT_SPREAD = 1e-4
# How far the model with constant units replaced may move from the original on the
# calibration data, relative to max(1, the largest output there).
PARITY = 1e-5


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


def _bn_affine(layer: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(scale, offset, moving_variance)`` of a BatchNormalization over the last axis."""
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
    return scale, beta - mean * scale, var


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


def fold_batch_norm(model: Any, *, calibration: np.ndarray | None = None) -> Any:
    """``model`` with each foldable BatchNormalization folded into a Dense (a new model);
    ``model`` itself when there is nothing to fold. With ``calibration`` (inputs as the
    model takes them), the folded Dense layers' constant units become bias (module doc)."""
    layers = [lay for lay in model.layers if type(lay).__name__ != "InputLayer"]
    if not any(type(lay).__name__ == "BatchNormalization" for lay in layers):
        return model
    if not _is_chain(model):
        return model
    specs = [_Spec(lay) for lay in layers]
    kept: list[_Spec] = []
    removed: set[int] = set()  # id() of the folded BatchNormalization layers
    changed: set[int] = set()  # id() of the Dense layers that absorbed one
    # id() of a Dense -> the moving variance of the BatchNormalization it absorbed after
    # itself ("units") or before itself ("inputs"): the training data's word on which of
    # its units or inputs are constant.
    stats: dict[int, dict[str, np.ndarray]] = {}
    for i, spec in enumerate(specs):
        affine = _bn_affine(spec.layer) if spec.kind == "BatchNormalization" else None
        if affine is not None:
            scale, offset, var = affine
            prev = kept[-1] if kept else None
            nxt = specs[i + 1] if i + 1 < len(specs) else None
            if prev is not None and prev.kind == "Dense" and prev.config["activation"] == "linear":
                kernel, bias = prev.dense_parts()
                prev.set_dense(kernel * scale, bias * scale + offset)
                removed.add(id(spec.layer))
                changed.add(id(prev.layer))
                stats.setdefault(id(prev.layer), {})["units"] = var
                continue
            if nxt is not None and nxt.kind == "Dense" and nxt.weights[0].shape[0] == len(scale):
                kernel, bias = nxt.dense_parts()
                nxt.set_dense(scale[:, None] * kernel, bias + offset @ kernel)
                removed.add(id(spec.layer))
                changed.add(id(nxt.layer))
                stats.setdefault(id(nxt.layer), {})["inputs"] = var
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
    if calibration is not None and not isinstance(calibration, (list, tuple)):
        folded = [(fresh[i], stats[i]) for i in fresh if i in stats]
        constant_units_to_bias(new, folded, reference=model, x=np.asarray(calibration))
    return new


def _flat_constant(variance: np.ndarray | None) -> np.ndarray | None:
    """Which channels a BatchNormalization saw constant in training: moving standard deviation
    at most :data:`CONSTANT_SPREAD` of the layer's median one."""
    if variance is None:
        return None
    std = np.sqrt(np.maximum(variance, 0.0))
    return std <= CONSTANT_SPREAD * float(np.median(std))


def constant_units_to_bias(
    model: Any, layers: list[tuple[Any, dict[str, np.ndarray]]], *, reference: Any, x: np.ndarray
) -> dict[str, dict[str, list[int]]]:
    """Replace the constant units and inputs of folded Dense layers by their mean, in place.

    ``layers``: (a Dense of ``model``, the moving variance of the BatchNormalization it
    absorbed after itself, ``"units"``, and/or before itself, ``"inputs"``). A unit or input
    is replaced when both the BatchNormalization (training data) and ``x`` (calibration data)
    say it is constant (module doc). Returns ``{layer name: {"units": [...], "inputs":
    [...]}}``; empty when nothing was replaced, or when the result would stray from
    ``reference`` on ``x`` by more than :data:`PARITY` (``model`` is then left as it was).
    """
    keras = require("keras")
    layers = [(layer, st) for layer, st in layers if len(layer.input.shape) == 2]
    if len(x) < 2 or not layers:
        return {}
    probe = keras.Model(
        model.inputs, [t for layer, _ in layers for t in (layer.input, layer.output)]
    )
    seen = probe.predict(x, verbose=0)
    old = {id(layer): layer.get_weights() for layer, _ in layers}
    replaced: dict[str, dict[str, list[int]]] = {}
    for k, (layer, st) in enumerate(layers):
        xin = np.asarray(seen[2 * k], np.float64)
        out = np.asarray(seen[2 * k + 1], np.float64)
        kernel, bias = (np.asarray(w, np.float64) for w in old[id(layer)])
        swing = np.abs(kernel) * (xin.max(axis=0) - xin.min(axis=0))[:, None]  # input i on unit j
        reach = swing.sum(axis=0)  # how far unit j's weights could move it over the data
        units = np.zeros(kernel.shape[1], bool)
        inputs = np.zeros(kernel.shape[0], bool)
        trained = _flat_constant(st.get("units"))
        if trained is not None:
            spread = out.max(axis=0) - out.min(axis=0)
            units = trained & (spread <= CONSTANT_SPREAD * reach) & (reach > 0)
        trained = _flat_constant(st.get("inputs"))
        if trained is not None:
            quiet = np.all(swing <= CONSTANT_SPREAD * reach, axis=1)
            inputs = trained & quiet & np.any(kernel != 0, axis=1)
        if not units.any() and not inputs.any():
            continue
        bias = bias + xin.mean(axis=0)[inputs] @ kernel[inputs]
        kernel[inputs] = 0.0
        kernel[:, units] = 0.0
        bias[units] = out.mean(axis=0)[units]
        layer.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
        replaced[str(layer.name)] = {
            "units": np.flatnonzero(units).tolist(),
            "inputs": np.flatnonzero(inputs).tolist(),
        }
    if not replaced:
        return {}
    want = np.asarray(reference.predict(x, verbose=0), np.float64)
    got = np.asarray(model.predict(x, verbose=0), np.float64)
    if np.max(np.abs(got - want)) > PARITY * max(1.0, float(np.max(np.abs(want)))):
        for layer, _ in layers:
            layer.set_weights(old[id(layer)])
        return {}
    return replaced
