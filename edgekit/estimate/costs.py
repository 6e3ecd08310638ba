"""Per-op instruction costs and TFLite Micro's arena on a target's runtimes.

A target's runtimes (:class:`edgekit.estimate.catalog.RuntimeModel`) price each op as
``base + per_mac x MACs + per_element x output elements`` instructions, plus a per-op
dispatch overhead, and TFLite Micro's arena as its head (the activation plan, or the
allocator's temporaries while it plans, whichever is larger) plus its persistent tail
(``arena_base + arena_per_tensor x tensors + arena_per_op x ops`` plus op-specific buffers). The figures are fitted in ``benchmarks/estimate_calibration.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgekit.estimate.catalog import RuntimeModel
from edgekit.formats.arena import ALIGNMENT


@dataclass(frozen=True)
class OpWork:
    """What one op does, for pricing: its type, what it computes in, MACs, output elements."""

    op: str
    compute: str
    macs: int
    elements: int
    real: bool = True  # False: the model's INPUT / OUTPUT conversion, no dispatch overhead


def mac_fallback(runtime: RuntimeModel, compute: str) -> tuple[float, str]:
    """What a MAC costs in an op the runtime has no entry of its own for (a convolution in a
    catalog fitted on MLPs): FULLY_CONNECTED's per-MAC cost in that compute type (int16 and
    hybrid: int8's), else float32's; and which entry that is."""
    keys = [f"FULLY_CONNECTED.{compute}"]
    if compute in ("int16", "hybrid"):
        keys.append("FULLY_CONNECTED.int8")
    keys.append("FULLY_CONNECTED.float32")
    for key in keys:
        cost = runtime.ops.get(key)
        if cost is not None and cost.per_mac > 0:
            return cost.per_mac, key
    return 1.0, "one instruction per MAC"


def outside_fit(runtime: RuntimeModel, work: OpWork) -> str | None:
    """For an op with MACs that only a wildcard entry (or nothing) prices: the entry its MACs
    are priced by instead (:func:`mac_fallback`); None when the op has an entry of its own."""
    if not work.real or work.macs <= 0:
        return None
    cost, key = runtime.cost(work.op, work.compute)
    if key and not key.startswith("*") and cost is not None:
        return None
    if cost is not None and cost.per_mac > 0:
        return None
    return mac_fallback(runtime, work.compute)[1]


def instructions(runtime: RuntimeModel, work: OpWork) -> float:
    """Instructions ``runtime`` executes for one op (its dispatch overhead included). An op
    with MACs and no entry of its own has them priced by :func:`mac_fallback`."""
    cost, _ = runtime.cost(work.op, work.compute)
    if not work.real:  # only an exact INPUT.* / OUTPUT.* entry prices these
        cost = runtime.ops.get(f"{work.op}.{work.compute}")
    body = cost.instructions(work.macs, work.elements) if cost is not None else 0.0
    if outside_fit(runtime, work) is not None:
        body += mac_fallback(runtime, work.compute)[0] * work.macs
    return (runtime.op_overhead if work.real else 0.0) + body


def arena_bytes(runtime: RuntimeModel, *, activations: int, tensors: int, ops: list[OpWork]) -> int:
    """The arena to allocate, 16-byte aligned: its head, the larger of ``activations`` and the
    allocator's temporaries while it plans (``arena_temp_base + arena_temp_per_tensor x
    tensors``), plus the persistent tail (``arena_base + arena_per_tensor x tensors +
    arena_per_op x ops`` and ``arena_ops``).

    A runtime that does not model an arena (its buffers are static) needs ``activations``.
    """
    if runtime.arena_base is None:
        return activations
    real = [w for w in ops if w.real]
    tail = (
        runtime.arena_base + runtime.arena_per_tensor * tensors + runtime.arena_per_op * len(real)
    )
    for w in real:
        base, per_element = runtime.arena_ops.get(
            f"{w.op}.{w.compute}", runtime.arena_ops.get(w.op, (0.0, 0.0))
        )
        tail += base + per_element * w.elements
    head = max(
        float(activations), runtime.arena_temp_base + runtime.arena_temp_per_tensor * tensors
    )
    total = math.ceil(head + tail)
    return -(-total // ALIGNMENT) * ALIGNMENT


def price_recorded(work: Mapping[str, Any], runtime: RuntimeModel) -> tuple[float, int]:
    """(instructions, arena bytes) of one recorded model variant on ``runtime``: ``work`` as
    ``benchmarks/results/estimate_calibration.json`` records it (``activation_bytes``,
    ``tensors`` and ``ops``, each op's :class:`OpWork` fields)."""
    ops = [OpWork(**w) for w in work["ops"]]
    total = sum(instructions(runtime, w) for w in ops)
    arena = arena_bytes(
        runtime, activations=work["activation_bytes"], tensors=work["tensors"], ops=ops
    )
    return total, arena


def compute_of(dtype: str) -> str:
    """What an op without MACs computes in, from its output's type."""
    return {"uint8": "int8", "int8": "int8", "int16": "int16", "float16": "float32"}.get(
        dtype, dtype
    )
