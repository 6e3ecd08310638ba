"""A model's leading input normalization, taken out of its integer artifacts.

A ``Normalization`` layer on the raw input (edgekit's trainer puts one there; many users do)
is an affine map per feature, ``z = x * scale + offset`` with ``scale = 1 / std`` and
``offset = -mean / std``. Quantized inside an integer model it is a disaster on tabular data:
the int8 input tensor gets one scale for raw features whose ranges differ a thousandfold, and
the narrow features keep two or three levels. So integer variants are built from the *core*
model (the same layers with that normalization replaced by an identity), calibrated on ``z``,
and the affine map goes where it costs nothing:

- integer inputs (int8/uint8 I/O): folded into per-feature quantization parameters,
  ``q_i = round(x_i / s_i + z_i)`` with ``s_i = s / scale_i`` and ``z_i = z0 + offset_i / s``
  (:meth:`InputAffine.fold`), which the manifest records and every runner applies;
- float inputs (int16x8, ``--io-type float``, ``onnx-static``): float ops ahead of the
  quantize step, so the artifact still takes raw features.

A model without such a layer whose raw features span very different ranges gets one made from
its calibration data (:func:`synthesize_normalization`): the same treatment, with the inverse
map absorbed by the first Dense.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit._lazy import require


@dataclass(frozen=True)
class InputAffine:
    """``z = x * scale + offset`` over one sample's features (scalars for images)."""

    scale: np.ndarray  # float32, () or the sample's feature shape
    offset: np.ndarray

    @property
    def per_feature(self) -> bool:
        return self.scale.ndim > 0

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Raw features -> what the core model takes."""
        x = np.asarray(x, np.float32)
        return (x * self.scale + self.offset).astype(np.float32)

    def fold(self, quantization: dict[str, Any]) -> dict[str, Any]:
        """The core's input quantization ``(s, z0)`` -> the raw features' parameters."""
        s, z0 = float(quantization["scale"]), float(quantization["zero_point"])
        scale = np.asarray(self.scale, np.float64).ravel()
        offset = np.asarray(self.offset, np.float64).ravel()
        scales = s / scale
        zero_points = z0 + offset / s
        if not self.per_feature:
            return {"scale": float(scales[0]), "zero_point": float(zero_points[0])}
        return {
            "scale": [float(v) for v in scales],
            "zero_point": [float(v) for v in zero_points],
            "axis": -1,
        }


def _leading_normalization(model) -> Any | None:
    """The ``Normalization`` layer applied to the model's only input (through reshapes)."""
    if len(model.inputs) != 1:
        return None
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("InputLayer", "Flatten", "Reshape"):
            continue
        if kind == "Normalization" and not getattr(layer, "invert", False):
            return layer
        return None
    return None


def split_normalization(model) -> tuple[Any, InputAffine | None]:
    """``(core, affine)``: the model without its leading normalization, and that
    normalization as an affine map; ``(model, None)`` when the model has none."""
    layer = _leading_normalization(model)
    if layer is None:
        return model, None
    keras = require("keras")
    mean = np.asarray(keras.ops.convert_to_numpy(layer.mean), np.float64)
    var = np.asarray(keras.ops.convert_to_numpy(layer.variance), np.float64)
    std = np.maximum(np.sqrt(var), keras.config.epsilon())  # as the layer divides
    # Broadcast to the tensor the layer sees (one sample), then to one value if all agree.
    shape = tuple(int(d) for d in layer.input.shape[1:])
    mean = np.broadcast_to(mean, (1, *shape))[0]
    std = np.broadcast_to(std, (1, *shape))[0]
    scale, offset = 1.0 / std, -mean / std
    if np.all(scale == scale.flat[0]) and np.all(offset == offset.flat[0]):
        scale, offset = scale.flat[0], offset.flat[0]
    else:
        # Per feature of the model's input: a Flatten ahead keeps the order (C order).
        in_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        scale, offset = scale.reshape(in_shape), offset.reshape(in_shape)
    core = keras.models.clone_model(
        model,
        clone_function=lambda lay: keras.layers.Identity(name=lay.name) if lay is layer else lay,
    )
    return core, InputAffine(np.asarray(scale, np.float32), np.asarray(offset, np.float32))


# Per-tensor input quantization wastes this many times the resolution on the narrowest
# feature when the features' ranges differ by it; beyond it, a normalization is synthesized.
RANGE_RATIO_FOR_NORMALIZATION = 8.0


def synthesize_normalization(
    model, calibration: np.ndarray | None
) -> tuple[Any, InputAffine | None]:
    """For a model that takes raw tabular features without a Normalization layer (a model
    written the way tutorials write it), when the features' ranges differ by more than
    :data:`RANGE_RATIO_FOR_NORMALIZATION`: the standardization of the calibration data as an
    affine map, and a core model whose first Dense absorbs its inverse (``W' = std * W``,
    ``b' = b + mean @ W``), so the integer variants get per-feature input parameters as if the
    model had a Normalization layer. ``(model, None)`` otherwise."""
    if calibration is None or len(model.inputs) != 1 or len(model.inputs[0].shape) != 2:
        return model, None
    dense = None
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("InputLayer", "GaussianNoise", "GaussianDropout", "Dropout", "AlphaDropout"):
            continue
        dense = layer if kind == "Dense" else None
        break
    if dense is None:
        return model, None
    x = np.asarray(calibration, np.float64).reshape(len(calibration), -1)
    lo, hi = np.percentile(x, 0.5, axis=0), np.percentile(x, 99.5, axis=0)
    span = hi - lo
    if span.min(initial=np.inf) <= 0 or span.max() / span.min() <= RANGE_RATIO_FOR_NORMALIZATION:
        return model, None
    keras = require("keras")
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std == 0] = 1.0
    weights = [np.asarray(w, np.float64) for w in dense.get_weights()]
    kernel = weights[0]
    bias = weights[1] if dense.use_bias else np.zeros(kernel.shape[1])
    replacement = type(dense).from_config({**dense.get_config(), "use_bias": True})
    core = keras.models.clone_model(
        model, clone_function=lambda lay: replacement if lay is dense else lay
    )
    replacement.set_weights(
        [(std[:, None] * kernel).astype(np.float32), (bias + mean @ kernel).astype(np.float32)]
    )
    return core, InputAffine((1.0 / std).astype(np.float32), (-mean / std).astype(np.float32))
