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
