"""Writing a bench result: the JSON, markdown and JUnit files, and the GitHub step summary."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from edgekit.bench.result import BenchResult
from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_write_json, atomic_write_text


def write_outputs(
    result: BenchResult,
    *,
    json_path: str | os.PathLike | None = None,
    markdown_path: str | os.PathLike | None = None,
    junit_path: str | os.PathLike | None = None,
    step_summary: bool = True,
) -> list[Path]:
    """Write the JSON, markdown and JUnit XML files atomically; append the markdown to
    ``$GITHUB_STEP_SUMMARY`` when that is set."""
    from edgekit.bench.ci import junit_xml

    writers: list[tuple[str | os.PathLike | None, Callable[[Path], Path]]] = [
        (json_path, lambda p: atomic_write_json(p, result.to_json())),
        (markdown_path, lambda p: atomic_write_text(p, result.markdown())),
        (junit_path, lambda p: atomic_write_text(p, junit_xml(result))),
    ]
    written = []
    for path, write in writers:
        if path is None:
            continue
        try:
            written.append(write(Path(path)))
        except OSError as err:
            raise EdgekitError(f"cannot write {path}: {err.strerror or err}") from err
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary and summary:
        try:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(result.markdown() + "\n")
        except OSError as err:
            raise EdgekitError(
                f"cannot append to $GITHUB_STEP_SUMMARY ({summary}): {err.strerror or err}"
            ) from err
    return written
