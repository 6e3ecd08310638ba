"""Lowering an int8 TFLite graph to steps: aliases, elementwise tables, then one op each.

Only the ops the model's output depends on are kept, in execution order. RESHAPE, SQUEEZE
and EXPAND_DIMS alias their input (no-ops on contiguous memory; the shape computation in
front of them is dropped), a chain of elementwise ops becomes one table
(:mod:`~edgekit.exporters.c.int8_regions`), and any other op goes through
:data:`~edgekit.exporters.c.int8_ops.LOWER`.
"""

from __future__ import annotations

from edgekit.errors import EdgekitError
from edgekit.exporters.c.int8_ops import LOWER
from edgekit.exporters.c.int8_regions import find_region, lower_region
from edgekit.exporters.c.int8_steps import Lowering
from edgekit.formats.tflite_graph import Op, TFLiteGraph

ALIAS_OPS = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
INT8_OPS = ("FULLY_CONNECTED", "SOFTMAX", "SUB", "MUL", "RESHAPE", "elementwise activations")


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


def lower(g: TFLiteGraph, prefix: str, rounding: str = "tflm") -> Lowering:
    """The steps computing ``g``'s output, with the constant arrays they need, reproducing
    TFLM's kernels (``rounding="tflm"``) or LiteRT's builtin ones (``"litert"``)."""
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
                f"{g.path}: op {op.index} {op.name} is not supported by --c-source int8; "
                f"supported: {', '.join(INT8_OPS)} (or use --c-source float32)"
            )
        lw.steps.append(LOWER[op.name](lw, op))
    return lw
