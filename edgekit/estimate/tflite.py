"""The TFLite estimator: per-op MACs and parameters, and the tensor arena, from the flatbuffer.

Every non-constant tensor lives from the op that writes it to the last op that reads it, in
execution order; the hybrid int8 kernels' temporaries live for their op only. The arena is
planned like TFLite Micro's greedy planner (:mod:`edgekit.formats.arena`). On a target with
runtime cost models (:mod:`edgekit.estimate.costs`) every op is priced in instructions per
runtime, and TFLite Micro's arena adds its persistent overhead to that plan. What LiteRT
would refuse is refused before (:func:`edgekit.estimate.validate.check_tflite_model`).
"""

from __future__ import annotations

import math
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.estimate import costs
from edgekit.estimate.catalog import Target
from edgekit.estimate.result import Estimate, LayerEstimate, RuntimeEstimate, overall_compute
from edgekit.estimate.validate import check_tflite_model
from edgekit.formats.arena import ALIGNMENT, Buffer, greedy_plan, peak_live
from edgekit.formats.tflite_graph import Op, Tensor, TFLiteGraph, read_tflite

MAC_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL", "CONV_2D", "DEPTHWISE_CONV_2D")
ELEMENTWISE_WITH_CONSTANTS = ("ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "PRELU")


def estimate_tflite(path: Path, target: Target, runtime: str | None = None) -> Estimate:
    """Estimate a ``.tflite`` file on ``target`` (``runtime``: one of its runtimes, or the
    first)."""
    primary = target.runtime(runtime)
    g = read_tflite(path)  # checked: every size fits in 64 bits and in memory
    check_tflite_model(path, g)  # what LiteRT would refuse (custom ops, versions, shapes)
    for i in (*g.inputs, *g.outputs):
        t = g.tensors[i]
        if t.size == 0:
            raise EdgekitError(
                f"{path}: cannot estimate: the model's {'input' if i in g.inputs else 'output'} "
                f"{t.name!r} has no elements (shape {list(t.shape)})"
            )
    producers = {o: op for op in g.ops for o in op.outputs}
    notes: list[str] = []
    layers: list[LayerEstimate] = []
    scratch: list[Buffer] = []
    work: list[costs.OpWork] = []
    totals: dict[str, float] = {}  # instructions per runtime, unrounded
    for op in g.ops:
        out = g.tensors[op.outputs[0]] if op.outputs else None
        macs, params, compute = _op_cost(g, op, producers)
        if compute == "hybrid":
            compute = "int8"
            n_in = g.tensors[op.inputs[0]].size
            units = out.shape[-1] if out is not None and out.shape else 1
            size = n_in + 8 * units + 8  # quantized input, int32 accumulators and row sums
            scratch.append(Buffer(("scratch", op.index), size, op.index, op.index))
            _note(notes, "dynamic-range layers quantize their input at run time (hybrid int8)")
        if compute == "int16":
            _note(notes, "int16 activations are estimated with the int8 cycles per MAC")
        if op.name == "DEQUANTIZE" and all(g.tensors[i].is_constant for i in op.inputs):
            _note(notes, "float16 weights are expanded to float32 in RAM once, at load time")
        cpm = target.cycles_per_mac(compute) if macs else 0.0
        kind = compute if macs else costs.compute_of(out.dtype if out is not None else "-")
        w = costs.OpWork(op.name, kind, macs, out.size if out is not None else 0)
        work.append(w)
        per_runtime = {name: costs.instructions(rt, w) for name, rt in target.runtimes.items()}
        for name, rt in target.runtimes.items():
            fallback = costs.outside_fit(rt, w)
            if fallback is not None:
                _note(notes, f"{op.name} ({kind}) is outside what the {name} cost model was "
                             f"fitted on (MLPs): its MACs are priced at {fallback}'s cost per "
                             "MAC")  # fmt: skip
        for name, value in per_runtime.items():
            totals[name] = totals.get(name, 0.0) + value
        layers.append(
            LayerEstimate(
                index=op.index,
                op=op.name,
                name=_layer_name(out.name) if out is not None else op.name,
                output_shape=list(out.shape) if out is not None else [],
                compute=compute if macs else "-",
                macs=macs,
                params=params,
                cycles=(
                    per_runtime[primary.name] * primary.cycles_per_instruction
                    if primary is not None
                    else macs * cpm
                ),
                instructions={k: round(v) for k, v in per_runtime.items()},
            )
        )
    activations = _lifetimes(g)
    arena = greedy_plan(activations + scratch)
    io = [  # the runtime's conversion of the model's input and output (the C takes floats)
        costs.OpWork(kind, costs.compute_of(g.tensors[i].dtype), 0, g.tensors[i].size, real=False)
        for kind, ids in (("INPUT", g.inputs), ("OUTPUT", g.outputs))
        for i in ids
    ]
    runtimes = [
        RuntimeEstimate(
            name=name,
            description=rt.description,
            instructions=totals.get(name, 0.0) + sum(costs.instructions(rt, w) for w in io),
            cycles_per_instruction=rt.cycles_per_instruction,
            flash_bytes=rt.flash_bytes,
            arena_bytes=costs.arena_bytes(rt, activations=arena, tensors=len(g.tensors), ops=work),
            models_arena=rt.models_arena,
        )
        for name, rt in target.runtimes.items()
    ]
    if arena <= 0 or any(la.macs < 0 or la.params < 0 for la in layers):
        raise EdgekitError(f"{path}: cannot estimate: its tensors declare no memory to plan")
    if any(t.dynamic_batch for t in g.tensors if t.index in g.inputs):
        notes.append("batch dimension taken as 1 (one sample per inference)")
    return Estimate(
        artifact=path.name,
        format="tflite",
        target=target,
        compute=overall_compute({la.compute for la in layers if la.macs}),
        layers=layers,
        flash_bytes=g.bytes,
        activation_bytes=arena,
        arena_bytes=next(
            (r.arena_bytes for r in runtimes if primary and r.name == primary.name), arena
        ),
        peak_activation_bytes=peak_live(activations),
        scratch_bytes=sum(b.size for b in scratch),
        ops=len(g.ops),
        tensors=len(g.tensors),
        notes=notes,
        runtimes=runtimes,
        runtime=primary.name if primary is not None else None,
        work=work + io,
        ram_method=(
            f"planned from {len(activations) + len(scratch)} buffer lifetimes in execution order, "
            f"{ALIGNMENT}-byte aligned"
        ),
    )


def _layer_name(tensor_name: str) -> str:
    """``model_1/dense_0_1/MatMul;...`` -> ``dense_0_1`` (the Keras layer's scope)."""
    first = tensor_name.split(";")[0]
    parts = first.split("/")
    return parts[1] if len(parts) >= 3 else first


def _note(notes: list[str], text: str) -> None:
    if text not in notes:
        notes.append(text)


def _weights(g: TFLiteGraph, index: int, producers: dict[int, Op]) -> Tensor:
    """The constant behind a weight input, looking through DEQUANTIZE (float16 weights)."""
    t = g.tensors[index]
    op = producers.get(index)
    if t.data is None and op is not None and op.name == "DEQUANTIZE" and op.inputs[:1] != [-1]:
        return g.tensors[op.inputs[0]] if op.inputs else t
    return t


def _op_cost(g: TFLiteGraph, op: Op, producers: dict[int, Op]) -> tuple[int, int, str]:
    """(MACs, parameters, compute type) of one op per sample."""
    ins = [g.tensors[i] if i >= 0 else None for i in op.inputs]
    out = g.tensors[op.outputs[0]] if op.outputs else None
    act = ins[0] if ins else None
    weights_in = ins[1] if len(ins) >= 2 else None
    if op.name in MAC_OPS and act is not None and weights_in is not None and out is not None:
        w = _weights(g, op.inputs[1], producers)
        if w.data is None or len(w.shape) < 2:  # a product of two activations
            return 0, 0, "-"
        bias = ins[2].size if len(ins) > 2 and ins[2] is not None else 0
        if op.name == "FULLY_CONNECTED":
            units, n_in = w.shape[0], math.prod(w.shape[1:])
            macs = out.size // max(units, 1) * units * n_in
        elif op.name == "BATCH_MATMUL":
            n_in = w.shape[-2]
            macs = out.size * n_in
        elif op.name == "CONV_2D":  # weights [out_c, kh, kw, in_c]
            macs = out.size * math.prod(w.shape[1:])
        else:  # DEPTHWISE_CONV_2D, weights [1, kh, kw, out_c]
            macs = out.size * math.prod(w.shape[1:3])
        return int(macs), int(w.size + bias), _compute(act.dtype, w.dtype)
    if op.name in ELEMENTWISE_WITH_CONSTANTS:
        params = sum(t.size for t in ins if t is not None and t.is_constant)
        return 0, int(params), "-"
    return 0, 0, "-"


def _compute(activation: str, weights: str) -> str:
    if activation in ("int8", "uint8"):
        return "int8"
    if activation == "int16":
        return "int16"
    if weights in ("int8", "uint8", "int4"):
        return "hybrid"
    return "float32"


def _lifetimes(g: TFLiteGraph) -> list[Buffer]:
    """Every non-constant tensor an op touches, from its writer to its last reader."""
    first: dict[int, int] = {i: 0 for i in g.inputs}
    last: dict[int, int] = {}
    for op in g.ops:
        for i in op.outputs:
            first.setdefault(i, op.index)
        for i in op.inputs:
            if i >= 0:
                first.setdefault(i, op.index)
                last[i] = op.index
    end = len(g.ops) - 1
    for i in g.outputs:
        last[i] = end
    for op in g.ops:  # computed once from constants (float16 weights): persistent
        if op.inputs and all(i < 0 or g.tensors[i].is_constant for i in op.inputs):
            for i in op.outputs:
                first[i], last[i] = 0, end
    buffers = []
    for i, start in first.items():
        t = g.tensors[i]
        if t.is_constant:
            continue
        buffers.append(Buffer(i, t.nbytes, start, max(last.get(i, start), start)))
    return buffers
