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

A model with several inputs is treated input by input (:class:`InputAffines`): each input that
goes (through reshapes) only into a Normalization layer of its own has that layer taken out,
and each input of raw features whose ranges differ, that reaches a Dense only through
dropout-like layers and at most one Concatenate, has one synthesized (the Dense rows that
input feeds absorb the inverse). An input that fits neither keeps its own quantization.

A SavedModel directory (a Keras model around an opaque ``TFSMLayer``) has the normalization
that its frozen graph begins with taken out there (:mod:`edgekit.exporters.saved_model_split`).
"""

from __future__ import annotations

from collections.abc import Iterator
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


@dataclass(frozen=True)
class InputAffines:
    """The affine map taken out of each of a model's inputs, in the model's input order;
    ``None`` for an input that the core model takes as the model does."""

    per_input: tuple[InputAffine | None, ...]

    def __len__(self) -> int:
        return len(self.per_input)

    def __getitem__(self, index: int) -> InputAffine | None:
        return self.per_input[index]

    def __iter__(self) -> Iterator[InputAffine | None]:
        return iter(self.per_input)

    def apply(self, x: Any) -> Any:
        """Raw inputs (one array, or a list with one per input) -> what the core takes."""
        if isinstance(x, (list, tuple)):
            return [
                np.asarray(part) if a is None else a.apply(part)
                for a, part in zip(self.per_input, x, strict=True)
            ]
        (affine,) = self.per_input  # a model with one input
        return np.asarray(x) if affine is None else affine.apply(x)

    def fold(self, quantizations: list[dict[str, Any] | None]) -> list[dict[str, Any] | None]:
        """Each integer input's own quantization (None for a float input) -> the raw
        features' parameters; an input without an affine map keeps its own."""
        return [
            q if a is None or q is None else a.fold(q)
            for a, q in zip(self.per_input, quantizations, strict=True)
        ]

    def merged(self, other: InputAffines | None) -> InputAffines:
        """These maps, with ``other``'s for the inputs that have none here."""
        if other is None:
            return self
        return InputAffines(
            tuple(a if a is not None else b for a, b in zip(self, other, strict=True))
        )


class _Graph:
    """A Sequential or Functional model's own graph: which nodes read each tensor.

    Walked through the model's own nodes, not through its layers' (a core model shares its
    layers with the model it came from, so a layer's ``input`` is ambiguous there)."""

    def __init__(self, model) -> None:
        functional = getattr(model, "_functional", None) or model
        by_depth = getattr(functional, "_nodes_by_depth", None) or {}
        self.nodes = [node for nodes in by_depth.values() for node in nodes]
        self.readers: dict[int, list[Any]] = {}
        for node in self.nodes:
            for t in node.input_tensors:
                self.readers.setdefault(id(t), []).append(node)

    def only_reader(self, tensor, through: tuple[str, ...]) -> tuple[Any | None, Any]:
        """``(node, tensor it reads)``: the one node that reads ``tensor``, past ``through``
        layers that are each the only reader of the tensor before them; ``(None, tensor)``
        where a tensor has several readers (or none)."""
        while True:
            readers = self.readers.get(id(tensor), [])
            if len(readers) != 1:
                return None, tensor
            node = readers[0]
            if type(node.operation).__name__ in through and len(node.output_tensors) == 1:
                tensor = node.output_tensors[0]
                continue
            return node, tensor

    def uses(self, layer) -> int:
        """How many nodes of this graph call ``layer``."""
        return sum(node.operation is layer for node in self.nodes)


def _floats(tensor) -> bool:
    return "float" in str(tensor.dtype)


