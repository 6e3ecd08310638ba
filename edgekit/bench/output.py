"""Console and markdown tables of bench rows."""

from __future__ import annotations

from collections.abc import Sequence

from edgekit.bench.schema import BenchRow

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


def num(value: float | None, digits: int = 4) -> str:
    """A number with ``digits`` significant digits (``-`` for None)."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 10**digits:
        return f"{value:.0f}"
    return f"{value:.{digits}g}" if abs(value) >= 1e-3 else f"{value:.2e}"


def size(nbytes: int) -> str:
    if nbytes < 1024:
        return f"{nbytes} B"
    if nbytes < 1024**2:
        return f"{nbytes / 1024:.1f} KB"
    return f"{nbytes / 1024**2:.1f} MB"


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


def format_table(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A plain-text table; text columns left-aligned, numbers right-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body, strict=True)]
    numeric = [all(_looks_numeric(r[i]) for r in body) and bool(body) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).rjust(w) if numeric[i] else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(head), rule, *(line(r) for r in body)])


def _looks_numeric(text: str) -> bool:
    t = str(text).replace(" KB", "").replace(" MB", "").replace(" B", "").rstrip("%")
    if t == "-":
        return True
    try:
        float(t)
    except ValueError:
        return False
    return True


def markdown_table(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    def esc(text: str) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in head) + " |"]
    lines.append("|" + "|".join("---" for _ in head) + "|")
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in body]
    return "\n".join(lines)


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
