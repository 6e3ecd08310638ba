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

import math
import os
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
        return math.prod(self.shape)  # Python ints: a shape's size never wraps around

    @property
    def nbytes(self) -> int:
        return math.ceil(self.size * self.itemsize)

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
    check_tflite(path)  # what the file declares, bounded, before anything is unpacked
    data = path.read_bytes()
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
    decoded: dict[tuple[int, str, tuple[int, ...]], np.ndarray] = {}  # one copy per buffer
    tensors = [_tensor(i, t, buffers, data, decoded) for i, t in enumerate(sub.tensors or [])]
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


def _tensor(index: int, t, buffers, data: bytes, decoded: dict) -> Tensor:
    dtype, itemsize = _TYPES.get(int(t.type), (f"type{t.type}", 1))
    shape = [int(d) for d in (t.shape if t.shape is not None else [])]
    signature = [int(d) for d in (t.shapeSignature if t.shapeSignature is not None else [])]
    dynamic = bool(signature) and signature[0] == -1
    shape = [1 if d < 0 else d for d in shape]
    content = None
    buf = buffers[t.buffer] if 0 < t.buffer < len(buffers) else None
    key = (int(t.buffer), dtype, tuple(shape))
    if key in decoded:
        content = decoded[key]
    elif buf is not None:
        raw: Any = None
        if buf.data is not None and len(buf.data):
            raw = np.ascontiguousarray(buf.data, dtype=np.uint8)  # a view of the file's bytes
        elif buf.offset and buf.offset > 1:  # large models keep buffers after the flatbuffer
            raw = memoryview(data)[buf.offset : buf.offset + buf.size]
        if raw is not None:
            content = decoded[key] = _decode(raw, dtype, shape)
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


def _decode(raw, dtype: str, shape: list[int]) -> np.ndarray:
    try:
        arr = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
    except (TypeError, ValueError):  # int4, string, a size that is no multiple: keep bytes
        return np.frombuffer(raw, dtype=np.uint8).copy()
    if shape and arr.size == math.prod(shape):
        arr = arr.reshape(shape)
    return arr.astype(arr.dtype.newbyteorder("="))  # a copy: the file's bytes are let go


# --- structural checks: what the flatbuffer declares, against the file ----------------------

MAX_TENSORS = 100_000  # in all subgraphs together
MAX_OPERATORS = 100_000
MAX_BUFFERS = 100_000
MAX_SUBGRAPHS = 1_000
MAX_RANK = 16
MEMORY_FLOOR_BYTES = 256 << 20
MEMORY_PER_FILE_BYTE = 64
_UNCHECKED_TYPES = ("string", "resource", "variant")


class CorruptFlatbuffer(EdgekitError):
    """The flatbuffer itself cannot be read (LiteRT's verifier refuses such files too, with
    its own message, which the runner and ``inspect`` keep)."""


def memory_limit(file_bytes: int) -> int:
    """The most bytes of tensors a model of ``file_bytes`` may declare (see :func:`check_tflite`)."""
    return max(MEMORY_FLOOR_BYTES, MEMORY_PER_FILE_BYTE * file_bytes)


def check_tflite(path: str | Path) -> None:
    """Check what a ``.tflite`` declares against the file, before anything allocates it.

    Refused, each in one line: vectors (tensors, operators, buffers, subgraphs) longer than
    the file could hold or absurdly long; buffers whose data or offset/size lie outside the
    file; tensors that name a buffer the model lacks; constant tensors whose shape does not
    match their data (LiteRT refuses those too); shapes whose size overflows 64 bits; a
    tensor or the activations alive at once needing more than :func:`memory_limit` bytes
    (256 MiB, or 64x the file's size when that is larger). The file is memory-mapped and
    only the flatbuffer's tables are read, so a large model costs no copy.
    """
    _checked(Path(path), batch=1)


def _checked(path: Path, *, batch: int) -> int:
    """:func:`check_tflite`'s checks at ``batch``; returns the activations' peak bytes."""
    import mmap

    if not path.is_file():
        raise EdgekitError(f"{path}: no such file")
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < 8:
            raise EdgekitError(f"{path}: not a TensorFlow Lite flatbuffer")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if data[4:8] != b"TFL3":
                raise EdgekitError(f"{path}: not a TensorFlow Lite flatbuffer")
            try:
                return _check_model(path, data, size, _schema(), batch)
            except EdgekitError:
                raise
            except Exception as err:  # offsets that point anywhere: struct/index errors
                raise CorruptFlatbuffer(
                    f"{path}: not a valid TensorFlow Lite model (truncated or corrupt flatbuffer)"
                ) from err