def split_normalization(model) -> tuple[Any, InputAffines | None]:
    """``(core, affines)``: the model without the Normalization layer that each of its
    inputs goes into (through reshapes) and nothing else does, and those normalizations as
    affine maps, one per input (None for an input without one); ``(model, None)`` when no
    input has one. A SavedModel (a Keras model around a ``TFSMLayer``) has the normalization
    its frozen graph begins with taken out (:mod:`edgekit.exporters.saved_model_split`)."""
    graph = _Graph(model)
    if len(model.inputs) == 1 and len(model.outputs) == 1:
        node, _ = graph.only_reader(model.inputs[0], ())
        if (
            node is not None
            and type(node.operation).__name__ == "TFSMLayer"
            and node.output_tensors[0] is model.outputs[0]
        ):
            from edgekit.exporters.saved_model_split import split_saved_model

            found = split_saved_model(model)
            return (model, None) if found is None else (found[0], InputAffines((found[1],)))
    heads: list[tuple[Any, Any] | None] = []  # (layer, the tensor it normalizes) per input
    for t in model.inputs:
        node, seen = graph.only_reader(t, ("Flatten", "Reshape"))
        layer = node.operation if node is not None else None
        if (
            layer is None
            or type(layer).__name__ != "Normalization"
            or getattr(layer, "invert", False)
            or not _floats(t)
        ):
            heads.append(None)
            continue
        heads.append((layer, seen))
    for layer in {id(h[0]): h[0] for h in heads if h is not None}.values():
        if graph.uses(layer) != sum(h is not None and h[0] is layer for h in heads):
            heads = [None if h is not None and h[0] is layer else h for h in heads]  # used inside
    if all(h is None for h in heads):
        return model, None
    keras = require("keras")
    affines: list[InputAffine | None] = []
    for t, head in zip(model.inputs, heads, strict=True):
        if head is None:
            affines.append(None)
            continue
        layer, seen = head
        mean = np.asarray(keras.ops.convert_to_numpy(layer.mean), np.float64)
        var = np.asarray(keras.ops.convert_to_numpy(layer.variance), np.float64)
        std = np.maximum(np.sqrt(var), keras.config.epsilon())  # as the layer divides
        # Broadcast to the tensor the layer sees (one sample), then to one value if all agree.
        shape = tuple(int(d) for d in seen.shape[1:])
        mean = np.broadcast_to(mean, (1, *shape))[0]
        std = np.broadcast_to(std, (1, *shape))[0]
        scale, offset = 1.0 / std, -mean / std
        if np.all(scale == scale.flat[0]) and np.all(offset == offset.flat[0]):
            scale, offset = scale.flat[0], offset.flat[0]
        else:
            # Per feature of the model's input: a Flatten ahead keeps the order (C order).
            in_shape = tuple(int(d) for d in t.shape[1:])
            scale, offset = scale.reshape(in_shape), offset.reshape(in_shape)
        affines.append(InputAffine(np.asarray(scale, np.float32), np.asarray(offset, np.float32)))
    identities = {id(h[0]): keras.layers.Identity(name=h[0].name) for h in heads if h is not None}
    core = keras.models.clone_model(model, clone_function=lambda lay: identities.get(id(lay), lay))
    return core, InputAffines(tuple(affines))


# Per-tensor input quantization wastes this many times the resolution on the narrowest
# feature when the features' ranges differ by it; beyond it, a normalization is synthesized.
RANGE_RATIO_FOR_NORMALIZATION = 8.0

# Identities at inference, between an input and the Dense that absorbs its inverse map.
_INFERENCE_IDENTITIES = ("GaussianNoise", "GaussianDropout", "Dropout", "AlphaDropout")


def _absorbing_dense(graph: _Graph, tensor) -> tuple[Any, int] | None:
    """``(Dense, first row)``: the Dense whose kernel rows ``first, first + n`` are all that
    the raw features ``tensor`` (``n`` of them, flat) reach, directly or through one
    Concatenate on the last axis; None when there is none."""
    node, seen = graph.only_reader(tensor, _INFERENCE_IDENTITIES)
    first = 0
    if node is not None and type(node.operation).__name__ == "Concatenate":
        parts = list(node.input_tensors)
        if (
            node.operation.axis not in (-1, 1)
            or len(node.output_tensors) != 1
            or any(len(p.shape) != 2 for p in parts)
        ):
            return None
        index = next(i for i, p in enumerate(parts) if p is seen)  # its only reader: once
        first = sum(int(p.shape[1]) for p in parts[:index])
        node, _ = graph.only_reader(node.output_tensors[0], _INFERENCE_IDENTITIES)
    if node is None or type(node.operation).__name__ != "Dense":
        return None
    if graph.uses(node.operation) != 1:  # a shared Dense reads other tensors too
        return None
    return node.operation, first


