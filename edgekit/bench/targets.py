"""What to measure: artifacts from paths and export directories, with their test data.

An export directory is read through its ``manifest.json`` (``edgekit.export/1``, through
:mod:`edgekit.formats.manifest`), whose file names must stay inside the directory. A bare
artifact file borrows ``manifest.json`` and ``test.npz`` from its own directory when they are
there. ``--data FILE.npz|FILE.csv`` replaces the test data everywhere
(:mod:`edgekit.bench.testdata`); a CSV's columns are chosen per artifact from the
``features`` and ``target`` its manifest (or the run's ``run.json``) records.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.bench.testdata import TestData, check_features, csv_for_target, load_test_data
from edgekit.errors import EdgekitError
from edgekit.fileio import load_json
from edgekit.formats.ids import check_ids, id_limits
from edgekit.formats.manifest import (
    MANIFEST_NAME,
    artifact_entry,
    c_source_digests,
    c_source_entry,
    first_shape,
    load_manifest,
    read_verified,
    recorded_sha256,
    validation_failure,
    verify_artifact,
)
from edgekit.formats.sizes import artifact_bytes

DEFAULT_EXPORT_DIR = Path("runs") / "latest" / "export"
FORMATS = {"tflite": ".tflite", "onnx": ".onnx", "keras": ".keras"}
RUNTIME_OF_FORMAT = {"tflite": "tflite", "onnx": "onnxruntime", "keras": "keras", "c": "c"}
FORMAT_OF_SUFFIX = {suffix: fmt for fmt, suffix in FORMATS.items()}
TEST_DATA = "test.npz"


@dataclass
class Target:
    """One artifact to measure."""

    path: Path
    artifact: str
    format: str
    variant: str
    runtime: str
    size_bytes: int
    task: str | None = None
    data: TestData | None = None
    input_shape: list[int] | None = None  # from the manifest, -1 for the batch
    extra_files: list[Path] = field(default_factory=list)  # what it needs beside it (C header)
    # what the manifest or run.json records: feature names, label column, class names
    features: list[str] | None = None
    label_column: str | None = None
    labels: list[str] | None = None
    # provenance: the sha256 the manifest records (the measuring child checks it again) and,
    # when the manifest says the export validation failed, what it found
    sha256: str | None = None
    validation_error: str | None = None
    ids: list[dict[str, Any]] = field(default_factory=list)  # the rows of its embeddings
    fixed_batch: int | None = None  # the manifest's: the batch size its input is fixed to


def _strings(value: Any) -> list[str] | None:
    ok = isinstance(value, list) and value and all(isinstance(v, str) for v in value)
    return list(value) if ok else None


def _describe_data(target: Target, directory: Path, manifest: dict[str, Any] | None) -> None:
    """Fill ``features``, ``label_column`` and ``labels`` from the manifest, else run.json."""
    sources = [manifest or {}, _run_info(directory), _run_info(directory.parent)]
    for info in sources:
        target.features = target.features or _strings(info.get("features"))
        if target.label_column is None and isinstance(info.get("target"), str):
            target.label_column = info["target"]
        target.labels = target.labels or _strings(info.get("labels"))
    target.ids = id_limits(manifest)


def variant_from_name(path: Path) -> str:
    """``model.int8.tflite`` -> ``int8``; ``model.dynamic.onnx`` -> ``onnx-dynamic``."""
    fmt = FORMAT_OF_SUFFIX.get(path.suffix.lower(), "")
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    name = stem.split(".", 1)[1] if "." in stem else stem
    if fmt == "keras":
        return "keras"
    if fmt == "onnx" and not name.startswith("onnx"):
        return f"onnx-{name}"
    return name


def _size(path: Path) -> int:
    """The artifact's bytes, an ``.onnx``'s external data files included. A model too broken
    to name them counts its own file: its row is an error, which the measuring child (run
    in isolation, as for every corrupt model) reports."""
    try:
        return artifact_bytes(path)
    except EdgekitError:
        return path.stat().st_size


def _target(
    path: Path,
    entry: dict[str, Any],
    manifest: dict[str, Any] | None,
    where: Path | None = None,
) -> Target:
    """A target for ``path``; ``entry`` is its manifest entry (``{}`` for none), read from the
    manifest ``where``, whose recorded sha256 the file must have."""
    fmt = FORMAT_OF_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise EdgekitError(
            f"{path}: unknown artifact type {path.suffix or '(no suffix)'!r}; "
            f"edgekit benchmarks {', '.join(FORMATS.values())} files"
        )
    record = where or path.parent / MANIFEST_NAME
    if entry:
        verify_artifact(entry, path, where=record)
    inputs = entry.get("inputs") or []
    target = Target(
        path=path,
        artifact=path.name,
        format=fmt,
        variant=entry.get("variant") or variant_from_name(path),
        runtime=RUNTIME_OF_FORMAT[fmt],
        size_bytes=_size(path),
        task=(manifest or {}).get("task"),
        input_shape=inputs[0]["shape"] if inputs else None,
        sha256=recorded_sha256(entry, where=record) if entry else None,
        validation_error=validation_failure(entry) if entry else None,
    )
    fixed = entry.get("fixed_batch")
    if isinstance(fixed, int) and not isinstance(fixed, bool) and fixed > 0:
        target.fixed_batch = fixed
    _describe_data(target, path.parent, manifest)
    return target


def _c_target(directory: Path, manifest: dict[str, Any]) -> Target | None:
    """The generated C of an export (``c_source`` in the manifest), as a ``c`` target.

    The C is compiled in the measuring child, which also reports its compiled size.
    """
    info = c_source_entry(directory, manifest)
    if info is None:
        return None
    paths = info["paths"]
    where = directory / MANIFEST_NAME
    for path in paths:
        if not path.is_file():
            raise EdgekitError(f"{where}: lists {path.name}, which does not exist")
    # The C is compiled and run natively: it must be the code export wrote (the measuring
    # child compiles copies it checks again, see edgekit.runtime.c).
    digests = c_source_digests(info, where=where)
    for path in paths:
        read_verified(path, digests[path.name], where=where)
    source = paths[-1]
    target = Target(
        path=source,
        artifact=source.name,
        format="c",
        variant=f"c-{info['variant']}",
        runtime="c",
        size_bytes=0,
        task=manifest.get("task"),
        input_shape=first_shape(manifest, "inputs", prefer=info.get("from")),
        extra_files=paths[:-1],
        sha256=digests[source.name],
        validation_error=validation_failure(info),
    )
    _describe_data(target, directory, manifest)
    return target


def _keras_source(directory: Path, manifest: dict[str, Any]) -> Path | None:
    source = manifest.get("source")
    name = source.get("file") if isinstance(source, dict) else None
    if not isinstance(name, str) or not name:
        return None
    for base in (directory, directory.parent):
        candidate = base / Path(name).name
        if candidate.is_file():
            return candidate
    return None


def _keras_target(source: Path, directory: Path, manifest: dict[str, Any]) -> Target:
    """The export's source model (the keras runtime), checked against the recorded sha256."""
    where = directory / MANIFEST_NAME
    recorded = manifest.get("source")
    entry = dict(recorded) if isinstance(recorded, dict) else {}
    entry = {"file": source.name, "sha256": entry.get("sha256")}
    verify_artifact(entry, source, where=where)
    target = _target(source, {}, manifest)
    target.sha256 = entry["sha256"]
    return target


