"""``write_report``: read a bench JSON file, write the markdown (or HTML) report and plots."""

from __future__ import annotations

import os
from pathlib import Path

from edgekit.bench.schema import load_bench
from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_write_files, check_output
from edgekit.report.html import report_html
from edgekit.report.markdown import report_markdown
from edgekit.report.plots import latency_plot, tradeoff_plot


def write_report(
    bench_json: str | os.PathLike, *, out: str | os.PathLike | None = None, html: bool = False
) -> list[Path]:
    """Write ``report.md``, ``latency.png``, ``tradeoff.png`` (and with ``html``,
    ``report.html``: all of it in one file); returns their paths."""
    bench = load_bench(os.fspath(bench_json))
    out_dir = Path(out) if out is not None else bench.path.parent / "report"
    if out_dir.exists() and not out_dir.is_dir():
        raise EdgekitError(f"--out {out_dir}: exists and is not a directory")
    if not bench.rows:
        raise EdgekitError(f"{bench.path}: holds no results to report")
    latency = latency_plot(bench.rows)  # plots first: a missing matplotlib writes nothing
    tradeoff = tradeoff_plot(bench.rows)
    source = bench.path.name
    markdown = report_markdown(bench.rows, bench.environment, source=source)
    files: list[tuple[Path, bytes]] = [
        (out_dir / "report.md", markdown.encode()),
        (out_dir / "latency.png", latency),
        (out_dir / "tradeoff.png", tradeoff),
    ]
    if html:
        page = report_html(bench.rows, bench.environment, source=source,
                           latency_png=latency, tradeoff_png=tradeoff)  # fmt: skip
        files.append((out_dir / "report.html", page.encode()))
    protect = [bench.path]
    for path, _ in files:  # an output over the input: refused before anything is written
        check_output(path, protect=protect)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise EdgekitError(f"cannot write the report to {out_dir}: {err.strerror or err}") from err
    return atomic_write_files(files, protect=protect)


__all__ = ["latency_plot", "report_html", "report_markdown", "tradeoff_plot", "write_report"]
