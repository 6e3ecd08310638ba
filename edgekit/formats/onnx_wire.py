"""Read an ONNX model's graph without the ``onnx`` package (not part of the core install).

ONNX files are protobuf ``ModelProto`` messages. This module decodes the few fields that
``edgekit inspect`` needs (opsets, graph inputs/outputs, nodes, initializer shapes) straight
from the protobuf wire format, skipping weight data without copying it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.errors import EdgekitError

# TensorProto.DataType -> numpy-style name
DATA_TYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    8: "string",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
    16: "bfloat16",
}


class _Malformed(ValueError):
    pass


class MalformedOnnx(EdgekitError):
    """The protobuf cannot be decoded as a model (onnxruntime refuses it too, in its own
    words, which its runner keeps)."""


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Malformed("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview):
    """Yield (field number, wire type, value) of one message: int or memoryview."""
    if not isinstance(buf, memoryview):  # a nested message sent as a number: corrupt
        raise _Malformed("a message field has the wrong wire type")
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | memoryview
        if number == 0:
            raise _Malformed("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise _Malformed("truncated field")
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        else:
            raise _Malformed(f"unsupported wire type {wire}")
        if pos > end:
            raise _Malformed("truncated message")
        yield number, wire, value


def _str(value) -> str:
    if not isinstance(value, memoryview):  # bytes(n) would allocate n zero bytes
        raise _Malformed("a string field has the wrong wire type")
    return bytes(value).decode("utf-8", errors="replace")


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _ints(wire: int, value) -> list[int]:
    if wire != 2:  # one varint (or fixed-width) value rather than a packed list
        return [_signed(value)]
    out, pos, buf = [], 0, value
    while pos < len(buf):
        v, pos = _varint(buf, pos)
        out.append(_signed(v))
    return out


# bytes per element of the types whose data edgekit checks against their dims
ITEMSIZES = {
    "float32": 4, "uint8": 1, "int8": 1, "uint16": 2, "int16": 2, "int32": 4, "int64": 8,
    "bool": 1, "float16": 2, "float64": 8, "uint32": 4, "uint64": 8, "bfloat16": 2,
}  # fmt: skip


@dataclass
class OnnxTensor:
    name: str
    dims: list[int]
    dtype: str
    stored: int | None = None  # bytes (raw_data) or elements (typed fields) held inline
    stored_unit: str = "bytes"  # "bytes" or "elements"
    external: dict[str, str] | None = None  # external_data's location/offset/length


@dataclass
class OnnxNode:
    op_type: str
    name: str
    domain: str
    inputs: list[str]
    outputs: list[str]
    ints: dict[str, int] = field(default_factory=dict)
    tensors: dict[str, OnnxTensor] = field(default_factory=dict)


@dataclass
class OnnxValue:
    name: str
    shape: list[int | str]
    dtype: str


@dataclass
class OnnxGraph:
    ir_version: int
    producer: str
    opsets: dict[str, int]
    inputs: list[OnnxValue]
    outputs: list[OnnxValue]
    nodes: list[OnnxNode]
    initializers: dict[str, OnnxTensor]


def _tensor(buf) -> OnnxTensor:
    name, dims, dtype = "", [], 0
    stored: int | None = None
    unit = "bytes"
    external: dict[str, str] = {}
    location = 0
    for number, wire, value in _fields(buf):
        if number == 1:
            dims += _ints(wire, value)
        elif number == 2:
            dtype = value
        elif number == 8:
            name = _str(value)
        elif number == 9 and isinstance(value, memoryview):
            stored, unit = len(value), "bytes"
        elif number in (4, 5, 7, 10, 11):  # float/int32/int64/double/uint64 data
            unit = "elements"
            if wire == 2 and isinstance(value, memoryview):
                n = (
                    len(value) // 4
                    if number == 4
                    else len(value) // 8
                    if number == 10
                    else (sum(1 for b in value if b < 0x80))
                )
            else:
                n = 1
            stored = (stored or 0) + n
        elif number == 13:  # StringStringEntryProto: 1 key, 2 value
            key = val = ""
            for n2, _, v2 in _fields(value):
                if n2 == 1:
                    key = _str(v2)
                elif n2 == 2:
                    val = _str(v2)
            external[key] = val
        elif number == 14 and wire == 0:
            location = value
    return OnnxTensor(
        name=name,
        dims=dims,
        dtype=DATA_TYPES.get(dtype, f"type{dtype}"),
        stored=stored,
        stored_unit=unit,
        external=external if location == 1 or external else None,
    )


def _node(buf) -> OnnxNode:
    node = OnnxNode(op_type="", name="", domain="", inputs=[], outputs=[])
    for number, _, value in _fields(buf):
        if number == 1:
            node.inputs.append(_str(value))
        elif number == 2:
            node.outputs.append(_str(value))
        elif number == 3:
            node.name = _str(value)
        elif number == 4:
            node.op_type = _str(value)
        elif number == 7:
            node.domain = _str(value)
        elif number == 5:  # AttributeProto: 1 name, 3 i, 5 t
            attr_name, ival, tensor = "", None, None
            for n2, w2, v2 in _fields(value):
                if n2 == 1:
                    attr_name = _str(v2)
                elif n2 == 3 and w2 == 0:
                    ival = _signed(v2)
                elif n2 == 5 and w2 == 2:
                    tensor = _tensor(v2)
            if ival is not None:
                node.ints[attr_name] = ival
            if tensor is not None:
                node.tensors[attr_name] = tensor
    return node


def _value_info(buf) -> OnnxValue:
    name, shape, dtype = "", [], ""
    for number, _, value in _fields(buf):
        if number == 1:
            name = _str(value)
        elif number == 2:  # TypeProto: 1 tensor_type
            for n2, _, v2 in _fields(value):
                if n2 != 1:
                    continue
                for n3, _, v3 in _fields(v2):  # Tensor: 1 elem_type, 2 shape
                    if n3 == 1:
                        dtype = DATA_TYPES.get(v3, f"type{v3}")
                    elif n3 == 2:
                        for n4, _, v4 in _fields(v3):  # dim: 1 dim_value, 2 dim_param
                            if n4 != 1:
                                continue
                            dim: int | str = ""  # neither value nor name: unknown
                            for n5, _, v5 in _fields(v4):
                                if n5 == 1:
                                    dim = _signed(v5)
                                elif n5 == 2:
                                    dim = _str(v5)
                            shape.append(dim)
    return OnnxValue(name=name, shape=shape, dtype=dtype)


def read_onnx(path: str | Path) -> OnnxGraph:
    """Parse ``path``'s graph; a file that is not an ONNX model is a one-line user error."""
    path = Path(path)
    try:
        data = memoryview(path.read_bytes())
    except OSError as err:
        raise EdgekitError(f"{path}: cannot read the file ({err.strerror or err})") from err
    try:
        ir_version, producer, opsets, graph = 0, "", {}, None
        for number, wire, value in _fields(data):
            if number == 1 and wire == 0:
                ir_version = value
            elif number == 2 and wire == 2:
                producer = _str(value)
            elif number == 7 and wire == 2:
                graph = value
            elif number == 8 and wire == 2:
                domain, version = "", 0
                for n2, _, v2 in _fields(value):
                    if n2 == 1:
                        domain = _str(v2)
                    elif n2 == 2:
                        version = v2
                opsets[domain or "ai.onnx"] = version
        if graph is None or not ir_version:
            raise _Malformed("no graph")
        nodes, inits, inputs, outputs = [], {}, [], []
        for number, wire, value in _fields(graph):
            if wire != 2:
                continue
            if number == 1:
                nodes.append(_node(value))
            elif number == 5:
                t = _tensor(value)
                inits[t.name] = t
            elif number == 11:
                inputs.append(_value_info(value))
            elif number == 12:
                outputs.append(_value_info(value))
    except (_Malformed, IndexError) as err:
        raise MalformedOnnx(f"{path}: not a valid ONNX model ({err})") from err
    if not nodes:
        raise MalformedOnnx(f"{path}: not a valid ONNX model (its graph has no nodes)")
    inputs = [v for v in inputs if v.name not in inits]  # old IRs list weights as inputs
    graph = OnnxGraph(ir_version, producer, opsets, inputs, outputs, nodes, inits)
    _check_tensors(path, graph)
    return graph


