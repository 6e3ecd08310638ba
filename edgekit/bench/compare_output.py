"""Console and markdown tables of a :class:`~edgekit.bench.comparison.Comparison`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgekit.tables import format_table, latency, markdown_table

if TYPE_CHECKING:
    from edgekit.bench.comparison import Comparison, RowComparison

LEGEND = (
    "regression: slower beyond the allowance (fails); slower/faster: a real change within it; "
    "same: no change beyond the allowance; noise: too spread out to say (measure with "
    "--repeat 3 or more); not measured/missing: measured in the base, skipped or absent now "
    "(fails)"
)


def _pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}%"


def _signed(value: float | None, unit: str, decimals: int = 1) -> str:
    if value is None:
        return "-"
    if round(value, decimals) == 0:
        value = 0.0  # "+0.00 pp" as the export table writes it, never "-0.00"
    return f"{value:+.{decimals}f} {unit}".rstrip()


def _quality(r: RowComparison) -> str:
    accuracy = r.delta("accuracy")
    if accuracy is not None:
        return _signed(accuracy, "pp", 2)
    mae = r.delta("mae")
    return "-" if mae is None else f"mae {mae:+.3g}"


def _cells(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    head = ["artifact", "runtime", "device", "threads", "batch", "base p50", "new p50", "change",
            f"{comparison.confidence:.0%} CI", "accuracy", "size", "peak RSS", "verdict"]  # fmt: skip
    body = []
    for r in comparison.rows:
        artifact, _, runtime, device, threads, batch = r.key
        ci = f"{_pct(r.low)}..{_pct(r.high)}" if r.low is not None and r.high is not None else "-"
        body.append(
            [
                artifact,
                runtime,
                device,
                str(threads),
                str(batch),
                latency((r.base.latency_ms or {}).get("p50") if r.base and r.base.ok else None),
                latency((r.new.latency_ms or {}).get("p50") if r.new and r.new.ok else None),
                _pct(r.ratio) if r.ratio is not None else "-",
                ci,
                _quality(r),
                _signed(r.delta("size_kb"), "KB"),
                _signed(r.delta("peak_rss_mb"), "MB"),
                r.verdict,
            ]
        )
    return head, body


def _verdicts(comparison: Comparison) -> str:
    counts = ", ".join(f"{n} {v}" for v, n in comparison.counts().items())
    return f"verdicts: {counts or 'none'}"


def comparison_table(comparison: Comparison) -> str:
    """The plain-text table, then a count of the verdicts and what they mean."""
    head, body = _cells(comparison)
    return "\n".join([format_table(head, body), "", _verdicts(comparison), LEGEND])


def comparison_markdown(comparison: Comparison) -> str:
    """The same as :func:`comparison_table`, in markdown."""
    head, body = _cells(comparison)
    return "\n".join([markdown_table(head, body), "", _verdicts(comparison) + ".", "", LEGEND])