def _bad(path: Path, what: str) -> EdgekitError:
    return EdgekitError(f"{path}: not a valid TensorFlow Lite model ({what})")


def _length(path: Path, n: int, size: int, cap: int, what: str) -> int:
    if n < 0 or 4 * n > size:
        raise _bad(path, f"it declares {n:,} {what}, more than the file could hold")
    if n > cap:
        raise EdgekitError(
            f"{path}: refused: it declares {n:,} {what} (edgekit reads at most {cap:,})"
        )
    return n


def _vector_end(table, slot: int) -> int:
    """Where a table's vector field ends in the buffer (0 when the field is absent)."""
    tab = table._tab
    o = tab.Offset(slot)
    if not o:
        return 0
    start = tab.Vector(o)
    return start + tab.VectorLen(o)


def _check_model(path: Path, data, size: int, schema, batch: int = 1) -> int:
    """The checks of :func:`check_tflite`; returns the most bytes of activations any subgraph
    has alive at once at a batch of ``batch`` (tensors with a dynamic dimension grow with it)."""
    model = schema.Model.GetRootAs(data, 0)
    limit = memory_limit(size)
    batch_peak = 0
    n_buf = _length(path, model.BuffersLength(), size, MAX_BUFFERS, "buffers")
    held: list[int] = []  # bytes of data each buffer holds (0: none)
    for i in range(n_buf):
        b = model.Buffers(i)
        n = b.DataLength()
        if n:
            if _vector_end(b, 4) > size:
                raise _bad(path, f"buffer {i}'s data runs past the end of the file")
            held.append(n)
        elif b.Offset() > 1:
            if b.Offset() + b.Size() > size:
                raise _bad(
                    path,
                    f"buffer {i} lies at bytes {b.Offset():,}..{b.Offset() + b.Size():,}, "
                    f"outside the file of {size:,}",
                )
            held.append(b.Size())
        else:
            held.append(0)
    n_sub = _length(path, model.SubgraphsLength(), size, MAX_SUBGRAPHS, "subgraphs")
    if not n_sub:
        raise EdgekitError(f"{path}: the TensorFlow Lite model has no subgraph")
    n_codes = _length(path, model.OperatorCodesLength(), size, MAX_OPERATORS, "operator codes")
    names = _op_names(schema)
    codes = []
    for c in range(n_codes):
        code = model.OperatorCodes(c)
        builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
        codes.append("CUSTOM" if builtin == 32 else names.get(builtin, f"OP_{builtin}"))
    tensors_seen = ops_seen = 0
    for s in range(n_sub):
        sub = model.Subgraphs(s)
        n_t = _length(path, sub.TensorsLength(), size, MAX_TENSORS, "tensors")
        n_ops = _length(path, sub.OperatorsLength(), size, MAX_OPERATORS, "operators")
        tensors_seen, ops_seen = tensors_seen + n_t, ops_seen + n_ops
        if tensors_seen > MAX_TENSORS or ops_seen > MAX_OPERATORS:
            raise EdgekitError(
                f"{path}: refused: it declares over {MAX_TENSORS:,} tensors or "
                f"{MAX_OPERATORS:,} operators (edgekit reads at most that)"
            )
        where = "" if s == 0 else f" of subgraph {s}"
        nbytes: list[int] = []
        dynamic: list[bool] = []  # a -1 in its shape signature: it grows with the batch
        constant: list[bool] = []
        for i in range(n_t):
            t = sub.Tensors(i)
            rank = _length(path, t.ShapeLength(), size, MAX_RANK, f"dimensions in tensor {i}")
            dims = [int(t.Shape(j)) for j in range(rank)]
            n_sig = min(t.ShapeSignatureLength(), MAX_RANK)
            dynamic.append(any(int(t.ShapeSignature(j)) < 0 for j in range(n_sig)))
            dtype, itemsize = _TYPES.get(int(t.Type()), (f"type{t.Type()}", 1))
            elements = math.prod(max(d, 1) if d < 0 else d for d in dims)
            need = math.ceil(elements * itemsize)
            name = tensor_label(t.Name(), i)
            if need >= 1 << 63:
                raise _bad(
                    path,
                    f"tensor {i}{where} ({name}) has shape {shape_text(dims)}, whose size "
                    "overflows 64 bits",
                )
            if need > limit:
                raise EdgekitError(
                    f"{path}: refused: tensor {i}{where} ({name}) declares {need:,} bytes "
                    f"({dtype} {shape_text(dims)}); edgekit allows {limit:,} for a file of "
                    f"{size:,} bytes"
                )
            buf = int(t.Buffer())
            if buf >= n_buf and buf != 0:
                raise _bad(
                    path, f"tensor {i}{where} ({name}) refers to buffer {buf}; there are {n_buf}"
                )
            has = held[buf] if 0 < buf < n_buf else 0
            if has and dtype not in _UNCHECKED_TYPES and t.Sparsity() is None:
                packed = dtype == "int4" and has == elements  # int4 written one per byte
                if has != need and not packed:
                    raise _bad(
                        path,
                        f"tensor {i}{where} ({name}) is {dtype} {shape_text(dims)}, "
                        f"{need:,} bytes, but its buffer holds {has:,}",
                    )
            nbytes.append(need)
            constant.append(bool(has))
        lifetimes: dict[int, list[int]] = {}
        for k in range(n_ops):
            op = sub.Operators(k)
            if not 0 <= op.OpcodeIndex() < n_codes:
                raise _bad(path, f"operator {k}{where} has opcode {op.OpcodeIndex()}")
            label = f"operator {k}{where} ({codes[op.OpcodeIndex()]})"
            ins = [int(v) for v in (op.InputsAsNumpy() if op.InputsLength() else [])]
            outs = [int(v) for v in (op.OutputsAsNumpy() if op.OutputsLength() else [])]
            for v, optional in [(v, True) for v in ins] + [(v, False) for v in outs]:
                if not (0 <= v < n_t or (optional and v == -1)):
                    raise _bad(path, f"{label} refers to tensor {v}; the graph has {n_t}")
                if v >= 0 and not constant[v]:
                    span = lifetimes.setdefault(v, [k, k])
                    span[0], span[1] = min(span[0], k), max(span[1], k)
        ends = n_ops - 1 if n_ops else 0
        for side, vec, length in (("inputs", sub.InputsAsNumpy, sub.InputsLength()),
                                  ("outputs", sub.OutputsAsNumpy, sub.OutputsLength())):  # fmt: skip
            for v in [int(x) for x in (vec() if length else [])]:
                if not 0 <= v < n_t:
                    raise _bad(
                        path,
                        f"the subgraph{where}'s {side} refers to tensor {v}; the graph has {n_t}",
                    )
                if not constant[v]:
                    span = lifetimes.setdefault(v, [0, ends])
                    span[0], span[1] = min(span[0], 0), max(span[1], 0)
        for v in range(n_t):  # a tensor no operator uses: taken as alive throughout
            if not constant[v] and v not in lifetimes:
                lifetimes[v] = [0, ends]
        peak = _peak(nbytes, lifetimes)
        if peak > limit:
            raise EdgekitError(
                f"{path}: refused: its activations{where} need {peak:,} bytes at once; "
                f"edgekit allows {limit:,} for a file of {size:,} bytes"
            )
        if batch != 1:
            scaled = [n * batch if d else n for n, d in zip(nbytes, dynamic, strict=True)]
            peak = _peak(scaled, lifetimes)
        batch_peak = max(batch_peak, peak)
    return batch_peak


