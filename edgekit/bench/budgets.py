"""``--budget`` expressions: ``[VARIANT:]METRIC OP NUMBER``, checked against bench rows.

>>> b = parse_budget("int8:p95_ms<=1.5")
>>> (b.scope, b.metric, b.op, b.limit)
('int8', 'p95_ms', '<=', 1.5)
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from edgekit.bench.schema import BenchRow
from edgekit.errors import EdgekitError

METRICS = (
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "mean_ms",
    "init_ms",
    "throughput_per_s",
    "size_kb",
    "peak_rss_mb",
    "accuracy",
    "accuracy_drop",
    "max_abs_diff",
    "mae",
    "rmse",
    "arena_kb",
)
OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
_EXPR = re.compile(
    r"^\s*(?:(?P<scope>[^\s:<>=]+)\s*:\s*)?(?P<metric>[A-Za-z0-9_]+)\s*"
    r"(?P<op><=|>=|<|>)\s*(?P<limit>[^\s<>=]+)\s*$"
)
_HELP = "expected [VARIANT:]METRIC OP NUMBER, e.g. p95_ms<=2 or int8:accuracy>=0.95"


@dataclass(frozen=True)
class Budget:
    """One parsed budget; ``scope`` is a variant (or an artifact file name), or None."""

    expr: str
    metric: str
    op: str
    limit: float
    scope: str | None = None

    def applies_to(self, row: BenchRow) -> bool:
        return self.scope is None or self.scope in (row.variant, row.artifact)


@dataclass
class BudgetCheck:
    """A budget checked against one row.

    ``passed`` is None for a row that was not measured (skipped or failed) while other rows
    of the budget were; a budget that measured nothing is failed (``passed`` False) on each
    of its rows, and a budget that matched no row at all is one failed check without a row.
    ``reason`` says why such a check failed.
    """

    budget: Budget
    row: BenchRow | None
    value: float | None
    passed: bool | None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        row = self.row
        return {
            "expr": self.budget.expr,
            "artifact": row.artifact if row else None,
            "variant": row.variant if row else None,
            "runtime": row.runtime if row else None,
            "device": row.device if row else None,
            "threads": row.threads if row else None,
            "batch": row.batch if row else None,
            "metric": self.budget.metric,
            "limit": self.budget.limit,
            "value": self.value,
            "passed": self.passed,
            "reason": self.reason,
        }


def parse_budget(text: str) -> Budget:
    """Parse one expression; a malformed one is a user error naming the valid metrics."""
    m = _EXPR.match(text or "")
    if not m:
        raise EdgekitError(f"malformed --budget {text!r}: {_HELP}; OP is one of <=, <, >=, >")
    metric = m["metric"]
    if metric not in METRICS:
        raise EdgekitError(
            f"unknown metric {metric!r} in --budget {text!r}; choose from {', '.join(METRICS)}"
        )
    try:
        limit = float(m["limit"])
    except ValueError:
        limit = math.nan
    if not math.isfinite(limit):
        raise EdgekitError(f"malformed --budget {text!r}: {m['limit']!r} is not a number")
    return Budget(expr=text.strip(), metric=metric, op=m["op"], limit=limit, scope=m["scope"])


def parse_budgets(texts: Iterable[str]) -> list[Budget]:
    return [parse_budget(t) for t in texts]


def check_scopes(
    budgets: Sequence[Budget], variants: Iterable[str], artifacts: Iterable[str] = ()
) -> None:
    """Refuse a budget whose scope names no variant or artifact being measured."""
    variants = list(dict.fromkeys(variants))
    known = set(variants) | set(artifacts)
    for b in budgets:
        if b.scope is not None and b.scope not in known:
            raise EdgekitError(
                f"--budget {b.expr!r} matches no result: no variant or artifact {b.scope!r} "
                f"(variants here: {', '.join(variants) or 'none'})"
            )


def _names(values: Iterable[str | None]) -> str:
    return ", ".join(dict.fromkeys(str(v) for v in values if v is not None)) or "none"


def unmatched_reason(budget: Budget, rows: Sequence[BenchRow]) -> str:
    """Why a budget matched no row: the variants and artifacts that are there."""
    return (
        f"budget {budget.expr} matched no result (variants here: "
        f"{_names(r.variant for r in rows)}; artifacts: {_names(r.artifact for r in rows)})"
    )


def unmeasured_reason(budget: Budget, rows: Sequence[BenchRow]) -> str:
    """Why a budget measured nothing: every row it applies to was skipped or failed."""
    counts = {s: sum(r.status == s for r in rows) for s in ("skipped", "error")}
    how = " and ".join(f"{n} {'failed' if s == 'error' else s}" for s, n in counts.items() if n)
    first = next((r.error for r in rows if r.error), None)
    return (
        f"budget {budget.expr} measured nothing: all {len(rows)} row(s) it applies to were "
        f"not measured ({how}{': ' + first if first else ''})"
    )


def check_budgets(budgets: Sequence[Budget], rows: Sequence[BenchRow]) -> list[BudgetCheck]:
    """Every budget against every row in its scope; only measured rows count.

    A row that did not run is not judged (``passed`` None) as long as another row of the
    budget was measured; a budget none of whose rows was measured, or that matches no row,
    fails.
    """
    checks = []
    for b in budgets:
        scoped = [row for row in rows if b.applies_to(row)]
        if not scoped:
            checks.append(BudgetCheck(b, None, None, False, unmatched_reason(b, rows)))
            continue
        measured = any(row.ok for row in scoped)
        reason = None if measured else unmeasured_reason(b, scoped)
        for row in scoped:
            if row.ok:
                value = row.value(b.metric)
                passed = value is not None and OPS[b.op](value, b.limit)
                checks.append(BudgetCheck(budget=b, row=row, value=value, passed=passed))
            else:
                checks.append(BudgetCheck(b, row, None, None if measured else False, reason=reason))
    return checks


def violations(checks: Sequence[BudgetCheck]) -> list[BudgetCheck]:
    return [c for c in checks if c.passed is False]


def failure_reasons(checks: Sequence[BudgetCheck]) -> list[str]:
    """One line per budget that failed without a measurement (matched or measured nothing)."""
    return list(dict.fromkeys(c.reason for c in checks if c.passed is False and c.reason))


_VIOLATION_HEAD = ["budget", "artifact", "runtime", "threads", "batch", "value"]


def metric_value(metric: str, value: float | None) -> str:
    """A budget metric's value as the tables show it (latencies in their own unit)."""
    from edgekit.tables import latency, num, rate

    if value is None:
        return "not measured"
    if metric.endswith("_ms"):
        return latency(value)
    if metric == "throughput_per_s":
        return rate(value)
    return num(value)


