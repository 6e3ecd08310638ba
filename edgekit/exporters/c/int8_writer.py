"""int8 C from an int8 ``.tflite`` model: ``<prefix>_model.c`` / ``.h`` as text.

The graph (read with :mod:`edgekit.formats.tflite_graph`) is lowered to steps
(:mod:`~edgekit.exporters.c.int8_lower`); every intermediate tensor gets an offset in one
static arena planned from the steps' lifetimes (:mod:`edgekit.formats.arena`); the kernels
the steps call are pasted from ``kernels/ek_int8.c`` into ``kernels/model_int8.c.in``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.exporters.c.code import Code
from edgekit.exporters.c.header import c_header
from edgekit.exporters.c.int8_lower import lower
from edgekit.exporters.c.int8_steps import Lowering, Ref, Step
from edgekit.exporters.c.literals import c_array, c_float
from edgekit.exporters.c.templates import fill, read, select
from edgekit.formats.arena import Buffer, greedy_plan
from edgekit.formats.tflite_graph import read_tflite

ROUNDINGS = ("tflm", "litert")  # --c-rounding: whose int8 kernels the C reproduces
_REQUANT = {"tflm": "mbqm", "litert": "requant"}  # the ek_int8.c section FC requantizes with
_REPRODUCES = {
    "tflm": "TensorFlow Lite Micro's reference int8 kernels",
    "litert": "LiteRT's builtin int8 kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES)",
}


def write_int8(
    path: Path,
    prefix: str,
    comment: str,
    *,
    raw_input_q: dict[str, Any] | None = None,
    rounding: str = "tflm",
    layers: dict[str, str] | None = None,
) -> Code:
    """The C of the int8 model at ``path`` (int8 input and output, one of each).

    ``rounding``: ``tflm`` reproduces TensorFlow Lite Micro's int8 kernels (FULLY_CONNECTED
    requantized with gemmlowp's ties-away rounding, its fixed-point SOFTMAX, TANH and
    LOGISTIC), ``litert`` LiteRT's builtin (ruy) kernels (ties rounded upward, float SOFTMAX).

    ``raw_input_q`` is the manifest's quantization of the raw features when it is not the
    file's own (the model's normalization folded into per-feature parameters): then
    ``<prefix>_predict`` quantizes raw features with it, ``q_i = round(x_i / s_i + z_i)``,
    while ``<prefix>_predict_int8`` keeps working on the tensor the ``.tflite`` takes.
    ``layers``: ``{Keras layer name: class}`` of the model the file came from, which a
    refusal names (:func:`~edgekit.exporters.c.int8_lower.lower`).
    """
    g = read_tflite(path)
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise EdgekitError(f"{path}: --c-source handles models with one input and one output")
    t_in, t_out = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    for t, what in ((t_in, "input"), (t_out, "output")):
        if t.dtype != "int8":
            raise EdgekitError(
                f"{path}: the model's {what} is {t.dtype}; --c-source int8 needs int8 input "
                "and output (export with --io-type int8, the default)"
            )
    if rounding not in ROUNDINGS:
        raise EdgekitError(f"unknown --c-rounding {rounding!r}; choose from {', '.join(ROUNDINGS)}")
    lw = lower(g, prefix, rounding, layers=layers)
    where, arena = _plan(lw)
    steps = lw.steps
    if steps and steps[-1].output != lw.find(g.outputs[0]):
        raise EdgekitError(f"{path}: the model's output is not computed by its last op")
    lines = []
    for step in steps:
        lines += [f"/* {step.what} */", _call(prefix, step, where)]
    quantize, data, kernel = _quantize_input(prefix, raw_input_q, t_in.size)
    wanted = {step.kernel for step in steps} | {kernel}
    requant = _REQUANT[rounding]
    if wanted & {"fc", "fc_offset"}:
        wanted.add(requant)
    macros = {
        "EK_FC_MAX_INPUTS": str(max(lw.fc_inputs, default=1)),
        "EK_REQUANT": f"{prefix}_{requant}",
    }
    kernels = [fill(s.text, prefix, macros=macros) for s in select("ek_int8.c", wanted)]
    slots = {
        "COMMENT": comment,
        "REPRODUCES": _REPRODUCES[rounding],
        "DATA": "".join(lw.data) + data,
        "QUANTIZE_INPUT": quantize,
        "ARENA_BYTES": str(max(arena, 1)),
        "HELPERS": "\n".join(kernels),
        "BODY": "\n    ".join(lines),
    }
    source = fill(read("model_int8.c.in"), prefix, slots=slots)
    input_q = {"scale": t_in.scale, "zero_point": t_in.zero_point}
    output_q = {"scale": t_out.scale, "zero_point": t_out.zero_point}
    n_in, n_out = t_in.size, t_out.size
    header = c_header(
        prefix,
        n_in=n_in,
        n_out=n_out,
        comment=comment,
        input_q=input_q,
        output_q=output_q,
        per_feature=raw_input_q is not None,
    )
    return Code(
        header,
        source,
        n_in,
        n_out,
        input_q=input_q,
        output_q=output_q,
        ops=[s.what.split(":")[0] for s in steps],
        arena_bytes=arena,
        rounding=rounding,
        tables=sorted(lw.tables),
    )


def _quantize_input(prefix: str, raw_q: dict[str, Any] | None, n_in: int) -> tuple[str, str, str]:
    """``predict``'s quantization of one input value, the constants it needs, its kernel."""
    if raw_q is None:  # the file's own parameters
        line = "q_in[i] = ek_quantize(input[i], EK_INPUT_SCALE, EK_INPUT_ZERO_POINT);"
        return fill(line, prefix), "", "quantize"
    scale, zero_point = raw_q["scale"], raw_q["zero_point"]
    if isinstance(scale, list):
        if len(scale) != n_in or len(zero_point) != n_in:
            raise EdgekitError(
                f"the input quantization has {len(scale)} features, the model takes {n_in}"
            )
        data = c_array("float", "ek_input_scale", scale, c_float) + c_array(
            "float", "ek_input_zero_point", zero_point, c_float
        )
        line = "q_in[i] = ek_quantize_feature(input[i], ek_input_scale[i], ek_input_zero_point[i]);"
    else:
        data = ""
        line = f"q_in[i] = ek_quantize_feature(input[i], {c_float(scale)}, {c_float(zero_point)});"
    return fill(line, prefix), fill(data, prefix), "quantize_feature"


def _plan(lw: Lowering) -> tuple[dict[int, str], int]:
    """Where each tensor lives (``input``, ``output``, ``arena + offset``) and the arena size."""
    g = lw.g
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for k, step in enumerate(lw.steps):
        first.setdefault(step.output, k)
        for i in step.inputs:
            last[i] = k
    ext = {lw.find(g.inputs[0]), lw.find(g.outputs[0])}
    buffers = {
        t: Buffer(t, g.tensors[t].size, k, max(last.get(t, k), k))
        for t, k in first.items()
        if t not in ext
    }
    arena = greedy_plan(list(buffers.values()))
    where = {t: f"arena + {b.offset}" for t, b in buffers.items()}
    where[lw.find(g.inputs[0])] = "input"
    where[lw.find(g.outputs[0])] = "output"
    return where, arena


def _call(prefix: str, step: Step, where: dict[int, str]) -> str:
    args = (where[a.tensor] if isinstance(a, Ref) else a for a in step.args)
    return f"{prefix}_{step.kernel}({', '.join(args)});"
