"""``manifest.json`` (schema ``edgekit.export/1``): its schema, writing it, reading it safely.

This is the one reader of export manifests: ``export`` writes through :func:`write_manifest`,
and ``bench``, the ``c`` runner, ``device`` transfers and device apps read through
:func:`load_manifest`, which checks the schema, the task, every artifact entry and refuses file
names that would point outside the export directory. It imports neither numpy nor TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_write_json, load_json

MANIFEST_SCHEMA = "edgekit.export/1"
MANIFEST_NAME = "manifest.json"
TASKS = ("binary", "multiclass", "regression")
# The artifact formats a manifest lists, and the file suffix of each.
ARTIFACT_FORMATS = {"tflite": ".tflite", "onnx": ".onnx"}
C_VARIANTS = ("float32", "int8")


def manifest_file(path: str | os.PathLike) -> Path:
    """``path`` itself, or the ``manifest.json`` inside it when it is a directory."""
    path = Path(path)
    return path / MANIFEST_NAME if path.is_dir() else path


def safe_member(directory: Path, name: Any, *, where: str | Path) -> Path:
    """``directory / name`` for a plain relative file name that stays inside ``directory``.

    Refuses what is not a non-empty string, NUL bytes and backslashes, absolute names, ``..``
    and names that resolve (through symlinks) outside ``directory``.
    """
    if not isinstance(name, str) or not name:
        raise EdgekitError(f"{where}: an artifact has no valid 'file' name")
    if "\x00" in name or "\\" in name:
        raise EdgekitError(f"{where}: artifact file {name!r} is not a valid file name")
    pure = PurePosixPath(name)
    outside = EdgekitError(f"{where}: artifact file {name!r} points outside {directory}")
    if pure.is_absolute() or ".." in pure.parts:
        raise outside
    path = directory / pure
    root = directory.resolve()
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise outside
    return path


def _valid_tensors(tensors: Any) -> bool:
    return isinstance(tensors, list) and all(
        isinstance(t, dict)
        and isinstance(t.get("shape"), list)
        and all(isinstance(d, int) and not isinstance(d, bool) for d in t["shape"])
        for t in tensors
    )


def check_manifest(data: Any, path: Path) -> dict[str, Any]:
    """Check a parsed manifest (``path`` names it in errors); returns it."""
    if not isinstance(data, dict) or data.get("schema") != MANIFEST_SCHEMA:
        raise EdgekitError(f"{path}: not an edgekit export manifest (schema {MANIFEST_SCHEMA})")
    task = data.get("task")
    if not isinstance(task, str) or task not in TASKS:
        raise EdgekitError(f"{path}: task {task!r} is not one of {', '.join(TASKS)}")
    artifacts = data.get("artifacts")
    if not isinstance(artifacts, list):
        raise EdgekitError(f"{path}: 'artifacts' must be a list")
    for i, art in enumerate(artifacts):
        if not isinstance(art, dict):
            raise EdgekitError(f"{path}: artifacts[{i}] must be an object")
        safe_member(path.parent, art.get("file"), where=path)
        fmt = art.get("format")
        if not isinstance(fmt, str) or fmt not in ARTIFACT_FORMATS:
            raise EdgekitError(
                f"{path}: artifacts[{i}] has format {fmt!r}; expected "
                + " or ".join(ARTIFACT_FORMATS)
            )
        if not isinstance(art.get("variant"), str):
            raise EdgekitError(f"{path}: artifacts[{i}] has a missing or non-string 'variant'")
        for key in ("inputs", "outputs"):
            if key in art and not _valid_tensors(art[key]):
                raise EdgekitError(f"{path}: artifacts[{i}] has malformed {key!r}")
    return data


def load_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check an export manifest (a file, or the export directory holding one)."""
    path = manifest_file(path)
    return check_manifest(load_json(path, what="manifest.json"), path)


def write_manifest(directory: str | os.PathLike, manifest: dict[str, Any]) -> Path:
    """Check ``manifest`` as a reader would, then write it atomically into ``directory``."""
    path = Path(directory) / MANIFEST_NAME
    check_manifest(manifest, path)
    return atomic_write_json(path, manifest)


def artifact_paths(path: str | os.PathLike) -> list[Path]:
    """The artifact files a manifest lists, each checked to stay inside its directory."""
    path = manifest_file(path)
    data = load_manifest(path)
    return [safe_member(path.parent, art["file"], where=path) for art in data["artifacts"]]


def artifact_entry(manifest: dict[str, Any] | None, name: str) -> dict[str, Any]:
    """The manifest's entry for artifact file ``name`` (``{}`` when it lists none)."""
    for art in (manifest or {}).get("artifacts", []):
        if art.get("file") == name:
            return art
    return {}


def first_shape(manifest: dict[str, Any], key: str, prefer: str | None = None) -> list[int] | None:
    """The shape of the first ``inputs``/``outputs`` tensor, from artifact ``prefer`` first."""
    arts = sorted(manifest.get("artifacts", []), key=lambda a: a.get("file") != prefer)
    for art in arts:
        tensors = art.get(key) or []
        if tensors:
            return [int(d) for d in tensors[0]["shape"]]
    return None


def c_source_entry(path: str | os.PathLike, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The checked ``c_source`` entry of the manifest at ``path`` (None when it has none).

    Its ``files`` are a header and a ``.c`` inside the export directory; ``paths`` is added
    with both as paths, the ``.c`` last.
    """
    path = manifest_file(path)
    info = manifest.get("c_source")
    if info is None:
        return None
    files = info.get("files") if isinstance(info, dict) else None
    if (
        not isinstance(info, dict)
        or not isinstance(files, list)
        or len(files) != 2
        or not all(isinstance(f, str) for f in files)
        or info.get("variant") not in C_VARIANTS
    ):
        raise EdgekitError(f"{path}: malformed 'c_source' entry")
    paths = [safe_member(path.parent, name, where=path) for name in files]
    sources = [p for p in paths if p.suffix == ".c"]
    if len(sources) != 1:
        raise EdgekitError(f"{path}: 'c_source' must list one .c file and its header")
    return {**info, "paths": [p for p in paths if p.suffix != ".c"] + sources}


def input_quantization(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The quantization of an artifact entry's (first) input, or None for a float input.

    For an integer model whose input normalization was folded into it, this is per feature
    (``{"scale": [...], "zero_point": [...], "axis": -1}``) and differs from the file's own.
    """
    inputs = entry.get("inputs") or []
    quantization = inputs[0].get("quantization") if inputs else None
    return quantization if isinstance(quantization, dict) else None


def beside(artifact: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest entry of ``artifact`` from the ``manifest.json`` in its directory, when
    there is one that lists this very file (same name and sha256); None otherwise."""
    from edgekit.fileio import sha256_file

    artifact = Path(artifact)
    path = artifact.parent / MANIFEST_NAME
    if not path.is_file():
        return None
    entry = artifact_entry(load_manifest(path), artifact.name)
    if not entry or entry.get("sha256") != sha256_file(artifact):
        return None
    return entry
