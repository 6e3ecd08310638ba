"""Models as users write them, exported with their own data (``--data``/``--target``/
``--calibration``), each variant standing alone, merged exports and ``--mcu``.

One tutorial-style model is trained per module on tabular features spanning 1e-2 to 1e3;
its export runs once and the tests read it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import cli, write_csv

FEATURES = ["tiny", "big", "mid", "sym", "skew", "wide"]


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.stack(
        [
            rng.uniform(0, 0.01, n),  # 1e-2
            rng.uniform(0, 1000, n),  # 1e3
            rng.normal(5, 2, n),
            rng.uniform(-1, 1, n),
            rng.exponential(3, n),
            rng.normal(0, 50, n),
        ],
        axis=1,
    ).astype(np.float32)
    x = np.vectorize(lambda v: float(f"{v:.6g}"))(x).astype(np.float32)  # as the CSV has it
    score = x[:, 0] * 100 + x[:, 1] / 1000 - 0.3 * x[:, 3] + 0.1 * x[:, 4]
    return x, (score > 1.2).astype(np.int64)


def _csv(path: Path, x: np.ndarray, y: np.ndarray | None) -> Path:
    header = FEATURES + (["label"] if y is not None else [])
    rows = [[*(f"{v:.6g}" for v in xi), *([int(yi)] if y is not None else [])]
            for xi, yi in zip(x, y if y is not None else [0] * len(x), strict=True)]  # fmt: skip
    return write_csv(path, header, rows)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    """A Sequential model written the way tutorials write it, with every layer kind export
    supports on flat features, trained briefly; its data as CSV and npz."""
    import keras
    from keras import layers as L

    base = tmp_path_factory.mktemp("zoo")
    x, y = _data(600, 0)
    keras.utils.set_random_seed(0)
    norm = L.Normalization()
    norm.adapt(x)
    model = keras.Sequential([
        keras.Input((6,)),
        norm,
        L.GaussianNoise(0.05),
        L.Dense(24),
        L.BatchNormalization(),
        L.LeakyReLU(0.1),
        L.Dropout(0.1),
        L.Dense(16),
        L.ELU(),
        L.LayerNormalization(),
        L.Dense(12),
        L.PReLU(),
        L.ActivityRegularization(1e-4),
        L.GaussianDropout(0.05),
        L.Dense(2, activation="softmax"),
    ])  # fmt: skip
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=25, batch_size=32, verbose=0)
    model.save(base / "tutorial.keras")
    xt, yt = _data(300, 1)
    _csv(base / "test.csv", xt, yt)
    np.savez(base / "test.npz", x=xt, y=yt)
    np.savez(base / "calib.npz", x=_data(200, 2)[0])
    return base


@pytest.fixture(scope="module")
def zoo_export(zoo) -> dict:
    code, out, err = cli(
        "export", str(zoo / "tutorial.keras"), "--data", str(zoo / "test.csv"),
        "--target", "label", "--quantize", "float32,int8", "--onnx",
        "--c-source", "float32", "--out", str(zoo / "export"),
    )  # fmt: skip
    assert code == 0, out + err
    manifest = json.loads((zoo / "export" / "manifest.json").read_text())
    return {"out": out, "err": err, "manifest": manifest}


def _art(manifest: dict, variant: str) -> dict:
    return next(a for a in manifest["artifacts"] if a["variant"] == variant)


def test_every_layer_kind_exports_with_its_own_csv_data(zoo_export):
    m = zoo_export["manifest"]
    assert m["features"] == FEATURES and m["target"] == "label"
    assert m["validation"]["labelled"] is True and m["validation"]["samples"] == 300
    assert m["validation"]["on"] == "300 labelled test samples"
    for variant in ("float32", "onnx-float32"):
        assert _art(m, variant)["validation"]["max_abs_diff"] <= 1e-5
    assert m["validation"]["reference_metrics"]["accuracy"] > 0.9
    assert _art(m, "int8")["validation"]["accuracy_drop"] <= 1.0
    c = m["c_source"]
    assert c["validation"]["passed"] is True and c["validation"]["max_abs_diff"] <= 1e-5
    assert "validated on: 300 labelled test samples" in zoo_export["out"]


def test_export_prints_one_progress_line_per_variant_on_stderr(zoo_export):
    import re

    lines = [line for line in zoo_export["err"].splitlines() if line.startswith("[")]
    pattern = r"\[(\d)/4\] (\S+) (\S+) .*: passed \(\d+\.\d s\)"
    found = [re.fullmatch(pattern, line) for line in lines]
    assert all(found), lines
    assert [(m[1], m[2], m[3]) for m in found if m] == [
        ("1", "float32", "model.float32.tflite"), ("2", "int8", "model.int8.tflite"),
        ("3", "onnx-float32", "model.float32.onnx"), ("4", "c-source", "edgekit_model.h,"),
    ]  # fmt: skip
    assert "KB: passed" in lines[0]


def test_the_c_header_names_the_features_in_input_order(zoo, zoo_export):
    header = (zoo / "export" / "edgekit_model.h").read_text()
    assert "extern const char *const edgekit_feature_names[EDGEKIT_INPUT_SIZE];" in header
    source = (zoo / "export" / "edgekit_model.c").read_text()
    assert 'const char *const edgekit_feature_names[EDGEKIT_INPUT_SIZE] = {\n    "tiny",' in source
    digests = zoo_export["manifest"]["c_source"]["sha256"]
    assert set(digests) == {"edgekit_model.h", "edgekit_model.c"}


def test_export_into_an_existing_export_adds_and_keeps(zoo, zoo_export, tmp_path):
    out = tmp_path / "export"
    shutil.copytree(zoo / "export", out)
    before = (out / "model.int8.tflite").read_bytes()
    code, text, err = cli(
        "export", str(zoo / "tutorial.keras"), "--data", str(zoo / "test.csv"), "--target",
        "label", "--onnx-quantize", "dynamic", "--quantize", "float16", "--c-array",
        "--out", str(out),
    )  # fmt: skip
    assert code == 0, text + err
    m = json.loads((out / "manifest.json").read_text())
    assert [a["variant"] for a in m["artifacts"]] == [
        "float32", "float16", "int8", "onnx-float32", "onnx-dynamic",
    ]  # fmt: skip
    assert (out / "model.int8.tflite").read_bytes() == before
    assert "kept from the existing export: model.float32.tflite" in text
    assert m["c_source"]["files"] == ["edgekit_model.h", "edgekit_model.c"]  # kept
    # --c-array wrote arrays for the new and the kept .tflite files, listed in the manifest
    for variant in ("float16", "float32", "int8"):
        files = _art(m, variant)["c_array"]
        assert files == [f"model_{variant}_data.h", f"model_{variant}_data.c"]
        assert all((out / f).is_file() for f in files)

    code, _, err = cli(
        "export", str(zoo / "tutorial.keras"), "--data", str(zoo / "test.csv"), "--target",
        "label", "--quantize", "int8", "--out", str(out),
    )  # fmt: skip
    assert code == 2
    assert err.strip() == (
        f"edgekit: error: {out} already holds int8 (model.int8.tflite); pass --force to "
        "replace it (the other artifacts are kept)"
    )
    code, text, err = cli(
        "export", str(zoo / "tutorial.keras"), "--data", str(zoo / "test.csv"), "--target",
        "label", "--quantize", "int8", "--out", str(out), "--force",
    )  # fmt: skip
    assert code == 0, err
    assert "replaced: model.int8.tflite, model_int8_data.h, model_int8_data.c" in text
    assert len(json.loads((out / "manifest.json").read_text())["artifacts"]) == 5
    assert not (out / "model_int8_data.h").exists()  # the new int8 has no C array asked for


def test_c_source_or_c_arrays_alone_are_added_to_an_existing_export(zoo, zoo_export, tmp_path):
    """``--c-source`` or ``--c-array`` with no variant flag reuse the export's float32 and int8
    (the README's "adds the C and keeps the .tflite files"), no --force needed."""
    out = tmp_path / "export"
    shutil.copytree(zoo / "export", out)
    m = json.loads((out / "manifest.json").read_text())
    for name in m.pop("c_source")["files"]:
        (out / name).unlink()
    (out / "manifest.json").write_text(json.dumps(m))
    tflite = {p.name: p.read_bytes() for p in out.glob("*.tflite")}
    args = ("export", str(zoo / "tutorial.keras"), "--data", str(zoo / "test.csv"),
            "--target", "label", "--out", str(out))  # fmt: skip
    code, text, err = cli(*args, "--c-source", "int8")
    assert code == 1  # the int8 C has no LayerNormalization; the int8 .tflite is reused
    assert "kept from the existing export: model.float32.tflite, model.int8.tflite" in text
    assert f"c-source FAILED: {out}/model.int8.tflite: layer 'layer_normalization" in text
    assert "(LayerNormalization, TFLite op MEAN) is not supported by --c-source int8" in text
    assert "replaced:" not in text and ".tmp" not in text
    code, text, err = cli(*args, "--c-source", "float32")
    assert code == 0, text + err
    assert "kept from the existing export: model.float32.tflite, model.int8.tflite" in text
    assert "replaced:" not in text
    m = json.loads((out / "manifest.json").read_text())
    assert m["c_source"]["variant"] == "float32" and m["c_source"]["validation"]["passed"]
    code, text, err = cli(*args, "--c-array")
    assert code == 0, text + err
    assert "replaced:" not in text
    m = json.loads((out / "manifest.json").read_text())
    assert [a["variant"] for a in m["artifacts"]] == ["float32", "int8", "onnx-float32"]
    assert _art(m, "int8")["c_array"] == ["model_int8_data.h", "model_int8_data.c"]
    assert m["c_source"]["variant"] == "float32"  # kept
    assert {p.name: p.read_bytes() for p in out.glob("*.tflite")} == tflite


def test_other_data_or_model_needs_force_to_replace_all(zoo, zoo_export, tmp_path):
    out = tmp_path / "export"
    shutil.copytree(zoo / "export", out)
    code, _, err = cli(
        "export", str(zoo / "tutorial.keras"), "--data", str(zoo / "test.npz"),
        "--quantize", "float16", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err  # the same samples, as npz: the same validation data
    x, y = _data(50, 9)
    np.savez(tmp_path / "other.npz", x=x, y=y)
    code, _, err = cli(
        "export", str(zoo / "tutorial.keras"), "--data", str(tmp_path / "other.npz"),
        "--quantize", "dynamic", "--out", str(out),
    )  # fmt: skip
    assert code == 2
    assert err.strip() == (
        f"edgekit: error: {out} holds an export of other validation data; pass --force to "
        "replace it (4 artifact(s)) or choose another --out"
    )


def test_calibration_only_validates_float_parity_and_judges_nothing_on_noise(zoo, tmp_path):
    code, out, err = cli(
        "export", str(zoo / "tutorial.keras"), "--calibration", str(zoo / "calib.npz"),
        "--quantize", "float32,int8", "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 0, out + err
    m = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert _art(m, "float32")["validation"]["passed"] is True
    int8 = _art(m, "int8")["validation"]
    assert int8["passed"] is None and int8["accuracy_drop"] is None
    assert int8["criterion"] == "not validated: no test data (pass --data FILE)"
    assert "not judged" in out
    assert "validated on: 256 seeded random inputs (no test data): float parity only" in out


def test_unlabelled_data_judges_agreement_and_says_so(zoo, tmp_path):
    x, _ = _data(120, 3)
    _csv(tmp_path / "x.csv", x, None)
    code, out, err = cli(
        "export", str(zoo / "tutorial.keras"), "--data", str(tmp_path / "x.csv"),
        "--quantize", "int8", "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 0, out + err
    m = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert m["validation"]["labelled"] is False and m["features"] == FEATURES
    assert "120 test samples without labels: agreement with the Keras model" in out
    assert _art(m, "int8")["validation"]["accuracy_drop"] <= 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "label"], "--target names a column of --data; pass --data FILE.csv"),
        (
            ["--quantize", "int8"],
            "int8 needs calibration data, and {model} has none; pass --calibration FILE (or "
            "--data FILE, whose inputs calibrate too)",
        ),
        (
            ["--data", "{zoo}/test.csv", "--target", "nope"],
            "--data {zoo}/test.csv: no column 'nope' (the label); columns are tiny, big, mid, "
            "sym, skew, wide, label",
        ),
        (["--data", "{zoo}/missing.csv"], "--data {zoo}/missing.csv: no such file"),
        (
            ["--data", "{zoo}/tutorial.keras"],
            "--data {zoo}/tutorial.keras: expected a .npz or .csv file",
        ),
        (["--onnx", "--mcu"], "--mcu applies to TFLite variants; add --tflite or --quantize"),
        (
            ["--quantize", "auto", "--calibration", "{zoo}/calib.npz"],
            "--quantize auto judges accuracy, and there is no test data; pass --data FILE",
        ),
    ],
    ids=[
        "target-without-data",
        "no-calibration",
        "no-target-column",
        "missing-data",
        "data-not-a-table",
        "mcu-without-tflite",
        "auto-without-data",
    ],
)
def test_data_flag_refusals_are_one_line(zoo, tmp_path, args, message):
    model = zoo / "tutorial.keras"
    args = [a.format(zoo=zoo) for a in args]
    code, out, err = cli("export", str(model), *args, "--out", str(tmp_path / "e"))
    assert code == 2, out + err
    assert err.strip() == "edgekit: error: " + message.format(zoo=zoo, model=model)
    assert not (tmp_path / "e").exists()


