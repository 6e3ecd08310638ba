"""Console and markdown tables of bench rows.

Latencies are shown in the unit that suits them (ns, µs, ms, s; the JSON keeps milliseconds),
throughput is samples per second at the median batch time, and a row whose latency spread is
large (:attr:`~edgekit.bench.schema.BenchRow.unstable`) has its p95 marked ``*``.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgekit.bench.schema import MAX_CV, MAX_TAIL_RATIO, BenchRow
from edgekit.tables import format_table, latency, markdown_table, num, percent, rate, size

COLUMNS = (
    "artifact",
    "variant",
    "runtime",
    "device",
    "threads",
    "batch",
    "status",
    "size",
    "p50",
    "p95",
    "samples/s",
    "accuracy",
    "max diff",
)
UNSTABLE_MARK = "*"
UNSTABLE_NOTE = (
    f"{UNSTABLE_MARK} unstable: the latency spread is large (p95/p50 > {MAX_TAIL_RATIO:g} or "
    f"std/mean > {MAX_CV:g} below p99); measure again with --repeat 3 or on a quieter machine"
)


def quality(row: BenchRow) -> str:
    """Accuracy in percent, or ``mae`` for regression."""
    metrics = row.metrics or {}
    if "accuracy" in metrics:
        return percent(metrics["accuracy"])
    if "mae" in metrics:
        return f"mae {num(metrics['mae'])}"
    return "-"


def row_cells(row: BenchRow) -> list[str]:
    lat = row.latency_ms or {}
    p95 = latency(lat.get("p95"))
    return [
        row.artifact,
        row.variant,
        row.runtime,
        row.device,
        str(row.threads),
        str(row.batch),
        row.status,
        size(row.size_bytes),
        latency(lat.get("p50")),
        p95 + UNSTABLE_MARK if row.unstable else p95,
        rate(row.throughput_per_s),
        quality(row),
        num(row.max_abs_diff, 3),
    ]


def notes(rows: Sequence[BenchRow]) -> list[str]:
    """One line per row that did not run (why), and what the unstable mark means."""
    lines = [f"{row.status}: {row.label}: {row.error}" for row in rows if not row.ok]
    return lines + ([UNSTABLE_NOTE] if any(r.unstable for r in rows) else [])


def rows_table(rows: Sequence[BenchRow]) -> str:
    text = format_table(COLUMNS, [row_cells(r) for r in rows])
    extra = notes(rows)
    return text + ("\n\n" + "\n".join(extra) if extra else "")


def rows_markdown(rows: Sequence[BenchRow]) -> str:
    text = markdown_table(COLUMNS, [row_cells(r) for r in rows])
    # "- * ..." would start a nested list in markdown: the note's mark is escaped.
    extra = ["\\" + line if line == UNSTABLE_NOTE else line for line in notes(rows)]
    return text + ("\n\n" + "\n".join(f"- {line}" for line in extra) if extra else "")
