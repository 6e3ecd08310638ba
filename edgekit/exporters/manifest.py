"""``manifest.json`` (schema ``edgekit.export/1``): writing it, and reading it safely.

The reader is what device apps and ``edgekit bench`` trust: it checks the schema and refuses
file names that would point outside the export directory. It needs no TensorFlow.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.fileio import load_json

MANIFEST_SCHEMA = "edgekit.export/1"
MANIFEST_NAME = "manifest.json"
TASKS = ("binary", "multiclass", "regression")


def safe_member(directory: Path, name: Any, *, where: str) -> Path:
    """``directory / name`` for a plain relative file name that stays inside ``directory``."""
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name:
        raise EdgekitError(f"{where}: invalid file name {name!r}")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts:
        raise EdgekitError(f"{where}: file name {name!r} points outside {directory}")
    path = directory / pure
    try:
        path.resolve().relative_to(directory.resolve())
    except ValueError:
        raise EdgekitError(f"{where}: file name {name!r} points outside {directory}") from None
    return path


def load_manifest(path: str | Path) -> dict[str, Any]:
    """Read and check an export manifest (a file, or the export directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    data = load_json(path, what="edgekit manifest")
    if not isinstance(data, dict) or data.get("schema") != MANIFEST_SCHEMA:
        raise EdgekitError(f"{path}: not an edgekit manifest (schema {MANIFEST_SCHEMA} expected)")
    if data.get("task") not in TASKS:
        raise EdgekitError(f"{path}: task must be one of {', '.join(TASKS)}")
    artifacts = data.get("artifacts")
    if not isinstance(artifacts, list):
        raise EdgekitError(f"{path}: 'artifacts' must be a list")
    for i, art in enumerate(artifacts):
        where = f"{path}: artifacts[{i}]"
        if not isinstance(art, dict):
            raise EdgekitError(f"{where} must be an object")
        for key in ("file", "format", "variant"):
            if not isinstance(art.get(key), str):
                raise EdgekitError(f"{where}: missing or invalid {key!r}")
        safe_member(path.parent, art["file"], where=where)
    return data


def artifact_paths(manifest_path: str | Path) -> list[Path]:
    """The artifact files a manifest lists, each checked to stay inside its directory."""
    manifest_path = Path(manifest_path)
    if manifest_path.is_dir():
        manifest_path = manifest_path / MANIFEST_NAME
    data = load_manifest(manifest_path)
    return [
        safe_member(manifest_path.parent, art["file"], where=str(manifest_path))
        for art in data["artifacts"]
    ]