def _small(tmp_path: Path, name: str, build) -> Path:
    import keras

    keras.utils.set_random_seed(0)
    model = build(keras, keras.layers)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    return path


def test_mcu_export_has_a_fixed_batch_and_no_shape_ops(tmp_path):
    model = _small(tmp_path, "img", lambda k, L: k.Sequential(
        [k.Input((8, 8)), L.Flatten(), L.Dense(16, activation="relu"),
         L.Dense(3, activation="softmax")]))  # fmt: skip
    x = np.random.default_rng(0).normal(size=(64, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    for flag, out in (([], "plain"), (["--mcu"], "mcu")):
        code, text, err = cli(
            "export", str(model), "--data", str(tmp_path / "x.npz"), "--quantize",
            "float32,int8", "--c-array", *flag, "--out", str(tmp_path / out),
            *(["--c-source", "int8"] if flag else []),
        )  # fmt: skip
        assert code == 0, text + err
    plain = json.loads((tmp_path / "plain" / "manifest.json").read_text())
    mcu = json.loads((tmp_path / "mcu" / "manifest.json").read_text())
    assert {"SHAPE", "STRIDED_SLICE", "PACK"} <= set(_art(plain, "int8")["ops"])
    for variant in ("float32", "int8"):
        art = _art(mcu, variant)
        assert art["ops"] == ["RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
        assert art["fixed_batch"] == 1 and art["inputs"][0]["shape"] == [1, 8, 8]
        assert art["validation"]["passed"] is True
    assert _art(mcu, "float32")["validation"]["max_abs_diff"] <= 1e-5
    # the C is compared with LiteRT at the model's fixed batch (all 64 samples in one call
    # failed: "num_input_elements != num_output_elements")
    vs = mcu["c_source"]["validation"]["vs"]
    for runtime in ("litert_builtin", "litert_reference", "xnnpack"):
        assert vs[runtime]["outputs"] == 64 * 3 and vs[runtime]["exact"] >= 64 * 3 - 3, vs


def test_each_variant_stands_alone(tmp_path):
    """A fixed batch size, gelu (whose ONNX graph had an Erfc node) and ELU (no int16x8
    kernel): every variant the ops support is written; int16x8 is skipped under ``all``
    and fails the export when asked for by name, keeping the others."""
    model = _small(tmp_path, "odd", lambda k, L: k.Sequential(
        [k.Input((6,), batch_size=1), L.Dense(8, activation="gelu"), L.Dense(8), L.ELU(),
         L.Dense(1)]))  # fmt: skip
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(64, 6)).astype(np.float32),
             y=rng.normal(size=64).astype(np.float32))  # fmt: skip
    code, out, err = cli(
        "export", str(model), "--data", str(tmp_path / "d.npz"), "--quantize", "all",
        "--onnx", "--out", str(tmp_path / "all"),
    )  # fmt: skip
    assert code == 0, out + err
    m = json.loads((tmp_path / "all" / "manifest.json").read_text())
    assert [a["variant"] for a in m["artifacts"]] == [
        "float32", "float16", "dynamic", "int8", "onnx-float32"]  # fmt: skip
    assert _art(m, "onnx-float32")["validation"]["max_abs_diff"] <= 1e-5
    assert _art(m, "float32")["validation"]["max_abs_diff"] <= 1e-5
    (problem,) = m["problems"]
    assert problem["variant"] == "int16x8" and problem["skipped"] is True
    assert "not yet supported for op: 'ELU'" in problem["reason"]
    assert "int16x8 skipped: TFLite conversion (int16x8) failed" in out
    assert not (tmp_path / "all" / "model.int16x8.tflite").exists()

    code, out, err = cli(
        "export", str(model), "--data", str(tmp_path / "d.npz"), "--quantize",
        "float32,int16x8", "--out", str(tmp_path / "named"),
    )  # fmt: skip
    assert code == 1
    lines = err.strip().splitlines()
    assert lines[-1] == "edgekit: error: validation failed for int16x8"
    assert lines[-2].startswith("[2/2] int16x8 FAILED: TFLite conversion (int16x8) failed")
    assert "int16x8 FAILED: TFLite conversion (int16x8) failed" in out
    assert (tmp_path / "named" / "model.float32.tflite").is_file()


def test_unsupported_layers_and_models_are_named(tmp_path):
    conv = _small(tmp_path, "conv", lambda k, L: k.Sequential(
        [k.Input((8, 8, 1)), L.Conv2D(2, 3), L.Flatten(), L.Dense(2)]))  # fmt: skip
    code, _, err = cli("export", str(conv), "--out", str(tmp_path / "e"))
    assert code == 2
    assert err.startswith(
        f"edgekit: error: {conv}: layer 'conv2d' (Conv2D) is not supported by edgekit's "
        "exporters (feedforward models only); supported layers: InputLayer, Flatten,"
    )
    assert err.count("\n") == 1


def test_fold_batch_norm_keeps_the_function():
    import keras
    from keras import layers as L

    from edgekit.exporters.fold import fold_batch_norm

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), L.Dense(8), L.BatchNormalization(), L.ReLU(),
                              L.BatchNormalization(), L.Dense(3)])  # fmt: skip
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 5)).astype(np.float32)
    model.compile("adam", "mse")
    model.fit(x, rng.normal(size=(256, 3)), epochs=2, verbose=0)  # moving statistics move
    folded = fold_batch_norm(model)
    assert [type(lay).__name__ for lay in folded.layers].count("BatchNormalization") == 0
    want = model.predict(x, verbose=0)
    got = folded.predict(x, verbose=0)
    assert np.max(np.abs(want - got)) <= 1e-5 * max(1.0, float(np.max(np.abs(want))))


