"""``--c-array``: a ``.tflite`` file as a 16-byte-aligned C array, for TensorFlow Lite Micro.

``model.int8.tflite`` -> ``model_int8_data.h`` / ``model_int8_data.c`` (from the templates
``c/kernels/tflite_array.h.in`` and ``.c.in``). A comment block lists the builtin ops the
model uses and the ``MicroMutableOpResolver<N>`` registration lines, and
``#define <IDENT>_TENSOR_ARENA_SIZE`` gives the arena to allocate: the smallest that
TensorFlow Lite Micro accepts for the model, measured with the ``tflite-micro`` interpreter
(bisection, each probe a child process that creates the interpreter and runs one
inference), or, without tflite-micro, an estimate the header says was not measured.
"""

from __future__ import annotations

import re
from pathlib import Path

from edgekit.fileio import atomic_write_text

# TFLite builtin op -> TFLM MicroMutableOpResolver method, where CamelCase is not enough.
_RESOLVER_NAMES = {
    "CONV_2D": "AddConv2D",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "MAX_POOL_2D": "AddMaxPool2D",
    "L2_NORMALIZATION": "AddL2Normalization",
    "RELU6": "AddRelu6",
    "RELU_N1_TO_1": "AddReluN1To1",
}


def resolver_method(op: str) -> str:
    if op in _RESOLVER_NAMES:
        return _RESOLVER_NAMES[op]
    return "Add" + "".join(part.capitalize() for part in op.lower().split("_"))


def c_identifier(tflite_path: Path) -> str:
    """``model.int8.tflite`` -> ``model_int8_data``."""
    stem = (
        tflite_path.name[: -len(".tflite")]
        if tflite_path.name.endswith(".tflite")
        else tflite_path.stem
    )
    ident = re.sub(r"\W", "_", stem)
    if ident[:1].isdigit():
        ident = "m_" + ident
    return f"{ident}_data"


def op_comment(ops: list[str]) -> str:
    distinct = list(dict.fromkeys(op for op in ops if op != "DELEGATE"))
    lines = [
        " * Builtin ops used: " + ", ".join(distinct),
        " *",
        " * TensorFlow Lite Micro registration:",
        f" *   static tflite::MicroMutableOpResolver<{len(distinct)}> resolver;",
    ]
    lines += [f" *   resolver.{resolver_method(op)}();" for op in distinct]
    return "\n".join(lines)


def arena_define(tflite_path: Path, ident: str) -> str:
    """``#define <IDENT>_TENSOR_ARENA_SIZE <bytes>`` with a comment on where it comes from."""
    from edgekit.exporters.c import tflm

    name = f"{ident.upper()}_TENSOR_ARENA_SIZE"
    estimate = estimate_arena(tflite_path)
    measured = tflm.smallest_arena(tflite_path, start=2 * estimate) if tflm.available() else None
    if measured is not None:
        note = (
            "/* The smallest tensor arena TensorFlow Lite Micro accepts for this model, "
            "measured with\n * the tflite-micro interpreter on the host (a multiple of 16 "
            "bytes; a 32-bit target may\n * need a little less). */"
        )
        return f"{note}\n#define {name} {measured}\n"
    why = tflm.NOT_INSTALLED if not tflm.available() else "tflite-micro could not run the model"
    note = (
        f"/* NOT MEASURED ({why}): an estimate of the tensor arena, every\n"
        " * non-constant tensor plus TFLM's bookkeeping; check it with AllocateTensors(). */"
    )
    return f"{note}\n#define {name} {estimate}\n"


def estimate_arena(tflite_path: Path) -> int:
    """A generous estimate of TFLM's arena: every non-constant tensor's bytes (no sharing),
    plus 2 KiB and 64 bytes per tensor and 128 per op of TFLM's bookkeeping, rounded to 16."""
    from edgekit.formats.tflite_graph import read_tflite

    g = read_tflite(tflite_path)
    tensors = sum(t.nbytes for t in g.tensors if not t.is_constant)
    total = tensors + 2048 + 64 * len(g.tensors) + 128 * len(g.ops)
    return (total + 15) // 16 * 16


def write_c_array(tflite_path: str | Path, *, ops: list[str]) -> tuple[Path, Path]:
    """Write ``<ident>.h``/``<ident>.c`` beside ``tflite_path``; returns their paths."""
    from edgekit.exporters.c.templates import fill, read

    tflite_path = Path(tflite_path)
    data = tflite_path.read_bytes()
    ident = c_identifier(tflite_path)
    rows = (
        "  " + ", ".join(f"0x{b:02x}" for b in data[i : i + 12]) + ","
        for i in range(0, len(data), 12)
    )
    slots = {
        "FILE": tflite_path.name,
        "BYTES": str(len(data)),
        "IDENT": ident,
        "GUARD": ident.upper() + "_H_",
        "OPS": op_comment(ops),
        "ROWS": "\n".join(rows),
        "ARENA": arena_define(tflite_path, ident),
    }
    h_path = tflite_path.with_name(f"{ident}.h")
    c_path = tflite_path.with_name(f"{ident}.c")
    header_slots = {k: v for k, v in slots.items() if k != "ROWS"}
    source_slots = {k: v for k, v in slots.items() if k not in ("OPS", "GUARD", "ARENA")}
    atomic_write_text(h_path, fill(read("tflite_array.h.in"), slots=header_slots))
    atomic_write_text(c_path, fill(read("tflite_array.c.in"), slots=source_slots))
    return h_path, c_path
