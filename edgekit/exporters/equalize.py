"""Cross-layer equalization of Dense chains (Nagel et al. 2019, data-free quantization).

One hidden unit whose incoming weights are a hundred times its neighbours' takes the whole
range of a per-tensor int8 activation, and the others keep a level or two. For ``y = W2 f(W1 x
+ b1)`` with ``f`` positively homogeneous (``f(s z) = s f(z)`` for ``s > 0``: ReLU, leaky ReLU,
linear), scaling hidden unit ``j`` by ``1 / s_j`` on the way in and ``s_j`` on the way out
leaves the function unchanged; ``s_j = sqrt(r1_j / r2_j)``, with ``r1_j = max|W1[:, j]|`` and
``r2_j = max|W2[j, :]|``, gives both weight matrices the same range per channel, and the
activations follow. Longer chains are swept a few times, each pair in turn.

Between the two Dense layers may stand layers that are the identity at inference (dropout,
noise, activity regularization, and the ``Identity`` a folded BatchNormalization leaves,
:mod:`edgekit.exporters.fold`) and positively homogeneous activation layers (``ReLU`` without
a cap or threshold, ``LeakyReLU``, ``PReLU``, ``Activation("relu")``): each commutes with a
positive per-channel scale, so the pair is equalized through them. A BatchNormalization that
was not folded does not (its ``eps`` breaks the scaling), nor does anything else.

>>> equalized, scales = equalize(model)                            # doctest: +SKIP
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from edgekit._lazy import require

# Activations with f(s * z) == s * f(z) for every s > 0 (relu6, tanh, sigmoid are not).
HOMOGENEOUS = ("relu", "linear", "leaky_relu")
# Layers that pass a tensor through unchanged at inference.
_TRANSPARENT = (
    "Dropout", "AlphaDropout", "GaussianDropout", "GaussianNoise", "ActivityRegularization",
    "Identity",
)  # fmt: skip


def equalize(model, *, sweeps: int = 8, tol: float = 1e-4) -> tuple[Any, list[np.ndarray]]:
    """``(equalized, scales)``: a new model computing the same function with each
    equalizable Dense pair's hidden channels rescaled, and the total scale ``s`` applied to
    each pair's hidden channels (the model is unchanged when ``scales`` is empty).

    ``model`` itself is not modified. Pairs are consecutive Dense layers (only identity and
    positively homogeneous layers between them, module doc), the first with a positively
    homogeneous activation and its output read by the second alone.
    """
    clone = fresh_copy(model)
    pairs = dense_pairs(clone)
    totals = [np.ones(first.units) for first, _ in pairs]
    weights = {id(layer): [np.asarray(w, np.float64) for w in layer.get_weights()]
               for pair in pairs for layer in pair}  # fmt: skip
    for _ in range(sweeps):
        moved = 0.0
        for k, (first, second) in enumerate(pairs):
            w1, *bias = weights[id(first)]
            w2 = weights[id(second)][0]
            s = channel_scales(w1, w2)
            w1 /= s
            for b in bias:
                b /= s
            w2 *= s[:, None]
            totals[k] *= s
            moved = max(moved, float(np.max(np.abs(np.log(s)))))
        if moved < tol:
            break
    for layer in {id(layer): layer for pair in pairs for layer in pair}.values():
        layer.set_weights([w.astype(np.float32) for w in weights[id(layer)]])
    return clone, totals


def fresh_copy(model) -> Any:
    """``model`` with layers of its own (same weights). A core model from
    :func:`~edgekit.exporters.preprocess.split_normalization` shares its layers with the model
    it came from, so their ``input`` and ``output`` are ambiguous there."""
    keras = require("keras")
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def channel_scales(w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """``s_j = sqrt(max|W1[:, j]| / max|W2[j, :]|)``; 1 for a channel dead on either side."""
    r1 = np.max(np.abs(w1), axis=0)
    r2 = np.max(np.abs(w2), axis=1)
    s = np.ones_like(r1)
    live = (r1 > 0) & (r2 > 0)
    s[live] = np.sqrt(r1[live] / r2[live])
    return s


def dense_pairs(model) -> list[tuple[Any, Any]]:
    """Consecutive ``(Dense, Dense)`` pairs of ``model`` that equalization may rescale."""
    pairs = []
    layers = [layer for layer in model.layers if not _passes_scale(layer)]
    for first, second in itertools.pairwise(layers):
        if type(first).__name__ != "Dense" or type(second).__name__ != "Dense":
            continue
        if _activation(first) in HOMOGENEOUS and _reads_only(model, first, second):
            pairs.append((first, second))
    return pairs


def _activation(layer) -> str:
    return getattr(layer.activation, "__name__", "")


def _passes_scale(layer) -> bool:
    """``layer(s * x) == s * layer(x)`` per channel for every ``s > 0``, at inference."""
    kind = type(layer).__name__
    if kind in _TRANSPARENT or kind in ("LeakyReLU", "PReLU"):
        return True
    if kind == "ReLU":
        return layer.max_value is None and float(layer.threshold) == 0.0
    return kind == "Activation" and _activation(layer) in HOMOGENEOUS


def _reads_only(model, first, second) -> bool:
    """``second`` reads ``first``'s output (through layers that pass a scale), and nothing
    else does."""
    readers = [
        layer
        for layer in model.layers
        if layer is not first and _inputs(layer) and any(t is first.output for t in _inputs(layer))
    ]
    if len(readers) != 1 or any(t is first.output for t in model.outputs):
        return False
    reader = readers[0]
    while reader is not second:
        if not _passes_scale(reader):
            return False
        after = [layer for layer in model.layers if any(t is reader.output for t in _inputs(layer))]
        if len(after) != 1:
            return False
        reader = after[0]
    return True


def _inputs(layer) -> list[Any]:
    try:
        tensors = layer.input
    except (AttributeError, ValueError):  # an InputLayer, or a layer called more than once
        return []
    return list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]
