"""``--quantize auto [--integer-only]``: the smallest artifact within --max-accuracy-drop.

The outlier model (tests/quant_models.py, hidden 256-128 so that int8 weights dominate the
file) computes the same function as the model it came from, but one hidden unit spans 300x the
others' range: plain int8 loses tens of points, cross-layer equalization gets them back at the
int8 size. The normal model passes as plain int8 at once.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import edgekit
from edgekit.exporters.auto import CANDIDATES, integer_only_ops
from edgekit.exporters.variants import select_variants
from edgekit.formats.manifest import load_manifest
from edgekit.formats.tflite_graph import read_tflite
from edgekit.runtime import open_runner
from tests.conftest import chdir, cli
from tests.quant_models import outlier_channel_model, train_small

HIDDEN = (256, 128)
INTEGER = {"int8", "uint8", "int16", "int32", "int64"}
RECORD_KEYS = {"name", "bytes", "accuracy_drop", "passed", "integer_only"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("auto")
    outlier = outlier_channel_model(base, hidden=HIDDEN)
    normal = train_small(base, "normal_" + "x".join(map(str, HIDDEN)), hidden=HIDDEN)
    return base, normal, outlier


@pytest.fixture(scope="module")
def outlier_export(runs):
    base, _, outlier = runs
    with chdir(base):
        return edgekit.export(
            outlier,
            quantize=["float32", "int8", "int16x8", "auto"],
            integer_only=True,
            out=base / "outlier_export",
        )


def _by_variant(result) -> dict:
    return {a["variant"]: a for a in result.artifacts}


def test_plain_int8_misses_the_budget_on_the_outlier_model(outlier_export):
    int8 = _by_variant(outlier_export)["int8"]
    assert int8["validation"]["accuracy_drop"] > 1.0
    assert not int8["validation"]["passed"]


def test_auto_integer_only_meets_1pp_at_a_third_of_float32(outlier_export):
    arts = _by_variant(outlier_export)
    auto, float32 = arts["auto"], arts["float32"]
    assert auto["file"] == "model.auto.tflite"
    assert auto["validation"]["passed"] and auto["validation"]["accuracy_drop"] <= 1.0
    assert auto["validation"]["criterion"] == "accuracy_drop <= 1 and integer ops only"
    assert auto["bytes"] <= 0.35 * float32["bytes"]
    g = read_tflite(outlier_export.path / "model.auto.tflite")
    assert {t.dtype for t in g.tensors} <= INTEGER  # not one float tensor, in or out
    assert auto["inputs"][0]["dtype"] == "int8" and auto["inputs"][0]["quantization"]["axis"] == -1
    assert integer_only_ops(outlier_export.path / "model.auto.tflite")


def test_the_manifest_records_every_candidate_tried_and_the_choice(outlier_export):
    manifest = load_manifest(outlier_export.path)
    auto = next(a for a in manifest["artifacts"] if a["variant"] == "auto")
    info = auto["auto"]
    tried = {r["name"]: r for r in info["tried"]}
    assert info["integer_only"] is True and info["chosen"] == "int8+cle"
    assert list(tried) == ["int8", "int8+calibration", "int8+cle"]  # in cost order, then stop
    for record in info["tried"]:
        assert set(record) >= RECORD_KEYS, record
        assert record["integer_only"] is True
    # The plain int8 candidate is the int8 variant, to the byte and the point.
    int8 = _by_variant(outlier_export)["int8"]
    assert tried["int8"]["bytes"] == int8["bytes"]
    assert tried["int8"]["accuracy_drop"] == int8["validation"]["accuracy_drop"]
    assert [r["passed"] for r in info["tried"]] == [False, False, True]
    assert tried["int8+cle"]["bytes"] == auto["bytes"]
    assert tried["int8+cle"]["accuracy_drop"] == auto["validation"]["accuracy_drop"]
    skipped = {s["name"]: s["reason"] for s in info["skipped"]}
    assert skipped["dynamic"] == skipped["float16"] == "not integer (--integer-only)"
    assert "int16x8" in skipped  # cannot be smaller than the pass


def test_the_auto_artifact_runs_as_validated_from_the_export_dir(outlier_export, runs):
    from edgekit.formats.npz import load_npz

    _, _, outlier = runs
    test = load_npz(outlier / "data" / "test.npz")
    auto = _by_variant(outlier_export)["auto"]
    with open_runner(outlier_export.path / "model.auto.tflite") as runner:  # manifest beside
        predicted = runner.infer(test["x"])[:, 0] > 0.5
    assert np.mean(predicted == test["y"]) == auto["validation"]["metrics"]["accuracy"]


def test_int16x8_with_its_float_input_is_not_integer_only(outlier_export):
    # The registry's int16x8 normalizes raw features in float (MUL, ADD) ahead of QUANTIZE.
    assert not integer_only_ops(outlier_export.path / "model.int16x8.tflite")
    assert integer_only_ops(outlier_export.path / "model.int8.tflite")


def test_auto_on_a_normal_model_is_plain_int8_at_once(runs, tmp_path):
    _, normal, _ = runs
    code, out, err = cli("export", str(normal), "--quantize", "auto", "--integer-only",
                         "--out", str(tmp_path / "e"))  # fmt: skip
    assert code == 0, err
    info = _by_variant_manifest(tmp_path / "e")["auto"]["auto"]
    assert [r["name"] for r in info["tried"]] == ["int8"] and info["chosen"] == "int8"
    assert "int8  " in out and "<- chosen" in out


def _by_variant_manifest(path) -> dict:
    return {a["variant"]: a for a in load_manifest(path)["artifacts"]}


def _knife_edge(model, x: np.ndarray, n: int = 40) -> np.ndarray:
    """``n`` inputs on the Keras model's decision boundary (p = 0.5 to ~1e-6), found by
    bisection between random pairs of test inputs of opposite classes."""
    p = model.predict(x, verbose=0)[:, 0]
    rng = np.random.default_rng(0)
    a = x[p > 0.5][rng.integers((p > 0.5).sum(), size=n)].astype(np.float64)
    b = x[p <= 0.5][rng.integers((p <= 0.5).sum(), size=n)].astype(np.float64)
    lo, hi = np.zeros(n), np.ones(n)
    for _ in range(40):
        mid = (lo + hi) / 2
        q = model.predict((a + mid[:, None] * (b - a)).astype(np.float32), verbose=0)[:, 0]
        lo, hi = np.where(q > 0.5, mid, lo), np.where(q > 0.5, hi, mid)
    return (a + lo[:, None] * (b - a)).astype(np.float32)


def test_an_impossible_budget_fails_with_the_table_of_what_was_tried(runs, tmp_path):
    """On inputs that sit on the decision boundary every quantized artifact flips some, so
    --max-accuracy-drop 0 cannot be met: every candidate is tried, the closest is written."""
    from edgekit.formats.keras_file import load_keras_model

    _, normal, _ = runs
    run = tmp_path / "run"
    shutil.copytree(normal, run, ignore=shutil.ignore_patterns("export"))
    model = load_keras_model(run / "model.keras")
    x = _knife_edge(model, np.load(run / "data" / "test.npz")["x"].astype(np.float32))
    y = (model.predict(x, verbose=0)[:, 0] > 0.5).astype(np.int64)
    np.savez(run / "data" / "test.npz", x=x, y=y)
    code, out, err = cli("export", str(run), "--quantize", "auto", "--max-accuracy-drop", "0")
    assert code == 1 and err.splitlines()[-1] == "edgekit: error: validation failed for auto"
    info = _by_variant_manifest(run / "export")["auto"]["auto"]
    names = [r["name"] for r in info["tried"]]
    assert names == [c.name for c in CANDIDATES if c.name != "int8+bias"]  # all of them
    assert not any(r["passed"] for r in info["tried"])
    for name in names:
        assert f"\n{name} " in out  # the table lists each
    closest = min(r["accuracy_drop"] for r in info["tried"])
    chosen = next(r for r in info["tried"] if r["name"] == info["chosen"])
    assert chosen["accuracy_drop"] == closest > 0
    integer = {r["name"]: r["integer_only"] for r in info["tried"]}
    assert integer["int16x8+cle"] and integer["int8+cle+bias"]
    assert not integer["dynamic"] and not integer["float16"] and not integer["int8+float1"]


def test_auto_without_calibration_data_names_what_fixes_it(runs, tmp_path):
    _, normal, _ = runs
    shutil.copy(normal / "model.keras", tmp_path / "model.keras")
    code, _, err = cli("export", str(tmp_path / "model.keras"), "--quantize", "auto")
    assert code == 2 and err.count("\n") == 1
    assert err == (
        "edgekit: error: --quantize auto judges accuracy, and there is no test data; pass "
        "--data FILE\n"
    )


def test_integer_only_needs_auto(runs):
    _, normal, _ = runs
    code, _, err = cli("export", str(normal), "--quantize", "int8", "--integer-only")
    assert (code, err) == (
        2,
        "edgekit: error: --integer-only applies to the auto variant; add --quantize auto\n",
    )


def test_all_does_not_include_auto_and_auto_is_named_among_the_choices():
    def names(quantize):
        chosen = select_variants(tflite=False, quantize=quantize, onnx=False, onnx_quantize=None)
        return [v.name for v in chosen]

    assert "auto" not in names(["all"])
    assert names(["int8", "auto"]) == ["int8", "auto"]
    code, _, err = cli("export", "--quantize", "int4")
    assert code == 2 and "int16x8, auto or all" in err


def test_regression_records_the_mae_increase(regression_run, tmp_path):
    result = edgekit.export(regression_run.path, quantize=["auto"], out=tmp_path / "e")
    auto = _by_variant(result)["auto"]
    tried = auto["auto"]["tried"]
    assert all("mae_increase_pct" in r and "accuracy_drop" not in r for r in tried)
    chosen = next(r for r in tried if r["name"] == auto["auto"]["chosen"])
    assert auto["validation"]["passed"] is chosen["passed"] is True
    assert chosen["mae_increase_pct"] == auto["validation"]["mae_increase_pct"] <= 1.0
    assert auto["validation"]["criterion"] == "mae_increase_pct <= 1"
