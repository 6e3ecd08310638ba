"""More models as users write them, exported with their own data: token ids an embedding has
no row for, subclassed models, the int8 C's refusals in Keras terms, ``--target`` with an
``.npz``, the source file named, Keras output names and a fixed batch size kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import cli, write_csv

EMB_RANGE = "and layer 'emb' (Embedding) takes ids 0..9 (input_dim 10)"


@pytest.fixture(scope="module")
def emb(tmp_path_factory) -> Path:
    """An Embedding of 10 rows over 6 token ids, pooled, exported with good ids; and the
    same data with an id past the end and a negative one, as npz and CSV."""
    import keras
    from keras import layers as L

    base = tmp_path_factory.mktemp("emb")
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 10, size=(120, 6))
    y = (ids[:, 0] > 4).astype(np.int64)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6,), dtype="int32"),
        L.Embedding(10, 4, name="emb"),
        L.GlobalAveragePooling1D(name="pool"),
        L.Dense(2, activation="softmax", name="probs"),
    ])  # fmt: skip
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(ids, y, epochs=2, verbose=0)
    model.save(base / "emb.keras")
    np.savez(base / "good.npz", x=ids, y=y)
    big, neg = ids.copy(), ids.copy()
    big[3, 2], big[5, 1] = 50, 10
    neg[7, 0] = -1
    np.savez(base / "big.npz", x=big, y=y)
    np.savez(base / "neg.npz", x=neg, y=y)
    header = [f"t{i}" for i in range(6)] + ["label"]
    write_csv(base / "big.csv", header, [[*r, int(c)] for r, c in zip(big, y, strict=True)])
    code, out, err = cli(
        "export", str(base / "emb.keras"), "--data", str(base / "good.npz"),
        "--quantize", "float32,int8", "--onnx", "--out", str(base / "e"),
    )  # fmt: skip
    assert code == 0, out + err
    return base


BAD_IDS = [
    ("big.npz", f"x[3, 2] is id 50 (1 more id(s) out of range), {EMB_RANGE}"),
    ("neg.npz", f"x[7, 0] is id -1, {EMB_RANGE}"),
    ("big.csv", f"column 't2' of sample 3 holds id 50 (1 more id(s) out of range), {EMB_RANGE}"),
]


@pytest.mark.parametrize(("name", "message"), BAD_IDS, ids=["past-end", "negative", "csv"])
def test_ids_an_embedding_has_no_row_for_are_refused_by_export(emb, tmp_path, name, message):
    code, _out, err = cli(
        "export", str(emb / "emb.keras"), "--data", str(emb / name), "--quantize", "float32",
        "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert (code, err) == (2, f"edgekit: error: --data {emb / name}: {message}\n")
    assert not (tmp_path / "e").exists()


def test_bad_calibration_ids_are_refused_naming_the_file(emb, tmp_path):
    code, _out, err = cli(
        "export", str(emb / "emb.keras"), "--data", str(emb / "good.npz"), "--calibration",
        str(emb / "neg.npz"), "--quantize", "int8", "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert (code, err) == (
        2, f"edgekit: error: --calibration {emb / 'neg.npz'}: x[7, 0] is id -1, {EMB_RANGE}\n"
    )  # fmt: skip


def test_the_manifest_records_the_embedding_rows(emb):
    m = json.loads((emb / "e" / "manifest.json").read_text())
    (record,) = m["ids"]
    assert {k: record[k] for k in ("input", "layer", "input_dim")} == {
        "input": 0, "layer": "emb", "input_dim": 10,
    }  # fmt: skip


@pytest.mark.parametrize(("name", "message"), BAD_IDS, ids=["past-end", "negative", "csv"])
@pytest.mark.parametrize("artifact", ["model.float32.tflite", "model.int8.tflite",
                                      "model.float32.onnx"])  # fmt: skip
def test_predict_refuses_the_same_ids(emb, name, message, artifact):
    code, _out, err = cli("predict", str(emb / "e" / artifact), str(emb / name))
    assert (code, err) == (2, f"edgekit: error: {emb / name}: {message}\n")


@pytest.mark.parametrize(("name", "message"), BAD_IDS, ids=["past-end", "negative", "csv"])
def test_bench_refuses_the_same_ids_before_measuring(emb, name, message):
    code, out, err = cli("bench", str(emb / "e"), "--data", str(emb / name), "--runs", "2")
    assert (code, out, err) == (2, "", f"edgekit: error: {emb / name}: {message}\n")


def test_good_ids_still_predict_and_bench(emb):
    code, out, err = cli("predict", str(emb / "e" / "model.int8.tflite"), str(emb / "good.npz"),
                         "--json")  # fmt: skip
    assert code == 0, err
    assert len(json.loads(out)["predictions"]) == 120
    code, out, err = cli("bench", str(emb / "e"), "--data", str(emb / "good.npz"), "--runs", "2",
                         "--warmup", "1", "--json", "-")  # fmt: skip
    assert code == 0, err
    rows = json.loads(out)["results"]
    assert [r["status"] for r in rows] == ["ok"] * 3


SUPPORTED = "InputLayer, Flatten, Reshape, Permute, Normalization, "


def _subclassed(keras, register: bool):
    from keras import layers as L

    class Classifier(keras.Model):  # what the Keras guide's "subclassing" section writes
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hidden = L.Dense(8, activation="relu")
            self.out = L.Dense(2, activation="softmax")

        def call(self, x):
            return self.out(self.hidden(x))

    if register:
        Classifier = keras.saving.register_keras_serializable("edgekit_test")(Classifier)
    keras.utils.set_random_seed(0)
    model = Classifier()
    model(np.zeros((1, 4), np.float32))
    return model


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_subclassed_model_is_refused_naming_what_is_supported(tmp_path, suffix):
    import keras

    path = tmp_path / f"sub{suffix}"
    _subclassed(keras, register=False).save(path)
    code, _out, err = cli("export", str(path), "--out", str(tmp_path / "e"))
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(
        f"edgekit: error: {path}: Classifier is a subclassed model with its own call(); "
        f"edgekit exports Sequential and Functional models of the supported layers: {SUPPORTED}"
    )
    keras_says = "Could not locate class 'Classifier'" if suffix == ".keras" else (
        "Unknown layer: 'Classifier'")  # fmt: skip
    assert err.endswith(
        "TFSMLayer (a SavedModel of it, model.export(DIR), exports too); Keras cannot load it "
        f"without its Python class ({keras_says})\n"
    )


def test_a_subclassed_model_whose_class_is_known_is_refused_the_same_way(tmp_path):
    import keras

    path = tmp_path / "known.keras"
    _subclassed(keras, register=True).save(path)  # loads: its class is registered here
    code, _out, err = cli("export", str(path), "--out", str(tmp_path / "e"))
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"edgekit: error: {path}: Classifier is a subclassed model with its ")
    assert err.endswith("TFSMLayer (a SavedModel of it, model.export(DIR), exports too)\n")


def test_a_subclassed_model_exports_as_a_savedmodel(tmp_path):
    import keras

    model = _subclassed(keras, register=False)
    model.export(str(tmp_path / "saved"), verbose=False)
    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    code, out, err = cli(
        "export", str(tmp_path / "saved"), "--data", str(tmp_path / "x.npz"), "--quantize",
        "float32", "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 0, out + err
    m = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert m["artifacts"][0]["validation"]["max_abs_diff"] <= 1e-5


def test_a_custom_layer_is_refused_by_name(tmp_path):
    import keras
    from keras import layers as L

    class Twice(L.Layer):
        def call(self, x):
            return 2 * x

    inp = keras.Input((4,))
    model = keras.Model(inp, L.Dense(2, name="probs")(Twice(name="twice")(inp)))
    model.save(tmp_path / "custom.keras")
    code, _out, err = cli("export", str(tmp_path / "custom.keras"), "--out", str(tmp_path / "e"))
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(
        f"edgekit: error: {tmp_path / 'custom.keras'}: layer 'twice' (Twice) is a custom "
        f"layer, which edgekit does not export; supported layers: {SUPPORTED}"
    )
    assert err.endswith("TFSMLayer; Keras cannot load it without its Python class\n")


INT8_SUPPORTED = (
    "supported: Dense, Normalization, Rescaling, BatchNormalization, Flatten, Reshape, "
    "Softmax, elementwise activations (Activation, ReLU, LeakyReLU, ELU) and training-only "
    "layers (Dropout, GaussianNoise, ...) (or use --c-source float32)"
)


@pytest.mark.parametrize(
    ("layer", "kind", "op"),
    [("swap", "Permute", "TRANSPOSE"), ("pool", "GlobalAveragePooling1D", "MEAN")],
)
def test_int8_c_refusals_name_the_keras_layer(tmp_path, layer, kind, op):
    """The int8 C has no TRANSPOSE (Permute) and no MEAN (GlobalAveragePooling1D,
    LayerNormalization); the refusal names the layer the user wrote, and without the model
    (``to_c_source`` on a bare ``.tflite``) the layer's name and what the op comes from."""
    import keras
    from keras import layers as L

    from edgekit.errors import EdgekitError
    from edgekit.exporters.c_source import to_c_source

    keras.utils.set_random_seed(0)
    middle = L.Permute((2, 1), name="swap") if kind == "Permute" else (
        L.GlobalAveragePooling1D(name="pool"))  # fmt: skip
    model = keras.Sequential([keras.Input((4, 3)), middle, L.Flatten(name="flat"),
                              L.Dense(2, activation="softmax", name="probs")])  # fmt: skip
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "x.npz", x=np.random.default_rng(0).normal(size=(32, 4, 3)))
    code, out, err = cli(
        "export", str(tmp_path / "m.keras"), "--data", str(tmp_path / "x.npz"),
        "--c-source", "int8", "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 1, out + err
    tflite = tmp_path / "e" / "model.int8.tflite"
    assert (
        f"c-source FAILED: {tflite}: layer {layer!r} ({kind}, TFLite op {op}) is not supported "
        f"by --c-source int8; {INT8_SUPPORTED}\n"
    ) in out
    with pytest.raises(EdgekitError) as refused:
        to_c_source(None, tmp_path / "c", variant="int8", tflite=tflite)
    guess = {"TRANSPOSE": "Permute", "MEAN": "GlobalAveragePooling1D or LayerNormalization"}
    assert str(refused.value) == (
        f"{tflite}: layer {layer!r} ({guess[op]}, TFLite op {op}) is not supported by "
        f"--c-source int8; {INT8_SUPPORTED}"
    )


def test_target_with_an_npz_is_refused(emb, tmp_path):
    """``--target`` names a CSV's label column (CONTRACT.md); with a ``.npz``, whose labels
    are ``y``, it was silently ignored."""
    code, _, err = cli(
        "export", str(emb / "emb.keras"), "--data", str(emb / "good.npz"), "--target", "label",
        "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert (code, err) == (
        2,
        f"edgekit: error: --target names the label column of a .csv --data; --data "
        f"{emb / 'good.npz'} is not one (a .npz holds its labels as the array 'y')\n",
    )
    assert not (tmp_path / "e").exists()
    code, _out, err = cli(
        "export", str(emb / "emb.keras"), "--data", str(emb / "big.csv"), "--target", "t0",
        "--out", str(tmp_path / "e"),
    )  # fmt: skip
    # with a CSV it chooses the label: t0 is, and 'label' becomes a feature column
    assert (code, err) == (
        2,
        f"edgekit: error: --data {emb / 'big.csv'}: column 't2' of sample 3 holds id 50 (1 more "
        f"id(s) out of range), {EMB_RANGE}\n",
    )


def _flat_model(tmp_path: Path):
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), L.Dense(8, activation="relu", name="hidden"),
                              L.Dense(2, activation="softmax", name="probs")])  # fmt: skip
    np.savez(tmp_path / "x.npz", x=np.random.default_rng(0).normal(size=(40, 5)))
    return model


