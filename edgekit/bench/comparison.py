"""Noise-aware comparison of two bench results (``edgekit compare``, ``bench --baseline``).

Rows are matched on (artifact, variant, runtime, device, threads, batch). For each pair the
median latency ratio new/base gets a moving-block bootstrap confidence interval from the raw
per-call samples, and the verdict follows from where that interval lies, with
``limit = 1 + max_regression/100``:

- ``regression``: entirely above ``limit`` (the only latency verdict that fails);
- ``slower`` / ``faster``: entirely above / below 1 (a real change, within the allowance);
- ``same``: it holds 1 and stays within ``[1/limit, limit]``;
- ``noise``: it holds 1 but reaches beyond the allowance: too spread out to say.

Rows without samples fall back to comparing their p50 directly (``same`` within the
allowance). Accuracy (or MAE), size and peak memory are compared beside latency, for the eye:
budgets are what gate them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.bench.schema import BenchRow, load_bench
from edgekit.errors import EdgekitError

COMPARE_SCHEMA = "edgekit.compare/1"
MIN_SAMPLES = 10  # below this many samples per side, compare p50 directly
CONFIDENCE = 0.95
VERDICTS = ("regression", "slower", "same", "noise", "faster", "error", "not measured",
            "missing", "not compared", "new")  # fmt: skip
# A gate must not pass on what it did not measure: a row measured in the base that is
# skipped (``not measured``) or absent (``missing``) in the new result fails like an error.
FAILING = ("regression", "error", "not measured", "missing")
UNMEASURED = ("not measured", "missing")


@dataclass
class RowComparison:
    """One matched (or unmatched) measurement and its verdict.

    ``verdict`` is one of :data:`VERDICTS`: the latency verdicts above, ``error`` (measured
    before, fails now), ``not measured`` (measured before, skipped now), ``missing`` (measured
    before, absent now), ``not compared`` (skipped or failed before, or a zero base median) or
    ``new`` (only in the new result).

    ``error`` (measured before, fails now), ``not measured`` (measured before, skipped now) and
    ``missing`` (measured before, absent now) fail with ``regression``: a regression gate that
    passed on a row it did not measure would hide the very change it is there to catch.
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
        return self.verdict in FAILING

    def delta(self, what: str) -> float | None:
        """new - base of ``accuracy`` (percentage points), ``mae``, ``size_kb`` or
        ``peak_rss_mb``; None unless both rows measured it."""
        b, n = _quality(self.base, what), _quality(self.new, what)
        if b is None or n is None:
            return None
        return (n - b) * (100.0 if what == "accuracy" else 1.0)

    def to_json(self) -> dict[str, Any]:
        artifact, variant, runtime, device, threads, batch = self.key
        row = self.new or self.base
        out: dict[str, Any] = {
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
        for what in ("accuracy", "mae", "size_kb", "peak_rss_mb"):
            out[f"base_{what}"] = _quality(self.base, what)
            out[f"new_{what}"] = _quality(self.new, what)
        out["accuracy_delta_pp"] = self.delta("accuracy")
        out["mae_delta"] = self.delta("mae")
        out["size_delta_kb"] = self.delta("size_kb")
        out["peak_rss_delta_mb"] = self.delta("peak_rss_mb")
        return out


def _p50(row: BenchRow | None) -> float | None:
    return (row.latency_ms or {}).get("p50") if row is not None and row.ok else None


def _quality(row: BenchRow | None, what: str) -> float | None:
    """A row's ``accuracy``, ``mae``, ``size_kb`` or ``peak_rss_mb`` (None if not measured)."""
    if row is None or not row.ok:
        return None
    if what == "size_kb":
        return row.size_bytes / 1024.0 if row.size_bytes else None
    value = row.value(what)
    return float(value) if value is not None else None


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

    def counts(self) -> dict[str, int]:
        """How many rows got each verdict (only verdicts that occur, in :data:`VERDICTS` order)."""
        found = [r.verdict for r in self.rows]
        return {v: found.count(v) for v in VERDICTS if v in found}

    def to_json(self) -> dict[str, Any]:
        return {
            "max_regression_pct": self.max_regression,
            "confidence": self.confidence,
            "passed": self.passed,
            "verdicts": self.counts(),
            "rows": [r.to_json() for r in self.rows],
        }

    def table(self) -> str:
        from edgekit.bench.compare_output import comparison_table

        return comparison_table(self)

    def markdown(self) -> str:
        from edgekit.bench.compare_output import comparison_markdown

        return comparison_markdown(self)

    def summary(self) -> str:
        bad = [r for r in self.regressions if r.verdict not in UNMEASURED]
        unmeasured = [r for r in self.regressions if r.verdict in UNMEASURED]
        parts = []
        if bad or not unmeasured:
            parts.append(
                f"{len(bad)} regression(s) beyond {self.max_regression:g}%: {_names(bad)}"
                if bad
                else f"no regression beyond {self.max_regression:g}%"
            )
        if unmeasured:
            parts.append(
                f"{len(unmeasured)} row(s) measured in the base not measured now: "
                f"{_names(unmeasured)}"
            )
        return "; ".join(parts)


def _names(rows: list[RowComparison]) -> str:
    return ", ".join(f"{r.key[0]} ({r.key[2]}, threads={r.key[4]}, batch={r.key[5]})" for r in rows)


def _rows(source: str | Path | Sequence[BenchRow] | Any) -> list[BenchRow]:
    if isinstance(source, (str, Path)):
        return load_bench(source).rows
    rows = getattr(source, "rows", source)
    return list(rows)


def latency_verdict(ratio: float, low: float | None, high: float | None, limit: float) -> str:
    """The verdict of a ratio new/base and its confidence interval (None: no interval)."""
    if low is None or high is None:  # p50 alone: no way to tell a change from noise
        return "regression" if ratio > limit else "faster" if ratio < 1.0 / limit else "same"
    if low > limit:
        return "regression"
    if low > 1.0:
        return "slower"
    if high < 1.0:
        return "faster"
    if low >= 1.0 / limit and high <= limit:
        return "same"
    return "noise"


def compare_rows(
    base: BenchRow, new: BenchRow, *, max_regression: float, seed: int = 0
) -> RowComparison:
    """The verdict for one matched pair of rows."""
    if not base.ok:
        return RowComparison(base.key, base, new, "not compared")
    if new.status == "error":
        return RowComparison(base.key, base, new, "error")
    if not new.ok:
        return RowComparison(base.key, base, new, "not measured")
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
        verdict = latency_verdict(ci.ratio, ci.low, ci.high, limit)
        return RowComparison(base.key, base, new, verdict, ci.ratio, ci.low, ci.high, "bootstrap")
    b, n = _p50(base), _p50(new)
    if not b or n is None:
        return RowComparison(base.key, base, new, "not compared")
    ratio = n / b
    return RowComparison(
        base.key, base, new, latency_verdict(ratio, None, None, limit), ratio, None, None, "p50"
    )


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
            verdict = "missing" if row.ok else "not compared"
            out.rows.append(RowComparison(row.key, row, None, verdict))
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
