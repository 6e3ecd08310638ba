"""The input normalization of a SavedModel, taken out of its frozen graph.

A SavedModel directory reaches the exporters as a Keras model around a ``TFSMLayer``
(:mod:`edgekit.formats.keras_file`): its layers are opaque, so a Normalization layer inside
cannot be split out as :func:`edgekit.exporters.preprocess.split_normalization` does for a
Keras model, and its integer variants quantize the raw features with one scale. Its graph is
not opaque, though: frozen, it begins with the layer's ops, ``(x - mean) / std`` (``Sub``,
``RealDiv``), constants on the input. Here that leading chain of elementwise ops with constant
per-feature operands is read as an affine map (the model's own, exactly), and the core is the
frozen graph fed at the chain's end, as a Keras layer: the same treatment as a Keras model's
Normalization layer, with the same function (only float rounding differs).
"""

from __future__ import annotations

import functools
import uuid
import weakref
from typing import Any

import numpy as np

from edgekit._lazy import require

# Ops the chain may hold: the input's value passes through unchanged, or is combined with a
# constant (a tensor that does not depend on the input).
_PASS = ("Identity",)
_AFFINE = ("Sub", "Add", "AddV2", "Mul", "RealDiv")

# The frozen graphs of core models' layers, by key: a layer's config names its graph, so a
# clone (clone_model) runs the same one. In-process only; gone with the last layer using it.
_GRAPHS: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()


def _name(tensor: str) -> str:
    """A node input (``node``, ``node:1``) as a tensor name."""
    return tensor if ":" in tensor else f"{tensor}:0"


@functools.cache
def _graph_layer() -> type:
    keras = require("keras")
    layer: Any = keras.layers.Layer

    class FrozenGraph(layer):
        """The rest of a SavedModel's frozen graph, fed at the end of its input's
        normalization (see :func:`split_saved_model`)."""

        def __init__(self, graph: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.graph = graph
            self._function = _GRAPHS[graph]

        def call(self, x):
            out = self._function(x)
            return out[0] if isinstance(out, (list, tuple)) else out

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "graph": self.graph}

    return FrozenGraph


def _leading_affine(graph_def, start: str, n: int, value) -> tuple[str, np.ndarray, np.ndarray]:
    """``(end, scale, offset)``: ``end = start * scale + offset`` per feature over the chain
    of ops that ``start`` goes through, each the only reader of the tensor before it, whose
    other operand is a constant broadcast over the ``n`` features (``value(name)`` evaluates
    it); ``end`` is ``start`` where there is no such op."""
    nodes = {node.name: node for node in graph_def.node}
    readers: dict[str, list[tuple[Any, int]]] = {}
    for node in graph_def.node:
        for position, tensor in enumerate(node.input):
            if not tensor.startswith("^"):  # a control input carries no value
                readers.setdefault(_name(tensor), []).append((node, position))

    def constant(tensor: str) -> bool:
        stack, seen = [tensor.split(":")[0]], set()
        while stack:
            node = nodes[stack.pop()]
            if node.op == "Placeholder":
                return False
            seen.add(node.name)
            stack += [i.split(":")[0] for i in node.input if not i.startswith("^")]
            stack = [s for s in stack if s not in seen]
        return True

    scale, offset = np.ones(n), np.zeros(n)
    end = current = start
    while True:
        users = readers.get(current, [])
        if len(users) != 1:
            return end, scale, offset
        node, position = users[0]
        if node.op in _PASS:
            current = f"{node.name}:0"
            continue
        if node.op not in _AFFINE or len(node.input) != 2:
            return end, scale, offset
        other = _name(node.input[1 - position])
        if not constant(other):
            return end, scale, offset
        c = np.asarray(value(other), np.float64)
        if c.ndim > 2 or np.broadcast_shapes(c.shape, (1, n)) != (1, n):
            return end, scale, offset
        c = np.broadcast_to(c, (1, n))[0]
        if node.op == "Sub" and position == 0:
            offset = offset - c
        elif node.op == "Sub":
            scale, offset = -scale, c - offset
        elif node.op in ("Add", "AddV2"):
            offset = offset + c
        elif node.op == "Mul":
            scale, offset = scale * c, offset * c
        elif position == 0:  # RealDiv by a constant
            scale, offset = scale / c, offset / c
        else:  # a constant divided by the input: not affine
            return end, scale, offset
        end = current = f"{node.name}:0"


def split_saved_model(model) -> tuple[Any, Any] | None:
    """``(core, affine)`` for a wrapped SavedModel (one 2-D float input, one output) whose
    frozen graph begins with a per-feature affine map of its input (a Normalization layer):
    that map, and a Keras model running the rest of the graph. None otherwise (no such map, a
    map that is one scale and offset for every feature, or a graph that cannot be frozen)."""
    from edgekit.exporters.preprocess import InputAffine

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        return None
    (t,) = model.inputs
    if len(t.shape) != 2 or t.shape[1] is None or "float" not in str(t.dtype):
        return None
    n = int(t.shape[1])
    tf = require("tensorflow")
    keras = require("keras")
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    try:
        spec = tf.TensorSpec([None, n], tf.float32)
        traced = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
        frozen = convert_variables_to_constants_v2(traced)
        graph_def = frozen.graph.as_graph_def()
        wrapped = tf.compat.v1.wrap_function(
            lambda: tf.compat.v1.import_graph_def(graph_def, name=""), []
        )
        graph = wrapped.graph

        def value(name: str) -> np.ndarray:
            out = wrapped.prune(feeds=[], fetches=[graph.get_tensor_by_name(name)])()
            return np.asarray(out[0] if isinstance(out, (list, tuple)) else out)

        start, output = frozen.inputs[0].name, frozen.outputs[0].name
        end, scale, offset = _leading_affine(graph_def, start, n, value)
        if end == start or not (np.all(np.isfinite(scale)) and np.all(scale != 0)):
            return None
        if np.all(scale == scale[0]) and np.all(offset == offset[0]):
            return None  # one scale for every feature: the input's own quantization is as good
        core_fn = wrapped.prune(
            feeds=[graph.get_tensor_by_name(end)], fetches=[graph.get_tensor_by_name(output)]
        )
    except Exception:  # a graph TensorFlow cannot freeze or prune: left as it is
        return None
    key = uuid.uuid4().hex
    _GRAPHS[key] = core_fn
    layer = _graph_layer()(key, name="saved_model")  # it holds core_fn; the registry is weak
    z = keras.Input((n,), name=t.name)
    core = keras.Model(z, layer(z), name=model.name)
    affine = InputAffine(scale.astype(np.float32), offset.astype(np.float32))
    return core, affine