def _run_info(directory: Path) -> dict[str, Any]:
    """``run.json`` of a run directory, if it is one (for a bare ``model.keras``)."""
    path = directory / "run.json"
    if not path.is_file():
        return {}
    try:
        obj = load_json(path, what="run.json")
    except EdgekitError:
        return {}
    return obj if isinstance(obj, dict) else {}


def _test_data(directory: Path) -> TestData | None:
    """The ``test.npz`` beside the artifacts, if there is one."""
    test = directory / TEST_DATA
    return load_test_data(test, what="test data") if test.is_file() else None


def _manifest_targets(directory: Path, runtimes: set[str]) -> list[Target]:
    """An export directory's artifacts, plus its source model (keras) and its C (c)."""
    manifest = load_manifest(directory)
    data = _test_data(directory)
    out = []
    for art in manifest["artifacts"]:
        path = directory / art["file"]
        if not path.is_file():
            raise EdgekitError(
                f"{directory / MANIFEST_NAME}: lists {art['file']}, which does not exist"
            )
        if FORMAT_OF_SUFFIX.get(path.suffix.lower()) is not None and (
            RUNTIME_OF_FORMAT[FORMAT_OF_SUFFIX[path.suffix.lower()]] not in runtimes
        ):
            continue  # not measured: its file is not read
        out.append(_target(path, art, manifest, directory / MANIFEST_NAME))
    if "keras" in runtimes:
        source = _keras_source(directory, manifest)
        if source is None:
            raise EdgekitError(
                f"{directory}: the manifest's source model (.keras) was not found beside it "
                "or in its parent, so the keras runtime has nothing to run"
            )
        out.append(_keras_target(source, directory, manifest))
    if "c" in runtimes:
        c_target = _c_target(directory, manifest)
        if c_target is None and not out:
            raise EdgekitError(
                f"{directory}: holds no C source to benchmark with the c runtime (export "
                "with --c-source float32|int8)"
            )
        if c_target is not None:
            out.append(c_target)
    for target in out:
        target.data = data
    return out


def _loose_targets(directory: Path, runtimes: set[str]) -> list[Target]:
    """A directory without a manifest: its artifact files, by file type."""
    files = sorted(
        p for p in directory.iterdir() if p.suffix.lower() in FORMAT_OF_SUFFIX and p.is_file()
    )
    data = _test_data(directory)
    out = []
    for path in files:
        target = _target(path, {}, None)
        if target.runtime in runtimes:
            target.data = data
            out.append(target)
    return out


