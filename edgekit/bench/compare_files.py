"""``edgekit compare``'s API: two bench files compared, the markdown written, the JSON document."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.bench.comparison import COMPARE_SCHEMA, Comparison, compare
from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_write_text


@dataclass
class CompareReport:
    """A comparison of two bench files, and where they came from."""

    base: Path
    new: Path
    comparison: Comparison

    def to_json(self) -> dict[str, Any]:
        """``{"schema": "edgekit.compare/1", "base": ..., "new": ..., "passed": ..., "rows": ...}``"""
        return {
            "schema": COMPARE_SCHEMA,
            "base": str(self.base),
            "new": str(self.new),
            **self.comparison.to_json(),
        }

    def markdown(self) -> str:
        c = self.comparison
        return (
            f"## edgekit compare\n\n`{self.base.name}` -> `{self.new.name}` (max regression "
            f"{c.max_regression:g}%)\n\n{c.markdown()}\n"
        )


def compare_report(
    base: str | os.PathLike,
    new: str | os.PathLike,
    *,
    max_regression: float = 10.0,
    markdown_path: str | os.PathLike | None = None,
) -> CompareReport:
    """Compare two bench JSON files; write the markdown table to ``markdown_path`` atomically
    and append it to ``$GITHUB_STEP_SUMMARY`` when that is set.

    >>> report = compare_report("main.json", "pr.json", markdown_path="cmp.md")  # doctest: +SKIP
    >>> report.comparison.passed, report.to_json()["verdicts"]                     # doctest: +SKIP
    """
    report = CompareReport(Path(base), Path(new), compare(base, new, max_regression=max_regression))
    if markdown_path is not None:
        try:
            atomic_write_text(markdown_path, report.markdown())
        except OSError as err:
            raise EdgekitError(f"cannot write {markdown_path}: {err.strerror or err}") from err
    from edgekit.bench.ci import append_step_summary

    append_step_summary(report.markdown())
    return report