def synthesize_normalization(
    model, calibration: Any, *, taken: InputAffines | None = None
) -> tuple[Any, InputAffines | None]:
    """For a model that takes raw tabular features without a Normalization layer (a model
    written the way tutorials write it): for each input (one array of ``calibration`` per
    input; an array for one input) whose features' ranges differ by more than
    :data:`RANGE_RATIO_FOR_NORMALIZATION`, the standardization of its calibration data as an
    affine map, and a core model whose Dense absorbs its inverse in the rows that input feeds
    (``W' = std * W``, ``b' = b + mean @ W``), so the integer variants get per-feature input
    parameters as if the model had a Normalization layer. Inputs with a map in ``taken`` are
    left alone. ``(model, None)`` when no input gets one."""
    if calibration is None:
        return model, None
    parts = list(calibration) if isinstance(calibration, (list, tuple)) else [calibration]
    if len(parts) != len(model.inputs):
        return model, None
    graph = _Graph(model)
    plans: list[tuple[Any, int, np.ndarray, np.ndarray] | None] = []
    for i, (t, part) in enumerate(zip(model.inputs, parts, strict=True)):
        plans.append(None)
        if (taken is not None and taken[i] is not None) or len(t.shape) != 2 or not _floats(t):
            continue
        x = np.asarray(part, np.float64).reshape(len(part), -1)
        lo, hi = np.percentile(x, 0.5, axis=0), np.percentile(x, 99.5, axis=0)
        span = hi - lo
        if (
            span.min(initial=np.inf) <= 0
            or span.max() / span.min() <= RANGE_RATIO_FOR_NORMALIZATION
        ):
            continue
        target = _absorbing_dense(graph, t)
        if target is None:
            continue
        std = x.std(axis=0)
        std[std == 0] = 1.0
        plans[i] = (*target, x.mean(axis=0), std)
    if all(p is None for p in plans):
        return model, None
    keras = require("keras")
    replacements: dict[int, Any] = {}
    for dense in {id(p[0]): p[0] for p in plans if p is not None}.values():
        weights = [np.asarray(w, np.float64) for w in dense.get_weights()]
        kernel = weights[0]
        bias = weights[1] if dense.use_bias else np.zeros(kernel.shape[1])
        new_kernel, new_bias = kernel.copy(), bias.copy()
        for plan in plans:
            if plan is None or plan[0] is not dense:
                continue
            _, first, mean, std = plan
            rows = slice(first, first + len(std))
            new_kernel[rows] = std[:, None] * kernel[rows]
            new_bias += mean @ kernel[rows]
        replacement = type(dense).from_config({**dense.get_config(), "use_bias": True})
        replacements[id(dense)] = (replacement, [new_kernel, new_bias])
    core = keras.models.clone_model(
        model,
        clone_function=lambda lay: replacements[id(lay)][0] if id(lay) in replacements else lay,
    )
    for replacement, weights in replacements.values():
        replacement.set_weights([w.astype(np.float32) for w in weights])
    affines = tuple(
        None
        if p is None
        else InputAffine((1.0 / p[3]).astype(np.float32), (-p[2] / p[3]).astype(np.float32))
        for p in plans
    )
    return core, InputAffines(affines)


def normalize_inputs(model, calibration: Any) -> tuple[Any, InputAffines | None]:
    """``(core, affines)`` for the integer variants: each input's own Normalization taken out
    (:func:`split_normalization`), then one synthesized for each other input of raw features
    (:func:`synthesize_normalization`); ``(model, None)`` when no input has either."""
    core, split = split_normalization(model)
    core, synthesized = synthesize_normalization(core, calibration, taken=split)
    if split is None:
        return core, synthesized
    return core, split.merged(synthesized)
