"""Chains of elementwise int8 ops, each lowered to one 256-entry table (``ek_lut``).

With constant scalar operands, a chain of elementwise ops (TANH, LOGISTIC, GELU,
DEQUANTIZE-ELU-QUANTIZE, LOGISTIC+MUL for swish, ...) applied to one int8 tensor is a
function of one int8 value. Its table is filled by running exactly those ops, cut out of the
model as a small ``.tflite`` (same operator codes, tensors and constants), on all 256 inputs
in TensorFlow Lite Micro (``--c-rounding tflm``, when ``tflite-micro`` is installed and has
the ops) or with ai_edge_litert's builtin kernels, so it holds what that runtime computes.
TFLM's int8 TANH and LOGISTIC are gemmlowp fixed point, LiteRT's are float tables: they
differ by an LSB on some inputs.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._lazy import require
from edgekit.errors import EdgekitError
from edgekit.exporters.c.int8_steps import Lowering, Ref, Step
from edgekit.exporters.c.literals import c_int
from edgekit.exporters.c.litert import tflite_int8_outputs
from edgekit.formats.tflite_graph import Op, TFLiteGraph

ELEMENTWISE = frozenset((
    "TANH", "LOGISTIC", "GELU", "ELU", "HARD_SWISH", "LEAKY_RELU", "RELU", "RELU6",
    "RELU_N1_TO_1", "RELU_0_TO_1", "QUANTIZE", "DEQUANTIZE", "EXP", "LOG", "NEG", "ABS",
    "SQUARE", "SQRT", "RSQRT", "SIN", "COS", "ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM",
    "POW", "GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL", "EQUAL", "NOT_EQUAL", "SELECT",
    "SELECT_V2", "LOGICAL_AND", "LOGICAL_OR", "LOGICAL_NOT", "CAST", "FLOOR", "CEIL", "ROUND",
    "SIGN", "SQUARED_DIFFERENCE",
))  # fmt: skip


def _split(g: TFLiteGraph, op: Op) -> tuple[list[int], list[int]]:
    """(variable inputs, constant inputs) of ``op``."""
    present = [i for i in op.inputs if i >= 0]
    return (
        [i for i in present if not g.tensors[i].is_constant],
        [i for i in present if g.tensors[i].is_constant],
    )


def _scalars(g: TFLiteGraph, tensors: list[int]) -> bool:
    return all(g.tensors[i].is_constant and g.tensors[i].size == 1 for i in tensors)


def find_region(g: TFLiteGraph, ops: list[Op], pos: int) -> tuple[list[Op], int, int] | None:
    """(ops, seed, exit): the elementwise chain from ``ops[pos]`` on one int8 tensor, if any."""
    if ops[pos].name not in ELEMENTWISE:
        return None
    variable, constants = _split(g, ops[pos])
    if len(set(variable)) != 1 or not _scalars(g, constants):
        return None
    seed = variable[0]
    if g.tensors[seed].dtype != "int8":
        return None
    n = g.tensors[seed].size
    inside = {seed}
    members = []
    for cand in ops[pos:]:
        if cand.name not in ELEMENTWISE:
            continue
        var, const = _split(g, cand)
        if not var or not set(var) <= inside or not _scalars(g, const):
            continue
        if any(g.tensors[o].size != n for o in cand.outputs):
            continue
        members.append(cand)
        inside.update(cand.outputs)
    member_ids = {m.index for m in members}
    exits = {
        t
        for m in members
        for t in m.outputs
        if t in g.outputs or any(c.index not in member_ids for c in ops if t in c.inputs)
    }
    if len(exits) != 1:
        raise EdgekitError(
            f"{g.path}: the elementwise ops {', '.join(m.name for m in members)} "
            "do not reduce to one int8 tensor; not supported by --c-source int8"
        )
    exit_ = exits.pop()
    if g.tensors[exit_].dtype != "int8":
        raise EdgekitError(
            f"{g.path}: elementwise ops end in a {g.tensors[exit_].dtype} tensor; "
            "--c-source int8 needs int8 activations"
        )
    return members, seed, exit_


def lower_region(lw: Lowering, members: list[Op], seed: int, exit_: int) -> Step:
    """The chain as one ``ek_lut`` call on its table."""
    model = region_model(lw.g.path, members, seed, exit_)
    every_value = np.arange(-128, 128, dtype=np.int8)[None]
    table = _tflm_table(model, every_value) if lw.rounding == "tflm" else None
    if table is None:
        table = tflite_int8_outputs(model, every_value, kernels="builtin").ravel()
        lw.tables.add("litert_builtin")
    else:
        lw.tables.add("tflm")
    name = lw.array("int8_t", lw.name("lut"), table, c_int, 16)
    n = lw.g.tensors[seed].size
    what = "+".join(m.name for m in members)
    args: list[str | Ref] = [lw.ref(seed), str(n), name, lw.ref(exit_)]
    return Step(
        "lut",
        args,
        [lw.find(seed)],
        lw.find(exit_),
        f"{what} (table): {n} values through a 256-entry table",
    )


def _tflm_table(model: bytes, every_value: np.ndarray) -> np.ndarray | None:
    """The region run in TFLM on all 256 values; None without tflite-micro (or the ops)."""
    from edgekit.exporters.c import tflm

    if not tflm.probe(model).runs:  # not installed, or an op TFLM lacks (e.g. GELU)
        return None
    try:
        return tflm.tflm_int8_outputs(model, every_value).ravel()
    except (RuntimeError, ValueError):  # ran on zeros in the probe, not on these values
        return None


def region_model(path: Path, members: list[Op], seed: int, exit_: int) -> bytes:
    """Ops ``members`` of ``path`` as a ``.tflite`` of their own: ``seed`` in, ``exit_`` out.

    The variable tensors are reshaped to ``[1, 256]``: one call computes the whole table.
    """
    return cut_model(path, members, seed, exit_, shape=[1, 256])


def cut_model(
    path: Path, members: list[Op], seed: int, exit_: int, *, shape: list[int] | None
) -> bytes:
    """Ops ``members`` of ``path`` as a ``.tflite`` of their own: ``seed`` in, ``exit_`` out;
    its variable tensors reshaped to ``shape`` (None: as they are)."""
    flatbuffers = require("flatbuffers")
    schema = require("ai_edge_litert.schema_py_generated")
    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    sub = model.subgraphs[0]
    used: list[int] = [seed]
    for m in members:
        for i in [*m.inputs, *m.outputs]:
            if i >= 0 and i not in used:
                used.append(i)
    remap = {old: new for new, old in enumerate(used)}
    buffers = [schema.BufferT()]
    tensors = []
    for old in used:
        t = copy.copy(sub.tensors[old])
        if 0 < t.buffer < len(model.buffers) and _has_data(model.buffers[t.buffer]):
            buffers.append(model.buffers[t.buffer])
            t.buffer = len(buffers) - 1
        else:
            t.buffer = 0
            if shape is not None:
                t.shape = list(shape)
                t.shapeSignature = list(shape)
        tensors.append(t)
    operators = []
    for m in members:
        op = copy.copy(sub.operators[m.index])
        op.inputs = [remap[i] if i >= 0 else -1 for i in m.inputs]
        op.outputs = [remap[i] for i in m.outputs]
        operators.append(op)
    graph = schema.SubGraphT()
    graph.tensors, graph.operators = tensors, operators
    graph.inputs, graph.outputs = [remap[seed]], [remap[exit_]]
    graph.name = "edgekit_lut" if shape == [1, 256] else "edgekit_part"
    small = schema.ModelT()
    small.version = model.version
    small.operatorCodes = model.operatorCodes
    small.subgraphs = [graph]
    small.buffers = buffers
    small.description = (
        "edgekit: one elementwise region, for a lookup table"
        if shape == [1, 256]
        else "edgekit: part of a model"
    )
    builder = flatbuffers.Builder(1024)
    builder.Finish(small.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _has_data(buf: Any) -> bool:
    return (buf.data is not None and len(buf.data) > 0) or bool(buf.offset and buf.offset > 1)