def test_raw_features_of_different_ranges_get_a_synthesized_normalization():
    import keras
    from keras import layers as L

    from edgekit.exporters.preprocess import synthesize_normalization

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), L.Dense(8, activation="relu"), L.Dense(2)])
    x, _ = _data(200, 4)
    core, affine = synthesize_normalization(model, x)
    assert affine is not None and affine[0] is not None and affine[0].scale.shape == (6,)
    want = model.predict(x, verbose=0)
    got = core.predict(affine.apply(x), verbose=0)
    assert np.max(np.abs(want - got)) <= 1e-3 * float(np.max(np.abs(want)))
    same_range = np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)
    assert synthesize_normalization(model, same_range) == (model, None)


@pytest.fixture(scope="module")
def two_heads(tmp_path_factory) -> Path:
    """A Functional model with two named inputs (one of raw features up to 100, normalized)
    merged by Concatenate, and two outputs: a class head and a value head."""
    import keras
    from keras import layers as L

    base = tmp_path_factory.mktemp("two")
    rng = np.random.default_rng(0)
    xa = rng.normal(size=(400, 3)).astype(np.float32)
    xb = rng.uniform(0, 100, size=(400, 2)).astype(np.float32)
    y = ((xa[:, 0] + xb[:, 0] / 50) > 1).astype(np.int64)
    keras.utils.set_random_seed(0)
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    norm = L.Normalization()
    norm.adapt(xb)
    h = L.Concatenate()([L.Dense(8, activation="relu")(a), norm(b)])
    h = L.Dense(8, activation="relu")(h)
    model = keras.Model(
        [a, b], [L.Dense(2, activation="softmax", name="cls")(h), L.Dense(1, name="reg")(h)]
    )
    model.compile("adam", ["sparse_categorical_crossentropy", "mse"])
    model.fit([xa, xb], [y, xb[:, :1] / 100], epochs=20, verbose=0)
    model.save(base / "two.keras")
    np.savez(base / "two.npz", a=xa, b=xb, y=y)
    return base


