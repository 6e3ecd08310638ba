"""Give an integer-input ``.tflite`` float inputs that take raw features.

The converter can build a full-integer model only with one scale for each input tensor. For
variants whose inputs are float (int16x8, int8 with ``--io-type float``), edgekit converts the
core model with integer inputs and then prepends, in the flatbuffer itself, for each input::

    features (float32, raw) -> MUL(scale) -> ADD(offset) -> QUANTIZE -> the integer input

so the normalization runs in float per feature ahead of the quantize step (see
:mod:`edgekit.exporters.preprocess`); an input without a normalization of its own (one of a
model's several) gets the QUANTIZE alone. The ops are builtin (MUL, ADD, QUANTIZE), so TFLite
Micro and every delegate run them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit._lazy import require
from edgekit.errors import EdgekitError
from edgekit.exporters.preprocess import InputAffines


def _input_tensors(model, names: list[str] | None) -> list[int]:
    """The tensor index of each model input, in the model's order: by the serving
    signature's names (``names``, the Keras input names) when the model has several."""
    graph = model.subgraphs[0]
    inputs = [int(i) for i in graph.inputs]
    if len(inputs) == 1 and (names is None or len(names) == 1):
        return inputs
    by_name = {
        (item.name.decode() if isinstance(item.name, bytes) else str(item.name)): item.tensorIndex
        for signature_def in (model.signatureDefs or [])[:1]
        for item in (signature_def.inputs or [])
    }
    if names is None or any(n not in by_name for n in names) or len(names) != len(inputs):
        raise EdgekitError(
            "the .tflite signature does not name the model's inputs "
            f"({', '.join(names or [])}); it has {', '.join(by_name) or 'none'}"
        )
    return [int(by_name[n]) for n in names]


def input_quantizations(flatbuffer: bytes, names: list[str] | None) -> list[dict[str, Any] | None]:
    """Each model input's own quantization (``{"scale", "zero_point"}``), in the model's
    order; None for a float input. Read from the flatbuffer alone: no interpreter."""
    schema = require("ai_edge_litert.schema_py_generated")
    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    tensors = model.subgraphs[0].tensors
    out: list[dict[str, Any] | None] = []
    for index in _input_tensors(model, names):
        q = tensors[index].quantization
        integer = tensors[index].type in (
            schema.TensorType.INT8, schema.TensorType.UINT8, schema.TensorType.INT16,
        )  # fmt: skip
        if not integer or q is None or q.scale is None or len(q.scale) != 1:
            out.append(None)
            continue
        out.append({"scale": float(q.scale[0]), "zero_point": int(q.zeroPoint[0])})
    return out


def prepend_float_input(
    flatbuffer: bytes, affines: InputAffines, *, names: list[str] | None = None
) -> bytes:
    """``flatbuffer`` (integer inputs) with a float input ahead of each integer input, which
    takes the old input's name (the integer tensor becomes ``<name>/quantized``): normalized
    with the input's affine map where it has one, quantized in any case. ``names``: the
    model's input names, in the order of ``affines``, when it has several."""
    schema = require("ai_edge_litert.schema_py_generated")
    flatbuffers = require("flatbuffers")
    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    graph = model.subgraphs[0]
    integer_types = (schema.TensorType.INT8, schema.TensorType.UINT8, schema.TensorType.INT16)

    def opcode(op: int) -> int:
        for i, code in enumerate(model.operatorCodes):
            if max(code.builtinCode, code.deprecatedBuiltinCode) == op:
                return i
        code = schema.OperatorCodeT()
        code.builtinCode, code.deprecatedBuiltinCode, code.version = op, min(op, 127), 1
        model.operatorCodes.append(code)
        return len(model.operatorCodes) - 1

    def tensor(like: int, suffix: str, data: np.ndarray | None = None) -> int:
        t = schema.TensorT()
        t.name = bytes(graph.tensors[like].name) + suffix.encode()
        t.type = schema.TensorType.FLOAT32
        if data is None:  # an activation, shaped like the input
            t.shape = np.asarray(graph.tensors[like].shape, np.int32)
            t.shapeSignature, t.buffer = graph.tensors[like].shapeSignature, 0
        else:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data, np.float32).tobytes(), np.uint8)
            model.buffers.append(buffer)
            t.shape, t.buffer = np.asarray(data.shape, np.int32), len(model.buffers) - 1
        graph.tensors.append(t)
        return len(graph.tensors) - 1

    def operator(op: int, ins: list[int], outs: list[int], kind: int, options) -> object:
        o = schema.OperatorT()
        o.opcodeIndex = opcode(op)
        o.inputs, o.outputs = np.asarray(ins, np.int32), np.asarray(outs, np.int32)
        o.builtinOptionsType, o.builtinOptions = kind, options
        return o

    ops, kinds = schema.BuiltinOperator, schema.BuiltinOptions
    ahead: list[object] = []
    replaced: dict[int, int] = {}  # old (integer) input -> its new float input
    for old, affine in zip(_input_tensors(model, names), affines, strict=True):
        if graph.tensors[old].type not in integer_types:
            continue  # a float input, or integer data (token ids) the model takes as is
        name = bytes(graph.tensors[old].name)
        x = tensor(old, "")
        graph.tensors[old].name = name + b"/quantized"
        quantized = x
        if affine is not None:
            scale = tensor(old, "/scale", affine.scale)
            offset = tensor(old, "/offset", affine.offset)
            scaled, quantized = tensor(old, "/scaled"), tensor(old, "/normalized")
            ahead += [
                operator(ops.MUL, [x, scale], [scaled], kinds.MulOptions, schema.MulOptionsT()),
                operator(
                    ops.ADD, [scaled, offset], [quantized], kinds.AddOptions, schema.AddOptionsT()
                ),
            ]
        ahead.append(
            operator(
                ops.QUANTIZE, [quantized], [old], kinds.QuantizeOptions, schema.QuantizeOptionsT()
            )
        )
        replaced[old] = x
    graph.operators = [*ahead, *graph.operators]
    graph.inputs = np.asarray([replaced.get(int(i), int(i)) for i in graph.inputs], np.int32)
    for signature_def in model.signatureDefs or []:  # the serving signature names the inputs
        for item in signature_def.inputs or []:
            item.tensorIndex = replaced.get(int(item.tensorIndex), item.tensorIndex)
    builder = flatbuffers.Builder(len(flatbuffer) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
