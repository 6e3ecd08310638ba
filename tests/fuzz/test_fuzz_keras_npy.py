"""Fuzzing ``.keras`` files (their ``config.json`` and their zip structure) and ``.npy``
headers: every case loads or raises :class:`EdgekitError` in one line, and the process's
peak memory (``ru_maxrss``) grows by less than 500 MB over the whole target.
"""

from __future__ import annotations

import io
import json
import resource
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgekit.errors import EdgekitError
from tests.fuzz.conftest import count, fuzz_settings, mutate, mutations

GROWTH_LIMIT_MB = 500


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture(scope="module")
def keras_seed(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    import keras

    inputs = keras.Input((4,), name="features")
    hidden = keras.layers.Dense(6, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(hidden)
    path = tmp_path_factory.mktemp("keras-seed") / "seed.keras"
    keras.Model(inputs, outputs).save(path)
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    return path, members


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, method)
    return buf.getvalue()


def _load(path: Path) -> None:
    from edgekit.formats.keras_file import load_keras_model

    try:
        load_keras_model(path)
    except EdgekitError as err:
        assert "\n" not in str(err), str(err)


NUMBERS = st.one_of(
    st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, 10**6, 10**9, 10**12, 2**63, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.booleans(),
    st.text(max_size=4),
)
CONFIG_EDITS = st.lists(
    st.tuples(
        st.sampled_from(["hidden", "out", "features"]),
        st.sampled_from([
            ("config", "units"), ("build_config", "input_shape"), ("build_config", "input_shape", 1),
            ("config", "batch_shape"), ("config", "batch_shape", 1), ("class_name",),
            ("config", "activation"), ("config", "use_bias"), ("config",), ("build_config",),
            ("inbound_nodes",), ("config", "dtype"),
        ]),
        st.one_of(NUMBERS, st.lists(NUMBERS, max_size=3),
                  st.sampled_from(["Dense", "Conv2D", "Embedding", "LSTM", "Lambda", "TFSMLayer",
                                   "Normalization", "Nope", "<delete>"])),
    ),
    min_size=1, max_size=4,
)  # fmt: skip


def _edit_config(config: dict, edits) -> dict:
    for layer_name, where, value in edits:
        layer = next((x for x in config["config"]["layers"] if x.get("name") == layer_name), None)
        if layer is None:
            continue
        parent = layer
        try:
            for key in where[:-1]:
                parent = parent[key]
            if value == "<delete>":
                del parent[where[-1]]
            else:
                parent[where[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    return config


@given(edits=CONFIG_EDITS)
@fuzz_settings(max_examples=60)
def test_fuzz_keras_config(keras_seed, tmp_path, edits):
    _, members = keras_seed
    start = _peak_mb()
    config = _edit_config(json.loads(members["config.json"]), edits)
    path = tmp_path / "f.keras"
    path.write_bytes(_zip({**members, "config.json": json.dumps(config).encode()}))
    _load(path)
    count("keras config.json")
    assert _peak_mb() - start < GROWTH_LIMIT_MB


ZIP_EDITS = st.lists(
    st.one_of(
        st.tuples(st.just("drop"), st.sampled_from(["config.json", "model.weights.h5",
                                                    "metadata.json"])),
        st.tuples(st.just("rename"), st.sampled_from(["config.json", "model.weights.h5"]),
                  st.sampled_from(["model.weights.npz", "assets/x", "../config.json", "CONFIG.JSON"])),
        st.tuples(st.just("replace"), st.sampled_from(["config.json", "model.weights.h5"]),
                  st.binary(max_size=64)),
        st.tuples(st.just("extra"), st.text(min_size=1, max_size=12), st.binary(max_size=32)),
    ),
    min_size=1, max_size=3,
)  # fmt: skip


@given(edits=ZIP_EDITS, method=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
@fuzz_settings(max_examples=40)
def test_fuzz_keras_zip_structure(keras_seed, tmp_path, edits, method):
    _, members = keras_seed
    start = _peak_mb()
    out = dict(members)
    for edit in edits:
        if edit[0] == "drop":
            out.pop(edit[1], None)
        elif edit[0] == "rename" and edit[1] in out:
            out[edit[2]] = out.pop(edit[1])
        elif edit[0] in ("replace", "extra"):
            out[edit[1]] = edit[2]
    path = tmp_path / "z.keras"
    path.write_bytes(_zip(out, method))
    _load(path)
    count("keras zip structure")
    assert _peak_mb() - start < GROWTH_LIMIT_MB


@pytest.fixture(scope="module")
def keras_bytes(keras_seed) -> bytes:
    return keras_seed[0].read_bytes()


@given(edits=mutations(20_000))
@fuzz_settings(max_examples=40)
def test_fuzz_keras_bytes(keras_bytes, tmp_path, edits):
    start = _peak_mb()
    path = tmp_path / "b.keras"
    path.write_bytes(mutate(keras_bytes, edits))
    _load(path)
    count("keras bytes")
    assert _peak_mb() - start < GROWTH_LIMIT_MB


# --- .npy headers ---------------------------------------------------------------------------

DESCRS = st.one_of(
    st.sampled_from(["<f4", "<f8", "|u1", "<i8", "|b1", "<U8", "|S4", "|O", "<c16", "|V8",
                     "<m8[s]", "f4", "<f", "", "<x9"]),
    st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["<f4", "|u1", "<i8"])),
             max_size=2),
    st.text(max_size=6),
)  # fmt: skip
DIMS = st.one_of(st.integers(0, 8), st.sampled_from([10**6, 2**31, 2**62, 10**12, -1]),
                 st.floats(0, 4), st.booleans())  # fmt: skip
HEADERS = st.fixed_dictionaries(
    {"descr": DESCRS, "fortran_order": st.one_of(st.booleans(), st.integers(0, 1)),
     "shape": st.one_of(st.tuples(*[DIMS] * 2), st.tuples(DIMS), st.lists(DIMS, max_size=2),
                        st.just(()))},
    optional={"extra": st.integers()},
)  # fmt: skip


@given(
    header=HEADERS,
    version=st.sampled_from([1, 2, 3]),
    pad=st.sampled_from([0, 10, 9000, 10_100, 70_000]),
    length_delta=st.sampled_from([0, 0, -1, 1, 1 << 20, 1 << 30]),
    data=st.integers(0, 200),
)
@fuzz_settings(max_examples=150)
def test_fuzz_npy_headers(tmp_path, header, version, pad, length_delta, data):
    from edgekit.formats.npz import load_npz, npz_headers

    if version == 1 and pad > 60_000:
        pad = 60_000
    text = (repr(header) + " " * pad + "\n").encode("latin1", "replace")
    length = max(len(text) + length_delta, 0)
    if version == 1:
        length = min(length, 0xFFFF)
    size = 2 if version == 1 else 4
    raw = b"\x93NUMPY" + bytes([version, 0]) + length.to_bytes(size, "little") + text
    path = tmp_path / "h.npz"
    path.write_bytes(_zip({"x.npy": raw + bytes(data)}))
    start = _peak_mb()
    for read in (npz_headers, load_npz):
        try:
            result = read(path)
        except EdgekitError as err:
            assert "\n" not in str(err)
            continue
        if read is load_npz:
            assert isinstance(result["x"], np.ndarray) and result["x"].dtype.kind != "O"
    count("npy headers")
    assert _peak_mb() - start < GROWTH_LIMIT_MB
