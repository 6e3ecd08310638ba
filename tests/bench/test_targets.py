"""What bench measures: manifests (and their refusals), bare files, test data."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from edgekit.bench.targets import resolve_targets, variant_from_name
from edgekit.bench.testdata import load_test_data
from edgekit.errors import EdgekitError
from tests.bench.benchhelpers import cli, manifest, write_manifest

AUTO = {"tflite", "onnxruntime"}


@pytest.mark.parametrize(
    ("name", "variant"),
    [
        ("model.int8.tflite", "int8"),
        ("model.int16x8.tflite", "int16x8"),
        ("model.float32.onnx", "onnx-float32"),
        ("model.static.onnx", "onnx-static"),
        ("net.onnx", "onnx-net"),
        ("mine.tflite", "mine"),
        ("model.keras", "keras"),
    ],
)
def test_variant_from_name(name, variant, tmp_path):
    assert variant_from_name(tmp_path / name) == variant


def test_manifest_targets_carry_variant_task_data_and_shape(export_dir):
    targets = resolve_targets([export_dir], runtimes=AUTO)
    assert [(t.artifact, t.variant, t.runtime) for t in targets] == [
        ("model.float32.tflite", "float32", "tflite"),
        ("model.int8.tflite", "int8", "tflite"),
        ("model.float32.onnx", "onnx-float32", "onnxruntime"),
    ]
    for t in targets:
        assert t.task == "multiclass"
        assert t.input_shape == [-1, 8, 8]
        assert (t.data.x_key, t.data.y_key, t.data.reference_key) == ("x", "y", "reference")
    # a bare file borrows its directory's manifest and test data
    (one,) = resolve_targets([export_dir / "model.int8.tflite"], runtimes=AUTO)
    assert (one.variant, one.task, one.data.path) == ("int8", "multiclass", export_dir / "test.npz")


@pytest.mark.parametrize(
    "bad_file", ["../model.float32.tflite", "/etc/passwd", "sub/../../model.float32.tflite"]
)
def test_manifest_pointing_outside_is_refused(export_copy, bad_file):
    obj = manifest(export_copy)
    obj["artifacts"][0]["file"] = bad_file
    write_manifest(export_copy, obj)
    code, _, err = cli("bench", str(export_copy))
    assert code == 2
    assert err == (
        f"edgekit: error: {export_copy / 'manifest.json'}: artifact file {bad_file!r} points "
        f"outside {export_copy}\n"
    )


def test_manifest_symlink_escaping_is_refused(export_copy, tmp_path):
    outside = tmp_path / "outside.tflite"
    outside.write_bytes((export_copy / "model.float32.tflite").read_bytes())
    os.symlink(outside, export_copy / "link.tflite")
    obj = manifest(export_copy)
    obj["artifacts"][0]["file"] = "link.tflite"
    write_manifest(export_copy, obj)
    with pytest.raises(EdgekitError, match=r"artifact file 'link.tflite' points outside"):
        resolve_targets([export_copy], runtimes=AUTO)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda m: "{not json", "not a valid manifest.json (Expecting property name"),
        (lambda m: {**m, "schema": "other/1"}, "not an edgekit export manifest (schema "
                                                "edgekit.export/1)"),
        (lambda m: {**m, "artifacts": {}}, "'artifacts' must be a list"),
        (lambda m: {**m, "task": "ranking"}, "task 'ranking' is not one of binary, multiclass, "
                                              "regression"),
        (lambda m: {**m, "artifacts": [{**m["artifacts"][0], "format": "pt"}]},
         "artifacts[0] has format 'pt'; expected tflite or onnx"),
        (lambda m: {**m, "artifacts": [{**m["artifacts"][0], "file": 7}]},
         "an artifact has no valid 'file' name"),
        (lambda m: {**m, "artifacts": [{**m["artifacts"][0], "file": "gone.tflite"}]},
         "lists gone.tflite, which does not exist"),
        (lambda m: {**m, "artifacts": [{**m["artifacts"][0], "inputs": [{"shape": "8"}]}]},
         "artifacts[0] has malformed 'inputs'"),
    ],
)  # fmt: skip
def test_malformed_manifest_is_refused(export_copy, mutate, message):
    obj = mutate(manifest(export_copy))
    path = export_copy / "manifest.json"
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    code, out, err = cli("bench", str(export_copy))
    assert code == 2 and out == ""
    assert err.startswith(f"edgekit: error: {path}") and message in err
    assert err.count("\n") == 1


def test_test_data_checks(tmp_path):
    np.savez(tmp_path / "ok.npz", x_test=np.zeros((4, 3)), y_test=np.arange(4))
    data = load_test_data(tmp_path / "ok.npz")
    assert (data.x_key, data.y_key, data.reference_key, data.n, data.feature_shape) == (
        "x_test", "y_test", None, 4, (3,)
    )  # fmt: skip
    cases = {
        "nox.npz": (dict(a=np.zeros(3)), "no array 'x' (or 'x_test'); it has a"),
        "flat.npz": (dict(x=np.zeros(3)), "'x' must be a non-empty numeric array of shape "
                                          "[samples, features...], got float64 [3]"),
        "text.npz": (dict(x=np.array([["a"]])), "got str [1, 1]"),
        "short.npz": (dict(x=np.zeros((4, 3)), y=np.zeros(3)), "'y' must be numeric with one "
                                                               "entry per sample of 'x' (4)"),
    }  # fmt: skip
    for name, (arrays, message) in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(EdgekitError) as err:
            load_test_data(tmp_path / name)
        assert str(err.value).startswith(f"--data {tmp_path / name}: ") and message in str(
            err.value
        )


def test_pickled_and_corrupt_data_files_are_refused(export_dir, tmp_path):
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    model = str(export_dir / "model.int8.tflite")
    code, _, err = cli("bench", model, "--data", str(tmp_path / "obj.npz"))
    assert code == 2
    assert err == (
        f"edgekit: error: {tmp_path / 'obj.npz'}: holds pickled objects, which edgekit refuses "
        "to load\n"
    )
    code, _, err = cli("bench", model, "--data", str(tmp_path / "junk.npz"))
    assert (code, err) == (
        2, f"edgekit: error: {tmp_path / 'junk.npz'}: not a valid .npz file (not a zip archive)\n"
    )  # fmt: skip
    code, _, err = cli("bench", model, "--data", str(tmp_path / "missing.npz"))
    assert (code, err) == (2, f"edgekit: error: {tmp_path / 'missing.npz'}: no such file\n")
