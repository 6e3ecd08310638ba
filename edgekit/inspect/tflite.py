"""Inspect a ``.tflite`` flatbuffer with the LiteRT interpreter (no TensorFlow).

The interpreter is built without delegates and tensors are never allocated, so the graph is
read as written and nothing runs.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._lazy import require
from edgekit.errors import EdgekitError
from edgekit.formats.layers import LayerInfo
from edgekit.formats.manifest import beside, input_quantization
from edgekit.formats.tflite_graph import CorruptFlatbuffer, check_tflite
from edgekit.runtime.tflite import tensor_info

DENSE_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL")


def _dtype(detail: dict[str, Any]) -> str:
    return np.dtype(detail["dtype"]).name


def inspect_tflite(path: Path) -> dict[str, Any]:
    # an unreadable file is left to the runtime, which refuses it in its own words
    with contextlib.suppress(CorruptFlatbuffer):
        check_tflite(path)  # declared sizes against the file, before LiteRT reads it
    mod = require("ai_edge_litert.interpreter")
    try:
        interp = mod.Interpreter(
            model_path=str(path),
            experimental_op_resolver_type=mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        ops = interp._get_ops_details()
        tensors = {t["index"]: t for t in interp.get_tensor_details()}
        ins, outs = interp.get_input_details(), interp.get_output_details()
    except (ValueError, RuntimeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise EdgekitError(f"{path}: cannot read the TFLite model ({first})") from err
    producer = {o: op for op in ops for o in op["outputs"]}

    def source(index: int) -> dict[str, Any]:
        """The constant behind a tensor, looking through DEQUANTIZE (float16 weights)."""
        op = producer.get(index)
        if op is not None and op["op_name"] == "DEQUANTIZE" and len(op["inputs"]):
            return tensors[int(op["inputs"][0])]
        return tensors[index]

    layers = []
    for op in ops:
        if op["op_name"] not in DENSE_OPS or len(op["inputs"]) < 2:
            continue
        inputs = [int(i) for i in op["inputs"]]
        weight = tensors.get(inputs[1])
        if (
            weight is None
            or len(weight["shape"]) < 2
            or (inputs[1] in producer and (producer[inputs[1]]["op_name"] != "DEQUANTIZE"))
        ):
            continue  # a product of two activations, not a layer
        shape = [int(d) for d in weight["shape"]]
        if op["op_name"] == "FULLY_CONNECTED":
            units, n_in = shape[0], math.prod(shape[1:])
        else:  # BATCH_MATMUL with a constant right-hand side [..., in, out]
            n_in, units = shape[-2], shape[-1]
        bias = 0
        if len(inputs) > 2 and inputs[2] >= 0 and inputs[2] in tensors:
            bias = math.prod(int(d) for d in tensors[inputs[2]]["shape"])
        layers.append(
            LayerInfo(
                op=op["op_name"],
                name=weight["name"],
                inputs=n_in,
                units=units,
                params=n_in * units + bias,
                macs=n_in * units,
                weights_dtype=_dtype(source(inputs[1])),
            )
        )
    model_inputs = [tensor_info(d).to_json() for d in ins]
    details: dict[str, Any] = {"tensors": len(tensors)}
    entry = beside(path)
    for position, folded in _manifest_quantization(entry, interp, ins).items():
        own = model_inputs[position]["quantization"]
        if own is None:
            continue
        if folded != own:
            key = "input quantization"
            if len(ins) > 1:
                key += f" of {model_inputs[position]['name']}"
            details[key] = (
                "from manifest.json (the model's normalization folded in); the file's own "
                f"(normalized features): {own}"
            )
        model_inputs[position]["quantization"] = folded
    return {
        "format": "tflite",
        "inputs": model_inputs,
        "outputs": [tensor_info(d).to_json() for d in outs],
        "ops": [op["op_name"] for op in ops],
        "layers": layers,
        "quantization": _scheme(layers, ops, tensors),
        "details": details,
    }


def _manifest_quantization(
    entry: dict[str, Any] | None, interp: Any, ins: list[dict[str, Any]]
) -> dict[int, dict[str, Any]]:
    """Position in ``ins`` -> the quantization the manifest records for that input. The
    manifest lists a model's several inputs by their signature names, in the model's order,
    which need not be the interpreter's."""
    if not entry:
        return {}
    if len(ins) == 1:
        folded = input_quantization(entry)
        return {0: folded} if folded is not None else {}
    signatures: dict[str, Any] = interp._get_full_signature_list() or {}
    first: dict[str, Any] = next(iter(signatures.values()), {})
    by_name: dict[str, int] = first.get("inputs", {})
    position = {int(d["index"]): i for i, d in enumerate(ins)}
    out: dict[int, dict[str, Any]] = {}
    for item in entry.get("inputs") or []:
        if not isinstance(item, dict) or not isinstance(item.get("quantization"), dict):
            continue
        index = by_name.get(str(item.get("name")))
        if index is not None and int(index) in position:
            out[position[int(index)]] = item["quantization"]
    return out


def _scheme(layers: list[LayerInfo], ops: list[dict], tensors: dict[int, dict]) -> str:
    weights = {layer.weights_dtype for layer in layers}
    acts = set()
    for op in ops:
        if op["op_name"] in DENSE_OPS and len(op["inputs"]):
            acts.add(_dtype(tensors[int(op["inputs"][0])]))
    if not weights:
        return "unknown (no dense layers)"
    if weights == {"float32"}:
        return "none (float32)"
    if weights == {"float16"}:
        return "float16 weights (computed in float32)"
    if acts <= {"float32"}:
        return "dynamic range: int8 weights, float activations"
    if acts == {"int16"}:
        return "int16x8: int8 weights, int16 activations"
    if acts <= {"int8", "uint8"}:
        return f"full integer: int8 weights and {'/'.join(sorted(acts))} activations"
    return f"mixed: weights {'/'.join(sorted(weights))}, activations {'/'.join(sorted(acts))}"