def test_several_inputs_and_outputs_export_output_by_output(two_heads, tmp_path):
    code, out, err = cli(
        "export", str(two_heads / "two.keras"), "--data", str(two_heads / "two.npz"),
        "--quantize", "float32,int8", "--onnx", "--max-accuracy-drop", "5",
        "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 0, out + err
    m = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert (m["model_inputs"], m["model_outputs"]) == (["a", "b"], ["cls", "reg"])
    assert m["validation"]["labelled"] is False  # y cannot say which head it labels
    for variant in ("float32", "onnx-float32"):
        art = _art(m, variant)
        assert art["validation"]["max_abs_diff"] <= 1e-5
        assert len(art["validation"]["per_output"]) == 2
        assert [t["shape"] for t in art["outputs"]] == [[-1, 2], [-1, 1]]
    onnx_art = _art(m, "onnx-float32")
    assert [t["name"] for t in onnx_art["inputs"]] == ["a", "b"]
    assert [t["name"] for t in onnx_art["outputs"]] == ["cls", "reg"]
    int8 = _art(m, "int8")["validation"]
    assert int8["passed"] is True and int8["per_output"][0]["accuracy_drop"] <= 5
    assert [t["dtype"] for t in _art(m, "int8")["inputs"]] == ["int8", "int8"]

    code, _, err = cli(
        "export", str(two_heads / "two.keras"), "--data", str(two_heads / "two.npz"),
        "--c-source", "float32", "--out", str(tmp_path / "c"),
    )  # fmt: skip
    assert code == 2
    assert err.strip() == (
        "edgekit: error: --c-source writes models with one input and one output; two.keras "
        "has 2 input(s) and 2 output(s)"
    )
    np.savez(tmp_path / "flat.npz", x=np.zeros((4, 5), np.float32))
    code, _, err = cli(
        "export", str(two_heads / "two.keras"), "--data", str(tmp_path / "flat.npz"),
        "--out", str(tmp_path / "d"),
    )  # fmt: skip
    assert code == 2
    assert err.strip() == (
        f"edgekit: error: --data {tmp_path / 'flat.npz'}: no array 'a', 'b' (one per model "
        "input: a, b); it has x"
    )


def test_an_embedding_over_token_ids_exports_with_integer_inputs(tmp_path):
    import keras
    from keras import layers as L

    rng = np.random.default_rng(0)
    ids = rng.integers(0, 30, size=(400, 6))
    y = (ids[:, 0] > 15).astype(np.int64)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,), dtype="int32"), L.Embedding(30, 4),
                              L.GlobalAveragePooling1D(), L.Dense(8, activation="relu"),
                              L.Dense(2, activation="softmax")])  # fmt: skip
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(ids, y, epochs=20, verbose=0)
    model.save(tmp_path / "emb.keras")
    np.savez(tmp_path / "emb.npz", x=ids, y=y)
    code, out, err = cli(
        "export", str(tmp_path / "emb.keras"), "--data", str(tmp_path / "emb.npz"),
        "--quantize", "float32,int8", "--onnx", "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 0, out + err
    m = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert _art(m, "float32")["validation"]["max_abs_diff"] <= 1e-5
    assert _art(m, "onnx-float32")["validation"]["max_abs_diff"] <= 1e-5
    assert _art(m, "int8")["validation"]["accuracy_drop"] <= 1.0
    assert _art(m, "int8")["inputs"][0]["dtype"] == "int32"  # ids stay ids
    code, _, err = cli("export", str(tmp_path / "emb.keras"), "--out", str(tmp_path / "n"))
    assert code == 2
    assert err.strip() == (
        "edgekit: error: the model takes integer inputs (ids), which random inputs cannot "
        "stand for; pass --data FILE"
    )


def test_a_float64_model_exports_as_float32_with_a_note(tmp_path):
    import keras

    keras.config.set_floatx("float64")
    try:
        model = _small(tmp_path, "f64", lambda k, L: k.Sequential(
            [k.Input((6,)), L.Dense(8, activation="relu"), L.Dense(1)]))  # fmt: skip
    finally:
        keras.config.set_floatx("float32")
    x, _ = _data(64, 5)
    np.savez(tmp_path / "d.npz", x=x / 100)
    code, out, err = cli(
        "export", str(model), "--data", str(tmp_path / "d.npz"), "--onnx", "--out",
        str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 0, out + err
    assert "note: the model computes in float64; its artifacts are float32" in out
    import onnx

    graph = onnx.load(str(tmp_path / "e" / "model.float32.onnx")).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [graph.input[0].name, graph.output[0].name] == ["features", "prediction"]
    m = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert all(a["validation"]["max_abs_diff"] <= 1e-5 for a in m["artifacts"])


@pytest.mark.parametrize("kind", ["h5", "savedmodel"])
def test_h5_and_savedmodel_files_export_with_their_own_data(zoo, tmp_path, kind):
    import keras

    model = keras.models.load_model(zoo / "tutorial.keras")
    if kind == "h5":
        path = tmp_path / "tutorial.h5"
        model.save(path)
        variants = "float32,int8"
    else:
        path = tmp_path / "saved"
        model.export(str(path), verbose=False)
        variants = "float32,dynamic"
    code, out, err = cli(
        "export", str(path), "--data", str(zoo / "test.csv"), "--target", "label",
        "--quantize", variants, "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 0, out + err
    m = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert m["features"] == FEATURES and m["validation"]["labelled"] is True
    assert _art(m, "float32")["validation"]["max_abs_diff"] <= 1e-5
    for art in m["artifacts"]:
        assert art["validation"]["accuracy_drop"] <= 1.0, art["variant"]


@pytest.mark.parametrize(
    ("labels", "found"), [([5, 0, 1], "5"), ([0.5, 1, 0], "0.5"), ([-1, 0, 1], "-1")]
)
def test_labels_the_model_cannot_score_are_refused(zoo, tmp_path, labels, found):
    x, _ = _data(3, 7)
    np.savez(tmp_path / "bad.npz", x=x, y=np.asarray(labels))
    code, _, err = cli(
        "export", str(zoo / "tutorial.keras"), "--data", str(tmp_path / "bad.npz"),
        "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 2
    assert err.strip() == (
        f"edgekit: error: --data {tmp_path / 'bad.npz'}: test labels must be class indices "
        f"0..1 for this multiclass model; found {found}"
    )


def test_a_sequential_with_input_shape_and_no_normalization(tmp_path):
    """The way many tutorials write it: ``Dense(..., input_shape=...)`` first, features the
    user standardized beforehand, trained, saved as .keras; every variant within 1 pp."""
    import warnings

    import keras
    from keras import layers as L

    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 5)).astype(np.float32)
    y = (x[:, 0] - 0.5 * x[:, 1] + 0.25 * x[:, 2] > 0).astype(np.int64)
    keras.utils.set_random_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras 3 prefers keras.Input; tutorials do not
        model = keras.Sequential([
            L.Dense(16, activation="relu", input_shape=(5,)),
            L.Dropout(0.2),
            L.Dense(2, activation="softmax"),
        ])  # fmt: skip
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:400], y[:400], epochs=30, verbose=0)
    model.save(tmp_path / "tut.keras")
    np.savez(tmp_path / "test.npz", x=x[400:], y=y[400:])
    code, out, err = cli(
        "export", str(tmp_path / "tut.keras"), "--data", str(tmp_path / "test.npz"),
        "--calibration", str(tmp_path / "test.npz"), "--quantize", "all", "--onnx",
        "--onnx-quantize", "all", "--c-source", "float32", "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 0, out + err
    m = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert m["validation"]["reference_metrics"]["accuracy"] > 0.9
    assert len(m["artifacts"]) == 8 and "problems" not in m
    for art in m["artifacts"]:
        assert art["validation"]["passed"] is True, art["variant"]
        assert art["validation"]["accuracy_drop"] <= 1.0, art["variant"]
    assert _art(m, "float32")["validation"]["max_abs_diff"] <= 1e-5
    assert m["c_source"]["validation"]["max_abs_diff"] <= 1e-5


def test_gelu_at_every_opset_and_a_single_input_model_with_two_outputs(tmp_path):
    """gelu's Erfc is rewritten before the version converter (opset 19 and up failed:
    "no registered schema ... Erfc"); one input with two outputs fed its input by name
    (every variant failed: "its signature has no input input_0")."""
    import keras

    keras.utils.set_random_seed(5)
    inp = keras.Input((4,), name="sensors")
    hidden = keras.layers.Dense(8, activation="gelu", name="hidden")(inp)
    model = keras.Model(inp, [keras.layers.Dense(3, activation="softmax", name="cls")(hidden),
                              keras.layers.Dense(1, name="val")(hidden)])  # fmt: skip
    model.save(tmp_path / "two_out.keras")
    x = np.random.default_rng(5).normal(size=(40, 4)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x)
    want = model.predict(x, verbose=0)
    for opset in (17, 20):
        out = tmp_path / f"o{opset}"
        code, text, err = cli(
            "export", str(tmp_path / "two_out.keras"), "--data", str(tmp_path / "d.npz"),
            "--quantize", "float32", "--onnx", "--opset", str(opset), "--out", str(out),
        )  # fmt: skip
        assert code == 0, text + err
        m = json.loads((out / "manifest.json").read_text())
        assert [a["variant"] for a in m["artifacts"]] == ["float32", "onnx-float32"]
        for a in m["artifacts"]:
            assert a["validation"]["passed"] is True and a["validation"]["max_abs_diff"] <= 1e-5
        import onnxruntime as ort

        sess = ort.InferenceSession(str(out / "model.float32.onnx"))
        assert [i.name for i in sess.get_inputs()] == ["sensors"]
        got = sess.run(None, {"sensors": x})
        assert all(np.abs(g - w).max() <= 1e-5 for g, w in zip(got, want, strict=True))


def test_a_saved_model_with_several_inputs_and_outputs_exports(two_heads, tmp_path):
    """model.export(dir) of a two-input, two-output model: its signature's names kept
    (a, b in; output_0, output_1 out, as model.export names them), every variant built,
    float32 and ONNX within 1e-5 of the Keras model output by output."""
    import keras

    saved = tmp_path / "saved"
    keras.models.load_model(two_heads / "two.keras").export(str(saved), verbose=False)
    code, out, err = cli(
        "export", str(saved), "--data", str(two_heads / "two.npz"), "--quantize", "all",
        "--onnx", "--max-accuracy-drop", "5", "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 0, out + err
    m = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert (m["model_inputs"], m["model_outputs"]) == (["a", "b"], ["output_0", "output_1"])
    assert {a["variant"] for a in m["artifacts"]} >= {"float32", "int8", "onnx-float32"}
    for variant in ("float32", "onnx-float32"):
        art = _art(m, variant)
        assert art["validation"]["max_abs_diff"] <= 1e-5
        assert [t["shape"] for t in art["outputs"]] == [[-1, 2], [-1, 1]]
    onnx_art = _art(m, "onnx-float32")
    assert [t["name"] for t in onnx_art["inputs"]] == ["a", "b"]
    assert [t["name"] for t in onnx_art["outputs"]] == ["output_0", "output_1"]
    assert _art(m, "int8")["validation"]["passed"] is True
