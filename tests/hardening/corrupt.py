"""Hand-made broken files, byte for byte the same on every run (no timestamps, no seeds).

Each one is the smallest input that reproduces a failure found by the bad-input matrix or the
fuzzers; the tests keep them as regression cases.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np


def npy(arr: np.ndarray) -> bytes:
    """``arr`` as ``.npy`` bytes (header and data)."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=arr.dtype.kind == "O")
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip archive of ``members``, stored (not compressed), with fixed timestamps."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """An ``.npz`` of ``arrays``, deterministic (``np.savez`` stamps the current time)."""
    return zip_bytes({f"{name}.npy": npy(arr) for name, arr in arrays.items()})


def npz_unsupported_compression(**arrays: np.ndarray) -> bytes:
    """A valid-looking ``.npz`` whose members claim compression method 99.

    ``zipfile`` opens the archive and lists it, then raises ``NotImplementedError`` on
    reading a member (found by fuzzing the test-data header reader).
    """
    data = bytearray(npz_bytes(**arrays))
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = 0
        while (at := data.find(signature, start)) >= 0:
            data[at + offset : at + offset + 2] = (99).to_bytes(2, "little")
            start = at + 4
    return bytes(data)


def npz_truncated_array(shape=(3, 8, 8)) -> bytes:
    """An ``.npz`` whose ``x.npy`` has a valid header but no data after it.

    Its headers are fine, so only reading the array finds the problem.
    """
    header_only = npy(np.zeros(shape, np.float32))[: -int(np.prod(shape)) * 4]
    return zip_bytes({"x.npy": header_only})


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes | int) -> bytes:
    key = _varint(number << 3 | wire)
    if wire == 0:
        return key + _varint(int(payload))
    return key + _varint(len(payload)) + payload


def onnx_varint_string(value: int = 1 << 63) -> bytes:
    """An ONNX ModelProto whose first node's input name (a string) is sent as a varint.

    The protobuf decoder took the varint's value for a length: ``bytes(value)`` allocated
    that many zero bytes (seconds for 2**31, MemoryError or OverflowError beyond). Found by
    fuzzing.
    """
    node = _field(1, 0, value) + _field(4, 2, b"MatMul")
    graph = _field(1, 2, node)
    return _field(1, 0, 8) + _field(7, 2, graph)


def onnx_varint_message() -> bytes:
    """An ONNX ModelProto whose graph input's type (a nested message) is sent as a varint.

    The decoder iterated over the number (TypeError). Found by fuzzing.
    """
    node = _field(1, 2, b"features") + _field(2, 2, b"y") + _field(4, 2, b"Relu")
    value_info = _field(1, 2, b"features") + _field(2, 0, 5)
    graph = _field(1, 2, node) + _field(11, 2, value_info)
    return _field(1, 0, 8) + _field(7, 2, graph)


def tflite_with_bad_tensor_index(src: Path, dst: Path, *, index: int = 9999) -> Path:
    """A valid flatbuffer whose first operator reads tensor ``index``, which does not exist.

    ``edgekit estimate`` indexed its tensor list with it (IndexError). Found by fuzzing.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(src.read_bytes(), 0))
    op = model.subgraphs[0].operators[0]
    op.inputs = [index, *list(op.inputs)[1:]]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    dst.write_bytes(bytes(builder.Output()))
    return dst


def tflite_with_missing_input(src: Path, dst: Path) -> Path:
    """A valid flatbuffer whose FULLY_CONNECTED reads its input from tensor -1 (none).

    ``edgekit estimate`` took the missing input for a tensor (AttributeError). Found by
    fuzzing.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(src.read_bytes(), 0))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    graph = model.subgraphs[0]
    op = next(o for o in graph.operators if names[codes[o.opcodeIndex]] == "FULLY_CONNECTED")
    op.inputs = [-1, *list(op.inputs)[1:]]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    dst.write_bytes(bytes(builder.Output()))
    return dst


def npz_member_past_the_end(**arrays: np.ndarray) -> bytes:
    """An ``.npz`` whose member claims 1 MiB (and its ``.npy`` header 64 KiB) in a file of a
    few hundred bytes: reading the header runs off the end (``EOFError`` from zipfile).
    Found by fuzzing the test-data header reader."""
    data = bytearray(npz_bytes(**arrays))
    big = (1 << 20).to_bytes(4, "little")
    central, local = data.find(b"PK\x01\x02"), data.find(b"PK\x03\x04")
    data[central + 20 : central + 28] = big + big  # compressed and uncompressed sizes
    data[local + 18 : local + 26] = big + big
    magic = data.find(b"\x93NUMPY")
    data[magic + 8 : magic + 10] = (0xFFFF).to_bytes(2, "little")  # header length
    return bytes(data)
