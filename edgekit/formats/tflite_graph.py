"""Read a ``.tflite`` flatbuffer into plain Python objects, without TensorFlow.

The flatbuffer schema ships with ``ai_edge_litert`` (``schema_py_generated``, built on the
``flatbuffers`` package it depends on), so this works in the core install. The graph is read
as written: tensors (shape, dtype, quantization, constant data), operators in execution order
with their builtin options, and the subgraph's inputs and outputs. Nothing runs.

>>> g = read_tflite("model.int8.tflite")                          # doctest: +SKIP
>>> [op.name for op in g.ops]                                      # doctest: +SKIP
['RESHAPE', 'FULLY_CONNECTED', 'FULLY_CONNECTED', 'SOFTMAX']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._lazy import require
from edgekit.errors import EdgekitError

# TensorType -> (numpy dtype name, bytes per element); sub-byte types count as packed.
_TYPES: dict[int, tuple[str, float]] = {
    0: ("float32", 4),
    1: ("float16", 2),
    2: ("int32", 4),
    3: ("uint8", 1),
    4: ("int64", 8),
    5: ("string", 1),
    6: ("bool", 1),
    7: ("int16", 2),
    8: ("complex64", 8),
    9: ("int8", 1),
    10: ("float64", 8),
    11: ("complex128", 16),
    12: ("uint64", 8),
    15: ("uint32", 4),
    16: ("uint16", 2),
    17: ("int4", 0.5),
    18: ("bfloat16", 2),
}
_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


@dataclass
class Tensor:
    """One tensor of the graph. ``shape`` has the batch dimension at 1."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    itemsize: float
    data: np.ndarray | None = None  # constant contents, shaped; None for activations
    scales: np.ndarray | None = None
    zero_points: np.ndarray | None = None
    quantized_dimension: int = 0
    dynamic_batch: bool = False

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return int(np.ceil(self.size * self.itemsize))

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def scale(self) -> float:
        """The (first) quantization scale; 0.0 for float tensors."""
        return float(self.scales[0]) if self.scales is not None and len(self.scales) else 0.0

    @property
    def zero_point(self) -> int:
        zps = self.zero_points
        return int(zps[0]) if zps is not None and len(zps) else 0


@dataclass
class Op:
    """One operator: builtin name, tensor indices (-1: optional input left out), options."""

    index: int
    name: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TFLiteGraph:
    """The main subgraph of a ``.tflite`` file."""

    path: Path
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    bytes: int

    def consumers(self, tensor: int) -> list[Op]:
        return [op for op in self.ops if tensor in op.inputs]

    def producer(self, tensor: int) -> Op | None:
        return next((op for op in self.ops if tensor in op.outputs), None)


def _schema():
    return require("ai_edge_litert.schema_py_generated")


