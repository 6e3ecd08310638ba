""":class:`BenchResult`: the rows of a bench run, its gates' outcome, and how it is shown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgekit.bench.budgets import BudgetCheck, violations, violations_markdown, violations_table
from edgekit.bench.comparison import Comparison
from edgekit.bench.output import rows_markdown, rows_table
from edgekit.bench.schema import BENCH_SCHEMA, BenchRow


@dataclass
class BenchResult:
    """Rows, environment, and the outcome of budgets and the baseline comparison."""

    environment: dict[str, Any]
    rows: list[BenchRow]
    budgets: list[BudgetCheck] = field(default_factory=list)
    comparison: Comparison | None = None

    @property
    def errors(self) -> list[BenchRow]:
        return [r for r in self.rows if r.status == "error"]

    @property
    def violations(self) -> list[BudgetCheck]:
        return violations(self.budgets)

    @property
    def passed(self) -> bool:
        """No error row, no violated budget, no regression against the baseline."""
        return (
            not self.errors
            and not self.violations
            and (self.comparison is None or self.comparison.passed)
        )

    def problems(self) -> str:
        """One line saying what failed (empty when everything passed)."""
        parts = []
        if self.errors:
            parts.append(f"{len(self.errors)} measurement(s) failed")
        if self.violations:
            parts.append(f"{len(self.violations)} budget check(s) violated")
        if self.comparison is not None and not self.comparison.passed:
            parts.append(self.comparison.summary())
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": BENCH_SCHEMA,
            "environment": self.environment,
            "results": [r.to_json() for r in self.rows],
            "budgets": [c.to_json() for c in self.budgets],
        }
        if self.comparison is not None:
            out["comparison"] = self.comparison.to_json()
        return out

    def table(self) -> str:
        """The console table, then the violated budgets and the baseline comparison."""
        parts = [rows_table(self.rows)]
        if self.violations:
            parts.append("budget violations:\n" + violations_table(self.budgets))
        elif self.budgets:
            parts.append(f"budgets: {len(self.budgets)} check(s) passed")
        if self.comparison is not None:
            parts.append(
                f"against the baseline (max regression {self.comparison.max_regression:g}%):\n"
                + self.comparison.table()
            )
        return "\n\n".join(parts)

    def markdown(self) -> str:
        """The same as :meth:`table`, in markdown (``--markdown``, the CI step summary)."""
        env = self.environment
        where = f"{env['device']} ({env.get('host', '?')}): " if env.get("device") else ""
        parts = [
            "## edgekit bench",
            f"{where}{env.get('cpu', '?')}, {env.get('cores', '?')} cores, Python "
            f"{env.get('python', '?')}",
            rows_markdown(self.rows),
        ]
        if self.violations:
            parts.append(f"**{len(self.violations)} budget check(s) violated**")
            parts.append(violations_markdown(self.budgets))
        elif self.budgets:
            parts.append(f"Budgets: all {len(self.budgets)} check(s) passed.")
        if self.comparison is not None:
            parts.append(
                f"Against the baseline (max regression {self.comparison.max_regression:g}%):"
            )
            parts.append(self.comparison.markdown())
        return "\n\n".join(parts) + "\n"