def activation_bytes(path: str | Path, *, batch: int = 1) -> int:
    """The most bytes of activations alive at once when ``path`` runs ``batch`` samples per
    call: tensors whose shape signature has a dynamic (-1) dimension count ``batch`` times.
    The file is checked as :func:`check_tflite` checks it (refusals included)."""
    return _checked(Path(path), batch=batch)


def _peak(nbytes: list[int], lifetimes: dict[int, list[int]]) -> int:
    """The most bytes of tensors alive at one step (a sweep over the lifetimes)."""
    events: dict[int, int] = {}
    for v, (first, last) in lifetimes.items():
        events[first] = events.get(first, 0) + nbytes[v]
        events[last + 1] = events.get(last + 1, 0) - nbytes[v]
    peak = live = 0
    for step in sorted(events):
        live += events[step]
        peak = max(peak, live)
    return peak


def tensor_label(raw: Any, index: int) -> str:
    """A tensor's name for a message: quoted, cut at 40 characters, ``t<index>`` if none."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
    text = text or f"t{index}"
    return repr(text if len(text) <= 40 else text[:37] + "...")


def shape_text(dims: list[int]) -> str:
    """``[1, 8]`` for a message, cut at 80 characters."""
    text = "[" + ", ".join(map(str, dims)) + "]"
    return text if len(text) <= 80 else text[:77] + "...]"
