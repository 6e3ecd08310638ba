"""Noise-aware comparison of two bench results (``edgekit compare``, ``bench --baseline``).

Rows are matched on (artifact, variant, runtime, device, threads, batch). For each pair the
median latency ratio new/base gets a moving-block bootstrap confidence interval from the raw
per-call samples; a regression is flagged only when the whole interval lies above
``1 + max_regression/100``, so two runs of the same model on a noisy machine do not flag while
a real slowdown does. Rows without samples fall back to comparing their p50 directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.bench.schema import BenchRow, load_bench
from edgekit.errors import EdgekitError

MIN_SAMPLES = 10  # below this many samples per side, compare p50 directly
CONFIDENCE = 0.95


@dataclass
class RowComparison:
    """One matched (or unmatched) measurement and its verdict.

    ``verdict`` is ``regression``, ``faster``, ``same`` (within the threshold or the noise),
    ``error`` (measured before, fails now), ``not compared`` (skipped or failed before),
    ``missing`` (only in the base) or ``new`` (only in the new result).
    """

    key: tuple
    base: BenchRow | None
    new: BenchRow | None
    verdict: str
    ratio: float | None = None
    low: float | None = None
    high: float | None = None
    method: str | None = None  # "bootstrap" or "p50"

    @property
    def failed(self) -> bool:
        return self.verdict in ("regression", "error")

    def to_json(self) -> dict[str, Any]:
        artifact, variant, runtime, device, threads, batch = self.key
        row = self.new or self.base
        return {
            "artifact": artifact,
            "variant": variant,
            "runtime": runtime,
            "device": device,
            "threads": threads,
            "batch": batch,
            "base_p50_ms": _p50(self.base),
            "new_p50_ms": _p50(self.new),
            "ratio": self.ratio,
            "ci_low": self.low,
            "ci_high": self.high,
            "method": self.method,
            "verdict": self.verdict,
            "error": row.error if row is not None and self.verdict == "error" else None,
        }


def _p50(row: BenchRow | None) -> float | None:
    return (row.latency_ms or {}).get("p50") if row is not None and row.ok else None


@dataclass
class Comparison:
    """The result of :func:`compare`."""

    max_regression: float
    rows: list[RowComparison] = field(default_factory=list)
    confidence: float = CONFIDENCE

    @property
    def regressions(self) -> list[RowComparison]:
        return [r for r in self.rows if r.failed]

    @property
    def passed(self) -> bool:
        return not self.regressions

    def to_json(self) -> dict[str, Any]:
        return {
            "max_regression_pct": self.max_regression,
            "confidence": self.confidence,
            "passed": self.passed,
            "rows": [r.to_json() for r in self.rows],
        }

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        from edgekit.tables import num

        head = [
            "artifact",
            "runtime",
            "device",
            "threads",
            "batch",
            "base p50 ms",
            "new p50 ms",
            "change",
            f"{self.confidence:.0%} CI",
            "verdict",
        ]
        body = []
        for r in self.rows:
            artifact, _, runtime, device, threads, batch = r.key
            change = f"{(r.ratio - 1) * 100:+.1f}%" if r.ratio is not None else "-"
            if r.low is not None and r.high is not None:
                ci = f"{(r.low - 1) * 100:+.1f}%..{(r.high - 1) * 100:+.1f}%"
            else:
                ci = "-"
            body.append(
                [
                    artifact,
                    runtime,
                    device,
                    str(threads),
                    str(batch),
                    num(_p50(r.base)),
                    num(_p50(r.new)),
                    change,
                    ci,
                    r.verdict,
                ]
            )
        return head, body

    def table(self) -> str:
        from edgekit.tables import format_table

        head, body = self._cells()
        return format_table(head, body)

    def markdown(self) -> str:
        from edgekit.tables import markdown_table

        head, body = self._cells()
        return markdown_table(head, body)

    def summary(self) -> str:
        bad = self.regressions
        if not bad:
            return f"no regression beyond {self.max_regression:g}%"
        names = ", ".join(
            f"{r.key[0]} ({r.key[2]}, threads={r.key[4]}, batch={r.key[5]})" for r in bad
        )
        return f"{len(bad)} regression(s) beyond {self.max_regression:g}%: {names}"


def _rows(source: str | Path | Sequence[BenchRow] | Any) -> list[BenchRow]:
    if isinstance(source, (str, Path)):
        return load_bench(source).rows
    rows = getattr(source, "rows", source)
    return list(rows)


def compare_rows(
    base: BenchRow, new: BenchRow, *, max_regression: float, seed: int = 0
) -> RowComparison:
    """The verdict for one matched pair of rows."""
    if not base.ok:
        return RowComparison(base.key, base, new, "not compared")
    if new.status == "error":
        return RowComparison(base.key, base, new, "error")
    if not new.ok:
        return RowComparison(base.key, base, new, "not compared")
    limit = 1.0 + max_regression / 100.0
    if (
        len(base.samples_ms) >= MIN_SAMPLES
        and len(new.samples_ms) >= MIN_SAMPLES
        and min(base.samples_ms) > 0  # a ratio needs a non-zero base (a hand-made file)
    ):
        from edgekit.bench.stats import ratio_of_medians

        ci = ratio_of_medians(
            base.samples_ms,
            new.samples_ms,
            base_rounds=max(1, base.rounds),
            new_rounds=max(1, new.rounds),
            confidence=CONFIDENCE,
            seed=seed,
        )
        if ci.low > limit:
            verdict = "regression"
        elif ci.high < 1.0 / limit:
            verdict = "faster"
        else:
            verdict = "same"
        return RowComparison(base.key, base, new, verdict, ci.ratio, ci.low, ci.high, "bootstrap")
    b, n = _p50(base), _p50(new)
    if not b or n is None:
        return RowComparison(base.key, base, new, "not compared")
    ratio = n / b
    verdict = "regression" if ratio > limit else "faster" if ratio < 1.0 / limit else "same"
    return RowComparison(base.key, base, new, verdict, ratio, None, None, "p50")


def compare(
    base: str | Path | Sequence[BenchRow] | Any,
    new: str | Path | Sequence[BenchRow] | Any,
    *,
    max_regression: float = 10.0,
    seed: int = 0,
) -> Comparison:
    """Compare two bench results (files, :class:`BenchResult` objects or lists of rows).

    >>> result = compare("main.json", "pr.json", max_regression=10)   # doctest: +SKIP
    >>> result.passed, result.table()                                  # doctest: +SKIP
    """
    if not (max_regression >= 0):
        raise EdgekitError(f"--max-regression must be a percentage >= 0, got {max_regression}")
    base_rows, new_rows = _rows(base), _rows(new)
    new_by_key: dict[tuple, list[BenchRow]] = {}
    for row in new_rows:
        new_by_key.setdefault(row.key, []).append(row)
    out = Comparison(max_regression=max_regression)
    matched = 0
    for row in base_rows:
        candidates = new_by_key.get(row.key)
        if not candidates:
            out.rows.append(RowComparison(row.key, row, None, "missing"))
            continue
        matched += 1
        out.rows.append(
            compare_rows(row, candidates.pop(0), max_regression=max_regression, seed=seed)
        )
    for rows in new_by_key.values():
        out.rows.extend(RowComparison(r.key, None, r, "new") for r in rows)
    if base_rows and new_rows and not matched:
        raise EdgekitError(
            "the two bench results have no measurement in common (rows are matched on "
            "artifact, variant, runtime, device, threads and batch)"
        )
    return out
