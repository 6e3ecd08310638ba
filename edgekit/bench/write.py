"""Writing a bench result: the JSON, markdown and JUnit files, and the GitHub step summary."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from edgekit.bench.result import BenchResult
from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_write_files, check_output

# Files in an export directory that bench reads or may read (besides what the manifest lists).
_READ_SUFFIXES = (".tflite", ".onnx", ".keras", ".npz", ".npy", ".c", ".h", ".data")


def bench_inputs(
    paths: Sequence[str | os.PathLike] = (),
    *,
    data: str | os.PathLike | None = None,
    baseline: str | os.PathLike | None = None,
) -> list[Path]:
    """What ``bench`` reads, which its outputs must not replace: every artifact, and for an
    export directory (default ``runs/latest/export``) its manifest, the files it lists, its
    test data and every model or data file in it; ``--data`` and ``--baseline``."""
    from edgekit.bench.targets import DEFAULT_EXPORT_DIR
    from edgekit.formats.manifest import MANIFEST_NAME, artifact_paths

    inputs: list[Path] = []
    for item in [Path(p) for p in paths] or [DEFAULT_EXPORT_DIR]:
        inputs.append(item)
        if not item.is_dir():
            continue
        inputs += [item / MANIFEST_NAME, item / "test.npz"]
        with contextlib.suppress(EdgekitError):  # bench itself says what is wrong with it
            inputs += artifact_paths(item)
        with contextlib.suppress(OSError):
            inputs += [p for p in item.iterdir() if p.suffix.lower() in _READ_SUFFIXES]
    inputs += [Path(p) for p in (data, baseline) if p is not None]
    return inputs


def _named(
    json_path: str | os.PathLike | None,
    markdown_path: str | os.PathLike | None,
    junit_path: str | os.PathLike | None,
) -> list[tuple[str, Path]]:
    named = [("--json", json_path), ("--markdown", markdown_path), ("--junit", junit_path)]
    return [(flag, Path(path)) for flag, path in named if path is not None]


def check_outputs(
    *,
    json_path: str | os.PathLike | None = None,
    markdown_path: str | os.PathLike | None = None,
    junit_path: str | os.PathLike | None = None,
    protect: Iterable[str | os.PathLike] = (),
) -> None:
    """Refuse, before anything is measured, an output that is one of the inputs
    (:func:`bench_inputs`), a directory, or the same file as another output."""
    protect = list(protect)
    seen: list[tuple[str, Path]] = []
    for flag, path in _named(json_path, markdown_path, junit_path):
        real = check_output(path, protect=protect)
        for other_flag, other in seen:
            if real == other:
                raise EdgekitError(f"{flag} and {other_flag} name the same file ({path})")
        seen.append((flag, real))


def write_outputs(
    result: BenchResult,
    *,
    json_path: str | os.PathLike | None = None,
    markdown_path: str | os.PathLike | None = None,
    junit_path: str | os.PathLike | None = None,
    step_summary: bool = True,
    protect: Iterable[str | os.PathLike] = (),
) -> list[Path]:
    """Write the JSON, markdown and JUnit XML files atomically (all written, or none if
    one cannot be); append the markdown to ``$GITHUB_STEP_SUMMARY`` when that is set.

    ``protect`` lists the inputs (:func:`bench_inputs`): an output that is one of them is
    refused. A symlinked output is written through; ``/dev/stdout`` is written in place.
    """
    import json

    from edgekit.bench.ci import append_step_summary, junit_xml

    protect = list(protect)
    check_outputs(json_path=json_path, markdown_path=markdown_path, junit_path=junit_path,
                  protect=protect)  # fmt: skip
    render = {
        "--json": lambda: json.dumps(result.to_json(), indent=2) + "\n",
        "--markdown": result.markdown,
        "--junit": lambda: junit_xml(result),
    }
    files = [(path, render[flag]().encode("utf-8"))
             for flag, path in _named(json_path, markdown_path, junit_path)]  # fmt: skip
    written = atomic_write_files(files, protect=protect)
    if step_summary:
        append_step_summary(result.markdown())
    return written