def _tensors(g: OnnxGraph) -> list[OnnxTensor]:
    """Every tensor with data: initializers and the ``Constant`` nodes' values."""
    return [*g.initializers.values(), *(t for n in g.nodes for t in n.tensors.values())]


def _check_tensors(path: Path, g: OnnxGraph) -> None:
    """Each tensor's dims against the data it holds (inline or external), as onnxruntime
    checks them on load: a declared size the data cannot back is refused here."""
    for t in _tensors(g):
        label = f"tensor {t.name[:40]!r}"
        if any(d < 0 for d in t.dims) or len(t.dims) > 64:
            raise EdgekitError(f"{path}: not a valid ONNX model ({label} has dims {t.dims[:8]})")
        elements = math.prod(t.dims)
        item = ITEMSIZES.get(t.dtype)
        if item is None:
            continue
        need = elements * item
        if need >= 1 << 63:
            raise EdgekitError(
                f"{path}: not a valid ONNX model ({label} has dims {t.dims[:8]}, whose size "
                "overflows 64 bits)"
            )
        if t.external is not None:
            length = _external_number(path, t, "length")
            if length is not None and length != need:
                raise EdgekitError(
                    f"{path}: not a valid ONNX model ({label} is {t.dtype} {t.dims[:8]}, "
                    f"{need:,} bytes, but its external data is {length:,})"
                )
            _external_file(path, t, need)  # inside the model's directory, and holding it
            continue
        if t.stored is None:
            if elements:
                raise EdgekitError(
                    f"{path}: not a valid ONNX model ({label} is {t.dtype} {t.dims[:8]} "
                    "but holds no data)"
                )
            continue
        have = t.stored if t.stored_unit == "bytes" else t.stored * item
        if have != need and not (t.stored_unit == "elements" and t.stored == elements):
            raise EdgekitError(
                f"{path}: not a valid ONNX model ({label} is {t.dtype} {t.dims[:8]}, "
                f"{need:,} bytes, but holds {have:,})"
            )


