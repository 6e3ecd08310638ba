"""The int8 reference the C code is checked against: a ``.tflite`` model run in ai_edge_litert.

One runner for the generator: validation compares the C outputs with it, and the int8 writer
fills its 256-entry tables by running part of the graph through it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit._lazy import require

# which kernels: name -> ai_edge_litert OpResolverType (None: the interpreter's default)
KERNELS = {
    "builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES",
    "reference": "BUILTIN_REF",
    "default": None,
}


def tflite_int8_outputs(
    model: Path | bytes, q: np.ndarray, *, kernels: str = "builtin"
) -> np.ndarray:
    """The int8 outputs of ``model`` (a path or flatbuffer bytes) on int8 inputs ``q``.

    ``kernels``: ``builtin`` (the optimized builtin kernels, no delegate: what the C code
    reproduces), ``reference`` (LiteRT's reference kernels, which requantize in double
    precision) or ``default`` (the interpreter's default, which applies XNNPACK where it can).
    One row per sample of ``q``.
    """
    mod = require("ai_edge_litert.interpreter")
    resolver = KERNELS[kernels]
    kw: dict[str, Any] = {}
    if resolver is not None:
        kw["experimental_op_resolver_type"] = getattr(mod.OpResolverType, resolver)
    if isinstance(model, bytes):
        kw["model_content"] = model
    else:
        kw["model_path"] = str(model)
    interp = mod.Interpreter(**kw)
    detail = interp.get_input_details()[0]
    q = np.ascontiguousarray(q, np.int8).reshape(len(q), *detail["shape"][1:])
    signature = detail.get("shape_signature")
    fixed = int(signature[0]) if signature is not None and len(signature) else -1
    out_index = interp.get_output_details()[0]["index"]
    if fixed <= 0:  # a dynamic batch: all samples in one call
        interp.resize_tensor_input(detail["index"], list(q.shape), strict=False)
        interp.allocate_tensors()
        interp.set_tensor(detail["index"], q)
        interp.invoke()
        return np.asarray(interp.get_tensor(out_index)).reshape(len(q), -1)
    # a fixed batch (export --mcu: 1): that many samples per call, the last chunk padded
    interp.allocate_tensors()
    rows = []
    for start in range(0, len(q), fixed):
        chunk = q[start : start + fixed]
        if len(chunk) < fixed:
            chunk = np.concatenate([chunk, np.zeros((fixed - len(chunk), *q.shape[1:]), np.int8)])
        interp.set_tensor(detail["index"], chunk)
        interp.invoke()
        rows.append(np.asarray(interp.get_tensor(out_index)).reshape(fixed, -1))
    if not rows:  # no samples
        width = int(np.prod(interp.get_output_details()[0]["shape"][1:]))
        return np.zeros((0, width), np.int8)
    return np.concatenate(rows)[: len(q)]
