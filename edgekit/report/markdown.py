"""``report.md``: the bench table, the fastest artifact per sample, and the plots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgekit.bench.output import COLUMNS, UNSTABLE_NOTE, row_cells
from edgekit.bench.schema import BenchRow
from edgekit.report.plots import timed
from edgekit.tables import latency, markdown_table


def machine(environment: dict[str, Any]) -> str:
    env = environment
    return f"{env.get('cpu', '?')}, {env.get('cores', '?')} cores, Python {env.get('python', '?')}"


def fastest_per_sample(rows: Sequence[BenchRow]) -> str | None:
    """One sentence naming the lowest latency per sample: p50 / batch, with both stated."""
    best = [r for r in rows if timed(r)]
    if not best:
        return None
    r = min(best, key=lambda row: (row.latency_ms or {})["p50"] / row.batch)
    p50 = (r.latency_ms or {})["p50"]
    threads = f"{r.threads} thread{'s' if r.threads != 1 else ''}"
    per_batch = f"p50 {latency(p50)} per call of batch {r.batch}" if r.batch > 1 else "batch 1"
    return (
        f"Fastest per sample: {r.artifact} on {r.runtime} ({r.device}), {latency(p50 / r.batch)} "
        f"per sample ({per_batch}, {threads})."
    )


def report_markdown(rows: Sequence[BenchRow], environment: dict, *, source: str) -> str:
    lines = [
        "# edgekit bench report",
        "",
        f"Source: `{source}`. Machine: {machine(environment)}. Latencies are per call of one "
        "batch; samples/s is batch / p50.",
        "",
        markdown_table(COLUMNS, [row_cells(r) for r in rows]),
        "",
    ]
    fastest = fastest_per_sample(rows)
    if fastest:
        lines += [fastest, ""]
    if any(r.unstable for r in rows):
        lines += ["\\" + UNSTABLE_NOTE, ""]
    lines += [
        "![latency distribution per artifact](latency.png)",
        "",
        "![accuracy vs size, coloured by p50](tradeoff.png)",
        "",
    ]
    not_ok = [r for r in rows if not r.ok]
    if not_ok:
        lines += [f"- {r.status}: {r.label}: {r.error}" for r in not_ok] + [""]
    return "\n".join(lines)
