"""Every intermediate tensor of a ``.tflite``, kept by LiteRT's ``preserve_all_tensors``.

The interpreter runs without its default delegate (XNNPACK would fuse ops and hide their
outputs), one sample at a time (batch 1, as a device runs it), as TFLite's own
QuantizationDebugger does.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from edgekit._lazy import require
from edgekit.diagnose.graph import Capture, Tensor, stack
from edgekit.errors import EdgekitError


def _quantization(detail: dict) -> tuple[float | None, int | None]:
    params = detail.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", []), np.float64)
    zero_points = np.asarray(params.get("zero_points", []), np.int64)
    if scales.size != 1 or not scales[0] > 0:  # float, or per-axis (weights only)
        return None, None
    return float(scales[0]), int(zero_points[0]) if zero_points.size else 0


def capture_tflite(path: str | Path, feed: np.ndarray) -> Capture:
    """Run ``path`` on each row of ``feed`` (already in the input's dtype) and keep every
    activation tensor."""
    interpreter_mod = require("ai_edge_litert.interpreter")
    with warnings.catch_warnings():  # "preserve_all_tensors is for debugging": it is
        warnings.simplefilter("ignore")
        try:
            interpreter = interpreter_mod.Interpreter(
                model_path=str(path),
                experimental_op_resolver_type=(
                    interpreter_mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
                ),
                experimental_preserve_all_tensors=True,
            )
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise EdgekitError(f"{path}: cannot load the TFLite model ({err})") from err
    details = {int(d["index"]): d for d in interpreter.get_tensor_details()}
    first = int(interpreter.get_input_details()[0]["index"])
    last = int(interpreter.get_output_details()[0]["index"])
    order: list[tuple[int, str, list[int]]] = [(first, "", [])]
    activations = {first}
    for op in interpreter._get_ops_details():
        reads = [int(i) for i in op["inputs"] if int(i) in activations]
        if not reads:
            continue
        for index in (int(i) for i in op["outputs"]):
            activations.add(index)
            order.append((index, str(op["op_name"]), reads))
    rows: dict[int, list[np.ndarray]] = {index: [] for index, _, _ in order}
    for sample in feed:
        interpreter.set_tensor(first, np.ascontiguousarray(sample[None]))
        interpreter.invoke()
        for index, values in rows.items():
            values.append(interpreter.get_tensor(index).copy())
    tensors = []
    for index, op, reads in order:
        scale, zero_point = _quantization(details[index])
        tensors.append(
            Tensor(
                name=str(details[index]["name"]),
                op=op,
                inputs=[str(details[i]["name"]) for i in reads],
                values=stack(rows[index]),
                scale=scale,
                zero_point=zero_point,
                is_input=index == first,
                is_output=index == last,
            )
        )
    constants = {
        str(d["name"]): np.dtype(d["dtype"]).name
        for index, d in details.items()
        if index not in activations
    }
    return Capture(tensors, constants)