def _op_names(schema) -> dict[int, str]:
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def _options(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    out: dict[str, Any] = {}
    for key, value in vars(obj).items():
        snake = "".join("_" + c.lower() if c.isupper() else c for c in key)
        if snake == "fused_activation_function":
            value = _ACTIVATIONS.get(int(value), str(value))
        out[snake] = value
    return out


def read_tflite(path: str | Path) -> TFLiteGraph:
    """Parse ``path``; a missing or malformed file is a one-line :class:`EdgekitError`."""
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: no such file")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise EdgekitError(f"{path}: not a TensorFlow Lite flatbuffer")
    schema = _schema()
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
        graph = _convert(path, data, model, schema)
    except EdgekitError:
        raise
    except Exception as err:  # a truncated or corrupt flatbuffer fails anywhere inside
        raise EdgekitError(
            f"{path}: not a valid TensorFlow Lite model (truncated or corrupt flatbuffer)"
        ) from err
    return graph


def _convert(path: Path, data: bytes, model, schema) -> TFLiteGraph:
    if not model.subgraphs:
        raise EdgekitError(f"{path}: the TensorFlow Lite model has no subgraph")
    names = _op_names(schema)
    codes = []
    for code in model.operatorCodes or []:
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        codes.append("CUSTOM" if builtin == 32 else names.get(builtin, f"OP_{builtin}"))
    sub = model.subgraphs[0]
    buffers = model.buffers or []
    tensors = [_tensor(i, t, buffers, data) for i, t in enumerate(sub.tensors or [])]
    ops = []
    for i, op in enumerate(sub.operators or []):
        ops.append(
            Op(
                index=i,
                name=codes[op.opcodeIndex],
                inputs=[int(v) for v in (op.inputs if op.inputs is not None else [])],
                outputs=[int(v) for v in (op.outputs if op.outputs is not None else [])],
                options=_options(op.builtinOptions),
            )
        )
    graph = TFLiteGraph(
        path=path,
        tensors=tensors,
        ops=ops,
        inputs=[int(v) for v in (sub.inputs if sub.inputs is not None else [])],
        outputs=[int(v) for v in (sub.outputs if sub.outputs is not None else [])],
        bytes=len(data),
    )
    _check_indices(path, graph)
    return graph


def _check_indices(path: Path, g: TFLiteGraph) -> None:
    """Every tensor index in range (-1 only for an operator's optional inputs)."""
    n = len(g.tensors)
    refs = [("the subgraph's inputs", i, False) for i in g.inputs]
    refs += [("the subgraph's outputs", i, False) for i in g.outputs]
    for op in g.ops:
        refs += [(f"operator {op.index} ({op.name})", i, True) for i in op.inputs]
        refs += [(f"operator {op.index} ({op.name})", i, False) for i in op.outputs]
    for where, i, optional in refs:
        if not (0 <= i < n or (optional and i == -1)):
            raise EdgekitError(
                f"{path}: not a valid TensorFlow Lite model ({where} refers to tensor {i}; "
                f"the graph has {n})"
            )


def _tensor(index: int, t, buffers, data: bytes) -> Tensor:
    dtype, itemsize = _TYPES.get(int(t.type), (f"type{t.type}", 1))
    shape = [int(d) for d in (t.shape if t.shape is not None else [])]
    signature = [int(d) for d in (t.shapeSignature if t.shapeSignature is not None else [])]
    dynamic = bool(signature) and signature[0] == -1
    shape = [1 if d < 0 else d for d in shape]
    content = None
    buf = buffers[t.buffer] if 0 < t.buffer < len(buffers) else None
    if buf is not None:
        raw = None
        if buf.data is not None and len(buf.data):
            raw = np.asarray(buf.data, dtype=np.uint8).tobytes()
        elif buf.offset and buf.offset > 1:  # large models keep buffers after the flatbuffer
            raw = data[buf.offset : buf.offset + buf.size]
        if raw is not None:
            content = _decode(raw, dtype, shape)
    q = t.quantization
    scales = zps = None
    qdim = 0
    if q is not None and q.scale is not None and len(q.scale):
        scales = np.asarray(q.scale, dtype=np.float32)
        zps = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0], dtype=np.int64)
        qdim = int(q.quantizedDimension)
    return Tensor(
        index=index,
        name=(t.name.decode() if isinstance(t.name, bytes) else t.name) or f"t{index}",
        shape=tuple(shape),
        dtype=dtype,
        itemsize=itemsize,
        data=content,
        scales=scales,
        zero_points=zps,
        quantized_dimension=qdim,
        dynamic_batch=dynamic,
    )


def _decode(raw: bytes, dtype: str, shape: list[int]) -> np.ndarray:
    try:
        arr = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
    except TypeError:  # int4, string, ...: keep the bytes
        return np.frombuffer(raw, dtype=np.uint8)
    if shape and arr.size == int(np.prod(shape)):
        arr = arr.reshape(shape)
    return arr.astype(arr.dtype.newbyteorder("="))
