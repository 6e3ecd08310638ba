"""Console and markdown tables of bench rows."""

from __future__ import annotations

from collections.abc import Sequence

from edgekit.bench.schema import BenchRow
from edgekit.tables import format_table, markdown_table, num, size

COLUMNS = (
    "artifact",
    "variant",
    "runtime",
    "device",
    "threads",
    "batch",
    "status",
    "size",
    "p50 ms",
    "p95 ms",
    "throughput/s",
    "accuracy",
    "max diff",
)


def quality(row: BenchRow) -> str:
    """Accuracy as a fraction, or ``mae`` for regression."""
    metrics = row.metrics or {}
    if "accuracy" in metrics:
        return f"{metrics['accuracy']:.4f}"
    if "mae" in metrics:
        return f"mae {num(metrics['mae'])}"
    return "-"


def row_cells(row: BenchRow) -> list[str]:
    lat = row.latency_ms or {}
    return [
        row.artifact,
        row.variant,
        row.runtime,
        row.device,
        str(row.threads),
        str(row.batch),
        row.status,
        size(row.size_bytes),
        num(lat.get("p50")),
        num(lat.get("p95")),
        num(row.throughput_per_s, 5) if row.throughput_per_s is not None else "-",
        quality(row),
        num(row.max_abs_diff, 3),
    ]


def notes(rows: Sequence[BenchRow]) -> list[str]:
    """One line per row that did not run: why."""
    return [f"{row.status}: {row.label}: {row.error}" for row in rows if not row.ok]


def rows_table(rows: Sequence[BenchRow]) -> str:
    text = format_table(COLUMNS, [row_cells(r) for r in rows])
    extra = notes(rows)
    return text + ("\n\n" + "\n".join(extra) if extra else "")


def rows_markdown(rows: Sequence[BenchRow]) -> str:
    text = markdown_table(COLUMNS, [row_cells(r) for r in rows])
    extra = notes(rows)
    return text + ("\n\n" + "\n".join(f"- {line}" for line in extra) if extra else "")
