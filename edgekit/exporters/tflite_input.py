"""Give an integer-input ``.tflite`` a float input that takes raw features.

The converter can build a full-integer model only with one scale for its input tensor. For
variants whose input is float (int16x8, int8 with ``--io-type float``), edgekit converts the
core model with an integer input and then prepends, in the flatbuffer itself::

    features (float32, raw) -> MUL(scale) -> ADD(offset) -> QUANTIZE -> the integer input

so the normalization runs in float per feature ahead of the quantize step (see
:mod:`edgekit.exporters.preprocess`). The ops are builtin (MUL, ADD, QUANTIZE), so TFLite
Micro and every delegate run them.
"""

from __future__ import annotations

import numpy as np

from edgekit._lazy import require
from edgekit.exporters.preprocess import InputAffine


def prepend_float_input(flatbuffer: bytes, affine: InputAffine) -> bytes:
    """``flatbuffer`` (one integer input) with a float input ahead of it, which takes the
    old input's name (the integer tensor becomes ``<name>/quantized``)."""
    schema = require("ai_edge_litert.schema_py_generated")
    flatbuffers = require("flatbuffers")
    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    graph = model.subgraphs[0]
    old = int(graph.inputs[0])
    shape = np.asarray(graph.tensors[old].shape, np.int32)
    signature = graph.tensors[old].shapeSignature
    name = bytes(graph.tensors[old].name).decode()
    graph.tensors[old].name = (name + "/quantized").encode()

    def opcode(op: int) -> int:
        for i, code in enumerate(model.operatorCodes):
            if max(code.builtinCode, code.deprecatedBuiltinCode) == op:
                return i
        code = schema.OperatorCodeT()
        code.builtinCode, code.deprecatedBuiltinCode, code.version = op, min(op, 127), 1
        model.operatorCodes.append(code)
        return len(model.operatorCodes) - 1

    def tensor(suffix: str, data: np.ndarray | None = None) -> int:
        t = schema.TensorT()
        t.name = (name + suffix).encode()
        t.type = schema.TensorType.FLOAT32
        if data is None:  # an activation, shaped like the input
            t.shape, t.shapeSignature, t.buffer = shape, signature, 0
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
    x = tensor("")
    scale, offset = tensor("/scale", affine.scale), tensor("/offset", affine.offset)
    scaled, normalized = tensor("/scaled"), tensor("/normalized")
    graph.operators = [
        operator(ops.MUL, [x, scale], [scaled], kinds.MulOptions, schema.MulOptionsT()),
        operator(ops.ADD, [scaled, offset], [normalized], kinds.AddOptions, schema.AddOptionsT()),
        operator(
            ops.QUANTIZE, [normalized], [old], kinds.QuantizeOptions, schema.QuantizeOptionsT()
        ),
        *graph.operators,
    ]
    graph.inputs = np.asarray([x], np.int32)
    for signature_def in model.signatureDefs or []:  # the serving signature names the input
        for item in signature_def.inputs or []:
            if item.tensorIndex == old:
                item.tensorIndex = x
    builder = flatbuffers.Builder(len(flatbuffer) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
