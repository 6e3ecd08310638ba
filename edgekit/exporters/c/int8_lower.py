"""Lowering an int8 TFLite graph to steps: aliases, elementwise tables, then one op each.

Only the ops the model's output depends on are kept, in execution order. RESHAPE, SQUEEZE
and EXPAND_DIMS alias their input (no-ops on contiguous memory; the shape computation in
front of them is dropped), a chain of elementwise ops becomes one table
(:mod:`~edgekit.exporters.c.int8_regions`), and any other op goes through
:data:`~edgekit.exporters.c.int8_ops.LOWER`.
"""

from __future__ import annotations

import re

from edgekit.errors import EdgekitError
from edgekit.exporters.c.int8_ops import LOWER
from edgekit.exporters.c.int8_regions import find_region, lower_region
from edgekit.exporters.c.int8_steps import Lowering
from edgekit.formats.tflite_graph import Op, TFLiteGraph

ALIAS_OPS = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
# What the int8 C computes, in the Keras layers users write (Normalization and Rescaling are
# SUB/MUL or per-feature input parameters, BatchNormalization is folded into the Dense).
INT8_LAYERS = (
    "Dense, Normalization, Rescaling, BatchNormalization, Flatten, Reshape, Softmax, "
    "elementwise activations (Activation, ReLU, LeakyReLU, ELU) and training-only layers "
    "(Dropout, GaussianNoise, ...)"
)
# The Keras layers a TFLite op comes from, to name one when the model is not at hand.
OP_LAYERS = {
    "TRANSPOSE": "Permute",
    "MEAN": "GlobalAveragePooling1D or LayerNormalization",
    "REDUCE_MAX": "GlobalMaxPooling1D",
    "PRELU": "PReLU",
    "GATHER": "Embedding",
    "CONCATENATION": "Concatenate",
    "CONV_2D": "Conv2D",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2D",
}
_SCOPE_SUFFIX = re.compile(r"(.+)_\d+")


def live_ops(g: TFLiteGraph) -> list[Op]:
    """The ops the (single) output depends on, in execution order; shape inputs excluded."""
    needed = {g.outputs[0]}
    live = []
    for op in reversed(g.ops):
        if not any(o in needed for o in op.outputs):
            continue
        live.append(op)
        data_inputs = op.inputs[:1] if op.name in ALIAS_OPS else op.inputs
        needed.update(i for i in data_inputs if i >= 0 and not g.tensors[i].is_constant)
    return list(reversed(live))


def layer_of(g: TFLiteGraph, op: Op, layers: dict[str, str] | None) -> tuple[str, str] | None:
    """``(Keras layer name, class)`` that ``op`` computes, from its output tensor's name
    (``sequential_1/pool_1/Mean``: TensorFlow adds ``_1`` to each layer's scope); the class
    is ``layers[name]``, or, without the model, what the op comes from (:data:`OP_LAYERS`)."""
    name = g.tensors[op.outputs[0]].name if op.outputs else ""
    for segment in reversed(name.split(";")):
        parts = segment.split("/")
        for part in reversed(parts[:-1]):  # the last part is the TensorFlow op
            scoped = _SCOPE_SUFFIX.fullmatch(part)
            for candidate in ([scoped.group(1)] if scoped else []) + [part]:
                if layers is not None and candidate in layers:
                    return candidate, layers[candidate]
            if layers is None and scoped and len(parts) > 2:  # model/layer/op
                return scoped.group(1), OP_LAYERS.get(op.name, "")
    return None


def refusal(g: TFLiteGraph, op: Op, layers: dict[str, str] | None, what: str) -> str:
    """``what`` about ``op``, in the Keras terms of the layer it comes from."""
    found = layer_of(g, op, layers)
    if found is None:
        guess = OP_LAYERS.get(op.name)
        return f"{g.path}: op {op.index} {op.name}{f' (a {guess} layer)' if guess else ''} {what}"
    name, kind = found
    kind_text = f"{kind}, TFLite op {op.name}" if kind else f"TFLite op {op.name}"
    return f"{g.path}: layer {name!r} ({kind_text}) {what}"


def lower(
    g: TFLiteGraph, prefix: str, rounding: str = "tflm", *, layers: dict[str, str] | None = None
) -> Lowering:
    """The steps computing ``g``'s output, with the constant arrays they need, reproducing
    TFLM's kernels (``rounding="tflm"``) or LiteRT's builtin ones (``"litert"``).
    ``layers``: ``{Keras layer name: class}`` of the source model, named by refusals."""
    lw = Lowering(g, prefix, rounding)
    ops = live_ops(g)
    done: set[int] = set()
    for pos, op in enumerate(ops):
        if op.index in done:
            continue
        if op.name in ALIAS_OPS:
            src, dst = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
            if src.size != dst.size or src.dtype != dst.dtype:
                raise EdgekitError(f"{g.path}: {op.name} op {op.index} changes the data")
            lw.alias[op.outputs[0]] = lw.find(op.inputs[0])
            continue
        region = find_region(g, ops, pos)
        if region is not None:
            done.update(o.index for o in region[0])
            lw.steps.append(lower_region(lw, *region))
            continue
        if op.name not in LOWER:
            raise EdgekitError(
                refusal(g, op, layers, "is not supported by --c-source int8; supported: ")
                + f"{INT8_LAYERS} (or use --c-source float32)"
            )
        try:
            lw.steps.append(LOWER[op.name](lw, op))
        except EdgekitError as err:
            found = layer_of(g, op, layers)
            if found is None:
                raise
            name, kind = found
            raise EdgekitError(f"{err} (layer {name!r}{f', {kind}' if kind else ''})") from err
    return lw
