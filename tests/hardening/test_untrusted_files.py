"""Untrusted files cannot run code or reach outside their directory.

* ``.keras`` files load in Keras's safe mode: a ``Lambda`` layer's code never runs.
* ``.npz`` files load without pickles, through every reader: a pickle's payload never runs.
* A manifest's file names stay inside the export directory, for every manifest reader.
* A SavedModel whose graph reads or writes files or runs Python is refused before any of it
  runs.
"""

from __future__ import annotations

import ast
import json
import pathlib
import shutil
from pathlib import Path

import numpy as np
import pytest

import edgekit
from edgekit.errors import EdgekitError
from tests.conftest import REPO, cli
from tests.hardening.conftest import copy_run

PICKLE_REFUSED = "holds pickled objects, which edgekit refuses to load"


# --- SavedModels: no op that touches files or runs Python ----------------------------------


def _saved_module(path: Path, body: str, marker: Path) -> Path:
    """A SavedModel whose serving function runs ``body`` (which may use ``marker``) and then
    a Dense-like matmul; saved without calling it, so ``marker`` exists only if it runs."""
    import tensorflow as tf

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.ones((4, 2)))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def serve(self, x):
            exec(body, {"tf": tf, "marker": str(marker), "x": x})
            return tf.nn.softmax(x @ self.w)

    module = Module()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    assert not marker.exists()
    return path


SIDE_EFFECTS = {  # body: the refused op named
    "write": ("tf.io.write_file(marker, 'pwned')", "WriteFile (in function __inference_serve_"),
    "read": ("tf.io.read_file('/etc/hostname')", "ReadFile (in function __inference_serve_"),
    "python": (
        "tf.py_function(lambda: open(marker, 'w').close() or 0.0, [], tf.float32)",
        "EagerPyFunc (in function __inference_serve_",
    ),
    "in-a-loop": (
        "tf.while_loop(lambda i: i < 2, lambda i: (tf.io.write_file(marker, 'x'), i + 1)[1], [0])",
        "WriteFile (in function while_body_",
    ),
}


@pytest.mark.parametrize("case", list(SIDE_EFFECTS))
def test_a_saved_model_that_touches_files_or_runs_python_is_refused(tmp_path, case):
    body, named = SIDE_EFFECTS[case]
    marker = tmp_path / "ran"
    model = _saved_module(tmp_path / "sm", body, marker)
    code, _, err = cli("export", str(model), "--out", str(tmp_path / "out"))
    assert code == 2, err
    assert err.startswith(
        f"edgekit: error: {model}: refused: the SavedModel's graph holds ops that read or write "
        "files or run Python, which edgekit will not run: "
    ), err
    assert named in err and err.count("\n") == 1
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_plain_saved_model_passes_the_check(tmp_path):
    """Its saver functions (SaveV2, RestoreV2, MergeV2Checkpoints) are not run by loading."""
    from edgekit.formats.saved_model import check_saved_model

    marker = tmp_path / "ran"
    check_saved_model(_saved_module(tmp_path / "sm", "pass", marker))


def test_a_corrupt_saved_model_is_one_line(tmp_path):
    from edgekit.formats.saved_model import check_saved_model

    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"\x0a\xff\xff\xff\xff garbage")
    with pytest.raises(EdgekitError, match="saved_model.pb is corrupt"):
        check_saved_model(tmp_path / "sm")


# --- .keras: safe mode ----------------------------------------------------------------------


@pytest.fixture
def lambda_with_side_effect(tmp_path):
    """A ``.keras`` whose Lambda creates ``marker`` when its code runs; the marker is removed
    after saving (building the model runs the Lambda once)."""
    import keras

    marker = tmp_path / "lambda-ran"
    inputs = keras.Input((4,), name="features")
    code = f"lambda t: (__import__('pathlib').Path({str(marker)!r}).touch(), t)[1]"
    touched = keras.layers.Lambda(eval(code))(inputs)  # the path is a constant in its code
    outputs = keras.layers.Dense(2, activation="softmax")(touched)
    path = tmp_path / "evil.keras"
    keras.Model(inputs, outputs).save(path)
    marker.unlink()
    return path, marker