def _violation_cells(checks: Sequence[BudgetCheck]) -> list[list[str]]:
    cells = []
    for c in violations(checks):
        if c.row is None:
            cells.append([c.budget.expr, "-", "-", "-", "-", "matched nothing"])
            continue
        value = metric_value(c.budget.metric, c.value)
        if c.reason is not None:
            value = f"not measured ({c.row.status})"
        cells.append(
            [c.budget.expr, c.row.artifact, c.row.runtime, str(c.row.threads),
             str(c.row.batch), value]
        )  # fmt: skip
    return cells


def violations_table(checks: Sequence[BudgetCheck]) -> str:
    """The failed budgets as a plain-text table."""
    from edgekit.tables import format_table

    text = format_table(_VIOLATION_HEAD, _violation_cells(checks))
    reasons = failure_reasons(checks)
    return text + ("\n\n" + "\n".join(reasons) if reasons else "")


def violations_markdown(checks: Sequence[BudgetCheck]) -> str:
    """The failed budgets as a markdown table."""
    from edgekit.tables import markdown_table

    text = markdown_table(_VIOLATION_HEAD, _violation_cells(checks))
    reasons = failure_reasons(checks)
    return text + ("\n\n" + "\n".join(f"- {r}" for r in reasons) if reasons else "")
