"""Fuzzing the sizes in the configs of weighted Keras layers (issue 13): a seed with a
convolution, a recurrent layer, attention, an EinsumDense, normalization and an embedding,
whose ``kernel_size``, ``filters``, ``units``, ``axis``, ``lora_rank``, ``output_shape``,
``equation``, build shapes ... are replaced with hostile values. Sizing the config never
raises; loading the file either works or is refused in one line; and the process's peak
memory (``ru_maxrss``) grows by less than 500 MB over the whole target.
"""

from __future__ import annotations

import io
import json
import resource
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgekit.errors import EdgekitError
from tests.fuzz.conftest import count, fuzz_settings

GROWTH_LIMIT_MB = 500
LAYERS = ("conv", "lstm", "mha", "einsum", "bn", "emb", "dense")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture(scope="module")
def seed(tmp_path_factory) -> dict[str, bytes]:
    import keras

    L = keras.layers
    inputs = keras.Input((6, 4), name="x")
    h = L.Conv1D(4, 3, padding="same", name="conv")(inputs)
    h = L.LSTM(4, return_sequences=True, name="lstm")(h)
    h = L.MultiHeadAttention(2, 2, name="mha")(h, h)
    h = L.EinsumDense("abc,cd->abd", output_shape=(6, 4), bias_axes="d", name="einsum")(h)
    h = L.BatchNormalization(name="bn")(h)
    tokens = keras.Input((3,), name="t")
    e = L.Flatten(name="f2")(L.Embedding(10, 2, name="emb")(tokens))
    h = L.Concatenate(name="cat")([L.Flatten(name="f1")(h), e])
    outputs = L.Dense(3, name="dense")(h)
    path = tmp_path_factory.mktemp("layers-seed") / "seed.keras"
    keras.Model([inputs, tokens], outputs).save(path)
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


NUMBERS = st.one_of(
    st.sampled_from([0, 1, 2, -1, 3, 7, 2**31, 10**4, 10**5, 10**9, 2**63, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.booleans(),
)
VALUES = st.one_of(
    NUMBERS,
    st.lists(NUMBERS, max_size=4),
    st.sampled_from(["ab,bc->ac", "abc,cde->abde", "...b,bc->...c", "a,b->", "", "/dev/zero",
                     "channels_first", "int4_from_float32", "float64"]),
    st.dictionaries(st.sampled_from(["query_shape", "value_shape", "input_shape"]),
                    st.lists(NUMBERS, max_size=4), max_size=2),
)  # fmt: skip
KEYS = ("kernel_size", "filters", "units", "axis", "lora_rank", "output_shape", "equation",
        "num_heads", "key_dim", "value_dim", "input_dim", "output_dim", "groups", "bias_axes",
        "depth_multiplier", "data_format", "dtype", "vocabulary", "<build>", "<class>")  # fmt: skip
CLASSES = ("Conv2D", "Conv3D", "ConvLSTM2D", "GroupQueryAttention", "STFTSpectrogram",
           "SeparableConv1D", "Dense", "HugeLayer", "StringLookup")  # fmt: skip
EDITS = st.lists(
    st.tuples(st.sampled_from(LAYERS), st.sampled_from(KEYS),
              st.one_of(VALUES, st.sampled_from(CLASSES))),
    min_size=1, max_size=4,
)  # fmt: skip


def _edit(config: dict, edits) -> dict:
    layers = {layer.get("name"): layer for layer in config["config"]["layers"]}
    for name, key, value in edits:
        layer = layers.get(name)
        if layer is None:
            continue
        if key == "<class>":
            layer["class_name"] = value
        elif key == "<build>":
            layer["build_config"] = value if isinstance(value, dict) else {"input_shape": value}
        else:
            layer["config"][key] = value
    return config


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


@given(edits=EDITS)
@fuzz_settings(max_examples=80)
def test_fuzz_weighted_layer_configs(seed, tmp_path, edits):
    from edgekit.formats.keras_config import declared
    from edgekit.formats.keras_file import load_keras_model

    start = _peak_mb()
    config = _edit(json.loads(seed["config.json"]), edits)
    found = declared(config)  # never raises, whatever the config holds
    assert found.weights >= 0 and found.min_bytes >= 0
    path: Path = tmp_path / "f.keras"
    path.write_bytes(_zip({**seed, "config.json": json.dumps(config).encode()}))
    try:
        load_keras_model(path)
    except EdgekitError as err:
        assert "\n" not in str(err), str(err)
    count("keras weighted layer configs")
    assert _peak_mb() - start < GROWTH_LIMIT_MB