def _external_number(path: Path, t: OnnxTensor, key: str) -> int | None:
    """``offset`` or ``length`` of ``t``'s external data: a whole number, or None if absent
    (onnxruntime refuses anything else)."""
    text = (t.external or {}).get(key)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()):
        raise EdgekitError(
            f"{path}: not a valid ONNX model (tensor {t.name[:40]!r}'s external data {key} "
            f"is {text[:40]!r}, not a whole number of bytes)"
        )
    return int(text)


def _external_file(path: Path, t: OnnxTensor, need: int | None = None) -> Path:
    """The external data file of ``t``, which must lie inside the model's directory and hold
    its data: ``length`` bytes from ``offset``, or ``need`` (its dims' bytes) without one."""
    location = (t.external or {}).get("location", "")
    base = path.resolve().parent
    target = (base / location).resolve()
    if not location or Path(location).is_absolute() or not target.is_relative_to(base):
        raise EdgekitError(
            f"{path}: refused: tensor {t.name[:40]!r} keeps its data at {location!r}, "
            "outside the model's directory"
        )
    if not target.is_file():
        raise EdgekitError(
            f"{path}: tensor {t.name[:40]!r} keeps its data in {location!r}, which is missing"
        )
    offset = _external_number(path, t, "offset") or 0
    length = _external_number(path, t, "length")
    size = target.stat().st_size
    end = offset + (length if length is not None else need or 0)
    if end > size:
        raise EdgekitError(
            f"{path}: not a valid ONNX model (tensor {t.name[:40]!r}'s data ends at byte "
            f"{end:,} of {location!r}, which has {size:,})"
        )
    return target


def external_files(path: str | Path) -> list[Path]:
    """The external data files an ``.onnx`` model names, each once, checked (see above)."""
    path = Path(path)
    g = read_onnx(path)
    found: dict[Path, None] = {}
    for t in _tensors(g):
        if t.external is not None:
            found[_external_file(path, t)] = None
    return list(found)