def test_the_c_summary_names_the_real_source_file(tmp_path):
    model = _flat_model(tmp_path)
    model.save(tmp_path / "tutorial.h5")
    code, out, err = cli(
        "export", str(tmp_path / "tutorial.h5"), "--data", str(tmp_path / "x.npz"),
        "--c-source", "float32", "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 0, out + err
    assert "C source (float32, from tutorial.h5): edgekit_model.h, edgekit_model.c; " in out
    m = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert m["c_source"]["from"] == "tutorial.h5" and m["c_source"]["validation"]["passed"]
    assert " * Model: tutorial.h5." in (tmp_path / "e" / "edgekit_model.h").read_text()


def test_float32_c_of_a_savedmodel_says_what_to_export_instead(tmp_path):
    model = _flat_model(tmp_path)
    model.export(str(tmp_path / "saved"), verbose=False)
    code, out, err = cli(
        "export", str(tmp_path / "saved"), "--data", str(tmp_path / "x.npz"),
        "--c-source", "float32", "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 1, out + err
    assert (
        "c-source FAILED: --c-source float32 is written from Keras layers, and a SavedModel "
        "holds a TensorFlow graph; export the model's .keras or .h5 file, or use --c-source int8\n"
    ) in out
    code, out, err = cli(
        "export", str(tmp_path / "saved"), "--data", str(tmp_path / "x.npz"),
        "--c-source", "int8", "--out", str(tmp_path / "e8"),
    )  # fmt: skip
    assert code == 0, out + err
    assert (
        "C source (int8, from model.int8.tflite): edgekit_model.h, edgekit_model.c; 80/80 " in out
    )


def test_tflite_of_several_outputs_keeps_the_keras_output_names(tmp_path):
    """The manifest and the ``.tflite`` signature name outputs as Keras does (as ONNX
    does), not ``output_0``; the signature runner returns them by those names."""
    import keras
    from keras import layers as L

    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(64, 3)).astype(np.float32), rng.normal(size=(64, 2)).astype(
        np.float32)  # fmt: skip
    keras.utils.set_random_seed(0)
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    h = L.Dense(8, activation="relu", name="h")(L.Concatenate(name="ab")([a, b]))
    model = keras.Model(
        [a, b], [L.Dense(3, activation="softmax", name="cls")(h), L.Dense(1, name="val")(h)]
    )
    model.save(tmp_path / "two.keras")
    np.savez(tmp_path / "two.npz", a=xa, b=xb)
    code, out, err = cli(
        "export", str(tmp_path / "two.keras"), "--data", str(tmp_path / "two.npz"),
        "--quantize", "float32,int8", "--max-accuracy-drop", "100", "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 0, out + err
    m = json.loads((tmp_path / "e" / "manifest.json").read_text())
    for art in m["artifacts"]:
        assert [t["name"] for t in art["outputs"]] == ["cls", "val"], art["variant"]
        assert [t["shape"] for t in art["outputs"]] == [[-1, 3], [-1, 1]]
    assert m["artifacts"][0]["validation"]["max_abs_diff"] <= 1e-5
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(str(tmp_path / "e" / "model.float32.tflite")).get_signature_runner()
    got = runner(a=xa[:1], b=xb[:1])
    want = model.predict([xa[:1], xb[:1]], verbose=0)
    assert set(got) == {"cls", "val"}
    assert np.abs(got["cls"] - want[0]).max() <= 1e-5
    assert np.abs(got["val"] - want[1]).max() <= 1e-5


def test_a_fixed_batch_size_is_recorded_and_bench_measures_at_it(tmp_path):
    """``keras.Input((8,), batch_size=4)``: the ``.tflite`` keeps the fixed batch and its
    manifest entry says ``fixed_batch`` (as ``--mcu``'s do); ONNX takes any batch. bench's
    default ``--batch 1`` measures the ``.tflite`` at its batch of 4, and predict feeds it
    in chunks of 4 (the last one padded)."""
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,), batch_size=4), L.Dense(8, activation="relu",
                              name="hidden"), L.Dense(2, activation="softmax", name="probs")])  # fmt: skip
    model.save(tmp_path / "fixed.keras")
    x = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    code, out, err = cli(
        "export", str(tmp_path / "fixed.keras"), "--data", str(tmp_path / "x.npz"),
        "--quantize", "float32,dynamic", "--onnx", "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 0, out + err
    m = json.loads((tmp_path / "e" / "manifest.json").read_text())
    got = {a["variant"]: (a.get("fixed_batch"), a["inputs"][0]["shape"]) for a in m["artifacts"]}
    assert got == {"float32": (4, [4, 8]), "dynamic": (4, [4, 8]), "onnx-float32": (None, [-1, 8])}
    code, out, err = cli("bench", str(tmp_path / "e"), "--runs", "2", "--warmup", "1",
                         "--json", "-")  # fmt: skip
    assert code == 0, err
    rows = {r["variant"]: (r["batch"], r["status"]) for r in json.loads(out)["results"]}
    assert rows == {"float32": (4, "ok"), "dynamic": (4, "ok"), "onnx-float32": (1, "ok")}
    code, out, err = cli("predict", str(tmp_path / "e" / "model.float32.tflite"),
                         str(tmp_path / "x.npz"), "--json")  # fmt: skip
    assert code == 0, err
    scores = np.asarray([p["scores"] for p in json.loads(out)["predictions"]])
    assert scores.shape == (30, 2)
    assert np.abs(scores - model.predict(x, batch_size=4, verbose=0)).max() <= 1e-4