def test_a_lambda_layer_is_refused_and_never_runs(lambda_with_side_effect):
    path, marker = lambda_with_side_effect
    refused = "refused: the model contains a Lambda layer, whose Python code edgekit will not run"
    for argv in (["export", str(path)], ["inspect", str(path)]):
        code, out, err = cli(*argv)
        assert (code, out) == (2, ""), err
        assert err == f"edgekit: error: {path}: {refused} (safe mode)\n"
    code, out, _ = cli("bench", str(path), "--runtime", "keras", "--runs", "2", "--min-time", "0")
    assert code == 1 and refused in out  # the measuring child refused it: an error row
    assert not marker.exists()
    assert not list(path.parent.glob("evil_export*"))

    import keras  # the control: without safe mode, loading runs the Lambda

    keras.models.load_model(path, compile=False, safe_mode=False)
    assert marker.exists()


# --- .npz: no pickles -----------------------------------------------------------------------


class _Payload:
    """Unpickling this creates ``self.marker``: what a hostile pickle could do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


@pytest.fixture
def pickle_npz(tmp_path):
    """``make(path)`` writes an ``.npz`` whose ``x`` (and ``y``) unpickle into a file touch."""
    marker = tmp_path / "pickle-ran"

    def make(path: Path, **extra) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        evil = np.array([[_Payload(marker)] * 64], dtype=object).reshape(1, 8, 8)
        np.savez(path, x=evil, y=np.array([_Payload(marker)], dtype=object), **extra)
        return path

    return make, marker


def test_every_npz_reader_refuses_pickles(pickle_npz, tmp_path, digits_run, small_export_dir):
    from edgekit.bench.job import Job
    from edgekit.bench.measure import UsageError, measure
    from edgekit.bench.testdata import load_test_data
    from edgekit.formats.npz import load_npz

    make, marker = pickle_npz
    evil = make(tmp_path / "evil.npz")

    readers = {
        "fileio.load_npz": lambda: load_npz(evil),
        "a dataset (train --dataset)": lambda: edgekit.data.load_dataset(str(evil)),
        "bench's header check (--data, test.npz)": lambda: load_test_data(evil),
    }
    for what, read in readers.items():
        with pytest.raises(EdgekitError, match=PICKLE_REFUSED):
            read()
        assert not marker.exists(), what

    # the measuring child, given the file directly (as if the parent's check were skipped)
    job = Job(path=str(small_export_dir / "model.float32.tflite"), runtime="tflite",
              data=str(evil), runs=2, min_time=0.0)  # fmt: skip
    with pytest.raises(UsageError, match=PICKLE_REFUSED):
        measure(job)

    # a run's data/test.npz and data/calibration.npz (export), a bare model's data/test.npz
    for rel in ("data/test.npz", "data/calibration.npz"):
        run = copy_run(digits_run, tmp_path / f"run-{rel.replace('/', '-')}")
        make(run / rel)
        code, _, err = cli("export", str(run), "--quantize", "int8", "--out", str(run / "e"))
        assert code == 2 and f"{run / rel}: {PICKLE_REFUSED}" in err
        assert not (run / "e").exists()
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(digits_run.model_path, bare / "alone.keras")
    make(bare / "data" / "test.npz")
    code, _, err = cli("export", str(bare / "alone.keras"))
    assert code == 2 and PICKLE_REFUSED in err

    # an export directory's test.npz, and --data (bench)
    export = Path(shutil.copytree(small_export_dir, tmp_path / "export"))
    make(export / "test.npz")
    code, _, err = cli("bench", str(export))
    assert (code, err) == (2, f"edgekit: error: {export / 'test.npz'}: {PICKLE_REFUSED}\n")
    code, _, err = cli("bench", str(small_export_dir), "--data", str(evil))
    assert (code, err) == (2, f"edgekit: error: {evil}: {PICKLE_REFUSED}\n")
    assert not marker.exists()

    # the control: numpy with pickles allowed runs the payload
    np.load(evil, allow_pickle=True)["x"]
    assert marker.exists()


def _np_load_calls(tree: ast.AST):
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "load"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in ("np", "numpy")
        ):
            yield node


def test_np_load_always_refuses_pickles():
    """Every ``np.load`` in edgekit passes ``allow_pickle=False``; nothing unpickles."""
    calls = 0
    for path in sorted((REPO / "edgekit").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call in _np_load_calls(tree):
            calls += 1
            flags = {k.arg: k.value for k in call.keywords}
            assert "allow_pickle" in flags, f"{path}:{call.lineno}"
            assert isinstance(flags["allow_pickle"], ast.Constant)
            assert flags["allow_pickle"].value is False, f"{path}:{call.lineno}"
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not {"pickle", "cPickle", "dill", "joblib"} & set(names), path
    assert calls >= 1


# --- manifest.json: names stay inside -------------------------------------------------------

ESCAPES = {
    "dot-dot": ("../outside.tflite", "points outside"),
    "nested-dot-dot": ("sub/../../outside.tflite", "points outside"),
    "absolute": ("/etc/hostname", "points outside"),
    "symlink-out": ("link.tflite", "points outside"),
    "symlinked-directory-out": ("linkdir/outside.tflite", "points outside"),
}


@pytest.fixture
def escaping_export(small_export_dir, tmp_path):
    """``make(name)``: a copy of the small export whose first artifact is ``name``, with a
    file outside it, a symlink to that file and a symlinked directory holding it."""
    outside = tmp_path / "outside.tflite"
    outside.write_bytes((small_export_dir / "model.float32.tflite").read_bytes())

    def make(name: str) -> Path:
        export = Path(shutil.copytree(small_export_dir, tmp_path / "export"))
        (export / "link.tflite").symlink_to(outside)
        (export / "linkdir").symlink_to(tmp_path, target_is_directory=True)
        manifest = json.loads((export / "manifest.json").read_text())
        manifest["artifacts"][0]["file"] = name
        (export / "manifest.json").write_text(json.dumps(manifest))
        return export

    return make


@pytest.mark.parametrize("name, message", ESCAPES.values(), ids=ESCAPES.keys())
def test_every_manifest_reader_refuses_names_outside(escaping_export, name, message):
    from edgekit.bench import run_bench
    from edgekit.formats.manifest import artifact_paths, load_manifest

    export = escaping_export(name)
    for read in (load_manifest, artifact_paths):
        with pytest.raises(EdgekitError, match=message):
            read(export)
    with pytest.raises(EdgekitError, match=message):
        run_bench([export], runs=2, min_time=0.0)
    # benchmarking a legitimate file of that directory reads its manifest too
    with pytest.raises(EdgekitError, match=message):
        run_bench([export / "model.int8.tflite"], runs=2, min_time=0.0)


@pytest.mark.parametrize("name", ["", "a\\b.tflite", "a\x00b.tflite", 7, None])
def test_load_manifest_refuses_invalid_names(escaping_export, name):
    from edgekit.formats.manifest import load_manifest

    with pytest.raises(EdgekitError, match="not a valid file name|no valid 'file' name"):
        load_manifest(escaping_export(name))


def test_bench_refuses_a_nul_in_a_file_name(escaping_export):
    from edgekit.bench.targets import resolve_targets

    with pytest.raises(EdgekitError, match="not a valid file name"):
        resolve_targets([escaping_export("a\x00b.tflite")], runtimes={"tflite"})


def test_the_keras_source_named_in_a_manifest_cannot_point_outside(small_export_dir, tmp_path):
    """``bench --runtime keras`` looks for the manifest's source model by its base name, in
    the export directory and its parent (the run) only."""
    from edgekit.bench import run_bench

    export = Path(shutil.copytree(small_export_dir, tmp_path / "a" / "run" / "export"))
    (tmp_path / "a" / "secret.keras").write_bytes(b"two levels up: not for bench")
    manifest = json.loads((export / "manifest.json").read_text())
    manifest["source"]["file"] = "../../secret.keras"
    (export / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EdgekitError, match="source model .* was not found"):
        run_bench([export], runtime="keras", runs=2, min_time=0.0)
