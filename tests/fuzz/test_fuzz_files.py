"""Fuzzing the readers of user files: ``manifest.json`` (export and bench), CSV and NPZ
datasets, and test data (bench's header check, its measuring child, export's run data).

Every reader either returns something that keeps its promises (finite numbers, one label
per sample, file names inside the export directory) or raises :class:`EdgekitError`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgekit.errors import EdgekitError
from tests.fuzz.conftest import count, fuzz_settings, mutate, mutations
from tests.hardening import corrupt


def _inside(directory: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


# --- manifest.json --------------------------------------------------------------------------

X = np.linspace(-1.0, 1.0, 20, dtype=np.float32).reshape(5, 4)


@pytest.fixture(scope="module")
def export_dir(seeds, tmp_path_factory) -> tuple[Path, dict]:
    """An export directory of the seed models, with its (valid) manifest."""
    root = tmp_path_factory.mktemp("fuzz-export")
    directory = root / "export"
    directory.mkdir()
    (root / "outside.tflite").write_bytes(seeds["float32.tflite"].read_bytes())
    (directory / "link.tflite").symlink_to(root / "outside.tflite")
    tensor = {"name": "features", "shape": [-1, 4], "dtype": "float32", "quantization": None}
    artifacts = []
    for name, fmt, variant in (("model.float32.tflite", "tflite", "float32"),
                               ("model.float32.onnx", "onnx", "onnx-float32")):  # fmt: skip
        shutil.copy(seeds[name.split(".", 1)[1]], directory / name)
        artifacts.append({
            "file": name, "format": fmt, "variant": variant, "bytes": 1, "sha256": "0" * 64,
            "inputs": [tensor], "outputs": [{**tensor, "name": "p", "shape": [-1, 3]}],
            "validation": {"max_abs_diff": 0.0, "passed": True},
        })  # fmt: skip
    manifest = {
        "schema": "edgekit.export/1", "task": "multiclass", "labels": ["a", "b", "c"],
        "source": {"file": "model.keras", "sha256": "0" * 64}, "artifacts": artifacts,
    }  # fmt: skip
    (directory / "test.npz").write_bytes(
        corrupt.npz_bytes(x=X, y=np.arange(5) % 3, reference=np.ones((5, 3), np.float32))
    )
    return directory, manifest


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8,
)  # fmt: skip
FILE_NAMES = st.sampled_from([
    "model.float32.tflite", "model.float32.onnx", "../outside.tflite", "sub/../../outside.tflite",
    "/etc/hostname", "link.tflite", ".", "..", "", "a\\b.tflite", "a\x00b.tflite", "test.npz",
    "manifest.json", "missing.tflite", "model.float32.tflite/", "./model.float32.onnx",
])  # fmt: skip
WHERE = st.sampled_from([
    ("schema",), ("task",), ("labels",), ("source",), ("source", "file"), ("artifacts",),
    ("artifacts", 0), ("artifacts", 1), ("artifacts", 0, "file"), ("artifacts", 1, "file"),
    ("artifacts", 0, "format"), ("artifacts", 0, "variant"), ("artifacts", 0, "inputs"),
    ("artifacts", 0, "inputs", 0), ("artifacts", 0, "inputs", 0, "shape"),
    ("artifacts", 0, "inputs", 0, "shape", 0), ("artifacts", 0, "inputs", 0, "shape", 1),
    ("artifacts", 1, "inputs", 0, "shape", 1), ("artifacts", 0, "outputs"),
])  # fmt: skip
EDIT = st.tuples(WHERE, st.one_of(FILE_NAMES, json_values, st.just("<delete>")))


def edited(manifest: dict, edits) -> dict:
    obj = json.loads(json.dumps(manifest))
    for where, value in edits:
        parent = obj
        try:
            for key in where[:-1]:
                parent = parent[key]
            if value == "<delete>":
                del parent[where[-1]]
            else:
                parent[where[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit replaced this part
    return obj


def _check_manifest_readers(directory: Path) -> None:
    from edgekit.bench.targets import resolve_targets
    from edgekit.formats.manifest import artifact_paths, load_manifest

    try:
        for path in artifact_paths(directory):
            assert _inside(directory, path)
        load_manifest(directory)
    except EdgekitError as err:
        assert "\n" not in str(err)
    for read in (load_manifest, lambda d: resolve_targets([d], runtimes={"tflite", "onnxruntime"})):
        try:
            result = read(directory)
        except EdgekitError as err:
            assert "\n" not in str(err)
            continue
        if isinstance(result, list):  # targets: files inside, that exist
            assert all(_inside(directory, t.path) and t.path.is_file() for t in result)
        else:
            for art in result["artifacts"]:
                assert _inside(directory, directory / art["file"])


@fuzz_settings(max_examples=500)
@given(edits=st.lists(EDIT, min_size=1, max_size=4))
@example(edits=[(("artifacts", 0, "file"), "link.tflite")])
@example(edits=[(("artifacts", 0, "inputs", 0, "shape", 1), True)])
def test_manifest_readers_with_edited_manifests(export_dir, edits):
    count("manifest.json: edited JSON (export and bench readers, bench planning)")
    directory, manifest = export_dir
    (directory / "manifest.json").write_text(json.dumps(edited(manifest, edits)))
    _check_manifest_readers(directory)


@fuzz_settings(max_examples=300)
@given(edits=mutations(1 << 12))
def test_manifest_readers_with_mutated_bytes(export_dir, edits):
    count("manifest.json: mutated bytes")
    directory, manifest = export_dir
    text = json.dumps(manifest, indent=1).encode()
    (directory / "manifest.json").write_bytes(mutate(text, edits))
    _check_manifest_readers(directory)


# --- CSV datasets ---------------------------------------------------------------------------

CELLS = st.one_of(
    st.sampled_from(["1", "0", "2.5", "-3", "1e3", "nan", "inf", "-inf", "1e400", "", " ",
                     "a", "yes", "0x1F", "1,5", '"7"', "１", "٣", "1_000", "NaN"]),
    st.floats(allow_nan=True).map(repr),
    st.text(max_size=5),
)  # fmt: skip


def _check_dataset(ds) -> None:
    assert np.all(np.isfinite(ds.x)) and ds.x.ndim >= 2 and len(ds.x) == len(ds.y)
    if ds.task == "regression":
        assert ds.labels is None and np.all(np.isfinite(ds.y))
    else:
        assert len(ds.labels) >= 2 and ds.y.min() >= 0 and ds.y.max() < len(ds.labels)


@fuzz_settings(max_examples=500)
@given(
    rows=st.lists(st.lists(CELLS, min_size=1, max_size=4), max_size=6),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    target=st.sampled_from([None, "y", "a", "nope"]),
    task=st.sampled_from(["auto", "binary", "multiclass", "regression"]),
)
@example(rows=[["a", "y"], ["1e400", "0"], ["1", "1"]], newline="\n", target=None, task="auto")
def test_csv_reader(tmp_path, rows, newline, target, task):
    from edgekit.data import load_dataset

    count("CSV dataset reader")
    path = tmp_path / "d.csv"
    path.write_text(newline.join(",".join(r) for r in rows), encoding="utf-8", newline="")
    try:
        _check_dataset(load_dataset(str(path), target=target, task=task))
    except EdgekitError as err:
        assert "\n" not in str(err)


@fuzz_settings(max_examples=200)
@given(edits=mutations(256))
def test_csv_reader_with_mutated_bytes(tmp_path, edits):
    from edgekit.data import load_dataset

    count("CSV dataset reader: mutated bytes")
    rows = ["a,b,label"] + [
        f"{i % 5},{(i * 7) % 3}.5,{'yes' if i % 2 else 'no'}" for i in range(12)
    ]
    path = tmp_path / "d.csv"
    path.write_bytes(mutate("\n".join(rows).encode(), edits))
    try:
        _check_dataset(load_dataset(str(path)))
    except EdgekitError as err:
        assert "\n" not in str(err)


# --- NPZ datasets and test data -------------------------------------------------------------

# (object arrays: the explicit examples; hypothesis's arbitrary objects need not pickle)
DTYPES = st.sampled_from(["<f4", "<f8", "<f2", ">f8", "<i8", "<u1", "|b1", "<c8", "<U3", "|S2",
                          "<M8[D]"])  # fmt: skip
ARRAYS = hnp.arrays(
    dtype=DTYPES,
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
    elements=None,
    fill=st.nothing(),
)
KEYS = st.sampled_from(["x", "y", "x_train", "y_train", "x_test", "y_test", "reference", "z"])


def _check_npz_readers(path: Path) -> None:
    from edgekit.bench.job import Job
    from edgekit.bench.measure import UsageError, _load_data
    from edgekit.bench.testdata import load_test_data
    from edgekit.data import load_dataset
    from edgekit.exporters.source import read_features as _features
    from edgekit.exporters.source import read_test_data as _test_data
    from edgekit.formats.npz import load_npz

    for read in (load_npz, lambda p: load_dataset(str(p)), _test_data,
                 lambda p: _features(p, "calibration")):  # fmt: skip
        try:
            result = read(path)
        except EdgekitError as err:
            assert "\n" not in str(err)
            continue
        if hasattr(result, "task"):
            _check_dataset(result)
        elif isinstance(result, np.ndarray):
            assert result.ndim >= 2 and len(result) and np.all(np.isfinite(result))
    try:
        data = load_test_data(path)
    except EdgekitError:
        return
    # what the parent accepted, the measuring child loads or refuses as bad input
    job = Job(path="m.tflite", runtime="tflite", data=str(path), x_key=data.x_key,
              y_key=data.y_key, reference_key=data.reference_key)  # fmt: skip
    try:
        x, y, _ = _load_data(job)
    except UsageError:
        return
    assert np.all(np.isfinite(x)) and x.shape[1:] == tuple(data.feature_shape)
    assert y is None or (y.ndim == 1 and len(y) == len(x))


@fuzz_settings(max_examples=400)
@given(arrays=st.dictionaries(KEYS, ARRAYS, max_size=4))
@example(arrays={"x": np.array([[1.0, "a"]], dtype=object), "y": np.array([0])})
@example(arrays={"x": np.full((3, 2), 1e300), "y": np.array([0, 1, 0])})  # inf as float32
def test_npz_readers_with_generated_arrays(tmp_path, arrays):
    count("NPZ readers: generated arrays (dataset, test data, export run data)")
    path = tmp_path / "d.npz"
    path.write_bytes(corrupt.npz_bytes(**arrays))
    _check_npz_readers(path)


@fuzz_settings(max_examples=400)
@given(edits=mutations(1 << 10))
def test_npz_readers_with_mutated_bytes(tmp_path, edits):
    count("NPZ readers: mutated bytes")
    x = np.linspace(0, 1, 24, dtype=np.float32).reshape(6, 4)
    valid = corrupt.npz_bytes(x=x, y=np.arange(6) % 2, reference=np.zeros((6, 2), np.float32))
    path = tmp_path / "d.npz"
    path.write_bytes(mutate(valid, edits))
    _check_npz_readers(path)
