"""Bias correction (Nagel et al. 2019): give each Dense layer back the mean its int8 weights lose.

Rounding a layer's weights to int8 shifts the mean of its output by ``E[x] @ (W_q - W)``, and
when one channel's weights are far smaller than the rest of their scale (an outlier unit's
outgoing weights, say) the shift is systematic rather than noise. The quantized weights are
read from the artifact the converter wrote (per-channel ``FULLY_CONNECTED`` weights, one op per
Dense layer in order), ``E[x]`` is each layer's float input averaged over the calibration set,
and the shift is subtracted from the float bias before the model is converted again: the
weights requantize to the same integers, the output mean comes back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit._lazy import require
from edgekit.errors import EdgekitError


def correct_biases(model, artifact: str | Path, calibration: np.ndarray) -> Any:
    """A new model whose Dense biases are corrected for the quantized weights of ``artifact``
    (a ``.tflite`` converted from ``model``); ``calibration`` is what ``model`` takes.

    Raises :class:`EdgekitError` when the artifact's ops do not match the model's Dense layers.
    """
    from edgekit.exporters.equalize import fresh_copy

    keras = require("keras")
    model = fresh_copy(model)
    dense = [layer for layer in model.layers if type(layer).__name__ == "Dense" and layer.use_bias]
    quantized = quantized_kernels(artifact)
    if len(quantized) != len(dense):
        raise EdgekitError(
            f"{Path(artifact).name}: {len(quantized)} FULLY_CONNECTED ops for "
            f"{len(dense)} Dense layers; bias correction needs one op per layer"
        )
    probe = keras.Model(model.inputs, [layer.input for layer in dense])
    seen = probe.predict(np.asarray(calibration, np.float32), batch_size=1024, verbose=0)
    seen = seen if isinstance(seen, (list, tuple)) else [seen]
    corrected: dict[Any, np.ndarray] = {}
    for layer, w_q, x in zip(dense, quantized, seen, strict=True):
        kernel, bias = (np.asarray(w, np.float64) for w in layer.get_weights())
        if w_q.shape != kernel.shape:
            raise EdgekitError(
                f"{Path(artifact).name}: a FULLY_CONNECTED kernel of shape {list(w_q.shape)} "
                f"for Dense {layer.name!r} of shape {list(kernel.shape)}"
            )
        mean_x = np.asarray(x, np.float64).reshape(-1, kernel.shape[0]).mean(axis=0)
        corrected[layer] = (bias - mean_x @ (w_q - kernel)).astype(np.float32)
    for layer, bias in corrected.items():
        layer.set_weights([layer.get_weights()[0], bias])
    return model


def quantized_kernels(artifact: str | Path) -> list[np.ndarray]:
    """The dequantized weights of each ``FULLY_CONNECTED`` op, in order, as Keras holds them
    (``[inputs, units]``)."""
    from edgekit.formats.tflite_graph import read_tflite

    g = read_tflite(artifact)
    kernels = []
    for op in g.ops:
        if op.name != "FULLY_CONNECTED":
            continue
        t = g.tensors[op.inputs[1]]
        if t.data is None or t.scales is None:
            raise EdgekitError(f"{Path(artifact).name}: {t.name!r} is not a quantized constant")
        q = np.asarray(t.data, np.float64).reshape(t.shape[0], -1)  # [units, inputs]
        zero = np.asarray(t.zero_points if t.zero_points is not None else 0, np.float64)
        scales = np.asarray(t.scales, np.float64)
        kernels.append(((q - zero.reshape(-1, 1)) * scales.reshape(-1, 1)).T)
    return kernels
