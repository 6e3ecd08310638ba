"""What an artifact's manifest (or its run's ``run.json``) says about its inputs and outputs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.fileio import load_json
from edgekit.formats.ids import id_limits
from edgekit.formats.manifest import MANIFEST_NAME, artifact_entry, load_manifest
from edgekit.formats.run_dir import RUN_SCHEMA


@dataclass
class ArtifactInfo:
    """The task, class names, feature names and label column known for an artifact."""

    task: str | None = None
    labels: list[str] | None = None
    features: list[str] | None = None
    target: str | None = None
    ids: list[dict[str, Any]] = field(default_factory=list)  # the manifest's embedding rows


def _strings(value: Any) -> list[str] | None:
    ok = isinstance(value, list) and value and all(isinstance(v, str) for v in value)
    return list(value) if ok else None


def _run_json(directory: Path) -> dict[str, Any]:
    path = directory / "run.json"
    if not path.is_file():
        return {}
    try:
        info = load_json(path, what="run.json")
    except EdgekitError:
        return {}
    return info if isinstance(info, dict) and info.get("schema") == RUN_SCHEMA else {}


def artifact_info(artifact: str | os.PathLike) -> ArtifactInfo:
    """From the ``manifest.json`` beside ``artifact`` when it lists the file, then from the
    ``run.json`` of its run (beside it, or one directory up for an export directory)."""
    path = Path(artifact)
    sources: list[dict[str, Any]] = []
    if (path.parent / MANIFEST_NAME).is_file():
        manifest = load_manifest(path.parent)
        if artifact_entry(manifest, path.name) or path.suffix == ".c":
            sources.append(manifest)
    sources += [_run_json(path.parent), _run_json(path.parent.parent)]
    info = ArtifactInfo()
    for source in sources:
        if info.task is None and isinstance(source.get("task"), str):
            info.task = source["task"]
        info.labels = info.labels or _strings(source.get("labels"))
        info.features = info.features or _strings(source.get("features"))
        if info.target is None and isinstance(source.get("target"), str):
            info.target = source["target"]
        info.ids = info.ids or id_limits(source)
    return info
