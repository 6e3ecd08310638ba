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
    """A budget checked against one row; ``passed`` is None when the row was not measured."""

    budget: Budget
    row: BenchRow
    value: float | None
    passed: bool | None

    def to_json(self) -> dict[str, Any]:
        return {
            "expr": self.budget.expr,
            "artifact": self.row.artifact,
            "variant": self.row.variant,
            "runtime": self.row.runtime,
            "device": self.row.device,
            "threads": self.row.threads,
            "batch": self.row.batch,
            "metric": self.budget.metric,
            "limit": self.budget.limit,
            "value": self.value,
            "passed": self.passed,
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


def check_budgets(budgets: Sequence[Budget], rows: Sequence[BenchRow]) -> list[BudgetCheck]:
    """Every budget against every row in its scope (rows that did not run: ``passed`` None)."""
    checks = []
    for b in budgets:
        for row in rows:
            if not b.applies_to(row):
                continue
            value = row.value(b.metric) if row.ok else None
            passed = (
                None
                if value is None and not row.ok
                else (value is not None and OPS[b.op](value, b.limit))
            )
            checks.append(BudgetCheck(budget=b, row=row, value=value, passed=passed))
    return checks


def violations(checks: Sequence[BudgetCheck]) -> list[BudgetCheck]:
    return [c for c in checks if c.passed is False]


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
    return [
        [
            c.budget.expr,
            c.row.artifact,
            c.row.runtime,
            str(c.row.threads),
            str(c.row.batch),
            metric_value(c.budget.metric, c.value),
        ]
        for c in violations(checks)
    ]


def violations_table(checks: Sequence[BudgetCheck]) -> str:
    """The failed budgets as a plain-text table."""
    from edgekit.tables import format_table

    return format_table(_VIOLATION_HEAD, _violation_cells(checks))


def violations_markdown(checks: Sequence[BudgetCheck]) -> str:
    """The failed budgets as a markdown table."""
    from edgekit.tables import markdown_table

    return markdown_table(_VIOLATION_HEAD, _violation_cells(checks))