def _dir_targets(directory: Path, runtimes: set[str]) -> list[Target]:
    export = directory / "export"
    if not (directory / MANIFEST_NAME).exists() and (export / MANIFEST_NAME).exists():
        directory = export  # a run directory: bench its export
    if (directory / MANIFEST_NAME).exists():
        return _manifest_targets(directory, runtimes)
    return _loose_targets(directory, runtimes)


def _c_file_target(path: Path, runtimes: set[str], explicit_runtime: bool) -> Target:
    """A generated ``.c`` file given directly: its export directory's ``c_source``."""
    directory = path.parent
    if explicit_runtime and "c" not in runtimes:
        raise EdgekitError(
            f"{path}: the {'/'.join(sorted(runtimes))} runtime does not run .c files "
            "(use --runtime c or auto)"
        )
    if not (directory / MANIFEST_NAME).exists():
        raise EdgekitError(
            f"{path}: a .c file is benchmarked from its export directory; the manifest.json "
            "beside it (from export --c-source) is missing"
        )
    manifest = load_manifest(directory)
    target = _c_target(directory, manifest)
    if target is None or target.path.name != path.name:
        raise EdgekitError(
            f"{path}: not the C source that {directory / MANIFEST_NAME} lists (export with "
            "--c-source float32|int8)"
        )
    target.data = _test_data(directory)
    return target


def _file_target(path: Path, runtimes: set[str], explicit_runtime: bool) -> Target:
    directory = path.parent
    suffix = path.suffix.lower()
    if suffix == ".c":
        return _c_file_target(path, runtimes, explicit_runtime)
    fmt = FORMAT_OF_SUFFIX.get(suffix)
    if fmt is None:
        raise EdgekitError(
            f"{path}: unknown artifact type {suffix or '(no suffix)'!r}; "
            f"edgekit benchmarks {', '.join(FORMATS.values())} files"
        )
    if explicit_runtime and RUNTIME_OF_FORMAT[fmt] not in runtimes:
        raise EdgekitError(
            f"{path}: the {'/'.join(sorted(runtimes))} runtime does not run {suffix} files "
            f"(use --runtime {RUNTIME_OF_FORMAT[fmt]} or auto)"
        )
    manifest = load_manifest(directory) if (directory / MANIFEST_NAME).exists() else None
    target = _target(path, artifact_entry(manifest, path.name), manifest)
    test = directory / TEST_DATA
    if fmt == "keras" and not test.is_file():
        test = directory / "data" / TEST_DATA  # a run directory's model.keras
        target.task = target.task or _run_info(directory).get("task")
    if test.is_file():
        target.data = load_test_data(test, what="test data")
    return target


def _check_ids(data: TestData, limits: list[dict[str, Any]]) -> None:
    """Token ids the artifact's embeddings have rows for, checked here (exit 2) rather than
    in the measuring child (a runtime's traceback, or a negative id silently wrapped)."""
    import numpy as np

    from edgekit.formats.npz import load_npz

    if data.table is not None:
        x = np.asarray(data.table.floats(data.columns or []), np.float64)
        check_ids([x], limits, str(data.path), columns=data.columns)
    else:
        check_ids([load_npz(data.path)[data.x_key]], limits, str(data.path))


def resolve_targets(
    paths: Sequence[str | os.PathLike],
    *,
    runtimes: set[str],
    explicit_runtime: bool = False,
    data: str | os.PathLike | None = None,
) -> list[Target]:
    """The artifacts behind ``paths`` (default ``runs/latest/export``), in order."""
    if not paths:
        if not DEFAULT_EXPORT_DIR.exists():
            raise EdgekitError(
                f"no artifact given and {DEFAULT_EXPORT_DIR} does not exist; run `edgekit export` "
                "first or pass an artifact file or export directory"
            )
        paths = [DEFAULT_EXPORT_DIR]
    user_data = load_test_data(data) if data is not None else None
    targets: list[Target] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise EdgekitError(f"{path}: no such file or directory")
        found = (
            _dir_targets(path, runtimes)
            if path.is_dir()
            else [_file_target(path, runtimes, explicit_runtime)]
        )
        if path.is_dir() and not found:
            raise EdgekitError(
                f"{path}: no artifact to benchmark with the {'/'.join(sorted(runtimes))} runtime"
            )
        for target in found:
            key = target.path.resolve()
            if key in seen:
                continue
            seen.add(key)
            if user_data is not None:
                target.data = user_data
            if target.data is not None and target.data.table is not None:
                target.data = csv_for_target(
                    target.data, features=target.features, target=target.label_column,
                    labels=target.labels, input_shape=target.input_shape,
                )  # fmt: skip
            if target.data is not None:
                check_features(target.data, target.input_shape, artifact=target.artifact)
                if target.ids:
                    _check_ids(target.data, target.ids)
            targets.append(target)
    return targets
