"""What to measure: artifacts from paths and export directories, with their test data.

An export directory is read through its ``manifest.json`` (``edgekit.export/1``), whose file
names must stay inside the directory. A bare artifact file borrows ``manifest.json`` and
``test.npz`` from its own directory when they are there. ``--data FILE.npz`` replaces the test
data everywhere.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.fileio import load_json
from edgekit.formats.manifest import (
    MANIFEST_NAME,
    artifact_entry,
    c_source_entry,
    first_shape,
    load_manifest,
)
from edgekit.formats.npz import NUMERIC_KINDS, dtype_name, npz_headers

DEFAULT_EXPORT_DIR = Path("runs") / "latest" / "export"
FORMATS = {"tflite": ".tflite", "onnx": ".onnx", "keras": ".keras"}
RUNTIME_OF_FORMAT = {"tflite": "tflite", "onnx": "onnxruntime", "keras": "keras", "c": "c"}
FORMAT_OF_SUFFIX = {suffix: fmt for fmt, suffix in FORMATS.items()}


@dataclass
class TestData:
    """A validated ``.npz`` of test data and the keys of its arrays."""

    path: Path
    x_key: str
    y_key: str | None
    reference_key: str | None
    n: int
    feature_shape: tuple[int, ...]


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


def load_test_data(path: str | Path, *, what: str = "--data") -> TestData:
    """Check a test-data ``.npz``: ``x`` (or ``x_test``), optional ``y``/``reference``."""
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise EdgekitError(f"{path}: not a valid .npz file (not a zip archive)")
    arrays = npz_headers(path)
    if any(descr[1:2] == "O" for _, descr in arrays.values()):
        raise EdgekitError(f"{path}: holds pickled objects, which edgekit refuses to load")
    x_key = next((k for k in ("x", "x_test") if k in arrays), None)
    if x_key is None:
        raise EdgekitError(
            f"{what} {path}: no array 'x' (or 'x_test'); it has {', '.join(arrays) or 'none'}"
        )
    x_shape, x_descr = arrays[x_key]
    if len(x_shape) < 2 or x_shape[0] == 0 or x_descr[1:2] not in tuple(NUMERIC_KINDS):
        raise EdgekitError(
            f"{what} {path}: '{x_key}' must be a non-empty numeric array of shape "
            f"[samples, features...], got {dtype_name(x_descr)} {list(x_shape)}"
        )
    y_key = next((k for k in ("y", "y_test") if k in arrays), None)
    ref_key = "reference" if "reference" in arrays else None
    for key in (y_key, ref_key):
        if key is None:
            continue
        shape, descr = arrays[key]
        if not shape or shape[0] != x_shape[0] or descr[1:2] not in tuple(NUMERIC_KINDS):
            raise EdgekitError(
                f"{what} {path}: '{key}' must be numeric with one entry per sample of "
                f"'{x_key}' ({x_shape[0]}), got {dtype_name(descr)} {list(shape)}"
            )
    return TestData(
        path=path,
        x_key=x_key,
        y_key=y_key,
        reference_key=ref_key,
        n=x_shape[0],
        feature_shape=x_shape[1:],
    )


def check_features(target: Target) -> None:
    """Refuse test data whose feature shape the manifest says the model does not take."""
    if target.data is None or not target.input_shape:
        return
    want = target.input_shape[1:]
    have = target.data.feature_shape
    if len(want) != len(have) or any(w not in (-1, h) for w, h in zip(want, have, strict=False)):
        raise EdgekitError(
            f"{target.data.path}: '{target.data.x_key}' has samples of shape {list(have)}, "
            f"{target.artifact} takes [batch, {', '.join(map(str, want))}]"
        )


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


def _target(path: Path, entry: dict[str, Any], manifest: dict[str, Any] | None) -> Target:
    fmt = FORMAT_OF_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise EdgekitError(
            f"{path}: unknown artifact type {path.suffix or '(no suffix)'!r}; "
            f"edgekit benchmarks {', '.join(FORMATS.values())} files"
        )
    inputs = entry.get("inputs") or []
    return Target(
        path=path,
        artifact=path.name,
        format=fmt,
        variant=entry.get("variant") or variant_from_name(path),
        runtime=RUNTIME_OF_FORMAT[fmt],
        size_bytes=path.stat().st_size,
        task=(manifest or {}).get("task"),
        input_shape=inputs[0]["shape"] if inputs else None,
    )


def _c_target(directory: Path, manifest: dict[str, Any]) -> Target | None:
    """The generated C of an export (``c_source`` in the manifest), as a ``c`` target.

    The C is compiled in the measuring child, which also reports its compiled size.
    """
    info = c_source_entry(directory, manifest)
    if info is None:
        return None
    paths = info["paths"]
    for path in paths:
        if not path.is_file():
            raise EdgekitError(
                f"{directory / MANIFEST_NAME}: lists {path.name}, which does not exist"
            )
    source = paths[-1]
    return Target(
        path=source,
        artifact=source.name,
        format="c",
        variant=f"c-{info['variant']}",
        runtime="c",
        size_bytes=0,
        task=manifest.get("task"),
        input_shape=first_shape(manifest, "inputs", prefer=info.get("from")),
        extra_files=paths[:-1],
    )


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


def _dir_targets(directory: Path, runtimes: set[str]) -> list[Target]:
    if not (directory / "manifest.json").exists() and (directory / "export/manifest.json").exists():
        directory = directory / "export"  # a run directory: bench its export
    if (directory / "manifest.json").exists():
        manifest = load_manifest(directory)
        test = directory / "test.npz"
        data = load_test_data(test, what="test data") if test.is_file() else None
        out = []
        for art in manifest["artifacts"]:
            path = directory / art["file"]
            if not path.is_file():
                raise EdgekitError(
                    f"{directory / 'manifest.json'}: lists {art['file']}, which does not exist"
                )
            target = _target(path, art, manifest)
            if target.runtime in runtimes:
                target.data = data
                out.append(target)
        if "keras" in runtimes:
            source = _keras_source(directory, manifest)
            if source is None:
                raise EdgekitError(
                    f"{directory}: the manifest's source model (.keras) was not found beside it "
                    "or in its parent, so the keras runtime has nothing to run"
                )
            target = _target(source, {}, manifest)
            target.data = data
            out.append(target)
        if "c" in runtimes:
            target = _c_target(directory, manifest)
            if target is None and not out:
                raise EdgekitError(
                    f"{directory}: holds no C source to benchmark with the c runtime (export "
                    "with --c-source float32|int8)"
                )
            if target is not None:
                target.data = data
                out.append(target)
        return out
    files = sorted(
        p for p in directory.iterdir() if p.suffix.lower() in FORMAT_OF_SUFFIX and p.is_file()
    )
    test = directory / "test.npz"
    data = load_test_data(test, what="test data") if test.is_file() else None
    out = []
    for path in files:
        target = _target(path, {}, None)
        if target.runtime in runtimes:
            target.data = data
            out.append(target)
    return out


def _c_file_target(path: Path, runtimes: set[str], explicit_runtime: bool) -> Target:
    """A generated ``.c`` file given directly: its export directory's ``c_source``."""
    directory = path.parent
    if explicit_runtime and "c" not in runtimes:
        raise EdgekitError(
            f"{path}: the {'/'.join(sorted(runtimes))} runtime does not run .c files "
            "(use --runtime c or auto)"
        )
    if not (directory / "manifest.json").exists():
        raise EdgekitError(
            f"{path}: a .c file is benchmarked from its export directory; the manifest.json "
            "beside it (from export --c-source) is missing"
        )
    manifest = load_manifest(directory)
    target = _c_target(directory, manifest)
    if target is None or target.path.name != path.name:
        raise EdgekitError(
            f"{path}: not the C source that {directory / 'manifest.json'} lists (export with "
            "--c-source float32|int8)"
        )
    test = directory / "test.npz"
    if test.is_file():
        target.data = load_test_data(test, what="test data")
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
    manifest = load_manifest(directory) if (directory / "manifest.json").exists() else None
    target = _target(path, artifact_entry(manifest, path.name), manifest)
    test = directory / "test.npz"
    if fmt == "keras" and not test.is_file():
        test = directory / "data" / "test.npz"  # a run directory's model.keras
        target.task = target.task or _run_info(directory).get("task")
    if test.is_file():
        target.data = load_test_data(test, what="test data")
    return target


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
            check_features(target)
            targets.append(target)
    return targets
