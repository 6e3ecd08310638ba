"""Hostile files are read within bounds, and refused in one line before anything big is
allocated: ``.npy`` headers and declared array sizes, ``.keras`` zips, configs and weight
files, ``.tflite`` tensors and buffers, ONNX tensors and their external data.

Also the messages that used to mislead (a TFSMLayer called a Lambda layer, a long header
called pickled objects, a semicolon CSV that "needs a header row", complex labels) and the
sizes that used to be wrong (ONNX external data left out of the artifact's bytes).

Most cases call the readers and the CLI in-process; a few run the CLI as a subprocess and
measure its peak memory (``ru_maxrss``), which must stay under 500 MB.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from tests.conftest import REPO, cli

MB = 1 << 20
PEAK_LIMIT_MB = 500


def zip_of(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, method)
    return buf.getvalue()


def deflate_bomb(path: Path, name: str, prefix: bytes, total: int) -> Path:
    """A zip whose member ``name`` is ``prefix`` then zeros up to ``total`` bytes, deflated
    (about 1000:1), written without holding the member in memory."""
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open(name, "w", force_zip64=True) as fh,
    ):
        fh.write(prefix)
        chunk = bytes(4 * MB)
        left = total - len(prefix)
        while left > 0:
            fh.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
    return path


def npy_header(header: str | bytes, *, version: int = 1, length: int | None = None) -> bytes:
    """``.npy`` magic, a length field (``length``, default the header's) and the header."""
    raw = header.encode("latin1") if isinstance(header, str) else header
    n = len(raw) if length is None else length
    size = 2 if version == 1 else 4
    return b"\x93NUMPY" + bytes([version, 0]) + n.to_bytes(size, "little") + raw


def npy_declaring(shape: tuple, descr: str = "<f4", data: bytes = b"\0" * 16) -> bytes:
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    text += " " * (63 - (len(text) + 10) % 64) + "\n"
    return npy_header(text) + data


def first_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text, text
    return text


# --- .npy headers: capped as numpy caps them ------------------------------------------------


def _npz_readers():
    from edgekit.bench.testdata import load_test_data
    from edgekit.data import load_dataset
    from edgekit.formats.npz import load_npz, npz_headers

    return {
        "npz_headers": npz_headers,
        "load_npz": load_npz,
        "bench --data": load_test_data,
        "train --dataset": lambda p: load_dataset(str(p)),
    }


READERS = ("npz_headers", "load_npz", "bench --data", "train --dataset")
LONG = [(1, 10001), (1, 65535), (2, 10001), (2, 1 << 20), (2, 1 << 30), (2, (1 << 32) - 1),
        (3, 1 << 31)]  # fmt: skip


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(("version", "length"), LONG)
def test_a_long_npy_header_is_refused_before_it_is_read(tmp_path, reader, version, length):
    path = tmp_path / "long.npz"
    path.write_bytes(zip_of({"x.npy": npy_header(b"{" + b" " * 200, version=version,
                                                 length=length)}))  # fmt: skip
    started = time.perf_counter()
    with pytest.raises(EdgekitError) as info:
        _npz_readers()[reader](path)
    assert time.perf_counter() - started < 0.5
    assert first_line(info.value) == (
        f"{path}: not a valid .npz file (x.npy: its .npy header is {length:,} bytes; numpy "
        "reads at most 10,000)"
    )
    assert "pickle" not in str(info.value)


@pytest.fixture(scope="module")
def header_bomb(tmp_path_factory) -> Path:
    """A ~200 KB ``.npz`` whose member unpacks to 200 MB: a 1 GiB-header length field, then
    spaces (what the hostile review's 1 MB file did with a 1 GiB header)."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.npz"
    return deflate_bomb(path, "x.npy", b"\x93NUMPY\x02\x00" + (1 << 30).to_bytes(4, "little"),
                        200 * MB)  # fmt: skip


@pytest.mark.parametrize("reader", READERS)
def test_a_decompression_bomb_npz_is_refused_cheaply(header_bomb, reader):
    assert header_bomb.stat().st_size < 1 * MB
    started = time.perf_counter()
    with pytest.raises(EdgekitError) as info:
        _npz_readers()[reader](header_bomb)
    assert time.perf_counter() - started < 0.5
    assert first_line(info.value).startswith(
        f"{header_bomb}: refused: an .npz whose members unpack to 200.0 MiB from "
    )
    assert info.value.args[0].endswith(
        "(more than 32x and 32.0 MiB; a decompression bomb? a file saved uncompressed, "
        "np.savez, always passes)"
    )


DECLARED = [((10**12,), "<f4"), ((10**6, 10**6), "<f8"), ((2**62,), "|u1"), ((3, 2**61), "<i8"),
            ((10**9,), "<U10"), ((50, 50), "<c16"), ((100000, 1), "|b1"), ((5, 0, 10**15), "<f4")]  # fmt: skip


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(("shape", "descr"), DECLARED)
def test_an_array_larger_than_its_member_is_refused_before_allocating(
    tmp_path, reader, shape, descr
):
    path = tmp_path / "big.npz"
    raw = npy_declaring(shape, descr)
    path.write_bytes(zip_of({"x.npy": raw}))
    itemsize = np.dtype(descr).itemsize
    need = math.prod(shape) * itemsize
    if need <= 16:  # a zero-size array fits in anything: read as it is
        return
    with pytest.raises(EdgekitError) as info:
        _npz_readers()[reader](path)
    dims = "x".join(map(str, shape))
    assert first_line(info.value) == (
        f"{path}: not a valid .npz file (x.npy: its header declares {dims} x {itemsize} "
        f"bytes = {need:,} bytes, the member holds 16)"
    )


BAD_HEADERS = {
    "list": ("[1, 2, 3]", "the .npy header is not a dict with descr, shape and fortran_order"),
    "no-shape": ("{'descr': '<f4', 'fortran_order': False}",
                 "the .npy header is not a dict with descr, shape and fortran_order"),
    "negative": ("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 4)}",
                 "bad shape in the .npy header: (-1, 4)"),
    "float-dim": ("{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,)}",
                  "bad shape in the .npy header: (2.5,)"),
    "bool-dim": ("{'descr': '<f4', 'fortran_order': False, 'shape': (True,)}",
                 "bad shape in the .npy header: (True,)"),
    "list-shape": ("{'descr': '<f4', 'fortran_order': False, 'shape': [3]}",
                   "bad shape in the .npy header: [3]"),
    "rank-65": ("{'descr': '<f4', 'fortran_order': False, 'shape': (" + "1," * 65 + ")}",
                "bad shape in the .npy header: (" + "1, " * 19 + "1"),
    "fortran": ("{'descr': '<f4', 'fortran_order': 'yes', 'shape': (2,)}",
                "bad fortran_order in the .npy header"),
    "code": ("__import__('os').system('true')", "unreadable .npy header (ValueError)"),
    "nested": ("(" * 300 + ")" * 300, "unreadable .npy header"),
    "garbage": ("\xff\xfe{{{", "unreadable .npy header (SyntaxError)"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
def test_a_malformed_npy_header_is_one_line(tmp_path, case):
    from edgekit.formats.npz import load_npz, npz_headers

    header, why = BAD_HEADERS[case]
    path = tmp_path / "bad.npz"
    path.write_bytes(zip_of({"x.npy": npy_header(header)}))
    for read in (npz_headers, load_npz):
        with pytest.raises(EdgekitError) as info:
            read(path)
        assert first_line(info.value).startswith(f"{path}: not a valid .npz file (x.npy: {why}")


@pytest.mark.parametrize("version", [0, 4, 255])
def test_an_unknown_npy_version_is_refused(tmp_path, version):
    from edgekit.formats.npz import npz_headers

    path = tmp_path / "v.npz"
    path.write_bytes(zip_of({"x.npy": npy_header("{}", version=1)[:6] + bytes([version, 0])
                             + b"\0" * 8}))  # fmt: skip
    with pytest.raises(EdgekitError, match=rf"unknown \.npy format version {version}\.0\)$"):
        npz_headers(path)


@pytest.mark.parametrize("dtype", ["<f4", "<i8", "|u1", "<U3", "|b1", "<c8"])
def test_valid_npz_files_still_load(tmp_path, dtype):
    from edgekit.formats.npz import load_npz, npz_headers

    arr = np.zeros((3, 4), dtype=dtype)
    path = tmp_path / "ok.npz"
    np.savez_compressed(path, x=arr, s=np.zeros(2, dtype=[("a", "<f4"), ("b", "<i8")]))
    assert npz_headers(path)["x"] == ((3, 4), np.dtype(dtype).str)
    assert load_npz(path)["x"].shape == (3, 4)


def test_bench_refuses_a_hostile_npz_in_one_line(tmp_path, header_bomb, small_export_dir):
    long = tmp_path / "long.npz"
    long.write_bytes(zip_of({"x.npy": npy_header(b"{", version=2, length=1 << 30)}))
    for data, message in (
        (long, f"{long}: not a valid .npz file (x.npy: its .npy header is 1,073,741,824 bytes; "
               "numpy reads at most 10,000)"),
        (header_bomb, f"{header_bomb}: refused: an .npz whose members unpack to 200.0 MiB"),
    ):  # fmt: skip
        code, out, err = cli("bench", str(small_export_dir), "--data", str(data))
        assert (code, out) == (2, ""), err
        assert err.startswith(f"edgekit: error: {message}") and err.count("\n") == 1


# --- .keras: zip sizes, config sizes, declared weights --------------------------------------


@pytest.fixture(scope="module")
def tiny_keras(tmp_path_factory) -> Path:
    """A 4 -> 6 -> 3 functional model, saved unfitted (fixed weights)."""
    import keras

    inputs = keras.Input((4,), name="features")
    hidden = keras.layers.Dense(6, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(hidden)
    model = keras.Model(inputs, outputs)
    for layer in model.layers[1:]:
        kernel, bias = layer.get_weights()
        layer.set_weights([np.full_like(kernel, 0.1), np.zeros_like(bias)])
    path = tmp_path_factory.mktemp("keras") / "tiny.keras"
    model.save(path)
    return path


def keras_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def with_config(tiny: Path, dst: Path, edit) -> Path:
    members = keras_members(tiny)
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    dst.write_bytes(zip_of(members))
    return dst


def _dense(config: dict, name: str) -> dict:
    return next(layer for layer in config["config"]["layers"] if layer["name"] == name)


def _set_dense(units: int, n_in: int, *, build: bool = True):
    def edit(config):
        layer = _dense(config, "hidden")
        layer["config"]["units"] = units
        if build:
            layer["build_config"]["input_shape"] = [None, n_in]
        else:
            del layer["build_config"]
            config["config"]["layers"][0]["config"]["batch_shape"] = [None, n_in]

    return edit


def _replace_layer(class_name: str, extra: dict, shape: list):
    def edit(config):
        layer = _dense(config, "hidden")
        layer["class_name"] = class_name
        layer["config"] = {"name": "hidden", "trainable": True, "dtype": "float32", **extra}
        layer["build_config"]["input_shape"] = shape

    return edit


TOO_MANY = {
    "dense-10^10": (_set_dense(100_000, 100_000), 10_000_100_000),
    "dense-10^8": (_set_dense(10_001, 10_000), 100_020_001),
    "dense-10^20": (_set_dense(10**10, 10**10), 100_000_000_010_000_000_000),
    "conv2d": (_replace_layer("Conv2D", {"filters": 4096, "kernel_size": [64, 64]},
                              [None, 64, 64, 16]), 4096 * (64 * 64 * 16 + 1)),
    "embedding": (_replace_layer("Embedding", {"input_dim": 10**7, "output_dim": 512},
                                 [None, 4]), 10**7 * 512),
    "lstm": (_replace_layer("LSTM", {"units": 10_000}, [None, 10, 4]),
             4 * 10_000 * (4 + 10_000 + 1)),
    "normalization": (_replace_layer("Normalization", {"axis": [-1]}, [None, 10**9]),
                      2 * 10**9 + 1),
    "mha": (_replace_layer("MultiHeadAttention", {"num_heads": 64, "key_dim": 4096},
                           [None, 8, 4096]), 64 * 4096 * (3 * 4097 + 4096) + 4096),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(TOO_MANY))
def test_a_config_declaring_too_many_weights_is_refused_before_keras(tmp_path, tiny_keras, case):
    from edgekit.formats.keras_file import check_keras_file, load_keras_model

    edit, params = TOO_MANY[case]
    params += 3 * (6 + 1)  # the output layer
    path = with_config(tiny_keras, tmp_path / f"{case}.keras", edit)
    assert path.stat().st_size < 100_000
    expected = f"{params:,}" if len(f"{params:,}") <= 40 else f"~{float(params):.3g}"
    message = (
        f"{path}: refused: its config declares {expected} weights (edgekit loads at most "
        "100,000,000)"
    )
    for read in (check_keras_file, load_keras_model):
        with pytest.raises(EdgekitError) as info:
            read(path)
        assert first_line(info.value) == message


MORE_THAN_FILE = {"dense-600": (600, 600), "dense-40k": (40_000, 4), "dense-4-60k": (4, 60_000)}


@pytest.mark.parametrize("case", sorted(MORE_THAN_FILE))
def test_a_config_declaring_more_than_its_weights_file_holds_is_refused(tmp_path, tiny_keras, case):
    from edgekit.formats.keras_file import load_keras_model

    units, n_in = MORE_THAN_FILE[case]
    path = with_config(tiny_keras, tmp_path / "w.keras", _set_dense(units, n_in))
    h5 = len(keras_members(path)["model.weights.h5"])
    params = units * (n_in + 1) + 3 * (6 + 1)
    with pytest.raises(EdgekitError) as info:
        load_keras_model(path)
    assert first_line(info.value) == (
        f"{path}: refused: its config declares {params:,} weights, but its model.weights.h5 "
        f"holds {h5:,} bytes"
    )


def test_a_config_with_too_many_layers_or_containers_or_bytes_is_refused(tmp_path, tiny_keras):
    from edgekit.formats.keras_file import check_keras_file

    def many_layers(config):
        config["config"]["layers"] += [
            {"class_name": "Dense", "config": {"name": f"d{i}", "trainable": True, "units": 1}}
            for i in range(10_001)
        ]

    def many_containers(config):
        config["config"]["padding"] = [[] for _ in range(600_000)]

    cases = {
        "layers": (many_layers, "refused: its config declares 10,003 layers (edgekit loads at "
                                "most 10,000)"),
        "containers": (many_containers, "refused: its config.json holds 6"),
    }  # fmt: skip
    for name, (edit, message) in cases.items():
        path = with_config(tiny_keras, tmp_path / f"{name}.keras", edit)
        with pytest.raises(EdgekitError) as info:
            check_keras_file(path)
        assert first_line(info.value).startswith(f"{path}: {message}"), name
    members = keras_members(tiny_keras)
    members["config.json"] = b" " * (9 * MB)
    path = tmp_path / "big-config.keras"
    path.write_bytes(zip_of(members, zipfile.ZIP_DEFLATED))
    with pytest.raises(EdgekitError) as info:
        check_keras_file(path)
    assert first_line(info.value) == (
        f"{path}: refused: its config.json is 9.0 MiB (edgekit reads at most 8.0 MiB)"
    )


@pytest.mark.parametrize("member", ["model.weights.h5", "config.json", "assets/blob.bin"])
def test_a_keras_zip_bomb_is_refused_before_any_member_is_read(tmp_path, tiny_keras, member):
    from edgekit.formats.keras_file import load_keras_model

    path = tmp_path / "bomb.keras"
    members = keras_members(tiny_keras)
    members.pop(member, None)
    deflate_bomb(path, member, b"", 200 * MB)
    with zipfile.ZipFile(path, "a") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    assert path.stat().st_size < 1 * MB
    started = time.perf_counter()
    with pytest.raises(EdgekitError) as info:
        load_keras_model(path)
    assert time.perf_counter() - started < 1.0
    assert first_line(info.value).startswith(
        f"{path}: refused: a .keras file whose members unpack to 200.0 MiB from "
    )


def test_weights_that_declare_far_more_than_they_hold_are_refused(tmp_path, tiny_keras):
    import h5py

    from edgekit.formats.keras_file import load_keras_model

    members = keras_members(tiny_keras)
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:  # no data written: HDF5 reads back fill values, any size
        h5.create_dataset("layers/hidden/vars/0", shape=(100_000, 100_000), dtype="f4")
    members["model.weights.h5"] = buf.getvalue()
    path = tmp_path / "fill.keras"
    path.write_bytes(zip_of(members))
    with pytest.raises(EdgekitError) as info:
        load_keras_model(path)
    assert first_line(info.value).startswith(
        f"{path}: refused: the arrays in its model.weights.h5 declare 37.3 GiB in "
    )


def test_a_tfsm_layer_is_named_as_such_and_keras_reasons_are_kept(tmp_path, tiny_keras):
    from edgekit.formats.keras_file import TFSM_REFUSED, load_keras_model

    tfsm = with_config(tiny_keras, tmp_path / "tfsm.keras", _replace_layer(
        "TFSMLayer", {"filepath": str(tmp_path), "call_endpoint": "serve"}, [None, 4]))  # fmt: skip
    with pytest.raises(EdgekitError) as info:
        load_keras_model(tfsm)
    assert first_line(info.value) == f"{tfsm}: {TFSM_REFUSED}"
    assert "Lambda" not in str(info.value)

    def mismatch(config):
        _dense(config, "out")["config"]["units"] = 4
        _dense(config, "out")["build_config"]["input_shape"] = [None, 6]

    bad = with_config(tiny_keras, tmp_path / "mismatch.keras", mismatch)
    with pytest.raises(EdgekitError) as info:
        load_keras_model(bad)
    text = first_line(info.value)
    assert text.startswith(f"{bad}: cannot load the model (A total of 1 objects could not be")
    assert "variable.shape=(6, 4), Received: value.shape=(6, 3)" in text  # Keras's reason
    assert len(text) < len(str(bad)) + 330


@pytest.mark.parametrize("command", ["inspect", "export"])
@pytest.mark.parametrize("case", ["dense-10^10", "conv2d", "bomb"])
def test_cli_refuses_hostile_keras_files_with_exit_2(tmp_path, tiny_keras, command, case):
    if case == "bomb":
        path = deflate_bomb(tmp_path / "bomb.keras", "config.json", b"{", 100 * MB)
        message = f"{path}: refused: a .keras file whose members unpack to 100.0 MiB"
    else:
        path = with_config(tiny_keras, tmp_path / f"{case}.keras", TOO_MANY[case][0])
        message = f"{path}: refused: its config declares"
    code, out, err = cli(command, str(path))
    assert (code, out) == (2, ""), err
    assert err.startswith(f"edgekit: error: {message}") and err.count("\n") == 1
    assert not list(tmp_path.glob("*_export*"))


def test_declared_weights_of_real_models_are_close(tiny_keras):
    from edgekit.formats.keras_file import check_keras_file, declared_weights

    layers, params, refused = declared_weights(check_keras_file(tiny_keras))
    assert (layers, params, refused) == (2, 4 * 6 + 6 + 6 * 3 + 3, None)


# --- .tflite: tensors and buffers against the file ------------------------------------------


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory, tiny_keras) -> Path:
    import keras

    from edgekit.exporters.tflite import to_tflite

    model = keras.models.load_model(tiny_keras)
    return to_tflite(model, tmp_path_factory.mktemp("tflite") / "tiny.tflite", variant="float32")


def repack(src: Path, dst: Path, edit) -> Path:
    """``src`` unpacked with LiteRT's schema, edited, packed again as ``dst``."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(src.read_bytes()), 0)
    edit(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    dst.write_bytes(bytes(builder.Output()))
    return dst


def _tensor(model, kind: str):
    sub = model.subgraphs[0]
    if kind == "activation":
        return sub.tensors[sub.operators[0].outputs[0]]
    if kind == "input":
        return sub.tensors[sub.inputs[0]]
    for t in sub.tensors:  # the first constant with data
        buf = model.buffers[t.buffer]
        if buf.data is not None and len(buf.data) > 16:
            return t
    raise AssertionError("no constant")


def _shape(kind: str, shape: list[int]):
    def edit(model):
        t = _tensor(model, kind)
        t.shape = np.asarray(shape, dtype=np.int32)
        t.shapeSignature = None

    return edit


def _buffer_index(model):
    _tensor(model, "constant").buffer = 9999


def _outside(model):
    buf = model.buffers[_tensor(model, "constant").buffer]
    buf.data, buf.offset, buf.size = None, 10**9, 64


def _opcode(model):
    model.subgraphs[0].operators[0].opcodeIndex = 77


def _op_tensor(model):
    model.subgraphs[0].operators[0].inputs = np.asarray([5000, 1, 2], dtype=np.int32)


BIG = 2**31 - 1
HOSTILE_TFLITE = {
    "activation-400MB": (_shape("activation", [1, 100_000_000]), "refused: tensor "),
    "activation-overflow": (_shape("activation", [1, BIG, BIG, BIG]), "overflows 64 bits"),
    "input-overflow": (_shape("input", [BIG, BIG, BIG, 4]), "overflows 64 bits"),
    "input-16GB": (_shape("input", [1, BIG, 2]), "refused: tensor "),
    "constant-shape": (_shape("constant", [64, 64]), "but its buffer holds"),
    "constant-shape-huge": (_shape("constant", [BIG, 4]), "refused: tensor "),
    "constant-overflow": (_shape("constant", [BIG, BIG, 8]), "overflows 64 bits"),
    "constant-empty-shape": (_shape("constant", [0]), "but its buffer holds"),
    "buffer-index": (_buffer_index, "refers to buffer 9999"),
    "buffer-outside": (_outside, "lies at bytes 1,000,000,000..1,000,000,064, outside the file"),
    "opcode": (_opcode, "operator 0 has opcode 77"),
    "op-tensor": (_op_tensor, "refers to tensor 5000; the graph has"),
}  # fmt: skip


def _load_runner(path: Path):
    from edgekit.runtime.tflite import TFLiteRunner

    runner = TFLiteRunner(path)
    runner.load()


def _inspect(path: Path):
    from edgekit.inspect import inspect_artifact

    inspect_artifact(path)


def _estimate(path: Path):
    from edgekit.estimate import estimate

    estimate(path, target="cortex-m4")


TFLITE_READERS = {"check": "check_tflite", "read": "read_tflite", "bench-worker": _load_runner,
                  "inspect": _inspect, "estimate": _estimate}  # fmt: skip


@pytest.mark.parametrize("reader", sorted(TFLITE_READERS))
@pytest.mark.parametrize("case", sorted(HOSTILE_TFLITE))
def test_a_hostile_tflite_is_refused_before_anything_allocates_it(
    tmp_path, tiny_tflite, case, reader
):
    from edgekit.formats import tflite_graph

    edit, why = HOSTILE_TFLITE[case]
    path = repack(tiny_tflite, tmp_path / f"{case}.tflite", edit)
    read = TFLITE_READERS[reader]
    read = getattr(tflite_graph, read) if isinstance(read, str) else read
    with pytest.raises(EdgekitError) as info:
        read(path)
    text = first_line(info.value)
    assert text.startswith(f"{path}: "), text
    assert why in text, text


def test_tflite_size_messages_are_exact(tmp_path, tiny_tflite):
    from edgekit.formats.tflite_graph import check_tflite

    path = repack(tiny_tflite, tmp_path / "a.tflite", _shape("activation", [1, 100_000_000]))
    with pytest.raises(EdgekitError) as info:
        check_tflite(path)
    size = path.stat().st_size
    name = info.value.args[0].split("(", 1)[1].split(")", 1)[0]
    assert info.value.args[0] == (
        f"{path}: refused: tensor 3 ({name}) declares 400,000,000 bytes (float32 "
        f"[1, 100000000]); edgekit allows {256 * MB:,} for a file of {size:,} bytes"
    )
    path = repack(tiny_tflite, tmp_path / "o.tflite", _shape("activation", [1, BIG, BIG, BIG]))
    with pytest.raises(EdgekitError) as info:
        check_tflite(path)
    assert info.value.args[0] == (
        f"{path}: not a valid TensorFlow Lite model (tensor 3 ({name}) has shape "
        f"[1, {BIG}, {BIG}, {BIG}], whose size overflows 64 bits)"
    )


@pytest.mark.parametrize("command", ["estimate", "inspect", "bench"])
@pytest.mark.parametrize("case", ["activation-overflow", "constant-shape", "buffer-outside"])
def test_cli_refuses_hostile_tflite_files_with_exit_2(tmp_path, tiny_tflite, command, case):
    path = repack(tiny_tflite, tmp_path / "h.tflite", HOSTILE_TFLITE[case][0])
    argv = {"estimate": ["--target", "cortex-m4"], "inspect": [], "bench": ["--runs", "2"]}
    code, out, err = cli(command, str(path), *argv[command])
    if command == "bench":  # the measuring child refuses it: an error row, a failed check
        assert code == 1 and HOSTILE_TFLITE[case][1] in out, (out, err)
        return
    assert (code, out) == (2, ""), err
    assert err.startswith(f"edgekit: error: {path}: ") and err.count("\n") == 1
    assert HOSTILE_TFLITE[case][1] in err


def test_real_tflite_models_pass_and_estimate_is_never_zero(tiny_tflite):
    from edgekit.estimate import estimate
    from edgekit.formats.tflite_graph import check_tflite, read_tflite

    check_tflite(tiny_tflite)
    g = read_tflite(tiny_tflite)
    assert all(t.nbytes > 0 for t in g.tensors)
    e = estimate(tiny_tflite, target="cortex-m4")
    assert e.arena_bytes > 0 and e.macs == 4 * 6 + 6 * 3 and e.flash_bytes > 0


# --- ONNX: external data counted, tensors against their data --------------------------------


def onnx_model(path: Path, *, external: bool = True, edit=None) -> Path:
    """A MatMul + Add model, 16 -> 8, its weights in ``w.bin`` beside it when ``external``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.full((16, 8), 0.5, np.float32), "w")
    b = numpy_helper.from_array(np.zeros(8, np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
         helper.make_node("Add", ["h", "b"], ["y"], name="add")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 8])],
        [w, b],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if edit is not None:
        edit(model)
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, location="w.bin",
                        size_threshold=0, all_tensors_to_one_file=True)  # fmt: skip
    else:
        onnx.save_model(model, str(path))
    return path


def test_external_data_counts_in_bytes_estimate_and_inspect(tmp_path):
    from edgekit.estimate import estimate
    from edgekit.formats.sizes import artifact_bytes
    from edgekit.inspect import inspect_artifact

    path = onnx_model(tmp_path / "m.onnx")
    total = path.stat().st_size + (tmp_path / "w.bin").stat().st_size
    assert (tmp_path / "w.bin").stat().st_size == (16 * 8 + 8) * 4
    assert artifact_bytes(path) == total > path.stat().st_size
    assert estimate(path, target="cortex-m4").flash_bytes == total
    assert inspect_artifact(path).bytes == total
    (tmp_path / "inline").mkdir()
    inline = onnx_model(tmp_path / "inline" / "m.onnx", external=False)
    assert artifact_bytes(inline) == inline.stat().st_size


def _external(location: str | None = None, offset: int | None = None, length: int | None = None):
    def edit(model):
        from onnx.external_data_helper import set_external_data

        t = model.graph.initializer[0]
        set_external_data(t, location=location or "w.bin", offset=offset, length=length)
        t.data_location = 1
        t.ClearField("raw_data")

    return edit


HOSTILE_ONNX = {
    "escape-parent": (_external("../w.bin"), "refused: tensor 'w' keeps its data at '../w.bin', "
                      "outside the model's directory"),
    "escape-absolute": (_external("/etc/hostname"), "refused: tensor 'w' keeps its data at "
                        "'/etc/hostname', outside the model's directory"),
    "missing": (_external("gone.bin"), "tensor 'w' keeps its data in 'gone.bin', which is missing"),
    "past-the-end": (_external("w.bin", offset=10**9, length=512),
                     "tensor 'w''s data ends at byte 1,000,000,512 of 'w.bin', which has"),
    "length-mismatch": (_external("w.bin", offset=0, length=8),
                        "tensor 'w' is float32 [16, 8], 512 bytes, but its external data is 8)"),
}  # fmt: skip


@pytest.mark.parametrize("reader", ["artifact_bytes", "estimate", "inspect", "bench-worker"])
@pytest.mark.parametrize("case", sorted(HOSTILE_ONNX))
def test_hostile_onnx_external_data_is_refused(tmp_path, case, reader):
    from edgekit.estimate import estimate
    from edgekit.formats.sizes import artifact_bytes
    from edgekit.inspect import inspect_artifact
    from edgekit.runtime.onnxruntime import OnnxRuntimeRunner

    edit, message = HOSTILE_ONNX[case]
    (tmp_path / "w.bin").write_bytes(bytes(600))
    path = onnx_model(tmp_path / "m.onnx", external=False, edit=edit)
    read = {
        "artifact_bytes": artifact_bytes,
        "estimate": lambda p: estimate(p, target="cortex-m4"),
        "inspect": inspect_artifact,
        "bench-worker": lambda p: OnnxRuntimeRunner(p).load(),
    }[reader]
    with pytest.raises(EdgekitError) as info:
        read(path)
    assert message in first_line(info.value)
    assert str(info.value).startswith(f"{path}: ")


DIMS = {"bigger": [32, 8], "smaller": [4, 8], "huge": [2**40, 2**40], "overflow": [2**62, 16],
        "negative": [-16, 8]}  # fmt: skip


@pytest.mark.parametrize("reader", ["estimate", "inspect", "bench-worker"])
@pytest.mark.parametrize("case", sorted(DIMS))
def test_onnx_dims_that_their_data_cannot_back_are_refused(tmp_path, case, reader):
    from edgekit.estimate import estimate
    from edgekit.inspect import inspect_artifact
    from edgekit.runtime.onnxruntime import OnnxRuntimeRunner

    def edit(model):
        t = model.graph.initializer[0]
        del t.dims[:]
        t.dims.extend(DIMS[case])

    path = onnx_model(tmp_path / "m.onnx", external=False, edit=edit)
    read = {"estimate": lambda p: estimate(p, target="cortex-m4"), "inspect": inspect_artifact,
            "bench-worker": lambda p: OnnxRuntimeRunner(p).load()}[reader]  # fmt: skip
    with pytest.raises(EdgekitError) as info:
        read(path)
    text = first_line(info.value)
    assert text.startswith(f"{path}: not a valid ONNX model (tensor 'w' "), text


# --- messages that misled -------------------------------------------------------------------

ROWS = [["a", "b", "c", "label"], ["1.5", "2", "3", "x"], ["4", "5.25", "6", "y"],
        ["7", "8", "9.5", "x"], ["1", "0", "2", "y"]]  # fmt: skip


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
def test_semicolon_tab_and_pipe_csv_files_simply_work(tmp_path, delimiter):
    from edgekit.data.files import load_csv
    from edgekit.formats.csv_table import read_csv_table

    path = tmp_path / "d.csv"
    path.write_text("\n".join(delimiter.join(r) for r in [ROWS[0], *ROWS[1:] * 3]) + "\n")
    table = read_csv_table(path)
    assert table.header == ROWS[0] and table.rows[0] == ROWS[1]
    ds = load_csv(path)
    assert ds.meta["features"] == ["a", "b", "c"] and ds.meta["target"] == "label"


def test_a_one_column_csv_still_says_what_it_needs(tmp_path):
    from edgekit.data.files import load_csv

    path = tmp_path / "one.csv"
    path.write_text("value\n1\n2\n3\n")
    with pytest.raises(EdgekitError) as info:
        load_csv(path)
    assert first_line(info.value) == (
        f"{path}: needs a header row with at least one feature and a target column (found 1 "
        "column: 'value'; delimiters read: , ; tab |)"
    )


@pytest.mark.parametrize("key", ["y", "x"])
def test_complex_numbers_are_named_as_unsupported(tmp_path, key):
    from edgekit.data import load_dataset

    arrays = {"x": np.ones((20, 3)), "y": np.arange(20) % 2}
    arrays[key] = arrays[key] + 1j
    path = tmp_path / "c.npz"
    np.savez(path, **arrays)
    with pytest.raises(EdgekitError) as info:
        load_dataset(str(path))
    what = "targets" if key == "y" else "features"
    assert first_line(info.value) == (
        f"{path}: {key!r} holds complex numbers (complex128); edgekit does not support "
        f"complex {what}"
    )


# --- peak memory of the CLI on hostile files (subprocesses) ---------------------------------

PEAK = """
import json, resource, sys
from edgekit.cli import main
try:
    main(sys.argv[1:])
    code = 0
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
# VmHWM: this process's own peak since exec (ru_maxrss would carry the parent's over exec)
own = next(int(line.split()[1]) for line in open("/proc/self/status")
           if line.startswith("VmHWM:"))
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # bench's workers, forked here
print(json.dumps({"code": code, "peak_mb": max(own, kids) / 1024}))
"""


def peak_of(*argv: str, cwd: Path) -> tuple[int, float, str]:
    proc = subprocess.run([sys.executable, "-c", PEAK, *argv], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env={"PYTHONPATH": str(REPO),
                                                     "PATH": "/usr/bin:/bin",
                                                     "TF_CPP_MIN_LOG_LEVEL": "3"})  # fmt: skip
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["code"], result["peak_mb"], proc.stderr


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc")
def test_peak_memory_on_hostile_files_stays_under_500_mb(tmp_path, tiny_keras, tiny_tflite):
    keras_huge = with_config(tiny_keras, tmp_path / "huge.keras", TOO_MANY["dense-10^10"][0])
    keras_bomb = deflate_bomb(tmp_path / "bomb.keras", "model.weights.h5", b"", 900 * MB)
    npz_bomb = deflate_bomb(tmp_path / "bomb.npz", "x.npy",
                            b"\x93NUMPY\x02\x00" + (1 << 30).to_bytes(4, "little"), 900 * MB)  # fmt: skip
    tflite = repack(tiny_tflite, tmp_path / "big.tflite", _shape("activation", [1, 3, 10**9]))
    cases = [
        ("inspect", str(keras_huge)),
        ("inspect", str(keras_bomb)),
        ("estimate", str(tflite), "--target", "cortex-m4"),
        ("bench", str(tflite), "--data", str(npz_bomb)),
    ]
    for argv in cases:
        assert Path(argv[1]).stat().st_size < 1 * MB
        code, peak, err = peak_of(*argv, cwd=tmp_path)
        assert code == 2, (argv, err[-2000:])
        assert err.count("\n") == 1 and "refused" in err, err
        assert peak < PEAK_LIMIT_MB, (argv, peak)
        print(f"peak memory of edgekit {argv[0]} {Path(argv[1]).name}: {peak:.0f} MB")
