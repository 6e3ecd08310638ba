"""``manifest.json`` (schema ``edgekit.export/1``): its schema, writing it, reading it safely.

This is the one reader of export manifests: ``export`` writes through :func:`write_manifest`,
and ``bench``, the ``c`` runner, ``device`` transfers and device apps read through
:func:`load_manifest`, which checks the schema, the task, every artifact entry and refuses file
names that would point outside the export directory. It imports neither numpy nor TensorFlow.
"""

from __future__ import annotations

import os
import re
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
C_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


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
    prefix = info.get("prefix")
    # The prefix is pasted into the bench harness's C (#include "<prefix>_model.h"): nothing
    # but a C identifier may get there.
    if not isinstance(prefix, str) or not C_IDENTIFIER.match(prefix):
        raise EdgekitError(
            f"{path}: 'c_source' has prefix {prefix!r}, which is not a C identifier "
            "(letters, digits and '_', not starting with a digit)"
        )
    for key in ("input_size", "output_size"):
        value = info.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**31:
            raise EdgekitError(f"{path}: 'c_source' has {key} {value!r}; expected an integer >= 1")
    return {**info, "paths": [p for p in paths if p.suffix != ".c"] + sources}


def recorded_sha256(entry: dict[str, Any], *, where: str | Path) -> str | None:
    """The ``sha256`` an artifact entry records (None when it records none)."""
    digest = entry.get("sha256")
    if digest is None:
        return None
    if not isinstance(digest, str) or not _SHA256.match(digest):
        raise EdgekitError(f"{where}: {entry.get('file')!r} has a malformed sha256 {digest!r}")
    return digest


def changed_since_export(path: Path, where: str | Path) -> EdgekitError:
    return EdgekitError(
        f"{path}: the file changed since export (its sha256 is not the one {where} records); "
        "restore it or export again"
    )


def verify_artifact(entry: dict[str, Any], path: str | os.PathLike, *, where: str | Path) -> None:
    """Refuse ``path`` when the manifest ``entry`` records a different sha256 for it.

    ``where`` (the manifest) names the record in the message. An entry without ``sha256``
    (a hand-written manifest) has nothing to verify.
    """
    from edgekit.fileio import sha256_file

    digest = recorded_sha256(entry, where=where)
    if digest is not None and sha256_file(path) != digest:
        raise changed_since_export(Path(path), where)


def c_source_digests(info: dict[str, Any], *, where: str | Path) -> dict[str, str]:
    """The sha256 of each C file that a checked ``c_source`` entry records, by file name.

    The C is compiled and run natively by ``bench --runtime c``, so it must be the code that
    export wrote: an entry that records no digest for one of its files is refused.
    """
    digests = info.get("sha256")
    files = info["files"]
    if digests is None:
        raise EdgekitError(
            f"{where}: the c_source entry records no sha256 of {', '.join(files)}, so bench "
            "cannot check that they are the files export wrote; export them again "
            "(edgekit export --c-source ...) to bench them with --runtime c"
        )
    if not isinstance(digests, dict):
        raise EdgekitError(f"{where}: 'c_source' has a malformed 'sha256' (expected an object)")
    out = {}
    for name in files:
        digest = digests.get(name)
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise EdgekitError(
                f"{where}: the c_source entry records no valid sha256 of {name}; export it "
                "again to bench it with --runtime c"
            )
        out[name] = digest
    return out


def read_verified(path: Path, digest: str, *, where: str | Path) -> bytes:
    """The bytes of ``path``, refused unless their sha256 is ``digest`` (read once, so what
    is checked is what the caller uses)."""
    import hashlib

    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != digest:
        raise changed_since_export(path, where)
    return data


def validation_failure(entry: dict[str, Any]) -> str | None:
    """Why an artifact (or ``c_source``) entry failed its export validation; None if it did
    not fail (passed, or not validated)."""
    validation = entry.get("validation")
    if not isinstance(validation, dict) or validation.get("passed") in (True, None):
        return None
    if validation["passed"] is not False:  # "no", 0, "false": a hand-made or damaged manifest
        return f"validation.passed is {validation['passed']!r} (neither true, false nor null)"
    if isinstance(validation.get("error"), str):
        return str(validation["error"])[:200]
    criterion = validation.get("criterion")
    return f"{criterion} not met" if isinstance(criterion, str) else "validation.passed is false"


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
